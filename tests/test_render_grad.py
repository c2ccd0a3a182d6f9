"""Renderer gradients: finite differences, pose fitting through shading, soft silhouettes."""
from __future__ import annotations

import math

import torch

from expportrait.render import default_camera, render, to_screen
from expportrait.render.rasterize import rasterize
from test_render import icosphere


def test_bary_and_depth_gradcheck():
    H, W = 12, 14
    screen = torch.tensor([[[1.3, 1.2, 0.5], [11.7, 2.1, 0.7], [4.2, 10.6, 0.9],
                            [3.1, 3.3, 0.4], [12.6, 9.4, 0.8], [2.2, 11.1, 0.6]]], dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2], [3, 4, 5]])
    fid = rasterize(screen, faces, H, W).face_id
    assert set(fid.unique().tolist()) == {-1, 0, 1}                 # both faces visible

    def fn(s):
        fr = rasterize(s, faces, H, W)
        assert torch.equal(fr.face_id, fid)
        return fr.bary, fr.depth

    assert torch.autograd.gradcheck(fn, (screen.requires_grad_(True),), eps=1e-6, atol=1e-6)


def test_render_maps_gradcheck_wrt_vertices():
    verts, faces = icosphere(0, 0.1)
    vc = (verts.double() + torch.tensor([0.01, 0.0, 0.5], dtype=torch.float64))[None]
    cam = default_camera(10, 12, fov_deg=40.0).double()
    alb = torch.rand(1, verts.shape[0], 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    sh = torch.zeros(1, 9, 3, dtype=torch.float64)
    sh[:, 0], sh[:, 3], sh[:, 4] = 0.6, 0.3, 0.2

    def fn(v, a):
        out = render(v, faces, cam, 10, 12, albedo=a, sh=sh, outputs=("normal", "depth", "shaded"))
        return out.normal, out.depth, out.shaded

    assert torch.autograd.gradcheck(fn, (vc.requires_grad_(True), alb.requires_grad_(True)),
                                    eps=1e-7, atol=1e-4)


def test_fit_translation_to_shaded_and_normal_target():
    """Gradients through barycentrics alone (hard mask) recover a 3D translation."""
    H = W = 32
    verts, faces = icosphere(3, 0.1)
    cam = default_camera(H, W, fov_deg=35.0)
    sh = torch.zeros(1, 9, 3)
    sh[:, 0], sh[:, 3], sh[:, 1], sh[:, 7] = 0.5, 0.4, -0.3, 0.3
    true_t = torch.tensor([0.015, -0.01, 0.5])

    def maps(t):
        out = render((verts + t)[None], faces, cam, H, W, sh=sh, outputs=("normal", "shaded"))
        return out.normal, out.shaded, out.mask

    with torch.no_grad():
        tn, ts, tm = maps(true_t)
    t = torch.tensor([0.0, 0.0, 0.52], requires_grad=True)
    opt = torch.optim.Adam([t], lr=2e-3)
    first = None
    for _ in range(60):
        n, s, m = maps(t)
        both = m * tm
        loss = (((n - tn).abs() + (s - ts).abs()) * both).sum() / both.sum()
        first = first if first is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.2 * first
    assert (t.detach() - true_t).abs().max() < 2e-3, t


def disc(n: int = 64, r: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat disc (fan) in the z = 0 plane: verts (n + 1, 3), faces (n, 3)."""
    ang = torch.arange(n) * (2 * math.pi / n)
    ring = torch.stack([r * torch.cos(ang), r * torch.sin(ang), torch.zeros(n)], -1)
    verts = torch.cat([torch.zeros(1, 3), ring])
    faces = torch.stack([torch.zeros(n, dtype=torch.long), 1 + (torch.arange(n) + 1) % n, 1 + torch.arange(n)], -1)
    return verts, faces


def test_soft_mask_area_is_subpixel_accurate_and_has_area_gradient():
    H = W = 40
    cam = default_camera(H, W, fov_deg=30.0)
    verts, faces = disc(128, 0.05)
    f = float(cam[0, 0])
    z = 0.5
    area_px = 0.5 * 128 * math.sin(2 * math.pi / 128) * (0.05 * f / z) ** 2   # polygon area
    soft_err, hard_err = [], []
    for dx in torch.linspace(0.0, 0.9, 5):
        shift = torch.tensor([float(dx) * z / f, 0.3 * float(dx) * z / f, z])
        out = render((verts + shift)[None], faces, cam, H, W, outputs=("soft_mask",))
        soft_err.append(abs(float(out.soft_mask.sum()) - area_px))
        hard_err.append(abs(float(out.mask.sum()) - area_px))
        assert (out.soft_mask >= 0).all() and (out.soft_mask <= 1).all()
    assert max(soft_err) < 0.01 * area_px
    assert max(soft_err) < max(hard_err)
    # d(area)/d(scale) = 2 area / scale, through the silhouette only
    scale = torch.tensor(1.0, requires_grad=True)
    out = render((verts * scale + torch.tensor([0.0, 0.0, z]))[None], faces, cam, H, W, outputs=("soft_mask",))
    (g,) = torch.autograd.grad(out.soft_mask.sum(), scale)
    assert abs(float(g) - 2 * area_px) < 0.1 * 2 * area_px


def test_fit_translation_from_silhouette_only():
    """A flat disc has a constant normal map: only the soft mask can move it into place."""
    H = W = 40
    cam = default_camera(H, W, fov_deg=30.0)
    verts, faces = disc(64, 0.05)
    true_t = torch.tensor([0.012, -0.008, 0.5])
    with torch.no_grad():
        target = render((verts + true_t)[None], faces, cam, H, W, outputs=("soft_mask",)).soft_mask
    t = torch.tensor([0.0, 0.0, 0.5], requires_grad=True)
    opt = torch.optim.Adam([t], lr=1e-3)
    for _ in range(60):
        out = render((verts + t)[None], faces, cam, H, W, outputs=("soft_mask",))
        loss = (out.soft_mask - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        t.grad[2] = 0.0                                           # fit x, y only
        opt.step()
    err_px = (t.detach() - true_t)[:2].abs().max() * float(cam[0, 0]) / 0.5
    assert err_px < 0.3, t


def test_gradients_reach_all_visible_vertices():
    H = W = 32
    verts, faces = icosphere(2, 0.1)
    vc = (verts + torch.tensor([0.0, 0.0, 0.45]))[None].requires_grad_(True)
    out = render(vc, faces, default_camera(H, W), H, W, outputs=("normal", "depth"))
    (out.normal.sum() + out.depth.sum()).backward()
    front = (verts[:, 2] < -0.03)                                  # camera-facing cap
    assert (vc.grad[0][front].abs().sum(-1) > 0).float().mean() > 0.95
    back = verts[:, 2] > 0.03                                      # hidden hemisphere
    assert (vc.grad[0][back] == 0).all()
    assert torch.isfinite(vc.grad).all()
    screen = to_screen(vc.detach(), default_camera(H, W))
    assert screen.shape == (1, verts.shape[0], 3)
