"""Second-order spherical-harmonics (SH) Lambertian shading.

Convention (Ramamoorthi & Hanrahan 2001, "An efficient representation for irradiance environment
maps"): with the environment radiance L(w) = sum_lm L_lm Y_lm(w), the irradiance at normal n is
E(n) = sum_lm A_l L_lm Y_lm(n), A_0 = pi, A_1 = 2 pi / 3, A_2 = pi / 4. We fold the constants
into the basis and normalise so that the DC basis function is exactly 1:

    sh_basis(n)[k] = A_l Y_lm(n) / (A_0 Y_00),      sh[k] = A_0 Y_00 L_lm = 0.886227 L_lm,

so ``sh_shading(n, sh) = E(n)`` and ``sh = [1, 0, ..., 0]`` means uniform irradiance 1 (a shaded
render then equals the albedo). Basis order (m = -l..l): 1, y, z, x, xy, yz, 3z^2 - 1, xz, x^2 - y^2.
The frame is that of the normals given; ``render`` passes camera-space OpenGL-style normals
(x right, y up, z towards the viewer), so e.g. sh[3] > 0 lights surfaces facing image-right and
sh[2] > 0 lights surfaces facing the camera.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

_Y00 = 0.5 / math.sqrt(math.pi)                       # 0.282095
_C1 = (2.0 / 3.0) * math.sqrt(3.0 / (4 * math.pi)) / _Y00          # 1.154701
_C2 = 0.25 * 0.5 * math.sqrt(15.0 / math.pi) / _Y00               # 0.968246 (xy, yz, xz)
_C20 = 0.25 * 0.25 * math.sqrt(5.0 / math.pi) / _Y00              # 0.279508 (3z^2 - 1)
_C22 = 0.25 * 0.25 * math.sqrt(15.0 / math.pi) / _Y00             # 0.484123 (x^2 - y^2)


def sh_basis(normals: Tensor) -> Tensor:
    """(..., 3) unit normals -> (..., 9) Lambertian-convolved real SH basis (see module doc)."""
    x, y, z = normals.unbind(-1)
    return torch.stack([
        torch.ones_like(x), _C1 * y, _C1 * z, _C1 * x,
        _C2 * x * y, _C2 * y * z, _C20 * (3.0 * z * z - 1.0), _C2 * x * z, _C22 * (x * x - y * y),
    ], -1)


def sh_shading(normals: Tensor, sh: Tensor) -> Tensor:
    """normals (B, ..., 3) unit; sh (B, 9, 3) per-channel coefficients -> irradiance (B, ..., 3)."""
    B = normals.shape[0]
    basis = sh_basis(normals).reshape(B, -1, 9)           # (B, P, 9)
    irr = torch.bmm(basis, sh.to(basis.dtype))            # (B, P, 3)
    return irr.reshape(*normals.shape[:-1], 3)


def default_sh(batch: int, ambient: float = 0.6, frontal: float = 0.45) -> Tensor:
    """(batch, 9, 3) grey light: uniform ``ambient`` plus a light from the viewer's direction
    (irradiance ambient + frontal * 1.1547 * n_z, before the small order-2 term is dropped)."""
    sh = torch.zeros(batch, 9, 3)
    sh[:, 0] = ambient
    sh[:, 2] = frontal
    return sh
