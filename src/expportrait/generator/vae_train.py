"""Train a small Wan VAE (``AutoencoderKLWan`` of a preset, e.g. demo) on prepared clips.

No Wan VAE weights ship offline, so the demo generator's frozen VAE is trained here first:
Adam on ``vae.vae_loss`` (L1 + tiny KL) over random ``num_frames``-frame crops (and the reference
images as 1-frame videos) of the clip frames, random horizontal flips. At the end the per-channel
latent mean/std over the data are measured and written into the VAE config (``latents_mean`` /
``latents_std``), so ``encode_video`` returns roughly unit-variance latents as the flow-matching
generator expects. Output: a diffusers folder (``vae.save_pretrained``) loadable with
``build_vae(config, vae_dir=OUT)``, plus ``OUT/train_vae.json`` (config, loss curve, seconds).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from expportrait.config import to_dict
from expportrait.errors import UserError


@dataclass(frozen=True)
class TrainVAEConfig:
    data: str = ""                 # clip dataset folder (manifest.json)
    out: str = ""                  # output diffusers VAE folder
    preset: str = "demo"           # GeneratorConfig preset giving the VAE architecture
    init: str | None = None        # start from this VAE folder
    steps: int = 2000
    batch_size: int = 4
    num_frames: int = 5            # frames per training crop, 4k+1
    image_fraction: float = 0.5    # share of steps on single frames (2x batch; cheap, the reference path)
    lr: float = 1e-3
    kl_weight: float = 1e-6
    seed: int = 0
    log_every: int = 50
    threads: int | None = None     # torch CPU threads (None: torch's default)
    fp16: bool = False             # save the weights as float16
    decoder_only: bool = False     # train the decoder alone on init's frozen encoder (keeps the
                                   # latent space, and its latents_mean/std, a generator uses)
    edge_weight: float = 1.0       # decoder_only: weight of the L1 on spatial differences
    latent_noise: float = 0.0      # decoder_only: Gaussian noise on the latents, x their std


def _validate(cfg: TrainVAEConfig) -> None:
    if not cfg.data or not cfg.out:
        raise UserError("train-vae needs --data DATASET and --out DIR")
    if cfg.steps < 1 or cfg.batch_size < 1 or cfg.lr <= 0:
        raise UserError("--steps, --batch-size must be >= 1 and --lr > 0")
    if cfg.num_frames < 1 or (cfg.num_frames - 1) % 4:
        raise UserError(f"--num-frames must be 4k+1, got {cfg.num_frames}")
    if cfg.decoder_only and not cfg.init:
        raise UserError("--decoder-only needs --init VAE (the encoder it keeps)")


def _batch(dataset, keys: list[int], frames: int, gen: torch.Generator) -> torch.Tensor:
    """(B, 3, frames, H, W) in [-1, 1] from dataset items (frames, or the reference image)."""
    out = []
    for k in keys:
        item = dataset[k]
        if frames == 1:
            v = item["ref_image"][:, None]                              # (3, 1, H, W)
        else:
            v = item["frames"]                                          # (3, F, H, W)
        if torch.rand((), generator=gen) < 0.5:
            v = v.flip(-1)
        out.append(v)
    return torch.stack(out)


def train_vae(cfg: TrainVAEConfig, progress: bool = True) -> dict:
    """-> {"out", "steps", "loss_l1", "seconds", "psnr"}; writes the VAE folder atomically-ish
    (``OUT.tmp`` renamed at the end)."""
    import shutil

    from tqdm.auto import tqdm

    from expportrait.data.datasets import ClipDataset
    from expportrait.generator.config import get_preset
    from expportrait.generator.vae import build_vae, decoder_loss, vae_loss

    _validate(cfg)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    gcfg = get_preset(cfg.preset)
    vae = build_vae(gcfg, cfg.init, torch_dtype=torch.float32) if cfg.init else build_vae(gcfg)
    dataset = ClipDataset(cfg.data, cfg.num_frames, seed=cfg.seed)
    if any(s % 8 for s in dataset.resolution):
        raise UserError(f"clip resolution {dataset.resolution} is not a multiple of 8")
    params = list(vae.parameters())
    if cfg.decoder_only:
        params = list(vae.decoder.parameters()) + list(vae.post_quant_conv.parameters())
        vae.requires_grad_(False)
        for p in params:
            p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    log, start, key = [], time.perf_counter(), 0
    vae.train()
    bar = tqdm(range(cfg.steps), desc="train-vae", disable=not progress, dynamic_ncols=True)
    for step in bar:
        keys = list(range(key, key + cfg.batch_size))
        key += cfg.batch_size
        single = torch.rand((), generator=gen) < cfg.image_fraction
        if single:  # single frames cost ~1/4 of a clip: use twice the batch
            keys = keys + list(range(key, key + cfg.batch_size))
            key += cfg.batch_size
        video = _batch(dataset, keys, 1 if single else cfg.num_frames, gen)
        if cfg.decoder_only:
            vae.encoder.eval()
            losses = decoder_loss(vae, video, edge_weight=cfg.edge_weight, latent_noise=cfg.latent_noise,
                                  generator=gen)
        else:
            losses = vae_loss(vae, video, kl_weight=cfg.kl_weight, generator=gen)
        opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        l1 = float(losses["loss/l1"].detach())
        bar.set_postfix(l1=f"{l1:.4f}")
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            log.append({"step": step + 1, "seconds": round(time.perf_counter() - start, 2),
                        **{k.removeprefix("loss/"): float(v.detach()) for k, v in losses.items()
                           if k != "loss"}})
    vae.eval()
    # measured on clips as long as the generator's (a VAE trained on short crops can fall apart
    # on the later frames of a longer clip: its causal cache never saw them)
    eval_frames = max(cfg.num_frames, gcfg.num_frames)
    mean, std, psnr = latent_stats(vae, ClipDataset(cfg.data, eval_frames, seed=cfg.seed), eval_frames)
    if cfg.decoder_only:   # the encoder did not change: keep the normalisation the generator knows
        mean, std = list(vae.config.latents_mean), list(vae.config.latents_std)
    vae.register_to_config(latents_mean=mean, latents_std=std)
    out = Path(cfg.out)
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    (vae.half() if cfg.fp16 else vae).save_pretrained(str(tmp))
    seconds = time.perf_counter() - start
    report = {"config": to_dict(cfg), "log": log, "seconds": round(seconds, 1),
              "reconstruction_psnr": psnr, "eval_frames": eval_frames, "latents_mean": mean,
              "latents_std": std}
    (tmp / "train_vae.json").write_text(json.dumps(report, indent=2) + "\n")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return {"out": str(out), "steps": cfg.steps, "loss_l1": log[-1]["l1"] if log else None,
            "seconds": seconds, "psnr": psnr}


@torch.no_grad()
def latent_stats(vae, dataset, num_frames: int, max_clips: int = 32) -> tuple[list, list, float]:
    """Per-channel mean / std of the raw latent means over (up to ``max_clips``, spread over the
    dataset) clips, and the reconstruction PSNR (dB, frames in [0, 255]) of those clips."""
    from expportrait.generator.vae import decode_latents, encode_video
    zs, se, n = [], 0.0, 0
    C = vae.config.z_dim
    ident_mean, ident_std = vae.config.latents_mean, vae.config.latents_std
    vae.register_to_config(latents_mean=[0.0] * C, latents_std=[1.0] * C)   # raw latents
    try:
        for k in range(0, len(dataset), max(1, -(-len(dataset) // max_clips))):  # spread out
            video = dataset[k]["frames"][None]                                 # (1, 3, F, H, W)
            z = encode_video(vae, video)                                       # (1, C, T, h, w)
            zs.append(z.movedim(1, -1).reshape(-1, C))
            rec = decode_latents(vae, z)
            se += float(((rec - video) * 127.5).pow(2).sum())
            n += video.numel()
    finally:
        vae.register_to_config(latents_mean=ident_mean, latents_std=ident_std)
    z = torch.cat(zs)                                                          # (N, C)
    mse = se / max(n, 1)
    psnr = float(10 * torch.log10(torch.tensor(255.0 ** 2 / max(mse, 1e-10))))
    return z.mean(0).tolist(), z.std(0).clamp_min(1e-3).tolist(), round(psnr, 2)
