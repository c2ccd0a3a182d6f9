"""Synthetic expressions for a still portrait (training data, ``prepare --still-expressions``):
the photo warped by its own personalized head driven through smooth random expressions.

A photo shows one expression, so a generator trained on it never sees that person smile wider,
open the mouth or frown. Here the photo's fitted head is driven through smooth random expression
trajectories (the identity-adaptive transfer makes its Delta_f, as ``reenact`` does) and the photo
is warped to follow:

1. ``random_expressions``: smooth random psi (and jaw) trajectories in std units about the
   photo's own expression;
2. ``drive_still``: the still's fit (1 frame) driven by them with ``retarget`` (absolute mode,
   the still's own pose) -> a HeadFit of F frames, frame 0 = the photo's expression;
3. ``engines.warp_field.expression_warp`` with frame 0 of that head as the still one, so frame 0
   is exactly the photo.
"""
from __future__ import annotations

import numpy as np
import torch

from expportrait.engines.warp_field import expression_warp
from expportrait.tracking.io import HeadFit


def random_expressions(base: torch.Tensor, frames: int, seed: int = 0, amplitude: float = 2.0,
                       jaw_max: float = 0.25) -> tuple[torch.Tensor, torch.Tensor]:
    """base (n_exp,) the photo's own psi -> psi (frames, n_exp) in std units and jaw (frames, 3)
    axis-angle (opening about x). Frame 0 is the photo; then the photo's expression relaxes
    towards neutral and back (a smooth random weight in [0, 1]) while every component adds a
    smooth random wave (two low-frequency sines) of up to ``amplitude`` std; the jaw (FLAME heads)
    opens within [0, ``jaw_max``] rad."""
    rng = np.random.default_rng(seed)
    n_exp = base.shape[-1]
    t = np.linspace(0.0, 1.0, frames)[:, None]

    def waves(k):  # (frames, k) in [-1, 1], 0 at t = 0
        f, ph = rng.uniform(0.7, 2.0, (2, k)), rng.uniform(0, 2 * np.pi, (2, k))
        w = np.sin(2 * np.pi * f[0] * t + ph[0]) + 0.5 * np.sin(2 * np.pi * f[1] * t + ph[1])
        return (w - w[:1]) / 3.0

    relax = np.clip(np.abs(waves(1)) * 1.5, 0.0, 1.0)                           # (frames, 1)
    scale = amplitude * rng.uniform(0.5, 1.0, n_exp)
    psi = base.numpy()[None] * (1.0 - relax) + waves(n_exp) * scale
    jaw = np.zeros((frames, 3))
    jaw[:, 0] = np.clip(waves(1)[:, 0] * 2.0, 0.0, 1.0) * jaw_max
    return torch.tensor(psi, dtype=torch.float32), torch.tensor(jaw, dtype=torch.float32)


def drive_still(head, still: HeadFit, transfer_model, psi: torch.Tensor, jaw: torch.Tensor) -> HeadFit:
    """still: the photo's fit (frame 0 is used); psi (F, n_exp), jaw (F, 3) -> the photo's head
    with those expressions at its own pose (F frames, the photo's image space)."""
    from expportrait.transfer.retarget import RetargetConfig, retarget
    F = psi.shape[0]
    driver = still.frames(torch.zeros(F, dtype=torch.long))
    driver.expression = psi.to(still.expression)
    driver.jaw = jaw.to(still.jaw)
    driver.valid = torch.ones(F, dtype=torch.bool)
    cfg = RetargetConfig(mode="absolute", regions=("pose", "expression", "eyes", "lips"),
                         smooth=0.0, source_frame=0)
    return retarget(still, driver, head, transfer_model, cfg)


def still_expressions(image: np.ndarray, still: HeadFit, head, transfer_model, frames: int,
                      seed: int = 0, amplitude: float = 2.0, jaw_max: float = 0.25) -> np.ndarray:
    """A photo (H, W, 3) uint8 and its fit -> (frames, H, W, 3) uint8: the photo making smooth
    random expressions (``random_expressions`` -> ``drive_still`` -> ``expression_warp``)."""
    psi, jaw = random_expressions(still.expression[0], frames, seed, amplitude, jaw_max)
    if not head.has_jaw:
        jaw = torch.zeros_like(jaw)
    driven = drive_still(head, still, transfer_model, psi, jaw)
    return expression_warp(image, driven.frames([0]), driven, head)
