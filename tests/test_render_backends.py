"""Backends: torch fallback, nvdiffrast guard + clip-space round trip, moderngl cross-check."""
from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
import torch

from expportrait.errors import UserError
from expportrait.render import default_camera, render, to_screen
from expportrait.render import nvdiff
from expportrait.render.rasterize import rasterize
from test_render import icosphere


def _scene(H=20, W=26):
    verts, faces = icosphere(2, 0.1)
    vc = torch.stack([verts + torch.tensor([0.0, 0.0, 0.5]), verts + torch.tensor([0.03, 0.01, 0.6])])
    return to_screen(vc, default_camera(H, W, batch=2)), faces, H, W


@pytest.mark.skipif(nvdiff.available(), reason="nvdiffrast is installed here")
def test_nvdiffrast_absent_auto_falls_back_and_explicit_raises():
    screen, faces, H, W = _scene()
    auto = rasterize(screen, faces, H, W, backend="auto")
    ref = rasterize(screen, faces, H, W, backend="torch")
    assert torch.equal(auto.face_id, ref.face_id) and torch.equal(auto.bary, ref.bary)
    with pytest.raises(UserError, match="nvdiffrast"):
        rasterize(screen, faces, H, W, backend="nvdiffrast")
    with pytest.raises(UserError, match="nvdiffrast"):
        render(screen, faces, default_camera(H, W), H, W, backend="nvdiffrast")
    with pytest.raises(UserError, match="unknown render backend"):
        rasterize(screen, faces, H, W, backend="opengl")


def _fake_nvdiffrast() -> types.ModuleType:
    """A stand-in for ``nvdiffrast.torch`` that inverts the documented clip-space / output
    conventions (pixel centre (i + 0.5) / W * 2 - 1, row 0 at NDC y = -1, output (u, v, z/w,
    id + 1) with weights (u, v, 1 - u - v)) and rasterizes with the torch backend."""
    mod = types.ModuleType("nvdiffrast.torch")
    mod.RasterizeCudaContext = lambda device=None: object()

    def rasterize_fn(ctx, pos, tri, resolution):
        H, W = resolution
        w = pos[..., 3]
        screen = torch.stack([(pos[..., 0] / w + 1) * W / 2 - 0.5, (pos[..., 1] / w + 1) * H / 2 - 0.5, w], -1)
        fr = rasterize(screen, tri.long(), H, W, backend="torch")
        zw = torch.zeros_like(fr.depth)                              # z/w: unused by our path
        out = torch.stack([fr.bary[..., 0], fr.bary[..., 1], zw, (fr.face_id + 1).float()], -1)
        return out, None

    mod.rasterize = rasterize_fn
    return mod


def test_nvdiffrast_code_path_with_a_stand_in(monkeypatch):
    screen, faces, H, W = _scene()
    monkeypatch.setattr(nvdiff, "_module", _fake_nvdiffrast)
    got = nvdiff.rasterize_nvdiffrast(screen.double(), faces, H, W)
    ref = rasterize(screen.double(), faces, H, W, backend="torch")
    assert torch.equal(got.face_id, ref.face_id)
    assert torch.allclose(got.bary, ref.bary, atol=1e-5)
    assert torch.allclose(got.depth, ref.depth, atol=1e-5)
    clip = nvdiff.screen_to_clip(screen, H, W)
    ndc_z = clip[..., 2] / clip[..., 3]
    assert (ndc_z > -1).all() and (ndc_z < 1).all()                 # inside the depth range
    order = torch.argsort(screen[0, :, 2])
    assert (ndc_z[0, order].diff() >= 0).all()                      # monotonic in camera z


def test_torch_backend_matches_moderngl_ids():
    pytest.importorskip("moderngl")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    try:
        from renderer import ModernGLPass, synthetic_mesh, place_in_view
        verts, faces = synthetic_mesh(40)
        cam_verts, camera = place_in_view(verts, 64)
        try:
            gl = ModernGLPass(faces.numpy(), verts.shape[0], 64, 64)
        except Exception as err:  # no EGL on this machine
            pytest.skip(f"moderngl EGL context unavailable: {err}")
        screen = to_screen(cam_verts, camera)
        ids = gl.draw(screen[0].numpy(), torch.zeros_like(screen[0]).numpy(), "id")[..., 0]
        gl.release()
    finally:
        sys.path.pop(0)
    gl_face = torch.from_numpy(ids.copy()).round().long() - 1
    ours = rasterize(screen, faces, 64, 64, backend="torch").face_id[0]
    assert (ours >= 0).float().mean() > 0.3
    assert (ours == gl_face).float().mean() > 0.99
