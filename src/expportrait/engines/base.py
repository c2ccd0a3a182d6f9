"""The engines' one interface: what an engine needs from the pipeline in, frames at the source's
resolution out.

The pipeline fits the source, tracks the driver and transfers the driver's expression and pose
onto the source's head (``transfer.retarget``); an engine then

- says what it needs of those steps (``source_stages``, ``driver_offsets``, ``uses_transfer``,
  ``wants_driver_landmarks``),
- chooses the offsets its driven head carries (``drive``),
- and turns an ``EngineInput`` into an ``EngineOutput`` (``__call__``).

It reads its options from the pipeline's config (``cfg``: any object with the fields of
``pipeline.PipelineConfig``; an engine never imports the pipeline) and loads only the parts it uses
from ``Parts``: a checkpoint folder's ``generator/``, ``vae/`` and ``synth/``, each on first ask.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from expportrait.tracking.io import HeadFit


@dataclass
class EngineInput:
    """What the pipeline hands an engine."""
    head: object                 # the head model both fits use
    image: np.ndarray            # (H, W, 3) uint8 the source's reference frame
    ref_fit: HeadFit             # its fit (1 frame)
    driven: HeadFit              # (F frames) the driven head in the source's image space
    mode: str                    # self (absolute pose, the driver's framing) | cross
    driver_landmarks: object | None = None  # LandmarkTrack of the driver (``wants_driver_landmarks``)
    driver_frames: np.ndarray | None = None  # (F, H', W', 3) uint8 the driving video
    steps: int | None = None     # sampler steps (None: the engine's default)
    seed: int = 0
    source_frames: np.ndarray | None = None  # (K, H, W, 3) uint8 a video source's frames (its mouth bank)
    source_landmarks: object | None = None   # their LandmarkTrack (``.ibug68`` (K, 68, 2), ``.valid``)
    source_reference: int | None = None      # the reference frame's index in source_frames


@dataclass
class EngineOutput:
    frames: np.ndarray                       # (F, H, W, 3) uint8 at the source's resolution
    boxes: np.ndarray | None = None          # (F, 3) crop boxes (cx, cy, side) in source pixels
    crops: np.ndarray | None = None          # (F, S, S, 3) uint8 the face crops of the result
    ref_crop: np.ndarray | None = None       # (S, S, 3) uint8 reference crop
    ref_normal: np.ndarray | None = None     # (S, S, 3) uint8 N^R (the generator engines)
    pose_normals: np.ndarray | None = None   # (F, S, S, 3) uint8 N^D (the generator engines)
    background: np.ndarray | None = None     # (1, H, W, 3) uint8 what the crops were pasted into
    warp_stats: dict = field(default_factory=dict)   # warp engines: "min_jacobian" (F,) float
    timings: dict = field(default_factory=dict)   # seconds per engine step


class Laps(dict):
    """Seconds per step: ``laps(name)`` records, under ``name``, the time since the previous call
    (or since it was made), rounded to the millisecond."""

    def __init__(self):
        super().__init__()
        self._t = time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self[name], self._t = round(now - self._t, 3), now


class Parts:
    """The checkpoint parts an engine may use, each loaded on first ask from ``folder`` (layout in
    ``pipeline``) unless given: ``generator()``, ``vae()`` (built for the generator's config),
    ``synth()`` (warp_first's learned part, None when the folder has none)."""

    def __init__(self, folder: str | Path | None = None, device: str | torch.device = "cpu", *,
                 generator=None, vae=None, synth=None):
        from expportrait.tracking.track import resolve_device
        self.folder = None if folder is None else Path(folder)
        self.device = resolve_device(str(device))   # "auto": cuda when available
        self._have = {"generator": generator, "vae": vae, "synth": synth}

    def _load(self, name: str):
        from expportrait.generator.model import ReenactGenerator
        if self.folder is None:
            return None
        if name == "vae":
            from expportrait.generator.vae import build_vae
            return build_vae(self.generator().config, self.folder / "vae", torch_dtype=torch.float32)
        if name == "synth" and not (self.folder / "synth" / "config.json").is_file():
            return None
        return ReenactGenerator.from_pretrained(self.folder / name).float()

    def get(self, name: str):
        if self._have[name] is None:
            self._have[name] = self._load(name)
        part = self._have[name]
        return part if part is None else part.eval()

    def generator(self):
        gen = self.get("generator")
        if gen is None:
            from expportrait.errors import UserError
            raise UserError("this engine needs a generator: build the pipeline from a checkpoint folder")
        return gen

    def generator_config(self):
        """The generator's GeneratorConfig, read without loading its weights when not loaded."""
        if self._have["generator"] is not None or self.folder is None:
            return self.generator().config
        from expportrait.checkpoint import read_config
        from expportrait.config import from_dict
        from expportrait.generator.config import GeneratorConfig
        return from_dict(GeneratorConfig, read_config(self.folder / "generator"))

    def vae(self):
        return self.get("vae")

    def synth(self):
        return self.get("synth")

    def loaded(self) -> list[str]:
        """The parts loaded so far (what the engines asked for)."""
        return [k for k, v in self._have.items() if v is not None]


class Engine:
    """Base of the engines (see the module doc); subclasses set the class attributes they need."""
    stochastic = False               # the result depends on the seed
    source_stages: tuple[str, ...] | None = None   # source tracking stages (None: the tracker's)
    driver_offsets = False           # the driver must be fitted with its own Delta_f
    uses_transfer = True             # the driven head's Delta_f comes from the transfer model G

    def __init__(self, parts: Parts):
        self.parts = parts

    def wants_driver_landmarks(self, mode: str, cfg) -> bool:
        """Whether ``EngineInput.driver_landmarks`` must be given for this mode."""
        return False

    def wants_mouth_bank(self, cfg) -> bool:
        """Whether a video source's frames and landmarks (``EngineInput.source_frames``) are used."""
        return False

    def drive(self, driven: HeadFit, source_fit: HeadFit, driving_fit: HeadFit, ref: int) -> HeadFit:
        """The transferred head -> the head this engine animates (default: as transferred)."""
        return driven

    def __call__(self, inp: EngineInput, cfg) -> EngineOutput:
        raise NotImplementedError
