"""Condition encoders: normal-map videos / images -> features on the DiT token grid.

Both end in a zero-initialised 1x1 projection, so an untrained encoder adds exactly zero to the
video tokens and the conditioned model reproduces its base Wan transformer.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


class PoseEncoder3D(nn.Module):
    """3D convolutions over a frame sequence (driving normals N^D_{1:F}, or the appearance video).

    ``x: (B, 3, F, H, W) in [-1, 1]``, F = 4k+1 -> ``(B, D, T, H / s, W / s)`` with
    T = (F - 1) // t + 1 (t = temporal factor, 4 x patch_t), s = spatial factor (8 x patch_h).
    The first frame is replicated t - 1 times in front (Wan's causal first-frame convention), so
    frame 0 maps to token frame 0 alone and frames 4i-3..4i to token frame i. The stem is a
    (t, 3, 3) convolution with stride (t, 2, 2), so each token frame's 4 frames are read jointly at
    half resolution; each of the ``len(channels) - 1`` following 3x3x3 convolutions halves the
    resolution again, so the full-resolution work stays small.
    """

    def __init__(self, channels: tuple[int, ...], out_dim: int, temporal_factor: int = 4,
                 in_channels: int = 3):
        super().__init__()
        self.temporal_factor = temporal_factor
        self.stem = nn.Conv3d(in_channels, channels[0], (temporal_factor, 3, 3),
                              stride=(temporal_factor, 2, 2), padding=(0, 1, 1))
        layers = []
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            layers += [nn.SiLU(), nn.Conv3d(c_in, c_out, 3, stride=(1, 2, 2), padding=1)]
        self.down = nn.Sequential(*layers, nn.SiLU())
        self.proj = nn.Conv3d(channels[-1], out_dim, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: Tensor) -> Tensor:
        """``x: (B, 3, F, H, W)`` -> ``(B, D, T, H/s, W/s)``."""
        pad = x[:, :, :1].expand(-1, -1, self.temporal_factor - 1, -1, -1)
        x = torch.cat([pad, x], dim=2)                        # (B, 3, t*T, H, W)
        return self.proj(self.down(self.stem(x)))             # (B, D, T, H/s, W/s)


class RefEncoder2D(nn.Module):
    """2D convolutions over the reference normal map N^R.

    ``x: (B, 3, H, W) in [-1, 1]`` -> ``(B, D, H / s, W / s)``; the model broadcasts it over time.
    Stride-2 stem, then ``len(channels) - 1`` stride-2 convolutions.
    """

    def __init__(self, channels: tuple[int, ...], out_dim: int, in_channels: int = 3):
        super().__init__()
        self.stem = nn.Conv2d(in_channels, channels[0], 3, stride=2, padding=1)
        layers = []
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            layers += [nn.SiLU(), nn.Conv2d(c_in, c_out, 3, stride=2, padding=1)]
        self.down = nn.Sequential(*layers, nn.SiLU())
        self.proj = nn.Conv2d(channels[-1], out_dim, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: Tensor) -> Tensor:
        """``x: (B, 3, H, W)`` -> ``(B, D, H/s, W/s)``."""
        return self.proj(self.down(self.stem(x)))
