"""A source's own upper teeth, kept on its upper lip when its mouth opens wider than the photo's.

Where the driven mouth opens wider than the source's, ``engines.mouth`` fills it with the
driver's inner mouth. A source that shows teeth in its photo (a smile) would lose them there: a
smiling astronaut or the Queen turned into a dark hole whenever the driver's mouth opened a little
more than theirs. Teeth sit on the jaw: the upper row stays under the upper lip however far the
mouth opens. So, over the driver's mouth, each column of the result's inner mouth shows the
source's own pixels for as far below the upper lip as the source's teeth reach there (the run of
bright pixels under its upper inner lip), at the photo's own scale, not stretched; the driver's
mouth shows below.

Geometry: each mouth in its own frame (origin the left inner corner 60, u along the corners
60 -> 64, v down, both in units of the corner distance); the upper inner lip (60-64) and the lower
(60, 67-65, 64) are piecewise-linear curves of u. A result pixel at (u, v) takes the source's
pixel at (u, up_s(u) + v - up_t(u)).
"""
from __future__ import annotations

import cv2
import numpy as np

from expportrait.engines.eyes import corner_frame
from expportrait.engines.mouth import LUMA, skin_ring

UPPER, LOWER = [60, 61, 62, 63, 64], [60, 67, 66, 65, 64]   # 68-point inner lips, corner to corner
COLUMNS = 24       # columns of the source's mouth sampled for its teeth
DARK = 0.6         # a teeth pixel is brighter than this x the skin around the lips (grey teeth in
#   the lips' shadow count; teeth_share's 0.75 is for the driver's well-lit teeth)
TOP = 5            # of 16 samples down the gap: the run may start this far down (the lip's edge)
UPPER_SHARE = 0.6  # the upper row reaches at most this share of the photo's gap (the rest is the
#   lower row, which moves with the jaw)


def _mouth(lmk: np.ndarray):
    """(68, 2) -> (origin (2,), u axis (2,), v axis (2,), corner distance px, upper lip v(u),
    lower lip v(u)), u and v in units of the corner distance (``eyes.corner_frame`` on the inner
    lips, rescaled)."""
    c0, e, n, width, top, bottom = corner_frame(lmk, UPPER, LOWER)
    w = max(width, 1e-6)
    return c0, e, n, width, (lambda u: top(u * w) / w), (lambda u: bottom(u * w) / w)


def teeth_depth(image: np.ndarray, lmk68: np.ndarray) -> np.ndarray | None:
    """A source (H, W, 3) uint8 with its 68 landmarks -> (COLUMNS,) how far below its upper inner
    lip its teeth reach at u = linspace(0, 1, COLUMNS) (mouth-frame units; 0 where none show): a
    run of bright samples starting within the top ``TOP`` / 16 of the gap and ended by two dark
    ones, at most ``UPPER_SHARE`` of the gap; or None for a closed mouth."""
    lmk = np.asarray(lmk68, np.float64)
    c0, e, n, width, upper, lower = _mouth(lmk)
    if width < 8:
        return None
    u = np.linspace(0.0, 1.0, COLUMNS)
    up, lo = upper(u), lower(u)
    gap = np.maximum(lo - up, 0.0)
    if gap.max() * width < 3:
        return None
    skin = skin_ring(image, lmk)
    if len(skin) < 8:
        return None
    bright = DARK * float(np.median(skin @ LUMA))
    steps = np.linspace(0.0, 1.0, 16)
    v = up[:, None] + gap[:, None] * steps[None]                              # (C, 16)
    pts = c0 + width * (u[:, None, None] * e + v[..., None] * n)              # (C, 16, 2)
    grey = cv2.remap(image.astype(np.float32) @ LUMA.astype(np.float32), pts[..., 0].astype(np.float32),
                     pts[..., 1].astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    dark = grey < bright
    start = np.where((~dark[:, :TOP]).any(1), (~dark[:, :TOP]).argmax(1), len(steps))   # past the
    #   lip's own dark edge
    end = dark[:, 1:] & dark[:, :-1]                                          # two dark in a row
    end &= np.arange(len(steps) - 1)[None] >= start[:, None]
    last = np.where(end.any(1), end.argmax(1), len(steps) - 1)
    depth = np.where(start < len(steps), gap * np.minimum(steps[last], UPPER_SHARE), 0.0)
    depth[[0, -1]] = 0.0                                                      # the corners
    return cv2.medianBlur(depth.astype(np.float32)[None], 5)[0]


def keep_upper_teeth(frames: np.ndarray, target68: np.ndarray, image: np.ndarray, own68: np.ndarray,
                     weight: np.ndarray, depth: np.ndarray | None = None) -> np.ndarray:
    """frames (F, H, W, 3) uint8 with the driver's mouth in, target68 (F, 68, 2) their driven
    landmarks, image (H, W, 3) uint8 the source and own68 (68, 2) its landmarks, weight (F,) in
    [0, 1] the driver's mouth's (``mouth.gate``) -> frames with the source's upper teeth over it,
    under the upper lip, inside the driven inner lips. ``depth``: ``teeth_depth`` (computed when
    None; nothing kept when it finds none)."""
    depth = teeth_depth(image, own68) if depth is None else depth
    if depth is None or not depth.any():
        return frames
    out = frames.copy()
    H, W = frames.shape[1:3]
    s0, se, sn, sw, s_upper, _ = _mouth(np.asarray(own68, np.float64))
    cols = np.linspace(0.0, 1.0, COLUMNS)
    for f in np.nonzero(weight > 1e-3)[0]:
        t = np.asarray(target68[f], np.float64)
        if not np.isfinite(t).all():
            continue
        c0, e, n, width, upper, _ = _mouth(t)
        if width < 8:
            continue
        lo, hi = t[60:68].min(0) - 2, t[60:68].max(0) + 3
        x0, y0, x1, y1 = int(max(0, lo[0])), int(max(0, lo[1])), int(min(W, hi[0])), int(min(H, hi[1]))
        if x1 - x0 < 4 or y1 - y0 < 4:
            continue
        gy, gx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
        rel = (np.stack([gx, gy], -1) - c0) / width
        u, v = rel @ e, rel @ n                                                   # (h, w)
        below = v - upper(u)                                                      # under the upper lip
        reach = np.interp(u, cols, depth)
        a = np.clip((reach - below) / max(0.02, 0.25 * float(depth.max())), 0.0, 1.0)   # feathered end
        a *= (below >= 0) & (u > 0) & (u < 1)
        vs = s_upper(u) + below
        src = s0 + sw * (u[..., None] * se + vs[..., None] * sn)
        patch = cv2.remap(image, src[..., 0].astype(np.float32), src[..., 1].astype(np.float32),
                          cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        m = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(m, [np.round((t[60:68] - [x0, y0]) * 4).astype(np.int32)], 1, shift=2)
        a = (a * m * weight[f])[..., None]
        region = out[f, y0:y1, x0:x1].astype(np.float32)
        out[f, y0:y1, x0:x1] = np.clip(a * patch + (1 - a) * region + 0.5, 0, 255).astype(np.uint8)
    return out
