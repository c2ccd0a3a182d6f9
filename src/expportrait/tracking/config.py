"""Tracking configuration. Loss weights and schedules are data."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class BaseStageConfig:
    rigid_iters: int = 150          # camera-free rigid alignment (rotation, translation)
    iters: int = 350                # joint rotation, translation, beta, psi (, omega)
    lr: float = 0.03
    w_landmark: float = 1.0
    contour_weight: float = 0.3     # weight of the 17 jaw-contour points relative to inner ones
    w_shape_prior: float = 3e-4
    w_exp_prior: float = 1e-4
    w_jaw_prior: float = 1e-3
    w_pose_smooth: float = 20.0     # second-difference smoothness of rotation/translation
    w_exp_smooth: float = 0.05


SMOOTH_FPS = 25.0   # the frame rate BaseStageConfig's temporal smoothness weights are set for


def at_frame_rate(cfg: BaseStageConfig, fps: float) -> BaseStageConfig:
    """``cfg`` for a video at ``fps``: the expression's temporal smoothness weight times
    min(1, (fps / SMOOTH_FPS)^4). A motion's second differences grow with the frame interval
    squared, so at a quarter of the frame rate the same weight holds it back 256x harder: a
    6 fps driver's quick mouth closures were smoothed away (the driven mouth's opening followed
    the driver's at 0.93 at 6.25 fps, 0.98 at 25 fps). A higher frame rate keeps the weight."""
    from dataclasses import replace
    k = min(1.0, (float(fps) / SMOOTH_FPS) ** 4) if fps and fps > 0 else 1.0
    return replace(cfg, w_exp_smooth=cfg.w_exp_smooth * k)


@dataclass(frozen=True)
class PersonalizedStageConfig:
    appearance_iters: int = 40      # albedo + SH on the base geometry (gives the base-stage PSNR;
                                    # rasterised once, so these steps are cheap)
    iters: int = 80                 # joint Delta_g, Delta_f, albedo, SH, pose/expression refinement
                                    # (20 + 40 is 1.7-2.1x faster but falls short of base + 2 dB on
                                    # franck; benchmarks/tracking.py)
    lr_offset: float = 1.5e-4       # metres per step (offsets live on the coarse mesh)
    lr_appearance: float = 0.02
    lr_params: float = 2e-3
    crop_size: int = 128            # per-frame face crop rendered at (at most) crop_size^2
    offset_smoothing_iters: int = 3 # dense Laplacian smoothing after coarse->dense upsampling
    rerasterize_every: int = 4      # visibility recomputed every k iterations (bary always live)
    frames_per_step: int = 0        # 0 = all frames each step
    w_photo: float = 1.0
    w_landmark: float = 0.5
    w_normal: float = 1.0           # only when target normal maps are supplied
    w_depth: float = 1.0            # only when target depth maps are supplied
    w_static_lap: float = 2e4
    w_static_mag: float = 10.0
    w_dyn_mag: float = 3e3
    w_dyn_lap: float = 5e4
    w_dyn_temporal: float = 2e3
    w_sh_smooth: float = 1.0
    w_albedo_lap: float = 20.0


@dataclass(frozen=True)
class TrackConfig:
    head: str = "bfm"               # "bfm" (embedded) | "flame" | "smplx"
    head_path: str | None = None    # model files for flame / smplx
    density: str = "medium"         # dense mesh V^s level
    fov_deg: float = 30.0           # assumed vertical field of view of the input camera
    face_index: int = 0             # which face when several (0 = largest)
    face_detector: str = "auto"     # finds faces before FaceMesh: auto | mediapipe | dlib | both (detection.faces)
    device: str = "auto"            # "auto" -> cuda when available
    base: BaseStageConfig = field(default_factory=BaseStageConfig)
    personalized: PersonalizedStageConfig = field(default_factory=PersonalizedStageConfig)
    stages: tuple[str, ...] = ("base", "personalized")
    seed: int = 0
