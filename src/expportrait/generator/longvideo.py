"""Long videos: a chain of clips of the trained length that share one frame.

The generator is trained on clips of ``F = 4 (T - 1) + 1`` pixel frames whose first latent frame is
Wan's causal single-frame latent. A long video is therefore cut in *pixel* time into clips of that
length, consecutive clips sharing one frame: clip k covers frames ``[k (F-1), k (F-1) + F)`` (the last
one may be shorter). Clip 0 is sampled exactly as in training. Clip k > 0 continues from the frame
clip k-1 ended on: that frame is VAE-encoded alone, so it is again a single-frame latent ``z0``, and
while the clip is sampled its first latent is held on the straight flow path from its noise ``n0`` to
``z0`` (velocity ``n0 - z0``, exact under Euler and UniPC) while the model predicts the other latents
seeing it at every step (replacement-style continuation). Every clip is decoded on its own (each
latent sequence starts with a single-frame latent, as the causal VAE was trained); the shared frame
is taken from the earlier clip. Peak memory: one clip's latents and activations, plus the pixels.

Why not latent windows blended at every step (this module's earlier design): a window starting at
latent s > 0 has a four-frame latent in the single-frame slot, which the model never saw in
training. Measured on the demo's self-reenactment (carphone frames 60-119, shipped checkpoint, seed
0): face-crop PSNR 13.24 dB with blended windows against 13.86 dB with independent clips; with the
blended windows the face dissolved from frame ~16 (the second window) on.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

import torch
from torch import Tensor

from expportrait.errors import UserError
from expportrait.generator.config import latent_frames, pixel_frames
from expportrait.generator.sampling import (GUIDE, ModelFn, get_sigmas, guided_model_fn, sample_euler,
                                            sample_unipc)
from expportrait.generator.vae import decode_latents, encode_video


def clip_spans(num_frames: int, clip: int) -> list[tuple[int, int]]:
    """Pixel-frame spans ``[a, b)`` of at most ``clip`` frames covering ``[0, num_frames)``;
    consecutive spans share one frame (``a_{k+1} = b_k - 1``)."""
    if clip < 2:
        raise UserError(f"clips need at least 2 frames to be chained, got {clip}")
    if num_frames < 1:
        raise UserError(f"need at least one frame, got {num_frames}")
    spans, a = [], 0
    while True:
        b = min(a + clip, num_frames)
        spans.append((a, b))
        if b == num_frames:
            return spans
        a = b - 1


def known_first_model_fn(model_fn: ModelFn, z0: Tensor, noise0: Tensor) -> ModelFn:
    """``model_fn`` whose latent frame 0 is known: its velocity is the straight path's
    ``noise0 - z0`` (``z0``, ``noise0``: ``(B, C, 1, h, w)``), so starting from ``noise0`` at sigma 1
    it is ``(1 - sigma) z0 + sigma noise0`` at every step; the other frames are the model's."""
    def fn(x: Tensor, sigma: Tensor) -> Tensor:
        v = model_fn(x, sigma)
        return torch.cat([(noise0 - z0).to(v), v[:, :, 1:]], 2)
    return fn


@torch.no_grad()
def sample_clip(model, cond, noise: Tensor, *, steps: int, shift: float, cfg_scale: float = 1.0,
                guide: tuple[str, ...] = GUIDE, sampler: str = "euler", first: Tensor | None = None,
                callback: Callable[[dict], None] | None = None) -> Tensor:
    """Clean latents ``(B, C, T, h, w)`` for one clip from unit ``noise`` of that shape; ``cond``
    covers ``4 (T - 1) + 1`` pixel frames; ``first``: known latent frame 0 ``(B, C, 1, h, w)``;
    ``guide``: the conditions the unconditional pass of classifier-free guidance drops."""
    model_fn = guided_model_fn(model, cond, cfg_scale, drop=guide)
    if first is not None:
        model_fn = known_first_model_fn(model_fn, first, noise[:, :, :1])
    if sampler == "euler":
        return sample_euler(model_fn, noise, get_sigmas(steps, shift, noise.device), callback=callback)
    if sampler == "unipc":
        return sample_unipc(model_fn, noise, steps, shift, callback=callback)
    raise UserError(f"unknown sampler {sampler!r}; use 'euler' or 'unipc'")


