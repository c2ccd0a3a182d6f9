"""Person segmentation of a portrait (MediaPipe's selfie-segmentation model, shipped in the
0.10.21 wheel): which pixels are the person (face, hair, ears, neck, clothes) and which are the
background that stays put when the head moves, and that background with the head painted out
(``background_plate``, the engines' one inpainter: exemplar filling, ``fill.py``, or Telea)."""
from __future__ import annotations

import numpy as np


def person_mask(image: np.ndarray) -> np.ndarray:
    """image (H, W, 3) uint8 RGB -> (H, W) float32 in [0, 1], 1 = person (general model, 256 px)."""
    import mediapipe as mp
    with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as seg:
        mask = seg.process(np.ascontiguousarray(image)).segmentation_mask
    if mask is None:
        return np.zeros(image.shape[:2], np.float32)
    return np.clip(mask.astype(np.float32), 0.0, 1.0)


def plate_mask(person: np.ndarray, box: tuple[int, int, int, int], grow: int = 5) -> np.ndarray:
    """person (H, W) in [0, 1], box (x0, y0, x1, y1) -> (H, W) float32 in [0, 1]: the person's
    pixels inside ``box`` grown by ``grow`` px, edges softened by 1.5 px: what
    ``background_plate`` paints out, and how much of the plate a still background shows."""
    import cv2
    x0, y0, x1, y1 = box
    hole = np.zeros(person.shape, np.uint8)
    hole[y0:y1, x0:x1] = (person[y0:y1, x0:x1] > 0.3).astype(np.uint8)
    if hole.any():
        hole = cv2.dilate(hole, np.ones((3, 3), np.uint8), iterations=grow)
    return np.clip(cv2.GaussianBlur(hole.astype(np.float32), (0, 0), 1.5), 0.0, 1.0)


PLATE_METHODS = ("auto", "patch", "telea")   # background_plate's fills; the first is the default
FLAT = 10.0    # "auto": a ring around the hole with a smaller mean gradient is a plain background


def background_plate(image: np.ndarray, mask: np.ndarray, radius: int = 5,
                     max_side: int | None = 256, method: str = "auto",
                     avoid: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """The one inpainter: image (H, W, 3) uint8, mask (H, W) in [0, 1] (``plate_mask``) -> (H, W,
    3) uint8: the pixels where mask > 0 painted out, the rest of the image untouched. What the
    background shows where a moving head uncovers it.

    ``method`` "auto" (default): "telea" where the known background around the hole is plain
    (``ring_texture`` under ``FLAT``: a wall, a sky, a studio backdrop, where a smooth fill is what
    is there and patches would invent structure: the self clip's wall lost 0.3 dB with them), else
    "patch". "patch": exemplar filling, the hole continued with the background's own
    patches (edges and texture; ``engines.fill.patch_fill``, deterministic for ``seed``); falls
    back to Telea for a hole too small or with too little known background around it. "telea":
    OpenCV's Telea inpainting (``radius``), on the masked box with a margin of known pixels,
    shrunk to at most ``max_side`` px across and resized back (None: at full resolution): smooth,
    a blur of the hole's rim. ``avoid`` (H, W) bool or None, either method: known pixels the fill
    never draws from (the rest of the person: ``person > 0.5``); they stay unchanged in the
    result. benchmarks/plate_fill.py measures the methods."""
    if method not in PLATE_METHODS:
        raise ValueError(f"method must be one of {PLATE_METHODS}, got {method!r}")
    hole = (mask > 0).astype(np.uint8)
    if not hole.any():
        return image.copy()
    if method == "auto":
        method = "telea" if ring_texture(image, hole, avoid) < FLAT else "patch"
    if method == "patch":
        from expportrait.engines.fill import patch_fill
        out = patch_fill(image, hole > 0, avoid, seed=seed)
        if out is not None:
            return out
    return _telea_plate(image, hole, radius, max_side, avoid)


def ring_texture(image: np.ndarray, hole: np.ndarray, avoid: np.ndarray | None = None,
                 width: int = 16) -> float:
    """How much structure the background around a hole has: image (H, W, 3) uint8, hole (H, W)
    (> 0 inside), avoid (H, W) bool or None -> the mean gradient magnitude (Sobel of the grey image
    blurred by 1 px) over the known pixels within ``width`` px of the hole. Measured: a plain wall
    2.4, the astronaut's backdrop 8.0, a sky 7.2; railings 22, brick 46, gravel 87."""
    import cv2
    g = cv2.GaussianBlur(cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY).astype(np.float32),
                         (0, 0), 1.0)
    mag = np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))
    h = (np.asarray(hole) > 0).astype(np.uint8)
    ring = (cv2.dilate(h, np.ones((2 * width + 1, 2 * width + 1), np.uint8)) > 0) & (h == 0)
    if avoid is not None:
        ring &= ~np.asarray(avoid, bool)
    return float(mag[ring].mean()) if ring.any() else 0.0


