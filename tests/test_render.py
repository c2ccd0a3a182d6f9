"""Renderer: analytic normals/depth, occlusion, background, batches, novel views, edge cases."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from expportrait.errors import UserError
from expportrait.head.geometry import HEAD_TO_CV, axis_angle_to_matrix, head_to_camera
from expportrait.render import default_camera, interpolate, normal_map_image, render, to_screen
from expportrait.render import rasterize as rast_mod
from expportrait.render.rasterize import rasterize


def icosphere(level: int = 3, radius: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit icosphere scaled by ``radius``: verts (V, 3), faces (T, 3) CCW seen from outside."""
    t = (1.0 + math.sqrt(5.0)) / 2.0
    verts = [[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t], [0, -1, -t],
             [0, 1, -t], [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]]
    faces = [[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4],
             [11, 10, 2], [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8],
             [3, 8, 9], [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]]
    verts = [list(np.asarray(v, float) / np.linalg.norm(v)) for v in verts]
    for _ in range(level):
        cache, new = {}, []

        def mid(a, b):
            key = (min(a, b), max(a, b))
            if key not in cache:
                m = np.asarray(verts[a]) + np.asarray(verts[b])
                verts.append(list(m / np.linalg.norm(m)))
                cache[key] = len(verts) - 1
            return cache[key]

        for a, b, c in faces:
            ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
            new += [[a, ab, ca], [b, bc, ab], [c, ca, bc], [ab, bc, ca]]
        faces = new
    return torch.tensor(verts, dtype=torch.float32) * radius, torch.tensor(faces, dtype=torch.long)


