"""Named vertex masks from the iBUG-68 landmarks (numpy, build time).

All rules work in a 2D unwrap of the rest mesh (``topology.spherical_unwrap``: u ~ x, v ~ y,
the back of the head lands at |u| ~ pi r, far from the face):

- ``face``: inside the outline jaw 0..16 -> brows 26..17, with the brows lifted by
  ``brow_lift`` x (brow - eye distance) so the brow-raising forehead band is included; united with
  the vertices the expression basis moves by more than ``motion_frac`` of its 99th-percentile
  motion (when the motion is given) that lie above the chin line (landmark 8).
- ``non_face``: the complement (upper forehead, temples, ears, neck, back of the head).
- ``lips``: inside the outer-lip polygon 48-59 or within ``lip_margin`` of it.
- ``right_eye`` (subject's right, landmarks 36-41), ``left_eye`` (42-47): inside the eye polygon
  or within ``eye_margin`` of it (eyelids); ``eyes`` is their union.

Margins are in unwrap units (metres near the face when the unwrap radius is the head radius).
"""
from __future__ import annotations

import numpy as np

from expportrait.head.topology import points_in_polygon

REGION_NAMES = ("face", "non_face", "lips", "eyes", "left_eye", "right_eye")


def distance_to_polygon(pts: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """pts (P, 2), closed polygon (K, 2) -> (P,) distance to its boundary."""
    best = np.full(len(pts), np.inf)
    for i in range(len(poly)):
        a, b = poly[i], poly[(i + 1) % len(poly)]
        ab = b - a
        t = np.clip(((pts - a) @ ab) / max(float(ab @ ab), 1e-30), 0.0, 1.0)
        best = np.minimum(best, np.linalg.norm(a + t[:, None] * ab - pts, axis=1))
    return best


def _grown(uv: np.ndarray, poly: np.ndarray, margin: float) -> np.ndarray:
    return points_in_polygon(uv, poly) | (distance_to_polygon(uv, poly) < margin)


def face_outline(lm_uv: np.ndarray, brow_lift: float = 0.6) -> np.ndarray:
    """(68, 2) landmarks in the unwrap -> (27, 2) outline: jaw 0..16, lifted brows 26..17."""
    eye_v = lm_uv[36:48, 1].mean()
    brows = lm_uv[17:27][::-1].copy()  # 26..17, right to left in the image sense of the outline
    brows[:, 1] += brow_lift * np.maximum(brows[:, 1] - eye_v, 0.0)
    return np.concatenate([lm_uv[0:17], brows])


def make_regions(uv: np.ndarray, lm_uv: np.ndarray, motion: np.ndarray | None = None,
                 brow_lift: float = 0.6, motion_frac: float = 0.25, lip_margin: float = 0.004,
                 eye_margin: float = 0.005) -> dict[str, np.ndarray]:
    """uv (N, 2) vertex unwrap; lm_uv (68, 2) landmark unwrap; motion (N,) optional per-vertex
    expression displacement magnitude. Returns {name: (N,) bool} for ``REGION_NAMES``."""
    face = points_in_polygon(uv, face_outline(lm_uv, brow_lift))
    if motion is not None:
        moving = motion > motion_frac * np.percentile(motion, 99)
        face |= moving & (uv[:, 1] > lm_uv[8, 1]) & (np.abs(uv[:, 0]) < np.abs(lm_uv[[0, 16], 0]).max())
    right_eye = _grown(uv, lm_uv[36:42], eye_margin)
    left_eye = _grown(uv, lm_uv[42:48], eye_margin)
    lips = _grown(uv, lm_uv[48:60], lip_margin)
    return {"face": face, "non_face": ~face, "lips": lips, "eyes": left_eye | right_eye,
            "left_eye": left_eye, "right_eye": right_eye}
