"""The stateless head-model interface every backend (BFM, FLAME, SMPL-X) implements.

Head space: x = subject's left (image right when facing the camera), y up, z out of the face,
metres, no global rotation or translation (apply pose with ``head.geometry.head_to_camera``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from expportrait.errors import UserError
from expportrait.head.regions import REGION_NAMES
from expportrait.head.upsample import apply_barycentric


@dataclass(frozen=True)
class HeadOutput:
    """coarse (B, N, 3) mesh V; dense (B, N_s, 3) mesh V^s; landmarks (B, 68, 3) iBUG-68 points
    on the dense mesh. All head space, metres."""
    coarse: Tensor
    dense: Tensor
    landmarks: Tensor


class HeadModel(torch.nn.Module):
    """A parametric head: buffers only, no parameters (coefficients are passed to ``forward``).

    Subclasses register (through ``_register_topology``): ``faces`` (T, 3) dense triangles,
    counter-clockwise seen from outside; ``coarse_faces`` (T_c, 3); ``landmark_index`` (68,)
    dense vertex ids; ``upsample_index`` / ``upsample_weight`` (N_s, 3) barycentric upsampling
    from the coarse mesh; ``region_<name>`` (N_s,) bool masks.
    """

    name: str = ""
    n_shape: int = 0
    n_exp: int = 0
    has_jaw: bool = False

    def _register_topology(self, faces: Tensor, coarse_faces: Tensor, landmark_index: Tensor,
                           upsample_index: Tensor, upsample_weight: Tensor,
                           regions: dict[str, Tensor], num_coarse: int) -> None:
        self._num_coarse = int(num_coarse)
        self.register_buffer("faces", faces.long().contiguous(), persistent=False)
        self.register_buffer("coarse_faces", coarse_faces.long().contiguous(), persistent=False)
        self.register_buffer("landmark_index", landmark_index.long().contiguous(), persistent=False)
        self.register_buffer("upsample_index", upsample_index.long().contiguous(), persistent=False)
        self.register_buffer("upsample_weight", upsample_weight.float().contiguous(), persistent=False)
        for key in REGION_NAMES:
            self.register_buffer(f"region_{key}", regions[key].bool().contiguous(), persistent=False)

    @property
    def regions(self) -> dict[str, Tensor]:
        """{"face", "non_face", "lips", "eyes", "left_eye", "right_eye"}: (N_s,) bool masks."""
        return {key: getattr(self, f"region_{key}") for key in REGION_NAMES}

    @property
    def num_dense(self) -> int:
        return int(self.upsample_index.shape[0])

    @property
    def num_coarse(self) -> int:
        return self._num_coarse

    def upsample(self, coarse: Tensor) -> Tensor:
        """B(V): coarse (B, N, C) per coarse vertex (positions or offsets) -> (B, N_s, C)."""
        return apply_barycentric(coarse, self.upsample_index, self.upsample_weight)

    def forward(self, shape: Tensor, expression: Tensor, jaw: Tensor | None = None) -> HeadOutput:
        """shape (B, n_shape), expression (B, n_exp), coefficients in std units (~N(0, 1));
        jaw (B, 3) axis-angle radians or None (ignored by models without a jaw)."""
        raise NotImplementedError

    def landmarks(self, shape: Tensor, expression: Tensor, jaw: Tensor | None = None) -> Tensor:
        """Only the (B, 68, 3) landmarks (models override this with a cheaper path)."""
        return self.forward(shape, expression, jaw).landmarks

    def dense_vertices(self, shape: Tensor, expression: Tensor, jaw: Tensor | None = None) -> Tensor:
        """Only the (B, N_s, 3) dense mesh V^s (models override this with a cheaper path)."""
        return self.forward(shape, expression, jaw).dense

    def _check(self, shape: Tensor, expression: Tensor) -> None:
        if shape.ndim != 2 or shape.shape[1] != self.n_shape:
            raise UserError(f"{self.name}: shape must be (B, {self.n_shape}), got {tuple(shape.shape)}")
        if expression.ndim != 2 or expression.shape[1] != self.n_exp:
            raise UserError(f"{self.name}: expression must be (B, {self.n_exp}), got {tuple(expression.shape)}")
        if shape.shape[0] != expression.shape[0]:
            raise UserError(f"{self.name}: shape and expression batch sizes differ")

    def extra_repr(self) -> str:
        return (f"name={self.name}, n_shape={self.n_shape}, n_exp={self.n_exp}, "
                f"num_coarse={self.num_coarse}, num_dense={self.num_dense}, faces={len(self.faces)}")


def load_head(kind: str = "bfm", model_path: str | None = None, density: str = "medium",
              **kw) -> HeadModel:
    """Build a head model.

    kind: "bfm" (embedded 3DDFA basis, built into the cache on first use), "flame" or "smplx"
    (``model_path`` = the user's model folder or file). density: "coarse" | "medium" | "full"
    (FLAME/SMPL-X: 0/1/2 midpoint subdivisions, or an int). Extra keywords: n_shape, n_exp.
    """
    kind = kind.lower()
    if kind == "bfm":
        from expportrait.head.bfm import BFMHead
        return BFMHead.load(model_path, density=density, **kw)
    if kind in ("flame", "smplx"):
        from expportrait.head.flame import load_lbs_head
        if model_path is None:
            raise UserError(f"head '{kind}' needs --head-path (the licensed {kind.upper()} model files)")
        return load_lbs_head(kind, model_path, density=density, **kw)
    raise UserError(f"unknown head model '{kind}' (choose bfm, flame or smplx)")