def ray_dirs(camera: torch.Tensor, px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """(4,) camera, pixel coords (N,) -> (N, 3) camera rays with z = 1."""
    fx, fy, cx, cy = camera.tolist()
    return torch.stack([(px - cx) / fx, (py - cy) / fy, torch.ones_like(px)], -1)


def test_sphere_normals_and_depth_match_analytic():
    H, W, r, d = 64, 80, 0.1, 0.5
    verts, faces = icosphere(4, r)
    centre = torch.tensor([0.01, -0.005, d])
    cam = default_camera(H, W, fov_deg=30.0)
    out = render((verts + centre)[None], faces, cam, H, W, outputs=("normal", "depth", "mask"))
    # pixel nearest the sphere's projected centre: normal faces the viewer, colour (0.5, 0.5, 1)
    c = to_screen(centre[None, None], cam)[0, 0]
    ix, iy = int(round(float(c[0]))), int(round(float(c[1])))
    assert torch.allclose(out.normal[0, :, iy, ix], torch.tensor([0.5, 0.5, 1.0]), atol=0.02)
    # all covered pixels away from the rim: analytic ray/sphere intersection and normal
    ys, xs = torch.nonzero(out.mask[0, 0] > 0, as_tuple=True)
    dirs = ray_dirs(cam[0], xs.float(), ys.float())                     # (N, 3)
    a = (dirs * dirs).sum(-1)
    b = -2.0 * (dirs * centre).sum(-1)
    disc = b * b - 4 * a * (centre @ centre - r * r)
    keep = disc > 0.15 * disc.max()                                     # stay off the grazing rim
    assert keep.sum() > 300
    zt = (-b - disc.clamp_min(0).sqrt()) / (2 * a)                      # nearest root, z of hit
    z = out.depth[0, 0, ys, xs]
    assert (z[keep] - zt[keep]).abs().max() < 3e-4                      # faceting sag < 0.3 mm
    n_cv = torch.nn.functional.normalize(dirs * zt[:, None] - centre, dim=-1)
    n_gl = n_cv * torch.tensor([1.0, -1.0, -1.0])
    got = out.normal[0, :, ys, xs].T * 2 - 1                            # (N, 3)
    assert (got[keep] - n_gl[keep]).norm(dim=-1).max() < 0.03
    # coverage: every covered pixel's ray hits the true sphere (the faceted one lies inside it),
    # and every pixel whose ray hits it clearly is covered
    assert (disc > 0).all()
    ys, xs = torch.meshgrid(torch.arange(H).float(), torch.arange(W).float(), indexing="ij")
    dirs = ray_dirs(cam[0], xs.reshape(-1), ys.reshape(-1))
    a, b = (dirs * dirs).sum(-1), -2.0 * (dirs * centre).sum(-1)
    disc_all = (b * b - 4 * a * (centre @ centre - r * r)).reshape(H, W)
    assert out.mask[0, 0][disc_all > 0.05 * disc_all.max()].all()


def test_plane_depth_and_bary_are_perspective_correct():
    """A tilted quad: per-pixel depth equals the analytic ray/plane hit, and interpolating the
    vertex positions with ``bary`` lands on the pixel's ray (only true if perspective-correct)."""
    H, W = 48, 40
    cam = default_camera(H, W, fov_deg=40.0)
    quad = torch.tensor([[-0.2, -0.2, 0.6], [0.2, -0.2, 0.9], [0.2, 0.2, 0.9], [-0.2, 0.2, 0.6]])
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    frags = rasterize(to_screen(quad[None], cam), faces, H, W)
    ys, xs = torch.nonzero(frags.mask[0], as_tuple=True)
    assert len(ys) > 0.5 * H * W
    dirs = ray_dirs(cam[0], xs.float(), ys.float())
    normal = torch.linalg.cross(quad[1] - quad[0], quad[3] - quad[0])
    zt = (normal @ quad[0]) / (dirs @ normal)                           # plane hit, z of ray
    assert torch.allclose(frags.depth[0, ys, xs], zt, atol=1e-5)
    pts = interpolate(quad[None], faces, frags)[0, ys, xs]              # (N, 3)
    assert torch.allclose(pts, dirs * zt[:, None], atol=1e-5)
    assert torch.allclose(frags.bary[0, ys, xs].sum(-1), torch.ones(len(ys)), atol=1e-5)
    assert (frags.bary[0, ys, xs] > -1e-4).all()


def test_nearer_triangle_wins_in_either_order():
    H = W = 32
    cam = default_camera(H, W, fov_deg=40.0)
    near = [[-0.1, -0.1, 0.5], [0.1, -0.1, 0.5], [0.0, 0.1, 0.5]]
    far = [[-0.1, -0.05, 0.55], [0.1, -0.1, 0.7], [0.05, 0.15, 0.6]]
    verts = torch.tensor(near + far)
    for faces, want in ((torch.tensor([[0, 1, 2], [3, 4, 5]]), 0), (torch.tensor([[3, 4, 5], [0, 1, 2]]), 1)):
        frags = rasterize(to_screen(verts[None], cam), faces, H, W)
        assert frags.face_id[0, H // 2, W // 2] == want
        both = (frags.face_id == want).sum()
        assert both > 50
        assert (frags.depth[frags.face_id == want] < 0.5 + 1e-5).all()
    # the far triangle alone covers the centre too, so the test above was a real conflict
    only_far = rasterize(to_screen(verts[None], cam), torch.tensor([[3, 4, 5]]), H, W)
    assert only_far.face_id[0, H // 2, W // 2] == 0 and only_far.depth[0, H // 2, W // 2] > 0.55


def test_background_and_culling():
    H, W = 24, 30
    cam = default_camera(H, W)
    verts = torch.tensor([[[-0.03, -0.03, 0.5], [0.03, -0.03, 0.5], [0.0, 0.03, 0.5],
                           [-1.0, -1.0, -0.5], [1.0, -1.0, -0.5], [0.0, 1.0, 0.5],   # behind camera
                           [5.0, 5.0, 0.5], [6.0, 5.0, 0.5], [5.0, 6.0, 0.5]]])      # off screen
    faces = torch.tensor([[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    alb = torch.rand(1, 9, 3)
    out = render(verts, faces, cam, H, W, albedo=alb, outputs=("normal", "depth", "mask", "shaded", "soft_mask"))
    bg = out.mask[0, 0] == 0
    assert bg.sum() > 0.8 * H * W and (~bg).sum() > 5
    assert set(out.frags.face_id[0].unique().tolist()) == {-1, 0}
    for t in (out.normal, out.depth, out.shaded):
        assert (t[0][:, bg] == 0).all()
    assert (out.frags.bary[0][bg] == 0).all()
    assert (out.soft_mask[0, 0][bg] >= 0).all() and (out.soft_mask <= 1).all()
    assert (out.normal[0][:, ~bg].sum(0) > 0.5).all()             # real normals are never black
    empty = rasterize(torch.zeros(2, 0, 3), torch.zeros(0, 3, dtype=torch.long), 4, 5)
    assert empty.face_id.shape == (2, 4, 5) and (empty.face_id == -1).all()


def test_batch_and_non_square_match_single_renders():
    H, W = 36, 60
    verts, faces = icosphere(2, 0.08)
    cams = torch.tensor([[70.0, 70.0, 29.5, 17.5], [90.0, 80.0, 20.0, 20.0]])
    vc = torch.stack([verts + torch.tensor([0.0, 0.0, 0.5]), verts + torch.tensor([0.05, -0.02, 0.6])])
    out = render(vc, faces, cams, H, W, outputs=("normal", "depth"))
    assert out.normal.shape == (2, 3, H, W) and out.depth.shape == (2, 1, H, W)
    assert out.mask.shape == (2, 1, H, W)
    for i in range(2):
        single = render(vc[i:i + 1], faces, cams[i:i + 1], H, W, outputs=("normal", "depth"))
        assert torch.equal(single.frags.face_id[0], out.frags.face_id[i])
        assert torch.allclose(single.normal[0], out.normal[i], atol=1e-6)
        # mask centroid sits at the projected sphere centre (x along width, y along height)
        ys, xs = torch.nonzero(out.mask[i, 0] > 0, as_tuple=True)
        c = to_screen(vc[i:i + 1].mean(1, keepdim=True), cams[i:i + 1])[0, 0]
        assert abs(xs.float().mean() - c[0]) < 0.6 and abs(ys.float().mean() - c[1]) < 0.6
    assert not torch.equal(out.mask[0], out.mask[1])


@pytest.mark.parametrize("yaw_pitch", [(0.0, 0.0), (1.0, 0.0), (-0.6, 0.4)])
def test_novel_view_normals_follow_head_rotation(yaw_pitch):
    """A head-space patch facing +z (out of the face), seen from a rotated camera: the rendered
    normal equals the rotated analytic normal, so winding and the CV->GL flip are right."""
    H = W = 32
    patch = torch.tensor([[-0.05, -0.05, 0.0], [0.05, -0.05, 0.0], [0.05, 0.05, 0.0], [-0.05, 0.05, 0.0]])
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])                  # CCW seen from +z
    rot = torch.tensor([[yaw_pitch[1], yaw_pitch[0], 0.0]])
    vc = head_to_camera(patch[None], rot, torch.tensor([[0.0, 0.0, 0.5]]))
    out = render(vc, faces, default_camera(H, W), H, W, outputs=("normal",))
    n_cv = HEAD_TO_CV @ axis_angle_to_matrix(rot[0]) @ torch.tensor([0.0, 0.0, 1.0])
    want = n_cv * torch.tensor([1.0, -1.0, -1.0]) * 0.5 + 0.5
    assert want[2] > 0.5                                           # it does face the viewer
    got = out.normal[0, :, H // 2, W // 2]
    assert torch.allclose(got, want, atol=1e-4)


def test_no_cracks_on_shared_edges_and_chunking(monkeypatch):
    """A jittered 40x40 grid: every pixel inside it is covered (no gaps between triangles);
    a tiny chunk size (many dense ops per bucket) gives identical face ids."""
    H = W = 64
    n = 40
    g = torch.stack(torch.meshgrid(torch.linspace(-0.1, 0.1, n), torch.linspace(-0.1, 0.1, n),
                                   indexing="ij"), -1).reshape(-1, 2)
    gen = torch.Generator().manual_seed(0)
    z = 0.5 + 0.01 * torch.rand(n * n, 1, generator=gen)
    verts = torch.cat([g.flip(-1), z], -1)
    i = torch.arange(n - 1)
    I, J = torch.meshgrid(i, i, indexing="ij")
    a = (I * n + J).reshape(-1)
    faces = torch.cat([torch.stack([a, a + n, a + 1], -1), torch.stack([a + 1, a + n, a + n + 1], -1)])
    screen = to_screen(verts[None], default_camera(H, W, fov_deg=40.0))
    frags = rasterize(screen, faces, H, W)
    x0, x1 = screen[0, :, 0].min(), screen[0, :, 0].max()
    y0, y1 = screen[0, :, 1].min(), screen[0, :, 1].max()
    xs, ys = torch.arange(W).float(), torch.arange(H).float()
    inner = ((ys[:, None] > y0 + 1.5) & (ys[:, None] < y1 - 1.5) & (xs > x0 + 1.5) & (xs < x1 - 1.5))
    assert inner.sum() > 400 and frags.mask[0][inner].all()
    monkeypatch.setattr(rast_mod, "_CHUNK", 16)
    assert torch.equal(rasterize(screen, faces, H, W).face_id, frags.face_id)


def test_big_triangles_cover_whole_image():
    H, W = 50, 70
    quad = torch.tensor([[[-5.0, -5.0, 1.0], [5.0, -5.0, 1.0], [5.0, 5.0, 1.0], [-5.0, 5.0, 1.0]]])
    out = render(quad, torch.tensor([[0, 1, 2], [0, 2, 3]]), default_camera(H, W), H, W)
    assert out.mask.all() and torch.allclose(out.depth, torch.ones_like(out.depth))
    # this quad is CW seen from the camera (normal points away): not flipped, so z < 0.5
    assert torch.allclose(out.normal[0, :, 10, 10], torch.tensor([0.5, 0.5, 0.0]), atol=1e-6)


def test_normal_map_image_and_bad_input():
    verts, faces = icosphere(1, 0.1)
    out = render((verts + torch.tensor([0.0, 0.0, 0.5]))[None], faces, default_camera(16, 20), 16, 20)
    img = normal_map_image(out)
    assert img.shape == (1, 16, 20, 3) and img.dtype == np.uint8
    assert tuple(img[0, 8, 10]) == tuple((out.normal[0, :, 8, 10] * 255).round().byte().tolist())
    with pytest.raises(UserError):
        render(verts[None], faces, default_camera(8, 8), 8, 8, outputs=("nope",))
    with pytest.raises(UserError):
        rasterize(verts, faces, 8, 8)
    with pytest.raises(UserError):
        normal_map_image(render(verts[None] + 0.5, faces, default_camera(8, 8), 8, 8, outputs=("mask",)))
