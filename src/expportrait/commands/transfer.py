"""expportrait transfer --source SRC_FIT --driving DRV_FIT --out DIR"""
from __future__ import annotations

from pathlib import Path


def add_arguments(p) -> None:
    p.add_argument("--source", required=True, help="fit of the target identity (fit.safetensors)")
    p.add_argument("--driving", required=True, help="fit of the driving video")
    p.add_argument("--out", required=True, help="output folder (driven.safetensors, normals.mp4)")
    p.add_argument("--pose-mode", default="relative",
                   help="head pose: relative (the driver's pose change on the source's; default) | absolute")
    p.add_argument("--regions", default="pose,expression,eyes,lips",
                   help="comma list of what follows the driver: pose, expression, eyes, lips")
    p.add_argument("--intensity", type=float, default=1.0, help="expression multiplier (default 1)")
    p.add_argument("--smooth", type=float, default=1.0,
                   help="Gaussian sigma (frames) of the transferred head pose; 0 = off (default 1, as reenact)")
    p.add_argument("--driving-reference", type=int, default=None,
                   help="driver reference frame (default: its most neutral frontal frame)")
    p.add_argument("--source-frame", type=int, default=0, help="source frame giving pose/camera/light")
    p.add_argument("--transfer-checkpoint", default=None,
                   help="transfer model folder (default: the shipped one for the head; 'none' = Delta_f 0)")
    p.add_argument("--head-path", default=None, help="model files for flame / smplx fits")
    p.add_argument("--no-eyes", action="store_true", help="render normal maps without eyeballs")
    p.add_argument("--no-video", action="store_true", help="skip normals.mp4")


def run(args) -> int:
    import json

    from expportrait.data.video import write_video
    from expportrait.errors import UserError
    from expportrait.head.base import load_head
    from expportrait.tracking.io import load_fit, save_fit
    from expportrait.transfer.model import ExpressionTransfer, default_checkpoint
    from expportrait.tracking.visualize import render_normals
    from expportrait.transfer.retarget import RetargetConfig, check_config, retarget

    regions = tuple(r.strip() for r in args.regions.split(",") if r.strip())
    cfg = RetargetConfig(mode=args.pose_mode, regions=regions, intensity=args.intensity, smooth=args.smooth,
                         reference=args.driving_reference, source_frame=args.source_frame)
    check_config(cfg)
    source, driving = load_fit(args.source), load_fit(args.driving)
    head_name = source.meta.get("head", "bfm")
    density = source.meta.get("density", "medium")
    if density == "synthetic":
        density = "coarse" if source.static_offset.shape[0] < 5000 else "medium"
    head = load_head(head_name, model_path=args.head_path or source.meta.get("head_path"), density=density)
    model = None
    if (args.transfer_checkpoint or "").lower() != "none":
        ckpt = Path(args.transfer_checkpoint) if args.transfer_checkpoint else default_checkpoint(head_name)
        if args.transfer_checkpoint is None and not ckpt.is_dir():
            raise UserError(f"no shipped transfer checkpoint for head '{head_name}'; train one (expportrait "
                            f"train-transfer) and pass --transfer-checkpoint, or --transfer-checkpoint none")
        model = ExpressionTransfer.load(ckpt)
        model.check_head(head)
    driven = retarget(source, driving, head, model, cfg)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_fit(driven, out / "driven.safetensors")
    if not args.no_video:
        frames = render_normals(head, driven, eyes=not args.no_eyes)
        write_video(out / "normals.mp4", frames, float(driven.meta.get("fps") or 25.0))
    t = driven.meta["transfer"]
    print(f"transferred {driven.num_frames} frames ({t['mode']}, regions {','.join(t['regions'])}, "
          f"reference frame {t['reference']}, Delta_f {t['dynamic_offset']}) -> {out}")
    print(json.dumps({"frames": driven.num_frames, "reference": t["reference"]}))
    return 0
