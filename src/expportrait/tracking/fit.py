"""Stage ``base``: camera, pose, beta, psi (and omega) from landmarks, batched over all frames.

``track_video`` runs every stage and returns the fit file record plus a report. The fitter
owns all parameters; the head layer is stateless.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import Tensor

from expportrait.detection.landmarks import INNER51, LandmarkTrack
from expportrait.head.geometry import head_to_camera
from expportrait.render.camera import project
from expportrait.tracking.config import BaseStageConfig
from expportrait.tracking.losses import (coefficient_prior, landmark_loss,
                                         temporal_smoothness)


@dataclass
class BaseFit:
    shape: Tensor        # (n_shape,)
    expression: Tensor   # (F, n_exp)
    jaw: Tensor          # (F, 3)
    rotation: Tensor     # (F, 3)
    translation: Tensor  # (F, 3)
    camera: Tensor       # (F, 4)


def make_camera(frames: int, height: int, width: int, fov_deg: float) -> Tensor:
    """(F, 4) fx, fy, cx, cy for a centred pinhole of vertical field of view ``fov_deg``."""
    f = 0.5 * max(height, width) / math.tan(math.radians(fov_deg) / 2)
    cam = torch.tensor([f, f, (width - 1) / 2.0, (height - 1) / 2.0])
    return cam.expand(frames, 4).clone()


def landmark_weights(contour_weight: float) -> Tensor:
    w = torch.ones(68)
    w[:17] = contour_weight
    return w


def face_scale(lmk68: Tensor) -> Tensor:
    """(F, 68, 2) -> (F,) outer-eye-corner distance in pixels (NME normaliser)."""
    return (lmk68[:, 36] - lmk68[:, 45]).norm(dim=-1).clamp_min(1.0)


def project_landmarks(head, shape, expression, jaw, rotation, translation, camera,
                      offset: Tensor | None = None) -> Tensor:
    """-> (F, 68, 2) pixel coordinates of the model's landmarks (optionally with per-frame dense
    offsets (F, N_s, 3) added to the landmark vertices)."""
    F = expression.shape[0]
    lmk = head.landmarks(shape.expand(F, -1), expression, jaw if head.has_jaw else None)
    if offset is not None:
        lmk = lmk + offset[:, head.landmark_index]
    return project(head_to_camera(lmk, rotation, translation), camera)


def fit_base(head, track: LandmarkTrack, cfg: BaseStageConfig, camera: Tensor,
             device: torch.device | str = "cpu") -> tuple[BaseFit, dict]:
    """Fit the parametric model to the tracked landmarks of all frames at once."""
    target = torch.as_tensor(track.ibug68, dtype=torch.float32, device=device)  # (F, 68, 2)
    F = target.shape[0]
    camera = camera.to(device)
    scale = face_scale(target)
    weights = landmark_weights(cfg.contour_weight).to(device)
    valid = torch.as_tensor(track.valid, device=device)
    frame_w = torch.where(valid, 1.0, 0.05)[:, None] * weights[None]  # (F, 68)

    # initial translation from the eye-corner distance, frontal rotation
    with torch.no_grad():
        zero = head(torch.zeros(1, head.n_shape, device=device),
                    torch.zeros(1, head.n_exp, device=device)).landmarks[0]
        iod_m = (zero[36] - zero[45]).norm()
        centre_h = zero[INNER51].mean(0)
        tz = camera[:, 0] * iod_m / scale + centre_h[2]
        uv = target[:, INNER51].mean(1)
        z = tz - centre_h[2]
        tx = (uv[:, 0] - camera[:, 2]) * z / camera[:, 0] - centre_h[0]
        ty = (uv[:, 1] - camera[:, 3]) * z / camera[:, 1] + centre_h[1]
    rotation = torch.zeros(F, 3, device=device, requires_grad=True)
    translation = torch.stack([tx, ty, tz], -1).clone().requires_grad_(True)
    shape = torch.zeros(1, head.n_shape, device=device, requires_grad=True)
    expression = torch.zeros(F, head.n_exp, device=device, requires_grad=True)
    jaw = torch.zeros(F, 3, device=device, requires_grad=head.has_jaw)

    def losses(with_model: bool) -> dict[str, Tensor]:
        pred = project_landmarks(head, shape, expression, jaw, rotation, translation, camera)
        out = {"loss/landmark": cfg.w_landmark * landmark_loss(pred, target, frame_w, scale),
               "reg/pose_smooth": cfg.w_pose_smooth * (temporal_smoothness(rotation)
                                                       + temporal_smoothness(translation / 0.1))}
        if with_model:
            out["reg/shape"] = cfg.w_shape_prior * coefficient_prior(shape)
            out["reg/expression"] = cfg.w_exp_prior * coefficient_prior(expression)
            out["reg/exp_smooth"] = cfg.w_exp_smooth * temporal_smoothness(expression)
            if head.has_jaw:
                out["reg/jaw"] = cfg.w_jaw_prior * coefficient_prior(jaw)
        return out

    t0 = time.perf_counter()
    opt = torch.optim.Adam([{"params": [rotation], "lr": cfg.lr},
                            {"params": [translation], "lr": cfg.lr * 0.1}])
    for _ in range(cfg.rigid_iters):
        opt.zero_grad(set_to_none=True)
        sum(losses(False).values()).backward()
        opt.step()
    params = [{"params": [rotation], "lr": cfg.lr * 0.5}, {"params": [translation], "lr": cfg.lr * 0.05},
              {"params": [shape], "lr": cfg.lr * 3}, {"params": [expression], "lr": cfg.lr * 3}]
    if head.has_jaw:
        params.append({"params": [jaw], "lr": cfg.lr})
    opt = torch.optim.Adam(params)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(cfg.iters, 1), eta_min=cfg.lr * 0.02)
    for _ in range(cfg.iters):
        opt.zero_grad(set_to_none=True)
        terms = losses(True)
        sum(terms.values()).backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        terms = {k: float(v) for k, v in losses(True).items()}
    fit = BaseFit(shape=shape.detach()[0], expression=expression.detach(), jaw=jaw.detach(),
                  rotation=rotation.detach(), translation=translation.detach(), camera=camera)
    return fit, {"losses": terms, "seconds": time.perf_counter() - t0}

