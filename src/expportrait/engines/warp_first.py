"""``warp_first`` (the default engine): the reference frame warped at its own resolution by its
own head driven through the driver's expression (psi, jaw) and pose, holding the reference's own
Delta_g + Delta_f (G's Delta_f differs from the tracked one and tears the warp), over a still
background: the person (``engines.segment``) is warped, the background stays, and where the head
moved away from the background plate shows (the head painted out). The hair and ears follow the
head's similarity motion (``engines.warp_field``). Then the mouth (``engines.mouth``, off by
default) and, in self mode, the landmark alignment onto the driver (``engines.align``)."""
from __future__ import annotations

import numpy as np

from expportrait.engines.base import EngineInput
from expportrait.engines.mesh_warp import MeshWarp
from expportrait.engines.warp_field import expression_warp
from expportrait.tracking.io import HeadFit


class WarpFirst(MeshWarp):
    source_stages = ("base",)   # the reference's offsets are held: the photometric stage would
    #   only refine a shape the warp moves rigidly
    uses_transfer = False

    def drive(self, driven: HeadFit, source_fit: HeadFit, driving_fit: HeadFit, ref: int) -> HeadFit:
        driven.dynamic_offset = source_fit.dynamic_offset[ref][None].expand_as(
            driven.dynamic_offset).clone()
        return driven

    def warp(self, inp: EngineInput, cfg) -> np.ndarray:
        person = None
        if cfg.still_background:
            from expportrait.engines.segment import person_mask
            person = person_mask(inp.image)
        return expression_warp(inp.image, inp.ref_fit, inp.driven, inp.head, person=person)

    def refine(self, inp: EngineInput, cfg, frames: np.ndarray) -> np.ndarray:
        if not cfg.synthesize:
            return frames
        from expportrait.engines.mouth import learned_mouth
        return learned_mouth(self.parts, inp, cfg, frames)
