"""Checkpoint folders: ``config.json`` + ``model.safetensors`` (diffusers layout, no pickles).

Loading is strict: a missing or unexpected key, or a tensor of the wrong shape, raises a
``UserError`` that names them.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from expportrait.errors import UserError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def save_pretrained(module: torch.nn.Module, config: dict, folder: str | Path,
                    dtype: torch.dtype | None = None) -> Path:
    """Write ``folder/config.json`` and ``folder/model.safetensors`` (optionally cast, e.g. fp16)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {}
    for k, v in module.state_dict().items():
        v = v.detach().cpu()
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        state[k] = v.contiguous()
    tmp = folder / (WEIGHTS_NAME + ".part")
    save_file(state, str(tmp), metadata={"format": "pt"})
    tmp.replace(folder / WEIGHTS_NAME)
    (folder / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return folder


def read_config(folder: str | Path) -> dict:
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise UserError(f"checkpoint {folder}: missing {CONFIG_NAME}")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"checkpoint {folder}: {CONFIG_NAME} is not valid JSON ({exc})") from None


def load_state_strict(module: torch.nn.Module, folder: str | Path) -> torch.nn.Module:
    """Load ``folder/model.safetensors`` into ``module``; names every mismatch on failure."""
    path = Path(folder) / WEIGHTS_NAME
    if not path.is_file():
        raise UserError(f"checkpoint {folder}: missing {WEIGHTS_NAME}")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"checkpoint {path} is not a readable safetensors file ({exc})") from None
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing keys {_short(missing)}")
        if unexpected:
            parts.append(f"unexpected keys {_short(unexpected)}")
        if wrong:
            parts.append("wrong shapes " + _short(
                [f"{k} {tuple(state[k].shape)} != {tuple(own[k].shape)}" for k in wrong]))
        raise UserError(f"checkpoint {folder} does not match the model: " + "; ".join(parts))
    casted = {k: v.to(own[k].dtype) for k, v in state.items()}
    module.load_state_dict(casted, strict=True)
    return module


def from_pretrained(folder: str | Path, build: Callable[[dict], torch.nn.Module]) -> Any:
    """``build(config) -> module``, then strict weight loading."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"checkpoint folder not found: {folder}")
    module = build(read_config(folder))
    return load_state_strict(module, folder)


def _short(items: list[str], n: int = 5) -> str:
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return "[" + ", ".join(items[:n]) + "]" + more
