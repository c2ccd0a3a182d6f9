"""benchmarks/measures.py: the dlib-landmark measures of benchmarks/unseen.py (teeth, eyes, jitter,
flicker, warping error, self-mode crops) on small synthetic frames and landmarks."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
try:
    import measures as M
finally:
    sys.path.pop(0)

H = W = 96


def face_landmarks(open_px: float = 12.0, eye_open: float = 4.0) -> np.ndarray:
    """(68, 2): a frontal dlib-like layout in a 96x96 frame; the inner lips (60-67) an octagon
    ``open_px`` tall (0: collapsed, a closed mouth); each eye (36-41, 42-47) 16 px wide and
    ``eye_open`` px tall."""
    p = np.zeros((68, 2))
    p[0:17] = np.stack([np.linspace(14, 82, 17), 40 + 40 * np.sin(np.linspace(0, np.pi, 17))], 1)
    p[17:27] = np.stack([np.linspace(20, 76, 10), np.full(10, 28.0)], 1)
    p[27:31] = np.stack([np.full(4, 48.0), np.linspace(36, 52, 4)], 1)        # bridge down to the tip
    p[31:36] = np.stack([np.linspace(42, 54, 5), np.full(5, 56.0)], 1)         # nose wings
    for first, cx in ((36, 32.0), (42, 64.0)):                                 # p1..p6 of each eye
        h = eye_open / 2
        p[first:first + 6] = [(cx - 8, 38), (cx - 3, 38 - h), (cx + 3, 38 - h),
                              (cx + 8, 38), (cx + 3, 38 + h), (cx - 3, 38 + h)]
    ang = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    p[48:60] = np.stack([48 + 14 * np.cos(ang), 70 + 8 * np.sin(ang)], 1)      # outer lips
    h = open_px / 2                                                            # inner: 60 left corner,
    p[60:68] = [(38, 70), (42, 70 - h), (48, 70 - h), (54, 70 - h),            # 61-63 upper,
                (58, 70), (54, 70 + h), (48, 70 + h), (42, 70 + h)]            # 64 right, 65-67 lower
    return p


def skin_frame(mouth_value: int, lmk: np.ndarray, skin: int = 150) -> np.ndarray:
    """(H, W, 3) uint8: skin grey everywhere, the inner-lip polygon filled with ``mouth_value``."""
    f = np.full((H, W, 3), skin, np.uint8)
    f[M.polygon_mask(lmk[M.INNER_LIPS], H, W)] = mouth_value
    return f


def test_polygon_mask_counts_pixel_centres_and_not_a_collapsed_outline():
    square = np.array([[10.0, 10.0], [20.0, 10.0], [20.0, 20.0], [10.0, 20.0]])
    m = M.polygon_mask(square - 0.5, 32, 32)                 # centres 10..19 inside
    assert m.sum() == 100 and m[10, 10] and m[19, 19] and not m[20, 20]
    line = np.array([[5.0, 5.0], [25.0, 5.0], [15.0, 5.0]])  # zero area
    assert M.polygon_mask(line, 32, 32).sum() == 0


def test_teeth_fraction_bright_mouth_one_dark_mouth_zero_closed_zero_missing_nan():
    lmk = face_landmarks(open_px=12)
    bright, dark = skin_frame(250, lmk), skin_frame(20, lmk)
    closed = face_landmarks(open_px=0)
    frames = np.stack([bright, dark, skin_frame(250, closed), bright])
    lmk68 = np.stack([lmk, lmk, closed, np.full((68, 2), np.nan)])
    frac = M.teeth_fraction(frames, lmk68)
    assert frac.shape == (4,)
    assert frac[0] > 0.99 and frac[1] == 0.0 and frac[2] == 0.0 and np.isnan(frac[3])
    assert M.polygon_mask(lmk[M.INNER_LIPS], H, W).sum() > 50   # the mouth is not a handful of pixels
    slit = face_landmarks(open_px=1.5)                          # lips nearly shut: a few bright pixels
    assert M.polygon_mask(slit[M.INNER_LIPS], H, W).sum() > 0
    assert M.teeth_fraction(skin_frame(250, slit)[None], slit[None])[0] == 0.0


def test_teeth_fraction_is_relative_to_the_frames_own_skin():
    """The same mouth grey (120) counts as teeth next to dark skin (100: 120 > 75) and not next to
    bright skin (200: 120 < 150); the skin median comes from the nose and cheeks only."""
    lmk = face_landmarks(open_px=12)
    on_dark, on_bright = skin_frame(120, lmk, skin=100), skin_frame(120, lmk, skin=200)
    frac = M.teeth_fraction(np.stack([on_dark, on_bright]), np.stack([lmk, lmk]))
    assert frac[0] > 0.99 and frac[1] == 0.0
    skin = M.skin_mask(lmk, H, W)
    assert skin.sum() > 100 and not (skin & M.polygon_mask(lmk[M.INNER_LIPS], H, W)).any()
    outside = on_dark.copy()
    outside[~skin] = 255                                     # only the nose and cheeks count
    assert M.skin_luminance(outside, lmk) == 100.0
    outside[skin] = 200
    assert M.skin_luminance(outside, lmk) == pytest.approx(200.0, abs=0.5)


def test_teeth_scores_ratio_and_correlation():
    drv = np.array([0.0, 0.1, 0.3, 0.4, 0.5, 0.6])
    opening = np.array([0.0, 0.1, 0.2, 0.3, 0.3, 0.4])
    res = drv / 2
    s = M.teeth_scores(res, drv, opening)
    assert s["teeth_frames"] == 4 and s["teeth_ratio"] == pytest.approx(0.5)
    assert s["teeth_corr"] == pytest.approx(1.0)
    still = M.teeth_scores(np.full(6, 0.3), drv, opening)          # teeth that never follow the driver's
    assert still["teeth_corr"] == 0.0 and still["teeth_ratio"] == pytest.approx(0.3 / 0.45)
    none = M.teeth_scores(np.zeros(6), np.zeros(6), np.zeros(6))
    assert none["teeth_ratio"] is None and none["teeth_corr"] is None and none["teeth_frames"] == 0


def test_eye_aspect_standard_formula_and_blink():
    lmk = np.stack([face_landmarks(eye_open=4.0), face_landmarks(eye_open=0.0), face_landmarks(eye_open=8.0)])
    ear = M.eye_aspect(lmk)
    assert ear.shape == (3,)
    assert ear[0] == pytest.approx((4 + 4) / (2 * 16)) and ear[1] == 0.0 and ear[2] == pytest.approx(0.5)
    lmk[1] = np.nan
    assert np.isnan(M.eye_aspect(lmk)[1])


def test_landmark_jitter_zero_for_steady_motion_and_grows_with_shake():
    base = face_landmarks()
    io = np.linalg.norm(base[36] - base[45])
    steady = np.stack([base + [2.0 * t, 0.0] for t in range(8)])   # constant velocity
    assert M.landmark_jitter(steady) == pytest.approx(0.0, abs=1e-12)
    shake = np.stack([base + [(-1) ** t, 0.0] for t in range(8)])  # +1, -1, ...: |d2| = 4 px
    assert M.landmark_jitter(shake) == pytest.approx(4.0 / io)
    shake[3] = np.nan                                             # triples through frame 3 skipped
    assert M.landmark_jitter(shake) == pytest.approx(4.0 / io)
    assert np.isnan(M.landmark_jitter(steady[:2]))


def test_flicker_still_background_zero_changing_background_counts():
    lmk = face_landmarks()
    rng = np.random.default_rng(0)
    still = np.repeat(rng.integers(0, 255, (1, H, W, 3), dtype=np.uint8), 4, 0)
    lmk68 = np.repeat(lmk[None], 4, 0)
    moving = still.copy()
    l, t, r, b = M.head_box(lmk, 2.0, H, W)
    moving[1:, t:b, l:r] = 0                                      # only the head changes: still 0
    assert M.flicker(still, lmk68) == 0.0 and M.flicker(moving, lmk68) == 0.0
    small = np.array([[40.0, 40.0], [44.0, 44.0]])               # a small head: most pixels outside
    small68 = np.repeat(np.resize(small, (68, 2))[None], 4, 0)
    stepped = still.copy()
    stepped[2:] = np.clip(stepped[2:].astype(int) + 10, 0, 255).astype(np.uint8)
    f = M.flicker(stepped, small68)                               # one of three pairs changes by ~10
    assert 2.0 < f < 10.0 / 3 + 0.01


def test_warp_error_shifted_copy_is_near_zero_and_shuffled_is_not():
    rng = np.random.default_rng(1)
    import cv2
    tex = cv2.GaussianBlur(rng.integers(0, 255, (H + 16, W + 16, 3), dtype=np.uint8), (0, 0), 2.0)
    real = np.stack([tex[8:8 + H, 8 + k:8 + k + W] for k in (0, 2, 4)])   # 2 px left a frame
    lmk68 = np.repeat(face_landmarks()[None], 3, 0)
    assert M.warp_error(real, real, lmk68) < 1.5                 # the flow explains the real frames
    result = real.copy()                                         # a result moving the same way: ~0
    assert M.warp_error(result, real, lmk68) < 1.5
    still = np.repeat(real[:1], 3, 0)                            # a result that does not move
    assert M.warp_error(still, real, lmk68) > 3 * max(M.warp_error(real, real, lmk68), 0.5)
    back, ok = M.real_flow(M.grey(real[:1])[0], M.grey(real[1:2])[0])    # cur(x) = prev(x + 2)
    inner = (slice(20, 76), slice(20, 76))
    assert np.median(back[inner][..., 0]) == pytest.approx(2.0, abs=0.3) and ok[inner].mean() > 0.9


def test_mouth_and_face_box_crops():
    lmk = face_landmarks()
    frames = np.zeros((2, H, W, 3), np.uint8)
    frames[0, 60:80, 30:66] = 255                                # a white block where the mouth is
    lmk68 = np.stack([lmk, np.full((68, 2), np.nan)])
    mouth = M.mouth_box_crops(frames, lmk68)
    assert mouth.shape == (1, 64, 64, 3) and mouth.mean() > 100   # the mouth box is mostly the block
    faces = M.face_box_crops(frames, lmk68)
    assert faces.shape == (1, 128, 128, 3) and faces.mean() < mouth.mean()
    assert M.square_around(lmk[48:68], 1.5, H, W) == (27, 49, 69, 91)


def test_zoom_crop_centres_and_pads_beyond_the_frame():
    img = np.zeros((40, 40, 3), np.uint8)
    img[18:22, 18:22] = 255                                      # a white dot in the middle
    z = M.zoom_crop(img, 20, 20, 8, 32)                          # 4x around it
    assert z.shape == (32, 32, 3) and z[16, 16].min() > 200 and z[0, 0].max() == 0
    corner = M.zoom_crop(img, 0, 0, 20, 40)                      # half of it beyond the frame: black
    assert corner.shape == (40, 40, 3) and corner[:20, :20].max() == 0
