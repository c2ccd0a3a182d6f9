"""Generator training loop: ``train_generator(TrainConfig) -> summary`` (accelerate).

One process per device (``accelerate launch``); DDP by default, FSDP (version 2, one shard unit
per transformer block) with ``fsdp=True``. Frames and the reference image are encoded by the
frozen VAE on the fly; the objective is :func:`expportrait.generator.flow.flow_matching_loss`.

Reproducibility contract: the batches and the flow noise of optimizer step ``s`` are pure functions
of ``(seed, world_size, rank, s)`` (:class:`~expportrait.data.datasets.StepBatchSampler` and a
generator reseeded every micro-step), so a run resumed from ``checkpoint-k`` (accelerate
``save_state``: weights, optimizer, RNG; plus ``ema.safetensors`` and ``trainer_state.json``)
reproduces the loss curve and final weights of an uninterrupted run.

Run folder layout::

    RUN/train_config.json        resolved TrainConfig
    RUN/loss.jsonl               {"step", "loss", "loss/...", "lr", "grad_norm", "seconds"}; seconds
                                 count from the (re)start of the process
    RUN/vae/                     the frozen VAE when none was given (seeded random; smoke runs)
    RUN/checkpoint-STEP/state/   accelerate save_state + ema.safetensors + trainer_state.json
    RUN/checkpoint-STEP/model/   config.json + model.safetensors (raw weights export)
    RUN/checkpoint-STEP/ema/     config.json + model.safetensors (EMA weights export)
    RUN/final/{model,ema}/       the same after the last step (use ema/ for sampling)

Checkpoints are written to ``checkpoint-STEP.tmp`` and renamed when complete, so a kill during a
save never leaves a half checkpoint for ``resume`` to pick up.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from expportrait.config import to_dict
from expportrait.errors import UserError

from expportrait.generator.train_io import (  # noqa: F401  (re-exported)
    _copy_exports, _ema_name, _save_checkpoint, _truncate_log, _weights_hash, checkpoints,
    next_run_dir, resolve_resume)

MIXED_PRECISION = ("no", "bf16", "fp16")


@dataclass(frozen=True)
class TrainConfig:
    # model
    preset: str = "tiny"              # GeneratorConfig preset (tiny, demo, wan2.1-1.3b, wan2.1-14b)
    init: str | None = None           # ReenactGenerator folder to start from (from_pretrained)
    wan_dir: str | None = None        # diffusers Wan2.1 folder to start the DiT from (from_wan)
    vae_dir: str | None = None        # frozen VAE folder (default: wan_dir's vae/, else RUN/vae,
                                      # else a seeded random VAE saved to RUN/vae: smoke runs)
    # data
    data: str = ""                    # clip manifest folder (expportrait.data.datasets)
    num_frames: int | None = None     # frames per training clip, 4k+1 (None: the preset's)
    frame_stride: int = 1             # temporal subsampling of the clips
    num_workers: int = 0              # DataLoader workers per process
    cache_latents: bool = False       # keep VAE latents per (clip, crop) in memory (small datasets)
    # run folder
    out: str | None = None            # exact run folder (else RUNS_DIR/NNNNN-PRESET)
    runs_dir: str = "runs"
    resume: str | None = None         # "latest" (in out), a run folder, or a checkpoint-STEP folder
    # optimisation
    max_steps: int = 1000             # optimizer steps
    batch_size: int = 1               # clips per process per micro-step
    grad_accum: int = 1               # micro-steps per optimizer step
    lr: float = 1e-4
    warmup_steps: int = 0             # linear lr warm-up, then constant
    weight_decay: float = 0.0
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    max_grad_norm: float = 1.0        # 0 disables clipping
    cond_dropout: float = 0.1         # probability of dropping the conditions (for CFG)
    face_weight: float = 0.0          # extra loss weight of latent cells under the rendered head
    shift: float | None = None        # flow-matching time shift of the timesteps (None: preset's)
    ema_decay: float = 0.999          # 0 disables EMA
    # precision and parallelism
    mixed_precision: str = "no"       # "no", "bf16" (autocast around the model) or "fp16"
    grad_checkpointing: bool = False  # activation checkpointing of the transformer blocks
    fsdp: bool = False                # FSDP2 sharding instead of DDP
    seed: int = 0
    deterministic: bool = False       # torch.use_deterministic_algorithms(True)
    # checkpoints and logs
    save_every: int = 500             # optimizer steps between checkpoints
    keep_last: int = 3                # checkpoints kept (0: all)
    log_every: int = 1
    # debugging
    stop_after: int | None = None     # save at this step, then SIGKILL the process (resume tests)
    debug_hashes: bool = False        # write RUN/debug/weights-rank{r}.txt (sha256 of the weights)


def validate(cfg: TrainConfig) -> TrainConfig:
    """Raise ``UserError`` for an unusable config; returns it unchanged."""
    from expportrait.generator.config import PRESETS
    if cfg.init is None and cfg.preset not in PRESETS:
        raise UserError(f"unknown preset '{cfg.preset}' (choose from {', '.join(PRESETS)})")
    if not cfg.data:
        raise UserError("no dataset: set 'data' (a folder with manifest.json) or pass --data")
    checks = [(cfg.max_steps >= 1, "max_steps must be >= 1"),
              (cfg.batch_size >= 1, "batch_size must be >= 1"),
              (cfg.grad_accum >= 1, "grad_accum must be >= 1"), (cfg.lr > 0, "lr must be > 0"),
              (cfg.save_every >= 1, "save_every must be >= 1"),
              (cfg.num_frames is None or (cfg.num_frames >= 1 and (cfg.num_frames - 1) % 4 == 0),
               f"num_frames must be 4k+1 (Wan VAE), got {cfg.num_frames}"),
              (0 <= cfg.cond_dropout < 1, "cond_dropout must be in [0, 1)"),
              (cfg.face_weight >= 0, "face_weight must be >= 0"),
              (0 <= cfg.ema_decay < 1, "ema_decay must be in [0, 1)"),
              (cfg.mixed_precision in MIXED_PRECISION,
               f"mixed_precision must be one of {MIXED_PRECISION}"),
              (cfg.stop_after is None or 1 <= cfg.stop_after < cfg.max_steps,
               "stop_after must be in [1, max_steps)"),
              (cfg.init is None or cfg.wan_dir is None, "give either init or wan_dir, not both")]
    for ok, message in checks:
        if not ok:
            raise UserError(message)
    return cfg


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Learning rate of optimizer step ``step`` (0-based): linear warm-up, then constant."""
    return cfg.lr * min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps else cfg.lr


