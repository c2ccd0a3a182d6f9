"""Assemble every metric that the given inputs allow into one JSON-ready dict.

Each metric is an entry ``{"computed": true, "value": ..., ...}`` or
``{"computed": false, "reason": "..."}``. Values are plain JSON: ``inf`` becomes the string
``"inf"`` (PSNR of identical frames) and NaN becomes ``null``.

The tracker is injected (this layer imports no tracker): a callable
``tracker(frames (F, H, W, 3) uint8, fps) -> {"expression": (F, n), "pose": (F, 3) yaw/pitch/roll
radians, "landmarks68_2d": (F, 68, 2) pixels, "valid": (F,) bool}``.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from expportrait.detection.dlib_face import DlibFace
from expportrait.errors import UserError
from expportrait.metrics import image, motion

Tracker = Callable[[np.ndarray, float], dict]


def not_computed(reason: str) -> dict:
    return {"computed": False, "reason": reason}


def evaluate(pred_frames: np.ndarray, *, driving_frames: np.ndarray | None = None,
             source_image: np.ndarray | None = None, gt_frames: np.ndarray | None = None,
             tracker: Tracker | None = None, lpips=None, fvd=None, arcface=None, fps: float = 25.0,
             face: DlibFace | None = None, lpips_reason: str | None = None, fvd_reason: str | None = None,
             tracker_reason: str | None = None, progress: bool = False) -> dict:
    """pred_frames (F, H, W, 3) uint8 generated video; driving_frames (F_d, H_d, W_d, 3) driver;
    source_image (H_s, W_s, 3) source portrait; gt_frames (F, H, W, 3) ground truth (same shape as
    pred). ``lpips``: ``metrics.lpips.LPIPS``; ``fvd``: ``metrics.fvd.FVD``; ``arcface``:
    ``metrics.identity.ArcFaceONNX``; the ``*_reason`` strings say why a component is absent.
    -> JSON-ready dict (see module doc)."""
    pred = np.asarray(pred_frames)
    if pred.ndim != 4 or pred.shape[-1] != 3 or len(pred) == 0:
        raise UserError(f"prediction must be frames (F, H, W, 3), got shape {pred.shape}")
    face = face or DlibFace()
    out: dict = {"frames": int(len(pred)), "size_hw": [int(pred.shape[1]), int(pred.shape[2])], "fps": fps}

    # 1. full-reference metrics (self-reenactment)
    if gt_frames is None:
        for name in ("psnr", "ssim", "l1", "lpips"):
            out[name] = not_computed("no ground truth given (--gt); only for self-reenactment")
    else:
        gt = np.asarray(gt_frames)
        if gt.shape != pred.shape:
            raise UserError(f"ground truth shape {gt.shape} differs from prediction {pred.shape}")
        for name, fn in (("psnr", image.psnr), ("ssim", image.ssim), ("l1", image.l1)):
            out[name] = _per_frame_entry(fn(pred, gt))
        out["ssim"]["settings"] = {k: v for k, v in image.SSIM_SETTINGS.items()}
        if lpips is None:
            out["lpips"] = not_computed(lpips_reason or "no LPIPS weights supplied "
                                        "(--lpips-backbone and --lpips-heads)")
        else:
            out["lpips"] = _per_frame_entry(image.FrameMetric.of(lpips.video(pred, gt)))
            out["lpips"]["net"] = lpips.net

    # 2. identity (dlib descriptor; ArcFace when supplied)
    identity = None
    if source_image is None:
        out["csim"] = not_computed("no source image given (--source)")
    else:
        from expportrait.metrics.identity import identity_similarity

        try:
            identity = identity_similarity(pred, source_image, face=face, arcface=arcface, progress=progress)
        except UserError as exc:
            out["csim"] = not_computed(str(exc))
        else:
            summary = identity.summary()
            out["csim"] = {"computed": True, "value": summary.pop("csim"), **summary}
            if arcface is None:
                out["csim"]["arcface"] = "not computed: no ArcFace ONNX model supplied (--arcface)"

    # 3. motion: AED / APD by re-tracking prediction and driver; landmark jitter
    out.update(_motion(pred, driving_frames, tracker, fps, tracker_reason, identity, face, progress))

    # 4. FVD against the ground truth (or the driver when there is none)
    ref, ref_name = (gt_frames, "gt") if gt_frames is not None else (driving_frames, "driving")
    if fvd is None:
        out["fvd"] = not_computed(fvd_reason or "no I3D TorchScript supplied (--i3d)")
    elif ref is None:
        out["fvd"] = not_computed("no reference video (--gt or --driving)")
    else:
        try:
            res = fvd.distance(pred, np.asarray(ref))
        except UserError as exc:
            out["fvd"] = not_computed(str(exc))
        else:
            out["fvd"] = {"computed": True, "value": res.pop("fvd"), "reference": ref_name, **res}
    return json_safe(out)


def _motion(pred, driving, tracker, fps, tracker_reason, identity, face, progress) -> dict:
    out: dict = {}
    tracked = {}
    if tracker is None:
        reason = tracker_reason or "no tracker (motion metrics disabled)"
    elif driving is None:
        reason = "no driving video given (--driving)"
    else:
        reason = None
        try:
            tracked["pred"] = _check_track(tracker(pred, fps), len(pred), "prediction")
            tracked["driving"] = _check_track(tracker(np.asarray(driving), fps), len(driving), "driving video")
        except UserError as exc:
            reason = f"tracking failed: {exc}"
            tracked = {}
    if tracked:
        p, d = tracked["pred"], tracked["driving"]
        n = min(len(pred), len(driving))  # frame-aligned comparison over the common length
        valid = p["valid"][:n] & d["valid"][:n]
        common = {"frames_compared": int(n), "valid_frames": int(valid.sum()), "reference": "driving"}
        out["aed"] = {"computed": True, "value": motion.aed(p["expression"][:n], d["expression"][:n], valid),
                      "unit": "tracker expression coefficients", **common}
        out["apd"] = {"computed": True, "value": motion.apd(p["pose"][:n], d["pose"][:n], valid),
                      "unit": "radians (yaw, pitch, roll)", **common}
        if len(pred) != len(driving):
            out["aed"]["note"] = out["apd"]["note"] = (f"prediction has {len(pred)} frames, driver "
                                                       f"{len(driving)}; compared the first {n}")
        out["landmark_jitter"] = {
            "computed": True, "value": _jitter(p["landmarks68_2d"], p["valid"]),
            "driving": _jitter(d["landmarks68_2d"], d["valid"]),
            "unit": "inter-ocular distances per frame^2", "landmarks": "project tracker"}
    else:
        out["aed"] = not_computed(reason)
        out["apd"] = not_computed(reason)
        lmk = identity.landmarks if identity is not None else face.landmarks68_video(pred)
        entry = {"computed": True, "value": motion.landmark_jitter(lmk, norm="interocular"),
                 "unit": "inter-ocular distances per frame^2",
                 "landmarks": "dlib per-frame detection (no tracker)"}
        if driving is not None:
            entry["driving"] = motion.landmark_jitter(face.landmarks68_video(np.asarray(driving)), norm="interocular")
        out["landmark_jitter"] = entry
    if not np.isfinite(out["landmark_jitter"]["value"]):
        out["landmark_jitter"] = not_computed("fewer than 3 consecutive frames with a face in the prediction")
    return out


def _jitter(lmk: np.ndarray, valid: np.ndarray) -> float:
    lmk = np.where(valid[:, None, None], lmk, np.nan)  # (F, 68, 2), NaN on invalid frames
    return motion.landmark_jitter(lmk, norm="interocular")


def _check_track(res: dict, n: int, what: str) -> dict:
    shapes = {"expression": None, "pose": 3, "landmarks68_2d": None, "valid": None}
    missing = [k for k in shapes if k not in res]
    if missing:
        raise ValueError(f"tracker result for the {what} lacks {missing}")
    out = {k: np.asarray(res[k]) for k in shapes}
    out["valid"] = out["valid"].astype(bool).reshape(-1)
    for k, v in out.items():
        if len(v) != n:
            raise ValueError(f"tracker returned {len(v)} rows of '{k}' for {n} frames of the {what}")
    if out["pose"].shape[1:] != (3,) or out["landmarks68_2d"].shape[1:] != (68, 2):
        raise ValueError(f"tracker result shapes: pose {out['pose'].shape}, landmarks {out['landmarks68_2d'].shape}")
    return out


def _per_frame_entry(m: image.FrameMetric) -> dict:
    return {"computed": True, "value": m.mean, "per_frame": [float(v) for v in m.per_frame]}


def json_safe(obj):
    """Recursively: numpy scalars/arrays -> Python; inf -> "inf", -inf -> "-inf", NaN -> None."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        if math.isnan(v):
            return None
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return v
    return obj
