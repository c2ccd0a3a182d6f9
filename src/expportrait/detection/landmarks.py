"""2D face landmarks from MediaPipe FaceMesh (478 points with irises; weights ship in the wheel).

Faces are found first (``detection.faces``: MediaPipe's short- and full-range detectors, dlib
as the fallback, so close-ups, small and off-centre faces all count), one is chosen
(``face_index``, 0 = largest) and FaceMesh runs on a crop around it. Per-frame failures are flagged in ``valid`` and filled by linear interpolation in
time (held at the ends), never fatal; a clip with no face in any frame is a ``UserError``.
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


def detect_video(frames: np.ndarray, face_index: int = 0, progress: bool = False,
                 detector: str | None = None) -> LandmarkTrack:
    """frames (F, H, W, 3) uint8 -> LandmarkTrack of face ``face_index`` (0 = largest) with lost
    frames interpolated. Faces are found by ``detector`` (``detection.faces.DETECTORS``),
    FaceMesh runs on a crop around the chosen one, which is followed through the video
    (``detection.follow.follow_face``)."""
    from expportrait.detection.follow import follow_face

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise UserError(f"expected frames (F, H, W, 3), got shape {frames.shape}")
    F, H, W = frames.shape[:3]
    from expportrait.detection.faces import DEFAULT_DETECTOR
    pts, valid, _ = follow_face(frames, face_index=face_index, detector=detector or DEFAULT_DETECTOR,
                                progress=progress)
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
