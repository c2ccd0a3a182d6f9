"""expportrait reenact --source IMAGE_OR_VIDEO --driving VIDEO --out OUT.mp4

Writes OUT.mp4 (the result at the source's resolution, driving audio carried over),
OUT.compare.mp4 (source | driver | result) and OUT.json (mode, timings, sizes).

``--face-index all`` (or a list, 0,2,3) animates several faces of a group photo
(``group.reenact_group``): ``--driving`` once (every face follows it) or once per face in the
list's order; the result is as long as the longest driver (``--shorter``: the others hold their
last frame or loop); the compare video shows the drivers stacked.
"""
from __future__ import annotations

import json
from pathlib import Path

from expportrait.engines import ENGINE_NAMES
from expportrait.engines.mouth import MOUTH_SOURCES
from expportrait.transfer.retarget import TRANSLATION_MODES



def add_arguments(p) -> None:
    from expportrait.detection.faces import DETECTORS

    p.add_argument("--source", required=True, help="portrait image or video (or sample:astronaut / sample:carphone)")
    p.add_argument("--driving", required=True, action="append",
                   help="driving video (or sample:carphone); with --face-index all or a list: once "
                        "(every face follows it) or once per face, in the list's order")
    p.add_argument("--out", required=True, help="output OUT.mp4 (also writes OUT.compare.mp4, OUT.json)")
    p.add_argument("--checkpoint", default=None,
                   help="folder with generator/, vae/ [pipeline.json, transfer/] (default: the shipped demo)")
    p.add_argument("--steps", type=int, default=None, help="sampler steps (default: the checkpoint's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cfg-scale", type=float, default=None,
                   help="classifier-free guidance scale, 1 = off (default: the checkpoint's)")
    p.add_argument("--guide", default=None,
                   help="conditions guidance is on: pose | ref | ref,pose (default: the checkpoint's)")
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
    p.add_argument("--head-motion", choices=TRANSLATION_MODES, default=None,
                   help="cross mode: the head moves as far for its face's size as the driver's (face, "
                        "default) or as far for the image (frame)")
    p.add_argument("--face-index", default=None,
                   help="the source's face when there are several (0 = largest; `expportrait faces` "
                        "numbers them); all, or a list such as 0,2,3: those faces, each composited "
                        "in its own part of the frame")
    p.add_argument("--shorter", choices=("hold", "loop"), default="hold",
                   help="several drivers: one shorter than the longest holds its last frame (default) or loops")
    p.add_argument("--driving-face-index", type=int, default=None,
                   help="the driver's face when there are several (0 = largest)")
    p.add_argument("--face-detector", default=None, choices=DETECTORS,
                   help="finds the faces before FaceMesh: auto (default: MediaPipe's short and full "
                        "range, near and far faces; dlib when they find none) | mediapipe | dlib | both")
    p.add_argument("--engine", "--variant", dest="engine", default=None, choices=ENGINE_NAMES,
                   help="what makes the frames (default: the checkpoint's, warp_first): warp_first "
                        "(the source warped by its own driven head); full (the paper's DiT) and its "
                        "ablations base_only, direct_copy; baselines mesh_warp, repeat_reference")
    p.add_argument("--keep-source-head", action="store_true",
                   help="paste into the source frame as it is (default: its own head is painted out "
                        "first, so that it does not stay where the driven head moved away from)")
    p.add_argument("--mouth-source", default=None, choices=MOUTH_SOURCES,
                   help="warp_first's open mouth where the driven mouth opens wider than the source's: "
                        "auto (default) / driver: the driver's teeth and tongue matched to the source's "
                        "lips; source / none: the source's own mouth stretched; learned: the driver's, "
                        "refined by the generator")
    p.add_argument("--no-align", action="store_true",
                   help="self mode, warp engines: keep the frames as warped (default: each is moved so "
                        "that its face landmarks land on the driver's, removing the trackers' residuals)")
    p.add_argument("--device", default="auto", help="auto (cuda when available, else cpu) | cpu | cuda")


