"""Reenactment of people the project never trained on: the validation identities of
``configs/identity_split.json`` only, for every engine in ``expportrait.engines.ENGINE_NAMES``.

Clips (the persons are checked against the split file's "validation" list):
- cross: one image per validation person (obama, biden, audrey, walter, queen), each edge-padded
  to a centred square of side max(H, W, 2.2x its dlib face box) (walter's and queen's close crops
  get room for MediaPipe) and resized to 512x512 (INTER_AREA down, INTER_CUBIC up), driven by
  cap_man's ``cap12`` frames 410-559 (mouth opening and closing 414-475, head turns left and right
  486-545), every ``--stride``-th frame (default 4: 38 frames at 6.25 fps); mode cross.
- self: cap_man re-created from one frame, ``cap13`` frame 360 (mouth closed, frontal), driven by
  the held-out ``cap13`` frames 380-579 (wide mouth opening 384-480, head turns 500-595), same
  stride (50 frames), compared with those real frames; mode self.
Measures, all on dlib's 68 landmarks and 128-d descriptor (``detection.dlib_face``), which the
tracker never sees, except AED/APD (the dlib measures are in ``benchmarks/measures.py``):
- identity: per result frame, dlib descriptor distance to the source portrait (the 512x512 input)
  below 0.6; frames without a dlib face count as misses. Per portrait fraction; identity_frac =
  mean over the portraits, identity_min_frac = the worst portrait.
- mouth opening: inner-lip gap (mean of the 61-67, 62-66, 63-65 distances) / outer-eye-corner
  distance (36-45). Yaw: nose-to-face-edge asymmetry (dl - dr) / (dl + dr), dl = |p30 - mean(p0..2)|,
  dr = |mean(p14..16) - p30| (signed, about sin(yaw); no 3D template). mouth_corr, yaw_corr: Pearson
  over frames where dlib finds a face in both driver and result (the fraction is reported).
- AED / APD: the project tracker (stage base, ``tracking.track.project_tracker``) on result and
  driver, ``metrics.motion``: expression coefficients / yaw-pitch-roll radians.
- self face-box PSNR / SSIM: each real frame's square around its dlib landmarks (1.2x their larger
  extent), the same box cut from the result and the real frame, both resized to 128x128.
- seconds per output frame: the pipeline call's wall time minus its fit_source and track_driver
  steps (tracking is memoised across engines: the pipeline's tracker is ``common.MemoTracker``),
  over the frames; plus end to end: the first portrait at 512x512 with the checkpoint's default
  engine, nothing cached (the whole pipeline call, no model loading or video writing), which is
  run first.
The flat keys (identity_*, mouth_corr, yaw_corr, aed, apd) are means over the cross portraits;
self_* are the self clip. Seed-dependent engines (``engines.is_stochastic``: the DiT and its
ablations) run once per ``--seeds`` and report the mean. A clip the pipeline refuses (e.g. no face
to track) counts as identity 0 with no other measure. ``--out`` gets each result video (first
seed), ``summary.json`` and ``contact_sheet.png``: per clip one row, source | 4 driver frames
(first, widest mouth, lowest and highest yaw) | the same 4 result frames per engine, each tile
the square of 2.5x the face's extent (the source's dlib landmarks for source and results, the
driver's mean for the driver). The JSON keeps its layout whatever the flags ("variants": one
record per engine), so an earlier run's ``--json`` can be given to ``--merge``.
Writes benchmarks/README.md (section "unseen") unless ``--no-readme``; the last output line is one
JSON object (the harness flags: ``benchmarks/common.py``).

    python benchmarks/unseen.py [--engines full,mesh_warp] [--portraits obama,biden] [--stride 4]
        [--max-frames N] [--seeds 0] [--checkpoint DIR] [--steps N] [--synthesize] [--no-align]
        [--merge FILE] [--threads N] [--no-readme] [--out out/unseen] [--json FILE]
    (--variants: the old name of --engines)
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from common import MemoTracker, finish, mean_over_seeds, parser, setup, timed
from measures import mouth_opening, pearson, yaw_ratio

PORTRAITS = ("obama", "biden", "audrey", "walter", "queen")   # one image per validation person
CROSS_DRIVER = ("cap12", 410, 560)                             # media, first frame, end
SELF_CLIP = ("cap13", 360, 380, 580)                           # media, reference frame, window
SIDE = 512                                                     # cross portraits: SIDE x SIDE
CONTEXT = 2.2                                                  # their canvas >= this x the face box
TILE = 128                                                     # contact sheet tile height
VIEW = 2.5                                                     # its tiles: this x the face's extent


@dataclass
class Clip:
    name: str            # "cross:obama" / "self:cap13"
    mode: str            # cross | self
    source: object       # Video, 1 frame
    driving: object      # Video
    real: bool           # driving frames are the ground truth (self)
    src_desc: np.ndarray  # (128,) dlib descriptor of the source
    drv_lmk: np.ndarray   # (F, 68, 2) dlib landmarks of the driver, NaN where none
    drv_track: dict       # project tracker output on the driver
    show: list            # 4 driver frame indices for the contact sheet
    views: tuple          # contact sheet boxes (l, t, r, b): source / results, driver


def portrait512(img: np.ndarray, face) -> np.ndarray:
    """(H, W, 3) -> (SIDE, SIDE, 3): edge-padded to a centred square of side max(H, W, CONTEXT x the
    dlib face box) and resized to SIDE (close crops such as walter's get room: MediaPipe finds no
    face in the crop as it is)."""
    import cv2
    boxes = face.detect(img)
    side = max(boxes[0][2] - boxes[0][0], boxes[0][3] - boxes[0][1]) if boxes else 0
    H, W = img.shape[:2]
    S = max(H, W, round(CONTEXT * side))
    top, left = (S - H) // 2, (S - W) // 2
    img = cv2.copyMakeBorder(img, top, S - H - top, left, S - W - left, cv2.BORDER_REPLICATE)
    return cv2.resize(img, (SIDE, SIDE), interpolation=cv2.INTER_AREA if S > SIDE else cv2.INTER_CUBIC)


def square_around(points: np.ndarray, scale: float, H: int, W: int) -> tuple[int, int, int, int]:
    """points (K, 2) -> (left, top, right, bottom): the square of side ``scale`` x their larger
    extent, centred on their bounding box, clipped to an H x W frame (the frame if none is finite)."""
    if points is None or not np.isfinite(points).all():
        return 0, 0, W, H
    (x0, y0), (x1, y1) = points.min(0), points.max(0)
    half, cx, cy = scale / 2 * max(x1 - x0, y1 - y0), (x0 + x1) / 2, (y0 + y1) / 2
    return int(max(0, cx - half)), int(max(0, cy - half)), int(min(W, cx + half)), int(min(H, cy + half))


def face_box_crops(frames: np.ndarray, lmk: np.ndarray, size: int = 128) -> np.ndarray:
    """frames (F, H, W, 3), lmk (F, 68, 2) (NaN rows: skipped) -> (F', size, size, 3): the square
    around each frame's landmarks, side 1.2x their larger extent, clipped to the frame, resized."""
    import cv2
    out = []
    for f, p in zip(frames, lmk):
        if np.isfinite(p).all():
            l, t, r, b = square_around(p, 1.2, *f.shape[:2])
            out.append(cv2.resize(f[t:b, l:r], (size, size), interpolation=cv2.INTER_AREA))
    return np.stack(out) if out else np.zeros((0, size, size, 3), np.uint8)


def contact_frames(lmk: np.ndarray) -> list[int]:
    """4 driver frame indices: first, widest mouth, lowest and highest yaw (distinct when possible)."""
    m, y = mouth_opening(lmk), yaw_ratio(lmk)
    picks = [0] + [int(f(np.where(np.isfinite(v), v, g))) for f, v, g in
                   ((np.argmax, m, -np.inf), (np.argmin, y, np.inf), (np.argmax, y, -np.inf))]
    spare = np.linspace(0, len(lmk) - 1, 6).round().astype(int).tolist()
    out = []
    for i in picks:
        if i in out:                               # a repeat: an evenly spaced frame not yet shown
            i = next((j for j in spare if j not in out), i)
        out.append(i)
    return out


def build_clips(args, face, tracker) -> list[Clip]:
    from expportrait.data.media import MEDIA, load_split, names_of, person_of
    from expportrait.data.video import Video, read_source
    from expportrait.errors import UserError

    split = load_split(args.split)
    for name in (*args.portraits, CROSS_DRIVER[0], SELF_CLIP[0]):
        if person_of(name) not in split["validation"]:
            raise UserError(f"{name} ({person_of(name)}) is not a validation identity of the split")
    left = {MEDIA[n].person for n in names_of("validation", "image", split)} - {person_of(p) for p in args.portraits}
    if left:
        print(f"note: validation people with images but no cross portrait: {', '.join(sorted(left))}")

    drivers = {}                                   # the cross driver is analysed once

    def clip(name, mode, src_img, frames, fps):
        frames = frames[:args.max_frames] if args.max_frames else frames
        desc = face.descriptor(src_img)
        if desc is None:
            raise UserError(f"{name}: dlib finds no face in the source")
        if mode not in drivers:                    # one driver per mode
            drivers[mode] = face.landmarks68_video(frames), tracker(frames, fps)
        lmk, track = drivers[mode]
        print(f"{name}: source {src_img.shape[1]}x{src_img.shape[0]}, {len(frames)} driver frames, "
              f"dlib face in {np.isfinite(lmk[:, 0, 0]).mean():.0%}", flush=True)
        src_lmk = face.landmarks68(src_img)
        views = (square_around(src_lmk, VIEW, *src_img.shape[:2]),
                 square_around(np.nanmean(lmk, 0), VIEW, *frames.shape[1:3]))
        return Clip(name, mode, Video(src_img[None], fps, None), Video(frames, fps, None), mode == "self",
                    desc, lmk, track, contact_frames(lmk), views)

    s = args.stride
    cap = read_source(f"sample:{CROSS_DRIVER[0]}")
    cross_frames = cap.frames[CROSS_DRIVER[1]:CROSS_DRIVER[2]:s]
    clips = [clip(f"cross:{p}", "cross", portrait512(read_source(f"sample:{p}").frames[0], face), cross_frames,
                  cap.fps / s) for p in args.portraits]
    me = read_source(f"sample:{SELF_CLIP[0]}")
    clips.append(clip(f"self:{SELF_CLIP[0]}", "self", me.frames[SELF_CLIP[1]],
                      me.frames[SELF_CLIP[2]:SELF_CLIP[3]:s], me.fps / s))
    return clips


def judge(frames: np.ndarray, clip: Clip, face, tracker) -> dict:
    """Result frames (F, H, W, 3) of ``clip`` -> its metrics (see the module doc)."""
    from expportrait.errors import UserError
    from expportrait.metrics import motion
    from expportrait.detection.dlib_face import SAME_PERSON_DISTANCE
    from expportrait.metrics.image import psnr, ssim

    lmk, desc = face.analyze_video(frames)                                  # (F, 68, 2), (F, 128)
    dist = np.linalg.norm(desc - clip.src_desc[None], axis=-1)              # NaN where no face
    both = np.isfinite(lmk[:, 0, 0]) & np.isfinite(clip.drv_lmk[:, 0, 0])
    try:
        p, d = tracker(frames, clip.driving.fps), clip.drv_track
        valid = np.asarray(p["valid"], bool) & np.asarray(d["valid"], bool)
        aed, apd = motion.aed(p["expression"], d["expression"], valid), motion.apd(p["pose"], d["pose"], valid)
    except UserError:                                                       # no face to track
        aed = apd = None
    out = {"identity_frac": float(np.mean(np.nan_to_num(dist, nan=np.inf) < SAME_PERSON_DISTANCE)),
           "dlib_distance": float(np.nanmean(dist)) if np.isfinite(dist).any() else None,
           "mouth_corr": pearson(mouth_opening(lmk), mouth_opening(clip.drv_lmk)),
           "yaw_corr": pearson(yaw_ratio(lmk), yaw_ratio(clip.drv_lmk)),
           "found_frac": float(both.mean()),
           "aed": aed, "apd": apd}
    if clip.real:
        ok = np.isfinite(clip.drv_lmk[:, 0, 0])
        a = face_box_crops(frames[ok], clip.drv_lmk[ok])
        b = face_box_crops(clip.driving.frames[ok], clip.drv_lmk[ok])
        out.update(psnr=psnr(a, b).mean, ssim=ssim(a, b).mean, box_frac=float(ok.mean()))
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in out.items()}


