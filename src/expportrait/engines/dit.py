"""``full``: the paper's generator. The driven head's normal maps N^D and the reference crop with
its normal map N^R (``engines.conditions``) condition the Wan DiT (``generator``), which samples
the face crops clip by clip (``generator.longvideo.generate_crops``); they are pasted back into the
reference frame with its own head painted out. The paper's ablations are options of this engine:
``offsets="base_only"`` drives the base mesh (no Delta_g, Delta_f), ``offsets="direct_copy"``
pastes the driver's own Delta_f on the target instead of G's."""
from __future__ import annotations

from dataclasses import replace

import torch

from expportrait.data.crop import crop
from expportrait.engines.base import Engine, EngineInput, EngineOutput, Laps, Parts
from expportrait.engines.conditions import crop_conditions, paste_crops
from expportrait.errors import UserError
from expportrait.tracking.io import HeadFit

OFFSETS = ("personalized", "base_only", "direct_copy")


def _without_offsets(fit: HeadFit) -> HeadFit:
    fit.static_offset = torch.zeros_like(fit.static_offset)
    fit.dynamic_offset = torch.zeros_like(fit.dynamic_offset)
    return fit


class DiT(Engine):
    stochastic = True

    def __init__(self, parts: Parts, offsets: str = "personalized"):
        if offsets not in OFFSETS:
            raise UserError(f"offsets must be one of {', '.join(OFFSETS)}, got {offsets!r}")
        super().__init__(parts)
        self.offsets = offsets
        self.uses_transfer = offsets == "personalized"
        self.driver_offsets = offsets == "direct_copy"   # the driver fitted with its own Delta_f

    def drive(self, driven: HeadFit, source_fit: HeadFit, driving_fit: HeadFit, ref: int) -> HeadFit:
        if self.offsets == "base_only":
            return _without_offsets(driven)
        if self.offsets == "direct_copy":
            if driving_fit.dynamic_offset.shape != driven.dynamic_offset.shape:
                raise UserError("direct_copy needs source and driver fitted with the same head density")
            driven.dynamic_offset = driving_fit.dynamic_offset.clone()
        return driven

    def _warped(self, inp: EngineInput, boxes, size: int):
        """The reference warped by the driven head, cropped (F, S, S, 3) uint8: a residual_base
        "warp" generator's base (base_only drops the reference's offsets as well, so its warp
        compares base meshes with base meshes)."""
        from expportrait.engines.warp_field import expression_warp
        ref_fit = inp.ref_fit
        if self.offsets == "base_only":
            ref_fit = _without_offsets(ref_fit.frames(slice(0, 1)))
        return crop(expression_warp(inp.image, ref_fit, inp.driven, inp.head), boxes, size)

    def __call__(self, inp: EngineInput, cfg) -> EngineOutput:
        lap = times = Laps()

        from expportrait.generator.longvideo import generate_crops
        model, vae = self.parts.generator(), self.parts.vae()
        c = replace(cfg.crop, size=model.config.resolution)
        cond = crop_conditions(inp.head, inp.image, inp.ref_fit, inp.driven, c, eyes=cfg.eyes)
        warped = self._warped(inp, cond["boxes"], c.size) if model.config.residual_base == "warp" else None
        lap("conditions")
        crops = generate_crops(model, vae, cond["ref_crop"], cond["ref_normal"], cond["pose_normals"],
                               warped=warped, steps=inp.steps or cfg.steps, seed=inp.seed,
                               window=cfg.window, cfg_scale=cfg.cfg_scale, guide=cfg.guide,
                               sampler=cfg.sampler, device=self.parts.device)    # (F, S, S, 3)
        lap("generate")
        frames, background = paste_crops(inp.image, cond, crops, c, clear=cfg.clear_source_head)
        lap("paste_back")
        return EngineOutput(frames=frames, boxes=cond["boxes"], crops=crops, ref_crop=cond["ref_crop"],
                            ref_normal=cond["ref_normal"], pose_normals=cond["pose_normals"],
                            background=background, timings=times)
