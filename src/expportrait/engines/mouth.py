"""warp_first's mouth: what the warp cannot show inside the driven open mouth
(``PipelineConfig.mouth_source``, ``reenact --mouth-source``).

- ``driver`` (and ``auto``): where the driven mouth opens wider than the source's (up to its own
  opening a source's own mouth, teeth included, is the warp's: closed over, never stretched into
  grey "tombstones"), the driver's inner mouth (teeth, tongue) carried into the result's
  driven inner-lip contour, as *Bringing Portraits to Life* (Averbuch-Elor et al. 2017) does: a
  smooth map through the inner lips (``lip_spline``, a thin-plate spline) takes each result pixel
  inside the lips to the driver frame, the driver's pixels are matched in exposure and tint to
  the skin on the result's cheeks (``match_colour`` on ``segment.cheek_pixels``: the source's skin and
  light, not the driver's; not the lips' surroundings, a beard or a shadow there; for a source
  that shows teeth, to the colour of its own teeth: ``teeth_colour``),
  shaded like a mouth (``cavity``) and blended with a feathered inner-lip mask, gated on how much
  wider the driven mouth opens than the source's (``gate``; smoothed over time).
  ``carry_driver_mouth``. A source that shows teeth keeps its upper row on its upper lip over it
  (``engines.own_teeth``).
- a video source, with ``auto`` and ``source``: first its own frames' mouths, retrieved by lip
  shape and smoothed over time (``engines.mouth_bank``; ``auto`` falls back to the driver's where no
  frame is close enough).
- ``source`` (an image source) / ``none``: the warp's own mouth (the source's mouth stretched
  through the affine map of the inner lips, ``engines.warp_field``).
- ``learned``: the ``driver`` composite refined by the generator (warp_first's own ``synth/``
  generator if the checkpoint has one, else its main one; a ``residual_base`` "warp" generator
  starts from the composite's crops, ``scripts/train_mouth_refiner.sh``), on the shared crop
  conditions (``engines.conditions``), kept only inside the driven inner lips (``mouth_masks``).
  Measured worse than the classical composite on the validation people (docs/experiments.md).
"""
from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from expportrait.data.crop import crop, crop_affine, paste_back
from expportrait.engines.conditions import crop_conditions
from expportrait.engines.segment import cheek_pixels

MOUTH_SOURCES = ("auto", "source", "driver", "learned", "none")
OUTER, INNER = slice(48, 60), slice(60, 68)        # 68-point lips
LUMA = np.array([0.299, 0.587, 0.114])             # Rec. 601 luminance of RGB
INSET = 0.35              # ``inset_lips``: of each column's half gap
TEETH_CHROMA = 0.5         # the driver's teeth keep this share of their colour (their light's
#   cast: cap13's warm light made them yellow, and brown where a darker source dimmed them; teeth
#   are near white), the tongue (``not_red``) and the cavity all of it
TEETH_GAIN = (0.75, 2.0)   # the driver's mouth follows the source skin's exposure within these:
#   teeth stay as bright against a pale skin as they were against the driver's (a darker skin
#   does not make darker teeth)


def opening(lmk68: np.ndarray) -> np.ndarray:
    """(F, 68, 2) -> (F,) the inner-lip polygon's area over the squared mouth width (0 closed)."""
    lip = np.asarray(lmk68, np.float64)[:, INNER]
    x, y = lip[..., 0], lip[..., 1]
    area = 0.5 * np.abs((x * np.roll(y, -1, 1) - np.roll(x, -1, 1) * y).sum(1))
    width = np.linalg.norm(lmk68[:, 54] - lmk68[:, 48], axis=-1)
    return area / np.maximum(width, 1e-6) ** 2


def nearest_openings(target68: np.ndarray, donor68: np.ndarray) -> np.ndarray:
    """target68 (F, 68, 2), donor68 (F', 68, 2) -> (F,) int: for each target frame the donor frame
    whose mouth opens most alike (``opening``; frames with a missing landmark never picked): the
    ``pick`` of ``carry_driver_mouth`` for a donor that is not the driver (the composites a
    learned mouth refiner is trained on, ``prepare --mouth-donor``)."""
    theirs = opening(np.nan_to_num(np.asarray(donor68, np.float64), nan=0.0))
    theirs = np.where(np.isfinite(np.asarray(donor68, np.float64)).all((1, 2)), theirs, np.inf)
    if not np.isfinite(theirs).any():
        raise ValueError("the donor has no frame with all 68 landmarks")
    return np.abs(opening(np.asarray(target68, np.float64))[:, None] - theirs[None]).argmin(1)


