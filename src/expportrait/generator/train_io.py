"""Run folders and checkpoint files of the generator training loop (see ``generator.train``)."""
from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import torch

from expportrait.errors import UserError

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from expportrait.generator.train import TrainConfig  # noqa: F401


def next_run_dir(runs_dir: str | Path, tag: str) -> Path:
    """``RUNS_DIR/NNNNN-TAG`` with NNNNN one above the highest existing number (EDM style)."""
    runs_dir = Path(runs_dir)
    ids = [int(m.group(1)) for p in (runs_dir.iterdir() if runs_dir.is_dir() else [])
           if (m := re.match(r"^(\d+)-", p.name))]
    return runs_dir / f"{max(ids, default=-1) + 1:05d}-{tag}"


def checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete ``checkpoint-STEP`` folders of a run, oldest first."""
    found = [(int(m.group(1)), p) for p in Path(run_dir).glob("checkpoint-*")
             if (m := re.fullmatch(r"checkpoint-(\d+)", p.name))
             and (p / "state" / "trainer_state.json").is_file()]
    return [p for _, p in sorted(found)]


def resolve_resume(cfg: "TrainConfig") -> tuple[Path | None, Path | None]:
    """-> (run folder to continue, checkpoint folder) for ``cfg.resume`` (both None: fresh run)."""
    if cfg.resume is None:
        return None, None
    if cfg.resume == "latest":
        if cfg.out is None:
            raise UserError("resume='latest' needs an exact run folder (--out)")
        found = checkpoints(cfg.out)
        return (Path(cfg.out), found[-1]) if found else (None, None)  # nothing saved yet: start
    path = Path(cfg.resume)
    if (path / "state" / "trainer_state.json").is_file():
        return Path(cfg.out) if cfg.out else path.parent, path
    found = checkpoints(path) if path.is_dir() else []
    if not found:
        raise UserError(f"nothing to resume in {path} (no complete checkpoint-STEP folder)")
    return Path(cfg.out) if cfg.out else path, found[-1]


def _weights_hash(module: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes()
                 if v.numel() else b"")
    return h.hexdigest()


def _state_dict(tensors: dict) -> dict:
    """Full (gathered) tensors -> plain CPU tensors (DTensors from FSDP2 are made whole)."""
    out = {}
    for k, v in tensors.items():
        if hasattr(v, "full_tensor"):
            v = v.full_tensor()
        out[k] = v.detach().cpu()
    return out


def _ema_name(sharded: bool, rank: int) -> str:
    return f"ema-rank{rank}.safetensors" if sharded else "ema.safetensors"


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines past ``step`` (written by a run killed after its last checkpoint)."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                keep.append(line)
        except (json.JSONDecodeError, KeyError, TypeError):
            pass  # a line cut short by the kill
    path.write_text("".join(line + "\n" for line in keep))


def _copy_exports(checkpoint: Path, final: Path) -> None:
    """RUN/final/{model,ema} <- a checkpoint's exports (atomically: copy, then rename)."""
    tmp = final.with_name(final.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    for part in ("model", "ema"):
        if (checkpoint / part).is_dir():
            shutil.copytree(checkpoint / part, tmp / part)
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)


def _export(accelerator, model, gen_config, folder: Path, ReenactGenerator) -> None:
    """config.json + model.safetensors of the current weights (collective under FSDP)."""
    if accelerator.distributed_type.name == "FSDP":
        state = accelerator.get_state_dict(model)
        if accelerator.is_main_process:
            with torch.device("meta"):
                shell = ReenactGenerator(gen_config)
            shell.load_state_dict(_state_dict(state), assign=True, strict=True)
            shell.save_pretrained(folder)
    elif accelerator.is_main_process:
        accelerator.unwrap_model(model).save_pretrained(folder)


def _save_checkpoint(cfg, accelerator, model, ema, gen_config, run_dir: Path, tag: str, step: int,
                     ReenactGenerator) -> Path:
    """Write RUN/<tag>/ atomically: state/, model/, ema/; prune old checkpoints."""
    final, tmp = run_dir / tag, run_dir / f"{tag}.tmp"
    main, sharded = accelerator.is_main_process, accelerator.distributed_type.name == "FSDP"
    if main and tmp.exists():
        shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp / "state"))
    if ema is not None and (main or sharded):
        ema.save(tmp / "state" / _ema_name(sharded, accelerator.process_index))
    if main:
        (tmp / "state" / "trainer_state.json").write_text(json.dumps({
            "step": step, "world_size": accelerator.num_processes, "batch_size": cfg.batch_size,
            "grad_accum": cfg.grad_accum, "seed": cfg.seed}) + "\n")
    _export(accelerator, model, gen_config, tmp / "model", ReenactGenerator)
    if ema is not None:
        with ema.swapped(accelerator.unwrap_model(model).named_parameters()):
            _export(accelerator, model, gen_config, tmp / "ema", ReenactGenerator)
    accelerator.wait_for_everyone()
    if main:
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        if cfg.keep_last > 0:
            for old in checkpoints(run_dir)[:-cfg.keep_last]:
                shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return final
