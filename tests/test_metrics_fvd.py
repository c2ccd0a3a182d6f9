"""Fréchet distance on known Gaussians and FVD plumbing with a scripted stand-in detector."""
import numpy as np
import pytest
import scipy.linalg
import torch

from expportrait.errors import UserError
from expportrait.metrics.fvd import FVD, feature_stats, frechet_distance


def _random_spd(rng, d, rank=None):
    a = rng.normal(size=(d, rank or d))
    return a @ a.T / d


def test_equal_distributions_zero():
    rng = np.random.default_rng(0)
    mu, s = rng.normal(size=6), _random_spd(rng, 6)
    assert frechet_distance(mu, s, mu, s) == pytest.approx(0.0, abs=1e-9)


def test_shifted_means():
    rng = np.random.default_rng(1)
    s = _random_spd(rng, 5)
    d = rng.normal(size=5)
    assert frechet_distance(np.zeros(5), s, d, s) == pytest.approx(d @ d, rel=1e-9)


def test_diagonal_closed_form():
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    want = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)  # = 5 + 4 + 1 = 10
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(want, rel=1e-12)
    assert want == pytest.approx(10.0)


def test_matches_sqrtm_formula_and_is_symmetric():
    rng = np.random.default_rng(2)
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    s1, s2 = _random_spd(rng, 8), _random_spd(rng, 8)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    want = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean)
    got = frechet_distance(mu1, s1, mu2, s2)
    assert got == pytest.approx(want, rel=1e-8)
    assert got == pytest.approx(frechet_distance(mu2, s2, mu1, s1), rel=1e-9)


def test_rank_deficient_covariances_are_finite():
    rng = np.random.default_rng(3)
    s1, s2 = _random_spd(rng, 50, rank=3), _random_spd(rng, 50, rank=4)  # like few clips, many features
    v = frechet_distance(np.zeros(50), s1, np.zeros(50), s2)
    assert np.isfinite(v) and v >= -1e-9
    assert frechet_distance(np.zeros(50), s1, np.zeros(50), s1) == pytest.approx(0.0, abs=1e-8)


def test_sample_statistics_converge():
    rng = np.random.default_rng(4)
    a = rng.normal([0, 0, 0], [1, 2, 3], size=(20000, 3))
    b = rng.normal([1, 0, 0], [1, 1, 3], size=(20000, 3))
    assert frechet_distance(*feature_stats(a), *feature_stats(b)) == pytest.approx(1 + 1, abs=0.1)


class _StandIn(torch.nn.Module):
    """Same call signature as i3d_torchscript.pt; features = per-channel mean and std (B, 6)."""

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False,
                return_features: bool = True) -> torch.Tensor:
        return torch.cat([x.mean(dim=(2, 3, 4)), x.std(dim=(2, 3, 4))], dim=1)


@pytest.fixture(scope="module")
def detector_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("i3d") / "i3d_standin.pt"
    torch.jit.script(_StandIn()).save(str(path))
    return path


def test_fvd_from_file(detector_file, tmp_path):
    fvd = FVD.from_file(detector_file, clip_len=4)
    fvd.size = 32  # keep the test small
    rng = np.random.default_rng(0)
    video = rng.integers(0, 256, (12, 20, 24, 3), dtype=np.uint8)
    clips = fvd.clips(video)
    assert clips.shape == (3, 3, 4, 32, 32) and clips.min() >= -1 and clips.max() <= 1
    assert fvd.features(video).shape == (3, 6)
    res = fvd.distance(video, video)
    assert res["computed"] and res["fvd"] == pytest.approx(0.0, abs=1e-9) and res["clips_pred"] == 3
    darker = (video * 0.5).astype(np.uint8)
    assert fvd.distance(video, darker)["fvd"] > 0.01
    with pytest.raises(UserError, match="at least 4"):
        fvd.features(video[:3])
    with pytest.raises(UserError, match="not found"):
        FVD.from_file(tmp_path / "nope.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not torchscript")
    with pytest.raises(UserError, match="TorchScript"):
        FVD.from_file(junk)
