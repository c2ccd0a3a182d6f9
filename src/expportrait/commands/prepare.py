"""expportrait prepare VIDEO... --out DATASET

Tracks each video, crops/aligns the face (temporally stable box), renders the fit's normal maps
in crop space, splits into clips and writes ``DATASET/clips/*.safetensors`` + ``manifest.json``
(format: ``expportrait.data.datasets``). Resumable: videos whose clips all exist are skipped, and
fits are cached in ``DATASET/fits/``. Several processes / machines::

    accelerate launch --num_processes 8 -m expportrait prepare videos/*.mp4 --out DATASET

(rank r takes videos r, r + 8, ...; rank 0 writes the manifest after all are done).
"""
from __future__ import annotations

from pathlib import Path


def add_arguments(p) -> None:
    from expportrait.detection.faces import DETECTORS

    p.add_argument("videos", nargs="+", help="video files (or sample:carphone)")
    p.add_argument("--out", required=True, help="dataset folder")
    p.add_argument("--size", type=int, default=512, help="crop size in pixels (default 512)")
    p.add_argument("--clip-frames", type=int, default=33, help="frames per clip (default 33)")
    p.add_argument("--clip-stride", type=int, default=None, help="frames between clip starts (default: clip length)")
    p.add_argument("--frames", default=None, help="frame range A:B of every video (e.g. 0:60)")
    p.add_argument("--reference", choices=("first", "random"), default="first",
                   help="reference frame per clip: first frame of the range, or a random other frame")
    p.add_argument("--flip", action="store_true", help="add horizontally flipped copies")
    p.add_argument("--scales", default="1.0", help="comma list of crop-box scale augmentations")
    p.add_argument("--rotations", default="0",
                   help="comma list of in-plane rotation augmentations in degrees (e.g. -20,0,20)")
    p.add_argument("--crop-scale", type=float, default=2.2, help="box side / face width (default 2.2)")
    p.add_argument("--crop-centre", choices=("face", "mouth"), default="face",
                   help="crop box centre: the face (default) or the mouth (warp_first's learned mouth)")
    p.add_argument("--stages", default="base,personalized",
                   help="tracking stages: base | base,personalized (default: both)")
    p.add_argument("--iters", type=int, default=None, help="personalized-stage iterations")
    p.add_argument("--track-config", default=None, help="TrackConfig JSON")
    p.add_argument("--no-eyes", action="store_true", help="normal maps without eyeballs")
    p.add_argument("--still-frames", type=int, default=60,
                   help="an image input becomes a clip of N frames of slow synthetic camera motion")
    p.add_argument("--still-expressions", action="store_true",
                   help="an image input also makes smooth random expressions: the photo warped by its "
                        "own fitted head driven through them (engines.still)")
    p.add_argument("--warp-reference", action="store_true",
                   help="every clip also carries its reference warped by the fitted head to each frame "
                        "(engines.warp_field): what a residual_base 'warp' generator starts from")
    p.add_argument("--mouth-donor", default=None, metavar="VIDEO",
                   help="with --warp-reference: carry this video's inner mouth (another person's "
                        "teeth and tongue, the frame whose mouth opens most alike) into each warped "
                        "frame where it opens wider than the reference, as warp_first's driver "
                        "mouth does (engines.mouth): the composites a learned mouth refiner starts from")
    p.add_argument("--face-index", type=int, default=None,
                   help="which face when there are several (0 = largest; `expportrait faces` numbers them)")
    p.add_argument("--face-detector", default=None, choices=DETECTORS,
                   help="finds the faces before FaceMesh: auto (default: MediaPipe's short and full "
                        "range, near and far faces; dlib when they find none) | mediapipe | dlib | both")
    p.add_argument("--seed", type=int, default=0)


def build_config(args):
    from expportrait.data.crop import CropConfig
    from expportrait.data.prepare import PrepareConfig, parse_range
    from expportrait.errors import UserError

    try:
        scales = tuple(float(s) for s in args.scales.split(",") if s.strip())
        rotations = tuple(float(s) for s in args.rotations.split(",") if s.strip())
    except ValueError:
        raise UserError(f"--scales and --rotations must be comma lists of numbers, got "
                        f"{args.scales!r}, {args.rotations!r}") from None
    if not rotations or max(abs(r) for r in rotations) > 90 or len(set(rotations)) != len(rotations):
        raise UserError(f"--rotations must be distinct angles within +-90 degrees, got {args.rotations!r}")
    if not scales or min(scales) <= 0 or args.size < 8 or args.clip_frames < 1:
        raise UserError("--scales must be positive, --size >= 8 and --clip-frames >= 1")
    cfg = PrepareConfig(size=args.size, clip_frames=args.clip_frames, clip_stride=args.clip_stride,
                        frames=parse_range(args.frames), reference=args.reference, flip=args.flip,
                        scales=scales, rotations=rotations, warp_reference=args.warp_reference,
                        crop=CropConfig(size=args.size, scale=args.crop_scale, centre=args.crop_centre), seed=args.seed)
    return cfg


def track_config(args):
    from dataclasses import replace

    from expportrait.config import load_json, override
    from expportrait.errors import UserError
    from expportrait.tracking.config import TrackConfig

    cfg = load_json(TrackConfig, args.track_config) if args.track_config else TrackConfig()
    stages = tuple(s.strip() for s in args.stages.split(",") if s.strip())
    if set(stages) - {"base", "personalized"} or "base" not in stages:
        raise UserError(f"--stages must be 'base' or 'base,personalized', got {args.stages!r}")
    cfg = replace(cfg, stages=stages)
    if (args.face_index or 0) < 0:
        raise UserError(f"--face-index must be >= 0, got {args.face_index}")
    cfg = override(cfg, face_index=args.face_index, face_detector=args.face_detector)
    if args.iters is not None:
        cfg = replace(cfg, personalized=replace(cfg.personalized, iters=args.iters))
    return cfg


