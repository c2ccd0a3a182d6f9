"""engines.align: the thin-plate alignment moves found landmarks onto the target ones."""
import numpy as np
import pytest

from expportrait.engines.align import align_frames, border_points, spline_field


def textured(H=120, W=160, seed=0):
    import cv2
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.uniform(0, 255, (H, W, 3)).astype(np.float32), (0, 0), 2.0)
    img = (img - img.min()) / (img.max() - img.min()) * 255
    return img.astype(np.uint8)


def face_points(H=120, W=160, n=9):
    xs, ys = np.meshgrid(np.linspace(W * 0.35, W * 0.65, n), np.linspace(H * 0.3, H * 0.7, n))
    return np.stack([xs.ravel(), ys.ravel()], 1)                               # (n * n, 2)


def test_border_points_lie_on_the_edge():
    p = border_points(50, 70, per_side=5)
    assert p.shape == (20, 2) and len(np.unique(p, axis=0)) == 20
    on_edge = (p[:, 0] == 0) | (p[:, 0] == 69) | (p[:, 1] == 0) | (p[:, 1] == 49)
    assert on_edge.all()


def test_field_reproduces_the_landmark_shift_and_pins_the_border():
    H, W = 120, 160
    target = face_points(H, W)
    d = spline_field(target, target + [3.0, -2.0], H, W, smoothing=0.0)
    assert d.shape == (H, W, 2) and d.dtype == np.float32
    inside = d[int(H * 0.4):int(H * 0.6), int(W * 0.45):int(W * 0.55)].reshape(-1, 2)
    assert np.allclose(inside, [3.0, -2.0], atol=0.15)
    assert np.abs(d[0]).max() < 0.3 and np.abs(d[:, -1]).max() < 0.3


def test_shifted_face_is_brought_back():
    H, W, t = 120, 160, np.array([3.0, 2.0])
    img = textured(H, W)
    shifted = np.roll(img, shift=(2, 3), axis=(0, 1))          # content moved by +3 px x, +2 px y
    target = face_points(H, W)[None]                            # (1, K, 2) where features belong
    out, moved, det = align_frames(shifted[None], target + t, np.ones(1, bool), target, np.ones(1, bool))
    assert moved.tolist() == [True] and 0.9 < det[0] <= 1.1                     # a shift: no stretch
    box = (slice(int(H * 0.35), int(H * 0.65)), slice(int(W * 0.4), int(W * 0.6)))
    before = np.abs(shifted[box].astype(float) - img[box]).mean()
    after = np.abs(out[0][box].astype(float) - img[box]).mean()
    assert after < before / 4, (before, after)


@pytest.mark.parametrize("case", ["no face in the result", "no face in the driver", "wrong face"])
def test_frames_it_cannot_trust_are_kept(case):
    H, W = 120, 160
    img = textured(H, W)[None]
    target = face_points(H, W)[None]
    found, fv, tv = target + 1.0, np.ones(1, bool), np.ones(1, bool)
    if case == "no face in the result":
        fv[:] = False
    elif case == "no face in the driver":
        tv[:] = False
    else:
        found = target + 40.0                               # median shift 40 px > 0.1 x 48 px
    out, moved, det = align_frames(img, found, fv, target, tv)
    assert moved.tolist() == [False] and np.array_equal(out, img) and det[0] == 1.0


def test_landmarks_that_cannot_agree_are_not_forced_and_the_map_never_folds():
    """Two points pulled across each other (an eye that cannot open) would fold a thin-plate map:
    they are left out as outliers, and whatever is aligned keeps a Jacobian determinant within
    the bounds everywhere."""
    from expportrait.engines.warp_field import jacobian
    H, W = 120, 160
    img = textured(H, W)[None]
    target = face_points(H, W)
    found = target + [1.0, 0.5]                                  # the residual to remove
    found[0], found[1] = target[1] + [0, 6.0], target[0] - [0, 6.0]   # two points swapped
    out, moved, det = align_frames(img, found[None], np.ones(1, bool), target[None], np.ones(1, bool))
    assert moved.tolist() == [True] and 0.5 <= det[0] <= 2.0
    d = spline_field(target, found, H, W, smoothing=0.0)        # forced, it folds
    assert jacobian(np.mgrid[0:H, 0:W][1] + d[..., 0], np.mgrid[0:H, 0:W][0] + d[..., 1]).min() < det[0]