def step_generator(seed: int, world_size: int, rank: int, micro_step: int) -> torch.Generator:
    """The flow-noise generator of one micro-step on one rank (per-rank seed = seed*world+rank)."""
    s = np.random.SeedSequence([seed * world_size + rank, micro_step]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(s[0]) << 32 | int(s[1]))


# ----------------------------------------------------------------------------- run folders

# ----------------------------------------------------------------------------- model helpers

def _block_class_names(model: torch.nn.Module) -> list[str]:
    """Class names listed in any submodule's diffusers ``_no_split_modules`` (FSDP units)."""
    names = set()
    for m in model.modules():
        names.update(getattr(m, "_no_split_modules", None) or [])
    present = {type(m).__name__ for m in model.modules()}
    return sorted(names & present)


def _enable_checkpointing(model: torch.nn.Module) -> None:
    targets = [m for m in model.modules() if hasattr(m, "enable_gradient_checkpointing")
               and getattr(m, "_supports_gradient_checkpointing", False)]
    if not targets:
        raise UserError("this generator has no module that supports gradient checkpointing")
    for m in targets:
        m.enable_gradient_checkpointing()


def _has_gpu() -> bool:
    """Is there a device that accelerate would pick over CPU processes with gloo?"""
    xpu = getattr(torch, "xpu", None)
    return torch.cuda.is_available() or bool(xpu is not None and xpu.is_available())


# ----------------------------------------------------------------------------- the loop

