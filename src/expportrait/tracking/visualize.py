"""Renders of a fit: detailed meshes, normal maps and shaded images, in the input view or a
novel view (camera orbit about the head)."""
from __future__ import annotations

import numpy as np
import torch

from expportrait.head.geometry import axis_angle_to_matrix, head_to_camera
from expportrait.render.maps import render
from expportrait.tracking.io import HeadFit


def detailed_vertices(head, fit: HeadFit, idx) -> torch.Tensor:
    """(B, N_s, 3) head-space detailed mesh V^s + Delta_g + Delta_f(i) for frames ``idx``."""
    idx = torch.as_tensor(idx)
    out = head(fit.shape.expand(len(idx), -1), fit.expression[idx], fit.jaw[idx] if head.has_jaw else None)
    return out.dense + fit.static_offset[None] + fit.dynamic_offset[idx]


def camera_vertices(head, fit: HeadFit, idx, yaw_deg: float = 0.0, pitch_deg: float = 0.0) -> torch.Tensor:
    """(B, N_s, 3) OpenCV camera-space vertices; a non-zero yaw/pitch orbits the camera about the
    head centre (novel view)."""
    idx = torch.as_tensor(idx)
    cam = head_to_camera(detailed_vertices(head, fit, idx), fit.rotation[idx], fit.translation[idx])
    if yaw_deg or pitch_deg:
        centre = fit.translation[idx][:, None, :]
        aa = torch.tensor([np.radians(pitch_deg), np.radians(yaw_deg), 0.0], dtype=cam.dtype)
        Rv = axis_angle_to_matrix(aa)
        cam = (cam - centre) @ Rv.T + centre
    return cam


@torch.no_grad()
def render_frames(head, fit: HeadFit, idx, height: int, width: int, camera: torch.Tensor | None = None,
                  yaw_deg: float = 0.0, pitch_deg: float = 0.0, shaded: bool = True) -> dict[str, np.ndarray]:
    """-> {"normal": (B, H, W, 3) uint8, "shaded": (B, H, W, 3) uint8, "mask": (B, H, W) bool}."""
    idx = torch.as_tensor(idx)
    cam = camera_vertices(head, fit, idx, yaw_deg, pitch_deg)
    K = fit.camera[idx] if camera is None else camera
    outputs = ("normal", "mask", "shaded") if shaded else ("normal", "mask")
    out = render(cam, head.faces, K, height, width, albedo=fit.albedo[None].expand(len(idx), -1, -1),
                 sh=fit.sh[idx], outputs=outputs)  # one rasterization for all maps
    res = {"normal": _u8(out.normal), "mask": out.mask[:, 0].numpy() > 0.5}
    if shaded:
        res["shaded"] = _u8(out.shaded)
    return res


def _u8(x: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [0, 1] -> (B, H, W, 3) uint8."""
    return (x.clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8)


def overlay_video(head, fit: HeadFit, frames: np.ndarray, chunk: int = 16) -> np.ndarray:
    """(F, H, W, 3) input -> (F, H, 3W, 3): input | normal map | shaded render."""
    F, H, W = frames.shape[:3]
    rows = []
    for s in range(0, F, chunk):
        idx = list(range(s, min(F, s + chunk)))
        r = render_frames(head, fit, idx, H, W)
        rows.append(np.concatenate([frames[idx], r["normal"], r["shaded"]], axis=2))
    return np.concatenate(rows, 0)