@torch.no_grad()
def generate(model, vae, cond, num_frames: int | None = None, steps: int | None = None,
             seed: int = 0, window: int | None = None, *, cfg_scale: float | None = None,
             guide: tuple[str, ...] = GUIDE, shift: float | None = None, sampler: str = "euler",
             decode_chunk: int = 1, tile: int | None = None,
             callback: Callable[[dict], None] | None = None) -> Tensor:
    """Generate a reenacted video ``(B, 3, F, H, W)`` in [-1, 1].

    ``model``: ``ReenactGenerator``; ``vae``: its ``AutoencoderKLWan``; ``cond``: ``GenCond`` whose
    ``pose_normals`` (and ``appearance``) have at least ``num_frames`` frames (default: all of them);
    any F works. ``window``: latent frames per clip (default: the preset's training clip, so clips
    of ``4 (window - 1) + 1`` pixel frames). ``steps``, ``cfg_scale``, ``shift`` default to the
    preset; ``guide``: the conditions guidance is on (dropped in the unconditional pass;
    ``("pose",)`` strengthens only the driving normals). Noise comes from one CPU generator seeded
    with ``seed`` (device-independent).
    ``callback`` gets the sampler's per-step dict plus ``"clip"`` and ``"clips"``.
    """
    cfgn = model.config
    have = cond.pose_normals.shape[2]
    num_frames = num_frames or have
    if num_frames > have:
        raise UserError(f"asked for {num_frames} frames but the pose normals have {have}")
    clip = pixel_frames(window or cfgn.latent_frames)
    spans = clip_spans(num_frames, clip)
    steps = steps or cfgn.sample_steps
    shift = cfgn.flow_shift if shift is None else shift
    cfg_scale = cfgn.cfg_scale if cfg_scale is None else cfg_scale
    b, _, _, h, w = cond.ref_latents.shape
    gen = torch.Generator().manual_seed(seed)
    pieces, last = [], None                                        # last: (B, 3, 1, H, W)
    for k, (a, e) in enumerate(spans):
        n = e - a
        padded = (n - 1 + 3) // 4 * 4 + 1                          # next 4k+1
        c = _pad_frames(cond.frames(a, e), padded - n)
        if cfgn.residual_base == "warp":                           # the base: this clip's warp
            if c.appearance is None:
                raise UserError("this generator's base is the warped reference: GenCond.appearance is missing")
            c = replace(c, ref_static=encode_video(vae, c.appearance, tile=tile))
        noise = torch.randn((b, cfgn.z_dim, latent_frames(padded), h, w), generator=gen)
        noise = noise.to(cond.ref_latents.device)
        first = None if last is None else encode_video(vae, last.clamp(-1, 1), tile=tile)
        cb = None if callback is None else (lambda d, k=k: callback({**d, "clip": k, "clips": len(spans)}))
        latents = sample_clip(model, c, noise, steps=steps, shift=shift, cfg_scale=cfg_scale,
                              guide=guide, sampler=sampler, first=first, callback=cb)
        video = decode_latents(vae, latents, chunk=decode_chunk, tile=tile)[:, :, :n]  # (B, 3, n, H, W)
        pieces.append(video if k == 0 else video[:, :, 1:])
        last = video[:, :, -1:]
    return torch.cat(pieces, 2)


def _pad_frames(cond, n: int):
    """Repeat the last pose / appearance frame ``n`` times."""
    if n == 0:
        return cond

    def pad(x):
        return None if x is None else torch.cat([x, x[:, :, -1:].expand(-1, -1, n, -1, -1)], 2)

    return replace(cond, pose_normals=pad(cond.pose_normals), appearance=pad(cond.appearance))


def _unit(x) -> Tensor:
    """uint8 (..., H, W, 3) -> float32 (..., 3, H, W) in [-1, 1]."""
    import numpy as np
    return torch.from_numpy(np.ascontiguousarray(x)).movedim(-1, -3).float() / 127.5 - 1.0


def _frames_uint8(video: Tensor):
    """(3, F, H, W) in [-1, 1] (clamped) -> (F, H, W, 3) uint8; the inverse of ``_unit``."""
    out = (video.permute(1, 2, 3, 0).float().cpu().clamp(-1, 1) + 1) * 127.5 + 0.5
    return out.to(torch.uint8).numpy()


@torch.no_grad()
def generate_crops(model, vae, ref_crop, ref_normal, pose_normals, *, warped=None,
                   steps: int | None = None, seed: int = 0, window: int | None = None,
                   cfg_scale: float | None = None, guide: tuple[str, ...] = GUIDE,
                   sampler: str = "euler", device="cpu"):
    """ref_crop, ref_normal (S, S, 3) uint8, pose_normals (F, S, S, 3) uint8 (``warped``: the
    (F, S, S, 3) uint8 warped reference crops a residual_base "warp" generator starts from)
    -> (F, S, S, 3) uint8 generated crops: the reference VAE-encoded, clips of the trained length
    sampled and chained (``generate``)."""
    from expportrait.generator.model import GenCond
    model.to(device)
    vae.to(device)
    ref = _unit(ref_crop)[None, :, None].to(device)                              # (1, 3, 1, S, S)
    gcfg = model.config
    if gcfg.residual_base == "warp" and warped is None:  # its base: the warp, encoded per clip
        raise UserError("this generator starts from the warped reference: pass warped crops")
    if gcfg.prediction == "ref_residual" and gcfg.residual_base == "reference":  # held still
        static = encode_video(vae, ref.expand(-1, -1, pixel_frames(window or gcfg.latent_frames), -1, -1))
        ref_latents = static[:, :, :1]       # the causal VAE's first latent is the frame's own
    else:
        static, ref_latents = None, encode_video(vae, ref)
    cond = GenCond(pose_normals=_unit(pose_normals).permute(1, 0, 2, 3)[None].to(device),  # (1, 3, F, S, S)
                   ref_normal=_unit(ref_normal)[None].to(device),                 # (1, 3, S, S)
                   ref_latents=ref_latents,                                       # (1, C, 1, h, w)
                   ref_static=static,                                             # (1, C, T, h, w)
                   appearance=None if warped is None
                   else _unit(warped).permute(1, 0, 2, 3)[None].to(device))       # (1, 3, F, S, S)
    video = generate(model, vae, cond, steps=steps, seed=seed, window=window, cfg_scale=cfg_scale,
                     guide=guide, sampler=sampler)                                # (1, 3, F, S, S)
    return _frames_uint8(video[0])                                                # (F, S, S, 3)
