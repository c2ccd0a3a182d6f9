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

from expportrait.data.smooth import gaussian_filter_time
from expportrait.errors import UserError

EYES = slice(36, 48)
MOUTH = slice(48, 68)
# MediaPipe FaceMesh polygons (ordered): face oval, eyes, inner lips (``face_masks``)
FACE_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400,
             377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109]
RIGHT_EYE = [33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246]
LEFT_EYE = [263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466]
INNER_LIPS = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191]


@dataclass(frozen=True)
class CropConfig:
    size: int = 512            # crop side S in pixels
    scale: float = 2.2         # box side / face width (jaw 0 -> 16)
    centre_sigma: float = 2.0  # Gaussian sigma (frames) of the box centre
    side_sigma: float = 6.0    # Gaussian sigma (frames) of the box side
    static: bool = False       # one box (the median) for all frames
    feather: float = 0.15      # paste-back mask: soft edge width as a fraction of the crop side
    centre: str = "face"       # "face": between eyes and mouth; "mouth": the mouth's centre


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


def mesh_boxes(points: np.ndarray, margin: float = 1.5, smooth: int = 5) -> np.ndarray:
    """MediaPipe points (F, K, 2) pixels -> (F, 3) square boxes (cx, cy, side) around them, side
    ``margin`` x their larger extent, a ``smooth``-frame moving average in time (the tracker's
    photometric crops; ``face_boxes`` are the generator's)."""
    lo, hi = points.min(1), points.max(1)
    centre = (lo + hi) / 2
    side = (hi - lo).max(1) * margin
    box = np.concatenate([centre, side[:, None]], 1)
    if smooth > 1 and len(box) > 1:
        k = np.ones(smooth) / smooth
        pad = np.pad(box, ((smooth // 2, smooth - 1 - smooth // 2), (0, 0)), mode="edge")
        box = np.stack([np.convolve(pad[:, j], k, mode="valid") for j in range(3)], 1)
    return box


def face_masks(points: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """MediaPipe points (F, 478, 2) full-frame pixels, boxes (F, 3) -> (F, size, size) uint8 {0, 1}
    in each crop: the face oval minus the eyes and the mouth opening."""
    masks = np.zeros((len(points), size, size), np.uint8)
    for i, (p, b) in enumerate(zip(points, boxes)):
        A = crop_affine(b, size)
        q = np.round((p @ A[:, :2].T + A[:, 2]) * 4).astype(np.int32)   # 2 bits of sub-pixel precision
        cv2.fillPoly(masks[i], [q[FACE_OVAL]], 1, lineType=cv2.LINE_8, shift=2)
        for poly in (RIGHT_EYE, LEFT_EYE, INNER_LIPS):
            cv2.fillPoly(masks[i], [q[poly]], 0, lineType=cv2.LINE_8, shift=2)
    return masks


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


def crop(frames: np.ndarray, boxes: np.ndarray, size: int, degrees: float = 0.0,
         linear: bool = False) -> np.ndarray:
    """frames (F, H, W, 3) uint8, boxes (F, 3) -> (F, size, size, 3) uint8 (edges replicated).
    ``degrees``: the crop's content rotated about its centre (augmentation; corners come from the
    frame, not from padding). Bicubic, area-averaged when shrinking more than 2x; ``linear``:
    bilinear, area-averaged when shrinking at all (the tracker's photometric crops)."""
    frames = np.asarray(frames)
    if len(frames) != len(boxes):
        raise UserError(f"{len(frames)} frames but {len(boxes)} crop boxes")
    out = np.empty((len(frames), size, size, 3), np.uint8)
    R = np.vstack([rotation_affine(size, degrees), [0, 0, 1]])
    for i, (f, b) in enumerate(zip(frames, boxes)):
        if linear:
            flags = cv2.INTER_AREA if b[2] > size else cv2.INTER_LINEAR
        else:
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


def box_jitter(boxes: np.ndarray) -> float:
    """Mean |second difference| of centre and side, relative to the mean side (unitless)."""
    b = np.asarray(boxes, np.float64)
    if len(b) < 3:
        return 0.0
    return float(np.abs(np.diff(b, 2, axis=0)).mean() / b[:, 2].mean())