def with_controls(config, tracker_cfg, *, mode=None, reference_frame=None, intensity=None,
                  regions=None, smooth=None, face_index=None, driving_face_index=None,
                  face_detector=None):
    """(PipelineConfig, TrackConfig) with the user's controls set; None keeps the default."""
    from expportrait.config import override

    return (override(config, mode=mode, reference_frame=reference_frame, intensity=intensity,
                     regions=regions, pose_smooth=smooth, driving_face_index=driving_face_index),
            override(tracker_cfg, face_index=face_index, face_detector=face_detector))


def build_pipeline(args):
    """The checkpoint's pipeline with the command line's controls (checked before anything loads)."""
    from dataclasses import replace

    from expportrait.errors import UserError
    from expportrait.pipeline import ReenactPipeline, load_configs

    regions = None
    if args.regions:
        regions = tuple(r.strip() for r in args.regions.split(",") if r.strip())
        bad = set(regions) - {"pose", "expression", "eyes", "lips"}
        if bad or not regions:
            raise UserError(f"--regions takes pose,expression,eyes,lips; got {args.regions!r}")
    if args.smooth is not None and args.smooth < 0:
        raise UserError(f"--smooth must be >= 0, got {args.smooth}")
    for flag in ("face_index", "driving_face_index"):
        if (getattr(args, flag, None) or 0) < 0:
            raise UserError(f"--{flag.replace('_', '-')} must be >= 0, got {getattr(args, flag)}")
    config, tracker_cfg = with_controls(
        *load_configs(args.checkpoint), mode=args.mode, reference_frame=args.reference_frame,
        intensity=args.intensity, regions=regions, smooth=args.smooth, face_index=args.face_index,
        driving_face_index=getattr(args, "driving_face_index", None),
        face_detector=getattr(args, "face_detector", None))
    changes = {"engine": args.engine} if args.engine else {}
    if getattr(args, "head_motion", None):
        changes["head_motion"] = args.head_motion
    if getattr(args, "cfg_scale", None) is not None:
        if args.cfg_scale <= 0:
            raise UserError(f"--cfg-scale must be > 0, got {args.cfg_scale}")
        changes["cfg_scale"] = args.cfg_scale
    if getattr(args, "guide", None):
        guide = tuple(g.strip() for g in args.guide.split(",") if g.strip())
        if not guide or set(guide) - {"pose", "ref"}:
            raise UserError(f"--guide takes pose, ref or ref,pose; got {args.guide!r}")
        changes["guide"] = guide
    if getattr(args, "keep_source_head", False):
        changes["clear_source_head"] = False
    if getattr(args, "mouth_source", None):
        changes["mouth_source"] = args.mouth_source
    if getattr(args, "no_align", False):
        changes["align_landmarks"] = False
    if args.stages:
        stages = tuple(s.strip() for s in args.stages.split(",") if s.strip())
        if set(stages) - {"base", "personalized"} or "base" not in stages:
            raise UserError(f"--stages must be 'base' or 'base,personalized', got {args.stages!r}")
        tracker_cfg = replace(tracker_cfg, stages=stages)
    return ReenactPipeline.from_checkpoint(args.checkpoint, device=args.device,
                                           config=replace(config, **changes), tracker_cfg=tracker_cfg)


def read_inputs(source_path, driving_path, max_frames=None, fps=None):
    """-> (source Video, driving Video) for a reenactment: the driver must be a video; ``fps``
    resamples it (same duration, so its audio stays in sync)."""
    from expportrait.data.video import read_source, resample_fps
    from expportrait.errors import UserError

    source = read_source(source_path)
    driving = read_source(driving_path, max_frames=max_frames)
    if len(driving.frames) < 2:
        raise UserError(f"the driving input {driving_path} must be a video (got {len(driving.frames)} frame)")
    if fps is not None:
        driving = resample_fps(driving, fps)
    return source, driving


def run_info(result) -> dict:
    """The OUT.json summary of a ``ReenactResult``."""
    return {"mode": result.mode, "frames": int(len(result.frames)),
            "size_hw": list(result.frames.shape[1:3]),
            "crop": None if result.crops is None else int(result.crops.shape[1]),
            "fps": result.fps, "timings_s": result.timings}


