"""``warp_first`` one frame at a time, causally: the live engine (``expportrait live``).

The source is prepared once (its person mask, clothes, background plate, still head:
``engines.warp_field.WarpField``); each driven frame is then warped, its open mouth filled from
the driver's frame (``engines.mouth``) and its eyes closed with the driver's blinks
(``engines.eyes``), with causal stand-ins for the offline engine's whole-clip steps:

- the mouth's gate (offline: Gaussian over +-1 frame) is an exponential moving average;
- the driver's open-eye EAR (offline: the clip's 90th percentile) is that of the frames seen so
  far (the last ``EAR_MEMORY`` valid ones);
- a source shown with its eyes shut opens them with the driver's (``eyes.open_eyes``).

Same pictures as ``WarpFirst`` otherwise: the same field, mouth and lids on the same inputs.
"""
from __future__ import annotations

from collections import deque

import numpy as np

from expportrait.engines import eyes, mouth, own_teeth
from expportrait.engines.warp_field import WarpField
from expportrait.tracking.io import HeadFit

EAR_MEMORY = 250          # driver frames whose eye-aspect ratios give its open-eye EAR


class WarpFirstStream:
    """``stream(driven, driver_frame, driver68) -> (frame (H, W, 3) uint8, least Jacobian
    determinant)``. ``cfg``: the pipeline's config (``still_background``, ``mouth_source``,
    ``regions``); ``scale``: the mesh rasterised at that fraction of the source's resolution."""

    def __init__(self, head, image: np.ndarray, ref_fit: HeadFit, cfg, scale: float = 1.0,
                 gate_memory: float = 0.5):
        person = None
        if cfg.still_background:
            from expportrait.engines.segment import person_mask
            person = person_mask(image)
        self.image, self.ref_fit, self.cfg = image, ref_fit, cfg
        self.field = WarpField(image, ref_fit, head, person, scale)
        self.own = ref_fit.landmarks68_2d[0].numpy()                              # (68, 2)
        shows = mouth.shows_teeth(image, self.own)           # a smile: its teeth colour, upper row
        self.own_teeth_colour = mouth.teeth_colour(image[None], self.own[None]) if shows else None
        self.teeth_depth = own_teeth.teeth_depth(image, self.own) if shows else None
        self.driver_teeth = None       # (3,) the driver's teeth colour so far (``teeth_colour``'s)
        self.gate_memory, self.weight = gate_memory, 0.0
        self.ears = deque(maxlen=EAR_MEMORY)
        self.own_eyes = eyes.measured_landmarks(image, self.own) if "eyes" in cfg.regions else None

    def drive(self, driven: HeadFit) -> HeadFit:
        """The driven head with the reference's own Delta_f (``WarpFirst.drive``)."""
        driven.dynamic_offset = self.ref_fit.dynamic_offset[0][None].expand_as(driven.dynamic_offset).clone()
        return driven

    def __call__(self, driven: HeadFit, driver: np.ndarray | None = None,
                 driver68: np.ndarray | None = None) -> tuple[np.ndarray, float]:
        """driven (1 frame, the source's image space), the driver's frame (H', W', 3) uint8 and
        its 68 landmarks (68, 2) (None or NaN: no face) -> the result frame and its warp's least
        Jacobian determinant."""
        (x0, y0, x1, y1), roi, det = self.field(driven, [0])[0]
        out = self.image.copy()
        out[y0:y1, x0:x1] = roi
        seen = driver is not None and driver68 is not None and np.isfinite(driver68).all()
        if not seen:
            return out, det
        target = driven.landmarks68_2d.numpy()                                    # (1, 68, 2)
        d68 = np.asarray(driver68, np.float64)[None]
        if self.cfg.mouth_source in ("auto", "driver"):
            w = float(mouth.gate(target, self.own, sigma=0.0)[0])
            self.weight = self.gate_memory * self.weight + (1 - self.gate_memory) * w
            teeth = None
            if self.own_teeth_colour is not None:     # coloured like the source's own teeth
                c = mouth.teeth_colour(driver[None], d68)
                if c is not None:
                    self.driver_teeth = c if self.driver_teeth is None else 0.9 * self.driver_teeth + 0.1 * c
                teeth = None if self.driver_teeth is None else (self.own_teeth_colour, self.driver_teeth)
            if self.weight > 1e-3:
                out = mouth.carry_driver_mouth(out[None], target, driver[None], d68,
                                               np.array([self.weight]), teeth=teeth)[0]
                if teeth is not None and self.teeth_depth is not None:   # its upper teeth stay
                    out = own_teeth.keep_upper_teeth(out[None], target, self.image, self.own,
                                                     np.array([self.weight]), self.teeth_depth)[0]
        if "eyes" in self.cfg.regions:
            self.ears.append(eyes.eye_aspect(d68)[0])
            if len(self.ears) >= 2:
                open_ear = np.quantile(np.array(self.ears), 0.9, axis=0)
                out = eyes.follow_lids(out[None], target, self.own, d68, np.ones(1, bool), open_ear)[0]
            if self.own_eyes is not None:                          # a source with its eyes shut
                out = eyes.open_eyes(out[None], target, self.own_eyes, self.own, driver[None], d68,
                                     np.ones(1, bool))[0]
        return out, det
