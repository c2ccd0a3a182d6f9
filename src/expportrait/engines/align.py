"""Landmark-guided alignment of result frames to the driver (self-reenactment, absolute pose).

The driven head is the reference's fit moved by the driver's fit, so every frame carries both
fits' residuals: a feature of the result sits about 1.4 px (MediaPipe landmarks, the 400x300
``cap13`` clip) from where the driver shows it, and a face-box PSNR punishes every such pixel on
every edge. When the result is meant to sit exactly where the driver is (self mode, absolute
pose: same camera, same person) those residuals can be removed in image space: the landmarks
found on the result frame are carried onto the driver's landmarks by a thin-plate spline, the
frame border pinned, and the frame resampled through it (a backward map, so no holes).

Nothing here knows the pipeline: frames and landmark arrays in, frames out (the warp engines call
``align_to_driver``).
"""
from __future__ import annotations

import numpy as np

MESH_POINTS = slice(0, 468)        # MediaPipe face mesh without the iris points


def border_points(H: int, W: int, per_side: int = 8) -> np.ndarray:
    """-> (4 * per_side, 2) pixel x, y spread along the frame's edge (corners included once)."""
    xs, ys = np.linspace(0, W - 1, per_side + 1), np.linspace(0, H - 1, per_side + 1)
    top = np.stack([xs[:-1], np.zeros(per_side)], 1)
    right = np.stack([np.full(per_side, W - 1), ys[:-1]], 1)
    bottom = np.stack([xs[::-1][:-1], np.full(per_side, H - 1)], 1)
    left = np.stack([np.zeros(per_side), ys[::-1][:-1]], 1)
    return np.concatenate([top, right, bottom, left]).astype(np.float64)


def spline_field(target: np.ndarray, found: np.ndarray, H: int, W: int, step: int = 4,
                 smoothing: float = 10.0) -> np.ndarray:
    """target, found (K, 2) pixel x, y -> (H, W, 2) float32 displacement d with d(target) ~ found -
    target: a thin-plate spline (``scipy.interpolate.RBFInterpolator``, linear term, ``smoothing``)
    through the landmarks and the frame border (pinned at 0), evaluated every ``step`` pixels
    and bilinearly upsampled. Sampling a frame at q + d(q) moves its ``found`` points onto ``target``."""
    import cv2
    from scipy.interpolate import RBFInterpolator

    pins = border_points(H, W)
    points = np.concatenate([target, pins])
    values = np.concatenate([found - target, np.zeros_like(pins)])
    spline = RBFInterpolator(points, values, kernel="thin_plate_spline", smoothing=smoothing, degree=1)
    h, w = -(-H // step), -(-W // step)
    gy, gx = np.mgrid[0:h, 0:w] * step
    coarse = spline(np.stack([gx.ravel(), gy.ravel()], 1)).reshape(h, w, 2).astype(np.float32)
    fy, fx = np.mgrid[0:H, 0:W].astype(np.float32) / step     # coarse sample (i, j) is pixel (i, j) * step
    return cv2.remap(coarse, fx, fy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def align_frames(frames: np.ndarray, found: np.ndarray, found_valid: np.ndarray, target: np.ndarray,
                 target_valid: np.ndarray, max_shift: float = 0.1, outlier: float = 3.0,
                 det_range: tuple[float, float] = (0.5, 2.0), **spline) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """frames (F, H, W, 3) uint8; found (F, K, 2) landmarks detected on them and target (F, K, 2)
    where they should be (the driver's), each with a (F,) bool validity -> (aligned frames (F, H, W,
    3) uint8, moved (F,) bool, min_jacobian (F,): the smallest Jacobian determinant of each frame's
    map, 1 where it was left as it is). Bounded, so it never folds or tears:

    - a frame is left as it is when either side has no face or when the median landmark distance
      exceeds ``max_shift`` x the target face's extent (a wrong face is not a residual to remove);
    - landmarks that cannot agree (an eye shut on one side and open on the other, a mouth) are not
      forced: points farther than ``outlier`` x the median distance (and 1 % of the face) are left
      out of the spline;
    - the map's Jacobian determinant must stay within ``det_range`` everywhere (no fold, a capped
      local stretch): otherwise the displacement is halved, up to three times, and then dropped.

    ``spline``: ``spline_field`` options (default ``step``: 4 px, or the frame's larger side / 128
    on big frames, so a 1080p frame costs about what a 512 px one does)."""
    import cv2

    from expportrait.engines.warp_field import jacobian
    frames = np.asarray(frames)
    F, H, W = frames.shape[:3]
    out, moved, dets = frames.copy(), np.zeros(F, bool), np.ones(F)
    spline.setdefault("step", max(4, round(max(H, W) / 128)))
    gy, gx = np.mgrid[0:H, 0:W].astype(np.float32)
    for f in range(F):
        if not (found_valid[f] and target_valid[f]):
            continue
        a, b = np.asarray(found[f], np.float64), np.asarray(target[f], np.float64)
        extent = float(np.max(b.max(0) - b.min(0)))
        if not np.isfinite(a).all() or not np.isfinite(b).all() or extent <= 0:
            continue
        r = np.linalg.norm(a - b, axis=1)
        if np.median(r) > max_shift * extent:
            continue
        keep = r <= max(outlier * np.median(r), 0.01 * extent)
        d = spline_field(b[keep], a[keep], H, W, **spline)
        for _ in range(4):
            det = jacobian(gx + d[..., 0], gy + d[..., 1])
            lo, hi = float(det.min()), float(det.max())
            if det_range[0] <= lo and hi <= det_range[1]:
                break
            d = d * 0.5
        else:
            continue
        out[f] = cv2.remap(frames[f], gx + d[..., 0], gy + d[..., 1], cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
        moved[f], dets[f] = True, lo
    return out, moved, dets


def align_to_driver(frames: np.ndarray, driver_landmarks) -> tuple[np.ndarray, np.ndarray]:
    """Result frames (F, H, W, 3) uint8 in the driver's image (self mode) -> (the same, each moved
    so that its MediaPipe landmarks land on the driver frame's, the maps' smallest Jacobian
    determinants (F,)) (``driver_landmarks``: the driver's LandmarkTrack; ``align_frames``;
    frames without a face on either side are kept)."""
    from expportrait.detection.landmarks import detect_video
    from expportrait.errors import UserError
    try:
        res = detect_video(frames)
    except UserError:                     # no face in any result frame: nothing to align
        return frames, np.ones(len(frames))
    drv = driver_landmarks
    out, _, dets = align_frames(frames, res.points[:, MESH_POINTS, :2], res.valid,
                                drv.points[:, MESH_POINTS, :2], drv.valid)
    return out, dets
