"""``ReenactGenerator``: diffusers ``WanTransformer3DModel`` + normal-map condition adapters.

How the conditions enter (paper section 5 leaves this open; decisions recorded here):

* Driving normals N^D_{1:F} -> ``PoseEncoder3D`` -> features on the token grid, **added to the
  patch-embedded video tokens** (a forward hook on ``transformer.patch_embedding``, so the
  transformer's weights and state-dict keys stay exactly diffusers' and real checkpoints load).
* Reference normal N^R -> ``RefEncoder2D`` -> features added to the tokens of every frame.
* Reference image -> VAE latents injected **I2V-style**: the patch embedding sees
  ``[noisy latents C | mask 4 | reference latents C]`` (Wan2.1-I2V's 36-channel layout). Chosen over
  an in-context reference frame because (a) it adds no tokens, so attention cost is unchanged
  (overhead only in the patch embedding), (b) it is exactly the I2V-14B input layout, so that
  checkpoint is used as is and T2V-1.3B is extended with zero input weights, and (c) it is
  window-local: every sliding window of a long video sees the same reference, so identity does not
  drift. Unlike Wan I2V the reference is **broadcast to every latent frame** (mask = 1 everywhere)
  rather than only frame 0, because in reenactment the reference is not the first output frame.
* Optional appearance video (extension, ``use_appearance``): reference colours rendered on the
  driven mesh, stacked with the driving normals as 3 more input channels of the same
  ``PoseEncoder3D`` (one encoder pass instead of two keeps the conditioned forward within ~1.1x
  of the plain one at demo size).
* Condition dropout (training) and the unconditional CFG pass zero the dropped inputs (normal
  maps, appearance, reference latents and mask); a dropped text becomes the null context.
* Text: a learned null context of ``text_len`` tokens unless embeddings are given; I2V-14B's CLIP
  image tokens likewise default to a learned null context.

* Output (``prediction``): ``"velocity"`` is Wan's flow velocity, for real Wan weights.
  ``"ref_residual"`` (the CPU demo, trained from scratch on little data) reads the transformer's
  output as the clean latents' offset from the latents of the reference held still for the clip
  (``GenCond.ref_static``), ``x0 = ref_static + out``, and returns
  the velocity of the straight path through it, ``(x - x0) / sigma``; with a zero output
  projection an untrained model reproduces the reference, so training only has to learn how the
  driven frame differs from it (pose, expression) instead of re-synthesising the face. The loss
  caps its 1 / sigma^2 weight below ``flow.RESIDUAL_SIGMA_FLOOR``. With ``residual_base="warp"``
  the base is instead the latents of the reference image warped by the driven head frame by frame
  (``engines.warp_field.expression_warp``; given as ``GenCond.appearance`` and encoded into
  ``ref_static`` by the caller), so the untrained model already follows pose and expression and
  training learns what a warp cannot show (the open mouth, the turned-away side of the head).

All adapters start at zero (zero projections, zero extra input weights, null contexts fed to the
base too), so an untrained ReenactGenerator returns exactly the base transformer's output.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from pathlib import Path

import torch
from diffusers import WanTransformer3DModel
from torch import Tensor, nn

from expportrait import checkpoint
from expportrait.config import from_dict, to_dict
from expportrait.errors import UserError
from expportrait.generator.config import MASK_CHANNELS, GeneratorConfig
from expportrait.generator.encoders import PoseEncoder3D, RefEncoder2D
from expportrait.generator.flow import NUM_TRAIN_TIMESTEPS, SIGMA_EPS

DROP_KEYS = ("pose", "ref", "appearance", "text")
# GeneratorConfig field -> must match the loaded transformer's config.json
_CHECKED = ("patch_size", "num_attention_heads", "attention_head_dim", "out_channels", "text_dim",
            "freq_dim", "ffn_dim", "num_layers", "cross_attn_norm", "qk_norm", "image_dim",
            "added_kv_proj_dim")


@dataclass
class GenCond:
    """Conditions for one batch (pixel tensors at the clip resolution H = W)."""
    pose_normals: Tensor              # (B, 3, F, H, W) in [-1, 1], driving normal maps N^D_{1:F}
    ref_normal: Tensor                # (B, 3, H, W) in [-1, 1], reference normal map N^R
    ref_latents: Tensor               # (B, C, 1, h, w) normalised VAE latents of the reference
    ref_static: Tensor | None = None  # (B, C, T', h, w) latents of the reference held still for
                                      # 4 (T'-1) + 1 frames, T' >= T ("ref_residual" models' base;
                                      # residual_base "warp": the latents of ``appearance``)
    appearance: Tensor | None = None  # (B, 3, F, H, W) in [-1, 1]: use_appearance's rendered
                                      # colours, or residual_base "warp"'s warped reference
    text: Tensor | None = None        # (B, L, text_dim) text embeddings; None -> null context
    clip_image: Tensor | None = None  # (B, image_len, image_dim) CLIP tokens (I2V-14B) or None

    def frames(self, start: int, stop: int) -> "GenCond":
        """The same conditions for pixel frames ``start:stop`` (pose normals, appearance)."""
        app = None if self.appearance is None else self.appearance[:, :, start:stop]
        return replace(self, pose_normals=self.pose_normals[:, :, start:stop], appearance=app)

    def to(self, device=None, dtype=None) -> "GenCond":
        return GenCond(**{f.name: None if getattr(self, f.name) is None
                          else getattr(self, f.name).to(device=device, dtype=dtype)
                          for f in fields(self)})

    def repeat(self, n: int) -> "GenCond":
        """Batch repeated ``n`` times along dim 0 (for CFG batching)."""
        return GenCond(**{f.name: None if getattr(self, f.name) is None
                          else torch.cat([getattr(self, f.name)] * n) for f in fields(self)})


@dataclass
class CondFeatures:
    """Timestep-independent condition inputs, computed once per sampling run."""
    tokens: Tensor         # (B, D, T', h', w') added to the patch-embedded tokens
    channels: Tensor       # (B, 4 + C, T, h, w) mask + reference latents for the patch embedding
    context: Tensor        # (B, L, text_dim) text or null context
    image: Tensor | None   # (B, image_len, image_dim) or None
    base: Tensor | None = None  # (B, C, T, h, w) reference latents ("ref_residual"), else None


class ReenactGenerator(nn.Module):
    """Wan2.1 DiT conditioned on normal maps and a reference image; predicts flow velocity."""

    def __init__(self, config: GeneratorConfig,
                 transformer: WanTransformer3DModel | None = None):
        super().__init__()
        self.config = config
        if transformer is None:
            transformer = WanTransformer3DModel(**config.transformer_kwargs())
        else:
            _check_transformer(config, dict(transformer.config))
        if transformer.config.in_channels == config.z_dim:
            _expand_patch_embedding(transformer, config.model_in_channels)
        self.transformer = transformer
        dim, dtype = config.inner_dim, transformer.patch_embedding.weight.dtype
        self.pose_encoder = PoseEncoder3D(config.pose_channels, dim, config.temporal_factor,
                                          in_channels=6 if config.use_appearance else 3)
        self.ref_encoder = RefEncoder2D(config.ref_channels, dim)
        self.null_text = nn.Parameter(torch.zeros(1, config.text_len, config.text_dim))
        self.null_image = (nn.Parameter(torch.zeros(1, config.image_len, config.image_dim))
                           if config.image_dim else None)
        for module in (self.pose_encoder, self.ref_encoder):
            module.to(dtype)
        if config.prediction == "ref_residual":   # untrained, the model returns the reference
            nn.init.zeros_(transformer.proj_out.weight)
            nn.init.zeros_(transformer.proj_out.bias)
        self._tokens: Tensor | None = None
        transformer.patch_embedding.register_forward_hook(self._add_tokens)
        if config.trainable == "adapters":
            for name, p in transformer.named_parameters():
                p.requires_grad_(name.startswith("patch_embedding."))

    # ---- forward -------------------------------------------------------------------------
    def forward(self, latents: Tensor, timestep: Tensor, cond: GenCond,
                drop: dict[str, Tensor] | None = None) -> Tensor:
        """Predicted velocity ``(B, C, T, h, w)``.

        ``latents: (B, C, T, h, w)`` noisy normalised latents; ``timestep: (B,)`` (or scalar) in
        [0, 1000] (= 1000 sigma); ``drop``: optional per-sample bool masks ``(B,)`` under keys
        ``pose`` (driving normals + appearance), ``ref`` (reference latents + N^R + appearance),
        ``appearance``, ``text`` (-> null context); True drops that condition for that sample.
        """
        feats = self.encode_conditions(cond, latents.shape[2], drop)
        return self.forward_features(latents, timestep, feats)

    def encode_conditions(self, cond: GenCond, latent_frames: int,
                          drop: dict[str, Tensor] | None = None) -> CondFeatures:
        """Everything that does not depend on the noisy latents or the timestep."""
        drop = drop or {}
        unknown = set(drop) - set(DROP_KEYS)
        if unknown:
            raise UserError(f"unknown condition drop keys {sorted(unknown)}; known: {DROP_KEYS}")
        batch = cond.pose_normals.shape[0]
        dtype = self.dtype
        device = self.null_text.device
        expected_f = (latent_frames - 1) * 4 + 1
        if cond.pose_normals.shape[2] != expected_f:
            raise UserError(f"pose_normals have {cond.pose_normals.shape[2]} frames, the latents "
                            f"need {expected_f} ({latent_frames} latent frames)")

        def keep(*keys: str) -> Tensor:               # (B,) 1.0 keep / 0.0 drop
            k = torch.ones(batch, device=device, dtype=dtype)
            for key in keys:
                if key in drop:
                    k = k * (~drop[key].to(device=device, dtype=torch.bool)).to(dtype)
            return k

        k_pose, k_ref, k_app = keep("pose"), keep("ref"), keep("pose", "ref", "appearance")
        b5 = (batch, 1, 1, 1, 1)
        video = cond.pose_normals.to(dtype) * k_pose.view(b5)                     # (B, 3, F, H, W)
        if self.config.use_appearance:
            if cond.appearance is None:
                raise UserError(f"preset {self.config.preset!r} uses the appearance condition; "
                                "GenCond.appearance is missing")
            app = cond.appearance.to(dtype) * k_app.view(b5)
            video = torch.cat([video, app], 1)                                    # (B, 6, F, H, W)
        # the small conv encoders run outside any autocast, in their weights' dtype: CPU bf16
        # autocast gave NaN gradients in PoseEncoder3D's second conv now and then (tests)
        enc_dtype = self.pose_encoder.proj.weight.dtype
        with torch.autocast(device_type=video.device.type, enabled=False):
            tokens = self.pose_encoder(video.to(enc_dtype)).to(dtype)             # (B, D, T', h', w')
            ref = self.ref_encoder((cond.ref_normal.to(dtype) * k_ref.view(-1, 1, 1, 1))
                                   .to(enc_dtype)).to(dtype)                      # (B, D, h', w')
        tokens = tokens + ref.unsqueeze(2)                                        # broadcast over T'
        ref_lat = cond.ref_latents.to(dtype)                                       # (B, C, 1, h, w)
        mask = torch.ones_like(ref_lat[:, :1]).expand(-1, MASK_CHANNELS, -1, -1, -1)
        channels = torch.cat([mask, ref_lat], 1) * k_ref.view(b5)                  # (B, 4+C, 1, h, w)
        channels = channels.expand(-1, -1, latent_frames, -1, -1)                  # (B, 4+C, T, h, w)
        null = self.null_text.expand(batch, -1, -1)
        if cond.text is None:
            context = null
        else:
            if cond.text.shape[1] != null.shape[1] and self.config.added_kv_proj_dim:
                raise UserError(f"text embeddings must have {null.shape[1]} tokens for this model")
            context = cond.text.to(dtype)
            if "text" in drop:
                if context.shape[1] != null.shape[1]:
                    raise UserError("dropping text needs text embeddings of text_len tokens")
                context = torch.where(drop["text"].to(device).view(-1, 1, 1), null, context)
        image = None
        if self.null_image is not None:
            image = self.null_image.expand(batch, -1, -1)
            if cond.clip_image is not None:
                k_img = keep("ref").view(-1, 1, 1).bool()
                image = torch.where(k_img, cond.clip_image.to(dtype), image)
        base = None
        if self.config.prediction == "ref_residual":
            # a still video of the reference, not its one-frame latent repeated: the causal VAE's
            # later latents summarise 4 frames each and differ from the first (decoded, the
            # repeated one-frame latent fades from 18.6 to 13.2 dB over 17 frames; the still
            # video's latents stay at 19-20 dB). Causal, so the first T of T' latents are T's.
            if cond.ref_static is None or cond.ref_static.shape[2] < latent_frames:
                raise UserError(f"a ref_residual generator needs GenCond.ref_static with at least "
                                f"{latent_frames} latent frames")
            base = cond.ref_static[:, :, :latent_frames].to(dtype) * k_ref.view(b5)  # (B, C, T, h, w)
        return CondFeatures(tokens=tokens, channels=channels, context=context, image=image, base=base)

    def forward_features(self, latents: Tensor, timestep: Tensor, feats: CondFeatures) -> Tensor:
        """Velocity ``(B, C, T, h, w)`` from precomputed ``CondFeatures`` (see ``forward``)."""
        batch = latents.shape[0]
        timestep = torch.as_tensor(timestep, device=latents.device)
        if timestep.ndim == 0:
            timestep = timestep.expand(batch)
        x = torch.cat([latents.to(self.dtype), feats.channels], 1)        # (B, 2C+4, T, h, w)
        self._tokens = feats.tokens
        try:
            out = self.transformer(x, timestep, feats.context,
                                   encoder_hidden_states_image=feats.image, return_dict=False)[0]
        finally:
            self._tokens = None
        if self.config.prediction == "ref_residual":
            # out is the clean latent's offset from the reference: x0 = ref + out, and the velocity
            # of the straight path through x0 is (x - x0) / sigma (exact for every sampler step)
            sigma = (timestep.to(out.dtype) / NUM_TRAIN_TIMESTEPS).clamp_min(SIGMA_EPS).view(-1, 1, 1, 1, 1)
            out = (latents.to(out.dtype) - (feats.base.to(out.dtype) + out)) / sigma
        return out                                                         # (B, C, T, h, w)

    def _add_tokens(self, module: nn.Module, inputs, output: Tensor) -> Tensor:
        """patch_embedding hook: ``output (B, D, T', h', w') + condition tokens``."""
        if self._tokens is None:
            return output
        if self._tokens.shape != output.shape:
            raise UserError(f"condition features {tuple(self._tokens.shape)} do not match the "
                            f"token grid {tuple(output.shape)} (check resolution / frame counts)")
        return output + self._tokens.to(output.dtype)

    # ---- parameters and checkpoints ------------------------------------------------------
    @property
    def dtype(self) -> torch.dtype:
        return self.null_text.dtype

    def trainable_parameters(self) -> list[nn.Parameter]:
        """``all``: every weight; ``adapters``: encoders, null contexts and the patch embedding."""
        return [p for p in self.parameters() if p.requires_grad]

    def enable_gradient_checkpointing(self) -> None:
        self.transformer.enable_gradient_checkpointing()

    def save_pretrained(self, folder: str | Path, dtype: torch.dtype | None = None) -> Path:
        """``folder/config.json`` (GeneratorConfig) + ``folder/model.safetensors``."""
        return checkpoint.save_pretrained(self, to_dict(self.config), folder, dtype=dtype)

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> "ReenactGenerator":
        return checkpoint.from_pretrained(
            folder, lambda data: cls(from_dict(GeneratorConfig, data)))

    @classmethod
    def residual_start(cls, folder: str | Path, fresh: tuple[str, ...] = (), **changes) -> "ReenactGenerator":
        """The generator in ``folder`` with ``changes`` to its config (e.g. ``prediction=
        "ref_residual"``, ``residual_base="warp"``) and its output projection zeroed, fp32: a
        ref_residual model that starts by returning its base, keeping the trained trunk.
        ``fresh``: state-dict key prefixes not taken from ``folder`` (their shapes follow a changed
        patch or VAE, e.g. ``("transformer.patch_embedding.", "transformer.proj_out.")``); every
        other weight must be there, and every fresh prefix must name a weight."""
        from dataclasses import replace
        src = cls.from_pretrained(folder)
        model = cls(replace(src.config, **changes))
        state = {k: v for k, v in src.state_dict().items() if not k.startswith(tuple(fresh))}
        missing, unexpected = model.load_state_dict(state, strict=not fresh)
        left = [k for k in missing if not k.startswith(tuple(fresh))]
        unused = [p for p in fresh if not any(k.startswith(p) for k in missing)]
        if unexpected or left or unused:
            raise UserError(f"residual_start from {folder}: unexpected {unexpected}, missing {left}, "
                            f"fresh prefixes matching nothing {unused}")
        nn.init.zeros_(model.transformer.proj_out.weight)
        nn.init.zeros_(model.transformer.proj_out.bias)
        return model.float()

    @classmethod
    def from_wan(cls, config: GeneratorConfig, wan_dir: str | Path,
                 torch_dtype: torch.dtype | None = None) -> "ReenactGenerator":
        """Load a real diffusers Wan2.1 transformer (pipeline root with ``transformer/`` or the
        transformer folder itself: ``config.json`` + safetensors shards) from a local directory."""
        folder = Path(wan_dir)
        if (folder / "transformer" / "config.json").is_file():
            folder = folder / "transformer"
        if not (folder / "config.json").is_file():
            raise UserError(f"{wan_dir}: no Wan transformer (config.json) found")
        _check_transformer(config, json.loads((folder / "config.json").read_text()))
        try:
            transformer = WanTransformer3DModel.from_pretrained(
                str(folder), local_files_only=True, torch_dtype=torch_dtype)
        except (OSError, ValueError) as exc:
            raise UserError(f"{folder}: cannot load the Wan transformer ({exc})") from None
        return cls(config, transformer=transformer)


def _check_transformer(config: GeneratorConfig, loaded: dict) -> None:
    """UserError naming every field where a transformer config differs from ``config``."""
    want = config.transformer_kwargs()
    bad = []
    for key in _CHECKED:
        have = loaded.get(key)
        have = tuple(have) if isinstance(have, list) else have
        if have != want[key]:
            bad.append(f"{key}={have!r} (preset {config.preset!r}: {want[key]!r})")
    if loaded.get("in_channels") not in (config.z_dim, config.model_in_channels):
        bad.append(f"in_channels={loaded.get('in_channels')!r} (need {config.z_dim} or "
                   f"{config.model_in_channels})")
    if bad:
        raise UserError("Wan transformer does not match the generator config: " + ", ".join(bad))


@torch.no_grad()
def _expand_patch_embedding(transformer: WanTransformer3DModel, in_channels: int) -> None:
    """Widen ``patch_embedding`` to ``in_channels`` inputs; the new input weights are zero."""
    old = transformer.patch_embedding
    new = nn.Conv3d(in_channels, old.out_channels, old.kernel_size, stride=old.stride,
                    device=old.weight.device, dtype=old.weight.dtype)
    new.weight.zero_()
    new.weight[:, :old.in_channels] = old.weight
    new.bias.copy_(old.bias)
    transformer.patch_embedding = new
    transformer.register_to_config(in_channels=in_channels)
