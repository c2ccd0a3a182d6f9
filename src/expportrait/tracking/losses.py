"""Pure loss and regulariser functions for fitting. Each returns a scalar tensor; the fitter
collects them in a namespaced dict (``loss/...``, ``reg/...``) scaled by config weights."""
from __future__ import annotations

import torch
from torch import Tensor

from expportrait.head.geometry import apply_laplacian


def landmark_loss(pred: Tensor, target: Tensor, weight: Tensor, scale: Tensor) -> Tensor:
    """pred, target (F, K, 2) pixels; weight (K,) or (F, K); scale (F,) face size in pixels.
    Robust (Charbonnier) distance normalised by face size, weighted mean."""
    d = ((pred - target) / scale[:, None, None]).pow(2).sum(-1)  # (F, K)
    d = torch.sqrt(d + 1e-8)
    w = weight.expand_as(d)
    return (d * w).sum() / w.sum().clamp_min(1e-8)


def photometric_loss(render: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """render, target (F, 3, H, W) in [0, 1]; mask (F, 1, H, W) in [0, 1]. Masked L1."""
    return ((render - target).abs() * mask).sum() / (3 * mask.sum()).clamp_min(1.0)


def map_l1(render: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Normal or depth map L1 (the paper's L_normal / L_depth): (F, C, H, W) each, mask (F, 1, H, W)."""
    c = render.shape[1]
    return ((render - target).abs() * mask).sum() / (c * mask.sum()).clamp_min(1.0)


def coefficient_prior(x: Tensor) -> Tensor:
    """Gaussian prior on std-unit coefficients: mean of squares."""
    return x.pow(2).mean()


def temporal_smoothness(x: Tensor, order: int = 2) -> Tensor:
    """x (F, ...): mean squared finite difference of ``order`` along time (0 for F <= order)."""
    if x.shape[0] <= order:
        return x.sum() * 0.0
    d = x
    for _ in range(order):
        d = d[1:] - d[:-1]
    return d.pow(2).mean()


def offset_magnitude(offset: Tensor) -> Tensor:
    """offset (..., N, 3) metres -> mean squared length (penalises Delta_f so that anything
    constant over frames moves into Delta_g)."""
    return offset.pow(2).sum(-1).mean()


def laplacian_smoothness(L: Tensor, offset: Tensor) -> Tensor:
    """L sparse (N, N) uniform Laplacian; offset (B, N, 3) -> mean squared Laplacian."""
    return apply_laplacian(L, offset).pow(2).sum(-1).mean()
