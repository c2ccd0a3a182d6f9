"""Expression transfer on real people, identity-disjoint: does Delta_f = G(neutral, E(psi))
predict an unseen person's own tracked Delta_f better than no Delta_f and than another person's?

Clips (``configs/identity_split.json``; the script refuses a clip whose person is on the wrong
side): training people franck (registry ``franck``, 4 windows of 64 frames spread over the 200 s)
and carphone_man (``sample:carphone``, frames 0-119); validation person cap_man (``cap12`` frames
400-527: mouth opening and closing, head turns; ``cap13`` frames 360-487: wide mouth opening),
never trained on. Every clip is tracked with the pipeline's tracker (base + personalized, as
``expportrait track --config configs/demo/track.json``); fits are cached in ``--fits``.

For each validation clip, from the person's own neutral mesh (beta, Delta_g) and own psi
sequence, Delta_f is one of

- learned: G and E of ``--model`` (default: the shipped transfer checkpoint),
- zero: no Delta_f,
- direct copy: the tracked Delta_f of the training people at the training frame with the
  nearest psi (Euclidean, pooled over both training people),

scored against the clip's tracked Delta_f (mean Euclidean error over face vertices, mm) and by
the clip's first frame warped by the head carrying it (``engines.warp_field.expression_warp``, no
generator), re-tracked by the project's tracker against the real frames (AED).

``--curves``: E and G retrained here on 0, 1 and 2 real training people, with and without the
32 synthetic identities of the shipped recipe, ``--steps`` each; the error of each against the
number of training identities; and, as a diagnostic only, E and G trained on the validation
person's other clip (cap12 -> cap13 and back): the best any number of other people could give. Cross-identity sanity: franck (frame 1200) driven by cap12 and
cap12 (frame 400) driven by franck 0-63 with ``--model``'s G (the ``full`` engine's transfer),
mouth-opening correlation (dlib landmarks, ``benchmarks/unseen.py``'s measure, in
``benchmarks/measures.py``) between the warped driven head and the driver.
Writes benchmarks/README.md (section "transfer_real") unless ``--no-readme``; last output line one
JSON object (the harness flags: ``benchmarks/common.py``; ``--threads`` defaults to 2 here).
``--max-frames N``: every clip cut to its first N frames (smoke runs; the fits are then cached in
``--fits``/max-N).

    python benchmarks/transfer_real.py [--model CKPT] [--curves] [--steps 1500] [--fits DIR]
        [--max-frames N] [--threads 2] [--no-readme] [--out DIR] [--json FILE]
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from common import finish, parser, setup, timed
from measures import mouth_opening, pearson

ROOT = Path(__file__).parents[1]
TRAIN_CLIPS = [("carphone", "sample:carphone", 0, 120)] + [
    (f"franck{s}", "sample:franck", s, 64) for s in (0, 1200, 2400, 3600)]
VAL_CLIPS = [("cap12", "sample:cap12", 400, 128), ("cap13", "sample:cap13", 360, 128)]
CLIPS = {name: (source, start, n) for name, source, start, n in TRAIN_CLIPS + VAL_CLIPS}


def person(source: str) -> str:
    from expportrait.data.media import person_of
    return person_of(source[len("sample:"):])


def load_clip(source: str, start: int, n: int):
    from expportrait.data.video import read_source
    return read_source(source, max_frames=n, start=start)


def clip_fits(pipe, clips, side: str, folder: Path) -> dict:
    """{clip: HeadFit}, tracked once and cached as folder/CLIP/fit.safetensors."""
    from expportrait.data.media import load_split
    from expportrait.tracking.io import load_fit, save_fit
    split = load_split()
    out = {}
    for name, source, start, n in clips:
        if person(source) not in split[side]:
            raise SystemExit(f"{name}: person {person(source)} is not on the {side} side of the split")
        path = folder / name / "fit.safetensors"
        if not path.is_file():
            with timed() as t:
                video = load_clip(source, start, n)
                fit = pipe.tracker.fit(video.frames, video.fps, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            save_fit(fit, path)
            print(f"tracked {name} ({n} frames) in {t.seconds:.0f} s", flush=True)
        out[name] = load_fit(path)
    return out


def predict(model, head, fit) -> "torch.Tensor":
    """G's Delta_f for ``fit``'s own neutral mesh and psi sequence -> (F, N_s, 3) metres."""
    import torch
    with torch.no_grad():
        return model.predict_for_head(head, fit.shape, fit.static_offset, fit.expression, fit.jaw)


def nearest_copy(fit, pool: list) -> "torch.Tensor":
    """Delta_f of the pool frame with the nearest psi, per frame of ``fit`` -> (F, N, 3)."""
    import torch
    psi = torch.cat([p.expression for p in pool])                         # (P, n_exp)
    dyn = torch.cat([p.dynamic_offset for p in pool])                     # (P, N, 3)
    idx = torch.cdist(fit.expression.float(), psi.float()).argmin(1)      # (F,)
    return dyn[idx].clone()


def main() -> None:
    ap = parser(__doc__, out="out/benchmarks/transfer_real", threads=2)
    ap.add_argument("--model", default=None, help="transfer checkpoint (default: the shipped one)")
    ap.add_argument("--fits", default=str(ROOT / "runs/transfer-real"), help="fit cache folder")
    ap.add_argument("--curves", action="store_true", help="retrain on 0/1/2 real people +- synthetic")
    ap.add_argument("--steps", type=int, default=1500, help="training steps of each --curves model")
    ap.add_argument("--max-frames", type=int, default=None,
                    help="cut every clip to its first N frames (smoke runs; fits cached apart)")
    args = setup(ap.parse_args())

    import torch

    from expportrait.engines.warp_field import expression_warp
    from expportrait.metrics.report import evaluate
    from expportrait.pipeline import ReenactPipeline
    from expportrait.tracking.track import project_tracker
    from expportrait.transfer.model import ExpressionTransfer

    train_clips, val_clips = TRAIN_CLIPS, VAL_CLIPS
    folder = Path(args.fits)
    if args.max_frames:                                 # smoke runs: short clips, their own cache
        train_clips, val_clips = ([(k, s, a, min(n, args.max_frames)) for k, s, a, n in clips]
                                  for clips in (TRAIN_CLIPS, VAL_CLIPS))
        folder = folder / f"max-{args.max_frames}"
    pipe = ReenactPipeline.from_checkpoint(None)
    head = pipe.head
    face = head.regions["face"].bool()                                     # (N_s,)
    train = clip_fits(pipe, train_clips, "train", folder)
    val = clip_fits(pipe, val_clips, "validation", folder)
    model = ExpressionTransfer.load(args.model, head=head.name)

    def error_mm(pred, target):                                          # (F, N_s, 3) metres
        return float((pred - target)[:, face].norm(dim=-1).mean() * 1e3)

    tracker, per_clip = project_tracker(), {}
    for name, source, start, n in val_clips:
        fit, video = val[name], load_clip(source, start, n)
        cands = {"learned": predict(model, head, fit), "zero": torch.zeros_like(fit.dynamic_offset),
                 "direct_copy": nearest_copy(fit, list(train.values())), "tracked": fit.dynamic_offset}
        row = {}
        for key, offset in cands.items():
            driven = fit.frames(slice(None))
            driven.dynamic_offset = offset.to(fit.dynamic_offset)
            warped = expression_warp(video.frames[0], fit.frames(slice(0, 1)), driven, head)
            rep = evaluate(warped, driving_frames=video.frames, source_image=video.frames[0],
                           gt_frames=video.frames, tracker=tracker, fps=video.fps)
            row[f"{key}_mm"] = error_mm(offset, fit.dynamic_offset)
            row[f"{key}_aed"] = rep["aed"]["value"]
            print(name, key, f"{row[f'{key}_mm']:.3f} mm, AED {row[f'{key}_aed']:.3f}", flush=True)
        per_clip[name] = row
    result = {k: float(np.mean([r[k] for r in per_clip.values()]))
              for k in ("learned_mm", "zero_mm", "direct_copy_mm", "learned_aed", "zero_aed",
                        "direct_copy_aed", "tracked_aed")}
    result["per_clip"] = per_clip
    result["model"] = args.model or "shipped"
    result["sanity"] = cross_sanity(pipe, model, {**train, **val})
    if args.curves:
        result["curves"] = curves(head, train, val, args.steps, error_mm)
    finish(args, result, section=readme_section(args, result))


def cross_sanity(pipe, model, fits: dict) -> dict:
    """Mouth-opening correlation (dlib) of the warped driven head with the driver, both ways:
    the source's first frame driven (``ReenactPipeline.transfer``, cross) with ``model``'s
    Delta_f and with none."""
    import torch

    from expportrait.detection.dlib_face import DlibFace
    from expportrait.engines.warp_field import expression_warp
    from expportrait.pipeline import ReenactPipeline
    full = ReenactPipeline(pipe.head, pipe.tracker, model, pipe.parts,
                           replace(pipe.config, engine="full"))             # the engine that uses G
    dlib, out = DlibFace(), {}
    for src, drv in (("franck1200", "cap12"), ("cap12", "franck0")):
        n = min(fits[drv].num_frames, 64)
        (s_path, s_start, _), (d_path, d_start, _) = CLIPS[src], CLIPS[drv]
        image = load_clip(s_path, s_start, 1).frames[0]
        b = mouth_opening(dlib.landmarks68_video(load_clip(d_path, d_start, n).frames))
        ref = fits[src].frames(slice(0, 1))
        driven = full.transfer(ref, fits[drv].frames(slice(0, n)), "cross", 0)
        row = {}
        for key in ("learned", "zero"):
            if key == "zero":
                driven.dynamic_offset = torch.zeros_like(driven.dynamic_offset)
            warped = expression_warp(image, ref, driven, pipe.head)
            row[f"{key}_mouth_corr"] = pearson(mouth_opening(dlib.landmarks68_video(warped)), b)
        out[f"{src} driven by {drv}"] = row
        print(f"{src} driven by {drv}", json.dumps(row), flush=True)
    return out


def curves(head, train, val, steps: int, error_mm) -> list[dict]:
    """Retrain E and G on growing sets of training people; error on the validation clips."""
    import torch

    from expportrait.config import load_json
    from expportrait.transfer.synthetic import SyntheticWorld
    from expportrait.transfer.train import TrainTransferConfig, train_transfer
    cfg = load_json(TrainTransferConfig, ROOT / "configs/transfer/bfm.json")
    cfg = replace(cfg, steps=steps, log_every=0, device="cpu",
                  model=replace(cfg.model, density=train["carphone"].meta.get("density", cfg.model.density)))
    world, gen = SyntheticWorld(head), torch.Generator().manual_seed(1000 + cfg.seed)
    synthetic = [world.make_fit(gen) for _ in range(32)]
    franck = [f for k, f in train.items() if k.startswith("franck")]
    sets = {"synthetic 32": ([], synthetic), "carphone": ([train["carphone"]], []),
            "carphone + franck": ([train["carphone"]] + franck, []),
            "carphone + franck + synthetic 32": ([train["carphone"]] + franck, synthetic)}
    rows = []

    def score(m, fits):
        return float(np.mean([error_mm(predict(m, head, f), f.dynamic_offset) for f in fits]))

    for label, (real, syn) in sets.items():
        with timed() as t:
            m, _ = train_transfer(real + syn, head, cfg)
            people = {"franck" if any(f is g for g in franck) else "carphone_man" for f in real}
            learned = score(m, val.values())
        rows.append({"training": label, "real_people": len(people),
                     "synthetic": len(syn), "learned_mm": learned, "seconds": t.seconds})
        print("curve", json.dumps(rows[-1]), flush=True)
    # diagnostic, not a result for G: the validation person's other clip as the training data
    # (cap12 -> cap13 and back), i.e. what any number of other people could give at best
    errs = []
    with timed() as t:
        for a, b in (("cap12", "cap13"), ("cap13", "cap12")):
            errs.append(score(train_transfer([val[a]], head, cfg)[0], [val[b]]))
    rows.append({"training": "same person, other clip (diagnostic)", "real_people": 1, "synthetic": 0,
                 "learned_mm": float(np.mean(errs)), "seconds": t.seconds})
    print("curve", json.dumps(rows[-1]), flush=True)
    return rows


def readme_section(args, r: dict) -> tuple:
    """The section "transfer_real" of benchmarks/README.md: (name, command, rows, note)."""
    def f(x):
        return "n/a" if x is None else f"{x:.3f}"
    rows = [("validation person cap_man (cap12, cap13): Delta_f error to the tracked Delta_f, "
             "learned / zero / direct copy from a training person",
             f"{r['learned_mm']:.3f} / {r['zero_mm']:.3f} / {r['direct_copy_mm']:.3f} mm",
             "learned below both"),
            ("warp AED, learned / zero / direct copy (tracked Delta_f: oracle)",
             f"{r['learned_aed']:.3f} / {r['zero_aed']:.3f} / {r['direct_copy_aed']:.3f} "
             f"({r['tracked_aed']:.3f})", "learned below both")]
    for label, row in r["sanity"].items():
        rows.append((f"cross sanity, {label}: mouth-opening correlation with the driver (dlib), learned / zero",
                     f"{f(row['learned_mouth_corr'])} / {f(row['zero_mouth_corr'])}", ""))
    for c in r.get("curves", []):
        rows.append((f"retrained on {c['training']} ({c['real_people']} real, {c['synthetic']} synthetic "
                     f"identities): learned error", f"{c['learned_mm']:.3f} mm ({c['seconds']:.0f} s)", ""))
    cmd = "python benchmarks/transfer_real.py" + (" --curves" if args.curves else "") + \
          (f" --steps {args.steps}" if args.curves and args.steps != 1500 else "") + \
          (f" --model {args.model}" if args.model else "") + \
          (f" --max-frames {args.max_frames}" if args.max_frames else "")
    return ("transfer_real", cmd, rows,
            "Identity-disjoint (configs/identity_split.json): trained on franck and "
            "carphone_man at most, scored on cap_man only. Delta_g and the person's own "
            "psi in every row, only Delta_f differs.")


if __name__ == "__main__":
    main()