def mean_of(xs: list) -> float | None:
    xs = [x for x in xs if x is not None]
    return float(np.mean(xs)) if xs else None


def summarise(per_clip: dict[str, dict]) -> dict:
    """{clip name: metrics} (one seed) -> the flat per-engine record (see the module doc)."""
    cross = {k.split(":", 1)[1]: v for k, v in per_clip.items() if k.startswith("cross:")}
    me = next((v for k, v in per_clip.items() if k.startswith("self:")), {})

    def mean(key):
        return mean_of([v.get(key) for v in cross.values()])
    fr = [v["identity_frac"] for v in cross.values()]
    return {"identity_frac": float(np.mean(fr)) if fr else None,
            "identity_min_frac": float(np.min(fr)) if fr else None,
            **{k: mean(k) for k in ("mouth_corr", "yaw_corr", "aed", "apd", "found_frac", "dlib_distance")},
            **{f"self_{k}": me.get(k) for k in ("psnr", "ssim", "aed", "apd", "mouth_corr", "yaw_corr",
                                                "identity_frac", "found_frac")},
            "sec_per_frame": mean_of([v.get("sec_per_frame") for v in per_clip.values()]),
            **{f"identity:{k}": v["identity_frac"] for k, v in cross.items()}}


def main() -> None:
    from expportrait.data.media import SPLIT_FILE
    from expportrait.engines import ENGINE_NAMES

    ap = parser(__doc__, out="out/unseen")
    ap.add_argument("--engines", "--variants", dest="engines", default=",".join(ENGINE_NAMES),
                    help="comma list (default: engines.ENGINE_NAMES); --variants is its old name")
    ap.add_argument("--portraits", default=",".join(PORTRAITS), help="cross sources (validation images)")
    ap.add_argument("--stride", type=int, default=4, help="take every k-th frame of both windows")
    ap.add_argument("--max-frames", type=int, default=None, help="cut both windows (after --stride)")
    ap.add_argument("--seeds", default="0", help="comma list; seed-dependent engines report the mean")
    ap.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the shipped demo)")
    ap.add_argument("--steps", type=int, default=None, help="sampler steps (default: the checkpoint's)")
    ap.add_argument("--split", default=str(SPLIT_FILE), help="identity split file")
    ap.add_argument("--synthesize", action="store_true",
                    help="warp_first with the generator's open mouth (synthesize=('mouth',))")
    ap.add_argument("--no-align", action="store_true",
                    help="ablation: self-mode warp results without the landmark alignment (align_landmarks)")
    ap.add_argument("--merge", default=None,
                    help="a previous run's --json: its engines not run now are kept in the table "
                         "(e.g. rerun one engine after a change; the windows must be the same)")
    args = setup(ap.parse_args())
    args.engines = [v.strip() for v in args.engines.split(",") if v.strip()]
    args.portraits = [p.strip() for p in args.portraits.split(",") if p.strip()]
    args.seeds = [int(x) for x in args.seeds.split(",")]
    bad = set(args.engines) - set(ENGINE_NAMES)
    if bad:
        ap.error(f"unknown engines {sorted(bad)}; engines.ENGINE_NAMES = {', '.join(ENGINE_NAMES)}")

    from expportrait.data.video import write_video
    from expportrait.detection.dlib_face import DlibFace
    from expportrait.engines import is_stochastic
    from expportrait.errors import UserError
    from expportrait.pipeline import ReenactPipeline
    from expportrait.tracking.track import project_tracker

    out = Path(args.out)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    face, tracker = DlibFace(), project_tracker()
    pipe = ReenactPipeline.from_checkpoint(args.checkpoint)
    pipe.tracker = MemoTracker(pipe.tracker.cfg, pipe.head)   # every engine reuses the same fits
    base_cfg = replace(pipe.config, align_landmarks=pipe.config.align_landmarks and not args.no_align,
                       synthesize=("mouth",) if args.synthesize else pipe.config.synthesize)
    clips = build_clips(args, face, tracker)
    default = base_cfg.engine                  # run first: its first clip is the end-to-end timing
    engines = sorted(args.engines, key=lambda v: v != default)
    results, sheet, e2e = {}, {}, None
    merged = json.loads(Path(args.merge).read_text()) if args.merge else None
    if merged and merged.get("clips") != {c.name: len(c.driving.frames) for c in clips}:
        ap.error(f"--merge {args.merge} was run on other clips: {merged.get('clips')}")
    for engine in engines:
        pipe.config = replace(base_cfg, engine=engine)
        per_seed = {}
        for seed in args.seeds if is_stochastic(engine) else args.seeds[:1]:
            per_clip = {}
            for clip in clips:
                try:
                    with timed() as t:
                        res = pipe(clip.source, clip.driving, steps=args.steps, seed=seed, mode=clip.mode)
                except UserError as exc:               # e.g. no face to track: all frames missed
                    per_clip[clip.name] = {"error": str(exc), "identity_frac": 0.0, "sec_per_frame": None}
                    print(engine, "seed", seed, clip.name, "failed:", exc, flush=True)
                    continue
                wall, F = t.seconds, len(res.frames)
                if e2e is None and engine == default:
                    e2e = {"clip": clip.name, "frames": F, "size": list(res.frames.shape[1:3]),
                           "sec_per_frame": wall / F, "timings": res.timings}
                    print("end to end", json.dumps(e2e), flush=True)
                m = judge(res.frames, clip, face, tracker)
                m["sec_per_frame"] = (wall - res.timings["fit_source"] - res.timings["track_driver"]) / F
                per_clip[clip.name] = m
                print(engine, "seed", seed, clip.name, json.dumps({**m, "timings": res.timings}), flush=True)
                if not per_seed:
                    sheet[(clip.name, engine)] = res.frames[clip.show]
                    write_video(out / "videos" / f"{clip.name.replace(':', '_')}.{engine}.mp4",
                                res.frames, res.fps)
            per_seed[seed] = {"all": summarise(per_clip)}
        results[engine] = mean_over_seeds(per_seed)["all"]
        if len(per_seed) > 1:
            results[engine]["seeds"] = {s: r["all"] for s, r in per_seed.items()}
        print(engine, json.dumps(results[engine]), flush=True)
    if merged:                                  # the earlier run's other engines, in ENGINE_NAMES order
        kept = {v: r for v, r in merged["variants"].items() if v not in results}
        results = {v: results.get(v, kept.get(v)) for v in ENGINE_NAMES if v in results or v in kept}
        e2e = e2e or merged.get("end_to_end_512")
    sheet_path = write_sheet(out / "contact_sheet.png", clips, engines, sheet)
    summary = {"split": str(Path(args.split).resolve()), "variants": results,
               "end_to_end_512": e2e, "contact_sheet": str(sheet_path.resolve()),
               "clips": {c.name: len(c.driving.frames) for c in clips}, "seeds": args.seeds,
               "windows": {"cross": f"{CROSS_DRIVER[0]} frames {CROSS_DRIVER[1]}-{CROSS_DRIVER[2] - 1} "
                                    f"stride {args.stride}",
                           "self": f"{SELF_CLIP[0]} reference frame {SELF_CLIP[1]}, frames "
                                   f"{SELF_CLIP[2]}-{SELF_CLIP[3] - 1} stride {args.stride}"}}
    finish(args, summary, section=readme_section(args, summary, default))


