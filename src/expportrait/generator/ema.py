"""Exponential moving average of trainable weights (fp32 shadows), saved as safetensors.

``shadow <- shadow + (1 - d_t) * (param - shadow)`` with ``d_t = min(decay, (1 + t) / (10 + t))``
(the usual warm-up, so early averages are not dominated by the random initialisation).
Parameters are addressed by name, so the same class works on the local shards of an FSDP model
(``use_orig_params=True``): each rank then averages and saves its own shards.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

import torch
from safetensors.torch import load_file, save_file

from expportrait.errors import UserError, atomic_path

NamedParams = Iterable[tuple[str, torch.nn.Parameter]]


class EMA:
    """EMA of the parameters ``named_params`` (those with ``requires_grad``)."""

    def __init__(self, named_params: NamedParams, decay: float = 0.999, warmup: bool = True):
        if not 0.0 <= decay < 1.0:
            raise UserError(f"ema decay must be in [0, 1), got {decay}")
        self.decay, self.warmup = float(decay), warmup
        self.num_updates = 0
        self.shadow = {n: p.detach().to(torch.float32).clone()
                       for n, p in named_params if p.requires_grad}

    def current_decay(self) -> float:
        if not self.warmup:
            return self.decay
        t = self.num_updates
        return min(self.decay, (1.0 + t) / (10.0 + t))

    @torch.no_grad()
    def update(self, named_params: NamedParams) -> None:
        """One EMA step after an optimizer step."""
        weight = 1.0 - self.current_decay()
        for n, p in named_params:
            if n in self.shadow:
                self.shadow[n].lerp_(p.detach().to(torch.float32), weight)
        self.num_updates += 1

    @contextmanager
    def swapped(self, named_params: NamedParams) -> Iterator[None]:
        """Temporarily load the EMA weights into the parameters (e.g. to export or sample)."""
        params = {n: p for n, p in named_params if n in self.shadow}
        missing = sorted(set(self.shadow) - set(params))
        if missing:
            raise RuntimeError(f"EMA names not in the model: {missing[:5]}")
        backup = {n: p.detach().clone() for n, p in params.items()}
        try:
            with torch.no_grad():
                for n, p in params.items():
                    p.copy_(self.shadow[n].to(p.dtype))
            yield
        finally:
            with torch.no_grad():
                for n, p in params.items():
                    p.copy_(backup[n])

    def state_dict(self) -> dict[str, torch.Tensor]:
        """``shadow.<name>`` tensors (local shards under FSDP2) and ``num_updates``."""
        state = {f"shadow.{n}": _local(t) for n, t in self.shadow.items()}
        state["num_updates"] = torch.tensor(self.num_updates, dtype=torch.int64)
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        shadow = {k[len("shadow."):]: v for k, v in state.items() if k.startswith("shadow.")}
        if set(shadow) != set(self.shadow):
            diff = sorted(set(shadow) ^ set(self.shadow))
            raise UserError(f"EMA state does not match the trainable parameters: {diff[:5]}")
        for n, t in shadow.items():
            own = _local(self.shadow[n])
            if t.shape != own.shape:
                raise UserError(f"EMA state {n} has shape {tuple(t.shape)}, "
                                f"expected {tuple(own.shape)}")
            own.copy_(t)
        self.num_updates = int(state["num_updates"])

    def save(self, path: str | Path) -> None:
        with atomic_path(path) as tmp:
            save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(tmp),
                      metadata={"decay": str(self.decay)})

    def load(self, path: str | Path) -> None:
        if not Path(path).is_file():
            raise UserError(f"EMA state not found: {path}")
        self.load_state_dict(load_file(str(path)))


def _local(t: torch.Tensor) -> torch.Tensor:
    """This rank's shard of an FSDP2 DTensor, or the tensor itself."""
    return t.to_local() if hasattr(t, "to_local") else t