def make_tracker(out: Path, tcfg, head):
    """``tracker(frames, fps) -> HeadFit`` that caches fits in ``out/fits`` by content hash."""
    import hashlib

    from expportrait.config import to_dict
    from expportrait.tracking.io import load_fit, save_fit
    from expportrait.tracking.gaze import track_with_gaze

    def tracker(frames, fps):
        h = hashlib.sha1(frames[:: max(1, len(frames) // 8)].tobytes())
        h.update(repr((frames.shape, to_dict(tcfg))).encode())
        path = out / "fits" / f"{h.hexdigest()[:16]}.safetensors"
        if path.is_file():
            return load_fit(path)
        fit, _ = track_with_gaze(frames, fps, tcfg, head)
        save_fit(fit, path)
        return fit

    return tracker


def photo_expressions(image, frames: int, seed: int, tcfg, head):
    """(H, W, 3) uint8 photo -> (frames, H, W, 3) uint8 making random expressions (fit the photo,
    drive its head, warp; ``engines.still``). With the personalized stage the driven head's
    Delta_f comes from the default transfer model; with stage base alone the photo's base head
    moves through psi and jaw only (Delta = 0 on both sides: ``warp_first``'s warp)."""
    from expportrait.tracking.gaze import track_with_gaze
    from expportrait.transfer.model import ExpressionTransfer
    from expportrait.engines.still import still_expressions

    fit, _ = track_with_gaze(image[None], 25.0, tcfg, head, "photo")
    model = ExpressionTransfer.load(None, head=tcfg.head) if "personalized" in tcfg.stages else None
    return still_expressions(image, fit, head, model, frames, seed)


def run(args) -> int:
    import json

    from expportrait.config import to_dict
    from expportrait.data.prepare import prepare_dataset
    from expportrait.data.video import read_source
    from expportrait.errors import atomic_path
    from expportrait.engines.conditions import render_crop_normals
    from expportrait.head import load_head

    cfg = build_config(args)
    tcfg = track_config(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    head = load_head(tcfg.head, model_path=tcfg.head_path, density=tcfg.density)
    eyes = not args.no_eyes

    def render(fit, idx, boxes, size):
        return render_crop_normals(head, fit, boxes, size, idx=idx, eyes=eyes)

    donor = None
    if args.mouth_donor is not None:
        from expportrait.detection.landmarks import detect_video
        from expportrait.errors import UserError
        if not args.warp_reference:
            raise UserError("--mouth-donor needs --warp-reference (the mouth is carried into the warp)")
        d = read_source(args.mouth_donor).frames
        donor = (d, detect_video(d).ibug68)

    def warp(frames, fit, ref, idx):
        import torch

        from expportrait.engines import mouth
        from expportrait.engines.warp_field import expression_warp
        out = expression_warp(frames[ref], fit.frames(torch.as_tensor([ref])),
                              fit.frames(torch.as_tensor(idx)), head)
        if donor is not None:                          # the driver's mouth, from another person
            lmk = fit.landmarks68_2d.numpy()
            target = lmk[idx]
            out = mouth.carry_driver_mouth(out, target, donor[0], donor[1], mouth.gate(target, lmk[ref]),
                                           pick=mouth.nearest_openings(target, donor[1]))
        return out

    for v in args.videos:  # fail early, before any tracking, on a missing file
        if not str(v).startswith("sample:") and not Path(v).is_file():
            from expportrait.errors import UserError
            raise UserError(f"file not found: {v}")
    if args.still_frames < 1:
        from expportrait.errors import UserError
        raise UserError(f"--still-frames must be >= 1, got {args.still_frames}")

    def read(path):
        from expportrait.data.prepare import still_motion
        from expportrait.data.video import Video
        video = read_source(path)
        if len(video.frames) == 1 and args.still_frames > 1:   # a photo: slow synthetic camera move
            frames = video.frames[0]
            if args.still_expressions:                        # ... and synthetic expressions
                frames = photo_expressions(frames, args.still_frames, args.seed, tcfg, head)
            video = Video(still_motion(frames, args.still_frames, args.seed), 25.0, None)
        return video

    settings = {**to_dict(cfg), "tracking": to_dict(tcfg), "eyes": eyes, "still_frames": args.still_frames,
                "still_expressions": args.still_expressions,
                **({"mouth_donor": args.mouth_donor} if args.mouth_donor else {})}
    summary = prepare_dataset(out, list(args.videos), read, make_tracker(out, tcfg, head),
                              render, cfg, progress=True, settings=settings,
                              warp=warp if cfg.warp_reference else None)
    if "manifest" in summary:
        with atomic_path(out / "prepare_config.json") as tmp:
            tmp.write_text(json.dumps({"prepare": to_dict(cfg), "tracking": to_dict(tcfg),
                                       "videos": list(args.videos)}, indent=2) + "\n")
        print(f"prepared {summary['prepared']} video(s), skipped {summary['skipped']} done ones: "
              f"{summary['clips']} clips at {cfg.size}x{cfg.size} -> {summary['manifest']}")
    return 0
