"""Render normal / depth / mask / SH-shaded maps of camera-space meshes from any camera."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from expportrait.errors import UserError
from expportrait.head.geometry import vertex_normals
from expportrait.render.camera import to_screen
from expportrait.render.rasterize import Fragments, interpolate, rasterize, soft_silhouette
from expportrait.render.shading import default_sh, sh_shading

OUTPUTS = ("normal", "depth", "mask", "shaded", "soft_mask")
GREY_ALBEDO = 0.75
# OpenCV camera axes (x right, y down, z forward) -> OpenGL-style (x right, y up, z to the viewer)
_CV_TO_GL = (1.0, -1.0, -1.0)


@dataclass
class RenderOutput:
    """Rendered maps; a map is None unless asked for in ``outputs``.

    normal: (B, 3, H, W) in [0, 1]: unit camera-space normal, OpenGL-style axes (x right, y up,
        z towards the viewer), mapped n * 0.5 + 0.5; background 0. A surface facing the camera
        is (0.5, 0.5, 1.0). Back faces (seen from behind) are not flipped (z < 0.5 there).
    depth: (B, 1, H, W) camera z in metres, 0 on background.
    mask: (B, 1, H, W) float {0, 1} hard coverage of pixel centres (always present; no gradient).
    shaded: (B, 3, H, W) albedo * SH irradiance (``render.shading``), 0 on background.
    frags: the rasterizer's ``Fragments`` (face ids, perspective-correct barycentrics, depth).
    soft_mask: (B, 1, H, W) in [0, 1] anti-aliased coverage with gradients w.r.t. the vertices
        at silhouette pixels (``rasterize.soft_silhouette``).
    """

    normal: Tensor | None
    depth: Tensor | None
    mask: Tensor
    shaded: Tensor | None
    frags: Fragments
    soft_mask: Tensor | None = None


def render(verts_cam: Tensor, faces: Tensor, camera: Tensor, height: int, width: int, *,
           albedo: Tensor | None = None, sh: Tensor | None = None,
           outputs: tuple[str, ...] = ("normal", "depth", "mask"), backend: str = "auto") -> RenderOutput:
    """Rasterize and shade a batch of meshes.

    verts_cam: (B, V, 3) OpenCV camera space (x right, y down, z forward), metres, z > 0 visible.
    faces: (T, 3) int64, counter-clockwise seen from outside (head-space convention; head ->
        camera is a proper rotation so the outward normals stay outward).
    camera: (B, 4) or (1, 4) fx, fy, cx, cy in pixels (``render.camera``).
    albedo: (B, V, 3) in [0, 1] per-vertex colour, or None (grey ``GREY_ALBEDO``).
    sh: (B, 9, 3) SH lighting coefficients in the camera's OpenGL-style frame, or None (a grey
        ambient + frontal light, ``shading.default_sh``).
    outputs: any of "normal", "depth", "mask", "shaded", "soft_mask".
    backend: "torch" | "nvdiffrast" | "auto" (see ``rasterize.rasterize``).
    """
    unknown = set(outputs) - set(OUTPUTS)
    if unknown:
        raise UserError(f"unknown render outputs {sorted(unknown)} (choose from {', '.join(OUTPUTS)})")
    if verts_cam.ndim != 3 or verts_cam.shape[-1] != 3:
        raise UserError(f"verts_cam must be (B, V, 3), got {tuple(verts_cam.shape)}")
    B = verts_cam.shape[0]
    camera = camera.to(verts_cam).expand(B, 4) if camera.shape[0] == 1 else camera.to(verts_cam)
    faces = faces.to(device=verts_cam.device, dtype=torch.long)
    screen = to_screen(verts_cam, camera)                          # (B, V, 3) px, py, z
    frags = rasterize(screen, faces, height, width, backend=backend)
    mask = frags.mask.to(verts_cam.dtype)[:, None]                 # (B, 1, H, W)

    normal = shaded = None
    if "normal" in outputs or "shaded" in outputs:
        flip = verts_cam.new_tensor(_CV_TO_GL)
        attrs = [vertex_normals(verts_cam, faces) * flip]          # (B, V, 3) GL-style normals
        if "shaded" in outputs:
            attrs.append(albedo.to(verts_cam) if albedo is not None
                         else torch.full_like(verts_cam, GREY_ALBEDO))
        pix = interpolate(torch.cat(attrs, -1), faces, frags)      # (B, H, W, 3 or 6)
        n = torch.nn.functional.normalize(pix[..., :3], dim=-1, eps=1e-8)  # (B, H, W, 3), 0 on bg
        if "normal" in outputs:
            normal = ((n * 0.5 + 0.5) * frags.mask[..., None]).permute(0, 3, 1, 2)  # (B, 3, H, W)
        if "shaded" in outputs:
            light = default_sh(B).to(verts_cam) if sh is None else sh.to(verts_cam)
            irr = sh_shading(n, light)                             # (B, H, W, 3)
            shaded = (pix[..., 3:6] * irr * frags.mask[..., None]).permute(0, 3, 1, 2)
    depth = frags.depth[:, None] if "depth" in outputs else None   # (B, 1, H, W)
    soft = soft_silhouette(screen, faces, frags)[:, None] if "soft_mask" in outputs else None
    return RenderOutput(normal=normal, depth=depth, mask=mask, shaded=shaded, frags=frags,
                        soft_mask=soft)


def normal_map_coverage(images: np.ndarray) -> np.ndarray:
    """(..., H, W, 3) uint8 ``normal_map_image`` pictures -> (..., H, W) bool: where the mesh is
    (the background is black; a rendered normal is never that dark in every channel)."""
    return np.asarray(images).max(axis=-1) > 10


def normal_map_image(out: RenderOutput) -> np.ndarray:
    """(B, H, W, 3) uint8 RGB picture of ``out.normal`` (background black)."""
    if out.normal is None:
        raise UserError("render(..., outputs=...) did not include 'normal'")
    img = (out.normal.detach().permute(0, 2, 3, 1).clamp(0, 1) * 255.0).round()
    return img.to(torch.uint8).cpu().numpy()
