"""ExpressionTransfer = DrivingEncoder E + VertexOffsetMLP G, its config and checkpoint I/O.

Delta_f^target(i) = G(V^s_target + Delta_g^target, E(psi, omega)_i), masked to the face region.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from expportrait.checkpoint import from_pretrained, save_pretrained
from expportrait.config import from_dict, to_dict
from expportrait.errors import UserError
from expportrait.transfer.encoder import DrivingEncoder
from expportrait.transfer.vertex_mlp import VertexOffsetMLP

CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "checkpoints"


@dataclass(frozen=True)
class TransferConfig:
    head: str = "bfm"          # head model the checkpoint was trained with
    density: str = "medium"    # dense level used in training (G is density-agnostic)
    n_exp: int = 10            # psi width
    use_jaw: bool = False      # omega is an input of E (FLAME / SMPL-X)
    code_dim: int = 32         # D
    enc_hidden: int = 64
    enc_layers: int = 2
    enc_kernel: int = 5        # temporal window of each encoder block (frames)
    hidden: int = 64           # G per-vertex width
    id_dim: int = 32           # G pooled identity code width
    pe_freqs: int = 6          # Fourier octaves of the rest position
    pe_scale: float = 0.1      # metres
    face_only: bool = True     # Delta_f is zero outside head.regions["face"]


def default_checkpoint(head: str = "bfm") -> Path:
    """The shipped checkpoint folder for ``head`` (only "bfm" ships)."""
    return CHECKPOINT_DIR / f"transfer-{head}"


@torch.no_grad()
def rest_mesh(head) -> Tensor:
    """(N_s, 3) the head model's dense mesh at beta = 0, psi = 0 (the vertex positional frame)."""
    p = next(iter(head.buffers()))
    out = head(torch.zeros(1, head.n_shape, device=p.device), torch.zeros(1, head.n_exp, device=p.device))
    return out.dense[0]


@torch.no_grad()
def neutral_mesh(head, shape: Tensor, static_offset: Tensor) -> Tensor:
    """shape (B, n_shape), static_offset (B, N_s, 3) -> V_neutral = V^s(beta, 0) + Delta_g (B, N_s, 3)."""
    zeros = torch.zeros(shape.shape[0], head.n_exp, device=shape.device)
    return head(shape, zeros).dense + static_offset


class ExpressionTransfer(nn.Module):
    """E and G together. ``forward`` maps a target's neutral mesh and a driving sequence to the
    target's dynamic offsets."""

    def __init__(self, cfg: TransferConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = DrivingEncoder(cfg.n_exp, cfg.code_dim, cfg.enc_hidden, cfg.enc_layers,
                                      cfg.enc_kernel, use_jaw=cfg.use_jaw)
        self.vertex_mlp = VertexOffsetMLP(cfg.code_dim, cfg.hidden, cfg.id_dim, cfg.pe_freqs, cfg.pe_scale)

    def check_head(self, head) -> None:
        if head.n_exp != self.cfg.n_exp or head.has_jaw != self.cfg.use_jaw:
            raise UserError(f"transfer checkpoint was trained for head '{self.cfg.head}' "
                            f"(n_exp {self.cfg.n_exp}, jaw {self.cfg.use_jaw}); this head '{head.name}' "
                            f"has n_exp {head.n_exp}, jaw {head.has_jaw}")

    def prepare(self, neutral: Tensor, rest: Tensor, faces: Tensor, face_mask: Tensor | None = None
                ) -> tuple[Tensor, Tensor, Tensor | None]:
        """Per-identity part of G. neutral (B, N_s, 3), rest (N_s, 3), faces (T, 3), face_mask
        (N_s,) bool -> (features (B, N_s, hidden), frames (B, N_s, 3, 3), output mask or None)."""
        inputs, frames = self.vertex_mlp.vertex_inputs(neutral, rest, faces)
        w = face_mask.float() if face_mask is not None else None
        feats = self.vertex_mlp.encode_vertices(inputs, w)
        mask = w if (self.cfg.face_only and w is not None) else None
        return feats, frames, mask

    def decode(self, prepared, expression: Tensor, jaw: Tensor | None = None, chunk: int = 64) -> Tensor:
        """prepared from ``prepare``; expression (B, F, n_exp); jaw (B, F, 3) or None
        -> Delta_f (B, F, N_s, 3) metres."""
        feats, frames, mask = prepared
        codes = self.encoder(expression, jaw)                        # (B, F, D)
        out = self.vertex_mlp.decode(feats, frames, codes, chunk)   # (B, F, N_s, 3)
        return out if mask is None else out * mask.to(out)[None, None, :, None]

    def forward(self, neutral: Tensor, rest: Tensor, faces: Tensor, expression: Tensor,
                jaw: Tensor | None = None, face_mask: Tensor | None = None) -> Tensor:
        """neutral (B, N_s, 3) target V^s + Delta_g; rest (N_s, 3); faces (T, 3);
        expression (B, F, n_exp); jaw (B, F, 3) or None; face_mask (N_s,) bool
        -> Delta_f (B, F, N_s, 3) metres."""
        return self.decode(self.prepare(neutral, rest, faces, face_mask), expression, jaw)

    @torch.no_grad()
    def predict_for_head(self, head, shape: Tensor, static_offset: Tensor, expression: Tensor,
                         jaw: Tensor | None = None, chunk: int = 64) -> Tensor:
        """One target identity. shape (n_shape,), static_offset (N_s, 3), expression (F, n_exp),
        jaw (F, 3) or None -> Delta_f (F, N_s, 3) metres."""
        self.check_head(head)
        dev = next(self.parameters()).device
        neutral = neutral_mesh(head, shape[None].to(dev), static_offset[None].to(dev))
        prepared = self.prepare(neutral, rest_mesh(head), head.faces, head.regions["face"])
        out = self.decode(prepared, expression[None].to(dev),
                          None if jaw is None or not self.cfg.use_jaw else jaw[None].to(dev), chunk)
        return out[0]

    def save(self, folder: str | Path, dtype: torch.dtype | None = torch.float16) -> Path:
        return save_pretrained(self, {"type": "expression_transfer", **to_dict(self.cfg)}, folder, dtype=dtype)

    @classmethod
    def load(cls, folder: str | Path | None = None, head: str = "bfm") -> "ExpressionTransfer":
        folder = default_checkpoint(head) if folder is None else Path(folder)

        def build(config: dict) -> "ExpressionTransfer":
            config = dict(config)
            if config.pop("type", None) != "expression_transfer":
                raise UserError(f"{folder} is not an expression-transfer checkpoint")
            return cls(from_dict(TransferConfig, config))

        return from_pretrained(folder, build).eval()
