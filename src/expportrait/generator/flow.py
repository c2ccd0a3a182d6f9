"""Wan-style rectified-flow objective, as pure functions.

Convention (Wan2.1 / diffusers ``FlowMatchEulerDiscreteScheduler``): sigma in (0, 1) is the noise
level, ``x_sigma = (1 - sigma) x0 + sigma noise``, the network sees ``timestep = 1000 sigma`` and
predicts the velocity ``v = noise - x0`` (so ``dx/dsigma = v``). Timesteps are shifted towards high
noise with ``shift(sigma) = s sigma / (1 + (s - 1) sigma)`` (Wan uses s = 3..5 at 480p).
"""
from __future__ import annotations

import torch
from torch import Tensor

from expportrait.generator.config import TEMPORAL_COMPRESSION, pixel_frames

NUM_TRAIN_TIMESTEPS = 1000.0
SIGMA_EPS = 1e-4
RESIDUAL_SIGMA_FLOOR = 0.25   # "ref_residual" models: below it the loss is x0-MSE / floor^2


def shift_sigmas(sigma: Tensor, shift: float) -> Tensor:
    """``s sigma / (1 + (s - 1) sigma)``, elementwise, keeps 0 -> 0 and 1 -> 1."""
    return shift * sigma / (1.0 + (shift - 1.0) * sigma)


def sample_timesteps(batch: int, shift: float, generator: torch.Generator | None = None,
                     device=None) -> Tensor:
    """``(B,)`` training sigmas in (0, 1): uniform, then Wan's shift (``shift=1``: uniform)."""
    u = torch.rand(batch, generator=generator, device=_gen_device(generator))
    sigma = shift_sigmas(u, shift).clamp(SIGMA_EPS, 1.0 - SIGMA_EPS)
    return sigma.to(device) if device is not None else sigma


def add_noise(latents0: Tensor, noise: Tensor, sigma: Tensor) -> Tensor:
    """``x_sigma = (1 - sigma) x0 + sigma noise``; ``sigma: (B,)``, latents ``(B, C, T, h, w)``."""
    s = sigma.view(-1, *([1] * (latents0.ndim - 1))).to(latents0.dtype)
    return (1.0 - s) * latents0 + s * noise


def drop_masks(batch: int, p: float, keys: tuple[str, ...] = ("pose", "ref"),
               generator: torch.Generator | None = None, device=None) -> dict[str, Tensor]:
    """Independent per-sample condition-dropout masks ``{key: (B,) bool}`` (True = dropped)."""
    masks = {}
    for key in keys:
        u = torch.rand(batch, generator=generator, device=_gen_device(generator))
        masks[key] = (u < p).to(device) if device is not None else u < p
    return masks


def face_weights(pose_normals: Tensor, latent_shape: tuple[int, ...], face_weight: float) -> Tensor:
    """``(B, 1, T, h, w)`` loss weights ``1 + face_weight * m`` for latents of ``latent_shape``.

    ``pose_normals: (B, 3, F, H, W)`` in [-1, 1], background -1 (black); ``m`` in [0, 1] is the
    fraction of a latent cell's pixels the rendered head covers, taken over the pixel frames the
    cell encodes (Wan's causal VAE: latent frame 0 <- frame 0, latent k <- frames 4k-3..4k; max).
    """
    b, _, t, h, w = latent_shape
    covered = (pose_normals.float() > -0.9).any(dim=1).float()                    # (B, F, H, W)
    covered = torch.nn.functional.adaptive_avg_pool2d(covered, (h, w))            # (B, F, h, w)
    first, rest = covered[:, :1], covered[:, 1:pixel_frames(t)]
    rest = rest.reshape(b, t - 1, TEMPORAL_COMPRESSION, h, w).amax(dim=2) if t > 1 else rest[:, :0]
    return (1.0 + face_weight * torch.cat([first, rest], dim=1)).unsqueeze(1)    # (B, 1, T, h, w)


def flow_matching_loss(model, latents0: Tensor, cond, *, shift: float,
                       generator: torch.Generator | None = None,
                       cond_dropout: float = 0.1, sigma_floor: float = 0.0,
                       face_weight: float = 0.0) -> dict[str, Tensor]:
    """Flow-matching MSE for a batch.

    ``model(x, timestep, cond, drop) -> (B, C, T, h, w)`` velocity (a ``ReenactGenerator``);
    ``latents0: (B, C, T, h, w)`` clean normalised latents; ``cond``: ``GenCond`` of the batch.
    Noise, sigmas and dropout masks are drawn from ``generator`` (on its device; CPU by default),
    so a seeded step is reproducible on any device. Returns ``{"loss", "loss/flow"}`` (float32).
    ``sigma_floor`` > 0: the error of samples with sigma below it is scaled by ``sigma / floor``.
    For a model that predicts x0 (``(v - v*) = (x0* - x0) / sigma``) this caps the implicit
    ``1 / sigma^2`` weight of the x0 error at ``1 / floor^2`` (min-SNR-style truncation).
    ``face_weight`` > 0: a weighted mean, latent cells under the rendered head weighing
    ``1 + face_weight`` (:func:`face_weights`); the background of a clip (a car window going by)
    is not predictable from the conditions and otherwise dominates the error.
    """
    batch, device = latents0.shape[0], latents0.device
    sigma = sample_timesteps(batch, shift, generator=generator)                   # (B,)
    noise = torch.randn(latents0.shape, generator=generator,
                        device=_gen_device(generator), dtype=torch.float32)
    noise = noise.to(device=device, dtype=latents0.dtype)
    sigma = sigma.to(device)
    drop = drop_masks(batch, cond_dropout, generator=generator, device=device) \
        if cond_dropout > 0 else None
    x_t = add_noise(latents0, noise, sigma)                                       # (B, C, T, h, w)
    pred = model(x_t, sigma * NUM_TRAIN_TIMESTEPS, cond, drop)
    target = noise - latents0                                                     # velocity
    err = pred.float() - target.float()
    if sigma_floor > 0:
        scale = sigma.float() / sigma.float().clamp_min(sigma_floor)              # (B,) <= 1
        err = err * scale.view(-1, *([1] * (err.ndim - 1)))
    if face_weight > 0:
        weight = face_weights(cond.pose_normals, tuple(err.shape), face_weight).to(err.device)
        flow = torch.sum(weight * err ** 2) / (weight.sum() * err.shape[1])
    else:
        flow = torch.mean(err ** 2)
    return {"loss": flow, "loss/flow": flow.detach()}


def _gen_device(generator: torch.Generator | None):
    return generator.device if generator is not None else None
