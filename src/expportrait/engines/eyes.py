"""warp_first's eyelids: a blink in the driver closes the result's eyes with eyelid skin, and
eyes the driver opens wide open wider.

The warp moves the source's lids only as far as the head model's expression basis closes them,
which for the embedded BFM basis is far short of a blink. Here each eye's opening is set from the
driver's: the driver's eye-aspect ratio (EAR) over its own open-eye EAR (the clip's 90th
percentile) scales the source's, and where that asks for a narrower eye than the warped frame
shows, the upper lid is lowered in image space (``set_lid``): in the eye's own frame (u along
the corners, v down) the skin between the lid and a lid-height above it is stretched down to the
new lid line, the eye below it stays where it is (hidden by the lid, not squashed), nothing moves
outside the corners. Where the driver opens its eyes wider than its own open eyes (surprise), the
lid goes up by the same share (at most ``WIDER``): the skin above it compressed, the eye between
the lids stretched to the new opening. The map is monotone along v, so it never folds.

And the other way (``open_eyes``): where the source shows an eye shut or cast down (its own EAR,
measured on its MediaPipe landmarks, under ``SHUT``) and the driver's is open wider, the upper lid
is raised by the same monotone map run upwards (the skin above it compressed, never folded) and
the opening filled with the driver's eye (iris, sclera, lashes): each pixel of the new opening
takes the driver's pixel at the same place between its corners and its lids (u across, t from the
upper lid down), matched in exposure and tint to the skin under the source's eye, feathered.
"""
from __future__ import annotations

import numpy as np

EYES = ((36, 37, 38, 39, 40, 41), (42, 43, 44, 45, 46, 47))   # corner, upper, upper, corner, lower, lower
SHUT = 0.18           # a source eye with a smaller EAR is shown shut (or cast down): it may open
WIDEST = 0.34         # an opened eye's EAR is at most this
WIDER = 1.3           # a driver's wide-open eyes open the result's at most this much wider


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
    """-> (F, 2) in (0, ``WIDER``]: the share of each eye's current (warped) opening to keep: the
    source's EAR times the driver's relative opening, over the warped frame's EAR (1: leave it;
    over 1 only where the driver's eye is wider than its open-eye EAR, and by no more than that).
    The driver's open-eye EAR (2,) is the clip's ``open_quantile`` unless given (``open_ear``: the
    live engine's, from the frames seen so far)."""
    drv = eye_aspect(driver68)                                                  # (F, 2)
    ok = np.asarray(driver_valid, bool) & np.isfinite(drv).all(1)
    if open_ear is None:
        if ok.sum() < 2:
            return np.ones_like(drv)
        open_ear = np.quantile(drv[ok], open_quantile, axis=0)
    rel = np.clip(drv / np.maximum(open_ear, 1e-6), 0.0, WIDER)
    want = eye_aspect(np.asarray(source68)[None])[0] * rel                       # (F, 2)
    keep = np.clip(want / np.maximum(eye_aspect(target68), 1e-6), 0.0, np.maximum(rel, 1.0))
    keep[~ok] = 1.0
    return _past_noise(keep)


def _past_noise(keep: np.ndarray, noise: float = 0.1) -> np.ndarray:
    """keep with the fit's few per cent of noise around 1 taken off continuously (1 - ``noise``
    .. 1 + ``noise`` -> 1; 0 and ``WIDER`` stay): a lid never jumps as the share crosses the band."""
    lo = 1.0 - np.clip(1.0 - noise - keep, 0.0, None) / (1.0 - noise)
    hi = 1.0 + np.clip(keep - 1.0 - noise, 0.0, None) * (WIDER - 1.0) / (WIDER - 1.0 - noise)
    return np.where(keep < 1.0, lo, hi)


