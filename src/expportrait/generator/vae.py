"""Wan VAE (diffusers ``AutoencoderKLWan``): build, and streamed / tiled encode and decode.

The Wan VAE is causal in time with a per-convolution feature cache; ``iter_encode`` and
``iter_decode`` drive its encoder / decoder chunk by chunk through that cache, so activation memory
does not grow with video length (only the output does), and results equal a one-shot
``vae.encode`` / ``vae.decode``. ``tile`` switches on diffusers' spatial tiling (overlapping tiles,
blended) so memory does not grow with resolution either.

Latents are normalised Wan-style: ``z_norm = (z - latents_mean) / latents_std``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import torch
from diffusers import AutoencoderKLWan
from torch import Tensor

from expportrait.errors import UserError
from expportrait.generator.config import GeneratorConfig, latent_frames, pixel_frames


def build_vae(config: GeneratorConfig, vae_dir: str | Path | None = None,
              torch_dtype: torch.dtype | None = None) -> AutoencoderKLWan:
    """A real Wan VAE from a local diffusers folder (pipeline root with ``vae/`` or the VAE folder),
    or, with ``vae_dir=None``, the config's VAE with random weights (tests; seed it yourself)."""
    if vae_dir is None:
        return AutoencoderKLWan(**config.vae_kwargs()).eval()
    folder = Path(vae_dir)
    if (folder / "vae" / "config.json").is_file():
        folder = folder / "vae"
    if not (folder / "config.json").is_file():
        raise UserError(f"{vae_dir}: no Wan VAE (config.json) found")
    try:
        vae = AutoencoderKLWan.from_pretrained(str(folder), local_files_only=True,
                                               torch_dtype=torch_dtype)
    except (OSError, ValueError) as exc:
        raise UserError(f"{folder}: cannot load the Wan VAE ({exc})") from None
    if vae.config.z_dim != config.z_dim:
        raise UserError(f"VAE z_dim {vae.config.z_dim} != generator z_dim {config.z_dim}")
    return vae.eval()


def _stats(vae: AutoencoderKLWan, like: Tensor) -> tuple[Tensor, Tensor]:
    """(1, C, 1, 1, 1) mean and std of the latents."""
    mean = torch.tensor(vae.config.latents_mean, device=like.device, dtype=like.dtype)
    std = torch.tensor(vae.config.latents_std, device=like.device, dtype=like.dtype)
    return mean.view(1, -1, 1, 1, 1), std.view(1, -1, 1, 1, 1)


def _vae_input(vae: AutoencoderKLWan, x: Tensor) -> Tensor:
    p = next(vae.parameters())
    return x.to(device=p.device, dtype=p.dtype)


def _set_tiling(vae: AutoencoderKLWan, tile: int | None) -> None:
    if tile is None:
        vae.use_tiling = False
        return
    if tile % 32:
        raise UserError(f"VAE tile must be a multiple of 32 pixels, got {tile}")
    stride = tile * 3 // 4 // 8 * 8
    vae.enable_tiling(tile_sample_min_height=tile, tile_sample_min_width=tile,
                      tile_sample_stride_height=stride, tile_sample_stride_width=stride)


def _causal_chunks(num: int, size: int) -> list[tuple[int, int]]:
    """Wan's causal time chunking: [0, 1) alone, then [1, 1 + size), ... up to ``num``."""
    return [(0, 1)] + [(s, min(s + size, num)) for s in range(1, num, size)]


@torch.no_grad()
def iter_encode(vae: AutoencoderKLWan, video: Tensor, chunk_frames: int = 4) -> Iterator[Tensor]:
    """Yield raw latent mean chunks ``(B, C, t, h, w)`` for ``video: (B, 3, F, H, W)`` in [-1, 1],
    F = 4k+1: first frame alone, then ``chunk_frames`` (a multiple of 4) frames at a time."""
    if chunk_frames < 4 or chunk_frames % 4:
        raise UserError(f"chunk_frames must be a positive multiple of 4, got {chunk_frames}")
    vae.clear_cache()
    try:
        for start, stop in _causal_chunks(video.shape[2], chunk_frames):
            vae._enc_conv_idx = [0]
            out = vae.encoder(_vae_input(vae, video[:, :, start:stop]),
                              feat_cache=vae._enc_feat_map, feat_idx=vae._enc_conv_idx)
            yield vae.quant_conv(out)[:, :vae.config.z_dim]   # mean half of (mu, logvar)
    finally:
        vae.clear_cache()


@torch.no_grad()
def iter_decode(vae: AutoencoderKLWan, latents: Tensor, chunk: int = 1) -> Iterator[Tensor]:
    """Yield pixel chunks ``(B, 3, f, H, W)`` in [-1, 1] for raw (un-normalised) latents
    ``(B, C, T, h, w)``: latent frame 0 -> 1 frame, each later latent frame -> 4 frames."""
    if chunk < 1:
        raise UserError(f"decode chunk must be >= 1, got {chunk}")
    vae.clear_cache()
    try:
        for start, stop in _causal_chunks(latents.shape[2], chunk):
            vae._conv_idx = [0]
            z = vae.post_quant_conv(_vae_input(vae, latents[:, :, start:stop]))
            out = vae.decoder(z, feat_cache=vae._feat_map, feat_idx=vae._conv_idx,
                              first_chunk=start == 0)
            yield out.clamp(-1.0, 1.0)
    finally:
        vae.clear_cache()


