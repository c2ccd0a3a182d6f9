"""warp_first's mouth: what the warp cannot show inside the driven open mouth.

``learned_mouth``: the generator's crops (warp_first's own ``synth/`` generator if the checkpoint
has one, else its main one), on the shared crop conditions (``engines.conditions``), kept only
inside the driven inner lips (``mouth_masks``) and pasted over the warped frames. Off by default
(``PipelineConfig.synthesize``): on the unseen self clip it loses 0.3-0.9 dB against the warp's
own mouth (benchmarks/unseen.py).
"""
from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from expportrait.data.crop import crop, crop_affine, paste_back
from expportrait.engines.conditions import crop_conditions
from expportrait.errors import UserError

REGIONS = ("mouth",)


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
    """Warped frames (F, H, W, 3) uint8 -> the same with the generated open mouth pasted in
    (``cfg.synthesize`` regions, ``cfg.synth_crop`` crops, else ``cfg.crop``; their size is the
    generator's)."""
    from expportrait.generator.longvideo import generate_crops
    unknown = set(cfg.synthesize) - set(REGIONS)
    if unknown:
        raise UserError(f"synthesize takes the regions {REGIONS}, got {sorted(unknown)}")
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
