"""Samplers, guidance and sliding-window long-video generation (tiny preset)."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from expportrait.errors import UserError
from expportrait.generator.config import get_preset
from expportrait.generator.longvideo import (clip_spans, generate, known_first_model_fn,
                                             sample_clip)
from expportrait.generator.model import GenCond, ReenactGenerator
from expportrait.generator.sampling import (cfg, get_sigmas, guided_model_fn, sample_euler,
                                            sample_unipc)
from expportrait.generator.vae import build_vae

TINY = get_preset("tiny")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = ReenactGenerator(TINY).eval()
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in m.parameters():                     # "trained" adapters so conditions matter
            if p.abs().sum() == 0:
                p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return m


def _cond(frames, batch=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = TINY.resolution
    return GenCond(pose_normals=torch.rand(batch, 3, frames, r, r, generator=g) * 2 - 1,
                   ref_normal=torch.rand(batch, 3, r, r, generator=g) * 2 - 1,
                   ref_latents=torch.randn(batch, 16, 1, r // 8, r // 8, generator=g))


def _straight_flow(x0):
    """Exact velocity of the straight path x = (1 - s) x0 + s n: v = (x - x0) / s."""
    return lambda x, sigma: (x - x0) / sigma


def test_sigmas_schedule():
    s = get_sigmas(8, 3.0)
    assert s.shape == (9,) and s[0] == 1 and s[-1] == 0
    assert torch.all(s[1:] < s[:-1])
    assert torch.all(s[1:-1] > get_sigmas(8, 1.0)[1:-1])      # shift keeps more high-noise steps
    with pytest.raises(UserError):
        get_sigmas(0, 3.0)


@pytest.mark.parametrize("steps", [1, 3, 10])
def test_euler_exact_on_straight_flow(steps):
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(2, 4, 3, 2, 2, generator=g), torch.randn(2, 4, 3, 2, 2, generator=g)
    seen = []
    out = sample_euler(_straight_flow(x0), noise, get_sigmas(steps, 3.0),
                       callback=lambda d: seen.append(d["i"]))
    assert torch.allclose(out, x0, atol=1e-5) and seen == list(range(steps))


def test_unipc_recovers_straight_flow():
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(1, 4, 3, 2, 2, generator=g), torch.randn(1, 4, 3, 2, 2, generator=g)
    out = sample_unipc(_straight_flow(x0), noise, 6, 3.0)
    assert torch.allclose(out, x0, atol=1e-3)


@torch.no_grad()
def test_cfg_combines_passes(model):
    cond = _cond(TINY.num_frames)
    x = torch.randn(1, 16, TINY.latent_frames, 4, 4, generator=torch.Generator().manual_seed(1))
    sigma = torch.tensor(0.7)
    v_c = model(x, sigma[None] * 1000, cond)
    drop = {"ref": torch.tensor([True]), "pose": torch.tensor([True])}
    v_u = model(x, sigma[None] * 1000, cond, drop=drop)
    assert torch.allclose(cfg(v_c, v_u, 1.0), v_c, atol=1e-6)
    assert torch.equal(cfg(v_c, v_u, 0.0), v_u) and not torch.allclose(v_c, v_u, atol=1e-4)
    v = guided_model_fn(model, cond, 2.5)(x, sigma)
    assert torch.allclose(v, cfg(v_c, v_u, 2.5), atol=1e-5)
    assert torch.allclose(guided_model_fn(model, cond, 1.0)(x, sigma), v_c, atol=1e-6)
    v_pose = model(x, sigma[None] * 1000, cond, drop={"pose": drop["pose"]})   # guidance on pose alone:
    v = guided_model_fn(model, cond, 2.0, drop=("pose",))(x, sigma)             # the reference is kept
    assert torch.allclose(v, cfg(v_c, v_pose, 2.0), atol=1e-5)
    assert not torch.allclose(v, cfg(v_c, v_u, 2.0), atol=1e-4)
    with pytest.raises(UserError, match="at least one condition"):
        guided_model_fn(model, cond, 2.0, drop=())


@settings(max_examples=80, deadline=None)
@given(frames=st.integers(1, 200), clip=st.integers(2, 33))
def test_clip_spans_chain_on_one_shared_frame(frames, clip):
    spans = clip_spans(frames, clip)
    assert spans[0][0] == 0 and spans[-1][1] == frames
    assert all(0 < b - a <= clip for a, b in spans)
    assert all(b - a == clip for a, b in spans[:-1])              # only the last may be shorter
    assert all(a2 == b1 - 1 for (_, b1), (a2, _) in zip(spans, spans[1:]))
    assert len(spans) == max(1, -(-(frames - 1) // (clip - 1)))  # ~ F / (clip - 1) clips


def test_clip_spans_reject_bad_sizes():
    with pytest.raises(UserError, match="at least 2"):
        clip_spans(10, 1)
    with pytest.raises(UserError, match="at least one"):
        clip_spans(0, 5)


@pytest.mark.parametrize("sampler", ["euler", "unipc"])
def test_known_first_latent_stays_on_its_path(model, sampler):
    """A continued clip ends exactly on the known first latent; the model sees it."""
    cond = _cond(9)
    g = torch.Generator().manual_seed(4)
    noise, z0 = torch.randn(1, 16, 3, 4, 4, generator=g), torch.randn(1, 16, 1, 4, 4, generator=g)
    free = sample_clip(model, cond, noise, steps=4, shift=3.0, sampler=sampler)
    held = sample_clip(model, cond, noise, steps=4, shift=3.0, sampler=sampler, first=z0)
    assert torch.allclose(held[:, :, :1], z0, atol=1e-4)
    assert not torch.allclose(free[:, :, :1], z0, atol=1e-2)
    assert not torch.allclose(held[:, :, 1:], free[:, :, 1:], atol=1e-4)   # the rest follows it
    seen = []
    fn = known_first_model_fn(lambda x, s: torch.zeros_like(x), z0, noise[:, :, :1])
    sample_euler(fn, noise, get_sigmas(3, 3.0),
                 callback=lambda d: seen.append((d["sigma"], d["x"][:, :, :1].clone())))
    sigmas = get_sigmas(3, 3.0)
    for i, (_, x) in enumerate(seen):                             # on the straight path every step
        s = sigmas[i + 1]
        assert torch.allclose(x, (1 - s) * z0 + s * noise[:, :, :1], atol=1e-5)


def test_generate_chains_clips_of_constant_size(model):
    torch.manual_seed(0)
    vae = build_vae(TINY)
    cond = _cond(14)
    seen = []
    a = generate(model, vae, cond, num_frames=14, steps=2, seed=7, window=2,
                 callback=lambda d: seen.append((d["clip"], d["clips"], d["x"].shape[2])))
    b = generate(model, vae, cond, num_frames=14, steps=2, seed=7, window=2)
    assert a.shape == (1, 3, 14, 32, 32) and torch.equal(a, b)
    assert a.min() >= -1 and a.max() <= 1
    # clips of 5 frames sharing one: (0,5) (4,9) (8,13) (12,14); 2 latent frames each, 2 steps
    assert seen == [(k, 4, 2) for k in range(4) for _ in range(2)]
    # the first clip is exactly a clip sampled on its own with the same seed
    alone = generate(model, vae, cond, num_frames=5, steps=2, seed=7, window=2)
    assert torch.equal(a[:, :, :5], alone)
    with pytest.raises(UserError, match="frames"):
        generate(model, vae, cond, num_frames=20, steps=1)
