"""Synthetic recovery: render a head with known beta, psi, pose, Delta_g and Delta_f, fit it from the
rendered frames (+ the true 2D landmarks) and measure how well the tracker recovers the detailed
vertices. ``tests/test_tracking_synthetic.py`` holds the tracker to its tolerance with it and
``benchmarks/tracking.py`` scores photometric-stage schedules with it."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from expportrait.detection.landmarks import LandmarkTrack
from expportrait.head import load_head
from expportrait.head.geometry import apply_laplacian, euler_to_axis_angle, head_to_camera, uniform_laplacian
from expportrait.render.camera import project
from expportrait.render.maps import render
from expportrait.tracking.config import PersonalizedStageConfig, TrackConfig
from expportrait.tracking.fit import make_camera
from expportrait.tracking.track import track_video


def smooth_field(L, n: int, g: torch.Generator, scale: float, iters: int) -> torch.Tensor:
    """A random (n, 3) field smoothed by ``iters`` Laplacian steps (``L``: ``uniform_laplacian``),
    scaled to a mean norm of ``scale``."""
    x = torch.randn(1, n, 3, generator=g)
    for _ in range(iters):
        x = x - 0.5 * apply_laplacian(L, x)
    return x[0] / x[0].norm(dim=-1).mean() * scale


def synthetic_recovery(personalized: PersonalizedStageConfig | None = None) -> dict:
    """Fit 4 rendered frames of a known head (+ its true 2D landmarks) with the given
    personalized-stage schedule -> vertex errors (mm) of the base and personalized fits,
    offset correlation, PSNRs: {"e_base", "e_pers", "corr", "psnr_base", "psnr_pers"}."""
    head = load_head("bfm", density="coarse")
    g = torch.Generator().manual_seed(1)
    F, H, W, N = 4, 224, 224, head.num_dense
    L = uniform_laplacian(head.faces, N)
    face = head.regions["face"]
    shape = torch.randn(head.n_shape, generator=g) * 0.7
    expr = torch.randn(F, head.n_exp, generator=g) * 0.8
    rot = euler_to_axis_angle(torch.linspace(-0.25, 0.25, F), torch.linspace(0.1, -0.1, F), torch.zeros(F))
    trans = torch.tensor([0.0, 0.0, 0.6]).expand(F, 3).clone()
    cam = make_camera(F, H, W, 30.0)
    static = smooth_field(L, N, g, 0.003, 80)  # Delta_g: 3 mm mean
    D1, D2 = smooth_field(L, N, g, 0.0025, 80), smooth_field(L, N, g, 0.0025, 80)
    ph = torch.linspace(0, 1.5, F)[:, None, None]
    dyn = (torch.sin(ph) * D1 + torch.cos(ph) * D2) * face[:, None].float()  # Delta_f(i) on the face
    V = head(shape.expand(F, -1), expr).dense + static + dyn
    vc = head_to_camera(V, rot, trans)
    alb = (0.55 + 0.2 * smooth_field(L, N, g, 1.0, 60)).clamp(0.05, 1)
    sh = torch.zeros(F, 9, 3)
    sh[:, 0], sh[:, 1], sh[:, 2], sh[:, 3] = 0.7, 0.15, 0.3, 0.3
    out = render(vc, head.faces, cam, H, W, albedo=alb[None].expand(F, -1, -1), sh=sh, outputs=("shaded",))
    frames = (out.shaded.clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
    lmk = project(head_to_camera(V[:, head.landmark_index], rot, trans), cam)
    track = LandmarkTrack(points=lmk.numpy(), valid=np.ones(F, bool), size=(H, W))

    cfg = TrackConfig(density="coarse", personalized=personalized or replace(
        PersonalizedStageConfig(), crop_size=128, appearance_iters=30, iters=80))
    fit, rep = track_video(frames, 25.0, cfg, head=head, landmarks=track)
    base_fit, _ = track_video(frames, 25.0, replace(cfg, stages=("base",)), head=head, landmarks=track)

    def centred_error_mm(f):
        v = head(f.shape.expand(F, -1), f.expression).dense + f.static_offset + f.dynamic_offset
        c = head_to_camera(v, f.rotation, f.translation)
        a = c - c[:, face].mean(1, keepdim=True)
        b = vc - vc[:, face].mean(1, keepdim=True)
        return float((a - b).norm(dim=-1)[:, face].mean() * 1000)

    e_base, e_pers = centred_error_mm(base_fit), centred_error_mm(fit)
    fitted = (head(fit.shape.expand(F, -1), fit.expression).dense + fit.static_offset + fit.dynamic_offset
              - head(shape.expand(F, -1), expr).dense)[:, face].flatten()
    corr = float(torch.corrcoef(torch.stack([fitted, (static + dyn)[:, face].flatten()]))[0, 1])
    st = rep["stages"]
    return {"e_base": e_base, "e_pers": e_pers, "corr": corr, "psnr_base": st["base"]["photometric_psnr"],
            "psnr_pers": st["personalized"]["photometric_psnr"]}
