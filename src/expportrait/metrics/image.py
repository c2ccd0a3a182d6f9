"""Full-reference image metrics on videos: PSNR, SSIM and L1 (self-reenactment, ground truth known).

Inputs are videos ``(F, H, W, 3)`` (or single images ``(H, W, 3)``, treated as one frame) in either
``uint8`` [0, 255] or floating point [0, 1]; both are mapped to float64 in [0, 1] before any
arithmetic, so a uint8 video and its float copy give identical numbers.

Conventions (stated because papers differ):

- **PSNR** = 10 log10(1 / MSE) per frame on [0, 1] RGB, MSE over all pixels and channels; the
  video value is the mean of per-frame PSNRs. A frame with MSE 0 has PSNR ``inf`` (so does the mean).
- **SSIM** = scikit-image ``structural_similarity`` per frame with the Wang et al. (2004) settings:
  ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0``, computed per
  RGB channel (``channel_axis=-1``) and averaged; video value = mean over frames. No downsampling.
- **L1** = mean absolute difference on [0, 1] RGB per frame; video value = mean over frames.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from expportrait.errors import UserError

SSIM_SETTINGS = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)


@dataclass(frozen=True)
class FrameMetric:
    """per_frame: (F,) float64; mean: their mean (``inf`` if any per-frame value is ``inf``)."""

    per_frame: np.ndarray
    mean: float

    @classmethod
    def of(cls, values: np.ndarray) -> "FrameMetric":
        values = np.asarray(values, dtype=np.float64)
        return cls(values, float(np.mean(values)) if len(values) else float("nan"))


def to_unit_float(frames: np.ndarray) -> np.ndarray:
    """(F, H, W, 3) or (H, W, 3) uint8 [0, 255] / float [0, 1] -> (F, H, W, 3) float64 [0, 1]."""
    x = np.asarray(frames)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[-1] != 3:
        raise UserError(f"expected frames of shape (F, H, W, 3), got {x.shape}")
    if x.dtype == np.uint8:
        return x.astype(np.float64) / 255.0
    if np.issubdtype(x.dtype, np.floating):
        return x.astype(np.float64)
    raise UserError(f"frames must be uint8 or float, got {x.dtype}")


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = to_unit_float(a), to_unit_float(b)
    if a.shape != b.shape:
        raise UserError(f"videos differ in shape: {a.shape} vs {b.shape} (frames, height, width, 3)")
    return a, b


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> FrameMetric:
    """a, b: (F, H, W, 3) uint8 or float [0, 1] -> per-frame PSNR in dB (``inf`` where identical).

    ``mask``: optional (F, H, W) or (H, W) weights in [0, 1] (e.g. the face region): the MSE is
    then the weighted mean over the masked pixels of each frame (a frame with no mask: ``nan``)."""
    a, b = _pair(a, b)
    sq = ((a - b) ** 2).mean(axis=-1)                       # (F, H, W)
    if mask is None:
        mse = sq.reshape(len(a), -1).mean(axis=1)           # (F,)
    else:
        w = np.broadcast_to(np.asarray(mask, dtype=np.float64), sq.shape)
        with np.errstate(invalid="ignore", divide="ignore"):
            mse = (w * sq).reshape(len(a), -1).sum(1) / w.reshape(len(a), -1).sum(1)
    with np.errstate(divide="ignore"):
        values = np.where(mse > 0, 10.0 * np.log10(1.0 / np.maximum(mse, 1e-300)), np.inf)
    return FrameMetric.of(np.where(np.isnan(mse), np.nan, values))


def ssim(a: np.ndarray, b: np.ndarray) -> FrameMetric:
    """a, b: (F, H, W, 3) uint8 or float [0, 1] -> per-frame SSIM (see ``SSIM_SETTINGS``).

    Frames must be at least 7 x 7 pixels (the Gaussian window's support)."""
    from skimage.metrics import structural_similarity

    a, b = _pair(a, b)
    if min(a.shape[1:3]) < 7:
        raise UserError(f"SSIM needs frames of at least 7x7 pixels, got {a.shape[2]}x{a.shape[1]}")
    values = [structural_similarity(x, y, channel_axis=-1, **SSIM_SETTINGS) for x, y in zip(a, b)]
    return FrameMetric.of(np.array(values))


def l1(a: np.ndarray, b: np.ndarray) -> FrameMetric:
    """a, b: (F, H, W, 3) uint8 or float [0, 1] -> per-frame mean absolute difference in [0, 1]."""
    a, b = _pair(a, b)
    return FrameMetric.of(np.abs(a - b).reshape(len(a), -1).mean(axis=1))
