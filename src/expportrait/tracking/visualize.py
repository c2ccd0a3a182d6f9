"""Renders of a fit: detailed meshes, normal maps and shaded images, in the input view or a
novel view (camera orbit about the head)."""
from __future__ import annotations

import numpy as np
import torch

from expportrait.render.maps import render
from expportrait.tracking.io import HeadFit
from expportrait.tracking.representation import camera_vertices


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
