"""Pinhole camera Pi(., c): OpenCV convention, pixel centres at integer coordinates."""
from __future__ import annotations

import math

import torch
from torch import Tensor


def project(points: Tensor, camera: Tensor) -> Tensor:
    """points (B, V, 3) camera space (z > 0 in front); camera (B, 4) = fx, fy, cx, cy pixels
    -> (B, V, 2) pixel coordinates (x right, y down)."""
    z = points[..., 2:3].clamp_min(1e-6)
    xy = points[..., :2] / z
    return xy * camera[:, None, :2] + camera[:, None, 2:4]


def to_screen(points: Tensor, camera: Tensor) -> Tensor:
    """(B, V, 3) camera space -> (B, V, 3) = pixel x, pixel y, depth z (the rasterizer's input)."""
    return torch.cat([project(points, camera), points[..., 2:3]], -1)


def default_camera(height: int, width: int, fov_deg: float = 20.0, batch: int = 1) -> Tensor:
    """A centred camera with vertical field of view ``fov_deg``: (batch, 4)."""
    f = 0.5 * height / math.tan(math.radians(fov_deg) / 2)
    cam = torch.tensor([f, f, (width - 1) / 2.0, (height - 1) / 2.0])
    return cam.expand(batch, 4).clone()
