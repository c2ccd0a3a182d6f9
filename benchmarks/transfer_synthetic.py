"""Identity-adaptive expression transfer on held-out synthetic identities (the paper's ablation,
made quantitative).

Synthetic subjects (``expportrait.transfer.synthetic``) have expression detail that depends on
their neutral geometry. E and G are trained by self-reconstruction on ``--train-ids`` identities;
then for every ordered pair (driver, target) of ``--test-ids`` held-out identities the target's
true Delta_f under the driver's psi is compared with

- learned:     G(target neutral, E(driver psi)),
- direct_copy: the driver's own Delta_f pasted on the target,
- base_only:   Delta_f = 0.

Error = mean Euclidean vertex error (mm) over face vertices and frames (the detailed meshes differ
only by Delta_f). Writes benchmarks/README.md (section "transfer_synthetic") unless ``--no-readme``
or ``--model`` (a checkpoint's score goes to the log only); last output line: one JSON object (the
harness flags: ``benchmarks/common.py``; ``--threads`` defaults to 1 here: small ops, extra threads
only spin on a shared machine).

    python benchmarks/transfer_synthetic.py [--steps 6000] [--train-ids 32] [--test-ids 6] [--frames 64]
        [--hidden 64] [--code-dim 32] [--threads 1] [--no-readme] [--out DIR] [--json FILE]
    python benchmarks/transfer_synthetic.py --model shipped --density medium   # score a checkpoint
"""
from __future__ import annotations

import itertools
from dataclasses import replace

import torch

from common import finish, parser, setup, timed
from expportrait.head.base import load_head
from expportrait.transfer.model import TransferConfig
from expportrait.transfer.synthetic import SyntheticConfig, SyntheticWorld
from expportrait.transfer.train import TrainTransferConfig, train_transfer


def main() -> None:
    ap = parser(__doc__, out="out/benchmarks/transfer_synthetic", threads=1)
    ap.add_argument("--density", default="coarse")
    ap.add_argument("--train-ids", type=int, default=32)
    ap.add_argument("--test-ids", type=int, default=6)
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hidden", type=int, default=64, help="G per-vertex width")
    ap.add_argument("--code-dim", type=int, default=32, help="D, the driving code width")
    ap.add_argument("--model", default=None,
                    help="score this transfer checkpoint ('shipped': the package's) instead of training one")
    args = setup(ap.parse_args())     # --threads 1 by default: small ops, extra threads only spin
    torch.manual_seed(args.seed)
    head = load_head("bfm", density=args.density)
    world = SyntheticWorld(head, SyntheticConfig(frames=args.frames))
    g_train = torch.Generator().manual_seed(1000 + args.seed)
    g_test = torch.Generator().manual_seed(2000 + args.seed)
    train = [world.make_fit(g_train) for _ in range(args.train_ids)]
    test = [world.make_fit(g_test) for _ in range(args.test_ids)]
    cfg = TrainTransferConfig(model=replace(TransferConfig(), density=args.density, hidden=args.hidden,
                                            code_dim=args.code_dim),
                              steps=args.steps, seed=args.seed, device="cpu", log_every=max(1, args.steps // 10))
    if args.model:
        from expportrait.transfer.model import ExpressionTransfer
        model = ExpressionTransfer.load(None if args.model == "shipped" else args.model, head="bfm").float()
        report = {"seconds": 0.0}
        print(f"scoring {args.model} (not trained here; the training identities are unused)")
    else:
        with timed() as t:
            model, report = train_transfer(train, head, cfg)
        print(f"trained on {args.train_ids} identities x {args.frames} frames, {args.steps} steps, "
              f"{t.seconds:.0f} s, final loss {report['final_loss']:.4f}")

    face = head.regions["face"]
    sums = {"learned": 0.0, "direct_copy": 0.0, "base_only": 0.0}
    pairs = list(itertools.permutations(range(args.test_ids), 2))
    for d, t in pairs:
        drv, tgt = test[d], test[t]
        truth = world.detail(tgt.shape, tgt.static_offset, drv.expression)[:, face]   # (F, N_f, 3)
        pred = model.predict_for_head(head, tgt.shape, tgt.static_offset, drv.expression)[:, face]
        for key, est in (("learned", pred), ("direct_copy", drv.dynamic_offset[:, face]),
                         ("base_only", torch.zeros_like(truth))):
            sums[key] += float((est - truth).norm(dim=-1).mean()) * 1e3 / len(pairs)
    # self-reconstruction on a training identity (sanity: fitting ability)
    tr = train[0]
    self_err = float((model.predict_for_head(head, tr.shape, tr.static_offset, tr.expression)[:, face]
                      - tr.dynamic_offset[:, face]).norm(dim=-1).mean()) * 1e3
    print(f"{'method':<14}{'error (mm)':>12}{'/ learned':>12}")
    for key, v in sums.items():
        print(f"{key:<14}{v:>12.4f}{v / sums['learned']:>12.2f}")
    print(f"train-identity self-reconstruction error {self_err:.4f} mm")
    result = {**{k: round(v, 5) for k, v in sums.items()},
              "learned_over_direct_copy": round(sums["learned"] / sums["direct_copy"], 4),
              "learned_over_base_only": round(sums["learned"] / sums["base_only"], 4),
              "unit": "mm, mean over face vertices and frames", "pairs": len(pairs),
              "train_ids": args.train_ids, "test_ids": args.test_ids, "steps": args.steps,
              "density": args.density, "train_seconds": round(report["seconds"], 1)}
    result["model"] = args.model or "trained here"
    section = None  # a checkpoint's score goes to the log, the README keeps the trained-here table
    if not args.model:
        section = ("transfer_synthetic", f"python benchmarks/transfer_synthetic.py --steps {args.steps} "
                   f"--hidden {args.hidden} --code-dim {args.code_dim}", [
                       ("learned transfer (E, G) vertex error", f"{sums['learned']:.4f} mm", ""),
                       ("direct offset copy", f"{sums['direct_copy']:.4f} mm", ""),
                       ("base only (Delta_f = 0)", f"{sums['base_only']:.4f} mm", ""),
                       ("learned / direct copy", f"**{result['learned_over_direct_copy']:.3f}**", "<= 0.5"),
                       ("learned / base only", f"**{result['learned_over_base_only']:.3f}**", "<= 0.5")],
                   f"{args.train_ids} training / {args.test_ids} held-out synthetic identities, "
                   f"{len(pairs)} pairs, {args.steps} steps, density {args.density}.")
    finish(args, result, section=section)


if __name__ == "__main__":
    main()
