"""Gaze: per-frame eyeball rotations from the MediaPipe iris landmarks (beyond the paper).

Geometric model (``head.eyes``): each eyeball is a sphere of radius ~12 mm behind the eye
opening of the fitted mesh; the iris-disc centre lies at ``iris_depth`` from the eyeball centre
along the gaze direction. Per frame and eye:

1. the detected eye corners (MediaPipe 33/133 right, 362/263 left) are mapped onto the fitted
   mesh's projected corners (iBUG 36/39, 42/45) by a 2-D similarity, which carries the detected
   iris centre (468 right, 473 left) into the fitted mesh's image frame (removes fit error);
2. the camera ray through that pixel is intersected with the sphere of radius ``iris_depth``
   around the eyeball centre (camera space; the nearest point if the ray misses);
3. the centre -> hit direction is rotated back into head space and turned into the minimal
   rotation from +z (``eyes.direction_to_axis_angle``), clamped to ``max_angle``.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from expportrait.errors import UserError
from expportrait.head.eyes import EyeConfig, direction_to_axis_angle, eye_centres, iris_depth
from expportrait.head.geometry import HEAD_TO_CV, axis_angle_to_matrix, head_to_camera
from expportrait.render.camera import project
from expportrait.tracking.io import HeadFit

MP_CORNERS = ((33, 133), (362, 263))  # (right outer, right inner), (left inner, left outer)
IBUG_CORNERS = ((36, 39), (42, 45))   # the same points on the fitted mesh
MP_IRIS = (468, 473)


def fit_landmarks3d(head, fit: HeadFit) -> Tensor:
    """(F, 68, 3) head-space iBUG points of the fitted detailed mesh (with Delta_g, Delta_f)."""
    F = fit.num_frames
    lmk = head.landmarks(fit.shape.expand(F, -1), fit.expression, fit.jaw if head.has_jaw else None)
    idx = head.landmark_index
    return lmk + fit.static_offset[idx][None] + fit.dynamic_offset[:, idx]


def _similarity(src_a: Tensor, src_b: Tensor, dst_a: Tensor, dst_b: Tensor, p: Tensor) -> Tensor:
    """2-D similarity taking (src_a, src_b) to (dst_a, dst_b), applied to p; all (..., 2)."""
    s = torch.view_as_complex((src_b - src_a).contiguous())
    d = torch.view_as_complex((dst_b - dst_a).contiguous())
    q = torch.view_as_complex((p - src_a).contiguous())
    return torch.view_as_real(q * d / torch.where(s.abs() < 1e-6, torch.ones_like(s), s)) + dst_a


def _ray_sphere(ray: Tensor, centre: Tensor, radius: float) -> Tensor:
    """Rays from the camera origin (..., 3) unit, spheres (..., 3) -> nearest hit point (..., 3);
    where a ray misses, its closest point to the centre pushed onto the sphere."""
    b = (ray * centre).sum(-1)                                   # (...,)
    c = (centre * centre).sum(-1) - radius ** 2
    disc = b * b - c
    t = b - disc.clamp_min(0.0).sqrt()
    hit = ray * t[..., None]
    miss = centre + radius * torch.nn.functional.normalize(ray * b[..., None] - centre, dim=-1)
    return torch.where((disc >= 0)[..., None], hit, miss)


@torch.no_grad()
def estimate_gaze(points: np.ndarray | Tensor, head, fit: HeadFit, cfg: EyeConfig = EyeConfig(),
                  max_angle: float = math.radians(45)) -> Tensor:
    """points (F, 478, 2|3) MediaPipe landmarks in pixels of the fit's frames; ``fit`` the fitted
    head of the same frames -> gaze (F, 2, 3) axis-angle, head space (right eye, left eye)."""
    pts = torch.as_tensor(np.asarray(points)[..., :2], dtype=torch.float32)
    F = fit.num_frames
    if pts.ndim != 3 or pts.shape[0] != F or pts.shape[1] < 478:
        raise UserError(f"gaze needs (F={F}, 478, 2) MediaPipe landmarks with irises, got {tuple(pts.shape)}")
    lmk = fit_landmarks3d(head, fit)                                        # (F, 68, 3)
    cam_lmk = head_to_camera(lmk, fit.rotation, fit.translation)            # (F, 68, 3)
    proj = project(cam_lmk, fit.camera)                                     # (F, 68, 2)
    centres = head_to_camera(eye_centres(lmk, cfg), fit.rotation, fit.translation)  # (F, 2, 3)
    R = HEAD_TO_CV @ axis_angle_to_matrix(fit.rotation)                     # (F, 3, 3) head -> cam
    out = []
    for e in range(2):
        (ma, mb), (ia, ib) = MP_CORNERS[e], IBUG_CORNERS[e]
        u = _similarity(pts[:, ma], pts[:, mb], proj[:, ia], proj[:, ib], pts[:, MP_IRIS[e]])  # (F, 2)
        K = fit.camera
        ray = torch.stack([(u[:, 0] - K[:, 2]) / K[:, 0], (u[:, 1] - K[:, 3]) / K[:, 1],
                           torch.ones(F)], -1)
        ray = torch.nn.functional.normalize(ray, dim=-1)                    # (F, 3)
        hit = _ray_sphere(ray, centres[:, e], iris_depth(cfg))
        d_cam = torch.nn.functional.normalize(hit - centres[:, e], dim=-1)
        d_head = torch.einsum("fji,fj->fi", R, d_cam)                        # R^T d
        aa = direction_to_axis_angle(d_head)                                # (F, 3)
        ang = aa.norm(dim=-1, keepdim=True)
        out.append(aa * (ang.clamp_max(max_angle) / ang.clamp_min(1e-9)))
    return torch.stack(out, 1)                                              # (F, 2, 3)


def add_gaze(fit: HeadFit, points: np.ndarray | Tensor, head, cfg: EyeConfig = EyeConfig()) -> HeadFit:
    """A copy of ``fit`` with ``gaze`` estimated from the MediaPipe ``points`` (F, 478, 2|3)."""
    from dataclasses import replace
    return replace(fit, gaze=estimate_gaze(points, head, fit, cfg), meta={**fit.meta, "gaze": "mediapipe-iris"})


def synthetic_iris_points(head, fit: HeadFit, gaze: Tensor, cfg: EyeConfig = EyeConfig()) -> Tensor:
    """Render-free forward model (for tests): (F, 478, 2) landmarks whose eye corners are the
    fit's projected corners and whose iris centres are the projected iris-disc centres of eyes
    rotated by ``gaze`` (F, 2, 3). Other points are zero."""
    from expportrait.head.eyes import axis_angle_to_direction
    lmk = fit_landmarks3d(head, fit)
    F = fit.num_frames
    iris = eye_centres(lmk, cfg) + iris_depth(cfg) * axis_angle_to_direction(gaze)  # (F, 2, 3) head
    pts = torch.zeros(F, 478, 2)
    proj = project(head_to_camera(lmk, fit.rotation, fit.translation), fit.camera)
    for e in range(2):
        for m, i in zip(MP_CORNERS[e], IBUG_CORNERS[e]):
            pts[:, m] = proj[:, i]
    pts[:, list(MP_IRIS)] = project(head_to_camera(iris, fit.rotation, fit.translation), fit.camera)
    return pts


def track_with_gaze(frames: np.ndarray, fps: float, cfg, head, what: str | None = "video",
                    progress: bool = False, landmarks=None) -> tuple[HeadFit, dict]:
    """frames (F, H, W, 3) uint8 -> (HeadFit with ``gaze``, tracking report): MediaPipe
    landmarks of face ``cfg.face_index`` found by ``cfg.face_detector`` (``detection.faces``),
    ``tracking.track.track_video`` with ``cfg`` (a TrackConfig), iris gaze. ``what``
    (if not None) prefixes the error when no face is found; ``landmarks``: that LandmarkTrack
    already detected (``detect_video`` is then skipped)."""
    from expportrait.detection.landmarks import detect_video
    from expportrait.tracking.track import track_video
    try:
        lmk = landmarks if landmarks is not None else detect_video(
            frames, face_index=cfg.face_index, progress=progress,
            detector=getattr(cfg, "face_detector", None))
    except UserError as exc:
        if what is None:
            raise
        raise UserError(f"{what}: {exc}") from None
    fit, report = track_video(frames, fps, cfg, head=head, landmarks=lmk, progress=progress)
    return (add_gaze(fit, lmk.points, head) if lmk.points.shape[1] >= 478 else fit), report


class Tracker:
    """The pipeline's tracker, injected like its other parts: ``detect`` finds a video's MediaPipe
    landmarks (face ``face_index``, ``cfg.face_detector``), ``fit`` tracks it (``track_with_gaze``).
    ``cfg`` (a TrackConfig) may be replaced between calls; a benchmark subclasses this to memoise."""

    def __init__(self, cfg, head):
        self.cfg, self.head = cfg, head

    def detect(self, frames: np.ndarray, face_index: int = 0, what: str | None = None):
        """frames (F, H, W, 3) uint8 -> LandmarkTrack (``what`` prefixes the no-face error)."""
        from expportrait.detection.landmarks import detect_video
        try:
            return detect_video(frames, face_index=face_index, detector=self.cfg.face_detector)
        except UserError as exc:
            if what is None:
                raise
            raise UserError(f"{what}: {exc}") from None

    def fit(self, frames: np.ndarray, fps: float, what: str | None = "video", *,
            stages: tuple[str, ...] | None = None, face_index: int | None = None,
            landmarks=None) -> HeadFit:
        """frames (F, H, W, 3) uint8 -> HeadFit with gaze; ``stages`` / ``face_index`` override
        the config's; ``landmarks``: this video's ``detect`` track (else detected here)."""
        from dataclasses import replace
        cfg = self.cfg if face_index is None else replace(self.cfg, face_index=face_index)
        cfg = cfg if not stages else replace(cfg, stages=tuple(stages))
        return track_with_gaze(frames, fps, cfg, self.head, what, landmarks=landmarks)[0]