def gate(target68: np.ndarray, source68: np.ndarray, sigma: float = 1.0, span: float = 0.01) -> np.ndarray:
    """target68 (F, 68, 2) the driven lips, source68 (68, 2) the source's -> (F,) in [0, 1]: how
    much of the driver's mouth to show, 0 where the driven mouth opens no wider than the source's
    (its own mouth, teeth included, is the warp's) and 1 from ``span`` (in ``opening`` units)
    wider on; smoothed over ``sigma`` frames."""
    from expportrait.data.smooth import gaussian_filter_time
    extra = opening(target68) - opening(np.asarray(source68)[None])[0]
    w = np.clip(extra / span, 0.0, 1.0)
    return np.clip(gaussian_filter_time(w[:, None], sigma)[:, 0], 0.0, 1.0)


def lip_spline(target: np.ndarray, source: np.ndarray, box: tuple[int, int, int, int],
               smoothing: float = 0.0) -> np.ndarray:
    """Smooth backward map inside the lips: target, source (K, 2) the inner lips (60-67) of the
    result and of the driver, box (x0, y0, x1, y1) of the output -> (h, w, 2) float32 the source
    pixel of every output pixel: a thin-plate spline of the displacement (scipy's
    ``RBFInterpolator``, linear term; ``smoothing`` in units of the lips' width, 0: through every
    point). The driver's inner-lip contour lands on the result's, so none of the driver's lips
    shows inside them, and the map bends without kinks, so the driver's rows of teeth stay rows:
    the piecewise-affine map on the lips' triangles it replaced bent them at every landmark into
    "fangs"; a spline through the outer lips as well (or smoothed) left the driver's red lip edge
    inside the result's lips (docs/experiments.md, 2026-12-08)."""
    from scipy.interpolate import RBFInterpolator
    target, source = np.asarray(target, np.float64), np.asarray(source, np.float64)
    o = target.mean(0)
    s = max(float(np.ptp(target[:, 0])), 1.0)
    spline = RBFInterpolator((target - o) / s, (source - target) / s, kernel="thin_plate_spline",
                             smoothing=smoothing, degree=1)
    x0, y0, x1, y1 = box
    gy, gx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    q = np.stack([gx.ravel(), gy.ravel()], 1)
    return (q + s * spline((q - o) / s)).reshape(y1 - y0, x1 - x0, 2).astype(np.float32)


def skin_ring(frame: np.ndarray, lmk: np.ndarray) -> np.ndarray:
    """The skin around the lips of ``lmk`` (68, 2): a band of a quarter of the mouth width outside
    the outer lip contour (lipstick, a beard's shadow inside the lips do not count) -> (n, 3)."""
    mw = float(np.linalg.norm(lmk[54] - lmk[48]))
    k = max(1, int(round(0.25 * mw)))
    m = np.zeros(frame.shape[:2], np.uint8)
    cv2.fillPoly(m, [np.round(lmk[OUTER] * 4).astype(np.int32)], 1, shift=2)
    ring = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))) - m
    return frame[ring > 0].reshape(-1, 3).astype(np.float64)


def match_colour(patch: np.ndarray, ours: np.ndarray, theirs: np.ndarray,
                 limits: tuple[float, float] = (0.75, 1.33), tint: float = 0.25) -> np.ndarray:
    """The driver's pixels ``patch`` (..., 3) matched to the result: ``ours`` / ``theirs`` (n, 3)
    the same region (the cheeks, ``segment.cheek_pixels``; or (3,) colours already pooled) in the
    result and in the driver frame. Exposure: the ratio of their median luminance (within
    ``limits``: a darker skin does not make darker teeth); colour: the ratio of their channel
    medians over their luminance, to the power ``tint`` (a quarter: the light's tint, not the
    skin's; 1 for the teeth of a source that shows them), within 0.7-1.4. A pixel pushed past 255
    keeps its luminance and loses colour (over-exposed teeth turn white, not orange: clipping each
    channel alone saturated yellowish teeth). -> float32 in [0, 255]."""
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    if ours.ndim == 2 and (len(ours) < 8 or len(theirs) < 8):
        return patch.astype(np.float32)
    luma = LUMA
    a, b = (np.median(ours, 0), np.median(theirs, 0)) if ours.ndim == 2 else (ours, theirs)
    g = float(np.clip((a @ luma) / max(b @ luma, 1.0), *limits))
    k = np.clip((a / max(a @ luma, 1.0)) / np.maximum(b / max(b @ luma, 1.0), 1e-3), 0.7, 1.4) ** tint
    out = patch.astype(np.float32) * (g * k).astype(np.float32)
    y = np.minimum(out @ luma.astype(np.float32), 255.0)[..., None]
    top = out.max(-1, keepdims=True)
    k = np.where(top > 255.0, (255.0 - y) / np.maximum(top - y, 1e-3), 1.0)      # toward grey
    return np.clip(y + (out - y) * k, 0, 255)


