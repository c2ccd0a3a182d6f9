"""Stage ``personalized``: joint optimisation of the static offset Delta_g and the per-frame
dynamic offset Delta_f (with per-subject albedo and per-frame SH lighting) by differentiable
rendering, on top of the ``base`` fit.

Losses: photometric L1 on the face region, landmarks of the detailed mesh, the paper's normal
and depth L1 when target maps are given, and the regularisers that separate identity from
expression: region masks (Delta_f only on the face region), a magnitude penalty on Delta_f (what
is constant over time moves into Delta_g), Laplacian smoothness of both offsets and temporal
smoothness of Delta_f.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F_
from torch import Tensor

from expportrait.head.geometry import apply_laplacian, head_to_camera, uniform_laplacian, vertex_normals
from expportrait.render.camera import project, to_screen
from expportrait.render.rasterize import perspective_correct, pixel_barycentrics, rasterize
from expportrait.render.shading import sh_basis
from expportrait.tracking import losses as L
from expportrait.tracking.config import PersonalizedStageConfig
from expportrait.data.crop import crop, crop_cameras, face_masks, mesh_boxes
from expportrait.tracking.fit import BaseFit, face_scale, landmark_weights


@dataclass
class Personalized:
    static_offset: Tensor   # (N_s, 3)
    dynamic_offset: Tensor  # (F, N_s, 3)
    albedo: Tensor          # (N_s, 3)
    sh: Tensor              # (F, 9, 3)
    expression: Tensor      # (F, n_exp) refined
    rotation: Tensor        # (F, 3) refined
    translation: Tensor     # (F, 3) refined


def masked_psnr(render: Tensor, target: Tensor, mask: Tensor) -> float:
    mse = (((render - target) ** 2) * mask).sum() / (3 * mask.sum()).clamp_min(1.0)
    return float(10 * torch.log10(1.0 / mse.clamp_min(1e-12)))


class PhotometricProblem:
    """Everything fixed during the personalized stage: crops, masks, cameras, head, topology."""

    def __init__(self, head, frames: np.ndarray, points: np.ndarray, lmk68: Tensor, valid: Tensor,
                 base: BaseFit, cfg: PersonalizedStageConfig, device):
        boxes = mesh_boxes(points[..., :2])
        # render no finer than the input: small faces (e.g. 176x144 video) get a smaller crop
        S = int(min(cfg.crop_size, max(32, 8 * round(float(np.median(boxes[:, 2])) / 8))))
        self.size = S
        self.head, self.cfg, self.device = head, cfg, device
        self.target = (torch.from_numpy(crop(frames, boxes, S, linear=True)).permute(0, 3, 1, 2).float()
                       / 255.0).to(device)                                  # (F, 3, S, S)
        if points.shape[1] == 478:  # MediaPipe: face oval minus eyes and mouth opening
            self.region = torch.from_numpy(face_masks(points[..., :2], boxes, S)).float()[:, None].to(device)  # (F, 1, S, S)
        else:  # other landmark sets: the whole crop (rendered coverage still masks)
            self.region = torch.ones(len(frames), 1, S, S, device=device)
        self.cam_full = base.camera.to(device)
        self.cam_crop = torch.as_tensor(crop_cameras(base.camera.cpu().numpy(), boxes, S),
                                        dtype=base.camera.dtype).to(device)
        self.lmk68, self.valid = lmk68.to(device), valid.to(device)
        self.scale = face_scale(self.lmk68)
        self.lmk_w = landmark_weights(0.3).to(device)
        self.faces = head.faces.to(device)
        self.lap = uniform_laplacian(head.faces.cpu(), head.num_dense).to(device)
        self.face_region = head.regions["face"].to(device).float()[:, None]  # (N_s, 1)
        self.shape = base.shape.to(device)
        self.jaw = base.jaw.to(device)
        self.face_id = None

    def geometry(self, expression, static, dynamic_idx, idx):
        """Detailed head-space mesh of frames ``idx``: (B, N_s, 3) = V^s + Delta_g (N_s, 3) +
        Delta_f of those frames ``dynamic_idx`` (B, N_s, 3)."""
        dense = self.head.dense_vertices(self.shape.expand(len(idx), -1), expression[idx],
                                         self.jaw[idx] if self.head.has_jaw else None)
        return dense + static[None] + dynamic_idx

    def rasterize(self, verts_head, rotation, translation, idx, refresh: bool) -> dict:
        """The geometry half of rendering frames ``idx`` (``shade`` is the other): covered
        pixels (b, y, x) (P,) each, their triangles (P, 3), perspective-correct barycentrics
        (P, 3), camera-space vertex normals (B, N_s, 3) and vertices (B, N_s, 3), coverage
        (B, 1, S, S). Differentiable in the vertices.
        Visibility (face ids) is recomputed when ``refresh``; barycentrics are always live and
        all per-pixel work runs on the covered pixels only."""
        cam = head_to_camera(verts_head, rotation[idx], translation[idx])  # (B, N_s, 3)
        screen = to_screen(cam, self.cam_crop[idx])
        S = self.size
        if self.face_id is None:
            self.face_id = torch.full((len(self.target), S, S), -1, dtype=torch.long, device=self.device)
            refresh = True
        if refresh:
            with torch.no_grad():
                self.face_id[idx] = rasterize(screen.detach(), self.faces, S, S).face_id
        fid = self.face_id[idx]
        b, y, x = torch.nonzero(fid >= 0, as_tuple=True)  # covered pixels, (P,) each
        tri = self.faces[fid[b, y, x]]  # (P, 3)
        tri_screen = screen[b[:, None], tri]  # (P, 3, 3) pixel x, y, depth
        bary, _ = perspective_correct(pixel_barycentrics(tri_screen, x.to(screen.dtype), y.to(screen.dtype)),
                                      tri_screen[..., 2].clamp_min(1e-6))  # (P, 3)
        normals = vertex_normals(cam, self.faces) * torch.tensor([1.0, -1.0, -1.0], device=self.device)
        return {"b": b, "y": y, "x": x, "tri": tri, "bary": bary, "normals": normals, "cam": cam,
                "cover": (fid >= 0)[:, None].float()}

    def shade(self, r: dict, albedo, sh, idx):
        """``rasterize``'s output shaded with albedo (N_s, 3) and SH (F, 9, 3) of frames ``idx``
        -> (image (B, 3, S, S), coverage (B, 1, S, S), camera-space vertices (B, N_s, 3))."""
        b, y, x, tri, bary, normals = r["b"], r["y"], r["x"], r["tri"], r["bary"], r["normals"]
        B, S = len(idx), self.size
        attrs = torch.cat([normals, albedo[None].expand(B, -1, -1)], -1)  # (B, N_s, 6)
        pix = (attrs[b[:, None], tri] * bary[..., None]).sum(1)  # (P, 6)
        n = F_.normalize(pix[:, :3], dim=-1, eps=1e-8)
        irr = (sh_basis(n)[:, :, None] * sh[idx][b]).sum(1)  # (P, 3)
        colour = pix[:, 3:] * irr
        img = torch.zeros(B, S, S, 3, device=self.device, dtype=colour.dtype)
        img = img.index_put((b, y, x), colour)
        return img.permute(0, 3, 1, 2), r["cover"], r["cam"]

    def landmarks(self, verts_head, rotation, translation, idx):
        lmk = verts_head[:, self.head.landmark_index]
        return project(head_to_camera(lmk, rotation[idx], translation[idx]), self.cam_full[idx])


def init_albedo(problem: PhotometricProblem, verts: Tensor, rotation: Tensor, translation: Tensor) -> Tensor:
    """Per-vertex colour averaged over frames where the vertex faces the camera: (N_s, 3)."""
    with torch.no_grad():
        cam = head_to_camera(verts, rotation, translation)
        uv = project(cam, problem.cam_crop)  # (F, N_s, 2)
        S = problem.size
        grid = (uv + 0.5) / S * 2 - 1
        col = F_.grid_sample(problem.target, grid[:, :, None], align_corners=False)[..., 0]  # (F, 3, N_s)
        facing = (-vertex_normals(cam, problem.faces)[..., 2]).clamp_min(0)  # (F, N_s)
        w = facing * problem.valid[:, None].float()
        alb = (col * w[:, None]).sum(0) / w.sum(0).clamp_min(1e-6)[None]
        return alb.T.clamp(0.02, 1.0).contiguous()


def fit_personalized(problem: PhotometricProblem, base: BaseFit,
                     normal_targets: Tensor | None = None, depth_targets: Tensor | None = None,
                     progress=None) -> tuple[Personalized, dict]:
    cfg, dev, head = problem.cfg, problem.device, problem.head
    Fn = base.expression.shape[0]
    t0 = time.perf_counter()
    expression = base.expression.clone().to(dev).requires_grad_(True)
    rotation = base.rotation.clone().to(dev).requires_grad_(True)
    translation = base.translation.clone().to(dev).requires_grad_(True)
    # Offsets are optimised on the coarse mesh, upsampled to V^s with the head's barycentric
    # B(.) and smoothed by a few Laplacian steps on the dense mesh: per-vertex Adam noise would
    # otherwise show up as bumps in the normal maps (cf. "large steps in inverse rendering").
    Nc = head.num_coarse
    static_raw = torch.zeros(1, Nc, 3, device=dev, requires_grad=True)
    dynamic_raw = torch.zeros(Fn, Nc, 3, device=dev, requires_grad=True)
    k_smooth = cfg.offset_smoothing_iters

    def smooth(x: Tensor) -> Tensor:  # (B, N_c, 3) -> (B, N_s, 3)
        x = head.upsample(x)
        for _ in range(k_smooth):
            x = 0.5 * x + 0.5 * (x - apply_laplacian(problem.lap, x))
        return x

    def offsets(idx):
        return smooth(static_raw)[0], smooth(dynamic_raw[idx]) * problem.face_region

    all_idx = torch.arange(Fn, device=dev)
    with torch.no_grad():
        static, dynamic = offsets(all_idx)
        v0 = problem.geometry(expression, static, dynamic, all_idx)
    albedo = init_albedo(problem, v0, rotation, translation).requires_grad_(True)
    c0 = float(sh_basis(torch.tensor([[0.0, 0.0, 1.0]]))[0, 0])
    sh0 = torch.zeros(Fn, 9, 3, device=dev)
    sh0[:, 0] = 1.0 / c0
    sh = sh0.requires_grad_(True)

    def step_terms(idx, refresh, geometry: bool, raster: dict | None = None):
        if raster is None:  # ``raster``: a fixed geometry rasterised once (appearance-only steps)
            static, dyn_idx = offsets(idx)
            verts = problem.geometry(expression, static, dyn_idx, idx)
            raster = problem.rasterize(verts, rotation, translation, idx, refresh)
        img, cover, cam = problem.shade(raster, albedo, sh, idx)
        m = problem.region[idx] * cover
        t = {"loss/photo": cfg.w_photo * L.photometric_loss(img, problem.target[idx], m),
             "reg/sh_smooth": cfg.w_sh_smooth * L.temporal_smoothness(sh[idx], order=1),
             # smooth albedo: shading detail has to be explained by geometry, not painted on
             "reg/albedo_lap": cfg.w_albedo_lap * L.laplacian_smoothness(problem.lap, albedo[None])}
        if geometry:
            lmk = problem.landmarks(verts, rotation, translation, idx)
            w = torch.where(problem.valid[idx], 1.0, 0.05)[:, None] * problem.lmk_w[None]
            t["loss/landmark"] = cfg.w_landmark * L.landmark_loss(lmk, problem.lmk68[idx], w, problem.scale[idx])
            t["reg/static_lap"] = cfg.w_static_lap * L.laplacian_smoothness(problem.lap, static[None])
            t["reg/static_mag"] = cfg.w_static_mag * L.offset_magnitude(static)
            t["reg/dyn_mag"] = cfg.w_dyn_mag * L.offset_magnitude(dyn_idx)
            t["reg/dyn_lap"] = cfg.w_dyn_lap * L.laplacian_smoothness(problem.lap, dyn_idx)
            t["reg/dyn_temporal"] = cfg.w_dyn_temporal * L.temporal_smoothness(dyn_idx, order=1)
            t["reg/exp_drift"] = 1e-2 * (expression[idx] - base.expression[idx].to(dev)).pow(2).mean()
            if normal_targets is not None or depth_targets is not None:
                from expportrait.render.maps import render as render_maps
                out = render_maps(head_to_camera(verts, rotation[idx], translation[idx]), problem.faces,
                                  problem.cam_crop[idx], problem.size, problem.size,
                                  outputs=("normal", "depth", "mask"))
                mm = out.mask * problem.region[idx]
                if normal_targets is not None:
                    t["loss/normal"] = cfg.w_normal * L.map_l1(out.normal, normal_targets[idx].to(dev), mm)
                if depth_targets is not None:
                    t["loss/depth"] = cfg.w_depth * L.map_l1(out.depth, depth_targets[idx].to(dev), mm)
        return t, img, m

    def evaluate():
        with torch.no_grad():
            _, img, m = step_terms(all_idx, True, False)
        return img, m

    def optimise(opt, iters: int, terms_at) -> dict:
        terms = {}
        for it in range(iters):
            opt.zero_grad(set_to_none=True)
            terms = terms_at(it)
            sum(terms.values()).backward()
            opt.step()
            with torch.no_grad():
                albedo.clamp_(0.0, 1.0)
            if progress:
                progress(1)
        return terms

    # (a) appearance only on the base geometry -> the base stage's photometric PSNR
    with torch.no_grad():  # the base geometry does not move here: rasterised once
        fixed = problem.rasterize(v0, rotation, translation, all_idx, True)
    optimise(torch.optim.Adam([albedo, sh], lr=cfg.lr_appearance), cfg.appearance_iters,
             lambda it: step_terms(all_idx, False, False, fixed)[0])
    img_base, m_base = evaluate()
    eval_mask = m_base  # fixed evaluation pixels: face region covered by the base mesh

    # (b) joint offsets + appearance + small pose/expression refinement
    opt = torch.optim.Adam([{"params": [static_raw, dynamic_raw], "lr": cfg.lr_offset},
                            {"params": [albedo, sh], "lr": cfg.lr_appearance * 0.5},
                            {"params": [expression], "lr": cfg.lr_params * 5},
                            {"params": [rotation, translation], "lr": cfg.lr_params * 0.1}])
    bs = cfg.frames_per_step or Fn
    gen = torch.Generator().manual_seed(0)

    def joint_terms(it):
        idx = all_idx if bs >= Fn else torch.randperm(Fn, generator=gen)[:bs].to(dev)
        return step_terms(idx, it % cfg.rerasterize_every == 0, True)[0]

    terms = optimise(opt, cfg.iters, joint_terms)
    img_pers, _ = evaluate()
    with torch.no_grad():
        static, dynamic = offsets(all_idx)
    report = {
        "psnr_base": masked_psnr(img_base, problem.target, eval_mask),
        "psnr_personalized": masked_psnr(img_pers, problem.target, eval_mask),
        "losses": {k: float(v.detach()) for k, v in terms.items()},
        "seconds": time.perf_counter() - t0,
    }
    res = Personalized(static_offset=static.detach(), dynamic_offset=dynamic.detach(),
                       albedo=albedo.detach(), sh=sh.detach(), expression=expression.detach(),
                       rotation=rotation.detach(), translation=translation.detach())
    return res, report