@torch.no_grad()
def encode_video(vae: AutoencoderKLWan, video: Tensor, chunk_frames: int = 4,
                 tile: int | None = None) -> Tensor:
    """``video: (B, 3, F, H, W)`` in [-1, 1], F = 4k+1 -> normalised latents ``(B, C, T, h, w)``,
    T = (F - 1) // 4 + 1, h = H / 8 (posterior mean). ``tile``: spatial tile size in pixels."""
    if video.ndim != 5 or video.shape[1] != 3:
        raise UserError(f"video must be (B, 3, F, H, W), got {tuple(video.shape)}")
    if (video.shape[2] - 1) % 4:
        raise UserError(f"video needs 4k+1 frames, got {video.shape[2]}")
    if video.shape[-1] % 8 or video.shape[-2] % 8:
        raise UserError(f"video height/width must be multiples of 8, got {tuple(video.shape[-2:])}")
    _set_tiling(vae, tile)
    if tile is not None and max(video.shape[-2:]) > tile:
        z = vae.encode(_vae_input(vae, video)).latent_dist.mode()
    else:
        z = torch.cat(list(iter_encode(vae, video, chunk_frames)), 2)   # (B, C, T, h, w)
    mean, std = _stats(vae, z)
    return (z - mean) / std


@torch.no_grad()
def decode_latents(vae: AutoencoderKLWan, latents: Tensor, chunk: int = 1,
                   tile: int | None = None) -> Tensor:
    """Normalised latents ``(B, C, T, h, w)`` -> video ``(B, 3, F, H, W)`` in [-1, 1],
    F = 4 (T - 1) + 1, H = 8 h. Output is written into one preallocated tensor."""
    mean, std = _stats(vae, latents)
    z = latents * std + mean
    _set_tiling(vae, tile)
    if tile is not None and max(latents.shape[-2:]) * 8 > tile:
        return vae.decode(_vae_input(vae, z)).sample
    b, _, t, h, w = latents.shape
    out = None
    pos = 0
    for piece in iter_decode(vae, z, chunk):
        if out is None:
            out = piece.new_empty(b, 3, pixel_frames(t), piece.shape[-2], piece.shape[-1])
        out[:, :, pos:pos + piece.shape[2]] = piece
        pos += piece.shape[2]
    return out


def vae_loss(vae: AutoencoderKLWan, video: Tensor, kl_weight: float = 1e-6,
             generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """Reconstruction loss for training a small VAE (demo preset; the real Wan VAE is frozen).

    ``video: (B, 3, F, H, W)`` in [-1, 1], F = 4k+1. Returns ``{"loss", "loss/l1", "loss/kl"}``.
    """
    post = vae.encode(video).latent_dist
    z = post.sample(generator=generator)
    rec = vae.decode(z).sample
    l1 = (rec.float() - video.float()).abs().mean()
    kl = post.kl().mean() / z[0].numel()
    return {"loss": l1 + kl_weight * kl, "loss/l1": l1, "loss/kl": kl}


def _grad_l1(a: Tensor, b: Tensor) -> Tensor:
    """Mean L1 distance of the horizontal and vertical finite differences of (..., H, W) tensors."""
    dx = lambda x: x[..., :, 1:] - x[..., :, :-1]   # noqa: E731
    dy = lambda x: x[..., 1:, :] - x[..., :-1, :]   # noqa: E731
    return 0.5 * ((dx(a) - dx(b)).abs().mean() + (dy(a) - dy(b)).abs().mean())


def decoder_loss(vae: AutoencoderKLWan, video: Tensor, edge_weight: float = 1.0,
                 latent_noise: float = 0.0, generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """Loss for training the decoder alone on a frozen encoder (the latent space a generator was
    trained in stays as it is): the posterior mean, plus ``latent_noise`` times its per-channel
    std as Gaussian noise (robustness to a generator's imperfect latents), is decoded and compared
    with L1 on the pixels and ``edge_weight`` x L1 on their spatial differences (edges; plain L1
    alone gives the soft faces a face detector misses).

    ``video: (B, 3, F, H, W)`` in [-1, 1], F = 4k+1. Returns ``{"loss", "loss/l1", "loss/edge"}``.
    """
    with torch.no_grad():
        z = vae.encode(video).latent_dist.mode()
        if latent_noise > 0:
            std = z.std(dim=(0, 2, 3, 4), keepdim=True)
            noise = torch.randn(z.shape, generator=generator, dtype=z.dtype).to(z.device)
            z = z + latent_noise * std * noise
    rec = vae.decode(z).sample.float()
    l1 = (rec - video.float()).abs().mean()
    edge = _grad_l1(rec, video.float())
    return {"loss": l1 + edge_weight * edge, "loss/l1": l1, "loss/edge": edge}


__all__ = ["build_vae", "encode_video", "decode_latents", "iter_encode", "iter_decode",
           "vae_loss", "decoder_loss", "latent_frames"]
