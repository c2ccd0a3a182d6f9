"""Long videos: sliding windows over latent time, blended at every sampling step.

At each step the full latent ``x: (B, C, T, h, w)`` is cut into windows of ``window`` latent frames
that overlap by ``overlap``; each window's velocity is predicted with its own slice of the pose
normals (and appearance), and the velocities are averaged with linear ramps in the overlaps before
the sampler's step. The sampler therefore sees one ordinary ``model_fn`` over the whole latent
(Euler and UniPC both work), neighbouring windows agree at every step (no seams), and peak memory is
one window's activations: only the latents (C = 16 values per 8x8 pixels) grow with length.

Window-to-frame mapping: window latent frames ``[s, s + w)`` get pixel frames ``[4s, 4(s+w-1)+1)``
(the window's first latent plays Wan's causal "single first frame" role for frame 4s).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from expportrait.errors import UserError
from expportrait.generator.config import latent_frames
from expportrait.generator.sampling import (ModelFn, get_sigmas, guided_model_fn, sample_euler,
                                            sample_unipc)
from expportrait.generator.vae import decode_latents


def window_starts(total: int, window: int, overlap: int) -> list[int]:
    """Start latent frames of windows covering ``[0, total)``; the last window ends at ``total``."""
    if window < 1 or not 0 <= overlap < window:
        raise UserError(f"need window >= 1 and 0 <= overlap < window, got {window}, {overlap}")
    if total <= window:
        return [0]
    starts = list(range(0, total - window, window - overlap)) + [total - window]
    return sorted(set(starts))


def window_weights(starts: list[int], window: int, total: int) -> list[Tensor]:
    """Per-window ``(w,)`` blending weights: 1 inside, linear ramps over the actual overlap with
    each neighbour; the weights of all windows covering a frame sum to 1."""
    w = min(window, total)
    raw = []
    for k, s in enumerate(starts):
        weight = torch.ones(w, dtype=torch.float64)
        if k > 0:
            left = starts[k - 1] + w - s                       # frames shared with the previous
            if left > 0:
                weight[:left] = torch.arange(1, left + 1, dtype=torch.float64) / (left + 1)
        if k + 1 < len(starts):
            right = s + w - starts[k + 1]                      # frames shared with the next
            if right > 0:
                ramp = torch.arange(right, 0, -1, dtype=torch.float64) / (right + 1)
                weight[w - right:] = torch.minimum(weight[w - right:], ramp)
        raw.append(weight)
    total_w = torch.zeros(total, dtype=torch.float64)
    for s, weight in zip(starts, raw):
        total_w[s:s + w] += weight
    return [(weight / total_w[s:s + w]).float() for s, weight in zip(starts, raw)]


def windowed_model_fn(window_fn: Callable[[int, int], ModelFn], total: int, window: int,
                      overlap: int, on_window: Callable[[int, int], None] | None = None) -> ModelFn:
    """A ``model_fn`` over ``T = total`` latent frames from per-window model functions.

    ``window_fn(start, stop) -> model_fn`` for latent frames ``[start, stop)``; velocities are
    blended with ``window_weights``. ``on_window(start, stop)`` is called for every window call.
    """
    starts = window_starts(total, window, overlap)
    weights = window_weights(starts, window, total)
    w = min(window, total)

    def model_fn(x: Tensor, sigma: Tensor) -> Tensor:
        if x.shape[2] != total:
            raise UserError(f"latents have {x.shape[2]} frames, windows were planned for {total}")
        out = torch.zeros_like(x)                               # (B, C, T, h, w)
        for s, weight in zip(starts, weights):
            if on_window is not None:
                on_window(s, s + w)
            v = window_fn(s, s + w)(x[:, :, s:s + w], sigma)    # (B, C, w, h, w)
            out[:, :, s:s + w] += v.to(x.dtype) * weight.to(x).view(1, 1, -1, 1, 1)
        return out

    return model_fn


def window_cond(cond, start: int, stop: int):
    """``GenCond`` for latent frames ``[start, stop)``: pixel frames ``[4 start, 4 (stop-1) + 1)``."""
    return cond.frames(4 * start, 4 * (stop - 1) + 1)


@torch.no_grad()
def sample_long(model, cond, noise: Tensor, *, steps: int, shift: float, cfg_scale: float = 1.0,
                window: int | None = None, overlap: int | None = None, sampler: str = "euler",
                callback: Callable[[dict], None] | None = None) -> Tensor:
    """Clean latents ``(B, C, T, h, w)`` from unit ``noise`` of the same shape, ``cond`` covering
    ``4 (T - 1) + 1`` pixel frames. ``window`` / ``overlap`` in latent frames (default: the
    preset's clip length and a quarter of it)."""
    total = noise.shape[2]
    window = window or model.config.latent_frames
    overlap = max(1, window // 4) if overlap is None else overlap
    if window <= 1:
        overlap = 0

    def window_fn(start: int, stop: int) -> ModelFn:
        # condition features are recomputed per window and step: constant memory in T
        return guided_model_fn(model, window_cond(cond, start, stop), cfg_scale, cache=False)

    model_fn = windowed_model_fn(window_fn, total, window, overlap)
    if sampler == "euler":
        return sample_euler(model_fn, noise, get_sigmas(steps, shift, noise.device),
                            callback=callback)
    if sampler == "unipc":
        return sample_unipc(model_fn, noise, steps, shift, callback=callback)
    raise UserError(f"unknown sampler {sampler!r}; use 'euler' or 'unipc'")


@torch.no_grad()
def generate(model, vae, cond, num_frames: int | None = None, steps: int | None = None,
             seed: int = 0, window: int | None = None, overlap: int | None = None, *,
             cfg_scale: float | None = None, shift: float | None = None, sampler: str = "euler",
             decode_chunk: int = 1, tile: int | None = None,
             callback: Callable[[dict], None] | None = None) -> Tensor:
    """Generate a reenacted video ``(B, 3, F, H, W)`` in [-1, 1].

    ``model``: ``ReenactGenerator``; ``vae``: its ``AutoencoderKLWan``; ``cond``: ``GenCond`` whose
    ``pose_normals`` (and ``appearance``) have at least ``num_frames`` frames (default: all of them);
    any F works (internally padded to 4k+1 by repeating the last frame, then cut). ``steps``,
    ``cfg_scale``, ``shift`` default to the preset. The initial noise comes from one CPU generator
    seeded with ``seed``, so results do not depend on the device or the window layout.
    """
    cfgn = model.config
    have = cond.pose_normals.shape[2]
    num_frames = num_frames or have
    if num_frames > have:
        raise UserError(f"asked for {num_frames} frames but the pose normals have {have}")
    padded = (num_frames - 1 + 3) // 4 * 4 + 1                     # next 4k+1
    cond = cond.frames(0, num_frames)
    if padded > num_frames:
        cond = _pad_frames(cond, padded - num_frames)
    b, _, _, h, w = cond.ref_latents.shape
    total = latent_frames(padded)
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn((b, cfgn.z_dim, total, h, w), generator=gen).to(cond.ref_latents.device)
    latents = sample_long(model, cond, noise, steps=steps or cfgn.sample_steps,
                          shift=cfgn.flow_shift if shift is None else shift,
                          cfg_scale=cfgn.cfg_scale if cfg_scale is None else cfg_scale,
                          window=window, overlap=overlap, sampler=sampler, callback=callback)
    video = decode_latents(vae, latents, chunk=decode_chunk, tile=tile)   # (B, 3, padded, H, W)
    return video[:, :, :num_frames]


def _pad_frames(cond, n: int):
    """Repeat the last pose / appearance frame ``n`` times."""
    from dataclasses import replace

    def pad(x):
        return None if x is None else torch.cat([x, x[:, :, -1:].expand(-1, -1, n, -1, -1)], 2)

    return replace(cond, pose_normals=pad(cond.pose_normals), appearance=pad(cond.appearance))
