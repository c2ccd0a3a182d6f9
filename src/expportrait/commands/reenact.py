"""expportrait reenact --source IMAGE_OR_VIDEO --driving VIDEO --out OUT.mp4

Writes OUT.mp4 (the result at the source's resolution, driving audio carried over),
OUT.compare.mp4 (source | driver | result) and OUT.json (mode, timings, sizes).
"""
from __future__ import annotations

import json
from pathlib import Path

HELP = "reenact a source portrait (image or video) with a driving video"


def add_arguments(p) -> None:
    p.add_argument("--source", required=True, help="portrait image or video (or sample:astronaut / sample:carphone)")
    p.add_argument("--driving", required=True, help="driving video (or sample:carphone)")
    p.add_argument("--out", required=True, help="output OUT.mp4 (also writes OUT.compare.mp4, OUT.json)")
    p.add_argument("--checkpoint", default=None,
                   help="folder with generator/, vae/ [pipeline.json, transfer/] (default: the shipped demo)")
    p.add_argument("--steps", type=int, default=None, help="sampler steps (default: the checkpoint's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mode", choices=("auto", "self", "cross"), default=None,
                   help="self: same person (absolute pose); cross: relative pose; auto: dlib face match")
    p.add_argument("--reference-frame", type=int, default=None, help="source frame used as reference (default 0)")
    p.add_argument("--max-frames", type=int, default=None, help="use only the first N driving frames")
    p.add_argument("--fps", type=float, default=None,
                   help="output frame rate (default: the driver's); the driver is resampled, audio kept in sync")
    p.add_argument("--stages", default=None, help="tracking stages: base | base,personalized")
    p.add_argument("--intensity", type=float, default=None, help="expression multiplier")
    p.add_argument("--regions", default=None,
                   help="what follows the driver, comma list of pose,expression,eyes,lips (default all)")
    p.add_argument("--smooth", type=float, default=None, help="Gaussian sigma (frames) of the head pose; 0 = off")
    p.add_argument("--face-index", type=int, default=None, help="which face when there are several (0 = largest)")
    p.add_argument("--device", default="cpu", help="cpu | cuda")


def build_pipeline(args):
    from dataclasses import replace

    from expportrait.config import override
    from expportrait.errors import UserError
    from expportrait.generator.pipeline import ReenactPipeline

    regions = None
    if args.regions:
        regions = tuple(r.strip() for r in args.regions.split(",") if r.strip())
        bad = set(regions) - {"pose", "expression", "eyes", "lips"}
        if bad or not regions:
            raise UserError(f"--regions takes pose,expression,eyes,lips; got {args.regions!r}")
    if args.smooth is not None and args.smooth < 0:
        raise UserError(f"--smooth must be >= 0, got {args.smooth}")
    if args.face_index is not None and args.face_index < 0:
        raise UserError(f"--face-index must be >= 0, got {args.face_index}")
    pipe = ReenactPipeline.from_checkpoint(args.checkpoint, device=args.device)
    pipe.config = override(pipe.config, mode=args.mode, reference_frame=args.reference_frame,
                           intensity=args.intensity, regions=regions, pose_smooth=args.smooth)
    if args.face_index is not None:
        pipe.tracker_cfg = replace(pipe.tracker_cfg, face_index=args.face_index)
    if args.stages:
        stages = tuple(s.strip() for s in args.stages.split(",") if s.strip())
        if set(stages) - {"base", "personalized"} or "base" not in stages:
            raise UserError(f"--stages must be 'base' or 'base,personalized', got {args.stages!r}")
        pipe.tracker_cfg = replace(pipe.tracker_cfg, stages=stages)
    return pipe


def run(args) -> int:
    from expportrait.data.video import read_source, resample_fps
    from expportrait.errors import UserError, atomic_path
    from expportrait.generator.pipeline import write_outputs

    if not str(args.out).lower().endswith(".mp4"):
        raise UserError(f"--out must end in .mp4, got {args.out}")
    source = read_source(args.source)
    driving = read_source(args.driving, max_frames=args.max_frames)
    if len(driving.frames) < 2:
        raise UserError(f"--driving must be a video (got {len(driving.frames)} frame)")
    if args.fps is not None:
        driving = resample_fps(driving, args.fps)
    pipe = build_pipeline(args)
    result = pipe(source, driving, steps=args.steps, seed=args.seed)
    out, cmp = write_outputs(result, args.out, source, driving)
    info = {"mode": result.mode, "frames": int(len(result.frames)),
            "size_hw": list(result.frames.shape[1:3]), "crop": int(result.crops.shape[1]),
            "fps": result.fps, "timings_s": result.timings}
    with atomic_path(Path(out).with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(info, indent=2) + "\n")
    print(f"{result.mode}-reenactment: {len(result.frames)} frames "
          f"{result.frames.shape[2]}x{result.frames.shape[1]} -> {out} (+ {cmp.name})")
    return 0