def set_lid(frame: np.ndarray, eye: np.ndarray, keep: float, lid_height: float = 0.6) -> np.ndarray:
    """frame (H, W, 3) uint8, eye (6, 2) its 68-point eye (``EYES`` order), keep in [0, ``WIDER``]
    the share of the opening left -> the frame with that eye's upper lid lowered (keep < 1: the
    eye under it hidden) or raised (keep > 1: the eye between the lids stretched), a copy."""
    keep = float(min(keep, WIDER))
    if keep == 1.0:
        return frame
    w = float(np.linalg.norm(np.asarray(eye[3], np.float64) - eye[0]))
    moved = _move_lid(frame, eye, lambda u, top, bottom: np.maximum(bottom - top, 0.0) * (1.0 - keep),
                      lid_height, reach=max(keep - 1.0, 0.0) * w, stretch=keep > 1.0)
    if moved is None:
        return frame
    (x0, y0, x1, y1), region = moved[:2]
    out = frame.copy()
    out[y0:y1, x0:x1] = region
    return out


def _move_lid(frame: np.ndarray, eye: np.ndarray, shift, lid_height: float, reach: float = 0.0,
              stretch: bool = False):
    """The upper lid of ``eye`` (6, 2) moved by ``shift(u, top, bottom)`` px down the face (< 0:
    up; u along the corners, top / bottom the lid lines there), 0 outside the corners: the skin
    band of ``lid_height`` eye widths above the lid stretched or compressed to the new line, the
    rest in place, or with ``stretch`` the eye between a raised lid and the lower one stretched to
    fill the opening (monotone along the face: it never folds). ``reach``: px the box reaches higher.
    -> ((x0, y0, x1, y1), the box's new pixels (h, w, 3) uint8, u, v (h, w) the box's eye frame,
    the new lid line and the lower lid (h, w)), or None where the eye is too small."""
    import cv2
    H, W = frame.shape[:2]
    c0, eu, ev, w, top, bottom = corner_frame(np.asarray(eye, np.float64))
    if w < 3:
        return None
    pts = np.concatenate([eye, eye - ev * ((lid_height + 0.2) * w + reach), eye + ev * 0.3 * w])
    x0, y0 = np.floor(pts.min(0)).astype(int) - 2
    x1, y1 = np.ceil(pts.max(0)).astype(int) + 3
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(W, x1), min(H, y1)
    if x1 - x0 < 3 or y1 - y0 < 3:
        return None
    gy, gx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    u = (gx - c0[0]) * eu[0] + (gy - c0[1]) * eu[1]
    v = (gx - c0[0]) * ev[0] + (gy - c0[1]) * ev[1]
    t, b = top(u), bottom(u)
    d = np.where((u > 0) & (u < w), shift(u, t, b), 0.0)
    new = t + d
    sky = np.minimum(new, t) - lid_height * w                                  # the skin's top
    band = (v >= sky) & (v <= new) & (d != 0)
    sv = np.where(band, sky + (v - sky) * (t - sky) / np.maximum(new - sky, 1e-6), v)
    if stretch:              # the eye's own opening [t, b] shown over the wider [new, b]
        inside = (d < 0) & (v > new) & (v < b)
        sv = np.where(inside, t + (v - new) * (b - t) / np.maximum(b - new, 1e-6), sv)
    mapx = (c0[0] + u * eu[0] + sv * ev[0]).astype(np.float32)
    mapy = (c0[1] + u * eu[1] + sv * ev[1]).astype(np.float32)
    region = cv2.remap(frame, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return (x0, y0, x1, y1), region, u, v, new, b


def follow_lids(frames: np.ndarray, target68: np.ndarray, source68: np.ndarray, driver68: np.ndarray,
                driver_valid: np.ndarray, open_ear: np.ndarray | None = None) -> np.ndarray:
    """frames (F, H, W, 3) uint8 the warped result, target68 (F, 68, 2) its driven landmarks,
    source68 (68, 2) the source's, driver68 (F, 68, 2) the driver's (image landmarks) with its
    validity (F,) -> (F, H, W, 3) uint8 with each eye as open as the driver's asks: no more, and
    wider where the driver's opens wider than its own open eyes (``open_ear``: see
    ``keep_fraction``)."""
    keep = keep_fraction(target68, source68, driver68, driver_valid, open_ear=open_ear)  # (F, 2)
    out = frames
    for f, e in zip(*np.nonzero(keep != 1.0)):
        if out is frames:
            out = frames.copy()
        out[f] = set_lid(out[f], np.asarray(target68[f], np.float64)[list(EYES[e])], float(keep[f, e]))
    return out


def corner_frame(points: np.ndarray, up=(0, 1, 2, 3), lo=(0, 5, 4, 3)):
    """points (K, 2) px, e.g. a 68-point eye (6, 2) in ``EYES`` order, or the 68 landmarks with
    the inner lips' ``up`` (60-64) and ``lo`` (60, 67-65, 64) -> (corner c0 = points[up[0]], unit u
    along the corners (to points[up[-1]]), unit v down the face, width w, the upper and lower
    lines as functions of u (v offsets), both in px)."""
    points = np.asarray(points, np.float64)
    up, lo = list(up), list(lo)
    c0, c1 = points[up[0]], points[up[-1]]
    w = float(np.linalg.norm(c1 - c0))
    eu = (c1 - c0) / max(w, 1e-6)
    ev = np.array([-eu[1], eu[0]])
    q = points - c0
    u, v = q @ eu, q @ ev

    def line(idx):
        order = np.argsort(u[idx])
        return lambda x: np.interp(x, u[idx][order], v[idx][order])
    return c0, eu, ev, w, line(up), line(lo)


def open_eye(frame: np.ndarray, eye: np.ndarray, want: float, driver: np.ndarray,
             driver_eye: np.ndarray, lid_height: float = 0.6) -> np.ndarray:
    """frame (H, W, 3) uint8, eye (6, 2) its eye (``EYES`` order) shown shut or narrow, ``want``
    the EAR to open it to, driver (H', W', 3) uint8 with its eye ``driver_eye`` (6, 2) open -> a
    copy of the frame with the upper lid raised and the opening showing the driver's eye."""
    import cv2
    from expportrait.engines.mouth import match_colour
    eye = np.asarray(eye, np.float64)
    w = float(np.linalg.norm(eye[3] - eye[0]))
    lift = (want - float(eye_aspect(_as68(eye))[0, 0])) * w    # px the lid goes up at its middle
    if w < 4 or lift < 0.5:
        return frame
    moved = _move_lid(frame, eye, lambda u, top, bottom: -lift * 4 * u * (w - u) / w ** 2,  # 0 at
                      lid_height, reach=lift)                                              # the corners
    if moved is None:
        return frame
    (x0, y0, x1, y1), region, u, v, new, b = moved
    # the opening: between the raised lid and the lower one, the driver's eye at the same (u, t)
    hole = (u > 0) & (u < w) & (v > new) & (v < b) & (b - new > 0.5)
    d0, du, dv, dw, dtop, dbot = corner_frame(np.asarray(driver_eye, np.float64))
    ud = u / w * dw
    t = np.clip((v - new) / np.maximum(b - new, 1e-6), 0.0, 1.0)
    vd = dtop(ud) + t * (dbot(ud) - dtop(ud))
    dx = (d0[0] + ud * du[0] + vd * dv[0]).astype(np.float32)
    dy = (d0[1] + ud * du[1] + vd * dv[1]).astype(np.float32)
    patch = cv2.remap(driver, dx, dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    patch = match_colour(patch, _under(frame, eye, w), _under(driver, driver_eye, dw))
    a = cv2.GaussianBlur(hole.astype(np.float32), (0, 0), max(0.5, 0.04 * w)) * hole
    a = np.minimum(a * 2.0, 1.0)[..., None]
    out = frame.copy()
    out[y0:y1, x0:x1] = np.clip(a * patch + (1 - a) * region + 0.5, 0, 255).astype(np.uint8)
    return out


def _as68(eye: np.ndarray) -> np.ndarray:
    """(6, 2) one eye -> (1, 68, 2) with it at 36-41 (for ``eye_aspect``)."""
    lmk = np.zeros((1, 68, 2))
    lmk[0, 36:42] = eye
    return lmk


def _under(frame: np.ndarray, eye: np.ndarray, w: float) -> np.ndarray:
    """The skin under an eye (6, 2): a band 0.15-0.45 eye widths below its lower lid -> (n, 3)."""
    import cv2
    c0, eu, ev, _, _, _ = corner_frame(np.asarray(eye, np.float64))
    quad = np.array([eye[0] + ev * 0.15 * w, eye[3] + ev * 0.15 * w, eye[3] + ev * 0.45 * w,
                     eye[0] + ev * 0.45 * w])
    m = np.zeros(frame.shape[:2], np.uint8)
    cv2.fillConvexPoly(m, np.round(quad * 4).astype(np.int32), 1, shift=2)
    return frame[m > 0].reshape(-1, 3).astype(np.float64)


def open_eyes(frames: np.ndarray, target68: np.ndarray, source_eyes: np.ndarray, fitted68: np.ndarray,
              driver_frames: np.ndarray, driver68: np.ndarray, driver_valid: np.ndarray,
              margin: float = 0.03) -> np.ndarray:
    """frames (F, H, W, 3) uint8 the warped result, target68 (F, 68, 2) its driven landmarks,
    source_eyes (68, 2) the source's measured landmarks (MediaPipe's, for its eyes' EAR and
    lids), fitted68 (68, 2) the source's fitted ones (the warp's frame of reference), the driver's
    frames (F, H', W', 3) and landmarks (F, 68, 2) with validity (F,) -> (F, H, W, 3) uint8 with the
    source's shut eyes opened as wide as the driver's (``open_eye``), each where the driver's EAR
    is over the source's by ``margin``."""
    from expportrait.engines.warp_field import similarity
    src_ear = eye_aspect(np.asarray(source_eyes)[None])[0]                      # (2,)
    shut = [e for e in range(2) if src_ear[e] < SHUT]
    if not shut or driver_frames is None:
        return frames
    drv = eye_aspect(driver68)                                                  # (F, 2)
    out = frames
    for f in range(len(frames)):
        if not driver_valid[f] or not np.isfinite(driver68[f]).all():
            continue
        for e in shut:
            want = float(min(drv[f, e], WIDEST))
            if want < src_ear[e] + margin:
                continue
            idx = list(EYES[e])
            A = similarity(np.asarray(fitted68)[idx], np.asarray(target68[f])[idx])
            eye = np.asarray(source_eyes, np.float64)[idx] @ A[:, :2].T + A[:, 2]   # the shut eye, moved
            if out is frames:
                out = frames.copy()
            out[f] = open_eye(out[f], eye, want, driver_frames[f], np.asarray(driver68[f], np.float64)[idx])
    return out



def measured_landmarks(image: np.ndarray, fitted68: np.ndarray) -> np.ndarray | None:
    """The source's own 68 landmarks as MediaPipe measures them (the fit's lids follow the head
    model's basis, which cannot shut an eye): image (H, W, 3) uint8, fitted68 (68, 2) the fit's
    -> (68, 2) of the face nearest the fit, or None."""
    from expportrait.detection.faces import find_faces
    from expportrait.detection.landmarks import MP_TO_IBUG68
    faces = find_faces(image)
    if not faces:
        return None
    centre = np.asarray(fitted68, np.float64).mean(0)
    pts = [f.points[MP_TO_IBUG68, :2].astype(np.float64) for f in faces]
    best = min(pts, key=lambda p: float(np.linalg.norm(p.mean(0) - centre)))
    width = float(np.ptp(np.asarray(fitted68)[:, 0]))
    return best if np.linalg.norm(best.mean(0) - centre) < 0.3 * max(width, 1.0) else None
