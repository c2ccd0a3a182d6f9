"""The driver, one frame at a time (the live engine's tracker; no look-ahead).

``FrameTracker(head)(frame)``:

1. the face: found in the first frame by the default detector (``detection.faces``, face
   ``face_index``), then followed: FaceMesh on a crop kept still while the face stays well inside
   it (its own tracking mode), searched for again, near where it was, when the mesh is lost;
2. calibration, once (the first frame with a face, or again on ``reset``): stage ``base``
   (``tracking.fit.fit_base``, the offline fit) on that frame gives the driver's shape beta, and
   that frame is the reference of the relative pose (the user looks at the camera to start);
3. each frame: pose and psi by a few Levenberg-Marquardt steps on the 68 landmarks, warm-started
   from the previous frame's solution (the offline fit's robust landmark distance by
   iteratively reweighting, its expression prior, and a pull towards the previous frame in place
   of its temporal smoothness), the Jacobian by forward-mode autodiff (``torch.func.jacfwd``);
4. a causal One-Euro filter (Casiez et al. 2012) on the pose instead of the offline Gaussian.

Frames are (H, W, 3) uint8 RGB; ``DriverFrame.points`` (478, 3) FaceMesh pixels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from expportrait.detection.faces import DEFAULT_DETECTOR
from expportrait.detection.follow import FaceFollower
from expportrait.detection.landmarks import MP_TO_IBUG68, LandmarkTrack
from expportrait.head.geometry import head_to_camera
from expportrait.render.camera import project
from expportrait.tracking.config import BaseStageConfig
from expportrait.tracking.fit import fit_base, landmark_weights, make_camera
from expportrait.tracking.io import HeadFit


@dataclass
class DriverFrame:
    points: np.ndarray | None    # (478, 3) FaceMesh landmarks, frame pixels (None: no face)
    params: torch.Tensor | None  # (6 + n_exp [+ 3],) rotation, translation, psi [, jaw omega
    #                              with a jawed head]; the pose filtered
    valid: bool

    @property
    def ibug68(self) -> np.ndarray:
        """(68, 2) pixels (NaN without a face)."""
        if self.points is None:
            return np.full((68, 2), np.nan)
        return self.points[MP_TO_IBUG68, :2]


class OneEuro:
    """Causal low-pass whose cut-off rises with speed (Casiez et al., CHI 2012): still input is
    smoothed hard (no jitter), fast motion follows with little lag. ``x`` any array, ``dt`` s."""

    def __init__(self, min_cutoff: float = 1.5, beta: float = 0.3, d_cutoff: float = 1.0):
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.x = self.dx = None

    @staticmethod
    def _alpha(cutoff: float, dt: float) -> float:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, x: np.ndarray, dt: float) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self.x is None:
            self.x, self.dx = x, np.zeros_like(x)
            return x
        dx = (x - self.x) / dt
        self.dx = self.dx + self._alpha(self.d_cutoff, dt) * (dx - self.dx)
        cutoff = self.min_cutoff + self.beta * np.abs(self.dx)
        a = 1.0 / (1.0 + 1.0 / (2 * math.pi * cutoff * dt))
        self.x = self.x + a * (x - self.x)
        return self.x

    def reset(self) -> None:
        self.x = self.dx = None


class FrameSolver:
    """Pose and expression of one frame's 68 landmarks, the shape and camera held: ``solve(target
    (68, 2) px, start (P,)) -> (P,)``, P = 6 + n_exp (+ 3 jaw omega for a jawed head)."""

    def __init__(self, head, shape: torch.Tensor, camera: torch.Tensor, cfg: BaseStageConfig,
                 iters: int = 4, w_previous: float = 0.02):
        self.head, self.shape, self.camera = head, shape.reshape(1, -1), camera.reshape(1, 4)
        self.iters, self.cfg = iters, cfg
        self.w_lmk = landmark_weights(cfg.contour_weight).double()               # (68,)
        self.w_previous = w_previous

    def _landmarks(self, p: torch.Tensor) -> torch.Tensor:
        """p (B, P) -> (B, 68, 3) head-space landmarks: a linear model (no jaw) once evaluated at
        psi = 0 and each unit psi (float64, exact), else the head's own."""
        n, B = self.head.n_exp, len(p)
        if self.head.has_jaw:
            return self.head.landmarks(self.shape.expand(B, -1), p[:, 6:6 + n].float(),
                                       p[:, 6 + n:].float()).double()
        if not hasattr(self, "_basis"):
            coeffs = torch.cat([torch.zeros(1, n), torch.eye(n)])
            lmk = self.head.landmarks(self.shape.expand(n + 1, -1), coeffs).double()  # (n + 1, 68, 3)
            self._mean, self._basis = lmk[0], (lmk[1:] - lmk[:1]).reshape(n, -1)      # (68, 3), (n, 204)
        return self._mean + (p[:, 6:6 + n] @ self._basis).reshape(B, 68, 3)

    def _project(self, p: torch.Tensor) -> torch.Tensor:
        """p (B, P) -> (B, 68, 2) pixels."""
        B = len(p)
        lmk = self._landmarks(p)
        return project(head_to_camera(lmk, p[:, :3], p[:, 3:6]), self.camera.double().expand(B, 4))

    @torch.no_grad()
    def solve(self, target: np.ndarray, start: torch.Tensor) -> torch.Tensor:
        tgt = torch.as_tensor(np.asarray(target, np.float64))
        scale = float(torch.linalg.norm(tgt[36] - tgt[45]).clamp_min(1.0))
        n_exp = self.head.n_exp
        prior = torch.zeros_like(start, dtype=torch.float64)                     # sqrt weights
        prior[6:6 + n_exp] = math.sqrt(self.cfg.w_exp_prior / n_exp)
        prior[6 + n_exp:] = math.sqrt(self.cfg.w_jaw_prior / 3)
        stiff = torch.full_like(prior, self.w_previous)
        stiff[3:6] *= 10.0                       # translation in metres: about 1/10 of the rest
        prev = start.double().clone()
        p = prev.clone()
        P = len(p)
        h = torch.full((P,), 1e-4, dtype=torch.float64)
        h[6:] = 1e-3                             # coefficients in std units

        def residuals(q, w):                     # q (B, P) -> (B, M)
            e = (self._project(q) - tgt) / scale                                  # (B, 68, 2)
            return torch.cat([(e * w[:, None]).reshape(len(q), -1), prior * q, stiff * (q - prev)], 1)

        lam = 1e-3
        for _ in range(self.iters):
            q = torch.cat([p[None], p[None] + torch.diag(h)])                     # (1 + P, P)
            d = ((self._project(p[None])[0] - tgt) / scale).pow(2).sum(-1)
            w = torch.sqrt(self.w_lmk / self.w_lmk.sum() * 0.5 / torch.sqrt(d + 1e-8))  # IRLS
            r = residuals(q, w)                                                   # (1 + P, M)
            J = ((r[1:] - r[:1]) / h[:, None]).T                                  # (M, P)
            A, g = J.T @ J, J.T @ r[0]
            step = torch.linalg.solve(A + lam * torch.diag(A.diagonal().clamp_min(1e-9)), -g)
            if residuals((p + step)[None], w)[0].pow(2).sum() < r[0].pow(2).sum():
                p, lam = p + step, max(lam / 3, 1e-6)
            else:
                lam *= 10
        return p.float()


