"""The one temporal smoother: a Gaussian filter along the frames of a time series (scipy's)."""
from __future__ import annotations

import numpy as np


def gaussian_filter_time(x, sigma: float, mode: str = "nearest", truncate: float = 4.0) -> np.ndarray:
    """x (F, C) array or tensor -> (F, C) float64 Gaussian-filtered along time; ``sigma`` in
    frames (<= 0 or a single frame: a copy). ``mode``: how the ends extend (scipy.ndimage's:
    "nearest" holds the end value, "mirror" reflects about the end frame); the kernel reaches
    ``truncate`` sigmas."""
    x = np.asarray(x, np.float64)
    if sigma <= 0 or len(x) < 2:
        return x.copy()
    from scipy.ndimage import gaussian_filter1d
    return gaussian_filter1d(x, sigma, axis=0, mode=mode, truncate=truncate)
