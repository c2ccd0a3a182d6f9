"""expportrait render FIT --out DIR --yaw DEG --pitch DEG"""
from __future__ import annotations

from pathlib import Path


def add_arguments(p) -> None:
    p.add_argument("fit", help="fit.safetensors from `expportrait track`")
    p.add_argument("--out", required=True, help="output folder (normals.mp4, normals_0000.png)")
    p.add_argument("--yaw", type=float, default=0.0, help="camera orbit about the head, degrees")
    p.add_argument("--pitch", type=float, default=0.0, help="camera orbit about the head, degrees")
    p.add_argument("--size", type=int, default=None, help="output height (width follows the input aspect)")
    p.add_argument("--head-path", default=None, help="model file/folder if the fit used flame/smplx")


def run(args) -> int:
    import torch
    from PIL import Image

    from expportrait.data.video import write_video
    from expportrait.errors import UserError, atomic_path
    from expportrait.head import load_head
    from expportrait.tracking.io import load_fit
    from expportrait.tracking.visualize import render_head

    fit = load_fit(args.fit)
    meta = fit.meta
    head = load_head(meta["head"], model_path=args.head_path or meta.get("head_path"),
                     density=meta.get("density", "medium"))
    if head.num_dense != fit.static_offset.shape[0]:
        raise UserError(f"{args.fit} was fitted with {fit.static_offset.shape[0]} vertices but the "
                        f"'{meta['head']}' head has {head.num_dense}")
    H, W = fit.image_size
    s = (args.size / H) if args.size else 1.0
    h, w = round(H * s), round(W * s)
    cam = fit.camera * torch.tensor([s, s, s, s])
    frames = render_head(head, fit, size=(h, w), camera=cam, eyes=False, yaw_deg=args.yaw,
                         pitch_deg=args.pitch)["normal"]                           # (F, h, w, 3)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_video(out / "normals.mp4", frames, meta.get("fps", 25.0))
    with atomic_path(out / "normals_0000.png") as tmp:
        Image.fromarray(frames[0]).save(tmp, format="PNG")
    print(f"rendered {len(frames)} normal maps (yaw {args.yaw}, pitch {args.pitch}) -> {out}")
    return 0