def guidance(pipe) -> dict:
    """The classifier-free guidance a sampling engine uses: {"cfg_scale", "guide"} ({} for the
    others)."""
    if not pipe.engine.stochastic:
        return {}
    scale = pipe.config.cfg_scale
    return {"cfg_scale": pipe.parts.generator_config().cfg_scale if scale is None else scale,
            "guide": list(pipe.config.guide)}


def run(args) -> int:
    from expportrait.errors import UserError
    from expportrait.group.reenact import parse_faces

    faces, drivers = parse_faces(args.face_index), list(args.driving)
    if faces is not None and not isinstance(faces, int):
        return run_group(args, faces)
    if len(drivers) > 1:
        raise UserError(f"--driving is given {len(drivers)} times: several drivers need "
                        f"--face-index all or a list (0,1,...), one driver per face")
    args.face_index, args.driving = faces, drivers[0]
    return run_single(args)


def run_group(args, faces) -> int:
    """``--face-index all`` or a list: ``group.reenact_group``, then the same three files."""
    from expportrait.data.video import read_source
    from expportrait.errors import UserError, atomic_path
    from expportrait.group.reenact import (GroupConfig, check_drivers, driving_for_outputs,
                                           read_drivers, reenact_group)
    from expportrait.outputs import write_outputs

    if not str(args.out).lower().endswith(".mp4"):
        raise UserError(f"--out must end in .mp4, got {args.out}")
    if isinstance(faces, tuple):
        check_drivers(len(args.driving), len(faces))
    cfg = GroupConfig(shorter=args.shorter)
    source = read_source(args.source)
    drivers = read_drivers(args.driving, args.max_frames, args.fps)
    args.face_index = None
    pipe = build_pipeline(args)
    result = reenact_group(pipe, source, drivers, faces, cfg, steps=args.steps, seed=args.seed)
    panel = driving_for_outputs(drivers, len(result.frames), cfg.shorter)   # drivers stacked
    out, cmp = write_outputs(result, args.out, source, panel)
    with atomic_path(Path(out).with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps({**result.info(), "engine": pipe.config.engine,
                                   "driving": [str(p) for p in args.driving], "shorter": cfg.shorter,
                                   "mouth_source": pipe.config.mouth_source,
                                   "head_motion": pipe.config.head_motion, **guidance(pipe)},
                                  indent=2) + "\n")
    print(f"{len(result.faces)} faces ({', '.join(map(str, result.faces))}) reenacted: {len(result.frames)} "
          f"frames {result.frames.shape[2]}x{result.frames.shape[1]} -> {out} (+ {cmp.name})")
    return 0


def run_single(args) -> int:
    """One face (``--face-index K``): the pipeline as it always was."""
    from expportrait.errors import UserError, atomic_path
    from expportrait.outputs import write_outputs

    if not str(args.out).lower().endswith(".mp4"):
        raise UserError(f"--out must end in .mp4, got {args.out}")
    source, driving = read_inputs(args.source, args.driving, args.max_frames, args.fps)
    pipe = build_pipeline(args)
    result = pipe(source, driving, steps=args.steps, seed=args.seed)
    out, cmp = write_outputs(result, args.out, source, driving)
    with atomic_path(Path(out).with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps({**run_info(result), "engine": pipe.config.engine,
                                   "face_index": pipe.tracker.cfg.face_index,
                                   "driving_face_index": pipe.config.driving_face_index,
                                   "clear_source_head": pipe.config.clear_source_head,
                                   "mouth_source": pipe.config.mouth_source,
                                   "align_landmarks": pipe.config.align_landmarks,
                                   "head_motion": pipe.config.head_motion,
                                   **guidance(pipe)}, indent=2) + "\n")
    print(f"{result.mode}-reenactment: {len(result.frames)} frames "
          f"{result.frames.shape[2]}x{result.frames.shape[1]} -> {out} (+ {cmp.name})")
    return 0
