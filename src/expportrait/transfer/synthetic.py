"""Synthetic identities with identity-dependent expression detail (ground truth known).

Each identity is a random beta plus a random smooth static offset Delta_g on a head model. Its
dynamic offset is a *nonlinear, identity-dependent* function of psi, defined here:

    Delta_f(v, i) = n(v) * g(s) * sum_k amp_k * a_k(psi_i) * window_k(v) * depth(v) * cos(phase_k(v))

- a_k(psi) = softplus(3 w_k . psi - 2) - softplus(-2): wrinkle channel k switches on nonlinearly
  (w_k fixed unit vectors: the "anatomy" of the synthetic world, shared by all identities);
- window_k(v): a Gaussian around an anchor placed from the rest-mesh landmarks (forehead,
  glabella, crow's feet, nasolabial folds, chin);
- phase_k(v) = 2 pi ((p0(v) - c_k) . d_k) / (lambda_k s): wrinkle spacing follows the face width
  ratio s of the neutral mesh (landmarks 0-16), and so does a global amplitude factor
  g(s) = clamp(1 + 8 (s - 1), 0.4, 1.6) (identity code, pooled over the whole face);
- depth(v) = 0.1 + 2.4 sigmoid(dn(v) / 1.5 mm): deeper where the neutral surface lies outside
  the mean face (dn = (V_neutral - rest) . n along the rest normal), so Delta_g and beta matter;
- n(v): the target's own neutral normal.

Copying another identity's Delta_f is therefore wrong (different depth, spacing, phase), zero is
wrong, but all of it is a function of the neutral mesh and psi, so G can learn it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from expportrait.head.geometry import vertex_normals
from expportrait.render.camera import default_camera, project
from expportrait.head.geometry import head_to_camera
from expportrait.tracking.io import HeadFit
from expportrait.transfer.model import neutral_mesh, rest_mesh

MM = 1e-3
# (anchor landmarks, anchor shift (m), direction, wavelength (m), window sigma (m), amplitude (m))
CHANNELS = (
    ((19, 24), (0.0, 0.022, 0.0), (0.0, 1.0, 0.0), 12 * MM, 26 * MM, 1.2 * MM),   # forehead
    ((21, 22), (0.0, 0.006, 0.0), (1.0, 0.0, 0.0), 11 * MM, 14 * MM, 1.2 * MM),   # glabella
    ((36,), (-0.012, 0.0, 0.0), (0.0, 1.0, 0.0), 11 * MM, 14 * MM, 1.0 * MM),     # right crow's feet
    ((45,), (0.012, 0.0, 0.0), (0.0, 1.0, 0.0), 11 * MM, 14 * MM, 1.0 * MM),      # left crow's feet
    ((31, 48), (-0.004, 0.0, 0.0), (0.8, 0.6, 0.0), 18 * MM, 16 * MM, 1.5 * MM),  # right nasolabial
    ((35, 54), (0.004, 0.0, 0.0), (-0.8, 0.6, 0.0), 18 * MM, 16 * MM, 1.5 * MM),  # left nasolabial
    ((8,), (0.0, 0.016, 0.0), (1.0, 0.0, 0.0), 11 * MM, 14 * MM, 1.0 * MM),       # chin
)


@dataclass(frozen=True)
class SyntheticConfig:
    beta_std: float = 1.0          # identity coefficients ~ N(0, beta_std)
    static_bumps: int = 16         # Gaussian bumps of the random smooth Delta_g
    static_amp: float = 3 * MM     # max bump height along the rest normal
    frames: int = 64               # frames per synthetic clip
    fps: float = 30.0
    exp_std: float = 1.0           # psi amplitude (std units)
    world_seed: int = 1234         # fixes w_k (the synthetic world's anatomy)


class SyntheticWorld:
    """Identity-dependent expression detail on a head model (see module docstring)."""

    def __init__(self, head, cfg: SyntheticConfig = SyntheticConfig()):
        self.head, self.cfg = head, cfg
        self.rest = rest_mesh(head)                                   # (N, 3)
        self.rest_normal = vertex_normals(self.rest[None], head.faces)[0]
        lm = self.rest[head.landmark_index]                           # (68, 3)
        self.rest_width = float((lm[0] - lm[16]).norm())
        g = torch.Generator().manual_seed(cfg.world_seed)
        w = torch.randn(len(CHANNELS), head.n_exp, generator=g)
        self.w = w / w.norm(dim=1, keepdim=True)                      # (K, n_exp)
        self.anchor = torch.stack([lm[list(ids)].mean(0) + torch.tensor(sh) for ids, sh, *_ in CHANNELS])
        self.direction = torch.nn.functional.normalize(torch.tensor([c[2] for c in CHANNELS]), dim=1)
        self.wavelength = torch.tensor([c[3] for c in CHANNELS])
        self.sigma = torch.tensor([c[4] for c in CHANNELS])
        self.amp = torch.tensor([c[5] for c in CHANNELS])
        self.face = head.regions["face"].float()

    def identity(self, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        """-> (shape (n_shape,), static_offset (N, 3) metres): random beta, smooth Delta_g."""
        cfg = self.cfg
        shape = torch.randn(self.head.n_shape, generator=gen) * cfg.beta_std
        N = self.rest.shape[0]
        idx = torch.randint(0, N, (cfg.static_bumps,), generator=gen)
        amp = (torch.rand(cfg.static_bumps, generator=gen) * 2 - 1) * cfg.static_amp
        width = (15 + 20 * torch.rand(cfg.static_bumps, generator=gen)) * MM
        d2 = ((self.rest[:, None] - self.rest[idx][None]) ** 2).sum(-1)  # (N, bumps)
        height = (amp * torch.exp(-d2 / (2 * width ** 2))).sum(1)        # (N,)
        return shape, height[:, None] * self.rest_normal

    def expression(self, gen: torch.Generator, frames: int | None = None) -> Tensor:
        """-> psi (F, n_exp): smooth random sequence (sums of sinusoids, 0.1-1.2 Hz)."""
        F = frames or self.cfg.frames
        t = torch.arange(F, dtype=torch.float32)[:, None] / self.cfg.fps   # (F, 1)
        n = self.head.n_exp
        out = torch.zeros(F, n)
        for _ in range(3):
            f = 0.1 + 1.1 * torch.rand(n, generator=gen)
            ph = 2 * math.pi * torch.rand(n, generator=gen)
            out += torch.sin(2 * math.pi * f * t + ph) * torch.rand(n, generator=gen)
        return out * self.cfg.exp_std * 1.2

    @torch.no_grad()
    def detail(self, shape: Tensor, static_offset: Tensor, expression: Tensor) -> Tensor:
        """shape (n_shape,), static_offset (N, 3), expression (F, n_exp) -> Delta_f (F, N, 3) metres."""
        neutral = neutral_mesh(self.head, shape[None], static_offset[None])[0]  # (N, 3)
        normal = vertex_normals(neutral[None], self.head.faces)[0]             # (N, 3)
        lm = neutral[self.head.landmark_index]
        s = float((lm[0] - lm[16]).norm()) / self.rest_width                   # face width ratio
        dn = ((neutral - self.rest) * self.rest_normal).sum(-1)                # (N,) metres
        depth = 0.1 + 2.4 * torch.sigmoid(dn / (1.5 * MM))                     # (N,)
        rel = self.rest[None] - self.anchor[:, None]                           # (K, N, 3)
        window = torch.exp(-(rel ** 2).sum(-1) / (2 * self.sigma[:, None] ** 2))  # (K, N)
        gain = min(max(1.0 + 8.0 * (s - 1.0), 0.4), 1.6)
        phase = 2 * math.pi * (rel * self.direction[:, None]).sum(-1) / (self.wavelength[:, None] * s)
        field = gain * self.amp[:, None] * window * torch.cos(phase) * depth * self.face  # (K, N)
        x = expression @ self.w.T                                              # (F, K)
        act = torch.nn.functional.softplus(3 * x - 2) - torch.nn.functional.softplus(torch.tensor(-2.0))
        return (act @ field)[..., None] * normal                               # (F, N, 3)

    @torch.no_grad()
    def make_fit(self, gen: torch.Generator, frames: int | None = None, identity=None,
                 expression: Tensor | None = None) -> HeadFit:
        """A fit record of a synthetic subject (frontal pose, default 256x256 camera)."""
        shape, static = identity if identity is not None else self.identity(gen)
        psi = self.expression(gen, frames) if expression is None else expression
        F = psi.shape[0]
        dyn = self.detail(shape, static, psi)
        rot = torch.zeros(F, 3)
        trans = torch.tensor([0.0, 0.0, 0.6]).expand(F, 3).clone()
        cam = default_camera(256, 256, batch=F)
        out = self.head(shape.expand(F, -1), psi)
        lmk = out.landmarks + static[self.head.landmark_index] + dyn[:, self.head.landmark_index]
        lmk2d = project(head_to_camera(lmk, rot, trans), cam)
        N = self.rest.shape[0]
        return HeadFit(shape=shape, static_offset=static, expression=psi, jaw=torch.zeros(F, 3),
                       rotation=rot, translation=trans, camera=cam, dynamic_offset=dyn,
                       albedo=torch.full((N, 3), 0.7), sh=torch.zeros(F, 9, 3),
                       valid=torch.ones(F, dtype=torch.bool), landmarks68_2d=lmk2d,
                       meta={"head": self.head.name, "density": "synthetic", "image_size": [256, 256],
                             "fps": self.cfg.fps, "n_shape": self.head.n_shape,
                             "n_exp": self.head.n_exp, "num_dense": N, "synthetic": True})
