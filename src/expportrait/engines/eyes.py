"""warp_first's eyelids: a blink in the driver closes the result's eyes with eyelid skin.

The warp moves the source's lids only as far as the head model's expression basis closes them,
which for the embedded BFM basis is far short of a blink. Here each eye's opening is set from the
driver's: the driver's eye-aspect ratio (EAR) over its own open-eye EAR (the clip's 90th
percentile) scales the source's, and where that asks for a narrower eye than the warped frame
shows, the upper lid is lowered in image space (``lower_lid``): in the eye's own frame (u along
the corners, v down) the skin between the lid and a lid-height above it is stretched down to the
new lid line, the eye below it stays where it is (hidden by the lid, not squashed), nothing moves
outside the corners. The map is monotone along v, so it never folds. Opening eyes the source
shows shut would need the driver's iris and sclera (not done here).
"""
from __future__ import annotations

import numpy as np

EYES = ((36, 37, 38, 39, 40, 41), (42, 43, 44, 45, 46, 47))   # corner, upper, upper, corner, lower, lower


def eye_aspect(lmk68: np.ndarray) -> np.ndarray:
    """(F, 68, 2) -> (F, 2) eye-aspect ratio of each eye ((|p2-p6| + |p3-p5|) / (2 |p1-p4|))."""
    lmk68 = np.asarray(lmk68, np.float64)
    out = []
    for e in EYES:
        p = lmk68[:, list(e)]
        v = np.linalg.norm(p[:, 1] - p[:, 5], axis=-1) + np.linalg.norm(p[:, 2] - p[:, 4], axis=-1)
        out.append(v / np.maximum(2 * np.linalg.norm(p[:, 0] - p[:, 3], axis=-1), 1e-6))
    return np.stack(out, 1)


def keep_fraction(target68: np.ndarray, source68: np.ndarray, driver68: np.ndarray,
                  driver_valid: np.ndarray, open_quantile: float = 0.9,
                  open_ear: np.ndarray | None = None) -> np.ndarray:
    """-> (F, 2) in (0, 1]: the share of each eye's current (warped) opening to keep: the source's
    EAR times the driver's relative opening, over the warped frame's EAR (1: leave it). The
    driver's open-eye EAR (2,) is the clip's ``open_quantile`` unless given (``open_ear``: the
    live engine's, from the frames seen so far)."""
    drv = eye_aspect(driver68)                                                  # (F, 2)
    ok = np.asarray(driver_valid, bool) & np.isfinite(drv).all(1)
    if open_ear is None:
        if ok.sum() < 2:
            return np.ones_like(drv)
        open_ear = np.quantile(drv[ok], open_quantile, axis=0)
    rel = np.clip(drv / np.maximum(open_ear, 1e-6), 0.0, 1.0)
    want = eye_aspect(np.asarray(source68)[None])[0] * rel                       # (F, 2)
    keep = np.clip(want / np.maximum(eye_aspect(target68), 1e-6), 0.0, 1.0)
    keep[~ok] = 1.0
    return np.where(keep > 0.9, 1.0, keep)       # a few per cent: the fit's noise, not a blink


def lower_lid(frame: np.ndarray, eye: np.ndarray, keep: float, lid_height: float = 0.6) -> np.ndarray:
    """frame (H, W, 3) uint8, eye (6, 2) its 68-point eye (``EYES`` order), keep in [0, 1] the
    share of the opening left -> the frame with that eye's upper lid lowered (a copy)."""
    import cv2
    H, W = frame.shape[:2]
    c0, c1 = eye[0], eye[3]
    w = float(np.linalg.norm(c1 - c0))
    if keep >= 1.0 or w < 3:
        return frame
    eu = (c1 - c0) / w
    ev = np.array([-eu[1], eu[0]])                                              # down the face

    def uv(p):
        q = np.asarray(p, np.float64) - c0
        return q @ eu, q @ ev
    uu, vu = uv(eye[[0, 1, 2, 3]])                                              # upper lid
    ul, vl = uv(eye[[0, 5, 4, 3]])                                              # lower lid
    pts = np.concatenate([eye, eye - ev * (lid_height + 0.1) * w, eye + ev * 0.3 * w])
    x0, y0 = np.floor(pts.min(0)).astype(int) - 2
    x1, y1 = np.ceil(pts.max(0)).astype(int) + 3
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(W, x1), min(H, y1)
    if x1 - x0 < 3 or y1 - y0 < 3:
        return frame
    gy, gx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    u, v = (gx - c0[0]) * eu[0] + (gy - c0[1]) * eu[1], (gx - c0[0]) * ev[0] + (gy - c0[1]) * ev[1]
    top = np.interp(u, np.sort(uu), vu[np.argsort(uu)])                         # the lid line
    bottom = np.interp(u, np.sort(ul), vl[np.argsort(ul)])
    inside = (u > 0) & (u < w)
    drop = np.where(inside, np.maximum(bottom - top, 0.0) * (1.0 - keep), 0.0)  # how far it comes down
    new, sky = top + drop, top - lid_height * w                                 # new lid line, skin top
    band = (v >= sky) & (v <= new) & (drop > 0)
    sv = np.where(band, sky + (v - sky) * (top - sky) / np.maximum(new - sky, 1e-6), v)
    mapx = (c0[0] + u * eu[0] + sv * ev[0]).astype(np.float32)
    mapy = (c0[1] + u * eu[1] + sv * ev[1]).astype(np.float32)
    out = frame.copy()
    out[y0:y1, x0:x1] = cv2.remap(frame, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out


def close_eyes(frames: np.ndarray, target68: np.ndarray, source68: np.ndarray, driver68: np.ndarray,
               driver_valid: np.ndarray, open_ear: np.ndarray | None = None) -> np.ndarray:
    """frames (F, H, W, 3) uint8 the warped result, target68 (F, 68, 2) its driven landmarks,
    source68 (68, 2) the source's, driver68 (F, 68, 2) the driver's (image landmarks) with its
    validity (F,) -> (F, H, W, 3) uint8 with each eye no more open than the driver's asks
    (``open_ear``: see ``keep_fraction``)."""
    keep = keep_fraction(target68, source68, driver68, driver_valid, open_ear=open_ear)  # (F, 2)
    out = frames
    for f, e in zip(*np.nonzero(keep < 1.0)):
        if out is frames:
            out = frames.copy()
        out[f] = lower_lid(out[f], np.asarray(target68[f], np.float64)[list(EYES[e])], float(keep[f, e]))
    return out
