"""Retargeting a driving fit onto a source (target) identity -> a HeadFit in the source's image.

Numbered steps of ``retarget``:

1. check the two fits against the head model; pick the driver reference frame (given, or the
   most neutral frontal valid frame: smallest |psi| / sqrt(n_exp) + |omega| + |rotation|);
2. expression: psi, omega from the driver times ``intensity``; with only some of the regions
   "eyes" / "lips" selected, the selected regions move like the driver and the rest keeps the
   source's own expression (source frame): psi is re-solved by least squares and what the global
   expression basis cannot express goes into Delta_f per vertex;
3. Delta_f = G(source V^s + Delta_g, E(psi, omega)) (blended the same way for partial regions);
4. pose: ``relative``: R = R_d(i) R_d(ref)^T R_s and the driver's translation change (as a view
   angle) added to the source's, scaled by the two heads' sizes in view (``translation`` "face":
   a head moves as far for its size as the driver's does, as LivePortrait's relative motion in
   its face crop; "frame": as far for the image, which flings a small head in a wide photo
   across it); ``absolute``: the driver's rotation, with a translation that
   keeps the driver's framing (image position and head size relative to the image size);
   both optionally Gaussian-smoothed over time (``smooth`` = sigma in frames);
5. gaze from the driver ("eyes"), else the source's;
6. camera, lighting, albedo, beta, Delta_g from the source; ``landmarks68_2d`` projected.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from expportrait.data.smooth import gaussian_filter_time
from expportrait.errors import UserError
from expportrait.head.geometry import (apply_laplacian, axis_angle_to_matrix, matrix_to_axis_angle,
                                       uniform_laplacian)
from expportrait.tracking.fit import project_landmarks
from expportrait.tracking.io import HeadFit

REGIONS = ("pose", "expression", "eyes", "lips")
POSE_MODES = ("relative", "absolute")  # head pose (not the pipeline's MODES: auto/self/cross)
TRANSLATION_MODES = ("face", "frame")  # relative mode: the translation change per face size or image


@dataclass(frozen=True)
class RetargetConfig:
    mode: str = "relative"                   # head pose, one of POSE_MODES
    regions: tuple[str, ...] = REGIONS       # what follows the driver
    intensity: float = 1.0                   # expression (psi, omega) multiplier
    smooth: float = 0.0                      # Gaussian sigma (frames) of the pose; 0 = off
    reference: int | None = None             # driver reference frame; None = most neutral frontal
    source_frame: int = 0                    # source frame giving its pose, camera, lighting
    translation: str = "face"                # relative mode, one of TRANSLATION_MODES


def check_config(cfg: RetargetConfig) -> None:
    if cfg.mode not in POSE_MODES:
        raise UserError(f"--pose-mode must be one of {', '.join(POSE_MODES)}, got {cfg.mode!r}")
    bad = set(cfg.regions) - set(REGIONS)
    if bad or not cfg.regions:
        raise UserError(f"--regions must be a comma list of {', '.join(REGIONS)}, got {','.join(cfg.regions)!r}")
    if not (0.0 <= cfg.intensity <= 3.0):
        raise UserError(f"--intensity must be in [0, 3], got {cfg.intensity}")
    if cfg.smooth < 0:
        raise UserError(f"--smooth must be >= 0, got {cfg.smooth}")
    if cfg.translation not in TRANSLATION_MODES:
        raise UserError(f"translation must be one of {', '.join(TRANSLATION_MODES)}, got {cfg.translation!r}")


def reference_frame(fit: HeadFit) -> int:
    """Most neutral frontal valid frame: argmin |psi|/sqrt(n_exp) + |omega| + |rotation|."""
    score = (fit.expression.norm(dim=-1) / math.sqrt(fit.expression.shape[1])
             + fit.jaw.norm(dim=-1) + fit.rotation.norm(dim=-1))
    score = torch.where(fit.valid.bool(), score, torch.full_like(score, float("inf")))
    if not torch.isfinite(score).any():
        score = torch.nan_to_num(score, posinf=0.0)
    return int(score.argmin())


def gaussian_smooth(x: Tensor, sigma: float) -> Tensor:
    """x (F, C) -> (F, C) Gaussian-filtered over time (``data.smooth``, mirrored ends, 3 sigma)."""
    if sigma <= 0 or x.shape[0] < 2:
        return x
    return torch.as_tensor(gaussian_filter_time(x.detach().cpu().numpy(), sigma, mode="mirror",
                                                truncate=3.0), dtype=x.dtype)


def _framing(cam: Tensor, size) -> Tensor:
    """(F, 4) camera, image (H, W) -> (F,) pixels per unit of view-angle tangent / image size."""
    return cam[:, 0] / float(min(size))


def _view_size(fit: HeadFit, frame: int) -> float:
    """How big a fit's face is in view at ``frame``: the RMS distance of its brows, nose and eyes
    (68-point 17-47, px) from their centre over the focal length (px): a view-angle tangent."""
    p = fit.landmarks68_2d[frame, 17:48].double()
    return float((p - p.mean(0)).norm(dim=-1).pow(2).mean().sqrt() / fit.camera[frame, 0].double())


def retarget_pose(source: HeadFit, driving: HeadFit, cfg: RetargetConfig, ref: int
                  ) -> tuple[Tensor, Tensor]:
    """-> (rotation (F_d, 3), translation (F_d, 3)) of the source head following the driver."""
    F, s = driving.num_frames, cfg.source_frame
    rot_d = gaussian_smooth(driving.rotation, cfg.smooth)
    tr_d = gaussian_smooth(driving.translation, cfg.smooth)
    cam_s = source.camera[s:s + 1].expand(F, 4)
    k = _framing(driving.camera, driving.image_size) / _framing(cam_s, source.image_size)  # (F,)
    if cfg.mode == "absolute":
        z = tr_d[:, 2] / k
        xy = tr_d[:, :2] / tr_d[:, 2:3] * k[:, None] * z[:, None]
        return rot_d, torch.cat([xy, z[:, None]], -1)
    if cfg.translation == "face":
        size_s, size_d = _view_size(source, s), _view_size(driving, ref)
        if math.isfinite(size_s) and math.isfinite(size_d) and size_s > 0 and size_d > 0:
            k = torch.full_like(k, size_s / size_d)
    Rd, Rref = axis_angle_to_matrix(rot_d), axis_angle_to_matrix(rot_d[ref])
    R = Rd @ Rref.T @ axis_angle_to_matrix(source.rotation[s])                    # (F, 3, 3)
    ts = source.translation[s]
    z = ts[2] * tr_d[:, 2] / tr_d[ref, 2]
    tan = ts[:2] / ts[2] + (tr_d[:, :2] / tr_d[:, 2:3] - tr_d[ref, :2] / tr_d[ref, 2]) * k[:, None]
    return matrix_to_axis_angle(R), torch.cat([tan * z[:, None], z[:, None]], -1)


def region_weights(head, names: tuple[str, ...], iters: int = 3) -> Tensor:
    """(N_s,) soft weights in [0, 1]: union of head.regions[names], widened by Laplacian smoothing."""
    w = torch.zeros(head.num_dense)
    for n in names:
        w = torch.maximum(w, head.regions[n].float())
    L = uniform_laplacian(head.faces.cpu(), head.num_dense)
    for _ in range(iters):
        w = torch.maximum(w, (w - apply_laplacian(L, w[None, :, None])[0, :, 0]).clamp(0, 1))
    return w


@torch.no_grad()
def solve_partial_expression(head, shape: Tensor, psi_drv: Tensor, psi_src: Tensor, w: Tensor,
                             ridge: float = 1e-4) -> tuple[Tensor, Tensor]:
    """The expression displacement that follows the driver where w = 1 and the source (psi_src
    (n_exp,)) where w = 0, split into -> (psi (F, n_exp): least squares on the linearised
    expression basis, residual (F, N_s, 3) metres: what psi cannot express, per vertex)."""
    n = head.n_exp
    coeffs = torch.cat([torch.zeros(1, n), torch.eye(n)])                      # (n + 1, n)
    dense = head(shape.expand(n + 1, -1), coeffs).dense                         # (n + 1, N, 3)
    J = (dense[1:] - dense[:1]).reshape(n, -1).T                                # (3N, n)
    wv = w[:, None].expand(-1, 3).reshape(-1, 1)                                 # (3N, 1)
    target = wv * (J @ psi_drv.T) + (1 - wv) * (J @ psi_src[:, None])           # (3N, F)
    A = J.T @ J + ridge * torch.eye(n) * (J.T @ J).diagonal().mean()
    psi = torch.linalg.solve(A, J.T @ target)                                    # (n, F)
    residual = (target - J @ psi).T.reshape(-1, head.num_dense, 3)              # (F, N, 3)
    return psi.T, residual


def _check(source: HeadFit, driving: HeadFit, head) -> None:
    for name, fit in (("source", source), ("driving", driving)):
        if fit.expression.shape[1] != head.n_exp:
            raise UserError(f"{name} fit has {fit.expression.shape[1]} expression coefficients; head "
                            f"'{head.name}' has {head.n_exp} (track both with the same head model)")
        if fit.meta.get("head", head.name) != head.name:
            raise UserError(f"{name} fit was tracked with head '{fit.meta.get('head')}', not '{head.name}'")
    if source.static_offset.shape[0] != head.num_dense:
        raise UserError(f"source fit has {source.static_offset.shape[0]} dense vertices; the head at density "
                        f"'{source.meta.get('density')}' has {head.num_dense}")


@torch.no_grad()
def retarget(source: HeadFit, driving: HeadFit, head, model=None,
             cfg: RetargetConfig = RetargetConfig()) -> HeadFit:
    """source: fit of the target identity (image or video); driving: fit of the driver (F_d
    frames); head: the head model both were tracked with (at the source's density); model: an
    ``ExpressionTransfer`` or None (Delta_f = 0, the "base only" variant)
    -> HeadFit with F_d frames in the source's image space."""
    check_config(cfg)
    _check(source, driving, head)
    F = driving.num_frames
    s = min(max(cfg.source_frame, 0), source.num_frames - 1)
    cfg = replace(cfg, source_frame=s)
    ref = reference_frame(driving) if cfg.reference is None else cfg.reference
    if not 0 <= ref < F:
        raise UserError(f"--reference {ref} is outside the driving clip (0..{F - 1})")
    regions = set(cfg.regions)
    expr_all = "expression" in regions
    parts = tuple(r for r in ("eyes", "lips") if r in regions)

    # 2. expression
    psi_d = driving.expression * cfg.intensity
    jaw_d = driving.jaw * cfg.intensity
    psi_s, jaw_s = source.expression[s], source.jaw[s]
    residual = None
    if expr_all:
        psi, jaw, w = psi_d, jaw_d, None
    elif parts:
        w = region_weights(head, parts)
        psi, residual = solve_partial_expression(head, source.shape, psi_d, psi_s, w)
        jaw = jaw_d if "lips" in parts else jaw_s.expand(F, 3)
    else:
        psi, jaw, w = psi_s.expand(F, -1), jaw_s.expand(F, 3), torch.zeros(head.num_dense)

    # 3. dynamic offset
    dyn_src = source.dynamic_offset[s][None]                                   # (1, N, 3)
    if model is not None and (expr_all or parts):
        dyn_drv = model.predict_for_head(head, source.shape, source.static_offset, psi_d, jaw_d)
    else:
        dyn_drv = torch.zeros(F, head.num_dense, 3)
    dyn = dyn_drv if w is None else w[None, :, None] * dyn_drv + (1 - w[None, :, None]) * dyn_src
    if residual is not None:  # the exact per-vertex region blend (psi alone is too global)
        dyn = dyn + residual

    # 4. pose
    if "pose" in regions:
        rotation, translation = retarget_pose(source, driving, cfg, ref)
    else:
        rotation, translation = source.rotation[s].expand(F, 3), source.translation[s].expand(F, 3)

    # 5. gaze
    gaze = None
    if (expr_all or "eyes" in parts) and driving.gaze is not None:
        gaze = driving.gaze.clone()
    elif source.gaze is not None:
        gaze = source.gaze[s].expand(F, 2, 3).clone()

    # 6. assemble
    camera = source.camera[s].expand(F, 4).clone()
    lmk2d = project_landmarks(head, source.shape, psi, jaw, rotation, translation, camera,
                              offset=source.static_offset[None] + dyn)
    meta = {**source.meta, "fps": driving.meta.get("fps", source.meta.get("fps")),
            "transfer": {"mode": cfg.mode, "regions": list(cfg.regions), "intensity": cfg.intensity,
                         "smooth": cfg.smooth, "reference": ref, "source_frame": s,
                         "dynamic_offset": "learned" if model is not None else "zero"}}
    return HeadFit(shape=source.shape.clone(), static_offset=source.static_offset.clone(),
                   expression=psi.contiguous(), jaw=jaw.contiguous().clone(), rotation=rotation.contiguous(),
                   translation=translation.contiguous(), camera=camera, dynamic_offset=dyn.contiguous(),
                   albedo=source.albedo.clone(), sh=source.sh[s].expand(F, -1, -1).clone(),
                   valid=driving.valid.clone(), landmarks68_2d=lmk2d, gaze=gaze, meta=meta)