def cavity(patch: np.ndarray, raw: np.ndarray, skin: np.ndarray, dark: float = 0.3) -> np.ndarray:
    """The mouth's inside is in the lips' shadow: pixels of ``patch`` (..., 3) float whose
    driver pixels ``raw`` (..., 3) are darker than teeth (under 0.7x the median luminance of
    ``skin`` (n, 3), the driver's cheeks; teeth are those above 0.75x) are darkened, down to
    ``dark`` x at 0.45x, the teeth kept, so the opening still reads as one (a low-resolution
    driver's mouth is washed out). Teeth are judged against the driver's own skin: after the
    exposure match a pale source's skin would otherwise make every tooth look dark."""
    if len(skin) < 8:
        return patch
    return patch * (dark + (1.0 - dark) * toothness(raw, skin))


def toothness(raw: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """The driver's pixels ``raw`` (..., 3) -> (..., 1) float32 in [0, 1]: 0 for the cavity
    (under 0.45x the median luminance of ``skin`` (n, 3), the driver's cheeks), 1 for teeth (from
    0.7x on), linear between."""
    luma = LUMA.astype(np.float32)
    ref = max(float(np.median(skin @ luma)), 1.0)
    return np.clip((raw.astype(np.float32) @ luma / ref - 0.45) / 0.25, 0.0, 1.0)[..., None]


def not_red(raw: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """The driver's pixels ``raw`` (..., 3) -> (..., 1) float32 in [0, 1]: 1 where they are no
    redder than 1.1x the driver's ``skin`` (n, 3) (redness: (R - G) / luminance; teeth measured
    0.7-1.1x on cap12 and cap13), 0 from 1.5x on (a tongue: 1.6-2.5x on carphone)."""
    def redness(p):
        p = np.asarray(p, np.float32)
        return (p[..., 0] - p[..., 1]) / np.maximum(p @ LUMA.astype(np.float32), 1.0)
    ref = max(float(np.median(redness(skin))), 0.05)
    return np.clip((1.5 - redness(raw) / ref) / 0.4, 0.0, 1.0)[..., None]


def _inside_and_skin(image: np.ndarray, lmk68: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """-> (the pixels (n, 3) inside the open inner lips, the bright threshold: 0.75x the median
    luminance of the skin around them), or None (a closed mouth, too few pixels)."""
    lmk68 = np.asarray(lmk68, np.float64)
    if not np.isfinite(lmk68).all() or opening(lmk68[None])[0] < 0.01:
        return None
    m = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(m, [np.round(lmk68[INNER] * 4).astype(np.int32)], 1, shift=2)
    inside, skin = image[m > 0].astype(np.float64), skin_ring(image, lmk68)
    if len(inside) < 4 or len(skin) < 8:
        return None
    return inside, 0.75 * float(np.median(skin @ LUMA))


def teeth_share(image: np.ndarray, lmk68: np.ndarray) -> float:
    """A frame (H, W, 3) uint8 with its 68 landmarks -> the share of its open inner-lip polygon
    brighter than 0.75x the skin around the lips (0 for a closed mouth): how much teeth it shows."""
    found = _inside_and_skin(image, lmk68)
    return 0.0 if found is None else float(np.mean(found[0] @ LUMA > found[1]))


def teeth_pixels(image: np.ndarray, lmk68: np.ndarray) -> np.ndarray:
    """A frame (H, W, 3) uint8 with its 68 landmarks -> (n, 3) float64 its teeth: the pixels inside
    the open inner lips brighter than 0.75x the skin around them (``teeth_share``'s; n may be 0)."""
    found = _inside_and_skin(image, lmk68)
    return np.zeros((0, 3)) if found is None else found[0][found[0] @ LUMA > found[1]]


def teeth_colour(frames, lmk68, valid=None, most: int = 32) -> np.ndarray | None:
    """frames (F, H, W, 3) uint8 (or a list), lmk68 (F, 68, 2), valid (F,) bool -> (3,) the median
    colour of their teeth, or None where fewer than 16 teeth pixels show: of up to ``most`` frames
    spread over the clip (lips ``inset_lips``), the brightest quarter of each frame's
    ``teeth_pixels`` (what passes 0.75x the skin there includes lip and gum; the cores are teeth)."""
    idx = np.arange(len(frames)) if valid is None else np.nonzero(np.asarray(valid, bool))[0]
    idx = idx[np.linspace(0, len(idx) - 1, min(most, len(idx))).round().astype(int)] if len(idx) else idx
    px = []
    for i in idx:
        p = teeth_pixels(frames[i], inset_lips(lmk68[i]))
        if len(p):
            px.append(p[p @ LUMA >= np.quantile(p @ LUMA, 0.75)])
    px = np.concatenate(px) if px else np.zeros((0, 3))
    return np.median(px, 0) if len(px) >= 16 else None


def shows_teeth(image: np.ndarray, lmk68: np.ndarray, share: float = 0.25) -> bool:
    """Whether a frame with its 68 landmarks shows teeth (``teeth_share`` >= ``share``)."""
    return teeth_share(image, lmk68) >= share


def carry_driver_mouth(frames: np.ndarray, target68: np.ndarray, driver: np.ndarray,
                       driver68: np.ndarray, weight: np.ndarray, feather: float = 0.05, *,
                       pick: np.ndarray | None = None, shade: bool = True,
                       teeth: tuple[np.ndarray, np.ndarray] | None = None,
                       chroma: float = TEETH_CHROMA) -> np.ndarray:
    """frames (F, H, W, 3) uint8 the warped result, target68 (F, 68, 2) its driven landmarks,
    driver (F', H', W', 3) uint8 the driver frames, driver68 (F', 68, 2) their landmarks, weight (F,)
    in [0, 1] (``gate``) -> (F, H, W, 3) uint8 with the driver's inner mouth inside the driven
    inner lips. The mask is the inner-lip polygon softened by ``feather`` x the mouth width.
    ``pick`` (F,) int: result frame f takes driver frame ``pick[f]`` (default f: F' = F);
    ``shade``: the ``cavity`` shading (off for frames that are not washed out); ``teeth``: ((3,)
    the source's own teeth colour, (3,) the driver's, ``teeth_colour``) for a source that shows
    teeth: the driver's teeth (``toothness`` and ``not_red``: not its cavity, not its tongue) are
    matched to the source's teeth (exposure within ``TEETH_GAIN``, full tint) instead of to its
    skin's light, so the two sets of teeth look alike. ``chroma``: the share of their colour the
    driver's teeth keep otherwise (1: all, for a source's own frames' teeth)."""
    out = frames.copy()
    H, W = frames.shape[1:3]
    pick = np.arange(len(frames)) if pick is None else np.asarray(pick)
    for f in np.nonzero(weight > 1e-3)[0]:
        j = int(pick[f])
        t, d = np.asarray(target68[f], np.float64), np.asarray(driver68[j], np.float64)
        if not (np.isfinite(t).all() and np.isfinite(d).all()):
            continue
        mw = float(np.linalg.norm(t[54] - t[48]))
        if mw < 4:
            continue
        lo, hi = t[OUTER].min(0) - 0.4 * mw, t[OUTER].max(0) + 0.4 * mw
        box = (int(max(0, lo[0])), int(max(0, lo[1])), int(min(W, hi[0] + 1)), int(min(H, hi[1] + 1)))
        if box[2] - box[0] < 4 or box[3] - box[1] < 4:
            continue
        d = inset_lips(d)
        src = lip_spline(t[INNER], d[INNER], box)
        patch = cv2.remap(driver[j], src[..., 0], src[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        x0, y0, x1, y1 = box
        region = out[f, y0:y1, x0:x1]
        ours, theirs = cheek_pixels(frames[f], t), cheek_pixels(driver[j], d)   # lit like the face
        matched = match_colour(patch, ours, theirs, TEETH_GAIN)
        k = toothness(patch, theirs) * not_red(patch, theirs) if len(theirs) >= 8 else None   # teeth,
        #   not the cavity, not the tongue
        if k is not None and chroma < 1:          # teeth nearer white than the driver's light
            y = matched @ LUMA.astype(np.float32)
            matched = matched - (1 - chroma) * k * (matched - y[..., None])
        if k is not None and teeth is not None:   # the teeth as the source's own
            matched = k * match_colour(patch, teeth[0], teeth[1], TEETH_GAIN, tint=1.0) + (1 - k) * matched
        patch = cavity(matched, patch, theirs) if shade else matched
        m = np.zeros(region.shape[:2], np.uint8)
        cv2.fillPoly(m, [np.round((t[INNER] - [x0, y0]) * 4).astype(np.int32)], 1, shift=2)
        gap = float(m.sum()) / max(mw, 1.0)              # the opening's mean height, px
        sigma = max(0.5, min(feather * mw, 0.15 * gap))  # a small mouth is not feathered away
        inner = cv2.erode(m, np.ones((3, 3), np.uint8)) if gap >= 8 else m
        a = cv2.GaussianBlur(inner.astype(np.float32), (0, 0), sigma)
        a = (np.minimum(a * 2.0, 1.0) * m * weight[f])[..., None]             # inside the lips only
        out[f, y0:y1, x0:x1] = np.clip(a * patch + (1 - a) * region + 0.5, 0, 255).astype(np.uint8)
    return out


def inset_lips(lmk68: np.ndarray, inset: float = INSET) -> np.ndarray:
    """(68, 2) landmarks -> a copy with the inner lips' upper (61-63) and lower (65-67) points
    moved ``inset`` of the way to their column's midpoint. MediaPipe's inner-lip contour (the
    driver's ``ibug68``) lies on the lips' red, a fifth of the gap above and below where teeth
    and cavity begin: carried as they are, the driver's lip edges became a dark band over the
    result's teeth (and dlib then read the result's mouth as narrower)."""
    out = np.array(lmk68, np.float64)
    up, lo = [61, 62, 63], [67, 66, 65]
    mid = 0.5 * (out[up] + out[lo])
    out[up] += inset * (mid - out[up])
    out[lo] += inset * (mid - out[lo])
    return out


def mouth_masks(landmarks68: np.ndarray, boxes: np.ndarray, size: int, grow: float = 0.04,
                feather: float = 0.04) -> np.ndarray:
    """landmarks68 (F, 68, 2) frame pixels, boxes (F, 3) -> (F, size, size) float32 in [0, 1]: the
    inner-lip polygon (points 60-67, the open mouth; empty when under 1 crop pixel) in each crop, grown by
    ``grow`` x size pixels and softened by a Gaussian of ``feather`` x size (a ``paste_back`` mask)."""
    out = np.zeros((len(boxes), size, size), np.float32)
    k = max(1, int(round(grow * size)))
    sigma = max(0.5, feather * size)
    for i, (lm, b) in enumerate(zip(np.asarray(landmarks68, np.float64), boxes)):
        A = crop_affine(b, size)
        lip = lm[60:68] @ A[:, :2].T + A[:, 2]                                   # (8, 2) crop px
        if cv2.contourArea(lip.astype(np.float32)) < 1.0:                        # closed
            continue
        m = np.zeros((size, size), np.uint8)
        cv2.fillPoly(m, [np.round(lip * 4).astype(np.int32)], 1, shift=2)        # sub-pixel
        if m.any():
            grown = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1)))
            out[i] = np.maximum(cv2.GaussianBlur(grown.astype(np.float32), (0, 0), sigma), m)
    return out


def learned_mouth(parts, inp, cfg, frames: np.ndarray) -> np.ndarray:
    """Warped frames (F, H, W, 3) uint8 (the mouth composite) -> the same with the generated open
    mouth pasted in (``cfg.synth_crop`` crops, else ``cfg.crop``; their size is the generator's; a
    ``residual_base`` "warp" generator refines those frames' crops)."""
    from expportrait.generator.longvideo import generate_crops
    model = parts.synth() or parts.generator()
    c = replace(cfg.synth_crop or cfg.crop, size=model.config.resolution)
    cond = crop_conditions(inp.head, inp.image, inp.ref_fit, inp.driven, c, eyes=cfg.eyes)
    warped = crop(frames, cond["boxes"], c.size)                                  # (F, S, S, 3)
    gen = generate_crops(model, parts.vae(), cond["ref_crop"], cond["ref_normal"], cond["pose_normals"],
                         warped=warped if model.config.residual_base == "warp" else None,
                         steps=inp.steps or cfg.steps, seed=inp.seed, window=cfg.window,
                         cfg_scale=cfg.cfg_scale, guide=cfg.guide, sampler=cfg.sampler,
                         device=parts.device)                                     # (F, S, S, 3)
    mask = mouth_masks(inp.driven.landmarks68_2d.numpy(), cond["boxes"], c.size)  # (F, S, S)
    a = mask[..., None]
    crops = np.clip(a * gen + (1 - a) * warped + 0.5, 0, 255).astype(np.uint8)
    return paste_back(frames, crops, cond["boxes"], mask=mask)
