"""Face crops for the generator: temporally stable square boxes, crop, and soft paste-back.

A box is ``(cx, cy, side)`` in input-frame pixels (OpenCV pixel centres at integer coordinates,
the convention of ``render.camera``). The crop of size S maps the box onto the S x S image:
``x_c = s (x + 0.5 - x0) - 0.5`` with ``s = S / side`` and ``x0 = cx - side / 2``.

Boxes come from iBUG-68 landmarks (``HeadFit.landmarks68_2d``): the centre sits between the eye
centre and the mouth centre (so the face sits at the same place in every crop; ``centre="mouth"``:
on the mouth centre, for a close crop of the mouth), the side is ``scale`` times the face width
(jaw point 0 to 16, rotation invariant). Centre and side are
Gaussian-filtered in time (offline, zero lag); the side gets a wider filter than the centre because
scale "breathing" is the most visible jitter. ``static=True`` uses one box for the whole clip.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from expportrait.errors import UserError

EYES = slice(36, 48)
MOUTH = slice(48, 68)


@dataclass(frozen=True)
class CropConfig:
    size: int = 512            # crop side S in pixels
    scale: float = 2.2         # box side / face width (jaw 0 -> 16)
    centre_sigma: float = 2.0  # Gaussian sigma (frames) of the box centre
    side_sigma: float = 6.0    # Gaussian sigma (frames) of the box side
    static: bool = False       # one box (the median) for all frames
    feather: float = 0.15      # paste-back mask: soft edge width as a fraction of the crop side
    centre: str = "face"       # "face": between eyes and mouth; "mouth": the mouth's centre


def gaussian_filter_time(x: np.ndarray, sigma: float) -> np.ndarray:
    """x (F, C) -> (F, C) Gaussian-filtered along time (reflected ends); sigma in frames."""
    x = np.asarray(x, np.float64)
    if sigma <= 0 or len(x) < 2:
        return x.copy()
    from scipy.ndimage import gaussian_filter1d
    return gaussian_filter1d(x, sigma, axis=0, mode="nearest")


def raw_boxes(landmarks68: np.ndarray, scale: float = 2.2, centre: str = "face") -> np.ndarray:
    """landmarks68 (F, 68, 2) pixels -> (F, 3) per-frame boxes (cx, cy, side), unsmoothed;
    ``centre`` "face" (between eyes and mouth) or "mouth"."""
    lmk = np.asarray(landmarks68, np.float64)
    if lmk.ndim != 3 or lmk.shape[1:] != (68, 2):
        raise UserError(f"crop boxes need (F, 68, 2) landmarks, got {lmk.shape}")
    if centre not in ("face", "mouth"):
        raise UserError(f"crop centre must be 'face' or 'mouth', got {centre!r}")
    mouth = lmk[:, MOUTH].mean(1)                                       # (F, 2)
    centre = mouth if centre == "mouth" else (lmk[:, EYES].mean(1) + mouth) / 2   # (F, 2)
    width = np.linalg.norm(lmk[:, 16] - lmk[:, 0], axis=-1)             # (F,)
    return np.concatenate([centre, (width * scale)[:, None]], 1)


def face_boxes(landmarks68: np.ndarray, cfg: CropConfig = CropConfig()) -> np.ndarray:
    """landmarks68 (F, 68, 2) pixels -> (F, 3) temporally stable boxes (cx, cy, side) pixels."""
    box = raw_boxes(landmarks68, cfg.scale, cfg.centre)
    if cfg.static:
        return np.repeat(np.median(box, 0, keepdims=True), len(box), 0)
    centre = gaussian_filter_time(box[:, :2], cfg.centre_sigma)
    side = gaussian_filter_time(box[:, 2:], cfg.side_sigma)
    return np.concatenate([centre, side], 1)


def crop_affine(box: np.ndarray, size: int) -> np.ndarray:
    """(3,) box -> (2, 3) affine from input-frame pixels to crop pixels."""
    s = size / float(box[2])
    x0, y0 = box[0] - box[2] / 2, box[1] - box[2] / 2
    return np.array([[s, 0, s * (0.5 - x0) - 0.5], [0, s, s * (0.5 - y0) - 0.5]], np.float64)


def crop_cameras(camera: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """camera (F, 4) fx, fy, cx, cy of the full frames -> (F, 4) float32 cameras of the crops."""
    cam = np.asarray(camera, np.float64)
    A = np.stack([crop_affine(b, size) for b in boxes])                 # (F, 2, 3)
    s = A[:, 0, 0]
    return np.stack([cam[:, 0] * s, cam[:, 1] * s, cam[:, 2] * s + A[:, 0, 2],
                     cam[:, 3] * s + A[:, 1, 2]], -1).astype(np.float32)


def rotation_affine(size: int, degrees: float) -> np.ndarray:
    """(2, 3) affine rotating an S x S crop about its centre by ``degrees`` (counter-clockwise on
    screen, OpenCV's convention)."""
    c = (size - 1) / 2.0
    return cv2.getRotationMatrix2D((c, c), float(degrees), 1.0)


def crop(frames: np.ndarray, boxes: np.ndarray, size: int, degrees: float = 0.0) -> np.ndarray:
    """frames (F, H, W, 3) uint8, boxes (F, 3) -> (F, size, size, 3) uint8 (edges replicated).
    ``degrees``: the crop's content rotated about its centre (augmentation; corners come from the
    frame, not from padding)."""
    frames = np.asarray(frames)
    if len(frames) != len(boxes):
        raise UserError(f"{len(frames)} frames but {len(boxes)} crop boxes")
    out = np.empty((len(frames), size, size, 3), np.uint8)
    R = np.vstack([rotation_affine(size, degrees), [0, 0, 1]])
    for i, (f, b) in enumerate(zip(frames, boxes)):
        flags = cv2.INTER_AREA if b[2] > 2 * size else cv2.INTER_CUBIC
        A = crop_affine(b, size) if degrees == 0 else (R @ np.vstack([crop_affine(b, size), [0, 0, 1]]))[:2]
        out[i] = cv2.warpAffine(np.ascontiguousarray(f), A, (size, size),
                                flags=flags, borderMode=cv2.BORDER_REPLICATE)
    return out


def rotate_normals(normals: np.ndarray, degrees: float) -> np.ndarray:
    """Normal maps (F, S, S, 3) uint8 (``render.maps`` encoding: x right, y up, background 0)
    rotated like ``crop(..., degrees)``: the picture turns about the centre and so does every
    normal's (x, y); nearest-neighbour, so the background stays exactly 0."""
    normals = np.asarray(normals)
    if degrees == 0:
        return normals.copy()
    S = normals.shape[1]
    A = rotation_affine(S, degrees)
    t = np.deg2rad(degrees)
    cos, sin = np.cos(t), np.sin(t)
    out = np.empty_like(normals)
    for i, n in enumerate(normals):
        w = cv2.warpAffine(np.ascontiguousarray(n), A, (S, S), flags=cv2.INTER_NEAREST,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        fg = w.any(-1)
        v = w.astype(np.float64) / 255.0 * 2 - 1                        # (S, S, 3) unit-ish normals
        x, y = v[..., 0] * cos - v[..., 1] * sin, v[..., 0] * sin + v[..., 1] * cos
        rot = np.stack([x, y, v[..., 2]], -1)
        enc = np.clip(np.round((rot * 0.5 + 0.5) * 255.0), 0, 255).astype(np.uint8)
        out[i] = np.where(fg[..., None], enc, 0)
    return out


def blend_mask(size: int, feather: float = 0.15) -> np.ndarray:
    """(size, size) float32 in [0, 1]: 1 inside an ellipse inscribed in the crop, falling to 0 over
    ``feather * size`` pixels towards the crop border (smoothstep)."""
    c = (np.arange(size) + 0.5) / size * 2 - 1                          # (S,) in (-1, 1)
    r = np.sqrt(c[None, :] ** 2 + c[:, None] ** 2)                      # (S, S) 1 at the edge midpoints
    width = max(2 * feather, 1e-6)
    t = np.clip((1.0 - r) / width, 0.0, 1.0)
    return (t * t * (3 - 2 * t)).astype(np.float32)


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


def paste_back(full_frames: np.ndarray, crops: np.ndarray, boxes: np.ndarray,
               feather: float = 0.15, mask: np.ndarray | None = None) -> np.ndarray:
    """Blend generated crops into the full frames at their original resolution.

    full_frames (F, H, W, 3) uint8 (or (1, H, W, 3): one background for all), crops (F, S, S, 3)
    uint8, boxes (F, 3); ``mask`` (S, S) or (F, S, S) in [0, 1] (default ``blend_mask``)
    -> (F, H, W, 3) uint8.
    """
    crops = np.asarray(crops)
    full = np.asarray(full_frames)
    F, S = len(crops), crops.shape[1]
    if len(boxes) != F:
        raise UserError(f"{F} crops but {len(boxes)} boxes")
    if len(full) not in (1, F):
        raise UserError(f"{len(full)} background frames for {F} crops")
    H, W = full.shape[1:3]
    m = blend_mask(S, feather) if mask is None else np.asarray(mask, np.float32)
    out = np.empty((F, H, W, 3), np.uint8)
    for i in range(F):
        A = crop_affine(boxes[i], S)
        flags = cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP
        face = cv2.warpAffine(np.ascontiguousarray(crops[i]), A, (W, H), flags=flags,
                              borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        mi = m if m.ndim == 2 else m[i]
        alpha = cv2.warpAffine(mi, A, (W, H), flags=flags, borderMode=cv2.BORDER_CONSTANT,
                               borderValue=0.0).clip(0, 1)[..., None]     # (H, W, 1)
        bg = full[i if len(full) == F else 0].astype(np.float32)
        out[i] = np.clip(alpha * face + (1 - alpha) * bg + 0.5, 0, 255).astype(np.uint8)
    return out


def clear_head(frame: np.ndarray, box: np.ndarray, head: np.ndarray, grow: float = 0.18,
               radius: int = 5) -> np.ndarray:
    """The frame the crops are pasted into, with its own head painted out.

    frame (H, W, 3) uint8; box (3,) the reference crop's box; head (S, S) bool, the reference head
    in that crop's pixels (its rendered normal map) -> (H, W, 3) uint8: the head grown by ``grow``
    x the box side all round and as much again upwards (hair, ears; in the frame, past the crop)
    inpainted from its surroundings (OpenCV Telea, ``radius``). Where the driven head moves away
    from the reference's place, the pasted crop no longer covers the original face, which would
    otherwise stay beside the generated one."""
    head = np.asarray(head, bool)
    S, (H, W) = head.shape[0], frame.shape[:2]
    A = crop_affine(np.asarray(box, np.float64), S)
    full = cv2.warpAffine(head.astype(np.uint8) * 255, A, (W, H), flags=cv2.INTER_LINEAR |
                          cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0)  # (H, W)
    k = max(1, int(round(grow * float(box[2]))))            # in source pixels: the crop may end
    full = cv2.dilate(full, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1)))
    full = cv2.dilate(full, np.ones((k + 1, 1), np.uint8), anchor=(0, 0))   # hair: k more above
    return cv2.inpaint(np.ascontiguousarray(frame), (full > 127).astype(np.uint8), radius,
                       cv2.INPAINT_TELEA)


def box_jitter(boxes: np.ndarray) -> float:
    """Mean |second difference| of centre and side, relative to the mean side (unitless)."""
    b = np.asarray(boxes, np.float64)
    if len(b) < 3:
        return 0.0
    return float(np.abs(np.diff(b, 2, axis=0)).mean() / b[:, 2].mean())
