"""``GeneratorConfig``: the conditioned Wan2.1 DiT, its VAE, its condition encoders and sampler.

Transformer fields mirror diffusers ``WanTransformer3DModel.__init__`` and VAE fields mirror
``AutoencoderKLWan.__init__`` so that real Wan2.1 diffusers folders load unchanged. Temporal
compression is 4; spatial compression is 2 per VAE downsampling stage (``len(dim_mult) - 1`` of them:
8 for Wan, and for every preset but demo16); a latent grid of ``T x h x w`` with
``T = (F - 1) // 4 + 1``, ``h = H / vae_spatial`` is patchified by ``patch_size`` into tokens.

Presets (parameters counted by ``benchmarks/generator.py``; adapters = condition encoders, extra
patch-embedding inputs and null contexts):

=============  ==================  ========  ========  ==============================================
preset         base transformer    adapters  VAE       use
=============  ==================  ========  ========  ==============================================
tiny           0.04 M              0.04 M    0.22 M    tests, seconds on CPU (32 px, 9 frames)
demo           6.11 M              0.14 M    1.83 M    embedded default; 64 px, 17 frames, 320 tokens;
                                                       a batch-2 AdamW step is ~0.4 s of one CPU core
demo16         6.14 M              0.15 M    1.45 M    demo with a 4x VAE (16x16 latents at 64 px, 2x2 patches:
                                                       the same 320 tokens); see below
wan2.1-1.3b    1419.0 M            4.56 M    126.9 M   Wan2.1-T2V-1.3B widened to I2V-style inputs
wan2.1-14b     16394.9 M           6.61 M    126.9 M   Wan2.1-I2V-14B-480P (36-channel input, CLIP)
=============  ==================  ========  ========  ==============================================

The appearance extension is off in every preset (``replace(get_preset("demo"),
use_appearance=True)`` turns it on; its benefit is not measured yet). demo16: the demo's 8x8
latents keep too little of a 64 px face for its expression to survive the VAE (real crops through
the demo VAE re-track at AED 1.34, as much as at 16 px; benchmarks/README.md "reenact");
demo16 has 16x16 latents for the same transformer cost. The demo VAE has no released
weights: it must be trained too (``vae.vae_loss``), the real Wan
VAE (``build_vae(cfg, dir)``) is used for the wan2.1 presets.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from expportrait.errors import UserError

# Wan2.1 VAE latent statistics (diffusers AutoencoderKLWan defaults, from the released VAE).
WAN_LATENTS_MEAN = (-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
                    0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921)
WAN_LATENTS_STD = (2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
                   3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160)

REF_MODES = ("i2v_concat",)   # reference-image injection modes (see model.py for why)
TRAINABLE = ("all", "adapters")
PREDICTIONS = ("velocity", "ref_residual")   # what the transformer's output means (model.py)
RESIDUAL_BASES = ("reference", "warp")   # ref_residual: still reference | warped reference
TEMPORAL_COMPRESSION = 4      # VAE frames per latent frame (after the first)
MASK_CHANNELS = 4             # I2V mask channels (= temporal compression, as in Wan I2V)


@dataclass(frozen=True)
class GeneratorConfig:
    preset: str                                   # name of the preset this config started from
    # --- transformer (diffusers WanTransformer3DModel.__init__) ---------------------------------
    patch_size: tuple[int, int, int] = (1, 2, 2)  # (t, h, w) latent patch per token
    num_attention_heads: int = 2                  # heads; inner dim = heads * head dim
    attention_head_dim: int = 16                  # channels per head
    in_channels: int = 16                         # base checkpoint patch-embed input: 16 T2V, 36 I2V
    out_channels: int = 16                        # predicted velocity channels (= z_dim)
    text_dim: int = 32                            # text-embedding width (umT5: 4096)
    freq_dim: int = 32                            # sinusoidal timestep embedding width
    ffn_dim: int = 64                             # feed-forward hidden width
    num_layers: int = 2                           # transformer blocks
    cross_attn_norm: bool = True                  # LayerNorm before cross-attention
    qk_norm: str | None = "rms_norm_across_heads"  # query/key norm kind
    eps: float = 1e-6                             # norm epsilon
    image_dim: int | None = None                  # CLIP image-token width (I2V-14B: 1280) or None
    added_kv_proj_dim: int | None = None          # image-token K/V projection (I2V-14B: 5120)
    rope_max_seq_len: int = 1024                  # RoPE table length per axis
    pos_embed_seq_len: int | None = None          # image-token pos-embed length (Wan2.1: None)
    image_len: int = 257                          # CLIP image tokens (null context when image_dim)
    # --- VAE (diffusers AutoencoderKLWan.__init__) ----------------------------------------------
    vae_base_dim: int = 8                         # first VAE stage width (Wan: 96)
    z_dim: int = 16                               # latent channels C
    dim_mult: tuple[int, ...] = (1, 2, 2, 2)      # per-stage width multipliers (3 downsamples = 8x)
    #   (one downsample between consecutive stages: spatial compression 2 ** (len - 1))
    num_res_blocks: int = 1                       # residual blocks per VAE stage (Wan: 2)
    temperal_downsample: tuple[bool, ...] = (False, True, True)  # time downsampling per stage (4x)
    latents_mean: tuple[float, ...] = (0.0,) * 16  # per-channel latent mean for normalisation
    latents_std: tuple[float, ...] = (1.0,) * 16   # per-channel latent std for normalisation
    # --- conditions -------------------------------------------------------------------------
    pose_channels: tuple[int, ...] = (8, 16, 16, 32)  # PoseEncoder3D widths, one per 2x downsample
    ref_channels: tuple[int, ...] = (8, 16, 16, 32)   # RefEncoder2D widths, one per 2x downsample
    use_appearance: bool = False                  # extension: rendered reference colours in pose
    text_len: int = 4                             # learned null-context length (Wan: 512)
    ref_mode: str = "i2v_concat"                  # reference image injection (REF_MODES)
    trainable: str = "all"                        # "all" (full fine-tune) or "adapters"
    prediction: str = "velocity"                  # "velocity" (Wan) or "ref_residual" (PREDICTIONS)
    residual_base: str = "reference"              # ref_residual's base (RESIDUAL_BASES): the
    #   reference held still, or "warp": the reference image warped by the driven head per frame
    #   (engines.warp_field; GenCond.appearance carries it, encoded per clip by the sampler)
    # --- clip and sampler -------------------------------------------------------------------
    resolution: int = 32                          # square crop size H = W in pixels
    num_frames: int = 9                           # frames per clip / window, 4k+1
    flow_shift: float = 3.0                       # timestep shift s: sigma' = s*sigma/(1+(s-1)*sigma)
    cfg_scale: float = 1.0                        # guidance on ref/pose conditions (1 = off)
    sample_steps: int = 4                         # Euler / UniPC steps

    def __post_init__(self) -> None:
        if self.ref_mode not in REF_MODES:
            raise UserError(f"ref_mode must be one of {REF_MODES}, got {self.ref_mode!r}")
        if self.prediction not in PREDICTIONS:
            raise UserError(f"prediction must be one of {PREDICTIONS}, got {self.prediction!r}")
        if self.residual_base not in RESIDUAL_BASES:
            raise UserError(f"residual_base must be one of {RESIDUAL_BASES}, got {self.residual_base!r}")
        if self.residual_base == "warp" and (self.prediction != "ref_residual" or self.use_appearance):
            raise UserError("residual_base 'warp' needs prediction 'ref_residual' and no use_appearance")
        if self.trainable not in TRAINABLE:
            raise UserError(f"trainable must be one of {TRAINABLE}, got {self.trainable!r}")
        if self.num_frames < 1 or (self.num_frames - 1) % TEMPORAL_COMPRESSION:
            raise UserError(f"num_frames must be 4k+1, got {self.num_frames}")
        if len(self.temperal_downsample) != len(self.dim_mult) - 1 or len(self.dim_mult) < 2:
            raise UserError("temperal_downsample needs one entry per VAE downsample (len(dim_mult) - 1)")
        if sum(self.temperal_downsample) != 2:
            raise UserError("the VAE must compress time 4x: exactly two temperal_downsample entries True")
        if self.resolution % self.spatial_factor:
            raise UserError(f"resolution must be a multiple of {self.spatial_factor}, "
                            f"got {self.resolution}")
        if self.out_channels != self.z_dim:
            raise UserError(f"out_channels ({self.out_channels}) must equal z_dim ({self.z_dim})")
        if self.in_channels not in (self.z_dim, self.model_in_channels):
            raise UserError(f"in_channels must be z_dim ({self.z_dim}, T2V) or "
                            f"{self.model_in_channels} (I2V), got {self.in_channels}")
        if len(self.latents_mean) != self.z_dim or len(self.latents_std) != self.z_dim:
            raise UserError("latents_mean / latents_std need z_dim entries")
        for name in ("pose_channels", "ref_channels"):
            if len(getattr(self, name)) != self.spatial_stages:
                raise UserError(f"{name} needs {self.spatial_stages} entries (one per 2x "
                                f"downsample to the token grid), got {len(getattr(self, name))}")
        if self.patch_size[0] not in (1, 2, 4):
            raise UserError("patch_size[0] must be 1, 2 or 4")

    # ---- derived sizes -------------------------------------------------------------------
    @property
    def needs_appearance(self) -> bool:
        """Whether training clips and GenCond must carry the appearance video."""
        return self.use_appearance or self.residual_base == "warp"

    @property
    def inner_dim(self) -> int:
        """Transformer width D = heads * head dim."""
        return self.num_attention_heads * self.attention_head_dim

    @property
    def model_in_channels(self) -> int:
        """Patch-embedding input: noisy latents C + mask 4 + reference latents C."""
        return 2 * self.z_dim + MASK_CHANNELS

    @property
    def spatial_factor(self) -> int:
        """Pixels per token side: VAE compression x patch."""
        return self.vae_spatial * self.patch_size[1]

    @property
    def vae_spatial(self) -> int:
        """VAE pixels per latent pixel (Wan: 8)."""
        return vae_spatial_compression(self.dim_mult)

    @property
    def temporal_factor(self) -> int:
        """Frames per token in time (after the causal first frame): VAE 4 x patch."""
        return TEMPORAL_COMPRESSION * self.patch_size[0]

    @property
    def spatial_stages(self) -> int:
        return int(math.log2(self.spatial_factor))

    @property
    def latent_frames(self) -> int:
        """T for ``num_frames``."""
        return latent_frames(self.num_frames)

    def transformer_kwargs(self) -> dict:
        """``WanTransformer3DModel(**kwargs)`` for the *base* checkpoint layout."""
        return dict(patch_size=tuple(self.patch_size), num_attention_heads=self.num_attention_heads,
                    attention_head_dim=self.attention_head_dim, in_channels=self.in_channels,
                    out_channels=self.out_channels, text_dim=self.text_dim,
                    freq_dim=self.freq_dim, ffn_dim=self.ffn_dim, num_layers=self.num_layers,
                    cross_attn_norm=self.cross_attn_norm, qk_norm=self.qk_norm, eps=self.eps,
                    image_dim=self.image_dim, added_kv_proj_dim=self.added_kv_proj_dim,
                    rope_max_seq_len=self.rope_max_seq_len,
                    pos_embed_seq_len=self.pos_embed_seq_len)

    def vae_kwargs(self) -> dict:
        """``AutoencoderKLWan(**kwargs)``."""
        return dict(base_dim=self.vae_base_dim, z_dim=self.z_dim, dim_mult=list(self.dim_mult),
                    num_res_blocks=self.num_res_blocks,
                    temperal_downsample=list(self.temperal_downsample),
                    latents_mean=list(self.latents_mean), latents_std=list(self.latents_std))


def vae_spatial_compression(dim_mult) -> int:
    """Pixels per latent pixel of an ``AutoencoderKLWan`` with these stage multipliers: 2 per
    downsample between stages (diffusers' own ``spatial_compression_ratio`` is always 8)."""
    return 2 ** (len(dim_mult) - 1)


def latent_frames(num_frames: int) -> int:
    """Latent frames T for F = 4k+1 video frames: T = (F - 1) // 4 + 1."""
    return (num_frames - 1) // TEMPORAL_COMPRESSION + 1


def pixel_frames(latent_frames: int) -> int:
    """Video frames F = 4 (T - 1) + 1 that T latent frames decode to (inverse of ``latent_frames``)."""
    return TEMPORAL_COMPRESSION * (latent_frames - 1) + 1


def _wan_common(**kw) -> dict:
    return dict(patch_size=(1, 2, 2), attention_head_dim=128, in_channels=16, out_channels=16,
                text_dim=4096, freq_dim=256, cross_attn_norm=True, eps=1e-6, rope_max_seq_len=1024,
                vae_base_dim=96, z_dim=16, dim_mult=(1, 2, 4, 4), num_res_blocks=2,
                temperal_downsample=(False, True, True), latents_mean=WAN_LATENTS_MEAN,
                latents_std=WAN_LATENTS_STD, pose_channels=(32, 64, 128, 256),
                ref_channels=(32, 64, 128, 256), text_len=512, resolution=512,
                num_frames=81, flow_shift=3.0, cfg_scale=2.0, sample_steps=40, **kw)


PRESETS: dict[str, GeneratorConfig] = {
    # seconds on CPU; random weights in tests
    "tiny": GeneratorConfig(preset="tiny"),
    # embedded default: CPU-trainable at 64 px, 17-frame clips (5 latent frames, 8x8 latents)
    "demo": GeneratorConfig(
        preset="demo", patch_size=(1, 1, 1), num_attention_heads=4, attention_head_dim=64,
        text_dim=64, freq_dim=64, ffn_dim=768, num_layers=6, text_len=8, vae_base_dim=24,
        pose_channels=(16, 32, 64), ref_channels=(16, 32, 64), use_appearance=False,
        resolution=64, num_frames=17, flow_shift=3.0, cfg_scale=1.5, sample_steps=12),
    # Wan2.1-T2V-1.3B backbone: dim 1536 = 12 x 128, ffn 8960, 30 layers
    "wan2.1-1.3b": GeneratorConfig(preset="wan2.1-1.3b", **_wan_common(
        num_attention_heads=12, ffn_dim=8960, num_layers=30, qk_norm="rms_norm_across_heads")),
    # Wan2.1-I2V-14B-480P backbone: dim 5120 = 40 x 128, ffn 13824, 40 layers, 36 input channels,
    # CLIP image tokens (1280-d, learned null tokens unless given)
    "wan2.1-14b": GeneratorConfig(preset="wan2.1-14b", **{**_wan_common(
        num_attention_heads=40, ffn_dim=13824, num_layers=40, qk_norm="rms_norm_across_heads",
        image_dim=1280, added_kv_proj_dim=5120), "in_channels": 36}),
}
PRESETS["demo16"] = dataclasses.replace(
    PRESETS["demo"], preset="demo16", patch_size=(1, 2, 2), dim_mult=(1, 2, 2),
    temperal_downsample=(True, True))     # 16x16 latents at 64 px, still 8x8 tokens per frame


def get_preset(name: str) -> GeneratorConfig:
    """The preset ``name``; ``UserError`` naming the known presets otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise UserError(f"unknown generator preset {name!r}; known: {sorted(PRESETS)}") from None


def replace(cfg: GeneratorConfig, **changes) -> GeneratorConfig:
    """``dataclasses.replace`` (validates again)."""
    return dataclasses.replace(cfg, **changes)
