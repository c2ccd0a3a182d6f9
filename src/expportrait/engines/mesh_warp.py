"""``mesh_warp``: the reference frame warped at its own resolution by the head the full method
drives (the transfer model's Delta_f; ``engines.warp_field``), no generator. In self mode
(``cfg.align_landmarks``) each frame is then moved onto the driver's landmarks
(``engines.align``). ``warp_first`` is this engine with its own offsets, a still background and
its mouth."""
from __future__ import annotations


import numpy as np

from expportrait.data.crop import crop
from expportrait.engines.align import align_to_driver
from expportrait.engines.base import Engine, EngineInput, EngineOutput, Laps
from expportrait.engines.conditions import crop_conditions
from expportrait.engines.warp_field import expression_warp


class MeshWarp(Engine):
    @staticmethod
    def aligns(mode: str, cfg) -> bool:
        """Self mode (absolute pose): the frames are moved onto the driver's landmarks."""
        return cfg.align_landmarks and mode == "self"

    def wants_driver_landmarks(self, mode: str, cfg) -> bool:
        return self.aligns(mode, cfg)

    def warp(self, inp: EngineInput, cfg, stats: dict) -> np.ndarray:
        """-> (F, H, W, 3) uint8: the reference warped by the driven head (``stats``: the warp's
        "min_jacobian")."""
        return expression_warp(inp.image, inp.ref_fit, inp.driven, inp.head, stats=stats)

    def refine(self, inp: EngineInput, cfg, frames: np.ndarray) -> np.ndarray:
        """What the warp cannot show, filled in (here: nothing)."""
        return frames

    def __call__(self, inp: EngineInput, cfg) -> EngineOutput:
        lap = times = Laps()

        stats = {}
        frames = self.warp(inp, cfg, stats)                                       # (F, H, W, 3)
        lap("warp")
        frames = self.refine(inp, cfg, frames)
        lap("refine")
        cond = crop_conditions(inp.head, inp.image, inp.ref_fit, inp.driven, cfg.crop, normals=False)
        crops = crop(frames, cond["boxes"], cfg.crop.size)                        # (F, S, S, 3)
        lap("crops")
        if self.aligns(inp.mode, cfg):
            frames, dets = align_to_driver(frames, inp.driver_landmarks)
            # the composed map's determinant is the product of the two at matching points: the
            # product of the minima bounds it from below where both are positive
            w = stats["min_jacobian"]
            stats["min_jacobian"] = np.where((w > 0) & (dets > 0), w * dets, np.minimum(w, dets))
        lap("align")
        return EngineOutput(frames=frames, boxes=cond["boxes"], crops=crops, ref_crop=cond["ref_crop"],
                            background=inp.image[None], warp_stats=stats, timings=times)
