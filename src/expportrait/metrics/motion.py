"""Motion metrics over tracked parameter / landmark sequences supplied by the caller.

This module imports no tracker: the caller tracks the prediction and the driver (with the
project's tracker, see ``report.evaluate``) and passes arrays in. The paper's exact definitions
are unknown (paper.md section 7); the ones used here are:

- **AED** (average expression distance): mean over frames of the mean absolute difference of the
  expression coefficients, ``mean_t mean_j |psi_pred[t, j] - psi_drv[t, j]|``. Unit: coefficient
  units of the tracker's expression basis, so it is comparable only between runs of one tracker.
- **APD** (average pose distance): mean over frames of the mean absolute difference of head
  rotation (yaw, pitch, roll) in radians, each difference wrapped to [-pi, pi].
- **Landmark jitter**: mean Euclidean norm of the second temporal difference
  ``l[t+1] - 2 l[t] + l[t-1]`` over points and frame triples (pixels per frame^2), optionally divided
  by the inter-ocular distance (outer eye corners 36 and 45) of the middle frame. A constant-velocity
  motion has zero jitter; frame-to-frame shaking does not.
- **NME**: mean point-to-point Euclidean error divided by the outer-eye-corner distance of the
  reference (points 36 and 45, the 300-W "inter-ocular" convention), averaged over frames in
  which both sets are finite. ``subset="inner"`` uses the 51 inner points 17..67 (no jaw line).

Frames flagged invalid (``valid`` False) or holding NaN are skipped; a metric with no usable frame
is NaN.
"""
from __future__ import annotations

import numpy as np

INNER = np.arange(17, 68)  # 51 points: brows, nose, eyes, mouth
OUTER_EYE_CORNERS = (36, 45)


def _usable(a: np.ndarray, b: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    """(F,) bool: rows finite in both a and b and flagged valid."""
    ok = np.isfinite(a.reshape(len(a), -1)).all(1) & np.isfinite(b.reshape(len(b), -1)).all(1)
    if valid is not None:
        ok &= np.asarray(valid, bool).reshape(-1)
    return ok


def _check_pair(a, b, name: str, last: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 2 or (last is not None and a.shape[1] != last):
        want = f"(F, {last})" if last else "(F, n)"
        raise ValueError(f"{name}: expected two arrays of shape {want}, got {a.shape} and {b.shape}")
    return a, b


def aed(expr_pred: np.ndarray, expr_drv: np.ndarray, valid: np.ndarray | None = None) -> float:
    """expr_pred, expr_drv: (F, n) expression coefficients; valid: (F,) bool -> float."""
    a, b = _check_pair(expr_pred, expr_drv, "aed")
    ok = _usable(a, b, valid)
    return float(np.abs(a[ok] - b[ok]).mean()) if ok.any() else float("nan")


def wrap_angle(x: np.ndarray) -> np.ndarray:
    """Radians -> [-pi, pi)."""
    return (np.asarray(x) + np.pi) % (2 * np.pi) - np.pi


def apd(pose_pred: np.ndarray, pose_drv: np.ndarray, valid: np.ndarray | None = None) -> float:
    """pose_pred, pose_drv: (F, 3) yaw, pitch, roll in radians; valid: (F,) bool -> float radians."""
    a, b = _check_pair(pose_pred, pose_drv, "apd", last=3)
    ok = _usable(a, b, valid)
    return float(np.abs(wrap_angle(a[ok] - b[ok])).mean()) if ok.any() else float("nan")


def interocular(lmk: np.ndarray) -> np.ndarray:
    """lmk (..., 68, 2) -> (...) distance between the outer eye corners (points 36 and 45)."""
    i, j = OUTER_EYE_CORNERS
    return np.linalg.norm(lmk[..., i, :] - lmk[..., j, :], axis=-1)


def landmark_jitter(lmk: np.ndarray, norm: str | float | None = None) -> float:
    """lmk: (F, K, 2) pixels (NaN rows allowed); norm: None (pixels), "interocular" (K == 68) or a
    float divisor -> mean |second temporal difference| (NaN if fewer than 3 consecutive usable frames)."""
    lmk = np.asarray(lmk, np.float64)
    if lmk.ndim != 3 or lmk.shape[-1] != 2:
        raise ValueError(f"landmark_jitter: expected (F, K, 2), got {lmk.shape}")
    if len(lmk) < 3:
        return float("nan")
    acc = lmk[2:] - 2 * lmk[1:-1] + lmk[:-2]  # (F-2, K, 2)
    mag = np.linalg.norm(acc, axis=-1)  # (F-2, K)
    if norm == "interocular":
        if lmk.shape[1] != 68:
            raise ValueError("interocular normalisation needs 68-point landmarks")
        d = interocular(lmk[1:-1])  # (F-2,)
        mag = mag / np.where(d > 0, d, np.nan)[:, None]
    elif norm is not None:
        mag = mag / float(norm)
    ok = np.isfinite(mag).all(1)
    return float(mag[ok].mean()) if ok.any() else float("nan")


def nme(pred: np.ndarray, ref: np.ndarray, subset: str | np.ndarray = "all",
        per_frame: bool = False) -> float | np.ndarray:
    """pred, ref: (F, 68, 2) pixels (NaN where missing); subset: "all" (68), "inner" (51 points
    17..67) or an index array -> mean NME over usable frames (or (F,) with NaN if per_frame)."""
    pred, ref = np.asarray(pred, np.float64), np.asarray(ref, np.float64)
    if pred.shape != ref.shape or pred.ndim != 3 or pred.shape[1:] != (68, 2):
        raise ValueError(f"nme: expected two (F, 68, 2) arrays, got {pred.shape} and {ref.shape}")
    idx = {"all": np.arange(68), "inner": INNER}.get(subset, subset) if isinstance(subset, str) else subset
    if isinstance(idx, str):
        raise ValueError(f"nme: unknown subset '{subset}'")
    err = np.linalg.norm(pred[:, idx] - ref[:, idx], axis=-1).mean(1)  # (F,)
    d = interocular(ref)  # (F,)
    values = err / np.where(d > 0, d, np.nan)
    values = np.where(np.isfinite(values), values, np.nan)
    if per_frame:
        return values
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
