"""``mesh_warp``: the reference frame warped at its own resolution by the head the full method
drives (the transfer model's Delta_f; ``engines.warp_field``), no generator. In self mode
(``cfg.align_landmarks``) each frame is then moved onto the driver's landmarks
(``engines.align``). ``warp_first`` is this engine with its own offsets, a still background and
its mouth."""
from __future__ import annotations

import time

import numpy as np

from expportrait.data.crop import crop
from expportrait.engines.align import align_to_driver
from expportrait.engines.base import Engine, EngineInput, EngineOutput
from expportrait.engines.conditions import crop_conditions
from expportrait.engines.warp_field import expression_warp


class MeshWarp(Engine):
    def wants_driver_landmarks(self, mode: str, cfg) -> bool:
        return cfg.align_landmarks and mode == "self"

    def warp(self, inp: EngineInput, cfg) -> np.ndarray:
        """-> (F, H, W, 3) uint8: the reference warped by the driven head."""
        return expression_warp(inp.image, inp.ref_fit, inp.driven, inp.head)

    def refine(self, inp: EngineInput, cfg, frames: np.ndarray) -> np.ndarray:
        """What the warp cannot show, filled in (here: nothing)."""
        return frames

    def __call__(self, inp: EngineInput, cfg) -> EngineOutput:
        t, times = time.perf_counter(), {}

        def lap(name):
            nonlocal t
            times[name], t = round(time.perf_counter() - t, 3), time.perf_counter()

        frames = self.warp(inp, cfg)                                              # (F, H, W, 3)
        lap("warp")
        frames = self.refine(inp, cfg, frames)
        lap("refine")
        cond = crop_conditions(inp.head, inp.image, inp.ref_fit, inp.driven, cfg.crop, normals=False)
        crops = crop(frames, cond["boxes"], cfg.crop.size)                        # (F, S, S, 3)
        lap("crops")
        if self.wants_driver_landmarks(inp.mode, cfg):
            frames = align_to_driver(frames, inp.driver_landmarks)
        lap("align")
        return EngineOutput(frames=frames, boxes=cond["boxes"], crops=crops, ref_crop=cond["ref_crop"],
                            background=inp.image[None], timings=times)
