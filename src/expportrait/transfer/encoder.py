"""DrivingEncoder E: per-frame driver expression psi and jaw omega -> per-frame codes Q (F, D).

A per-frame input projection followed by residual temporal 1-D convolutions (non-causal, odd
kernel, replicate padding at the clip ends), so each code q_i sees a window of neighbouring
frames and the code sequence is smooth over time; a single frame works too (F = 1).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


class TemporalBlock(nn.Module):
    """x (B, C, F) -> (B, C, F): depthwise temporal conv, per-frame LayerNorm over channels
    (no statistics across time, so a code depends only on its window), pointwise MLP, residual."""

    def __init__(self, channels: int, kernel: int):
        super().__init__()
        self.pad = kernel // 2
        self.dw = nn.Conv1d(channels, channels, kernel, groups=channels)
        self.pw1 = nn.Conv1d(channels, 2 * channels, 1)
        self.pw2 = nn.Conv1d(2 * channels, channels, 1)
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: Tensor) -> Tensor:
        h = nn.functional.pad(x, (self.pad, self.pad), mode="replicate")  # (B, C, F + 2 pad)
        h = self.norm(self.dw(h).transpose(1, 2)).transpose(1, 2)         # (B, C, F)
        return x + self.pw2(nn.functional.silu(self.pw1(h)))


class DrivingEncoder(nn.Module):
    """E(psi, omega) -> Q.

    n_exp: width of psi; code_dim: D; hidden: channel width; layers: temporal blocks;
    kernel: temporal kernel size (odd); use_jaw: whether omega is an input (False for BFM).
    """

    def __init__(self, n_exp: int, code_dim: int = 32, hidden: int = 64, layers: int = 2,
                 kernel: int = 5, use_jaw: bool = True):
        super().__init__()
        if kernel % 2 != 1:
            raise ValueError("kernel must be odd")
        self.n_exp, self.use_jaw = n_exp, use_jaw
        in_dim = n_exp + (3 if use_jaw else 0)
        self.inp = nn.Sequential(nn.Linear(in_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.blocks = nn.ModuleList(TemporalBlock(hidden, kernel) for _ in range(layers))
        self.out = nn.Linear(hidden, code_dim)

    def forward(self, expression: Tensor, jaw: Tensor | None = None) -> Tensor:
        """expression (B, F, n_exp) std units; jaw (B, F, 3) axis-angle radians or None
        -> codes (B, F, D)."""
        x = expression
        if self.use_jaw:
            x = torch.cat([x, torch.zeros_like(x[..., :3]) if jaw is None else jaw.to(x)], -1)
        h = self.inp(x).transpose(1, 2)  # (B, hidden, F)
        for block in self.blocks:
            h = block(h)
        return self.out(h.transpose(1, 2))  # (B, F, D)
