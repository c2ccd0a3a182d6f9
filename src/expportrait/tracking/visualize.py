"""The one renderer of a fit: its detailed mesh (with eyeballs turned by the fit's gaze, when
asked) as normal maps, masks and shaded images, in the input view, through other cameras (crops)
or from an orbiting camera (novel view)."""
from __future__ import annotations

import numpy as np
import torch

from expportrait.head.geometry import axis_angle_to_matrix, head_to_camera
from expportrait.render.maps import normal_map_image, render
from expportrait.tracking.io import HeadFit
from expportrait.tracking.representation import detailed_vertices


@torch.no_grad()
def render_head(head, fit: HeadFit, idx=None, size: tuple[int, int] | None = None, *,
                camera: torch.Tensor | None = None, eyes: bool = True, yaw_deg: float = 0.0,
                pitch_deg: float = 0.0, shaded: bool = False, chunk: int = 8) -> dict[str, np.ndarray]:
    """Frames ``idx`` (default all) of ``fit`` -> {"normal": (B, H, W, 3) uint8 (``render.maps``
    encoding, background black), "mask": (B, H, W) bool, and with ``shaded`` "shaded": (B, H, W, 3)
    uint8 (the fit's albedo and lighting)}. ``size`` (H, W) default the fit's image; ``camera``
    (B, 4) default the fit's; ``eyes``: eyeballs turned by ``fit.gaze``; a non-zero yaw/pitch
    orbits the camera about the head centre."""
    from expportrait.head.eyes import append_eyes
    if shaded and eyes:
        raise ValueError("the shaded render has no eyeballs (their vertices carry no albedo): eyes=False")
    idx = torch.arange(fit.num_frames) if idx is None else torch.as_tensor(idx)
    H, W = size or fit.image_size
    K = fit.camera[idx] if camera is None else torch.as_tensor(camera, dtype=torch.float32)
    outputs = ("normal", "mask", "shaded") if shaded else ("normal", "mask")
    res = {k: [] for k in outputs}
    for a in range(0, len(idx), chunk):
        i = idx[a:a + chunk]
        verts, faces = detailed_vertices(head, fit, i), head.faces                # (B, N_s, 3)
        if eyes:
            lmk = verts[:, head.landmark_index]
            verts, faces = append_eyes(verts, faces, lmk, None if fit.gaze is None else fit.gaze[i])
        cam = head_to_camera(verts, fit.rotation[i], fit.translation[i])
        if yaw_deg or pitch_deg:
            centre = fit.translation[i][:, None, :]
            aa = torch.tensor([np.radians(pitch_deg), np.radians(yaw_deg), 0.0], dtype=cam.dtype)
            cam = (cam - centre) @ axis_angle_to_matrix(aa).T + centre
        extra = dict(albedo=fit.albedo[None].expand(len(i), -1, -1), sh=fit.sh[i]) if shaded else {}
        out = render(cam, faces, K[a:a + chunk], H, W, outputs=outputs, **extra)   # one rasterization
        res["normal"].append(normal_map_image(out))
        res["mask"].append(out.mask[:, 0].numpy() > 0.5)
        if shaded:
            res["shaded"].append(_u8(out.shaded))
    return {k: np.concatenate(v, 0) for k, v in res.items()}


def render_normals(head, fit: HeadFit, eyes: bool = True, size: tuple[int, int] | None = None,
                   camera: torch.Tensor | None = None) -> np.ndarray:
    """Normal maps of every frame of ``fit`` -> (F, H, W, 3) uint8 (``render_head``)."""
    return render_head(head, fit, size=size, camera=camera, eyes=eyes)["normal"]


def _u8(x: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [0, 1] -> (B, H, W, 3) uint8."""
    return (x.clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8)


def overlay_video(head, fit: HeadFit, frames: np.ndarray, chunk: int = 16) -> np.ndarray:
    """(F, H, W, 3) input -> (F, H, 3W, 3): input | normal map | shaded render."""
    F, H, W = frames.shape[:3]
    rows = []
    for s in range(0, F, chunk):
        idx = list(range(s, min(F, s + chunk)))
        r = render_head(head, fit, idx, (H, W), eyes=False, shaded=True)
        rows.append(np.concatenate([frames[idx], r["normal"], r["shaded"]], axis=2))
    return np.concatenate(rows, 0)
