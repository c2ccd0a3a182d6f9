"""``LiveSession``: one source portrait driven live, frame by frame (a webcam, a stream, a file
read frame by frame).

Made once per source: the source resized to ``LiveConfig.size``, its fit (stage ``base``, as
``warp_first`` fits it), and the streaming engine (``engines.stream.WarpFirstStream``: person
mask, background plate, still head). Then ``session(frame)`` for each driver frame:

1. ``live.track.FrameTracker``: the driver's face followed, its pose and expression solved
   (calibrated on the first frame with a face, which is the reference of the relative pose);
2. ``transfer.retarget`` of [reference, this frame] (the offline transfer, relative pose; the
   causal One-Euro filter in place of its Gaussian);
3. the streaming engine: the warped source, its mouth and eyelids.

Before the driver shows a face the source is returned as it is. ``timings`` keeps the last
frame's seconds per step.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from expportrait.errors import UserError


@dataclass(frozen=True)
class LiveConfig:
    size: int = 256                 # the result's longer side in px (the source is resized to it)
    face_index: int = 0             # the source's face (0 = largest)
    driver_face_index: int = 0      # the driver's face
    field_scale: float | None = None  # mesh rasterised at this fraction (None: 256 px across)
    min_cutoff: float = 1.5         # One-Euro filter of the driver's pose: cut-off at rest (Hz)
    beta: float = 0.3               # ... and how fast it opens with speed
    mouth_source: str | None = None  # None: the checkpoint's (auto | driver | none | source)
    intensity: float | None = None  # expression multiplier (None: the checkpoint's)

    def __post_init__(self):
        if not 64 <= self.size <= 2048:
            raise UserError(f"--size must be in [64, 2048], got {self.size}")
        if self.field_scale is not None and not 0.1 <= self.field_scale <= 1.0:
            raise UserError(f"field scale must be in [0.1, 1], got {self.field_scale}")


def fit_size(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) uint8 -> the same with its longer side ``size`` px (even sides, for video)."""
    import cv2
    H, W = image.shape[:2]
    s = size / max(H, W)
    w, h = max(2, int(round(W * s / 2)) * 2), max(2, int(round(H * s / 2)) * 2)
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)


class LiveSession:
    """``session(frame (H', W', 3) uint8 RGB, dt=None) -> (H, W, 3) uint8`` the source following
    the driver in that frame; ``reset()`` re-calibrates on the next frame; ``close()``."""

    def __init__(self, pipe, source: np.ndarray, cfg: LiveConfig = LiveConfig()):
        from expportrait.engines.stream import WarpFirstStream
        from expportrait.live.track import FrameTracker
        from expportrait.transfer.retarget import RetargetConfig

        source = np.asarray(source)
        if source.ndim != 3 or source.shape[-1] != 3 or source.dtype != np.uint8:
            raise UserError(f"source: expected an (H, W, 3) uint8 image, got {source.shape} {source.dtype}")
        self.cfg, self.head = cfg, pipe.head
        self.image = fit_size(source, cfg.size)
        pcfg = pipe.config
        pcfg = replace(pcfg, mouth_source=cfg.mouth_source or pcfg.mouth_source,
                       intensity=pcfg.intensity if cfg.intensity is None else cfg.intensity)
        t = time.perf_counter()
        fit = pipe.tracker.fit(self.image[None], 25.0, "source", stages=pipe.engine.source_stages,
                               face_index=cfg.face_index)
        self.source_fit = fit
        scale = cfg.field_scale or min(1.0, 256 / max(self.image.shape[:2]))
        self.engine = WarpFirstStream(self.head, self.image, fit.frames(slice(0, 1)), pcfg, scale)
        self.tracker = FrameTracker(self.head, cfg.driver_face_index, pipe.tracker.cfg.face_detector,
                                    pipe.tracker.cfg.fov_deg, pipe.tracker.cfg.base, cfg.min_cutoff, cfg.beta)
        self.retarget_cfg = RetargetConfig(mode="relative", regions=tuple(pcfg.regions),
                                           intensity=pcfg.intensity, smooth=0.0, reference=0,
                                           translation=pcfg.head_motion)
        self.prepare_s = time.perf_counter() - t
        self.timings: dict[str, float] = {}
        self.min_jacobian = 1.0

    @classmethod
    def from_checkpoint(cls, source: np.ndarray, cfg: LiveConfig = LiveConfig(), checkpoint=None,
                        device: str = "cpu", detector: str | None = None) -> "LiveSession":
        from expportrait.pipeline import ReenactPipeline
        pipe = ReenactPipeline.from_checkpoint(checkpoint, device=device)
        if detector:
            pipe.tracker.cfg = replace(pipe.tracker.cfg, face_detector=detector)
        return cls(pipe, source, cfg)

    def reset(self) -> None:
        self.tracker.reset()

    def close(self) -> None:
        self.tracker.close()

    def __call__(self, frame: np.ndarray, dt: float | None = None) -> np.ndarray:
        frame = np.ascontiguousarray(frame)
        return self.render(frame, self.track(frame, dt))

    def track(self, frame: np.ndarray, dt: float | None = None) -> tuple:
        """The first half of a frame (the driver's tracking and the transfer; ``render`` is the
        second) -> (the DriverFrame, the driven head (None before the driver shows a face),
        {"track": s, "transfer": s})."""
        from expportrait.transfer.retarget import retarget
        t0 = time.perf_counter()
        d = self.tracker(frame, dt or 1 / 25)
        t1 = time.perf_counter()
        if d.params is None:                                       # no face yet
            return d, None, {"track": t1 - t0}
        drv = self.tracker.fit([self.tracker.reference, d], frame.shape[:2])
        driven = retarget(self.source_fit, drv, self.head, None, self.retarget_cfg).frames([1])
        return d, self.engine.drive(driven), {"track": t1 - t0, "transfer": time.perf_counter() - t1}

    def render(self, frame: np.ndarray, tracked: tuple) -> np.ndarray:
        """``track``'s output for ``frame`` -> the result frame (H, W, 3) uint8."""
        d, driven, times = tracked
        t = time.perf_counter()
        if driven is None:
            out = self.image.copy()
        else:
            out, self.min_jacobian = self.engine(driven, frame if d.valid else None, d.ibug68 if d.valid else None)
        self.timings = {**times, "engine": time.perf_counter() - t}
        return out

    def stream(self, frames, dt: float | None = None, with_frames: bool = False):
        """frames (an iterable of (H', W', 3) uint8) -> their results, in order, pipelined: the
        next frame is tracked (MediaPipe, the solve: one core) while this one is rendered (the
        warp: the other), so the throughput is set by the slower half, not their sum; each
        result still comes one frame later than ``__call__``'s at most. ``with_frames``: yield
        (driver frame, result) pairs."""
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(1, thread_name_prefix="live-track") as pool:
            pending = None
            for frame in frames:
                frame = np.ascontiguousarray(frame)
                job = pool.submit(self.track, frame, dt)
                if pending is not None:
                    yield self._out(pending, with_frames)
                pending = (frame, job.result())
            if pending is not None:
                yield self._out(pending, with_frames)

    def _out(self, pending, with_frames: bool):
        out = self.render(*pending)
        return (pending[0], out) if with_frames else out
