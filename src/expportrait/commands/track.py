"""expportrait track INPUT --out DIR"""
from __future__ import annotations

import json
from pathlib import Path


def add_arguments(p) -> None:
    from expportrait.detection.faces import DETECTORS

    p.add_argument("input", help="video or image file, or sample:carphone / sample:astronaut")
    p.add_argument("--out", required=True, help="output folder (fit.safetensors, overlay.mp4, report.json)")
    p.add_argument("--head", default=None, help="bfm (embedded default) | flame | smplx")
    p.add_argument("--head-path", default=None, help="model file/folder for flame or smplx")
    p.add_argument("--density", default=None, help="dense mesh level (bfm: coarse|medium|full)")
    p.add_argument("--config", default=None, help="TrackConfig JSON file")
    p.add_argument("--max-frames", type=int, default=None,
                   help="use only the first N frames (from --start-frame)")
    p.add_argument("--start-frame", type=int, default=0, help="first video frame tracked (default 0)")
    p.add_argument("--stages", default=None,
                   help="tracking stages: base | base,personalized (default: the config's, both)")
    p.add_argument("--iters", type=int, default=None, help="personalized-stage iterations")
    p.add_argument("--face-index", type=int, default=None,
                   help="which face when there are several (0 = largest; `expportrait faces` numbers them)")
    p.add_argument("--face-detector", default=None, choices=DETECTORS,
                   help="finds the faces before FaceMesh: auto (default: MediaPipe's short and full "
                        "range, near and far faces; dlib when they find none) | mediapipe | dlib | both")
    p.add_argument("--device", default="auto", help="auto (cuda when available, else cpu) | cpu | cuda")
    p.add_argument("--no-overlay", action="store_true", help="skip overlay.mp4")


def build_config(args):
    from dataclasses import replace

    from expportrait.config import load_json, override
    from expportrait.tracking.config import TrackConfig

    cfg = load_json(TrackConfig, args.config) if args.config else TrackConfig()
    cfg = override(cfg, head=args.head, head_path=args.head_path, density=args.density,
                   face_index=args.face_index, face_detector=args.face_detector, device=args.device)
    if (args.face_index or 0) < 0:
        from expportrait.errors import UserError
        raise UserError(f"--face-index must be >= 0, got {args.face_index}")
    if args.stages:
        stages = tuple(s.strip() for s in args.stages.split(",") if s.strip())
        bad = set(stages) - {"base", "personalized"}
        if bad or "base" not in stages:
            from expportrait.errors import UserError
            raise UserError(f"--stages must be 'base' or 'base,personalized', got {args.stages!r}")
        cfg = replace(cfg, stages=stages)
    if args.iters is not None:
        cfg = replace(cfg, personalized=replace(cfg.personalized, iters=args.iters))
    return cfg


def run(args) -> int:
    from expportrait.data.video import read_source, write_video
    from expportrait.errors import atomic_path
    from expportrait.tracking.io import save_fit
    from expportrait.tracking.track import load_head_for
    from expportrait.tracking.gaze import track_with_gaze

    cfg = build_config(args)
    video = read_source(args.input, max_frames=args.max_frames, start=args.start_frame)
    head = load_head_for(cfg)
    # landmarks, fit, and eyeball rotations from the irises (beyond the paper)
    fit, report = track_with_gaze(video.frames, video.fps, cfg, head, what=None, progress=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_fit(fit, out / "fit.safetensors")
    if not args.no_overlay:
        from expportrait.tracking.visualize import overlay_video
        write_video(out / "overlay.mp4", overlay_video(head, fit, video.frames), video.fps)
    with atomic_path(out / "report.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
    s = report["stages"]
    line = f"tracked {report['valid_frames']}/{report['frames']} frames -> {out}"
    for name, st in s.items():
        line += f" | {name}: NME {st['landmark_nme']:.4f}"
        if "photometric_psnr" in st:
            line += f", PSNR {st['photometric_psnr']:.2f} dB"
    print(line)
    return 0
