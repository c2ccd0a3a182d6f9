"""engines.fill: exemplar (patch) filling of the still background's plate, through
engines.segment.background_plate (method "patch", the default, and "telea")."""
import numpy as np
import pytest

from expportrait.engines.fill import patch_fill
from expportrait.engines.segment import background_plate


def _stripes(H: int = 160, W: int = 160, period: float = 11.0) -> np.ndarray:
    """Diagonal colour stripes (H, W, 3) uint8: a background with edges that run through a hole."""
    yy, xx = np.mgrid[:H, :W]
    s = 0.5 + 0.5 * np.sin(2 * np.pi * (xx + 0.6 * yy) / period)
    return np.stack([40 + 180 * s, 200 - 150 * s, np.full_like(s, 90)], -1).round().astype(np.uint8)


def _head(H: int = 160, W: int = 160) -> np.ndarray:
    """A head-and-shoulders-shaped hole (H, W) float32 {0, 1}."""
    yy, xx = np.mgrid[:H, :W]
    head = ((yy - 0.45 * H) / (0.2 * H)) ** 2 + ((xx - 0.5 * W) / (0.15 * W)) ** 2 < 1
    return (head | ((yy > 0.6 * H) & (yy < 0.75 * H) & (np.abs(xx - 0.5 * W) < 0.3 * W))).astype(np.float32)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else 0.0


@pytest.mark.parametrize("method", ["patch", "telea"])
def test_only_the_hole_changes(method):
    """Every pixel where mask == 0 is returned bit for bit; the hole is painted over."""
    img = _stripes()
    rng = np.random.default_rng(0)
    img = np.clip(img.astype(int) + rng.integers(-20, 20, img.shape), 0, 255).astype(np.uint8)
    mask = _head()
    mask[mask > 0] = rng.uniform(0.05, 1.0, int((mask > 0).sum()))   # soft values count as hole
    img[mask > 0] = (255, 0, 255)                                     # the "person"
    out = background_plate(img, mask, method=method)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.array_equal(out[mask == 0], img[mask == 0])
    assert not (out[mask > 0] == (255, 0, 255)).all(-1).any()         # nothing of the person left


def test_stripes_are_continued_not_blurred():
    """Diagonal stripes through a head-shaped hole: the exemplar fill continues them in phase
    (correlation with the truth high), where Telea's fill of the same hole is a smear."""
    truth = _stripes()
    mask = _head()
    hole = mask > 0
    img = truth.copy()
    img[hole] = 0
    patch = background_plate(img, mask)
    telea = background_plate(img, mask, method="telea")
    c_patch = _corr(patch[hole][:, 0], truth[hole][:, 0])
    c_telea = _corr(telea[hole][:, 0], truth[hole][:, 0])
    assert c_patch > 0.8, c_patch
    assert c_patch > c_telea + 0.3, (c_patch, c_telea)
    # the stripes keep their contrast inside the hole (a blur loses it)
    assert patch[hole][:, 0].std() > 0.8 * truth[hole][:, 0].std()


def test_checkerboard_is_continued():
    """A checkerboard (cells 12 px) with a square hole: the fill is the checkerboard again."""
    yy, xx = np.mgrid[:128, :128]
    truth = np.repeat((((yy // 12) + (xx // 12)) % 2 * 200 + 30)[..., None], 3, 2).astype(np.uint8)
    mask = np.zeros((128, 128), np.float32)
    mask[40:90, 35:85] = 1
    img = truth.copy()
    img[mask > 0] = 128
    out = background_plate(img, mask)
    err = np.abs(out.astype(int) - truth)[mask > 0].mean()
    blur = np.abs(background_plate(img, mask, method="telea").astype(int) - truth)[mask > 0].mean()
    assert err < 0.5 * blur, (err, blur)


def test_empty_mask_returns_a_copy():
    img = _stripes(40, 50)
    out = background_plate(img, np.zeros((40, 50), np.float32))
    assert out is not img and np.array_equal(out, img)


@pytest.mark.parametrize("shape,box", [((8, 8), (3, 6, 3, 6)),            # tiny image, tiny hole
                                       ((12, 20), (0, 12, 0, 10)),        # half the image
                                       ((96, 128), (0, 60, 0, 40)),       # hole on two borders
                                       ((96, 128), (30, 96, 90, 128)),    # bottom-right corner
                                       ((64, 64), (2, 62, 2, 62))])       # 2 px of known rim
def test_small_images_and_holes_on_the_border(shape, box):
    """No crash, a valid uint8 image, the known pixels kept, wherever the hole is."""
    img = _stripes(*shape)
    mask = np.zeros(shape, np.float32)
    y0, y1, x0, x1 = box
    mask[y0:y1, x0:x1] = 1
    out = background_plate(img, mask)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.array_equal(out[mask == 0], img[mask == 0])


def test_falls_back_where_exemplars_do_not_apply():
    """patch_fill declines (None) a tiny hole, a hole with too few known patches around it and
    an image with no known pixel; background_plate then still returns a filled image."""
    img = _stripes(64, 64)
    tiny = np.zeros((64, 64), bool)
    tiny[30:33, 30:33] = True
    assert patch_fill(img, tiny) is None
    rim = np.ones((64, 64), bool)
    rim[:2], rim[-2:], rim[:, :2], rim[:, -2:] = False, False, False, False
    assert patch_fill(img, rim) is None
    assert patch_fill(img, np.ones((64, 64), bool)) is None
    out = background_plate(img, np.ones((64, 64), np.float32))
    assert out.shape == img.shape and out.dtype == np.uint8


def test_deterministic_and_bounded():
    """The same seed gives the same plate; a flat image stays flat (no stray values)."""
    img, mask = _stripes(), _head()
    a = background_plate(img, mask, seed=3)
    assert np.array_equal(a, background_plate(img, mask, seed=3))
    flat = np.full((120, 120, 3), 77, np.uint8)
    out = background_plate(flat, _head(120, 120), method="patch")
    assert np.array_equal(out, flat)


def test_auto_fills_a_plain_background_smoothly_and_a_textured_one_with_patches():
    from expportrait.engines.segment import FLAT, ring_texture
    img, mask = _stripes(), _head()
    rng = np.random.default_rng(0)
    wall = np.clip(120 + rng.normal(0, 1.0, img.shape), 0, 255).astype(np.uint8)   # plain, a little noise
    assert ring_texture(wall, mask) < FLAT < ring_texture(img, mask)
    assert np.array_equal(background_plate(img, mask), background_plate(img, mask, method="patch"))
    assert np.array_equal(background_plate(wall, mask), background_plate(wall, mask, method="telea"))


@pytest.mark.parametrize("method", ["patch", "telea"])
def test_avoid_is_never_copied(method):
    """Known pixels in ``avoid`` (a red 'body' right below the hole) never reach the fill and
    stay as they were; without ``avoid`` they do reach it."""
    img = _stripes()
    mask = _head()
    body = np.zeros(mask.shape, bool)
    body[120:, 40:120] = True
    img[body] = (255, 0, 0)

    def red(out):
        return ((out[..., 0] > 200) & (out[..., 1] < 40) & (out[..., 2] < 40))[mask > 0].mean()
    out = background_plate(img, mask, method=method, avoid=body)
    assert red(out) == 0.0
    assert np.array_equal(out[mask == 0], img[mask == 0])
    assert red(background_plate(img, mask, method=method)) > 0.05


def test_unknown_method_is_refused():
    with pytest.raises(ValueError):
        background_plate(_stripes(20, 20), np.ones((20, 20), np.float32), method="blur")
