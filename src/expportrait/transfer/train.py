"""Training E and G by self-reconstruction on fitted videos (accelerate; CPU works).

For each fit: V_neutral = V^s(beta, 0) + Delta_g, and the target is the fit's own Delta_f.
A step samples ``batch`` windows of ``window`` frames (fit, start) and minimises the mean
Euclidean vertex error (mm, Charbonnier-smoothed; or squared error with ``loss="l2"``) over face
vertices, plus a small second-difference penalty on the codes.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from expportrait.config import to_dict
from expportrait.errors import UserError
from expportrait.tracking.io import HeadFit
from expportrait.transfer.model import ExpressionTransfer, TransferConfig, neutral_mesh, rest_mesh

MM = 1e-3


@dataclass(frozen=True)
class TrainTransferConfig:
    model: TransferConfig = field(default_factory=TransferConfig)
    steps: int = 1500
    lr: float = 1e-2
    grad_clip: float = 1.0
    warmup: int = 100
    weight_decay: float = 0.0
    batch: int = 4             # windows per step
    window: int = 16           # frames per window
    loss: str = "l1"            # "l1": mean vertex distance (mm); "l2": mean squared (mm^2)
    w_code_smooth: float = 1e-3  # second differences of the codes
    seed: int = 0
    log_every: int = 100
    device: str = "auto"       # "auto" | "cpu" | "cuda"


@dataclass
class _Subject:
    inputs: Tensor        # (N, C_in) G's per-vertex inputs
    frames: Tensor        # (N, 3, 3) tangent frames
    expression: Tensor    # (F, n_exp)
    jaw: Tensor           # (F, 3)
    target: Tensor        # (F, N, 3) mm


def _subjects(model: ExpressionTransfer, head, fits: list[HeadFit], device) -> list[_Subject]:
    """Per-fit training tensors. With ``face_only`` only the face vertices are kept (G's output is
    zero elsewhere and its identity code pools over the face), which halves the cost."""
    rest = rest_mesh(head).to(device)
    keep = (torch.nonzero(head.regions["face"])[:, 0] if model.cfg.face_only
            else torch.arange(head.num_dense)).to(device)
    out = []
    for k, fit in enumerate(fits):
        if fit.dynamic_offset.shape[1] != head.num_dense or fit.expression.shape[1] != head.n_exp:
            raise UserError(f"fit {k}: {fit.dynamic_offset.shape[1]} vertices / {fit.expression.shape[1]} "
                            f"expression coefficients do not match the head ({head.num_dense} / {head.n_exp}); "
                            f"track all videos with the same head and --density")
        neutral = neutral_mesh(head, fit.shape[None].to(device), fit.static_offset[None].to(device))
        with torch.no_grad():
            inputs, frames = model.vertex_mlp.vertex_inputs(neutral, rest, head.faces)
        valid = fit.valid.bool()
        idx = torch.nonzero(valid)[:, 0] if valid.sum() >= 2 else torch.arange(fit.num_frames)
        lo, hi = int(idx.min()), int(idx.max()) + 1  # the valid span (interpolated frames inside)
        target = (fit.dynamic_offset[lo:hi].to(device) / MM)[:, keep]
        out.append(_Subject(inputs[0, keep], frames[0, keep], fit.expression[lo:hi].to(device),
                            fit.jaw[lo:hi].to(device), target))
    return out


def _batch(subjects: list[_Subject], batch: int, window: int, gen: torch.Generator):
    pick = torch.randint(0, len(subjects), (batch,), generator=gen).tolist()
    T = min(window, min(subjects[p].expression.shape[0] for p in pick))
    cols = {"inputs": [], "frames": [], "expression": [], "jaw": [], "target": []}
    for p in pick:
        s = subjects[p]
        start = int(torch.randint(0, s.expression.shape[0] - T + 1, (1,), generator=gen))
        cols["inputs"].append(s.inputs)
        cols["frames"].append(s.frames)
        for key in ("expression", "jaw", "target"):
            cols[key].append(getattr(s, key)[start:start + T])
    return {k: torch.stack(v) for k, v in cols.items()}


def train_transfer(fits: list[HeadFit], head, cfg: TrainTransferConfig = TrainTransferConfig(),
                   progress: bool = False, log=print) -> tuple[ExpressionTransfer, dict]:
    """Train E and G on ``fits`` (all tracked with ``head`` at the same density).
    Returns (model in eval mode on CPU, report with the loss curve)."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    if not fits:
        raise UserError("train-transfer needs at least one fit")
    if cfg.model.n_exp != head.n_exp or cfg.model.use_jaw != head.has_jaw:
        raise UserError(f"model config n_exp={cfg.model.n_exp}, use_jaw={cfg.model.use_jaw} does not "
                        f"match head '{head.name}' (n_exp={head.n_exp}, jaw={head.has_jaw})")
    cpu = cfg.device == "cpu" or (cfg.device == "auto" and not torch.cuda.is_available())
    acc = Accelerator(cpu=cpu)
    set_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = ExpressionTransfer(cfg.model)
    head = head.to(acc.device)
    model.to(acc.device)
    subjects = _subjects(model, head, fits, acc.device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(cfg.warmup, 1)) * 0.5 * (1 + math.cos(math.pi * min(s / max(cfg.steps, 1), 1.0))))
    model, opt = acc.prepare(model, opt)
    core = acc.unwrap_model(model)
    curve, t0 = [], time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=cfg.steps, desc="train-transfer", unit="step", leave=False)
    model.train()
    for step in range(cfg.steps):
        b = _batch(subjects, cfg.batch, cfg.window, gen)
        feats = core.vertex_mlp.encode_vertices(b["inputs"])                    # (B, N, H)
        codes = core.encoder(b["expression"], b["jaw"] if cfg.model.use_jaw else None)  # (B, T, D)
        pred = core.vertex_mlp.decode(feats, b["frames"], codes, chunk=cfg.window) / MM  # (B, T, N, 3)
        sq = ((pred - b["target"]) ** 2).sum(-1)                                # (B, T, N) mm^2
        loss_rec = (sq + 1e-4).sqrt().mean() if cfg.loss == "l1" else sq.mean()
        loss = loss_rec
        if cfg.w_code_smooth > 0 and codes.shape[1] >= 3:
            loss = loss + cfg.w_code_smooth * (codes[:, 2:] - 2 * codes[:, 1:-1] + codes[:, :-2]).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        acc.backward(loss)
        if cfg.grad_clip > 0:
            acc.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        curve.append(float(loss_rec.detach()))
        if bar:
            bar.update(1)
        if log and cfg.log_every and (step + 1) % cfg.log_every == 0:
            recent = sum(curve[-cfg.log_every:]) / len(curve[-cfg.log_every:])
            log(f"step {step + 1}/{cfg.steps}  loss/reconstruction {recent:.5f} ({cfg.loss}, mm)")
    if bar:
        bar.close()
    model = acc.unwrap_model(model).cpu().eval()
    head.cpu()
    report = {"steps": cfg.steps, "seconds": time.perf_counter() - t0, "fits": len(fits),
              "frames": sum(s.expression.shape[0] for s in subjects),
              "final_loss": sum(curve[-50:]) / len(curve[-50:]), "curve": curve[:: max(1, cfg.steps // 100)],
              "config": to_dict(cfg)}
    return model, report


def save_checkpoint(model: ExpressionTransfer, report: dict, folder: str | Path,
                    dtype: torch.dtype = torch.float16) -> Path:
    """config.json + model.safetensors (fp16 by default) + train_report.json."""
    import json
    folder = model.save(folder, dtype=dtype)
    small = {k: v for k, v in report.items() if k != "curve"}
    (Path(folder) / "train_report.json").write_text(json.dumps(small, indent=2) + "\n")
    return Path(folder)
