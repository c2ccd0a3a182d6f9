"""Samplers as pure functions over a sigma tensor (k-diffusion style).

Contract: ``model_fn(x, sigma) -> velocity``, with ``x: (B, C, T, h, w)`` latents and ``sigma`` a
0-dim tensor in [0, 1]; the velocity is ``dx/dsigma`` (Wan flow matching, see ``flow.py``). The
Euler step is one visible line. ``guided_model_fn`` turns a ``ReenactGenerator`` + ``GenCond``
into such a ``model_fn`` with classifier-free guidance on the reference / pose conditions.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from expportrait.errors import UserError
from expportrait.generator.flow import NUM_TRAIN_TIMESTEPS, shift_sigmas

ModelFn = Callable[[Tensor, Tensor], Tensor]
GUIDE = ("ref", "pose")   # conditions the unconditional pass drops by default


def get_sigmas(steps: int, shift: float, device=None) -> Tensor:
    """``(steps + 1,)`` float32 sigmas from 1 (pure noise) down to 0, Wan-shifted.

    Few-step use: ``steps`` 4..8 with a larger ``shift`` (5..8) keeps more steps at high noise; the
    base model is not distilled, so quality drops below ~8 steps.
    """
    if steps < 1:
        raise UserError(f"sampling steps must be >= 1, got {steps}")
    sigmas = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
    return shift_sigmas(sigmas, shift).to(device=device, dtype=torch.float32)


@torch.no_grad()
def sample_euler(model_fn: ModelFn, x: Tensor, sigmas: Tensor, *,
                 callback: Callable[[dict], None] | None = None) -> Tensor:
    """Euler integration of dx/dsigma = v from ``sigmas[0]`` to ``sigmas[-1]``.

    ``x: (B, C, T, h, w)`` noise at ``sigmas[0]`` (unit normal for sigma = 1); returns the latents at
    ``sigmas[-1]`` (clean for 0). ``callback({"i", "sigma", "x", "v"})`` after every step.
    """
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        v = model_fn(x, sigma)
        x = x + (sigma_next - sigma).to(x.dtype) * v.to(x.dtype)     # the Euler step
        if callback is not None:
            callback({"i": i, "sigma": sigma, "x": x, "v": v})
    return x


@torch.no_grad()
def sample_unipc(model_fn: ModelFn, x: Tensor, steps: int, shift: float, *,
                 callback: Callable[[dict], None] | None = None) -> Tensor:
    """diffusers ``UniPCMultistepScheduler`` (flow prediction, Wan's default solver) over the same
    ``model_fn`` contract; ``x: (B, C, T, h, w)`` unit noise -> clean latents."""
    from diffusers import UniPCMultistepScheduler

    sched = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
                                    flow_shift=shift, num_train_timesteps=int(NUM_TRAIN_TIMESTEPS))
    sched.set_timesteps(steps, device=x.device)
    for i, t in enumerate(sched.timesteps):
        sigma = sched.sigmas[i].to(device=x.device, dtype=torch.float32)   # unrounded t / 1000
        v = model_fn(x, sigma)
        x = sched.step(v, t, x, return_dict=False)[0]
        if callback is not None:
            callback({"i": i, "sigma": sigma, "x": x, "v": v})
    return x


def cfg(v_cond: Tensor, v_uncond: Tensor, scale: float) -> Tensor:
    """Classifier-free guidance: ``v_uncond + scale (v_cond - v_uncond)`` (scale 1 = conditional)."""
    return v_uncond + scale * (v_cond - v_uncond)


def guided_model_fn(model, cond, scale: float = 1.0, drop: tuple[str, ...] = GUIDE,
                    cache: bool = True) -> ModelFn:
    """``model_fn(x, sigma)`` for ``model: ReenactGenerator`` and ``cond: GenCond``.

    With ``scale != 1`` the conditional and unconditional (``drop`` conditions removed) passes run as
    one batch of 2B and are combined by ``cfg``. ``cache``: compute the condition features once
    (they do not depend on x or sigma) instead of at every call.
    """
    batch = cond.pose_normals.shape[0]
    guided = scale != 1.0
    if guided and not drop:
        raise UserError("classifier-free guidance needs at least one condition to drop (e.g. pose)")
    feats: dict[int, object] = {}

    def features(latent_frames: int, device):
        if latent_frames in feats:
            return feats[latent_frames]
        if guided:
            masks = {k: torch.arange(2 * batch, device=device) >= batch for k in drop}
            f = model.encode_conditions(cond.repeat(2), latent_frames, masks)
        else:
            f = model.encode_conditions(cond, latent_frames)
        if cache:
            feats[latent_frames] = f
        return f

    def model_fn(x: Tensor, sigma: Tensor) -> Tensor:
        f = features(x.shape[2], x.device)
        t = (sigma * NUM_TRAIN_TIMESTEPS).to(x.device)
        if not guided:
            return model.forward_features(x, t, f)
        v = model.forward_features(torch.cat([x, x]), t, f)             # (2B, C, T, h, w)
        return cfg(v[:batch], v[batch:], scale)

    return model_fn
