"""The crop-space conditions shared by the generator engines (the DiT, warp_first's learned
mouth): temporally stable crop boxes from the driven head's landmarks (``data.crop``), the
reference crop and its normal map N^R, and the driven normal maps N^D rendered directly in crop
space (crop cameras); plus pasting crops back into the reference frame with its head painted out.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from expportrait.data.crop import CropConfig, crop, crop_affine, crop_cameras, face_boxes, paste_back
from expportrait.render.maps import normal_map_coverage
from expportrait.tracking.io import HeadFit


def render_crop_normals(head, fit: HeadFit, boxes: np.ndarray, size: int, idx=None,
                        eyes: bool = True) -> np.ndarray:
    """Normal maps of ``fit`` frames ``idx`` (default all) seen through the crops ``boxes``
    (n, 3) (cx, cy, side) -> (n, size, size, 3) uint8 (``render_normals`` encoding, background 0)."""
    from expportrait.tracking.visualize import render_normals
    if idx is not None:
        fit = fit.frames(torch.as_tensor(np.asarray(idx)))
    cam = torch.as_tensor(crop_cameras(fit.camera.numpy(), boxes, size), dtype=torch.float32)
    return render_normals(head, replace(fit, camera=cam), eyes=eyes, size=(size, size))


def crop_conditions(head, image: np.ndarray, ref_fit: HeadFit, driven: HeadFit, c: CropConfig,
                    eyes: bool = True, normals: bool = True) -> dict:
    """The generator's inputs on crops ``c``: boxes (F, 3), ref_box (1, 3), ref_crop (S, S, 3)
    uint8 of ``image`` (H, W, 3); with ``normals``, ref_normal (S, S, 3) and pose_normals
    (F, S, S, 3) uint8."""
    boxes = face_boxes(driven.landmarks68_2d.numpy(), c)                          # (F, 3)
    ref_box = face_boxes(ref_fit.landmarks68_2d.numpy(), c)                       # (1, 3)
    out = {"boxes": boxes, "ref_box": ref_box, "ref_crop": crop(image[None], ref_box, c.size)[0]}
    if normals:
        out["ref_normal"] = render_crop_normals(head, ref_fit, ref_box, c.size, eyes=eyes)[0]
        out["pose_normals"] = render_crop_normals(head, driven, boxes, c.size, eyes=eyes)
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
    import cv2

    from expportrait.engines.segment import background_plate
    head = np.asarray(head, bool)
    S, (H, W) = head.shape[0], frame.shape[:2]
    A = crop_affine(np.asarray(box, np.float64), S)
    full = cv2.warpAffine(head.astype(np.uint8) * 255, A, (W, H), flags=cv2.INTER_LINEAR |
                          cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0)  # (H, W)
    k = max(1, int(round(grow * float(box[2]))))            # in source pixels: the crop may end
    full = cv2.dilate(full, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1)))
    full = cv2.dilate(full, np.ones((k + 1, 1), np.uint8), anchor=(0, 0))   # hair: k more above
    return background_plate(frame, (full > 127).astype(np.float32), radius, max_side=None)



def paste_crops(image: np.ndarray, cond: dict, crops: np.ndarray, c: CropConfig,
                clear: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """crops (F, S, S, 3) uint8 on ``cond``'s boxes -> (frames (F, H, W, 3) uint8, the background
    (1, H, W, 3) they were pasted into: ``image`` with its own head painted out when ``clear``)."""
    background = image[None]
    if clear:
        background = clear_head(image, cond["ref_box"][0], normal_map_coverage(cond["ref_normal"]))[None]
    return paste_back(background, crops, cond["boxes"], c.feather), background
