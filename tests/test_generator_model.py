"""Generator model side: presets, zero-init adapters, checkpoints, Wan loading, VAE, objective."""
from __future__ import annotations

import copy

import pytest
import torch
from diffusers import WanTransformer3DModel

from expportrait.errors import UserError
from expportrait.generator.config import PRESETS, get_preset, latent_frames, pixel_frames, replace
from expportrait.generator.encoders import PoseEncoder3D, RefEncoder2D
from expportrait.generator.flow import face_weights, flow_matching_loss, sample_timesteps
from expportrait.generator.model import GenCond, ReenactGenerator
from expportrait.generator.vae import build_vae, decode_latents, encode_video

TINY = get_preset("tiny")


def _cond(cfg, batch=2, frames=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    f, r = frames or cfg.num_frames, cfg.resolution
    lat = r // 8
    return GenCond(pose_normals=torch.rand(batch, 3, f, r, r, generator=g) * 2 - 1,
                   ref_normal=torch.rand(batch, 3, r, r, generator=g) * 2 - 1,
                   ref_latents=torch.randn(batch, cfg.z_dim, 1, lat, lat, generator=g),
                   appearance=(torch.rand(batch, 3, f, r, r, generator=g) * 2 - 1
                               if cfg.use_appearance else None))


def _latents(cfg, batch=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    lat = cfg.resolution // 8
    return torch.randn(batch, cfg.z_dim, cfg.latent_frames, lat, lat, generator=g)


def _perturb(model, seed=3):
    """Give every zero-initialised adapter weight random values (a 'trained' model)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.abs().sum() == 0:
                p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return model


def test_presets_valid_and_unknown_rejected():
    assert set(PRESETS) == {"tiny", "demo", "demo16", "wan2.1-1.3b", "wan2.1-14b"}
    big = get_preset("wan2.1-1.3b")
    assert (big.inner_dim, big.ffn_dim, big.num_layers, big.text_dim) == (1536, 8960, 30, 4096)
    assert get_preset("wan2.1-14b").in_channels == 36
    with pytest.raises(UserError, match="unknown generator preset"):
        get_preset("nope")
    with pytest.raises(UserError, match="4k\\+1"):
        replace(TINY, num_frames=8)


@pytest.mark.parametrize("appearance", [False, True])
def test_zero_init_reproduces_base_t2v(appearance):
    cfg = replace(TINY, use_appearance=appearance)
    torch.manual_seed(0)
    base = WanTransformer3DModel(**cfg.transformer_kwargs())
    model = ReenactGenerator(cfg, transformer=copy.deepcopy(base))
    x, cond = _latents(cfg), _cond(cfg)
    t = torch.tensor([900.0, 150.0])
    out = model(x, t, cond)
    ref = base(x, t, model.null_text.expand(2, -1, -1), return_dict=False)[0]
    assert out.shape == x.shape
    assert torch.equal(out, ref)
    _perturb(model)                                   # adapters now matter
    assert not torch.allclose(model(x, t, cond), ref, atol=1e-4)


def test_zero_init_reproduces_base_i2v_layout():
    """A 36-channel I2V backbone with CLIP image tokens (tiny I2V-14B analogue) is used as is."""
    cfg = replace(TINY, in_channels=36, image_dim=16, added_kv_proj_dim=32, text_len=512,
                  image_len=5)
    torch.manual_seed(0)
    base = WanTransformer3DModel(**cfg.transformer_kwargs())
    model = ReenactGenerator(cfg, transformer=copy.deepcopy(base))
    x, cond = _latents(cfg), _cond(cfg)
    t = torch.tensor([500.0, 20.0])
    feats = model.encode_conditions(cond, x.shape[2])
    ref = base(torch.cat([x, feats.channels], 1), t, model.null_text.expand(2, -1, -1),
               encoder_hidden_states_image=model.null_image.expand(2, -1, -1),
               return_dict=False)[0]
    assert torch.equal(model(x, t, cond), ref)


def test_save_load_round_trip_bit_exact(tmp_path):
    torch.manual_seed(0)
    cfg = replace(TINY, use_appearance=True)
    model = _perturb(ReenactGenerator(cfg))
    model.save_pretrained(tmp_path / "ckpt")
    loaded = ReenactGenerator.from_pretrained(tmp_path / "ckpt")
    assert loaded.config == cfg
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    x, cond, t = _latents(cfg), _cond(cfg), torch.tensor([300.0, 700.0])
    assert torch.equal(model(x, t, cond), loaded(x, t, cond))
    with pytest.raises(UserError, match="does not match the model"):
        other = replace(cfg, use_appearance=False)
        from expportrait.checkpoint import load_state_strict
        load_state_strict(ReenactGenerator(other), tmp_path / "ckpt")


def test_from_wan_loads_diffusers_folder(tmp_path):
    torch.manual_seed(0)
    base = WanTransformer3DModel(**TINY.transformer_kwargs())
    base.save_pretrained(tmp_path / "wan" / "transformer")   # pipeline-root layout
    model = ReenactGenerator.from_wan(TINY, tmp_path / "wan")
    x, cond, t = _latents(TINY), _cond(TINY), torch.tensor([400.0, 600.0])
    ref = base(x, t, model.null_text.expand(2, -1, -1), return_dict=False)[0]
    assert torch.allclose(model(x, t, cond), ref, atol=1e-6)
    assert model.transformer.config.in_channels == TINY.model_in_channels
    with pytest.raises(UserError, match="num_layers"):
        ReenactGenerator.from_wan(replace(TINY, num_layers=3), tmp_path / "wan")
    with pytest.raises(UserError, match="no Wan transformer"):
        ReenactGenerator.from_wan(TINY, tmp_path)


def test_condition_dropout_is_per_sample():
    torch.manual_seed(0)
    model = _perturb(ReenactGenerator(TINY))
    x, cond, t = _latents(TINY), _cond(TINY), torch.tensor([500.0, 500.0])
    full = model(x, t, cond)
    for key in ("pose", "ref"):
        out = model(x, t, cond, drop={key: torch.tensor([True, False])})
        assert torch.equal(out[1], full[1])
        assert not torch.allclose(out[0], full[0], atol=1e-5)
    with pytest.raises(UserError, match="drop keys"):
        model(x, t, cond, drop={"bogus": torch.tensor([True, False])})


def test_adapter_mode_freezes_backbone():
    model = ReenactGenerator(replace(TINY, trainable="adapters"))
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(n.startswith("pose_encoder.") for n in names)
    assert "transformer.patch_embedding.weight" in names
    assert not any(n.startswith("transformer.blocks.") for n in names)
    assert len(model.trainable_parameters()) == len(names)


def test_demo16_has_16x16_latents_and_the_demo_token_grid():
    """demo16: a 4x VAE (two downsamples, both in time too) under 2x2 patches: 16x16 latents at
    64 px but the same 8x8 tokens per latent frame as the demo; the generator runs on them."""
    demo, d16 = get_preset("demo"), get_preset("demo16")
    assert (demo.vae_spatial, d16.vae_spatial) == (8, 4)
    assert demo.spatial_factor == d16.spatial_factor == 8
    torch.manual_seed(0)
    vae = build_vae(d16)
    x = torch.rand(1, 3, 9, 64, 64) * 2 - 1
    z = encode_video(vae, x)
    assert z.shape == (1, 16, 3, 16, 16)
    assert decode_latents(vae, z).shape == x.shape
    cfg = replace(d16, num_layers=1, num_frames=9)
    model = _perturb(ReenactGenerator(cfg)).eval()
    cond = replace(_cond(cfg, batch=1), ref_latents=z[:, :, :1])
    with torch.no_grad():
        v = model(torch.randn_like(z), torch.tensor([500.0]), cond)
    assert v.shape == z.shape and torch.isfinite(v).all()
    with pytest.raises(UserError, match="one entry per VAE downsample"):
        replace(d16, temperal_downsample=(False, True, True))
    with pytest.raises(UserError, match="4x"):
        replace(d16, temperal_downsample=(False, True))


def test_encoders_map_to_token_grid():
    cfg = get_preset("demo")
    pose = PoseEncoder3D(cfg.pose_channels, 8, cfg.temporal_factor)
    ref = RefEncoder2D(cfg.ref_channels, 8)
    s = cfg.spatial_factor
    assert pose(torch.zeros(1, 3, 17, 64, 64)).shape == (1, 8, 5, 64 // s, 64 // s)
    assert ref(torch.zeros(1, 3, 64, 64)).shape == (1, 8, 64 // s, 64 // s)


def test_flow_matching_loss_reproducible_and_trains_adapters():
    torch.manual_seed(0)
    model = ReenactGenerator(TINY)
    x, cond = _latents(TINY), _cond(TINY)
    l1 = flow_matching_loss(model, x, cond, shift=3.0, generator=torch.Generator().manual_seed(5))
    l2 = flow_matching_loss(model, x, cond, shift=3.0, generator=torch.Generator().manual_seed(5))
    assert torch.equal(l1["loss"], l2["loss"]) and set(l1) == {"loss", "loss/flow"}
    l1["loss"].backward()
    assert model.pose_encoder.proj.weight.grad.abs().sum() > 0   # zero-init but gets gradient
    sig = sample_timesteps(4096, 3.0, generator=torch.Generator().manual_seed(0))
    uni = sample_timesteps(4096, 1.0, generator=torch.Generator().manual_seed(0))
    assert 0 < sig.min() and sig.max() < 1 and sig.mean() > uni.mean() + 0.1


def test_ref_residual_untrained_returns_the_reference_and_learns_offsets():
    """prediction="ref_residual": x0 = the still reference's latents + output, velocity (x - x0) / sigma."""
    from expportrait.generator.longvideo import sample_clip
    cfg = replace(TINY, prediction="ref_residual")
    model = ReenactGenerator(cfg).eval()
    cond = _cond(cfg, batch=1)
    noise = _latents(cfg, batch=1)
    with pytest.raises(UserError, match="ref_static"):
        sample_clip(model, cond, noise, steps=3, shift=3.0)
    static = torch.randn(1, cfg.z_dim, cfg.latent_frames + 2, *noise.shape[-2:])
    cond = replace(cond, ref_static=static)                    # longer than the clip: its prefix
    out = sample_clip(model, cond, noise, steps=3, shift=3.0)
    assert torch.allclose(out, static[:, :, :cfg.latent_frames], atol=1e-5)
    # a "trained" output: the velocity is exactly the straight path through ref + out
    _perturb(model)
    with torch.no_grad():
        model.transformer.proj_out.weight.normal_(0, 0.05)
        sigma = torch.tensor([0.4])
        v = model(noise, sigma * 1000, cond)
        feats = model.encode_conditions(cond, cfg.latent_frames)
        offset = (noise - sigma * v) - feats.base                 # x0 - ref
    assert offset.abs().max() > 1e-3
    base = ReenactGenerator(replace(cfg, prediction="velocity"))
    base.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.allclose(base(noise, sigma * 1000, cond), offset, atol=1e-5)  # same trunk output
    with pytest.raises(UserError, match="prediction"):
        replace(TINY, prediction="epsilon")


def test_warp_base_untrained_returns_the_warped_reference():
    """residual_base="warp": the sampler encodes each clip's appearance (the warped reference) as
    the base, so an untrained model returns the warp through the VAE, frame by frame."""
    from expportrait.generator.longvideo import generate
    cfg = replace(TINY, prediction="ref_residual", residual_base="warp")
    model = ReenactGenerator(cfg).eval()
    torch.manual_seed(0)
    vae = build_vae(cfg).eval()
    cond = _cond(cfg, batch=1)
    g = torch.Generator().manual_seed(4)
    app = torch.rand(1, 3, cfg.num_frames, cfg.resolution, cfg.resolution, generator=g) * 2 - 1
    with pytest.raises(UserError, match="appearance"):
        generate(model, vae, cond, steps=2)
    out = generate(model, vae, replace(cond, appearance=app), steps=2)
    with torch.no_grad():
        expect = decode_latents(vae, encode_video(vae, app))
    assert out.shape == app.shape and torch.allclose(out, expect, atol=1e-4)
    with pytest.raises(UserError, match="residual_base"):
        replace(TINY, residual_base="warp")                        # velocity prediction
    with pytest.raises(UserError, match="residual_base"):
        replace(TINY, residual_base="mesh")


def test_residual_start_keeps_the_trunk_and_zeroes_the_output(tmp_path):
    """residual_start: config changed, output projection zero, every other weight kept (fp32)."""
    cfg = replace(TINY, prediction="ref_residual")
    model = ReenactGenerator(cfg)
    _perturb(model)
    with torch.no_grad():
        model.transformer.proj_out.weight.normal_(0, 0.05)
    model.save_pretrained(tmp_path / "g", dtype=torch.float16)
    start = ReenactGenerator.residual_start(tmp_path / "g", residual_base="warp")
    assert start.config.residual_base == "warp" and start.dtype == torch.float32
    assert start.transformer.proj_out.weight.abs().max() == 0
    saved = ReenactGenerator.from_pretrained(tmp_path / "g").state_dict()
    kept = {k: v for k, v in start.state_dict().items() if not k.startswith("transformer.proj_out")}
    assert kept and all(torch.equal(v, saved[k].float()) for k, v in kept.items())


def test_residual_start_fresh_prefixes_take_new_shapes(tmp_path):
    """fresh: weights whose shapes follow a changed patch / VAE are not taken from the folder (the
    rest are, bit for bit); without them, or with a prefix that names nothing, a clear error."""
    cfg = replace(TINY, prediction="ref_residual")
    _perturb(ReenactGenerator(cfg)).save_pretrained(tmp_path / "g")
    new = ("transformer.patch_embedding.", "transformer.proj_out.")
    change = dict(patch_size=(1, 1, 1), dim_mult=(1, 2, 2, 2, 2), temperal_downsample=(False, False, True, True))
    start = ReenactGenerator.residual_start(tmp_path / "g", fresh=new, **change)
    assert start.config.vae_spatial == 16 and start.config.spatial_factor == cfg.spatial_factor
    assert start.transformer.proj_out.weight.abs().max() == 0
    saved = ReenactGenerator.from_pretrained(tmp_path / "g").state_dict()
    kept = {k: v for k, v in start.state_dict().items() if not k.startswith(new)}
    assert kept and all(torch.equal(v, saved[k]) for k, v in kept.items())
    with pytest.raises(RuntimeError, match="size mismatch"):
        ReenactGenerator.residual_start(tmp_path / "g", **change)
    with pytest.raises(UserError, match="matching nothing"):
        ReenactGenerator.residual_start(tmp_path / "g", fresh=new + ("transformer.nope.",), **change)


def test_flow_loss_sigma_floor_caps_the_x0_weight():
    """Errors of samples below the floor are scaled by sigma / floor, the rest are unchanged."""
    x = _latents(TINY, batch=4)
    cond = _cond(TINY, batch=4)
    zero = lambda x_t, t, c, drop=None: torch.zeros_like(x_t)    # error = -(noise - x0)
    kw = dict(shift=1.0, cond_dropout=0.0)
    plain = flow_matching_loss(zero, x, cond, generator=torch.Generator().manual_seed(2), **kw)
    g = torch.Generator().manual_seed(2)
    sigma = sample_timesteps(4, 1.0, generator=g)
    noise = torch.randn(x.shape, generator=g)
    per = ((noise - x) ** 2).mean(dim=(1, 2, 3, 4))               # (B,) unscaled per-sample MSE
    assert torch.allclose(plain["loss"], per.mean(), rtol=1e-5)
    floored = flow_matching_loss(zero, x, cond, generator=torch.Generator().manual_seed(2),
                                 sigma_floor=0.5, **kw)
    scale = (sigma / sigma.clamp_min(0.5)) ** 2
    assert torch.allclose(floored["loss"], (per * scale).mean(), rtol=1e-5)
    assert (sigma < 0.5).any() and floored["loss"] < plain["loss"]


def test_pixel_and_latent_frames_are_inverse():
    assert [latent_frames(f) for f in (1, 5, 9, 17, 81)] == [1, 2, 3, 5, 21]
    assert all(pixel_frames(latent_frames(f)) == f for f in (1, 5, 9, 17, 81))


def test_face_weights_follow_the_head_and_weight_the_loss():
    """Latent cells under the rendered head weigh 1 + w; a face-only error grows the loss."""
    normals = -torch.ones(1, 3, 9, 16, 16)                   # black: no head anywhere
    normals[:, :, 0, :8, :8] = 0.5                              # frame 0: head in the top-left
    normals[:, :, 6, 8:, 8:] = 0.5                              # frame 6 (latent 2): bottom-right
    w = face_weights(normals, (1, 4, 3, 2, 2), 3.0)
    assert w.shape == (1, 1, 3, 2, 2)
    assert w[0, 0, 0].tolist() == [[4.0, 1.0], [1.0, 1.0]]
    assert w[0, 0, 1].tolist() == [[1.0, 1.0], [1.0, 1.0]]      # frames 1-4: nothing
    assert w[0, 0, 2].tolist() == [[1.0, 1.0], [1.0, 4.0]]      # frames 5-8: max over them
    # a zero model errs by -noise (x0 = 0): the loss is the w-weighted mean of noise^2
    x = torch.zeros(1, 4, 3, 2, 2)
    cond = GenCond(pose_normals=normals, ref_normal=normals[:, :, 0], ref_latents=x[:, :, :1])
    zero = lambda x_t, t, c, drop=None: torch.zeros_like(x_t)
    kw = dict(shift=1.0, cond_dropout=0.0)
    g = torch.Generator().manual_seed(0)
    sample_timesteps(1, 1.0, generator=g)                       # the loss draws sigma, then noise
    sq = torch.randn(x.shape, generator=g) ** 2
    weighted = flow_matching_loss(zero, x, cond, generator=torch.Generator().manual_seed(0),
                                  face_weight=3.0, **kw)
    plain = flow_matching_loss(zero, x, cond, generator=torch.Generator().manual_seed(0), **kw)
    assert torch.allclose(plain["loss"], sq.mean())
    assert torch.allclose(weighted["loss"], (w * sq).sum() / (w.sum() * 4))
    assert not torch.allclose(weighted["loss"], plain["loss"])


def test_vae_streamed_equals_one_shot_and_tiles():
    torch.manual_seed(0)
    vae = build_vae(TINY)
    g = torch.Generator().manual_seed(0)
    video = torch.rand(1, 3, 13, 32, 32, generator=g) * 2 - 1
    z = encode_video(vae, video)
    assert z.shape == (1, 16, 4, 4, 4)
    raw = vae.encode(video).latent_dist.mode()
    mean = torch.tensor(TINY.latents_mean).view(1, -1, 1, 1, 1)
    std = torch.tensor(TINY.latents_std).view(1, -1, 1, 1, 1)
    assert torch.allclose(z, (raw - mean) / std, atol=1e-6)
    assert torch.allclose(encode_video(vae, video, chunk_frames=8), z, atol=1e-5)
    rec = decode_latents(vae, z)
    assert rec.shape == video.shape
    assert torch.allclose(rec, vae.decode(raw).sample, atol=1e-6)
    big = torch.rand(1, 3, 5, 48, 48, generator=g) * 2 - 1         # 2 x 2 tiles of 32 px
    zt = encode_video(vae, big, tile=32)
    assert zt.shape == (1, 16, 2, 6, 6) and torch.isfinite(zt).all()
    assert decode_latents(vae, zt, tile=32).shape == big.shape
    with pytest.raises(UserError, match="4k\\+1"):
        encode_video(vae, video[:, :, :12])
