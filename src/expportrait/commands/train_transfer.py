"""expportrait train-transfer FIT [FIT ...] --out CKPT_DIR"""
from __future__ import annotations

import json
from pathlib import Path


def add_arguments(p) -> None:
    p.add_argument("fits", nargs="*", help="fit.safetensors files (all tracked with the same head and density)")
    p.add_argument("--out", required=True, help="checkpoint folder (config.json + model.safetensors)")
    p.add_argument("--config", default=None, help="TrainTransferConfig JSON (e.g. configs/transfer/bfm.json)")
    p.add_argument("--synthetic", type=int, default=0,
                   help="add N synthetic identities (transfer.synthetic) to the training fits")
    p.add_argument("--head", default=None, help="head model (default: the fits' head, else bfm)")
    p.add_argument("--head-path", default=None, help="model files for flame / smplx")
    p.add_argument("--density", default=None, help="dense level (default: the fits' density, else coarse)")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps (default: the config's)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: the config's)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the config's)")
    p.add_argument("--device", default="auto", help="auto (cuda when available, else cpu) | cpu | cuda")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--fp32", action="store_true", help="store float32 weights (default float16)")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")


def run(args) -> int:
    from dataclasses import replace

    import torch

    from expportrait.config import load_json, override, to_dict
    from expportrait.errors import UserError
    from expportrait.head.base import load_head
    from expportrait.tracking.io import load_fit
    from expportrait.transfer.train import TrainTransferConfig, save_checkpoint, train_transfer

    if not args.fits and args.synthetic <= 0:
        raise UserError("give fit files and/or --synthetic N")
    cfg = load_json(TrainTransferConfig, args.config) if args.config else TrainTransferConfig()
    cfg = override(cfg, steps=args.steps, lr=args.lr, seed=args.seed, device=args.device)
    fits = [load_fit(f) for f in args.fits]
    head_name = args.head or (fits[0].meta.get("head") if fits else None) or cfg.model.head
    density = args.density or (fits[0].meta.get("density") if fits else None) or cfg.model.density
    for path, f in zip(args.fits, fits):
        if f.meta.get("head", head_name) != head_name or f.meta.get("density", density) != density:
            raise UserError(f"{path}: tracked with head {f.meta.get('head')} / density {f.meta.get('density')}, "
                            f"expected {head_name} / {density}")
    head = load_head(head_name, model_path=args.head_path, density=density)
    cfg = replace(cfg, model=replace(cfg.model, head=head_name, density=density, n_exp=head.n_exp,
                                     use_jaw=head.has_jaw))
    print(json.dumps(to_dict(cfg), indent=2))
    if args.dry_run:
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.synthetic > 0:
        from expportrait.transfer.synthetic import SyntheticWorld
        world = SyntheticWorld(head)
        gen = torch.Generator().manual_seed(1000 + cfg.seed)
        fits += [world.make_fit(gen) for _ in range(args.synthetic)]
    model, report = train_transfer(fits, head, cfg, progress=False)
    report["fits_used"] = [str(f) for f in args.fits] + [f"synthetic x{args.synthetic}"] * (args.synthetic > 0)
    out = save_checkpoint(model, report, args.out, dtype=torch.float32 if args.fp32 else torch.float16)
    size = sum(p.stat().st_size for p in Path(out).iterdir())
    print(f"saved {out} ({size / 1e3:.0f} kB), final loss {report['final_loss']:.4f} ({cfg.loss}, mm), "
          f"{report['seconds']:.0f} s")
    return 0