def _telea_plate(image: np.ndarray, hole: np.ndarray, radius: int, max_side: int | None,
                 avoid: np.ndarray | None = None) -> np.ndarray:
    """image (H, W, 3) uint8, hole (H, W) uint8 {0, 1} (not empty), avoid (H, W) bool or None ->
    (H, W, 3) uint8: Telea on the hole's box, ``avoid`` inpainted along with the hole but left
    as it was (``background_plate``'s "telea")."""
    import cv2
    ys, xs = np.nonzero(hole)
    pad = 8 + int(np.ptp(ys) + np.ptp(xs)) // 20   # known pixels around the hole to fill from
    H, W = hole.shape
    y0, y1 = max(0, ys.min() - pad), min(H, ys.max() + 1 + pad)
    x0, x1 = max(0, xs.min() - pad), min(W, xs.max() + 1 + pad)
    h, w = y1 - y0, x1 - x0
    s = 1.0 if max_side is None else min(1.0, max_side / max(h, w, 1))
    sub, sub_hole = image[y0:y1, x0:x1], hole[y0:y1, x0:x1]
    unknown = sub_hole
    if avoid is not None:
        unknown = (sub_hole > 0) | np.asarray(avoid, bool)[y0:y1, x0:x1]
        unknown = (unknown if not unknown.all() else sub_hole > 0).astype(np.uint8)
    if s < 1.0:
        small = cv2.resize(sub, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
        small_hole = cv2.resize(unknown, small.shape[1::-1], interpolation=cv2.INTER_NEAREST)
        filled = cv2.resize(cv2.inpaint(small, small_hole, radius, cv2.INPAINT_TELEA), (w, h),
                            interpolation=cv2.INTER_LINEAR)
    else:
        filled = cv2.inpaint(np.ascontiguousarray(sub), unknown, radius, cv2.INPAINT_TELEA)
    out = image.copy()
    out[y0:y1, x0:x1] = np.where(sub_hole[..., None] > 0, filled, sub)
    return out


CHEEKS = ((1, 2, 3, 31, 41, 40, 39), (15, 14, 13, 35, 46, 47, 42))   # 68-point polygons under the eyes


def cheek_pixels(image: np.ndarray, lmk68: np.ndarray) -> np.ndarray:
    """image (H, W, C) and its 68 landmarks -> (n, C) float64 the pixels of both cheeks (under the
    eyes, beside the nose): the face's own skin and light, away from lips, beard and shadows."""
    import cv2
    m = np.zeros(image.shape[:2], np.uint8)
    lmk = np.asarray(lmk68, np.float64)
    for poly in CHEEKS:
        cv2.fillPoly(m, [np.round(lmk[list(poly)]).astype(np.int32)], 1)
    return image[m > 0].reshape(-1, image.shape[-1]).astype(np.float64)


def clothes_mask(image: np.ndarray, lmk68: np.ndarray, below: float = 0.08, feather: float = 2.0,
                 tolerance: float = 3.0) -> np.ndarray:
    """What stays still below the head: image (H, W, 3) uint8 and its 68 landmarks -> (H, W)
    float32 in [0, 1], 1 on the pixels more than ``below`` face heights under the chin whose
    colour is not the face's skin (collars, clothes, a turtleneck: a Gaussian model of the cheeks'
    Cr, Cb, Mahalanobis distance over ``tolerance``), edges softened by ``feather`` px. The neck's
    skin is not in it: it may stretch with the head, the clothes keep their shape."""
    import cv2
    lmk = np.asarray(lmk68, np.float64)
    H, W = image.shape[:2]
    ycc = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2YCrCb).astype(np.float64)
    skin = cheek_pixels(ycc, lmk)[:, 1:]
    if len(skin) < 20:
        return np.zeros((H, W), np.float32)
    mu, cov = skin.mean(0), np.cov(skin.T) + np.eye(2) * 4.0
    d = ycc[..., 1:] - mu
    maha = np.sqrt(np.einsum("...i,ij,...j->...", d, np.linalg.inv(cov), d))
    brows, chin = lmk[17:27].mean(0), lmk[8]
    up = (brows - chin) / max(np.linalg.norm(brows - chin), 1e-6)
    gy, gx = np.mgrid[0:H, 0:W].astype(np.float64)
    depth = -((gx - chin[0]) * up[0] + (gy - chin[1]) * up[1])               # px below the chin
    m = ((depth > below * np.linalg.norm(brows - chin)) & (maha > tolerance)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(m, (0, 0), feather), 0.0, 1.0) if feather > 0 else m