class FrameTracker:
    """The driver, frame by frame (module doc). ``tracker(frame, dt) -> DriverFrame``;
    ``reference`` (after the first face) the calibration frame's ``DriverFrame``; ``reset()``
    calibrates again on the next frame."""

    def __init__(self, head, face_index: int = 0, detector: str | None = None, fov_deg: float = 30.0,
                 base: BaseStageConfig = BaseStageConfig(), min_cutoff: float = 1.5, beta: float = 0.3):
        self.head, self.fov_deg, self.base = head, fov_deg, base
        self.follow = FaceFollower(face_index, detector or DEFAULT_DETECTOR, refind="mediapipe",
                                   identify=False)   # a lost face: no dlib on every camera frame
        self.filter = OneEuro(min_cutoff, beta)
        self.solver = self.reference = self.last = None
        self.shape = self.camera = None
        self._reset = False

    def reset(self) -> None:
        """Calibrate again (shape, reference pose) on the next frame with a face (safe to call
        from another thread than the one tracking: it takes effect at the next frame)."""
        self._reset = True

    def close(self) -> None:
        self.follow.close()

    # ------------------------------------------------------------------ the face
    def _points(self, frame: np.ndarray) -> np.ndarray | None:
        return self.follow(frame, " in the first frame")

    # ------------------------------------------------------------------ the fit
    def _calibrate(self, frame: np.ndarray, points: np.ndarray) -> torch.Tensor:
        H, W = frame.shape[:2]
        track = LandmarkTrack(points[None], np.ones(1, bool), (H, W))
        camera = make_camera(1, H, W, self.fov_deg)
        fit, _ = fit_base(self.head, track, self.base, camera)
        self.shape, self.camera = fit.shape, camera[0]
        self.solver = FrameSolver(self.head, fit.shape, camera[0], self.base)
        jaw = [fit.jaw[0]] if self.head.has_jaw else []
        return torch.cat([fit.rotation[0], fit.translation[0], fit.expression[0], *jaw])

    def __call__(self, frame: np.ndarray, dt: float = 1 / 25) -> DriverFrame:
        """frame (H, W, 3) uint8 RGB, dt seconds since the previous one -> DriverFrame (the last
        solution held, ``valid`` False, when the face is lost)."""
        if self._reset:
            self.solver = self.reference = self.last = None
            self.filter.reset()
            self._reset = False
        points = self._points(frame)
        if points is None:
            return DriverFrame(None, None if self.last is None else self.last.params, False)
        if self.solver is None:
            raw = self._calibrate(frame, points)
        else:
            raw = self.solver.solve(points[MP_TO_IBUG68, :2], self._raw)
        self._raw = raw
        pose = torch.as_tensor(self.filter(raw[:6].numpy(), dt), dtype=raw.dtype)
        out = DriverFrame(points, torch.cat([pose, raw[6:]]), True)
        if self.reference is None:
            self.reference = out
        self.last = out
        return out

    def fit(self, frames: list[DriverFrame], size: tuple[int, int]) -> HeadFit:
        """``DriverFrame``s with params -> a HeadFit of them (no offsets, no gaze; the retarget's
        driving fit), in images of ``size`` (H, W)."""
        P = torch.stack([f.params for f in frames])                               # (F, P)
        F, N, n = len(frames), self.head.num_dense, self.head.n_exp
        jaw = P[:, 6 + n:6 + n + 3].contiguous() if self.head.has_jaw else torch.zeros(F, 3)
        return HeadFit(shape=self.shape, static_offset=torch.zeros(N, 3),
                       expression=P[:, 6:6 + n].contiguous(), jaw=jaw,
                       rotation=P[:, :3].contiguous(), translation=P[:, 3:6].contiguous(),
                       camera=self.camera.expand(F, 4).clone(), dynamic_offset=torch.zeros(F, N, 3),
                       albedo=torch.full((N, 3), 0.7), sh=torch.zeros(F, 9, 3),
                       valid=torch.tensor([f.valid for f in frames]),
                       landmarks68_2d=torch.zeros(F, 68, 2),
                       meta={"head": self.head.name, "image_size": list(size), "n_exp": self.head.n_exp})

