"""Per-frame face crops for the photometric stage: temporally smoothed square boxes, the matching
crop cameras and face-region masks from the MediaPipe landmarks (numpy / OpenCV). The pixel
mapping of a box is ``data.crop.crop_affine``."""
from __future__ import annotations

import cv2
import numpy as np
import torch

from expportrait.data.crop import crop_affine
from expportrait.data.crop import crop_cameras as data_crop_cameras

# MediaPipe FaceMesh polygons (ordered): face oval, eyes, inner lips
FACE_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400,
             377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109]
RIGHT_EYE = [33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246]
LEFT_EYE = [263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466]
INNER_LIPS = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191]


def crop_boxes(points: np.ndarray, margin: float = 1.5, smooth: int = 5) -> np.ndarray:
    """points (F, K, 2) pixels -> (F, 3) square boxes (centre x, centre y, side), smoothed in time."""
    lo, hi = points.min(1), points.max(1)
    centre = (lo + hi) / 2
    side = (hi - lo).max(1) * margin
    box = np.concatenate([centre, side[:, None]], 1)
    if smooth > 1 and len(box) > 1:
        k = np.ones(smooth) / smooth
        pad = np.pad(box, ((smooth // 2, smooth - 1 - smooth // 2), (0, 0)), mode="edge")
        box = np.stack([np.convolve(pad[:, j], k, mode="valid") for j in range(3)], 1)
    return box


def crop_frames(frames: np.ndarray, boxes: np.ndarray, size: int) -> torch.Tensor:
    """frames (F, H, W, 3) uint8 -> (F, 3, size, size) float in [0, 1]."""
    out = np.stack([cv2.warpAffine(f, crop_affine(b, size), (size, size), flags=cv2.INTER_AREA
                                   if b[2] > size else cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                    for f, b in zip(frames, boxes)])
    return torch.from_numpy(out).permute(0, 3, 1, 2).float() / 255.0


def crop_cameras(camera: torch.Tensor, boxes: np.ndarray, size: int) -> torch.Tensor:
    """camera (F, 4) of the full frames -> (F, 4) cameras of the crops (``data.crop``'s mapping)."""
    return torch.as_tensor(data_crop_cameras(camera.cpu().numpy(), boxes, size), dtype=camera.dtype)


def face_masks(points: np.ndarray, boxes: np.ndarray, size: int) -> torch.Tensor:
    """points (F, 478, 2) full-frame pixels -> (F, 1, size, size) {0,1}: face oval minus eyes and
    the mouth opening."""
    masks = np.zeros((len(points), size, size), np.uint8)
    for i, (p, b) in enumerate(zip(points, boxes)):
        A = crop_affine(b, size)
        q = p @ A[:, :2].T + A[:, 2]
        q = np.round(q * 4).astype(np.int32)  # 2 bits of sub-pixel precision
        cv2.fillPoly(masks[i], [q[FACE_OVAL]], 1, lineType=cv2.LINE_8, shift=2)
        for poly in (RIGHT_EYE, LEFT_EYE, INNER_LIPS):
            cv2.fillPoly(masks[i], [q[poly]], 0, lineType=cv2.LINE_8, shift=2)
    return torch.from_numpy(masks).float()[:, None]
