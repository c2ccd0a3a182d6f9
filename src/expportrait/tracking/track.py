"""``track_video``: landmarks -> stage ``base`` -> stage ``personalized`` -> HeadFit + report;
``project_tracker``: stage ``base`` as the metrics' AED/APD tracker (``metrics.report``)."""
from __future__ import annotations

import contextlib
import time

import numpy as np
import torch

from expportrait.config import to_dict
from expportrait.detection.landmarks import LandmarkTrack, detect_video
from expportrait.metrics.motion import nme
from expportrait.tracking.config import TrackConfig, at_frame_rate
from expportrait.tracking.fit import fit_base, make_camera, project_landmarks
from expportrait.tracking.io import HeadFit


@contextlib.contextmanager
def deterministic_kernels():
    """torch's deterministic kernels inside the block, the caller's setting restored after. The
    photometric stage's CPU backward otherwise sums index gradients in thread order: two fits of
    carphone frame 0 differed by 1.4e-3 in Delta_g, and benchmark reruns by up to 0.07 in AED
    (same speed either way, 13.1 s). ``warn_only``: ops without a deterministic kernel warn."""
    enabled = torch.are_deterministic_algorithms_enabled()
    warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def load_head_for(cfg: TrackConfig):
    from expportrait.head import load_head
    return load_head(cfg.head, model_path=cfg.head_path, density=cfg.density)


def track_video(frames: np.ndarray, fps: float, cfg: TrackConfig | None = None, head=None,
                landmarks: LandmarkTrack | None = None, progress: bool = False,
                normal_targets=None, depth_targets=None) -> tuple[HeadFit, dict]:
    """frames (F, H, W, 3) uint8 -> (HeadFit, report dict).

    ``landmarks`` may be supplied (e.g. from a cache); otherwise MediaPipe runs here.
    ``normal_targets`` / ``depth_targets``: optional (F, 3|1, S, S) maps in crop space for the
    paper's normal/depth L1 losses (S = cfg.personalized.crop_size).
    """
    cfg = cfg or TrackConfig()
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    head = (head or load_head_for(cfg)).to(device)
    F, H, W = frames.shape[:3]
    timings = {}
    t = time.perf_counter()
    track = landmarks or detect_video(frames, face_index=cfg.face_index, progress=progress,
                                      detector=cfg.face_detector)
    timings["landmarks"] = time.perf_counter() - t
    camera = make_camera(F, H, W, cfg.fov_deg)
    base, base_rep = fit_base(head, track, at_frame_rate(cfg.base, fps), camera, device=device)
    timings["base"] = base_rep["seconds"]
    target68 = track.ibug68
    report = {"frames": F, "valid_frames": int(track.valid.sum()), "fps": fps,
              "image_size": [H, W], "head": head.name, "density": cfg.density,
              "num_dense_vertices": head.num_dense, "stages": {}, "timings_s": timings,
              "config": to_dict(cfg)}
    with torch.no_grad():
        lmk_base = project_landmarks(head, base.shape, base.expression, base.jaw, base.rotation,
                                     base.translation, base.camera).cpu().numpy()
    report["stages"]["base"] = {"landmark_nme": nme(lmk_base, target68),
                                "landmark_nme_inner": nme(lmk_base, target68, "inner"),
                                "losses": base_rep["losses"]}
    N = head.num_dense
    static = torch.zeros(N, 3)
    dynamic = torch.zeros(F, N, 3)
    albedo = torch.full((N, 3), 0.7)
    sh = torch.zeros(F, 9, 3)
    expression, rotation, translation = base.expression, base.rotation, base.translation
    lmk_final = lmk_base
    if "personalized" in cfg.stages:
        from expportrait.tracking.personalize import PhotometricProblem, fit_personalized
        pc = cfg.personalized
        total = pc.appearance_iters + pc.iters
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=total, desc="personalized", unit="it", leave=False, disable=None)
        problem = PhotometricProblem(head, frames, track.points, torch.as_tensor(target68),
                                     torch.as_tensor(track.valid), base, pc, device)
        with deterministic_kernels():
            pers, prep = fit_personalized(problem, base, normal_targets, depth_targets,
                                          progress=bar.update if bar else None)
        if bar:
            bar.close()
        timings["personalized"] = prep["seconds"]
        static, dynamic, albedo, sh = (pers.static_offset.cpu(), pers.dynamic_offset.cpu(),
                                       pers.albedo.cpu(), pers.sh.cpu())
        expression, rotation, translation = (pers.expression.cpu(), pers.rotation.cpu(),
                                             pers.translation.cpu())
        with torch.no_grad():
            lmk_final = project_landmarks(head.cpu(), base.shape.cpu(), expression, base.jaw.cpu(),
                                          rotation, translation, base.camera.cpu(),
                                          offset=static[None] + dynamic).numpy()
        report["stages"]["base"]["photometric_psnr"] = prep["psnr_base"]
        report["stages"]["personalized"] = {
            "landmark_nme": nme(lmk_final, target68), "landmark_nme_inner": nme(lmk_final, target68, "inner"),
            "photometric_psnr": prep["psnr_personalized"], "losses": prep["losses"]}
    head.cpu()
    fit = HeadFit(shape=base.shape.cpu(), static_offset=static, expression=expression.cpu(),
                  jaw=base.jaw.cpu(), rotation=rotation.cpu(), translation=translation.cpu(),
                  camera=base.camera.cpu(), dynamic_offset=dynamic, albedo=albedo, sh=sh,
                  valid=torch.as_tensor(track.valid), landmarks68_2d=torch.as_tensor(lmk_final, dtype=torch.float32),
                  meta={"head": head.name, "density": cfg.density, "head_path": cfg.head_path,
                        "image_size": [H, W], "fps": fps, "n_shape": head.n_shape, "n_exp": head.n_exp,
                        "num_dense": head.num_dense})
    timings["total"] = sum(timings.values())
    report["seconds_per_frame"] = timings["total"] / F
    return fit, report


def project_tracker():
    """The project's tracker as ``tracker(frames (F, H, W, 3) uint8, fps) -> dict`` (see report.py)."""
    from expportrait.head.geometry import axis_angle_to_matrix, matrix_to_euler

    def _np(x) -> np.ndarray:
        return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)

    def tracker(frames: np.ndarray, fps: float) -> dict:
        # expression and pose come from stage base; the photometric stage only refines them
        fit, _ = track_video(frames, fps, TrackConfig(stages=("base",)))
        rotation = torch.as_tensor(_np(fit.rotation), dtype=torch.float64)  # (F, 3) axis-angle
        euler = matrix_to_euler(axis_angle_to_matrix(rotation))  # (F, 3) yaw, pitch, roll radians
        return {"expression": _np(fit.expression), "pose": _np(euler),
                "landmarks68_2d": _np(fit.landmarks68_2d), "valid": _np(fit.valid).astype(bool)}

    return tracker
