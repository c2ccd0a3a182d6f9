"""``ReenactPipeline``: source portrait (image or video) + driving video -> reenacted video.

The paper's steps, each a method of ``ReenactPipeline.__call__``; the parts are injected (the
head, the ``tracking.gaze.Tracker``, the transfer model, the engines' ``engines.base.Parts``):

1. ``check_inputs``: frames are (F, H, W, 3) uint8, the reference frame exists.
2. ``fit_source``: track the source (an image, or up to ``max_source_frames`` frames of a video,
   always including the reference frame; the stages the engine asks for) -> personalized fit;
   ``source_bank``: a video's frames whose mouths warp_first may take, with their landmarks.
   ``resolve_mode``: ``self`` (same person; absolute pose, the driver's framing) or ``cross``
   (relative pose); ``auto`` compares dlib face descriptors of the source face and the driver.
3. ``track_driver``: the driver's MediaPipe landmarks (``detect_driver``, kept for the engine)
   and its fit (stage ``base`` by default: the transfer needs only its psi, omega, pose and gaze).
4. ``transfer``: ``transfer.retarget`` -> the driven head in the source's image space, with the
   offsets the engine animates (``Engine.drive``).
5. the engine (``config.engine``, looked up in ``engines``) -> frames at the source's resolution.
6. ``outputs.write_outputs`` (the caller): ``OUT.mp4`` and ``OUT.compare.mp4``.

Checkpoint folders: ``export``; an engine loads only the parts it uses (warp_first: none).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from expportrait.config import from_dict
from expportrait.data.crop import CropConfig
from expportrait.data.video import Video
from expportrait.engines import DEFAULT_ENGINE, build_engine, check_engine
from expportrait.engines.base import EngineInput, Laps, Parts
from expportrait.engines.mouth import MOUTH_SOURCES
from expportrait.errors import UserError
from expportrait.export import check_checkpoint, default_checkpoint
from expportrait.generator.sampling import GUIDE
from expportrait.tracking.config import TrackConfig
from expportrait.tracking.gaze import Tracker

MODES = ("auto", "self", "cross")


@dataclass(frozen=True)
class PipelineConfig:
    mode: str = "auto"                 # auto | self | cross
    same_person_distance: float = 0.6  # auto: dlib descriptor distance below this = same person
    reference_frame: int = 0           # source frame used as appearance reference and background
    max_source_frames: int = 32        # video sources: frames tracked (evenly spaced)
    mouth_bank_frames: int = 64        # video sources: frames warp_first takes mouths from (engines.mouth_bank)
    source_stages: tuple[str, ...] | None = None  # source tracking stages (None: the engine's)
    driving_face_index: int = 0        # the driver's face (0 = largest; the source's: TrackConfig's)
    driver_stages: tuple[str, ...] | None = ("base",)  # driver tracking stages (None: the
    #   tracker config's); the transfer uses only the driver's psi, omega, pose and gaze
    regions: tuple[str, ...] = ("pose", "expression", "eyes", "lips")
    intensity: float = 1.0             # expression multiplier
    pose_smooth: float = 1.0           # Gaussian sigma (frames) of the transferred head pose
    head_motion: str = "face"          # cross mode: the driver's head translation per face size
    #   in view ("face") or per image ("frame"): ``transfer.retarget.TRANSLATION_MODES``
    engine: str = DEFAULT_ENGINE       # ``engines.ENGINE_NAMES``; checked when the config is made
    # engine options (each engine reads those it uses)
    crop: CropConfig = field(default_factory=CropConfig)  # face crops (the DiT: size = its generator's)
    eyes: bool = True                  # eyeballs in the normal maps
    steps: int | None = None           # sampler steps (None: the generator preset's)
    cfg_scale: float | None = None     # classifier-free guidance scale (None: the generator's)
    guide: tuple[str, ...] = GUIDE     # conditions guidance is on (dropped in the unconditional pass)
    window: int | None = None          # latent frames per chained clip (None: the preset's clip)
    sampler: str = "euler"
    still_background: bool = True      # warp_first: the person warped over the still background
    mouth_source: str = "auto"         # warp_first's open mouth: ``engines.mouth.MOUTH_SOURCES``
    synth_crop: CropConfig | None = None  # the learned mouth's crops (None: ``crop``)
    align_landmarks: bool = True       # self mode, warp engines: onto the driver's landmarks (engines.align)
    clear_source_head: bool = True     # the DiT: paste into the reference with its head painted out

    def __post_init__(self):
        if self.mode not in MODES:
            raise UserError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        check_engine(self.engine)
        if self.mouth_source not in MOUTH_SOURCES:
            raise UserError(f"mouth_source must be one of {', '.join(MOUTH_SOURCES)}, got {self.mouth_source!r}")


@dataclass
class ReenactResult:
    frames: np.ndarray          # (F, H, W, 3) uint8 result at the source's resolution
    fps: float
    mode: str
    reference_frame: int = 0    # source frame used as reference and background
    boxes: np.ndarray | None = None         # (F, 3) face crop boxes (cx, cy, side) in source pixels
    crops: np.ndarray | None = None         # (F, S, S, 3) uint8 the result's face crops
    ref_crop: np.ndarray | None = None      # (S, S, 3) uint8 reference crop
    ref_normal: np.ndarray | None = None    # (S, S, 3) uint8 N^R (generator engines)
    pose_normals: np.ndarray | None = None  # (F, S, S, 3) uint8 N^D (generator engines)
    background: np.ndarray | None = None    # (1, H, W, 3) uint8 what the crops were pasted into
    warp_stats: dict = field(default_factory=dict)  # the warp engines: "min_jacobian" (F,) ...
    fits: dict = field(default_factory=dict)     # "source", "driving", "driven" HeadFit
    timings: dict = field(default_factory=dict)  # seconds per step ("engine/..." the engine's)


class ReenactPipeline:
    def __init__(self, head, tracker: Tracker | TrackConfig | None, transfer_model,
                 parts: Parts | None = None, config: PipelineConfig = PipelineConfig()):
        self.head = head
        self.tracker = tracker if isinstance(tracker, Tracker) else Tracker(tracker or TrackConfig(), head)
        self.transfer_model = transfer_model
        self.parts = parts or Parts()
        self.config = config
        self._engine = (None, None)

    @property
    def engine(self):
        """The engine ``config.engine`` names, built on first use (and again when it changes)."""
        name, engine = self._engine
        if name != self.config.engine:
            engine = build_engine(self.config.engine, self.parts)
            self._engine = (self.config.engine, engine)
        return engine

    # ------------------------------------------------------------------ 1. inputs
    def check_inputs(self, source: Video, driving: Video) -> None:
        for name, v in (("source", source), ("driving", driving)):
            f = np.asarray(v.frames)
            if f.ndim != 4 or f.shape[-1] != 3 or f.dtype != np.uint8 or len(f) == 0:
                raise UserError(f"{name}: expected frames (F, H, W, 3) uint8, got {f.shape} {f.dtype}")
            if min(f.shape[1:3]) < 32:
                raise UserError(f"{name} is too small ({f.shape[2]}x{f.shape[1]}); need >= 32 px")
        r = self.config.reference_frame
        if not 0 <= r < len(source.frames):
            raise UserError(f"reference frame {r} is outside the source (0..{len(source.frames) - 1})")

    def resolve_mode(self, source: Video, driving: Video, mode: str | None = None,
                     source_box: np.ndarray | None = None) -> str:
        """``auto``: self when the dlib descriptors of the source's face (the one in
        ``source_box`` (x0, y0, x1, y1), the chosen face of a group photo, when given) and of
        the driver's largest face are closer than ``same_person_distance``, else cross."""
        mode = mode or self.config.mode
        if mode not in MODES:
            raise UserError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if mode != "auto":
            return mode
        from expportrait.detection.dlib_face import DlibFace
        face = DlibFace()
        box = None if source_box is None else tuple(int(round(float(v))) for v in source_box)
        a = face.descriptor(source.frames[self.config.reference_frame], box)
        d = [face.descriptor(f) for f in driving.frames[:: max(1, len(driving.frames) // 4)][:4]]
        d = [x for x in d if x is not None]
        if a is None or not d:
            return "cross"
        dist = float(np.median([np.linalg.norm(a - x) for x in d]))
        return "self" if dist < self.config.same_person_distance else "cross"

    # ------------------------------------------------------------------ 2-3. tracking
    def fit_source(self, source: Video):
        """-> (fit of the selected source frames, index of the reference frame in that fit)."""
        F, r = len(source.frames), self.config.reference_frame
        n = min(F, max(1, self.config.max_source_frames))
        idx = sorted(set(np.linspace(0, F - 1, n).round().astype(int).tolist()) | {r})
        stages = self.config.source_stages or self.engine.source_stages
        return self.tracker.fit(source.frames[idx], source.fps, "source", stages=stages), idx.index(r)

    def source_bank(self, source: Video):
        """-> a video's mouth bank when the engine takes one: ``mouth_bank_frames`` frames
        (K, H, W, 3) as ``fit_source`` picks them, their LandmarkTrack, the reference's index in them."""
        F, n, r = len(source.frames), self.config.mouth_bank_frames, self.config.reference_frame
        if F < 2 or n < 2 or not self.engine.wants_mouth_bank(self.config):
            return None, None, None
        idx = sorted(set(np.linspace(0, F - 1, min(F, n)).round().astype(int).tolist()) | {r})
        frames = source.frames[idx]
        return frames, self.tracker.detect(frames, self.tracker.cfg.face_index, "source"), idx.index(r)

    def detect_driver(self, driving: Video):
        """The driver's MediaPipe landmarks (face ``driving_face_index``), found once for its
        tracking and the engine."""
        return self.tracker.detect(driving.frames, self.config.driving_face_index, "driving video")

    def track_driver(self, driving: Video, landmarks=None):
        """-> the driver's fit (``landmarks``: its ``detect_driver`` track, else found here)."""
        if landmarks is None:
            landmarks = self.detect_driver(driving)
        stages = None if self.engine.driver_offsets else self.config.driver_stages
        return self.tracker.fit(driving.frames, driving.fps, "driving video", stages=stages,
                                face_index=self.config.driving_face_index, landmarks=landmarks)

    # ------------------------------------------------------------------ 4. transfer
    def transfer(self, source_fit, driving_fit, mode: str, ref: int):
        from expportrait.transfer.retarget import RetargetConfig, retarget
        cfg = RetargetConfig(mode="absolute" if mode == "self" else "relative",
                             regions=tuple(self.config.regions), intensity=self.config.intensity,
                             smooth=self.config.pose_smooth, source_frame=ref,
                             translation=self.config.head_motion)
        model = self.transfer_model if self.engine.uses_transfer else None
        driven = retarget(source_fit, driving_fit, self.head, model, cfg)
        return self.engine.drive(driven, source_fit, driving_fit, ref)

    # ------------------------------------------------------------------ all steps
    def __call__(self, source: Video, driving: Video, *, steps: int | None = None, seed: int = 0,
                 mode: str | None = None, source_fit=None, driving_fit=None,
                 driving_landmarks=None) -> ReenactResult:
        """source: image (1 frame) or video; driving: video (F frames) -> ReenactResult with F
        frames at the source's resolution. Precomputed fits may be injected (tests, demos):
        ``source_fit`` must then cover exactly the frames ``fit_source`` would select (no mouth bank);
        ``driving_landmarks``: the driver's ``detect_driver`` track, when already found."""
        lap = times = Laps()

        self.check_inputs(source, driving)                                        # 1
        lap("check_inputs")
        bank = self.source_bank(source) if source_fit is None else (None, None, None)
        if source_fit is None:                                                    # 2
            source_fit, ref = self.fit_source(source)
        else:
            ref = min(self.config.reference_frame, source_fit.num_frames - 1)
        lm = source_fit.landmarks68_2d[ref].numpy()                               # the chosen face
        mode = self.resolve_mode(source, driving, mode, np.concatenate([lm.min(0), lm.max(0)]))
        lap("fit_source")
        drv_lmk = driving_landmarks                                               # 3
        if driving_fit is None:
            drv_lmk = drv_lmk if drv_lmk is not None else self.detect_driver(driving)
            driving_fit = self.track_driver(driving, drv_lmk)
        if driving_fit.num_frames != len(driving.frames):
            raise UserError(f"driving fit has {driving_fit.num_frames} frames, the video {len(driving.frames)}")
        lap("track_driver")
        driven = self.transfer(source_fit, driving_fit, mode, ref)                # 4
        lap("transfer")
        if drv_lmk is None and self.engine.wants_driver_landmarks(mode, self.config):
            drv_lmk = self.detect_driver(driving)
        image = source.frames[self.config.reference_frame]
        out = self.engine(EngineInput(self.head, image, source_fit.frames(slice(ref, ref + 1)), driven,
                                      mode, drv_lmk, driving.frames, steps, seed, *bank), self.config)  # 5
        lap("engine")
        times.update({f"engine/{k}": v for k, v in out.timings.items()})
        return ReenactResult(frames=out.frames, fps=float(driving.fps), mode=mode,
                             reference_frame=self.config.reference_frame, boxes=out.boxes,
                             crops=out.crops, ref_crop=out.ref_crop, ref_normal=out.ref_normal,
                             pose_normals=out.pose_normals, background=out.background,
                             warp_stats=out.warp_stats,
                             fits={"source": source_fit, "driving": driving_fit, "driven": driven},
                             timings=times)

    # ------------------------------------------------------------------ checkpoints
    @classmethod
    def from_checkpoint(cls, folder: str | Path | None = None, *, device: str = "cpu",
                        config: PipelineConfig | None = None,
                        tracker_cfg: TrackConfig | None = None) -> "ReenactPipeline":
        """Build from a checkpoint folder (layout in the module docstring; default: the demo);
        ``config`` / ``tracker_cfg`` replace the folder's ``pipeline.json``."""
        from expportrait.head import load_head
        from expportrait.transfer.model import ExpressionTransfer
        folder = Path(folder) if folder else default_checkpoint()
        check_checkpoint(folder)
        saved_config, saved_tracker = load_configs(folder)
        config, tracker_cfg = config or saved_config, tracker_cfg or saved_tracker
        head = load_head(tracker_cfg.head, model_path=tracker_cfg.head_path, density=tracker_cfg.density)
        transfer = ExpressionTransfer.load(folder / "transfer" if (folder / "transfer").is_dir() else None,
                                           head=tracker_cfg.head)
        return cls(head, Tracker(tracker_cfg, head), transfer, Parts(folder, device), config)


def load_configs(folder: str | Path | None = None) -> tuple[PipelineConfig, TrackConfig]:
    """A checkpoint folder's ``pipeline.json`` (default: the demo's) -> (PipelineConfig,
    TrackConfig); their defaults where it has none. The engine's name is checked here."""
    path = Path(folder or default_checkpoint()) / "pipeline.json"
    extra = json.loads(path.read_text()) if path.is_file() else {}
    return from_dict(PipelineConfig, extra.get("pipeline", {})), from_dict(TrackConfig, extra.get("tracking", {}))
