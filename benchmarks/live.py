"""Live: the streaming engine's throughput, latency and quality against the offline engine.

The validation portraits (configs/identity_split.json; one image per person, edge-padded to a
square as in unseen.py) are each driven by cap_man's ``cap12`` frames 410-559 (a validation person;
every frame, 30 fps, as a webcam would deliver them) through ``live.LiveSession`` frame by frame,
at 256 px and at 512 px. Reported:

- steady-state throughput (frames after the first ``WARMUP`` per portrait, whose calibration and
  first detection are start-up) of ``LiveSession.stream`` (pipelined: the next frame is tracked
  while this one is warped) and the p95 latency of one frame (its tracking, transfer and warp),
  per size; the session's preparation (source fit, segmentation, plate) is reported apart;
- MediaPipe FaceMesh alone on the same driver frames (the live tracker's own face follower: crop
  kept still, tracking mode): the floor every live frame pays, as fps and as a ratio;
- quality, at 512 px, of the live result and the offline ``warp_first`` (``ReenactPipeline`` on
  the whole clip) side by side, each measured with dlib against the driver: identity (share of
  frames within 0.6 of the source's descriptor), mouth-opening and yaw correlation.

Last line: one JSON object with ``fps_256``, ``fps_512``, ``p95_ms_256``, ``p95_ms_512``,
``mediapipe_fps`` and the quality figures. Usage::

    python benchmarks/live.py [--portraits obama,biden] [--frames 150] [--threads 2]
"""
from __future__ import annotations

import time

import numpy as np

from common import finish, load_average, parser, setup
from measures import mouth_opening, padded_square, pearson, yaw_ratio

PORTRAITS = ("obama", "biden", "audrey", "walter", "queen")
DRIVER = ("cap12", 410, 560)
SIZES = (256, 512)
WARMUP = 10


def run_live(pipe, source, frames, size, fps):
    """-> (result frames (F, h, w, 3), seconds between results (F,) (pipelined: the throughput),
    each frame's own processing seconds (F,) (its latency), prepare seconds, step means)."""
    from expportrait.live.session import LiveConfig, LiveSession
    s = LiveSession(pipe, source, LiveConfig(size=size))
    out, secs, parts = [], [], []
    try:
        t = time.perf_counter()
        for r in s.stream(frames, 1.0 / fps):          # pipelined: secs = time between results
            out.append(r)
            secs.append(time.perf_counter() - t)
            t = time.perf_counter()
            parts.append(dict(s.timings))
    finally:
        s.close()
    steps = {k: float(np.mean([p.get(k, 0.0) for p in parts[WARMUP:]])) for k in parts[-1]}
    latency = np.array([sum(p.values()) for p in parts])
    return np.stack(out), np.array(secs), latency, s.prepare_s, steps


def mediapipe_alone(frames) -> float:
    """Seconds per frame of FaceMesh following the driver's face (the live tracker's follower)."""
    from expportrait.detection.faces import CropMesh, crop_transform, find_faces, mesh_box
    still, mesh = CropMesh(static=True), CropMesh(static=False)
    try:
        box = find_faces(frames[0], mesh=still)[0].box
        crop = crop_transform(box)
        t = time.perf_counter()
        for f in frames[WARMUP:]:
            p = mesh(f, box, crop)
            if p is not None:
                box = mesh_box(p)
        return (time.perf_counter() - t) / max(1, len(frames) - WARMUP)
    finally:
        still.close()
        mesh.close()


def quality(frames, face, src_desc, drv_lmk) -> dict:
    from expportrait.detection.dlib_face import SAME_PERSON_DISTANCE
    lmk, desc = face.analyze_video(frames)
    dist = np.linalg.norm(desc - src_desc[None], axis=-1)
    return {"identity": float(np.mean(np.nan_to_num(dist, nan=np.inf) < SAME_PERSON_DISTANCE)),
            "mouth_corr": pearson(mouth_opening(lmk), mouth_opening(drv_lmk)),
            "yaw_corr": pearson(yaw_ratio(lmk), yaw_ratio(drv_lmk))}


