"""``ReenactPipeline``: source portrait (image or video) + driving video -> reenacted video.

Numbered steps of ``ReenactPipeline.__call__`` (components are injected, so each can be swapped):

1. ``check_inputs``: frames are (F, H, W, 3) uint8, the reference frame exists, the crop fits.
2. ``fit_source``: track the source (an image, or up to ``max_source_frames`` frames of a video,
   always including the reference frame) -> personalized fit; gaze from the irises.
   ``resolve_mode``: ``self`` (same person; absolute pose, the driver's framing) or ``cross``
   (relative pose from the source's own pose); ``auto`` compares dlib face descriptors of the
   tracked source face and the driver.
3. ``track_driver``: track the driving video (stage ``base`` by default: the transfer needs only
   its expression, jaw, pose and gaze) -> fit with gaze.
4. ``transfer``: ``transfer.retarget`` -> the driven fit, in the source's image space.
5. ``conditions``: temporally stable crop boxes from the driven fit's landmarks (``data.crop``);
   the reference crop of the source's reference frame (its own box) and its normal map N^R; the
   driven normal maps N^D rendered directly in crop space (crop cameras).
6. ``generate``: VAE-encode the reference crop, sample clips of the trained length chained on a
   shared frame (``longvideo.generate``) -> generated crops. The warp engines take the warped
   reference instead; ``warp_first`` with ``synthesize`` keeps the generator's crops in the
   open mouth, which the warp cannot show (off by default: measured worse on unseen people).
7. ``paste_back``: blend the crops into the source's reference frame (its own head painted out,
   ``crop.clear_head``) at its original resolution with a feathered elliptical mask.
8. ``align_to_driver`` (self mode, warp engines, ``align_landmarks``): each result frame moved
   by a thin-plate spline so that its MediaPipe landmarks land on the driver frame's.
9. ``outputs.write_outputs`` (the caller): ``OUT.mp4`` (driving audio carried over) and
   ``OUT.compare.mp4`` (source | driver | result).

Checkpoint folder layout (``ReenactPipeline.from_checkpoint``, assembled by
``export.export_checkpoint``; the shipped demo is
``expportrait/checkpoints/demo``)::

    DIR/generator/{config.json, model.safetensors}   ReenactGenerator (fp16 is fine)
    DIR/vae/{config.json, diffusion_pytorch_model.safetensors}   diffusers AutoencoderKLWan
    DIR/pipeline.json    optional {"pipeline": PipelineConfig, "tracking": TrackConfig} fields
    DIR/transfer/        optional ExpressionTransfer (default: the shipped transfer-bfm)
    DIR/synth/{config.json, model.safetensors}   optional ReenactGenerator for warp_first's
                         learned part (``synthesize``; same VAE), on ``synth_crop`` crops
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from expportrait.config import from_dict
from expportrait.data.crop import CropConfig, clear_head, crop, crop_cameras, face_boxes, paste_back
from expportrait.data.video import Video
from expportrait.errors import UserError
from expportrait.export import check_checkpoint, default_checkpoint
from expportrait.generator.config import pixel_frames
from expportrait.generator.sampling import GUIDE
from expportrait.render.maps import normal_map_coverage
from expportrait.tracking.config import TrackConfig
from expportrait.tracking.gaze import track_with_gaze

MODES = ("auto", "self", "cross")


@dataclass(frozen=True)
class PipelineConfig:
    mode: str = "auto"                 # auto | self | cross
    same_person_distance: float = 0.6  # auto: dlib descriptor distance below this = same person
    reference_frame: int = 0           # source frame used as appearance reference and background
    max_source_frames: int = 32        # video sources: frames tracked (evenly spaced)
    source_stages: tuple[str, ...] | None = None  # source tracking stages; None: what the
    #   engine needs (warp_first: "base" -- it holds the reference's offsets, so the photometric
    #   stage would only refine a shape the warp moves rigidly; the generators: the tracker's)
    driving_face_index: int = 0        # the driver's face when several (0 = largest); the
    #   source's is ``TrackConfig.face_index``
    driver_stages: tuple[str, ...] | None = ("base",)  # driver tracking stages (None: the
    #   tracker config's); the transfer uses only the driver's psi, omega, pose and gaze
    crop: CropConfig = field(default_factory=CropConfig)  # crop.size is set to the generator's
    regions: tuple[str, ...] = ("pose", "expression", "eyes", "lips")
    intensity: float = 1.0             # expression multiplier
    pose_smooth: float = 1.0           # Gaussian sigma (frames) of the transferred head pose
    eyes: bool = True                  # eyeballs in the normal maps
    steps: int | None = None           # sampler steps (None: the generator preset's)
    cfg_scale: float | None = None     # classifier-free guidance scale (None: the generator's)
    guide: tuple[str, ...] = GUIDE     # conditions guidance is on: the unconditional pass
    #   drops them (("pose",): only the driving normal maps are strengthened, the reference kept)
    window: int | None = None          # latent frames per chained clip (None: the preset's clip)
    sampler: str = "euler"
    still_background: bool = True      # warp_first: the person (MediaPipe selfie segmentation)
    #   warped over the still background, the head painted out where it moved from
    synthesize: tuple[str, ...] = ()   # warp_first: regions the warp cannot show that the
    #   generator fills (conditioned on the warp when its residual_base is "warp"), composited
    #   at the source's resolution: "mouth" = the driven open mouth. Off by default: on the
    #   unseen self clip it loses 0.3-0.9 dB against the warp's own mouth (benchmarks/unseen.py)
    synth_crop: CropConfig | None = None  # the crops of the learned part (None: ``crop``;
    #   scripts/train_mouth_synth.sh's: centre "mouth", 0.8 face widths); size = its generator's
    align_landmarks: bool = True       # self mode (absolute pose), warp engines: each result
    #   frame is moved by a thin-plate spline that carries its MediaPipe landmarks onto the
    #   driver's (``transfer.landmark_align``): removes the two fits' residuals (~1.4 px)
    clear_source_head: bool = True     # paint the reference's own head out of the background the
    #   crops are pasted into (``crop.clear_head``): else it stays where the driven head moved from
    # engines and ablations (benchmarks/unseen.py, benchmarks/reenact.py): "warp_first" = the
    # reference warped at its own resolution by the head driven through psi, omega and pose
    # with the reference's own Delta_g + Delta_f held (no generator; ``warp_reference``);
    # "full"; "base_only" = base-model normals (no Delta_g,
    # Delta_f); "direct_copy" = the driver's own Delta_f pasted on the target instead of G;
    # "repeat_reference" = the reference crop repeated (no generation); "mesh_warp" = the reference
    # frame warped by the full method's driven head (transfer.warp; no generation, the warped frames
    # at the source's resolution are the result)
    variant: str = "warp_first"        # the default engine (benchmarks/unseen.py)


@dataclass
class ReenactResult:
    frames: np.ndarray          # (F, H, W, 3) uint8 result at the source's resolution
    crops: np.ndarray           # (F, S, S, 3) uint8 generated face crops
    pose_normals: np.ndarray    # (F, S, S, 3) uint8 N^D in crop space
    ref_crop: np.ndarray        # (S, S, 3) uint8 reference crop
    ref_normal: np.ndarray      # (S, S, 3) uint8 N^R
    boxes: np.ndarray           # (F, 3) crop boxes (cx, cy, side) in source pixels
    fps: float
    mode: str
    reference_frame: int = 0    # source frame used as reference and background
    background: np.ndarray | None = None  # (1, H, W, 3) uint8 the frame the crops were pasted into
    fits: dict = field(default_factory=dict)     # "source", "driving", "driven" HeadFit
    timings: dict = field(default_factory=dict)  # seconds per step


def _unit(x: np.ndarray) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float32 (..., 3, H, W) in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(x)).movedim(-1, -3).float() / 127.5 - 1.0


def _frames_uint8(video: torch.Tensor) -> np.ndarray:
    """(3, F, H, W) in [-1, 1] (clamped) -> (F, H, W, 3) uint8; the inverse of ``_unit``."""
    out = (video.permute(1, 2, 3, 0).float().cpu().clamp(-1, 1) + 1) * 127.5 + 0.5
    return out.to(torch.uint8).numpy()


VARIANTS = ("warp_first", "full", "base_only", "direct_copy", "repeat_reference", "mesh_warp")
WARP_VARIANTS = ("warp_first", "mesh_warp")   # the warped frames are the result


class ReenactPipeline:
    def __init__(self, head, tracker_cfg: TrackConfig | None, transfer_model, generator, vae,
                 config: PipelineConfig = PipelineConfig(), device: str | torch.device = "cpu",
                 synth_generator=None):
        self.head = head
        self.tracker_cfg = tracker_cfg or TrackConfig()
        self.transfer_model = transfer_model
        self.generator = generator.eval()
        self.vae = vae.eval()
        self.synth_generator = None if synth_generator is None else synth_generator.eval()
        size = generator.config.resolution
        self.config = replace(config, crop=replace(config.crop, size=size))
        self.device = torch.device(device)

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
        if self.config.mode not in MODES:
            raise UserError(f"mode must be one of {', '.join(MODES)}, got {self.config.mode!r}")

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
        from expportrait.metrics.dlib_face import DlibFace
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
    def _track(self, frames: np.ndarray, fps: float, what: str):
        return track_with_gaze(frames, fps, self.tracker_cfg, self.head, what)[0]

    def fit_source(self, source: Video):
        """-> (fit of the selected source frames, index of the reference frame in that fit)."""
        F, r = len(source.frames), self.config.reference_frame
        n = min(F, max(1, self.config.max_source_frames))
        idx = sorted(set(np.linspace(0, F - 1, n).round().astype(int).tolist()) | {r})
        stages = self.config.source_stages or (("base",) if self.config.variant == "warp_first"
                                               else None)
        cfg = replace(self.tracker_cfg, stages=tuple(stages)) if stages else self.tracker_cfg
        fit = track_with_gaze(source.frames[idx], source.fps, cfg, self.head, "source")[0]
        return fit, idx.index(r)

    def detect_driver(self, driving: Video):
        """The driver's MediaPipe landmarks (LandmarkTrack, face ``driving_face_index``), found
        once for tracking (step 3) and alignment (step 8)."""
        from expportrait.tracking.landmarks import detect_video
        try:
            return detect_video(driving.frames, face_index=self.config.driving_face_index,
                                detector=self.tracker_cfg.face_detector)
        except UserError as exc:
            raise UserError(f"driving video: {exc}") from None

    def track_driver(self, driving: Video, landmarks=None):
        """-> the driver's fit (``landmarks``: its ``detect_driver`` track, else found here)."""
        if landmarks is None:
            landmarks = self.detect_driver(driving)
        cfg = replace(self.tracker_cfg, face_index=self.config.driving_face_index)
        if self.config.driver_stages and self.config.variant != "direct_copy":  # it needs the driver's Delta_f
            cfg = replace(cfg, stages=tuple(self.config.driver_stages))
        return track_with_gaze(driving.frames, driving.fps, cfg, self.head, "driving video",
                               landmarks=landmarks)[0]

    # ------------------------------------------------------------------ 4. transfer
    def transfer(self, source_fit, driving_fit, mode: str, ref: int):
        from expportrait.transfer.retarget import RetargetConfig, retarget
        cfg = RetargetConfig(mode="absolute" if mode == "self" else "relative",
                             regions=tuple(self.config.regions), intensity=self.config.intensity,
                             smooth=self.config.pose_smooth, source_frame=ref)
        variant = self.config.variant
        if variant not in VARIANTS:
            raise UserError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
        model = None if variant in ("base_only", "direct_copy", "warp_first") else self.transfer_model
        driven = retarget(source_fit, driving_fit, self.head, model, cfg)
        if variant == "warp_first":  # the reference's own offsets: its warp moves only with psi,
            # omega and pose (G's Delta_f differs from the tracked one and tears the warp)
            driven.dynamic_offset = source_fit.dynamic_offset[ref][None].expand_as(
                driven.dynamic_offset).clone()
        elif variant == "base_only":
            driven.static_offset = torch.zeros_like(driven.static_offset)
            driven.dynamic_offset = torch.zeros_like(driven.dynamic_offset)
        elif variant == "direct_copy":
            if driving_fit.dynamic_offset.shape != driven.dynamic_offset.shape:
                raise UserError("direct_copy needs source and driver fitted with the same head density")
            driven.dynamic_offset = driving_fit.dynamic_offset.clone()
        return driven

    # ------------------------------------------------------------------ 5. conditions
    def render_crop_normals(self, fit, boxes: np.ndarray, size: int | None = None) -> np.ndarray:
        """fit (F frames), boxes (F, 3) -> (F, S, S, 3) uint8 normal maps in crop space
        (S = ``size``, default the crop's)."""
        S = size or self.config.crop.size
        return render_crop_normals(self.head, fit, crop_cameras(fit.camera.numpy(), boxes, S), S,
                                   eyes=self.config.eyes)

    def conditions(self, source: Video, source_fit, ref: int, driven, c: CropConfig | None = None,
                   warped_frames: np.ndarray | None = None) -> dict:
        """The generator's inputs on crops ``c`` (default ``config.crop``): boxes (F, 3), ref_box
        (1, 3), ref_crop and ref_normal (S, S, 3), pose_normals (F, S, S, 3) uint8 and, where a warp
        is used, warped_frames (F, H, W, 3) and warped (F, S, S, 3) uint8 (``warped_frames``: the
        reference already warped, reused instead of warped again)."""
        c = c or self.config.crop
        boxes = face_boxes(driven.landmarks68_2d.numpy(), c)                      # (F, 3)
        ref_fit = source_fit.frames(slice(ref, ref + 1))
        ref_box = face_boxes(ref_fit.landmarks68_2d.numpy(), c)                   # (1, 3)
        ref_img = source.frames[self.config.reference_frame][None]
        out = {"boxes": boxes, "ref_box": ref_box, "ref_crop": crop(ref_img, ref_box, c.size)[0],
               "ref_normal": self.render_crop_normals(ref_fit, ref_box, c.size)[0],
               "pose_normals": self.render_crop_normals(driven, boxes, c.size)}
        variant = self.config.variant
        if warped_frames is None and (variant in WARP_VARIANTS or (
                self.generator.config.residual_base == "warp" and variant != "repeat_reference")):
            warped_frames = self.warp_reference(ref_img[0], ref_fit, driven)    # (F, H, W, 3)
        if warped_frames is not None:
            out["warped_frames"] = warped_frames
            out["warped"] = crop(warped_frames, boxes, c.size)                    # (F, S, S, 3)
        return out

    def warp_reference(self, image: np.ndarray, ref_fit, driven) -> np.ndarray:
        """The reference frame (H, W, 3) uint8 warped by the driven head -> (F, H, W, 3) uint8 in
        the source's frame (``transfer.warp.expression_warp``). base_only drops the reference's
        offsets as well, so its warp compares base meshes with base meshes."""
        from expportrait.transfer.warp import expression_warp
        if self.config.variant == "warp_first" and self.config.still_background:
            from expportrait.tracking.segment import person_mask
            return expression_warp(image, ref_fit, driven, self.head, person=person_mask(image))
        if self.config.variant == "base_only":
            ref_fit = ref_fit.frames(slice(0, 1))
            ref_fit.static_offset = torch.zeros_like(ref_fit.static_offset)
            ref_fit.dynamic_offset = torch.zeros_like(ref_fit.dynamic_offset)
        return expression_warp(image, ref_fit, driven, self.head)

    # ------------------------------------------------------------------ 6. generation
    @torch.no_grad()
    def generate(self, ref_crop: np.ndarray, ref_normal: np.ndarray, pose_normals: np.ndarray,
                 steps: int | None = None, seed: int = 0,
                 warped: np.ndarray | None = None, generator=None) -> np.ndarray:
        """ref_crop, ref_normal (S, S, 3) uint8, pose_normals (F, S, S, 3) uint8 (``warped``: the
        (F, S, S, 3) uint8 warped reference crops a residual_base "warp" generator starts from;
        ``generator``: default the pipeline's) -> (F, S, S, 3) uint8 generated crops."""
        from expportrait.generator.longvideo import generate
        from expportrait.generator.model import GenCond
        from expportrait.generator.vae import encode_video
        dev, cfg = self.device, self.config
        model = generator or self.generator
        model.to(dev)
        self.vae.to(dev)
        ref = _unit(ref_crop)[None, :, None].to(dev)                              # (1, 3, 1, S, S)
        gcfg = model.config
        if gcfg.residual_base == "warp" and warped is None:  # its base: the warp, encoded per clip
            raise UserError("this generator starts from the warped reference: pass warped crops")
        if gcfg.prediction == "ref_residual" and gcfg.residual_base == "reference":  # held still
            window = cfg.window or gcfg.latent_frames
            static = encode_video(self.vae, ref.expand(-1, -1, pixel_frames(window), -1, -1))
            ref_latents = static[:, :, :1]       # the causal VAE's first latent is the frame's own
        else:
            static, ref_latents = None, encode_video(self.vae, ref)
        cond = GenCond(pose_normals=_unit(pose_normals).permute(1, 0, 2, 3)[None].to(dev),  # (1, 3, F, S, S)
                       ref_normal=_unit(ref_normal)[None].to(dev),                 # (1, 3, S, S)
                       ref_latents=ref_latents,                                   # (1, C, 1, h, w)
                       ref_static=static,                                         # (1, C, T, h, w)
                       appearance=None if warped is None
                       else _unit(warped).permute(1, 0, 2, 3)[None].to(dev))      # (1, 3, F, S, S)
        video = generate(model, self.vae, cond, steps=steps or cfg.steps, seed=seed,
                         window=cfg.window, cfg_scale=cfg.cfg_scale, guide=cfg.guide,
                         sampler=cfg.sampler)                                     # (1, 3, F, S, S)
        return _frames_uint8(video[0])                                            # (F, S, S, 3)

    def synthesize(self, cond: dict, source: Video, source_fit, ref: int, driven,
                   steps: int | None, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """warp_first's learned part (``synth_generator``, else the pipeline's generator, on
        ``synth_crop`` crops, else the face crops of ``cond``): its crops kept only where the warp
        cannot show the answer -> (the warped crops (F, S', S', 3) uint8 with those regions
        generated, the regions' mask (F, S', S') float32 in [0, 1], the crop boxes (F, 3): the
        three arguments of ``paste_back`` over the warped frames)."""
        from expportrait.data.crop import mouth_masks
        unknown = set(self.config.synthesize) - {"mouth"}
        if unknown:
            raise UserError(f"synthesize takes the regions ('mouth',), got {sorted(unknown)}")
        model = self.synth_generator or self.generator
        if self.config.synth_crop is not None:    # its own crops around the same warped frames
            c = replace(self.config.synth_crop, size=model.config.resolution)
            cond = self.conditions(source, source_fit, ref, driven, c, cond["warped_frames"])
        S = cond["warped"].shape[1]
        gen = self.generate(cond["ref_crop"], cond["ref_normal"], cond["pose_normals"], steps, seed,
                            warped=cond["warped"] if model.config.residual_base == "warp" else None,
                            generator=model)                                          # (F, S, S, 3)
        mask = mouth_masks(driven.landmarks68_2d.numpy(), cond["boxes"], S)           # (F, S, S)
        a = mask[..., None]
        crops = np.clip(a * gen + (1 - a) * cond["warped"] + 0.5, 0, 255).astype(np.uint8)
        return crops, mask, cond["boxes"]

    # ------------------------------------------------------------------ 8. alignment
    def align_to_driver(self, frames: np.ndarray, driving: Video, landmarks=None) -> np.ndarray:
        """Result frames (F, H, W, 3) uint8 in the driver's image (self mode) -> the same, each
        moved so that its MediaPipe landmarks land on the driver frame's (``landmarks``: the
        driver's ``detect_driver`` track, else detected here;
        ``transfer.landmark_align.align_frames``; frames without a face on either side are kept)."""
        from expportrait.tracking.landmarks import detect_video
        from expportrait.transfer.landmark_align import MESH_POINTS, align_frames
        drv = landmarks if landmarks is not None else self.detect_driver(driving)
        try:
            res = detect_video(frames)
        except UserError:                     # no face in any result frame: nothing to align
            return frames
        return align_frames(frames, res.points[:, MESH_POINTS, :2], res.valid,
                            drv.points[:, MESH_POINTS, :2], drv.valid)[0]

    # ------------------------------------------------------------------ all steps
    def __call__(self, source: Video, driving: Video, *, steps: int | None = None, seed: int = 0,
                 mode: str | None = None, source_fit=None, driving_fit=None) -> ReenactResult:
        """source: image (1 frame) or video; driving: video (F frames) -> ReenactResult with F
        frames at the source's resolution. Precomputed fits may be injected (tests, demos):
        ``source_fit`` must then cover exactly the frames ``fit_source`` would select."""
        t, times = time.perf_counter(), {}

        def lap(name):
            nonlocal t
            now = time.perf_counter()
            times[name] = round(now - t, 3)
            t = now

        self.check_inputs(source, driving)                                        # 1
        lap("check_inputs")
        if source_fit is None:                                                    # 2
            source_fit, ref = self.fit_source(source)
        else:
            ref = min(self.config.reference_frame, source_fit.num_frames - 1)
        lm = source_fit.landmarks68_2d[ref].numpy()                               # the chosen face
        mode = self.resolve_mode(source, driving, mode, np.concatenate([lm.min(0), lm.max(0)]))
        lap("fit_source")
        drv_lmk = None                                                            # 3
        if driving_fit is None:
            drv_lmk = self.detect_driver(driving)
            driving_fit = self.track_driver(driving, drv_lmk)
        if driving_fit.num_frames != len(driving.frames):
            raise UserError(f"driving fit has {driving_fit.num_frames} frames, the video {len(driving.frames)}")
        lap("track_driver")
        driven = self.transfer(source_fit, driving_fit, mode, ref)                # 4
        lap("transfer")
        cond = self.conditions(source, source_fit, ref, driven)                   # 5
        lap("render_conditions")
        synth = None                        # warp_first's generated regions: (crops, mask, boxes)
        if self.config.variant == "repeat_reference":                             # 6
            crops = np.repeat(cond["ref_crop"][None], len(cond["pose_normals"]), 0)
        elif self.config.variant in WARP_VARIANTS:
            crops = cond["warped"]
            if self.config.variant == "warp_first" and self.config.synthesize:
                synth = self.synthesize(cond, source, source_fit, ref, driven, steps, seed)
                if self.config.synth_crop is None:          # the face crops, generated inside
                    crops = synth[0]
        else:
            crops = self.generate(cond["ref_crop"], cond["ref_normal"], cond["pose_normals"],
                                  steps, seed, warped=cond.get("warped"))
        lap("generate")
        background = source.frames[self.config.reference_frame][None]            # (1, H, W, 3)
        if self.config.variant in WARP_VARIANTS:                                  # 7
            frames = cond["warped_frames"]
            if synth is not None:
                frames = paste_back(frames, synth[0], synth[2], mask=synth[1])
        else:
            if self.config.clear_source_head:
                background = clear_head(background[0], cond["ref_box"][0],
                                        normal_map_coverage(cond["ref_normal"]))[None]
            frames = paste_back(background, crops, cond["boxes"], self.config.crop.feather)
        lap("paste_back")
        if self.config.align_landmarks and mode == "self" and self.config.variant in WARP_VARIANTS:
            frames = self.align_to_driver(frames, driving, drv_lmk)               # 8
        lap("align")
        return ReenactResult(frames=frames, crops=crops, pose_normals=cond["pose_normals"],
                             ref_crop=cond["ref_crop"], ref_normal=cond["ref_normal"],
                             boxes=cond["boxes"], fps=float(driving.fps), mode=mode,
                             reference_frame=self.config.reference_frame, background=background,
                             fits={"source": source_fit, "driving": driving_fit, "driven": driven},
                             timings=times)

    # ------------------------------------------------------------------ checkpoints
    @classmethod
    def from_checkpoint(cls, folder: str | Path | None = None, *, device: str = "cpu",
                        config: PipelineConfig | None = None,
                        tracker_cfg: TrackConfig | None = None) -> "ReenactPipeline":
        """Build from a checkpoint folder (layout in the module docstring; default: the demo)."""
        from expportrait.generator.model import ReenactGenerator
        from expportrait.generator.vae import build_vae
        from expportrait.head import load_head
        from expportrait.transfer.model import ExpressionTransfer
        folder = Path(folder) if folder else default_checkpoint()
        check_checkpoint(folder)
        gen = ReenactGenerator.from_pretrained(folder / "generator").float()
        synth = (ReenactGenerator.from_pretrained(folder / "synth").float()
                 if (folder / "synth" / "config.json").is_file() else None)
        vae = build_vae(gen.config, folder / "vae", torch_dtype=torch.float32)
        extra = {}
        if (folder / "pipeline.json").is_file():
            extra = json.loads((folder / "pipeline.json").read_text())
        config = config or from_dict(PipelineConfig, extra.get("pipeline", {}))
        tracker_cfg = tracker_cfg or from_dict(TrackConfig, extra.get("tracking", {}))
        head = load_head(tracker_cfg.head, model_path=tracker_cfg.head_path, density=tracker_cfg.density)
        transfer = ExpressionTransfer.load(folder / "transfer" if (folder / "transfer").is_dir() else None,
                                           head=tracker_cfg.head)
        return cls(head, tracker_cfg, transfer, gen, vae, config, device=device, synth_generator=synth)



def render_crop_normals(head, fit, cameras: np.ndarray, size: int, idx=None, eyes: bool = True) -> np.ndarray:
    """Normal maps of ``fit`` frames ``idx`` (default all) seen by crop ``cameras`` (n, 4)
    -> (n, size, size, 3) uint8 (``render_normals`` encoding, background 0)."""
    from expportrait.transfer.retarget import render_normals
    if idx is not None:
        fit = fit.frames(torch.as_tensor(np.asarray(idx)))
    cam = torch.as_tensor(np.asarray(cameras), dtype=torch.float32)
    return render_normals(head, replace(fit, camera=cam), eyes=eyes, size=(size, size))
