"""Samplers, guidance and sliding-window long-video generation (tiny preset)."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from expportrait.errors import UserError
from expportrait.generator.config import get_preset
from expportrait.generator.longvideo import (generate, sample_long, window_cond, window_starts,
                                             window_weights, windowed_model_fn)
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


@settings(max_examples=60, deadline=None)
@given(total=st.integers(1, 40), window=st.integers(1, 9), overlap=st.integers(0, 8))
def test_window_weights_partition_of_unity(total, window, overlap):
    if overlap >= window:
        return
    starts = window_starts(total, window, overlap)
    w = min(window, total)
    acc = torch.zeros(total)
    for s, weight in zip(starts, window_weights(starts, window, total)):
        assert weight.shape == (w,) and torch.all(weight > 0)
        acc[s:s + w] += weight
    assert torch.allclose(acc, torch.ones(total), atol=1e-6)
    assert starts[0] == 0 and starts[-1] + w == total


def test_three_windows_without_overlap_equal_separate_windows(model):
    window, total, steps = 3, 9, 3
    assert window_starts(total, window, 0) == [0, 3, 6]
    cond = _cond(4 * (total - 1) + 1)
    noise = torch.randn(1, 16, total, 4, 4, generator=torch.Generator().manual_seed(2))
    long = sample_long(model, cond, noise, steps=steps, shift=3.0, window=window, overlap=0)
    for s in (0, 3, 6):
        fn = guided_model_fn(model, window_cond(cond, s, s + window))
        alone = sample_euler(fn, noise[:, :, s:s + window], get_sigmas(steps, 3.0))
        assert torch.allclose(long[:, :, s:s + window], alone, atol=1e-6)
    # with overlap the windows interact (blended every step), so the result differs
    blended = sample_long(model, cond, noise, steps=steps, shift=3.0, window=window, overlap=1)
    assert not torch.allclose(blended, long, atol=1e-4)


def test_window_calls_grow_linearly_with_constant_size():
    calls = []
    for total in (5, 9, 17, 33):
        sizes = []
        fn = windowed_model_fn(lambda a, b: (lambda x, s: torch.zeros_like(x)), total, 5, 1,
                               on_window=lambda a, b: sizes.append(b - a))
        sample_euler(fn, torch.zeros(1, 1, total, 1, 1), get_sigmas(2, 1.0))
        assert set(sizes) == {5}                                    # constant window size
        calls.append(len(sizes))
    assert calls == [2 * len(window_starts(t, 5, 1)) for t in (5, 9, 17, 33)]
    assert calls[-1] <= 2 * ((33 - 5) // 4 + 2)                     # ~ T / stride windows


def test_generate_any_length_deterministic(model):
    torch.manual_seed(0)
    vae = build_vae(TINY)
    cond = _cond(14)
    a = generate(model, vae, cond, num_frames=14, steps=2, seed=7, window=2, overlap=1)
    b = generate(model, vae, cond, num_frames=14, steps=2, seed=7, window=2, overlap=1)
    assert a.shape == (1, 3, 14, 32, 32) and torch.equal(a, b)
    assert a.min() >= -1 and a.max() <= 1
    with pytest.raises(UserError, match="frames"):
        generate(model, vae, cond, num_frames=20, steps=1)