def train_generator(cfg: TrainConfig, *, progress: bool = True) -> dict:
    """Train the generator; returns {"run_dir", "step", "final", "loss", "seconds"}.

    Call it in every process of an ``accelerate launch`` (or plainly, for one process).
    """
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, broadcast_object_list
    from tqdm.auto import tqdm

    from expportrait.data.datasets import ClipDataset, StepBatchSampler
    from expportrait.generator.config import get_preset
    from expportrait.generator.ema import EMA
    from expportrait.generator.flow import RESIDUAL_SIGMA_FLOOR, flow_matching_loss
    from expportrait.generator.model import GenCond, ReenactGenerator
    from expportrait.generator.vae import build_vae, encode_video

    validate(cfg)
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True)

    # 1. model (identical initialisation on every rank), dataset
    torch.manual_seed(cfg.seed)
    if cfg.init:
        model = ReenactGenerator.from_pretrained(cfg.init)
    elif cfg.wan_dir:
        model = ReenactGenerator.from_wan(get_preset(cfg.preset), cfg.wan_dir)
    else:
        model = ReenactGenerator(get_preset(cfg.preset))
    gen_config = model.config
    if cfg.grad_checkpointing:
        _enable_checkpointing(model)
    dataset = ClipDataset(cfg.data, cfg.num_frames or gen_config.num_frames, seed=cfg.seed,
                          frame_stride=cfg.frame_stride, with_appearance=gen_config.needs_appearance)
    if any(s % gen_config.spatial_factor for s in dataset.resolution):
        raise UserError(f"dataset resolution {dataset.resolution} is not a multiple of "
                        f"{gen_config.spatial_factor} (preset {gen_config.preset!r})")

    # 2. accelerator, run folder
    plugin = None
    if cfg.fsdp:
        from accelerate.utils import FullyShardedDataParallelPlugin
        plugin = FullyShardedDataParallelPlugin(
            fsdp_version=2, auto_wrap_policy="transformer_based_wrap",
            transformer_cls_names_to_wrap=_block_class_names(model),
            state_dict_type="SHARDED_STATE_DICT", reshard_after_forward=True)
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    accelerator = Accelerator(
        mixed_precision=cfg.mixed_precision, fsdp_plugin=plugin,
        cpu=launched > 1 and not _has_gpu(),  # torchrun-launched processes on a GPU-less machine
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=False)])
    rank, world = accelerator.process_index, accelerator.num_processes
    if world != launched:
        raise UserError(f"{launched} processes were launched but accelerate set up {world}; "
                        "every process would train alone")
    sharded = accelerator.distributed_type.name == "FSDP"
    if cfg.fsdp and not sharded:
        print("warning: fsdp ignored: accelerate shards only multi-GPU runs; training with "
              + ("DDP" if world > 1 else "one process"))
    if (world == 1 and os.environ.get("ACCELERATE_USE_CPU", "").lower() == "true"
            and "MASTER_PORT" in os.environ):
        print("note: `accelerate launch --cpu` starts one process unless MPI is configured "
              "(accelerate issue #2741); for N CPU processes use "
              "`accelerate launch --multi_gpu --num_processes N`")
    main = accelerator.is_main_process
    resume_run, resume_ckpt = resolve_resume(cfg)
    run_dir = Path(resume_run or cfg.out or next_run_dir(cfg.runs_dir, gen_config.preset))
    if cfg.resume is None and ((run_dir / "loss.jsonl").exists() or checkpoints(run_dir)):
        raise UserError(f"{run_dir} already holds a run: pass --resume latest to continue it, "
                        "or another --out")
    own_vae = run_dir / "vae"
    vae_dir = cfg.vae_dir or cfg.wan_dir or (own_vae if own_vae.is_dir() else None)
    picked = [str(run_dir), vae_dir and str(vae_dir)]
    broadcast_object_list(picked)  # rank 0 picks the numbered run folder and the VAE
    run_dir, vae_dir = Path(picked[0]), picked[1]
    torch.manual_seed(cfg.seed + 1)
    vae = build_vae(gen_config, vae_dir).requires_grad_(False).eval()  # seeded: same on every rank
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "train_config.json").write_text(
            json.dumps(to_dict(cfg), indent=2, sort_keys=True) + "\n")
        if vae_dir is None:
            print(f"warning: no vae_dir; training with a random VAE saved to {run_dir / 'vae'}")
            vae.save_pretrained(str(run_dir / "vae"))
    accelerator.wait_for_everyone()

    torch.manual_seed(cfg.seed * world + rank)  # per-rank seed (DiT)
    vae.to(accelerator.device)
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=cfg.lr,
                                  betas=tuple(cfg.adam_betas), eps=cfg.adam_eps,
                                  weight_decay=cfg.weight_decay)
    model, optimizer = accelerator.prepare(model, optimizer)  # together: FSDP2 swaps the parameters
    params = [p for p in model.parameters() if p.requires_grad]
    raw = accelerator.unwrap_model(model)
    ema = EMA(raw.named_parameters(), cfg.ema_decay) if cfg.ema_decay > 0 else None

    # 3. resume
    step = 0
    if resume_ckpt is not None:
        saved_config = json.loads((resume_ckpt / "model" / "config.json").read_text())
        changed = sorted(k for k, v in to_dict(gen_config).items() if saved_config.get(k) != v)
        if changed:
            raise UserError(f"cannot resume {resume_ckpt}: generator config differs in {changed}")
        try:
            accelerator.load_state(str(resume_ckpt / "state"))
        except RuntimeError as exc:  # e.g. the model code changed since the checkpoint
            raise UserError(f"cannot resume {resume_ckpt}: {str(exc).splitlines()[-1]}") from None
        saved = json.loads((resume_ckpt / "state" / "trainer_state.json").read_text())
        step = int(saved["step"])
        if ema is not None:
            ema.load(resume_ckpt / "state" / _ema_name(sharded, rank))
        if (saved["world_size"], saved["batch_size"], saved["grad_accum"], saved["seed"]) != (
                world, cfg.batch_size, cfg.grad_accum, cfg.seed) and main:
            print("warning: world size / batch / accumulation / seed differ from the saved run; "
                  "the data order will not continue exactly")
        if main:
            _truncate_log(run_dir / "loss.jsonl", step)
        accelerator.print(f"resumed from {resume_ckpt} at step {step}")
    accelerator.wait_for_everyone()

    if main and resume_ckpt is None:
        _truncate_log(run_dir / "loss.jsonl", 0)  # --resume latest before the first checkpoint
    # 4. data in a fixed order from the current step on
    sampler = StepBatchSampler(len(dataset), cfg.batch_size, seed=cfg.seed, rank=rank,
                               world_size=world, start_step=step * cfg.grad_accum,
                               num_steps=(cfg.max_steps - step) * cfg.grad_accum)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler,
                                         num_workers=cfg.num_workers)
    batches = iter(loader)

    def save(tag: str) -> Path:
        return _save_checkpoint(cfg, accelerator, model, ema, gen_config, run_dir, tag, step,
                                ReenactGenerator)

    shift = gen_config.flow_shift if cfg.shift is None else cfg.shift
    floor = RESIDUAL_SIGMA_FLOOR if gen_config.prediction == "ref_residual" else 0.0
    encode = _LatentEncoder(vae, encode_video, dataset if cfg.cache_latents else None)
    bar = tqdm(total=cfg.max_steps, initial=step, disable=not (progress and main), desc="train",
               dynamic_ncols=True)
    start_time, loss_value = time.perf_counter(), float("nan")
    model.train()
    while step < cfg.max_steps:
        for group in optimizer.param_groups:
            group["lr"] = lr_at(cfg, step)
        sums: dict[str, torch.Tensor] = {}
        for k in range(cfg.grad_accum):
            micro = step * cfg.grad_accum + k
            batch = {n: v.to(accelerator.device) for n, v in next(batches).items()}
            latents, ref_latents = encode(batch)          # (B, C, T, h, w), (B, C, 1, h, w)
            static = None
            if gen_config.residual_base == "warp":
                static = encode.warped(batch)             # (B, C, T, h, w)
            elif gen_config.prediction == "ref_residual":
                static = encode.static(batch)
            cond = GenCond(pose_normals=batch["pose_normals"], ref_normal=batch["ref_normal"],
                           ref_latents=ref_latents, appearance=batch.get("appearance"),
                           ref_static=static)
            last = k == cfg.grad_accum - 1
            # prepare() already wrapped the model's forward in the bf16/fp16 autocast (if any); the
            # noise, the interpolation and the MSE stay fp32
            with contextlib.nullcontext() if last else accelerator.no_sync(model):
                losses = flow_matching_loss(model, latents, cond, shift=shift,
                                            generator=step_generator(cfg.seed, world, rank, micro),
                                            cond_dropout=cfg.cond_dropout, sigma_floor=floor,
                                            face_weight=cfg.face_weight)
                accelerator.backward(losses["loss"] / cfg.grad_accum)
            for n, v in losses.items():
                sums[n] = sums.get(n, 0.0) + v.detach().float() / cfg.grad_accum
        grad_norm = (float(accelerator.clip_grad_norm_(params, cfg.max_grad_norm))
                     if cfg.max_grad_norm > 0 else None)  # before clipping
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if ema is not None:
            ema.update(raw.named_parameters())
        step += 1

        means = accelerator.reduce(torch.stack(list(sums.values())), reduction="mean")  # all ranks
        logged = {n: float(v) for n, v in zip(sums, means)}
        loss_value = logged["loss"]
        if main and (step % cfg.log_every == 0 or step == cfg.max_steps):
            record = {"step": step, **logged, "lr": lr_at(cfg, step - 1),
                      "grad_norm": grad_norm,
                      "seconds": round(time.perf_counter() - start_time, 3)}
            with open(run_dir / "loss.jsonl", "a") as fh:
                fh.write(json.dumps(record) + "\n")
        bar.update(1)
        bar.set_postfix(loss=f"{loss_value:.4f}")
        if step % cfg.save_every == 0 or step in (cfg.stop_after, cfg.max_steps):
            save(f"checkpoint-{step}")
            if step == cfg.stop_after:
                accelerator.wait_for_everyone()
                os.kill(os.getpid(), signal.SIGKILL)  # a hard kill right after the checkpoint
    bar.close()

    final = run_dir / "final"
    if main:  # the exports of the last checkpoint (always written at max_steps)
        _copy_exports(checkpoints(run_dir)[-1], final)
    if cfg.debug_hashes:
        (run_dir / "debug").mkdir(exist_ok=True)
        (run_dir / "debug" / f"weights-rank{rank}.txt").write_text(_weights_hash(raw) + "\n")
    accelerator.wait_for_everyone()
    seconds = time.perf_counter() - start_time
    accelerator.end_training()
    return {"run_dir": str(run_dir), "step": step, "final": str(final), "loss": loss_value,
            "seconds": seconds}


