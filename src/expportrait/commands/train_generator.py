"""``expportrait train-generator``: train the conditioned Wan DiT on a clip manifest.

Config = defaults <- ``--config FILE`` (a TrainConfig JSON, see ``configs/train/``) <- flags
<- ``--set KEY=VALUE``. The resolved config is validated, printed and written to the run folder.

One process::

    expportrait train-generator --preset demo --data data/clips --out runs/demo

Several GPUs / nodes (DDP; add ``--fsdp`` to shard the model)::

    accelerate launch --multi_gpu --num_processes 8 -m expportrait train-generator \\
        --config configs/train/wan2.1-1.3b.json
    accelerate launch --num_machines 2 --machine_rank R --main_process_ip HOST --num_processes 16 \\
        -m expportrait train-generator --config configs/train/wan2.1-14b-fsdp.json

Resume after a kill: the same command with ``--resume latest`` (and ``--out``), or
``--resume RUN/checkpoint-STEP``.
"""
from __future__ import annotations

import argparse
import json
import os


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a("--config", metavar="FILE", help="TrainConfig JSON (e.g. configs/train/demo.json)")
    a("--preset", help="generator preset: tiny, demo, demo16, wan2.1-1.3b, wan2.1-14b")
    a("--data", metavar="DIR", help="clip dataset folder (manifest.json; `expportrait prepare`)")
    a("--out", metavar="DIR", help="exact run folder (default: RUNS_DIR/NNNNN-PRESET)")
    a("--runs-dir", metavar="DIR", help="parent of the numbered run folders (default runs)")
    a("--init", metavar="DIR", help="start from a ReenactGenerator checkpoint folder")
    a("--wan-dir", metavar="DIR", help="initialise the DiT from a local diffusers Wan2.1 folder")
    a("--vae-dir", metavar="DIR", help="frozen VAE folder (default: the Wan folder's vae/)")
    a("--resume", metavar="latest|DIR",
      help="continue a run: 'latest' (in --out; starts fresh if none), a run or checkpoint folder")
    a("--max-steps", type=int, help="optimizer steps")
    a("--batch-size", type=int, help="clips per process per micro-step")
    a("--grad-accum", type=int, help="micro-steps per optimizer step")
    a("--num-frames", type=int, help="frames per clip (4k+1)")
    a("--lr", type=float, help="learning rate")
    a("--face-weight", type=float, help="extra loss weight under the rendered head (0: plain MSE)")
    a("--ema-decay", type=float, help="EMA decay (0 disables)")
    a("--seed", type=int, help="global seed")
    a("--mixed-precision", choices=["no", "bf16", "fp16"], help="autocast precision of the model")
    a("--grad-checkpointing", action=argparse.BooleanOptionalAction, default=None,
      help="activation checkpointing of the transformer blocks")
    a("--fsdp", action=argparse.BooleanOptionalAction, default=None, help="FSDP2 instead of DDP")
    a("--save-every", type=int, help="optimizer steps between checkpoints")
    a("--num-workers", type=int, help="DataLoader workers per process")
    a("--cache-latents", action=argparse.BooleanOptionalAction, default=None,
      help="keep VAE latents in memory per (clip, crop) (small datasets, e.g. the demo)")
    a("--stop-after", type=int, help=argparse.SUPPRESS)  # debugging: SIGKILL after this checkpoint
    a("--debug-hashes", action="store_true", default=None, help=argparse.SUPPRESS)
    a("--set", action="append", default=[], metavar="KEY=VALUE",
      help="override any TrainConfig field (VALUE parsed as JSON if it can be)")
    a("--dry-run", action="store_true", help="print the resolved config and data, then exit")
    a("--no-progress", action="store_true", help="no progress bar")


def resolve(args: argparse.Namespace):
    """argparse namespace -> validated TrainConfig."""
    from expportrait.config import load_json, override
    from expportrait.errors import UserError
    from expportrait.generator.train import TrainConfig, validate

    cfg = load_json(TrainConfig, args.config) if args.config else TrainConfig()
    flags = {k: getattr(args, k) for k in (
        "preset", "data", "out", "runs_dir", "init", "wan_dir", "vae_dir", "resume", "max_steps",
        "batch_size", "grad_accum", "num_frames", "lr", "face_weight", "ema_decay", "seed", "mixed_precision",
        "grad_checkpointing", "fsdp", "save_every", "num_workers", "cache_latents", "stop_after",
        "debug_hashes")}
    cfg = override(cfg, **flags)
    extra = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            extra[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            extra[key.strip()] = value
    fields = set(TrainConfig.__dataclass_fields__)
    unknown = sorted(set(extra) - fields)
    if unknown:
        raise UserError(f"unknown TrainConfig keys in --set: {unknown}")
    if "adam_betas" in extra:
        extra["adam_betas"] = tuple(extra["adam_betas"])
    return validate(override(cfg, **extra))


def run(args: argparse.Namespace) -> int:
    from expportrait.generator.train import train_generator

    cfg = resolve(args)
    main = os.environ.get("RANK", "0") == "0"
    if main:
        print("train-generator config:\n" + describe(cfg), flush=True)
    if args.dry_run:
        if main:
            print(_dry_run_summary(cfg))
        return 0
    result = train_generator(cfg, progress=not args.no_progress)
    if main:
        print(f"done: {result['step']} steps, final loss {result['loss']:.4f}, "
              f"{result['seconds']:.1f} s; weights in {result['final']}")
    return 0


def describe(cfg) -> str:
    """The resolved config as aligned ``key = value`` lines."""
    from expportrait.config import to_dict
    d = to_dict(cfg)
    width = max(map(len, d))
    return "\n".join(f"  {k:<{width}} = {v}" for k, v in d.items())


def _dry_run_summary(cfg) -> str:
    """Dataset, model size and run folder, without creating anything."""
    from expportrait.data.datasets import ClipDataset, read_manifest
    from expportrait.generator.config import get_preset
    from expportrait.generator.train import next_run_dir, resolve_resume

    m = read_manifest(cfg.data)
    gen = get_preset(cfg.preset)
    ClipDataset(cfg.data, cfg.num_frames or gen.num_frames, frame_stride=cfg.frame_stride,
                with_appearance=gen.needs_appearance)  # clip lengths, appearance tensors
    run_dir, ckpt = resolve_resume(cfg)
    run_dir = run_dir or cfg.out or next_run_dir(cfg.runs_dir, cfg.preset)
    lines = [f"dataset: {len(m['clips'])} clips at {m['resolution'][0]}x{m['resolution'][1]}, "
             f"{m['frames_per_clip']}+ frames, {m['fps']} fps",
             f"model: preset {gen.preset}, {gen.num_layers} layers x {gen.inner_dim} wide"
             + ("" if list(m["resolution"]) == [gen.resolution] * 2
                else f" (note: the preset's resolution is {gen.resolution})"),
             f"run folder: {run_dir}" + (f" (resuming {ckpt})" if ckpt else ""),
             "dry run: nothing written"]
    return "\n".join(lines)
