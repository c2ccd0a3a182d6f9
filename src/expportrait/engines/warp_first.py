"""``warp_first`` (the default engine): the reference frame warped at its own resolution by its
own head driven through the driver's expression (psi, jaw) and pose, holding the reference's own
Delta_g + Delta_f (G's Delta_f differs from the tracked one and tears the warp), over a still
background: the person (``engines.segment``) is warped, the background stays, and where the head
moved away from the background plate shows (the head painted out). The hair and ears follow the
head's similarity motion (``engines.warp_field``). Then the open mouth (``engines.mouth``: by
default, where it opens wider than the source's, the driver's teeth and tongue, coloured like the
source's own teeth if it shows some; a video source's own frames first, ``engines.mouth_bank``), the driver's
blinks and open eyes (``engines.eyes``) and, in self mode, the landmark alignment onto the driver (``engines.align``)."""
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
    driver_mouths = ("auto", "driver", "learned")   # the mouth sources that carry the driver's mouth

    def drive(self, driven: HeadFit, source_fit: HeadFit, driving_fit: HeadFit, ref: int) -> HeadFit:
        driven.dynamic_offset = source_fit.dynamic_offset[ref][None].expand_as(
            driven.dynamic_offset).clone()
        return driven

    def warp(self, inp: EngineInput, cfg, stats: dict) -> np.ndarray:
        person = None
        if cfg.still_background:
            from expportrait.engines.segment import person_mask
            person = person_mask(inp.image)
        return expression_warp(inp.image, inp.ref_fit, inp.driven, inp.head, person=person, stats=stats)

    def wants_driver_landmarks(self, mode: str, cfg) -> bool:
        return (super().wants_driver_landmarks(mode, cfg) or "eyes" in cfg.regions
                or cfg.mouth_source in self.driver_mouths)

    def refine(self, inp: EngineInput, cfg, frames: np.ndarray) -> np.ndarray:
        """What the warp cannot show: the open mouth (``cfg.mouth_source``, ``engines.mouth``; a
        video source's own first, ``engines.mouth_bank``; ``learned``: the driver's composite
        refined by the generator) and, with the "eyes" region, the driver's
        blinks and a shut-eyed source's opened eyes (``engines.eyes``)."""
        from expportrait.engines import eyes, mouth, own_teeth
        target = inp.driven.landmarks68_2d.numpy()                                # (F, 68, 2)
        own = inp.ref_fit.landmarks68_2d[0].numpy()                               # (68, 2)
        drv, src = inp.driver_landmarks, cfg.mouth_source
        taken = np.zeros(len(target), bool)                                       # own frames' mouth
        if src in ("auto", "source") and inp.source_frames is not None and inp.source_landmarks is not None:
            from expportrait.engines.mouth_bank import carry_own_mouth
            teeth = None if drv is None else np.array([mouth.teeth_share(f, lm) if ok else np.nan for f, lm, ok
                                                       in zip(inp.driver_frames, drv.ibug68, drv.valid)])
            frames, pick = carry_own_mouth(frames, target, inp.source_frames, inp.source_landmarks,
                                           mouth.gate(target, own), own, inp.source_reference, teeth)
            taken = pick >= 0
        if drv is not None and src in self.driver_mouths:
            weight = mouth.gate(target, own) * np.asarray(drv.valid, np.float64) * ~taken
            teeth = None
            if mouth.shows_teeth(inp.image, own):         # the driver's teeth coloured like the source's
                theirs = mouth.teeth_colour(inp.driver_frames, drv.ibug68, drv.valid)
                ours = mouth.teeth_colour(inp.image[None], own[None])
                teeth = None if theirs is None or ours is None else (ours, theirs)
            frames = mouth.carry_driver_mouth(frames, target, inp.driver_frames, drv.ibug68, weight, teeth=teeth)
            if teeth is not None:                         # its upper teeth stay on its upper lip
                frames = own_teeth.keep_upper_teeth(frames, target, inp.image, own, weight)
        if src == "learned":                              # the generator refines that composite
            frames = mouth.learned_mouth(self.parts, inp, cfg, frames)
        if drv is not None and "eyes" in cfg.regions:
            frames = eyes.follow_lids(frames, target, own, drv.ibug68, drv.valid)
            measured = eyes.measured_landmarks(inp.image, own)                    # shut eyes open
            if measured is not None:
                frames = eyes.open_eyes(frames, target, measured, own, inp.driver_frames, drv.ibug68, drv.valid)
        return frames

    def wants_mouth_bank(self, cfg) -> bool:
        return cfg.mouth_source in ("auto", "source")
