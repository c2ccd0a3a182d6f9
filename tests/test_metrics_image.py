"""PSNR / SSIM / L1 on known pairs (metrics/image.py)."""
import numpy as np
import pytest
import skimage.data
from skimage.metrics import peak_signal_noise_ratio

from expportrait.errors import UserError
from expportrait.metrics import image


@pytest.fixture(scope="module")
def astro():
    return skimage.data.astronaut()[::2, ::2]  # (256, 256, 3) uint8


def test_identical_frames(astro):
    video = np.stack([astro, astro[::-1]])
    assert np.isinf(image.psnr(video, video).per_frame).all()
    assert image.psnr(video, video).mean == np.inf
    np.testing.assert_allclose(image.ssim(video, video).per_frame, 1.0, atol=1e-12)
    assert image.l1(video, video).mean == 0.0


def test_known_mse_gives_known_psnr():
    a = np.zeros((3, 16, 16, 3))
    b = a.copy()
    b[0] += 0.1      # MSE 0.01 -> 20 dB
    b[1] += 0.01     # MSE 1e-4 -> 40 dB
    b[2, :8] = 1.0   # half the pixels off by 1 -> MSE 0.5 -> 10 log10(2)
    m = image.psnr(a, b)
    np.testing.assert_allclose(m.per_frame, [20.0, 40.0, 10 * np.log10(2)], rtol=1e-9)
    np.testing.assert_allclose(m.mean, np.mean(m.per_frame))
    np.testing.assert_allclose(image.l1(a, b).per_frame, [0.1, 0.01, 0.5])


def test_masked_psnr_counts_only_the_masked_pixels():
    a = np.zeros((2, 16, 16, 3))
    b = a.copy()
    b[:, :8] = 0.1                     # error 0.1 in the top half, none below
    top = np.zeros((16, 16))
    top[:8] = 1.0
    np.testing.assert_allclose(image.psnr(a, b, mask=top).per_frame, [20.0, 20.0], rtol=1e-9)
    assert image.psnr(a, b, mask=1 - top).mean == np.inf          # the bottom half is exact
    np.testing.assert_allclose(image.psnr(a, b, mask=np.ones((2, 16, 16))).mean, image.psnr(a, b).mean)
    assert np.isnan(image.psnr(a, b, mask=np.zeros((16, 16))).per_frame).all()


def test_uint8_and_float_agree_and_match_skimage_psnr(astro):
    rng = np.random.default_rng(0)
    noisy = np.clip(astro.astype(int) + rng.integers(-20, 21, astro.shape), 0, 255).astype(np.uint8)
    p8 = image.psnr(astro, noisy).mean
    pf = image.psnr(astro / 255.0, noisy / 255.0).mean
    assert p8 == pytest.approx(pf, rel=1e-12)
    assert p8 == pytest.approx(peak_signal_noise_ratio(astro, noisy, data_range=255), rel=1e-9)
    assert image.ssim(astro, noisy).mean == pytest.approx(image.ssim(astro / 255.0, noisy / 255.0).mean, rel=1e-9)


def test_noise_sanity_monotone(astro):
    rng = np.random.default_rng(1)
    x = astro / 255.0
    results = []
    for sigma in (0.02, 0.05, 0.1):
        y = np.clip(x + rng.normal(0, sigma, x.shape), 0, 1)
        results.append((image.psnr(x, y).mean, image.ssim(x, y).mean, image.l1(x, y).mean))
    psnrs, ssims, l1s = zip(*results)
    assert psnrs[0] > psnrs[1] > psnrs[2] > 15
    assert 1 > ssims[0] > ssims[1] > ssims[2] > 0
    assert l1s[0] < l1s[1] < l1s[2]
    # sigma=0.05 Gaussian noise: PSNR close to -20 log10(0.05) = 26 dB (clipping lowers the MSE a bit)
    assert 25.5 < psnrs[1] < 27.5


def test_shape_mismatch_is_user_error(astro):
    with pytest.raises(UserError):
        image.psnr(astro[None], np.stack([astro, astro]))
    with pytest.raises(UserError):
        image.ssim(np.zeros((1, 5, 5, 3)), np.zeros((1, 5, 5, 3)))