def write_sheet(path: Path, clips: list[Clip], engines: list[str], sheet: dict) -> Path:
    """One row per clip: source | 4 driver frames | 4 result frames per engine, labelled."""
    import cv2

    def tile(img, box, label=""):
        l, t, r, b = box
        img = cv2.resize(np.ascontiguousarray(img[t:b, l:r]), (TILE, TILE), interpolation=cv2.INTER_AREA)
        if label:
            cv2.putText(img, label, (3, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1, cv2.LINE_AA)
        return img

    rows = []
    for c in clips:
        src_view, drv_view = c.views
        row = [tile(c.source.frames[0], src_view, c.name), np.zeros((TILE, 6, 3), np.uint8)]
        row += [tile(c.driving.frames[i], drv_view, "driver" if k == 0 else "") for k, i in enumerate(c.show)]
        for v in engines:
            row.append(np.zeros((TILE, 6, 3), np.uint8))
            shown = sheet.get((c.name, v), np.zeros((len(c.show), *c.source.frames.shape[1:]), np.uint8))
            row += [tile(f, src_view, v if k == 0 else "") for k, f in enumerate(shown)]   # failed: black
        rows.append(np.concatenate(row, 1))
    img = np.concatenate([np.pad(r, ((0, 4), (0, 0), (0, 0))) for r in rows], 0)
    cv2.imwrite(str(path), img[..., ::-1])
    return path


def readme_section(args, summary: dict, default: str) -> tuple:
    """The section "unseen" of benchmarks/README.md, (name, command, rows, note); the goals sit on
    the ``default`` engine's rows."""
    from expportrait.engines import ENGINE_NAMES

    def f(x, fmt="{:.3f}"):
        return "n/a" if x is None else fmt.format(x)
    res, rows = summary["variants"], []
    warp = res.get("mesh_warp", {}).get("self_psnr")
    for v, r in res.items():
        per = ", ".join(f"{k.split(':')[1]} {x:.2f}" for k, x in r.items() if k.startswith("identity:"))
        rows += [(f"{v}: cross identity, dlib distance < 0.6: mean / worst portrait ({per})",
                  f"{f(r['identity_frac'])} / {f(r['identity_min_frac'])}",
                  ">= 0.95 mean, >= 0.85 each" if v == default else ""),
                 (f"{v}: cross mouth / yaw correlation with the driver (dlib face in both: {f(r['found_frac'])}); "
                  "AED / APD", f"{f(r['mouth_corr'])} / {f(r['yaw_corr'])}; {f(r['aed'])} / {f(r['apd'])}",
                  "mouth >= 0.7, yaw >= 0.8" if v == default else ""),
                 (f"{v}: self face-box PSNR / SSIM; AED / APD; mouth / yaw correlation; identity",
                  f"{f(r['self_psnr'], '{:.2f}')} dB / {f(r['self_ssim'])}; {f(r['self_aed'])} / "
                  f"{f(r['self_apd'])}; {f(r['self_mouth_corr'])} / {f(r['self_yaw_corr'])}; "
                  f"{f(r['self_identity_frac'])}",
                  f">= mesh_warp + 1 dB = {f(None if warp is None else warp + 1, '{:.2f}')} dB"
                  if v == default else ""),
                 (f"{v}: seconds per output frame (tracking memoised)", f(r["sec_per_frame"], "{:.2f}"), "")]
    e = summary["end_to_end_512"]
    if e:
        rows.append((f"end to end at {e['size'][1]}x{e['size'][0]}, {e['clip']}, {default}, nothing "
                     f"cached: seconds per output frame ({e['frames']} frames)", f"{e['sec_per_frame']:.2f}",
                     "<= 1 s on 2 cores"))
    flags = {"--engines": None if set(args.engines) == set(ENGINE_NAMES) else ",".join(args.engines),
             "--portraits": None if tuple(args.portraits) == PORTRAITS else ",".join(args.portraits),
             "--stride": None if args.stride == 4 else args.stride, "--max-frames": args.max_frames,
             "--seeds": None if args.seeds == [0] else ",".join(map(str, args.seeds))}
    cmd = "python benchmarks/unseen.py" + "".join(f" {k} {x}" for k, x in flags.items() if x is not None)
    cmd += "".join(f" {k}" for k, on in (("--synthesize", args.synthesize), ("--no-align", args.no_align)) if on)
    if args.merge:
        cmd += f" --merge {args.merge}"
    w, split = summary["windows"], Path(summary["split"])
    root = Path(__file__).resolve().parents[1]
    split = split.relative_to(root) if split.is_relative_to(root) else split
    return ("unseen", cmd, rows, (
        f"Validation identities only ({split}). Cross: {', '.join(args.portraits)} (each edge-padded to a "
        f"square >= {CONTEXT}x its face box, {SIDE}x{SIDE}) driven by {w['cross']}; self: {w['self']}. "
        f"Mouth: inner-lip gap / eye-corner distance; yaw: nose-to-face-edge asymmetry; both from dlib's 68 "
        f"landmarks, Pearson over frames with a face in both. Self face box: the real frame's dlib "
        f"landmarks, 1.2x, at 128 px. Self mode moves the warp engines' frames onto the driver's "
        f"landmarks ({'off in this run' if args.no_align else 'align_landmarks'}); warp_first's open mouth is "
        f"{'generated (synthesize)' if args.synthesize else 'the warp'}. Seeds {','.join(map(str, args.seeds))} (mean). Contact sheet: "
        f"{args.out}/contact_sheet.png."
        + (f" Engines not rerun ({', '.join(v for v in res if v not in args.engines)}) are those of "
           f"{args.merge}." if args.merge else "")))


if __name__ == "__main__":
    main()
