"""VertexOffsetMLP G: target neutral mesh + code q_i -> the target's dynamic offset Delta_f(i).

One network for all identities: identity enters only through the target's neutral mesh
V_neutral = V^s + Delta_g. Per vertex G sees

- Fourier features of the vertex's position on the head model's rest mesh (which vertex it is;
  the rest mesh is a constant of the head model, e.g. ``head(0, 0).dense``),
- the target's neutral geometry there: offset from the rest mesh, unit normal, mean curvature,
- a pooled identity code (mean over vertices of a per-vertex MLP of the above),

and the per-frame code q_i is broadcast to every vertex and combined with the vertex's MLP output
bilinearly: the MLP maps each vertex to D displacement vectors B_d(v) (one per code channel, in
the vertex's neutral tangent frame: two tangents + normal) and Delta_f(v, i) = sum_d q_id B_d(v).
So G is a per-vertex MLP whose last layer is modulated by the code: identity-adaptive
"blendshapes" that are a nonlinear function of the neutral geometry, driven by nonlinear,
temporally smooth codes from E. The MLP runs once per identity; per frame only a (D x 3) product
per vertex remains, so G scales to many vertices and frames.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from expportrait.head.geometry import apply_laplacian, uniform_laplacian, vertex_normals

MM = 1e-3


def fourier_features(x: Tensor, freqs: int, scale: float) -> Tensor:
    """x (..., 3) metres -> (..., 3 + 6 * freqs): x / scale, sin and cos of 2^k pi x / scale."""
    xn = x / scale
    k = (2.0 ** torch.arange(freqs, dtype=x.dtype, device=x.device)) * math.pi  # (freqs,)
    ang = (xn[..., None] * k).flatten(-2)  # (..., 3 * freqs)
    return torch.cat([xn, ang.sin(), ang.cos()], -1)


def tangent_frame(normal: Tensor) -> Tensor:
    """normal (..., 3) unit -> (..., 3, 3) orthonormal frame with columns (t1, t2, n)."""
    up = torch.zeros_like(normal)
    up[..., 1] = 1.0
    alt = torch.zeros_like(normal)
    alt[..., 0] = 1.0
    ref = torch.where((normal[..., 1:2].abs() > 0.9), alt, up)
    t1 = nn.functional.normalize(torch.cross(ref, normal, dim=-1), dim=-1, eps=1e-12)
    t2 = torch.cross(normal, t1, dim=-1)
    return torch.stack([t1, t2, normal], -1)


def neutral_geometry(neutral: Tensor, faces: Tensor, laplacian: Tensor | None = None
                     ) -> tuple[Tensor, Tensor]:
    """neutral (B, N, 3), faces (T, 3) -> (normals (B, N, 3) unit, curvature (B, N) in 1/m).

    Mean curvature from the uniform Laplacian: kappa = 2 (L x . n) / mean squared edge length,
    which keeps roughly the same value at every mesh density."""
    L = uniform_laplacian(faces.cpu(), neutral.shape[1]).to(neutral.device) if laplacian is None else laplacian
    n = vertex_normals(neutral, faces)                     # (B, N, 3)
    lx = apply_laplacian(L, neutral)                       # (B, N, 3)
    sq = (neutral * neutral).sum(-1, keepdim=True)         # (B, N, 1)
    h2 = (2.0 * (neutral * lx).sum(-1) - apply_laplacian(L, sq)[..., 0]).clamp_min(1e-12)  # (B, N)
    return n, 2.0 * (lx * n).sum(-1) / h2


class VertexOffsetMLP(nn.Module):
    """G(V_neutral, q) -> Delta_f.

    code_dim: D; hidden: per-vertex width; id_dim: pooled identity code width; pe_freqs, pe_scale:
    Fourier features of the rest position (octaves, metres); disp_scale: metres per unit of the
    neutral offset input; out_scale: metres per unit of output (1 mm).
    """

    def __init__(self, code_dim: int, hidden: int = 64, id_dim: int = 32, pe_freqs: int = 6,
                 pe_scale: float = 0.1, disp_scale: float = 5 * MM, out_scale: float = MM):
        super().__init__()
        self.pe_freqs, self.pe_scale = pe_freqs, pe_scale
        self.disp_scale, self.out_scale = disp_scale, out_scale
        in_dim = 3 + 6 * pe_freqs + 3 + 3 + 1
        self.id_net = nn.Sequential(nn.Linear(in_dim, hidden), nn.SiLU(), nn.Linear(hidden, id_dim))
        self.code_dim = code_dim
        self.vert = nn.Sequential(nn.Linear(in_dim + id_dim, hidden), nn.SiLU(),
                                  nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                  nn.Linear(hidden, code_dim * 3))

    def vertex_inputs(self, neutral: Tensor, rest: Tensor, faces: Tensor,
                      laplacian: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """neutral (B, N, 3) target V^s + Delta_g; rest (N, 3) head rest mesh; faces (T, 3)
        -> (inputs (B, N, C_in), tangent frames (B, N, 3, 3))."""
        n, kappa = neutral_geometry(neutral, faces, laplacian)
        B = neutral.shape[0]
        pe = fourier_features(rest, self.pe_freqs, self.pe_scale).expand(B, -1, -1)  # (B, N, C_pe)
        disp = (neutral - rest) / self.disp_scale                                   # (B, N, 3)
        curv = torch.tanh(kappa * 0.05)[..., None]                                   # (B, N, 1)
        return torch.cat([pe, disp, n, curv], -1), tangent_frame(n)

    def encode_vertices(self, inputs: Tensor, weight: Tensor | None = None) -> Tensor:
        """inputs (B, N, C_in); weight (N,) optional pooling weights -> per-vertex bases
        (B, N, D * 3) in the tangent frame."""
        per = self.id_net(inputs)                                   # (B, N, id_dim)
        if weight is None:
            ident = per.mean(1)                                     # (B, id_dim)
        else:
            w = weight.to(per)[None, :, None]
            ident = (per * w).sum(1) / w.sum(1).clamp_min(1e-6)
        ident = ident[:, None].expand(-1, inputs.shape[1], -1)      # (B, N, id_dim)
        return self.vert(torch.cat([inputs, ident], -1))            # (B, N, D * 3)

    def decode(self, feats: Tensor, frames: Tensor, codes: Tensor, chunk: int = 64) -> Tensor:
        """feats (B, N, D * 3) from ``encode_vertices``, frames (B, N, 3, 3), codes (B, F, D)
        -> Delta_f (B, F, N, 3) metres."""
        B, N = feats.shape[:2]
        local = feats.reshape(B, N, self.code_dim, 3)                         # (B, N, D, 3)
        basis = torch.einsum("bnij,bndj->bdni", frames, local) * self.out_scale  # (B, D, N, 3) head space
        basis = basis.reshape(B, self.code_dim, N * 3)                         # (B, D, N * 3)
        outs = [torch.bmm(codes[:, s:s + chunk], basis) for s in range(0, codes.shape[1], chunk)]
        return torch.cat(outs, 1).reshape(B, codes.shape[1], N, 3)           # (B, F, N, 3)

    def forward(self, neutral: Tensor, rest: Tensor, faces: Tensor, codes: Tensor,
                weight: Tensor | None = None) -> Tensor:
        """neutral (B, N, 3), rest (N, 3), faces (T, 3), codes (B, F, D) -> (B, F, N, 3) metres."""
        inputs, frames = self.vertex_inputs(neutral, rest, faces)
        return self.decode(self.encode_vertices(inputs, weight), frames, codes)