class _LatentEncoder:
    """Frozen-VAE encoding of a batch, optionally memoised per (clip, crop start) and per clip
    reference (the VAE is deterministic: with batch_size 1 a cached run equals an uncached one)."""

    def __init__(self, vae, encode_video, dataset=None):
        self.vae, self.encode_video, self.dataset = vae, encode_video, dataset
        self.cache: dict[tuple, torch.Tensor] = {}

    @torch.no_grad()
    def __call__(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """-> latents (B, C, T, h, w), reference latents (B, C, 1, h, w) (normalised)."""
        frames = batch["frames"]                   # (B, 3, F, H, W)
        ref = batch["ref_image"][:, :, None]       # (B, 3, 1, H, W)
        if self.dataset is None:
            return self.encode_video(self.vae, frames), self.encode_video(self.vae, ref)
        lat, ref_lat = [], []
        for i, key in enumerate(batch["key"].tolist()):
            clip = key % len(self.dataset)
            lat.append(self._get(("clip", clip, self.dataset.crop_start(key)), frames[i:i + 1]))
            ref_lat.append(self._get(("ref", clip), ref[i:i + 1]))
        return torch.cat(lat), torch.cat(ref_lat)

    @torch.no_grad()
    def static(self, batch: dict) -> torch.Tensor:
        """-> latents (B, C, T, h, w) of each reference held still for the clip's F frames."""
        f = batch["frames"].shape[2]
        ref = batch["ref_image"][:, :, None].expand(-1, -1, f, -1, -1)   # (B, 3, F, H, W)
        if self.dataset is None:
            return self.encode_video(self.vae, ref)
        return torch.cat([self._get(("static", key % len(self.dataset), f), ref[i:i + 1])
                          for i, key in enumerate(batch["key"].tolist())])

    @torch.no_grad()
    def warped(self, batch: dict) -> torch.Tensor:
        """-> latents (B, C, T, h, w) of each clip's warped reference (its appearance video)."""
        app = batch["appearance"]                  # (B, 3, F, H, W)
        if self.dataset is None:
            return self.encode_video(self.vae, app)
        return torch.cat([self._get(("warp", key % len(self.dataset), self.dataset.crop_start(key)),
                                    app[i:i + 1]) for i, key in enumerate(batch["key"].tolist())])

    def _get(self, key: tuple, video: torch.Tensor) -> torch.Tensor:
        if key not in self.cache:
            self.cache[key] = self.encode_video(self.vae, video).cpu()
        return self.cache[key].to(video.device)

