"""2D face landmarks from MediaPipe FaceMesh (478 points with irises; weights ship in the wheel).

Per-frame failures are flagged in ``valid`` and filled by linear interpolation in time (held at
the ends), never fatal; a clip with no face in any frame is a ``UserError``.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from expportrait.errors import UserError

# MediaPipe FaceMesh index of each iBUG-68 point (jaw 0-16, brows 17-26, nose 27-35, eyes 36-47,
# outer lips 48-59, inner lips 60-67). A fixed semantic correspondence, widely used.
MP_TO_IBUG68 = np.array([
    127, 234, 93, 132, 58, 172, 136, 150, 152, 379, 365, 397, 288, 361, 323, 454, 356,
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
    168, 197, 5, 4, 75, 97, 2, 326, 305,
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,
    78, 82, 13, 312, 308, 317, 14, 87,
])
IRIS_RIGHT = 468  # subject's right iris centre (image left), 469-472 its contour
IRIS_LEFT = 473   # subject's left iris centre, 474-477 its contour
INNER51 = np.arange(17, 68)


@dataclass
class LandmarkTrack:
    points: np.ndarray  # (F, 478, 3) float32: x, y in pixels, z in pixels (MediaPipe relative depth);
    #                     or (F, 68, 2|3) iBUG-68 points directly (synthetic data, other detectors)
    valid: np.ndarray   # (F,) bool: the detector found a face in this frame
    size: tuple[int, int]  # (H, W) of the frames

    @property
    def ibug68(self) -> np.ndarray:
        """(F, 68, 2) pixel x, y."""
        if self.points.shape[1] == 68:
            return self.points[..., :2]
        return self.points[:, MP_TO_IBUG68, :2]

    @property
    def irises(self) -> np.ndarray:
        """(F, 2, 2) pixel centres of the right and left iris."""
        return self.points[:, [IRIS_RIGHT, IRIS_LEFT], :2]


@contextmanager
def quiet_stderr():
    """Silence C++ log lines (MediaPipe/TFLite write straight to file descriptor 2)."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, ValueError, OSError):
        yield
        return
    saved = os.dup(fd)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), fd)
        try:
            yield
        finally:
            os.dup2(saved, fd)
            os.close(saved)


class MediaPipeLandmarker:
    """Stateful video landmarker (MediaPipe tracks between frames). ``static=True`` for images."""

    def __init__(self, static: bool = False, min_confidence: float = 0.5, face_index: int = 0):
        os.environ.setdefault("GLOG_minloglevel", "2")
        try:
            import mediapipe as mp
        except ImportError as exc:  # pragma: no cover - install problem
            raise UserError(f"mediapipe is not installed ({exc}); see README set-up") from None
        self.face_index = face_index
        self._calls = 0
        with quiet_stderr():
            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=static, max_num_faces=max(1, face_index + 1) if face_index else 4,
                refine_landmarks=True, min_detection_confidence=min_confidence,
                min_tracking_confidence=min_confidence)

    def __call__(self, image: np.ndarray) -> np.ndarray | None:
        """image (H, W, 3) uint8 RGB -> (478, 3) float32 pixel coordinates, or None (no face).
        With several faces the one at ``face_index`` by size (0 = largest) is returned."""
        H, W = image.shape[:2]
        if self._calls < 2:  # the first calls print TFLite/XNNPACK start-up lines
            with quiet_stderr():
                res = self._mesh.process(np.ascontiguousarray(image))
        else:
            res = self._mesh.process(np.ascontiguousarray(image))
        self._calls += 1
        if not res.multi_face_landmarks:
            return None
        faces = []
        for lm in res.multi_face_landmarks:
            pts = np.array([(p.x * W, p.y * H, p.z * W) for p in lm.landmark], np.float32)
            faces.append(pts)
        faces.sort(key=lambda p: -np.ptp(p[:, 0]) * np.ptp(p[:, 1]))
        if self.face_index >= len(faces):
            return None
        return faces[self.face_index]

    def close(self) -> None:
        with quiet_stderr():
            self._mesh.close()


def detect_video(frames: np.ndarray, face_index: int = 0, progress: bool = False) -> LandmarkTrack:
    """frames (F, H, W, 3) uint8 -> LandmarkTrack with lost frames interpolated."""
    F, H, W = frames.shape[:3]
    # small frames (e.g. 176x144) are upscaled so the detector sees a face of usual size
    scale = max(1.0, 256.0 / min(H, W))
    det = MediaPipeLandmarker(static=F == 1, face_index=face_index)
    pts = np.zeros((F, 478, 3), np.float32)
    valid = np.zeros(F, bool)
    it = range(F)
    if progress:
        from tqdm import tqdm
        it = tqdm(it, desc="landmarks", unit="frame", leave=False, disable=None)
    try:
        for i in it:
            img = frames[i]
            if scale > 1.0:
                import cv2
                img = cv2.resize(img, (round(W * scale), round(H * scale)), interpolation=cv2.INTER_CUBIC)
            p = det(img)
            if p is not None:
                pts[i] = p / scale
                valid[i] = True
    finally:
        det.close()
    if not valid.any():
        raise UserError("no face found in any frame")
    return LandmarkTrack(points=interpolate_missing(pts, valid), valid=valid, size=(H, W))


def interpolate_missing(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """x (F, ...) with rows where ``valid`` is False filled linearly in time (held at the ends)."""
    if valid.all():
        return x
    F = len(x)
    idx = np.flatnonzero(valid)
    flat = x.reshape(F, -1)
    out = np.empty_like(flat)
    for j in range(flat.shape[1]):
        out[:, j] = np.interp(np.arange(F), idx, flat[idx, j])
    return out.reshape(x.shape)
