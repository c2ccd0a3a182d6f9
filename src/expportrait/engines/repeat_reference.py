"""``repeat_reference``: the baseline that does not move: the reference crop (at the generator's
crop size, so it compares with the DiT) repeated for every driven frame and pasted back like the
DiT's crops."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from expportrait.engines.base import Engine, EngineInput, EngineOutput
from expportrait.engines.conditions import crop_conditions, paste_crops


class RepeatReference(Engine):
    def __call__(self, inp: EngineInput, cfg) -> EngineOutput:
        c = replace(cfg.crop, size=self.parts.generator_config().resolution)
        cond = crop_conditions(inp.head, inp.image, inp.ref_fit, inp.driven, c, eyes=cfg.eyes)
        crops = np.repeat(cond["ref_crop"][None], len(cond["boxes"]), 0)          # (F, S, S, 3)
        frames, background = paste_crops(inp.image, cond, crops, c, clear=cfg.clear_source_head)
        return EngineOutput(frames=frames, boxes=cond["boxes"], crops=crops, ref_crop=cond["ref_crop"],
                            ref_normal=cond["ref_normal"], pose_normals=cond["pose_normals"],
                            background=background)
