"""``expportrait evaluate``: metrics of a generated video as one JSON file.

Input rules: ``--gt`` must match ``--pred`` exactly in frame count and size (no silent resizing:
a mismatch is an error, exit 2), because PSNR/SSIM/L1/LPIPS compare pixels one to one. ``--driving``
may differ in size; if its frame count differs, AED/APD compare the common first frames and say so.
``--source`` may be an image or a video (its first frame is used).
"""
from __future__ import annotations

import json
from pathlib import Path

from expportrait.errors import UserError, atomic_path


def add_arguments(parser) -> None:
    parser.add_argument("--pred", required=True, help="generated video")
    parser.add_argument("--driving", help="driving video (AED/APD reference)")
    parser.add_argument("--source", help="source portrait image (or video: first frame) for CSIM")
    parser.add_argument("--gt", help="ground-truth video, same frames and size as --pred (self-reenactment)")
    parser.add_argument("--out", required=True, help="output JSON path (written atomically)")
    parser.add_argument("--lpips-backbone", help="torchvision checkpoint: alexnet-owt-7be5be79.pth or vgg16-397923af.pth")
    parser.add_argument("--lpips-heads", help="lpips v0.1 linear heads: lpips/weights/v0.1/{alex,vgg}.pth")
    parser.add_argument("--lpips-net", choices=("alex", "vgg"), default="alex", help="LPIPS trunk (default alex)")
    parser.add_argument("--i3d", help="I3D TorchScript (i3d_torchscript.pt) for FVD")
    parser.add_argument("--arcface", help="ArcFace ONNX model for CSIM (needs onnxruntime)")
    parser.add_argument("--no-motion", action="store_true", help="skip AED/APD (no tracking)")


def run(args) -> int:
    from expportrait.data.video import read_source, read_video
    from expportrait.metrics.report import evaluate

    lpips, lpips_reason = _lpips(args)
    fvd = arcface = None
    if args.i3d:
        from expportrait.metrics.fvd import FVD
        fvd = FVD.from_file(args.i3d)
    if args.arcface:
        from expportrait.metrics.identity import ArcFaceONNX
        arcface = ArcFaceONNX(args.arcface)

    pred = read_video(args.pred)
    gt = read_video(args.gt).frames if args.gt else None
    if gt is not None and gt.shape != pred.frames.shape:
        raise UserError(f"--gt has {len(gt)} frames of {gt.shape[2]}x{gt.shape[1]}, --pred has "
                        f"{len(pred.frames)} of {pred.frames.shape[2]}x{pred.frames.shape[1]}; they must match")
    driving = read_video(args.driving).frames if args.driving else None
    source = read_source(args.source, max_frames=1).frames[0] if args.source else None

    tracker, tracker_reason = None, None  # without --driving the report says so itself
    if args.no_motion:
        tracker_reason = "disabled with --no-motion"
    elif driving is not None:
        try:
            from expportrait.tracking.track import project_tracker
        except ImportError as exc:
            raise UserError(f"tracker not available: {exc} (use --no-motion to skip AED/APD)") from None
        tracker = project_tracker()

    report = evaluate(pred.frames, driving_frames=driving, source_image=source, gt_frames=gt,
                      tracker=tracker, lpips=lpips, fvd=fvd, arcface=arcface, fps=pred.fps,
                      lpips_reason=lpips_reason, tracker_reason=tracker_reason, progress=True)
    report["inputs"] = {k: str(Path(v)) if v else None
                        for k, v in (("pred", args.pred), ("driving", args.driving),
                                     ("source", args.source), ("gt", args.gt))}
    with atomic_path(args.out) as tmp:
        tmp.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    print(_summary(report))
    print(f"wrote {args.out}")
    return 0


def _lpips(args):
    if not args.lpips_backbone and not args.lpips_heads:
        return None, "no LPIPS weights supplied (--lpips-backbone and --lpips-heads)"
    if not (args.lpips_backbone and args.lpips_heads):
        raise UserError("--lpips-backbone and --lpips-heads must be given together")
    from expportrait.metrics.lpips import LPIPS
    return LPIPS.from_files(args.lpips_backbone, args.lpips_heads, net=args.lpips_net), None


def _summary(report: dict) -> str:
    parts = []
    for key in ("psnr", "ssim", "l1", "lpips", "csim", "aed", "apd", "landmark_jitter", "fvd"):
        entry = report.get(key, {})
        if entry.get("computed"):
            v = entry.get("value")
            parts.append(f"{key}={v:.4f}" if isinstance(v, float) else f"{key}={v}")
        else:
            parts.append(f"{key}=n/a")
    return " ".join(parts)