def main() -> None:
    ap = parser(__doc__, out="out/live", threads=2)
    ap.add_argument("--portraits", default=",".join(PORTRAITS))
    ap.add_argument("--frames", type=int, default=DRIVER[2] - DRIVER[1], help="driver frames (from frame 410)")
    ap.add_argument("--no-quality", action="store_true", help="timings only (no offline run, no dlib)")
    args = setup(ap.parse_args())
    portraits = [p.strip() for p in args.portraits.split(",") if p.strip()]

    from expportrait.data.video import Video, read_source, write_video
    from expportrait.detection.dlib_face import DlibFace
    from expportrait.live.session import fit_size
    from expportrait.pipeline import ReenactPipeline

    face = DlibFace()
    drv = read_source(f"sample:{DRIVER[0]}", start=DRIVER[1], max_frames=args.frames)
    frames, fps = drv.frames, float(drv.fps)
    pipe = ReenactPipeline.from_checkpoint()
    sources = {p: padded_square(read_source(f"sample:{p}").frames[0], face, 512, 2.2) for p in portraits}
    drv_lmk = None if args.no_quality else face.landmarks68_video(frames)

    mp_s = mediapipe_alone(frames)
    timing, rows_q, per = {}, {}, {}
    for size in SIZES:
        secs_all, lat_all, prep, steps = [], [], [], []
        for p, src in sources.items():
            out, secs, lat, prep_s, st = run_live(pipe, src, frames, size, fps)
            secs_all.append(secs[WARMUP:])
            lat_all.append(lat[WARMUP:])
            prep.append(prep_s)
            steps.append(st)
            print(f"{p} {size}px: {1 / secs[WARMUP:].mean():.1f} fps, p95 latency {np.percentile(lat[WARMUP:], 95) * 1e3:.0f} ms, "
                  f"prepare {prep_s:.1f} s, steps ms {({k: round(v * 1e3, 1) for k, v in st.items()})}", flush=True)
            if size == 512:
                write_video(f"{args.out}/{p}_live.mp4", out, fps)
                if drv_lmk is not None:
                    desc = face.descriptor(fit_size(src, size))
                    off = pipe(Video(fit_size(src, size)[None], fps, None), Video(frames, fps, None), mode="cross").frames
                    per[p] = {"live": quality(out, face, desc, drv_lmk), "offline": quality(off, face, desc, drv_lmk)}
                    print(f"  {p}: {per[p]}", flush=True)
        s, lat = np.concatenate(secs_all), np.concatenate(lat_all)
        timing[size] = {"fps": float(1 / s.mean()), "p95_ms": float(np.percentile(lat, 95) * 1e3),
                        "prepare_s": float(np.mean(prep)),
                        "steps_ms": {k: float(np.mean([st[k] for st in steps]) * 1e3) for k in steps[0]}}

    def mean(kind, key):
        xs = [v[kind][key] for v in per.values() if v[kind][key] is not None]
        return float(np.mean(xs)) if xs else None
    for key in ("identity", "mouth_corr", "yaw_corr"):
        rows_q[key] = {"live": mean("live", key), "offline": mean("offline", key)}

    summary = {"fps_256": timing[256]["fps"], "fps_512": timing[512]["fps"],
               "p95_ms_256": timing[256]["p95_ms"], "p95_ms_512": timing[512]["p95_ms"],
               "mediapipe_fps": 1.0 / mp_s, "prepare_s": timing[512]["prepare_s"],
               "steps_ms_256": timing[256]["steps_ms"], "steps_ms_512": timing[512]["steps_ms"],
               "quality": rows_q, "per_portrait": per, "load_average": load_average()}

    def f(x, d=2):
        return "n/a" if x is None else f"{x:.{d}f}"
    rows = [("fps at 256 px (steady state)", f(summary["fps_256"], 1), ">= 25"),
            ("fps at 512 px", f(summary["fps_512"], 1), ">= 12"),
            ("p95 latency per frame, 256 / 512 px", f"{summary['p95_ms_256']:.0f} / {summary['p95_ms_512']:.0f} ms", ""),
            ("MediaPipe FaceMesh alone (the floor)", f"{summary['mediapipe_fps']:.0f} fps "
             f"({summary['fps_256'] / summary['mediapipe_fps']:.2f}x of it at 256 px)", ""),
            ("source preparation (fit, segmentation, plate)", f"{summary['prepare_s']:.1f} s", "")]
    for key, v in rows_q.items():
        if v["live"] is not None:
            rows.append((f"{key}, live / offline (512 px)", f"{f(v['live'])} / {f(v['offline'])}", "within 0.05"))
    note = (f"Validation portraits {', '.join(portraits)} driven by cap12 {DRIVER[1]}-{DRIVER[1] + len(frames) - 1} "
            f"(cap_man, validation), every frame, one at a time; steady state after {WARMUP} frames per portrait.")
    finish(args, summary, section=("live", "python benchmarks/live.py", rows, note))


if __name__ == "__main__":
    main()
