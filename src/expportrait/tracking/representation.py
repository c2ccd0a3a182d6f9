"""The paper's personalized head representation of a fit: the detailed mesh
Ṽ^s(i) = V^s + Δ_g + Δ_f(i) (``detailed_vertices``, head space) and the same in OpenCV camera
space (``camera_vertices``), optionally seen from an orbiting camera (novel view)."""
from __future__ import annotations

import numpy as np
import torch

from expportrait.head.geometry import axis_angle_to_matrix, head_to_camera
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
