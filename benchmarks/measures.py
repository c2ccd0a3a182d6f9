"""Measuring code shared by several benchmarks (imported as a sibling module, like ``common``):

- ``value``: one entry of a ``metrics.report.evaluate`` report (reenact.py, vae.py);
- ``vae_ceilings``, ``down_up``: what a perfect generator could reach through a VAE, and crops at
  a lower resolution (reenact.py, vae.py);
- ``mouth_opening``, ``yaw_ratio``, ``pearson``: dlib-landmark measures of expression and pose
  (unseen.py, transfer_real.py);
- ``place_in_view``, ``bench_renderer``, ``ModernGLPass``: the torch renderer timed against moderngl
  (EGL) on one mesh (renderer.py, tracking.py);
- ``teeth_fraction`` / ``teeth_scores``, ``eye_aspect``, ``landmark_jitter`` (``head_motion_only``:
  its floor), ``flicker`` (``person_masks``: of the background alone), ``warp_error``,
  ``box_crops`` / ``face_box_crops`` / ``mouth_box_crops`` and their helpers
  (``polygon_mask``, ``skin_luminance``, ``square_around``, ...): unseen.py's measures of teeth, eyes,
  temporal stability and self-mode crops (every ``lmk`` / ``lmk68``: dlib's 68 landmarks, (F, 68, 2)
  float (x, y) pixels, NaN rows where dlib found no face; frames: (F, H, W, 3) uint8 RGB);
- ``padded_square``: unseen.py's cross portraits; ``contact_frames``, ``write_sheet``, ``write_zoom``
  (``sheet_tile``, ``zoom_crop``): its contact sheets.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from common import repeat_time


# ---------------------------------------------------------------------------- reports
def value(report: dict, key: str, field: str = "value"):
    """``report[key][field]`` of a ``metrics.report.evaluate`` report, None where not computed."""
    entry = report.get(key, {})
    return entry.get(field) if entry.get("computed") else None


# ---------------------------------------------------------------------------- VAE ceilings
def vae_ceilings(vae, clip, feather, real_crops, boxes, frame0, real_frames, ref_crop, cross_boxes,
                 cross_background, astronaut):
    """What a perfect generator could reach through ``vae``: the real self crops encoded and
    decoded in clips of ``clip`` frames (the generator's length) and each alone -> face-crop and
    full-frame PSNR, and the pasted frames (``vae_frames``, ``vae_frame_frames``); the astronaut's
    reference crop held still for one clip, decoded and pasted into ``cross_background`` ((1, H, W,
    3), the pipeline's background) -> dlib face-found / same-person fractions against the
    ``astronaut`` image (H, W, 3)."""
    from expportrait.data.crop import paste_back
    from expportrait.generator.longvideo import _frames_uint8, _unit
    from expportrait.generator.vae import decode_latents, encode_video
    from expportrait.metrics.identity import identity_similarity
    from expportrait.metrics.image import psnr

    def through_vae(crops):                                   # (F, S, S, 3) uint8, F = 4k+1
        x = _unit(crops).permute(1, 0, 2, 3)[None]              # (1, 3, F, S, S)
        with torch.no_grad():
            return _frames_uint8(decode_latents(vae, encode_video(vae, x))[0])

    F, rec = len(real_crops), []
    for a in range(0, F, clip):
        chunk = real_crops[a:a + clip]
        pad = (-(len(chunk) - 1)) % 4
        chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, 0)])
        rec.append(through_vae(chunk)[:min(clip, F - a)])
    rec = np.concatenate(rec)
    alone = np.concatenate([through_vae(real_crops[i:i + 1]) for i in range(F)])   # image latents
    k = min(clip, len(cross_boxes))                           # --max-frames may cut below one clip
    still = through_vae(np.repeat(ref_crop[None], clip, 0))[:k]
    pasted = paste_back(cross_background, still, cross_boxes[:k], feather)
    ident = identity_similarity(pasted, astronaut).summary()
    rec_frames = paste_back(frame0, rec, boxes, feather)
    return {"vae_crop_psnr": psnr(rec, real_crops).mean, "vae_frames": rec_frames,
            "vae_frame_frames": paste_back(frame0, alone, boxes, feather),
            "vae_psnr": psnr(rec_frames, real_frames).mean,
            "vae_cross_found": ident["face_found_fraction"], "vae_cross_same": ident["same_person_fraction"]}


def down_up(crops: np.ndarray, px: int) -> np.ndarray:
    """(F, S, S, 3) uint8 crops -> the same crops at ``px`` pixels (area) and back (bilinear)."""
    import cv2
    S = crops.shape[1]
    return np.stack([cv2.resize(cv2.resize(c, (px, px), interpolation=cv2.INTER_AREA), (S, S),
                                interpolation=cv2.INTER_LINEAR) for c in crops])


# ---------------------------------------------------------------------------- dlib measures
def mouth_opening(lmk: np.ndarray) -> np.ndarray:
    """(F, 68, 2) dlib landmarks -> (F,) inner-lip gap / outer-eye-corner distance (NaN rows stay)."""
    gap = np.linalg.norm(lmk[:, [61, 62, 63]] - lmk[:, [67, 66, 65]], axis=-1).mean(1)
    return gap / np.linalg.norm(lmk[:, 36] - lmk[:, 45], axis=-1)


def yaw_ratio(lmk: np.ndarray) -> np.ndarray:
    """(F, 68, 2) -> (F,) (dl - dr) / (dl + dr): nose tip 30 to the left (0-2) and right (14-16)
    face edges; 0 frontal, about sin(yaw)."""
    dl = np.linalg.norm(lmk[:, 30] - lmk[:, 0:3].mean(1), axis=-1)
    dr = np.linalg.norm(lmk[:, 14:17].mean(1) - lmk[:, 30], axis=-1)
    return (dl - dr) / (dl + dr)


def pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    """Pearson correlation over the frames finite in both (None if < 3 or constant)."""
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
        return None
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


# ---------------------------------------------------------------------------- teeth, eyes, stability
INNER_LIPS = list(range(60, 68))                 # dlib's inner lip contour
NOSE = [27, 42, 35, 34, 33, 32, 31, 39]          # the nose between the inner eye corners and its wings
CHEEKS = ([41, 40, 31, 3, 2, 1], [46, 47, 35, 13, 14, 15])   # below each eye: lower lid, nose wing, jaw
SKIN_SHRINK = 0.7                                # cheek polygons scaled about their centroid (no edges)
TEETH_BRIGHT = 0.75                              # "bright": luminance > this x the skin median
TEETH_SHOWN = 0.15                               # a frame shows teeth: its fraction >= this
MOUTH_OPEN = 0.05                                # an open mouth: ``mouth_opening`` above this
MOUTH_SHUT = 0.04                                # below this ``mouth_opening``: no teeth (see below)


def luminance(frames: np.ndarray) -> np.ndarray:
    """(..., 3) RGB -> (...) float32 Rec. 601 luma in grey levels (0-255)."""
    x = np.asarray(frames, np.float32)
    return x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114


def polygon_mask(poly: np.ndarray, H: int, W: int) -> np.ndarray:
    """poly (K, 2) (x, y) pixels -> (H, W) bool: the pixels whose centres (x, y integer) lie inside
    the polygon (even-odd rule). A degenerate polygon (a closed mouth's collapsed lips) has none,
    unlike ``cv2.fillPoly``, which draws the outline."""
    poly = np.asarray(poly, np.float64)
    mask = np.zeros((H, W), bool)
    if not np.isfinite(poly).all() or len(poly) < 3:
        return mask
    x0, y0 = max(0, int(np.ceil(poly[:, 0].min()))), max(0, int(np.ceil(poly[:, 1].min())))
    x1, y1 = min(W - 1, int(np.floor(poly[:, 0].max()))), min(H - 1, int(np.floor(poly[:, 1].max())))
    if x1 < x0 or y1 < y0:
        return mask
    ys, xs = np.mgrid[y0:y1 + 1, x0:x1 + 1].astype(np.float64)
    inside = np.zeros(xs.shape, bool)
    a, b = poly, np.roll(poly, -1, 0)
    for (ax, ay), (bx, by) in zip(a, b):                  # crossing number of a ray to +x
        crosses = (ay > ys) != (by > ys)
        with np.errstate(divide="ignore", invalid="ignore"):
            xc = ax + (ys - ay) * (bx - ax) / (by - ay)
        inside ^= crosses & (xs < xc)
    mask[y0:y1 + 1, x0:x1 + 1] = inside
    return mask


def skin_mask(lmk: np.ndarray, H: int, W: int) -> np.ndarray:
    """lmk (68, 2) -> (H, W) bool: the nose polygon ``NOSE`` (bridge 27 between the inner eye corners
    39 / 42, down to the wings 31-35) and each cheek below an eye (``CHEEKS``: lower lid, nose wing,
    the jaw points from the mouth's height up to the eye's), the cheeks scaled by ``SKIN_SHRINK``
    about their centroid to keep off the face's edge, beard line and eyelids."""
    mask = polygon_mask(lmk[NOSE], H, W)
    for idx in CHEEKS:
        p = lmk[idx]
        c = p.mean(0)
        mask |= polygon_mask(c + SKIN_SHRINK * (p - c), H, W)
    return mask


def skin_luminance(frame: np.ndarray, lmk: np.ndarray) -> float:
    """frame (H, W, 3), lmk (68, 2) -> the median luma of ``skin_mask`` (NaN if none)."""
    m = skin_mask(lmk, *frame.shape[:2])
    return float(np.median(luminance(frame[m]))) if m.any() and np.isfinite(lmk).all() else float("nan")


def teeth_fraction(frames: np.ndarray, lmk68: np.ndarray, bright: float = TEETH_BRIGHT,
                   shut: float = MOUTH_SHUT) -> np.ndarray:
    """frames (F, H, W, 3), lmk68 (F, 68, 2) -> (F,) float: the fraction of the pixels inside the
    inner lips (dlib 60-67) whose luma exceeds ``bright`` x that frame's ``skin_luminance``; 0 for
    a closed mouth: no pixel inside, or an inner-lip gap (``mouth_opening``) below ``shut`` (the few
    pixels dlib's nearly collapsed inner lips enclose are lip, often a highlight: on cap12 such
    frames scored up to 0.5); NaN where the landmarks or the skin are missing."""
    out = np.full(len(frames), np.nan)
    gap = mouth_opening(lmk68)
    for i, (f, p) in enumerate(zip(frames, lmk68)):
        if not np.isfinite(p).all():
            continue
        skin = skin_luminance(f, p)
        if not np.isfinite(skin):
            continue
        m = polygon_mask(p[INNER_LIPS], *f.shape[:2]) if gap[i] >= shut else np.zeros(f.shape[:2], bool)
        out[i] = float((luminance(f[m]) > bright * skin).mean()) if m.any() else 0.0
    return out


def teeth_scores(res_frac: np.ndarray, drv_frac: np.ndarray, drv_open: np.ndarray) -> dict:
    """Result vs driver teeth fractions (F,), driver ``mouth_opening`` (F,) -> {"teeth_ratio":
    mean(result) / mean(driver) over the frames where the driver's fraction >= ``TEETH_SHOWN``
    (and both are finite), "teeth_corr": Pearson over the frames with the driver's mouth open
    (> ``MOUTH_OPEN``; 0 where the result's fraction does not change while the driver's does: teeth
    that never follow), "teeth_frames": how many frames the ratio is over}; None where undefined."""
    shown = (drv_frac >= TEETH_SHOWN) & np.isfinite(res_frac)
    ratio = float(res_frac[shown].mean() / drv_frac[shown].mean()) if shown.any() else None
    opened = (np.nan_to_num(drv_open, nan=-1.0) > MOUTH_OPEN) & np.isfinite(res_frac) & np.isfinite(drv_frac)
    corr = pearson(res_frac[opened], drv_frac[opened])
    if corr is None and opened.sum() >= 3 and np.std(drv_frac[opened]) > 0:
        corr = 0.0                                   # the result's teeth stay as they are
    return {"teeth_ratio": ratio, "teeth_corr": corr, "teeth_frames": int(shown.sum())}


def eye_aspect(lmk68: np.ndarray) -> np.ndarray:
    """(F, 68, 2) -> (F,) eye-aspect ratio (|p2-p6| + |p3-p5|) / (2 |p1-p4|) of each eye (dlib
    36-41 and 42-47 as p1..p6), the mean of both; NaN rows stay NaN."""
    from expportrait.engines.eyes import eye_aspect as per_eye     # (F, 2), the engine's
    return per_eye(lmk68).mean(1)


def interocular(lmk68: np.ndarray) -> np.ndarray:
    """(F, 68, 2) -> (F,) the outer-eye-corner distance |p36 - p45|."""
    return np.linalg.norm(lmk68[:, 36] - lmk68[:, 45], axis=-1)


def landmark_jitter(lmk68: np.ndarray) -> float:
    """(F, 68, 2) -> the mean |second difference| |p[t+1] - 2 p[t] + p[t-1]| over the landmarks and
    the frame triples with a face in all three, each in units of frame t's ``interocular``
    distance; NaN if there is no such triple. The benchmark reports result / driver."""
    if len(lmk68) < 3:
        return float("nan")
    d2 = np.linalg.norm(lmk68[2:] - 2 * lmk68[1:-1] + lmk68[:-2], axis=-1)     # (F-2, 68)
    d2 = d2 / interocular(lmk68[1:-1])[:, None]
    ok = np.isfinite(d2).all(1)
    return float(d2[ok].mean()) if ok.any() else float("nan")


def head_box(lmk: np.ndarray, scale: float, H: int, W: int) -> tuple[int, int, int, int]:
    """lmk (68, 2) -> (left, top, right, bottom) of the landmarks' bounding box grown ``scale`` x
    about its centre (each side), clipped to the frame."""
    (x0, y0), (x1, y1) = lmk.min(0), lmk.max(0)
    cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, scale * (x1 - x0) / 2, scale * (y1 - y0) / 2
    return (int(max(0, np.floor(cx - hw))), int(max(0, np.floor(cy - hh))),
            int(min(W, np.ceil(cx + hw))), int(min(H, np.ceil(cy + hh))))


def grey(frames: np.ndarray) -> np.ndarray:
    """(F, H, W, 3) RGB uint8 -> (F, H, W) uint8 grey (OpenCV's RGB2GRAY)."""
    import cv2
    return np.stack([cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames])


def flicker(frames: np.ndarray, lmk68: np.ndarray, scale: float = 2.0,
            exclude: np.ndarray | None = None) -> float:
    """frames (F, H, W, 3), lmk68 (F, 68, 2) (the same frames' landmarks) -> the mean absolute grey
    change (0-255) between consecutive frames over the pixels outside both frames' ``head_box``
    (``scale`` x the landmarks' box), averaged over the pairs with a face in both frames and some
    pixel left; NaN if none. A still background scores 0. ``exclude`` (F, H, W) bool or None:
    pixels left out where either frame has them (``person_masks``: the background alone)."""
    g = grey(frames).astype(np.float32)
    H, W = g.shape[1:]
    vals = []
    for t in range(1, len(g)):
        if not (np.isfinite(lmk68[t]).all() and np.isfinite(lmk68[t - 1]).all()):
            continue
        out = np.ones((H, W), bool)
        for p in (lmk68[t - 1], lmk68[t]):
            l, tp, r, b = head_box(p, scale, H, W)
            out[tp:b, l:r] = False
        if exclude is not None:
            out &= ~exclude[t] & ~exclude[t - 1]
        if out.any():
            vals.append(float(np.abs(g[t] - g[t - 1])[out].mean()))
    return float(np.mean(vals)) if vals else float("nan")


def person_masks(frames: np.ndarray, grow: int = 4) -> np.ndarray:
    """frames (F, H, W, 3) uint8 RGB -> (F, H, W) bool: MediaPipe's person (selfie segmentation,
    ``engines.segment.person_mask`` over 0.3) grown by ``grow`` px: hair, hat, clothes; the rest
    is the background (``flicker(..., exclude=)``: what should stay still)."""
    import cv2
    from expportrait.engines.segment import person_mask
    k = np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)
    return np.stack([cv2.dilate((person_mask(f) > 0.3).astype(np.uint8), k) > 0 for f in frames])


def head_motion_only(photo: np.ndarray, photo68: np.ndarray, driven68: np.ndarray) -> np.ndarray:
    """The floor of ``landmark_jitter`` for a result: photo (H, W, 3) uint8 with its landmarks
    photo68 (68, 2) (the fit's), driven68 (F, 68, 2) the result's driven landmarks (same image
    space) -> (F, H, W, 3) uint8: the photo moved by nothing but the driven head's motion (the
    least-squares similarity of brows, nose and eyes, 17-47, to the photo's: the warp's own
    ``engines.warp_field.similarity``; no expression), which dlib reads with the jitter of the
    head's motion and of its own reading alone."""
    import cv2
    from expportrait.engines.warp_field import similarity
    photo68 = np.asarray(photo68, np.float64)
    return np.stack([cv2.warpAffine(photo, similarity(photo68[17:48], d[17:48]), photo.shape[1::-1],
                                    flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
                     for d in np.asarray(driven68, np.float64)])


def real_flow(prev: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Grey frames (H, W) uint8 -> (backward flow cur -> prev, non-occluded mask), both at cur's
    pixels: ``cv2.DISOpticalFlow`` (preset medium) both ways; a pixel x is occluded where the forward
    flow at x + b(x) does not undo b(x): |f + b|^2 > 0.01 (|f|^2 + |b|^2) + 0.5 (Sundaram et al.),
    or x + b(x) leaves the frame."""
    import cv2
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    back = dis.calc(cur, prev, None)                  # (H, W, 2): cur(x) ~ prev(x + back(x))
    fwd = dis.calc(prev, cur, None)
    H, W = cur.shape
    xs, ys = np.meshgrid(np.arange(W, dtype=np.float32), np.arange(H, dtype=np.float32))
    mx, my = xs + back[..., 0], ys + back[..., 1]
    f_at = cv2.remap(fwd, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    s = f_at + back
    ok = (s ** 2).sum(-1) <= 0.01 * ((f_at ** 2).sum(-1) + (back ** 2).sum(-1)) + 0.5
    ok &= (mx >= 0) & (mx <= W - 1) & (my >= 0) & (my <= H - 1)
    return back, ok


def warp_error(result: np.ndarray, real: np.ndarray, lmk68: np.ndarray, scale: float = 1.2) -> float:
    """result, real (F, H, W, 3) (the same size), lmk68 (F, 68, 2) of ``real`` -> the warping error in
    grey levels: for each t >= 1 the real frames' backward flow (``real_flow``) warps result t-1 onto
    t; the mean |warped - result t| over the non-occluded pixels inside real frame t's face box
    (``square_around`` its landmarks, ``scale`` x), averaged over the pairs (NaN if none).
    ``warp_error(real, real, lmk68)`` is the floor (the flow's own error)."""
    import cv2
    gr, gx = grey(real), grey(result).astype(np.float32)
    H, W = gr.shape[1:]
    xs, ys = np.meshgrid(np.arange(W, dtype=np.float32), np.arange(H, dtype=np.float32))
    vals = []
    for t in range(1, len(gr)):
        if not np.isfinite(lmk68[t]).all():
            continue
        back, ok = real_flow(gr[t - 1], gr[t])
        warped = cv2.remap(gx[t - 1], xs + back[..., 0], ys + back[..., 1], cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
        l, tp, r, b = square_around(lmk68[t], scale, H, W)
        box = np.zeros((H, W), bool)
        box[tp:b, l:r] = True
        m = ok & box
        if m.any():
            vals.append(float(np.abs(warped - gx[t])[m].mean()))
    return float(np.mean(vals)) if vals else float("nan")


def square_around(points: np.ndarray, scale: float, H: int, W: int) -> tuple[int, int, int, int]:
    """points (K, 2) -> (left, top, right, bottom): the square of side ``scale`` x their larger
    extent, centred on their bounding box, clipped to an H x W frame (the frame if none is finite)."""
    if points is None or not np.isfinite(points).all():
        return 0, 0, W, H
    (x0, y0), (x1, y1) = points.min(0), points.max(0)
    half, cx, cy = scale / 2 * max(x1 - x0, y1 - y0), (x0 + x1) / 2, (y0 + y1) / 2
    return int(max(0, cx - half)), int(max(0, cy - half)), int(min(W, cx + half)), int(min(H, cy + half))


def box_crops(frames: np.ndarray, lmk: np.ndarray, points=slice(None), scale: float = 1.2,
              size: int = 128) -> np.ndarray:
    """frames (F, H, W, 3), lmk (F, 68, 2) (NaN rows: skipped) -> (F', size, size, 3): the square
    around each frame's landmarks ``points``, side ``scale`` x their larger extent, clipped to the
    frame, resized (INTER_AREA)."""
    import cv2
    out = []
    for f, p in zip(frames, lmk):
        if np.isfinite(p).all():
            l, t, r, b = square_around(p[points], scale, *f.shape[:2])
            out.append(cv2.resize(np.ascontiguousarray(f[t:b, l:r]), (size, size), interpolation=cv2.INTER_AREA))
    return np.stack(out) if out else np.zeros((0, size, size, 3), np.uint8)


def face_box_crops(frames: np.ndarray, lmk: np.ndarray, size: int = 128) -> np.ndarray:
    """The self face box: all 68 landmarks, 1.2x, ``size`` px -> (F', size, size, 3)."""
    return box_crops(frames, lmk, slice(None), 1.2, size)


def mouth_box_crops(frames: np.ndarray, lmk: np.ndarray, size: int = 64) -> np.ndarray:
    """The self mouth box: the mouth landmarks 48-67, 1.5x their larger extent, ``size`` px ->
    (F', size, size, 3). Cut result and real frame with the real frame's landmarks."""
    return box_crops(frames, lmk, slice(48, 68), 1.5, size)


def padded_square(img: np.ndarray, face, side: int = 512, context: float = 2.2) -> np.ndarray:
    """(H, W, 3) -> (side, side, 3): edge-padded to a centred square of side max(H, W, ``context`` x
    the ``face`` (``DlibFace``) box) and resized (INTER_AREA down, INTER_CUBIC up); close crops such
    as walter's get room (MediaPipe finds no face in the crop as it is)."""
    import cv2
    boxes = face.detect(img)
    extent = max(boxes[0][2] - boxes[0][0], boxes[0][3] - boxes[0][1]) if boxes else 0
    H, W = img.shape[:2]
    S = max(H, W, round(context * extent))
    top, left = (S - H) // 2, (S - W) // 2
    img = cv2.copyMakeBorder(img, top, S - H - top, left, S - W - left, cv2.BORDER_REPLICATE)
    return cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA if S > side else cv2.INTER_CUBIC)


def contact_frames(lmk: np.ndarray) -> list[int]:
    """(F, 68, 2) -> 4 frame indices: first, widest mouth, lowest and highest yaw (distinct when
    possible)."""
    m, y = mouth_opening(lmk), yaw_ratio(lmk)
    picks = [0] + [int(f(np.where(np.isfinite(v), v, g))) for f, v, g in
                   ((np.argmax, m, -np.inf), (np.argmin, y, np.inf), (np.argmax, y, -np.inf))]
    spare = np.linspace(0, len(lmk) - 1, 6).round().astype(int).tolist()
    out = []
    for i in picks:
        if i in out:                               # a repeat: an evenly spaced frame not yet shown
            i = next((j for j in spare if j not in out), i)
        out.append(i)
    return out


def sheet_tile(img: np.ndarray, box, side: int, label: str = "") -> np.ndarray:
    """img (H, W, 3), box (left, top, right, bottom) -> (side, side, 3): the box resized (INTER_AREA
    down, INTER_CUBIC up), ``label`` written top left."""
    import cv2
    l, t, r, b = box
    crop = np.ascontiguousarray(img[t:b, l:r])
    up = side > max(crop.shape[:2])
    out = cv2.resize(crop, (side, side), interpolation=cv2.INTER_CUBIC if up else cv2.INTER_AREA)
    if label:
        cv2.putText(out, label, (3, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1, cv2.LINE_AA)
    return out


def zoom_crop(img: np.ndarray, cx: float, cy: float, side: float, out: int, label: str = "") -> np.ndarray:
    """img (H, W, 3) -> (out, out, 3): the square of ``side`` px centred on (cx, cy), black beyond
    the frame, resized (a zoom of out / side)."""
    half = max(1, round(side / 2))
    x, y = round(cx), round(cy)
    crop = np.zeros((2 * half, 2 * half, 3), img.dtype)
    if 0 <= x < img.shape[1] and 0 <= y < img.shape[0]:      # the frame padded by half a side
        crop = np.pad(img, ((half, half), (half, half), (0, 0)))[y:y + 2 * half, x:x + 2 * half]
    return sheet_tile(crop, (0, 0, 2 * half, 2 * half), out, label)


def write_sheet(path, clips: list, engines: list[str], sheet: dict, tile: int = 128):
    """unseen.py's contact sheet: one row per clip (its ``Clip``: name, views, source, driving,
    show) with source | 4 driver frames | 4 result frames (``sheet[(clip name, engine)]``: (4, H, W,
    3), black where missing) per engine, labelled, each tile ``tile`` px. -> ``path``"""
    import cv2

    rows, gap = [], np.zeros((tile, 6, 3), np.uint8)
    for c in clips:
        src_view, drv_view = c.views
        row = [sheet_tile(c.source.frames[0], src_view, tile, c.name), gap]
        row += [sheet_tile(c.driving.frames[i], drv_view, tile, "driver" if k == 0 else "")
                for k, i in enumerate(c.show)]
        for v in engines:
            shown = sheet.get((c.name, v), np.zeros((len(c.show), *c.source.frames.shape[1:]), np.uint8))
            row += [gap] + [sheet_tile(f, src_view, tile, v if k == 0 else "") for k, f in enumerate(shown)]
        rows.append(np.concatenate(row, 1))                                            # failed: black
    img = np.concatenate([np.pad(r, ((0, 4), (0, 0), (0, 0))) for r in rows], 0)
    cv2.imwrite(str(path), img[..., ::-1])
    return Path(path)


def write_zoom(path, clips: list, zoom: dict, engine: str, tile: int = 192):
    """unseen.py's contact_zoom.png: one row per clip in ``zoom`` ({clip name: (the result frame at
    the driver's widest mouth ``clip.show[1]``, its dlib landmarks (68, 2))}, ``engine``'s): the
    driver frame | its mouth 4x | the result | its mouth 4x | its neck below the chin 2x, each tile
    ``tile`` px. Zooms are against the contact sheet's view (``clip.views``): a mouth crop is a
    quarter of its side, centred on the dlib mouth (48-67), a neck crop half of it, its top 0.15 of
    its side above the chin (point 8). -> ``path``"""
    import cv2

    def tiles(img, lmk, view, label, neck):
        side = max(view[2] - view[0], view[3] - view[1])
        if not np.isfinite(lmk).all():                   # no face found: the view's centre
            lmk = np.tile([(view[0] + view[2]) / 2, (view[1] + view[3]) / 2], (68, 1))
        mouth = lmk[48:68].mean(0)
        out = [sheet_tile(img, view, tile, label), zoom_crop(img, *mouth, side / 4, tile, "mouth 4x")]
        return out + ([zoom_crop(img, lmk[8, 0], lmk[8, 1] + 0.35 * side / 2, side / 2, tile, "neck 2x")]
                      if neck else [])

    rows, gap = [], np.zeros((tile, 6, 3), np.uint8)
    for c in clips:
        if c.name not in zoom:
            continue
        i, (frame, lmk) = c.show[1], zoom[c.name]
        lmk = lmk if np.isfinite(lmk).all() else c.src_lmk
        row = tiles(c.driving.frames[i], c.drv_lmk[i], c.views[1], f"{c.name} driver {i}", False)
        rows.append(np.concatenate(row + [gap] + tiles(frame, lmk, c.views[0], engine, True), 1))
    img = np.concatenate([np.pad(r, ((0, 4), (0, 0), (0, 0))) for r in rows], 0)
    cv2.imwrite(str(path), img[..., ::-1])
    return Path(path)


# ---------------------------------------------------------------------------- renderer timing
_VS = """
#version 330
uniform vec2 size;
uniform vec2 nf;
in vec3 in_pos;
in vec3 in_nrm;
out vec4 v_val;
void main() {
    float z = in_pos.z;
    float n = nf.x, f = nf.y;
    vec2 ndc = 2.0 * (in_pos.xy + 0.5) / size - 1.0;
    gl_Position = vec4(ndc * z, z * (f + n) / (f - n) - 2.0 * f * n / (f - n), z);
    v_val = vec4(in_nrm, z);
}
"""
_FS_VAL = """
#version 330
in vec4 v_val;
out vec4 f_out;
void main() { f_out = vec4(normalize(v_val.xyz), v_val.w); }
"""
_FS_ID = """
#version 330
in vec4 v_val;
out vec4 f_out;
void main() { f_out = vec4(float(gl_PrimitiveID + 1), 0.0, 0.0, 1.0); }
"""


def place_in_view(verts: torch.Tensor, size: int, fov_deg: float = 20.0, fill: float = 0.8):
    """Head-space verts (V, 3) -> camera-space (1, V, 3) framed to ``fill`` of the image, camera (1, 4)."""
    from expportrait.head.geometry import head_to_camera
    from expportrait.render import default_camera
    camera = default_camera(size, size, fov_deg)
    extent = float((verts.amax(0) - verts.amin(0))[:2].max())
    dist = extent / fill / (2.0 * np.tan(np.radians(fov_deg) / 2.0))
    cam = head_to_camera(verts[None], torch.zeros(1, 3), torch.tensor([[0.0, 0.0, dist]]))
    return cam, camera


class ModernGLPass:
    """moderngl EGL renderer of screen-space meshes (pixel x, pixel y, camera z)."""

    def __init__(self, faces: np.ndarray, num_verts: int, height: int, width: int):
        import moderngl

        self.ctx = moderngl.create_standalone_context(backend="egl")
        self.h, self.w = height, width
        self.vbo = self.ctx.buffer(reserve=num_verts * 6 * 4)
        self.ibo = self.ctx.buffer(np.ascontiguousarray(faces, dtype=np.int32).tobytes())
        self.progs, self.vaos = {}, {}
        for key, fs in (("val", _FS_VAL), ("id", _FS_ID)):
            prog = self.ctx.program(vertex_shader=_VS, fragment_shader=fs)
            prog["size"].value = (float(width), float(height))
            self.progs[key] = prog
            layout = (self.vbo, "3f 3f", "in_pos", "in_nrm") if key == "val" else (self.vbo, "3f 12x", "in_pos")
            self.vaos[key] = self.ctx.vertex_array(prog, [layout], index_buffer=self.ibo,
                                                   index_element_size=4)
        self.fbo = self.ctx.framebuffer([self.ctx.texture((width, height), 4, dtype="f4")],
                                        self.ctx.depth_renderbuffer((width, height)))

    def draw(self, screen: np.ndarray, normals: np.ndarray, key: str) -> np.ndarray:
        """screen (V, 3), normals (V, 3) float32 -> (H, W, 4) float32 (row 0 = pixel y 0)."""
        self.vbo.write(np.ascontiguousarray(np.concatenate([screen, normals], 1), dtype=np.float32))
        z = screen[:, 2]
        near = max(float(z.min()) * 0.5, 1e-4)
        self.progs[key]["nf"].value = (near, float(z.max()) * 2.0 + near)
        self.fbo.use()
        self.ctx.enable(self.ctx.DEPTH_TEST)
        self.fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
        self.vaos[key].render()
        data = self.fbo.read(components=4, dtype="f4")
        return np.frombuffer(data, dtype=np.float32).reshape(self.h, self.w, 4)

    def release(self) -> None:
        self.ctx.release()


def bench_renderer(verts_cam: torch.Tensor, faces: torch.Tensor, camera: torch.Tensor, size: int,
                   repeats: int = 7, warmup: int = 2, with_moderngl: bool = True) -> dict:
    """Time the torch renderer (and moderngl, side by side) on one mesh.

    verts_cam (1, V, 3) OpenCV camera space; faces (T, 3); camera (1, 4); square ``size`` image.
    Returns seconds (median of ``repeats`` after ``warmup``): render_s, rasterize_s and, when
    ``with_moderngl``, moderngl_s (normal+depth pass), moderngl_id_s, ratio, id_agreement.
    """
    from expportrait.head.geometry import vertex_normals
    from expportrait.render import render, to_screen
    from expportrait.render.rasterize import rasterize

    res = {"faces": int(faces.shape[0]), "verts": int(verts_cam.shape[1]), "size": size}
    screen = to_screen(verts_cam, camera)
    res["render_s"] = repeat_time(lambda: render(verts_cam, faces, camera, size, size,
                                                 backend="torch"), repeats, warmup)
    res["rasterize_s"] = repeat_time(lambda: rasterize(screen, faces, size, size, backend="torch"),
                                     repeats, warmup)
    out = render(verts_cam, faces, camera, size, size, backend="torch")
    res["coverage"] = float(out.mask.mean())
    if not with_moderngl:
        return res
    gl = ModernGLPass(faces.numpy(), verts_cam.shape[1], size, size)
    try:
        def gl_val():
            nrm = vertex_normals(verts_cam, faces)[0] * torch.tensor([1.0, -1.0, -1.0])
            return gl.draw(to_screen(verts_cam, camera)[0].numpy(), nrm.numpy(), "val")

        def gl_id():
            return gl.draw(to_screen(verts_cam, camera)[0].numpy(), np.zeros_like(screen[0].numpy()), "id")

        res["moderngl_s"] = repeat_time(gl_val, repeats, warmup)
        res["moderngl_id_s"] = repeat_time(gl_id, repeats, warmup)
        gl_face = np.rint(gl_id()[..., 0]).astype(np.int64) - 1             # (H, W)
        gl_nd = gl_val()
    finally:
        gl.release()
    ours = out.frags.face_id[0].numpy()
    res["id_agreement"] = float((ours == gl_face).mean())
    res["mask_agreement"] = float(((ours >= 0) == (gl_face >= 0)).mean())
    both = (ours >= 0) & (gl_face >= 0)
    res["depth_max_abs_diff_m"] = float(np.abs(out.depth[0, 0].numpy() - gl_nd[..., 3])[both].max())
    res["ratio"] = res["render_s"] / res["moderngl_s"]
    res["rasterize_ratio"] = res["rasterize_s"] / res["moderngl_id_s"]
    return res
