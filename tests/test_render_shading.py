"""SH shading: constants against the zonal (addition-theorem) formula, render integration."""
from __future__ import annotations

import math

import torch

from expportrait.render import default_camera, render, sh_basis, sh_shading
from test_render import icosphere


def _real_sh(n: torch.Tensor) -> torch.Tensor:
    """Standard orthonormal real SH Y_lm, order m = -l..l: (..., 3) -> (..., 9)."""
    x, y, z = n.unbind(-1)
    c0, c1 = 0.5 / math.sqrt(math.pi), math.sqrt(3 / (4 * math.pi))
    c2, c20, c22 = 0.5 * math.sqrt(15 / math.pi), 0.25 * math.sqrt(5 / math.pi), 0.25 * math.sqrt(15 / math.pi)
    return torch.stack([torch.full_like(x, c0), c1 * y, c1 * z, c1 * x, c2 * x * y, c2 * y * z,
                        c20 * (3 * z * z - 1), c2 * x * z, c22 * (x * x - y * y)], -1)


def test_directional_light_matches_zonal_irradiance():
    """A unit-radiance delta light from d has L_lm = Y_lm(d); with sh = pi Y_00 L the irradiance
    must be sum_l A_l (2l+1)/(4 pi) P_l(n.d) (addition theorem), close to max(n.d, 0)."""
    g = torch.Generator().manual_seed(0)
    n = torch.nn.functional.normalize(torch.randn(2, 500, 3, generator=g, dtype=torch.float64), dim=-1)
    d = torch.nn.functional.normalize(torch.randn(2, 3, generator=g, dtype=torch.float64), dim=-1)
    sh = (math.pi * 0.5 / math.sqrt(math.pi)) * _real_sh(d)[..., None].expand(2, 9, 3)  # (2, 9, 3)
    E = sh_shading(n, sh)                                           # (2, 500, 3)
    c = (n * d[:, None]).sum(-1)
    zonal = 0.25 + 0.5 * c + 0.3125 * 0.5 * (3 * c * c - 1)        # A_l (2l+1)/(4 pi) P_l(c)
    assert torch.allclose(E[..., 0], zonal, atol=1e-6)
    assert torch.allclose(E[..., 1], E[..., 2])
    assert (E[..., 0] - c.clamp_min(0)).abs().max() < 0.1             # order-2 approx of clamped cosine


def test_basis_dc_and_ambient_render_equals_albedo():
    n = torch.nn.functional.normalize(torch.randn(4, 7, 3), dim=-1)
    basis = sh_basis(n)
    assert basis.shape == (4, 7, 9) and torch.allclose(basis[..., 0], torch.ones(4, 7))
    verts, faces = icosphere(2, 0.1)
    H, W = 24, 28
    alb = torch.rand(2, verts.shape[0], 3)
    sh = torch.zeros(2, 9, 3)
    sh[:, 0] = torch.tensor([[1.0, 0.5, 2.0], [0.3, 0.3, 0.3]])
    vc = (verts + torch.tensor([0.0, 0.0, 0.5]))[None].expand(2, -1, -1)
    out = render(vc, faces, default_camera(H, W), H, W, albedo=alb, sh=sh,
                 outputs=("shaded", "normal"))
    flat = render(vc, faces, default_camera(H, W), H, W, albedo=alb,
                  sh=torch.cat([torch.ones(2, 1, 3), torch.zeros(2, 8, 3)], 1), outputs=("shaded",))
    assert torch.allclose(out.shaded, flat.shaded * sh[:, 0, :, None, None], atol=1e-6)
    assert (flat.shaded <= 1.0 + 1e-6).all() and flat.shaded.amax() > 0.5


def test_light_direction_brightens_facing_side():
    """sh[3] (basis x in the OpenGL-style camera frame) > 0 lights the image-right side."""
    verts, faces = icosphere(3, 0.1)
    H = W = 32
    sh = torch.zeros(1, 9, 3)
    sh[:, 0], sh[:, 3] = 0.5, 0.4
    out = render((verts + torch.tensor([0.0, 0.0, 0.5]))[None], faces, default_camera(H, W), H, W,
                 sh=sh, outputs=("shaded",))
    row = out.shaded[0, 0, H // 2]
    cols = torch.nonzero(row > 0).squeeze(1)
    assert row[cols[-3]] > row[W // 2] > row[cols[2]]
    default = render((verts + torch.tensor([0.0, 0.0, 0.5]))[None], faces, default_camera(H, W), H, W,
                     outputs=("shaded",)).shaded
    assert default[0, 0, H // 2, W // 2] > default[0, 0, H // 2, cols[1]]   # frontal default light
