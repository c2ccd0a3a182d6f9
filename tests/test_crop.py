"""Face crop boxes, crop and paste-back (data/crop.py) on carphone landmarks."""
import numpy as np
import pytest

from expportrait.data.crop import (CropConfig, blend_mask, box_jitter, crop,
                                   crop_cameras, face_boxes, paste_back, raw_boxes,
                                   rotate_normals, rotation_affine)
from expportrait.errors import UserError


@pytest.fixture(scope="module")
def carphone():
    from expportrait.data.video import read_source
    from expportrait.detection.landmarks import detect_video
    video = read_source("sample:carphone", max_frames=48)
    track = detect_video(video.frames)
    return video.frames, track.ibug68


def test_boxes_are_smooth_and_cover_the_face(carphone):
    frames, lmk = carphone
    raw = raw_boxes(lmk, 2.2)
    boxes = face_boxes(lmk, CropConfig())
    assert boxes.shape == (len(frames), 3)
    # smoothing removes most of the frame-to-frame jitter of the detector boxes
    assert box_jitter(boxes) < 0.5 * box_jitter(raw)
    assert box_jitter(boxes) < 0.01
    # every landmark lies inside its box (side = 2.2 face widths)
    half = boxes[:, 2:3] / 2
    assert np.all(np.abs(lmk - boxes[:, None, :2]) < half[:, None])
    # the face width is ~1/2.2 of the side; the box centre is near the eye-mouth midpoint
    assert np.allclose(raw[:, 2] / np.linalg.norm(lmk[:, 16] - lmk[:, 0], axis=-1), 2.2)
    static = face_boxes(lmk, CropConfig(static=True))
    assert np.all(static == static[0]) and box_jitter(static) == 0.0


def test_mouth_centred_boxes_hold_the_mouth(carphone):
    """centre="mouth": a close crop on the mouth (warp_first's learned mouth): the lips fill a
    large part of it, the eyes sit at its edge (a face-centred crop holds them near its middle)."""
    frames, lmk = carphone
    box = raw_boxes(lmk, 0.8, centre="mouth")
    assert np.allclose(box[:, :2], lmk[:, 48:68].mean(1))
    boxes = face_boxes(lmk, CropConfig(scale=0.8, centre="mouth"))
    half = boxes[:, 2:3] / 2
    assert np.all(np.abs(lmk[:, 48:68] - boxes[:, None, :2]) < half[:, None])    # lips inside
    for eye in (slice(36, 42), slice(42, 48)):                                   # eyes at the edge
        assert np.all(np.abs(lmk[:, eye].mean(1) - boxes[:, :2]).max(-1) > 0.9 * half[:, 0])
    width = (lmk[:, 54, 0] - lmk[:, 48, 0]) / boxes[:, 2]
    assert 0.4 < width.mean() < 0.7, width.mean()
    with pytest.raises(UserError, match="centre"):
        raw_boxes(lmk, 2.2, centre="nose")


def test_crop_then_paste_back_reproduces_the_frame(carphone):
    frames, lmk = carphone
    boxes = face_boxes(lmk, CropConfig())
    size = 256  # larger than the box: no information lost by the crop
    crops = crop(frames, boxes, size)
    assert crops.shape == (len(frames), size, size, 3) and crops.dtype == np.uint8
    back = paste_back(frames, crops, boxes, feather=0.15)
    assert back.shape == frames.shape
    # PSNR inside the pasted region (where the mask is > 0.5)
    H, W = frames.shape[1:3]
    yy, xx = np.mgrid[0:H, 0:W]
    inside = (xx - boxes[0, 0]) ** 2 + (yy - boxes[0, 1]) ** 2 < (0.4 * boxes[0, 2]) ** 2
    err = (back[0].astype(float) - frames[0].astype(float))[inside]
    psnr = 10 * np.log10(255.0 ** 2 / max(np.mean(err ** 2), 1e-10))
    assert psnr > 40
    # a different crop content changes the inside and leaves the far outside untouched
    grey = np.full_like(crops, 128)
    pasted = paste_back(frames[:1], grey[:1], boxes[:1])
    assert np.abs(pasted[0][inside].astype(int) - 128).mean() < 3
    far = (xx - boxes[0, 0]) ** 2 + (yy - boxes[0, 1]) ** 2 > (0.75 * boxes[0, 2]) ** 2
    assert np.array_equal(pasted[0][far], frames[0][far])


def test_crop_cameras_map_points_like_the_crop(carphone):
    _, lmk = carphone
    boxes = face_boxes(lmk, CropConfig())
    cam = np.array([[200.0, 200.0, 88.0, 72.0]] * len(boxes))
    ccam = crop_cameras(cam, boxes, 64)
    # a 3D point projected with the crop camera == its full-frame projection mapped into the crop
    X = np.array([0.01, -0.02, 0.5])
    u_full = cam[0, :2] * X[:2] / X[2] + cam[0, 2:]
    u_crop = ccam[0, :2] * X[:2] / X[2] + ccam[0, 2:]
    s = 64 / boxes[0, 2]
    x0 = boxes[0, :2] - boxes[0, 2] / 2
    assert np.allclose(u_crop, s * (u_full + 0.5 - x0) - 0.5, atol=1e-3)


def test_blend_mask_and_errors():
    m = blend_mask(64, 0.15)
    assert m.shape == (64, 64) and m[32, 32] == 1.0 and m[0, 0] == 0.0
    assert 0 < m[32, 3] < 1  # soft edge
    with pytest.raises(UserError):
        raw_boxes(np.zeros((3, 5, 2)))
    with pytest.raises(UserError):
        paste_back(np.zeros((2, 8, 8, 3), np.uint8), np.zeros((3, 4, 4, 3), np.uint8),
                   np.ones((3, 3)))


def _sphere_normals(S=64, r=22.0):
    """Normal map of a sphere centred in the crop, (1, S, S, 3) uint8 (x right, y up)."""
    c = (S - 1) / 2
    u, v = np.meshgrid(np.arange(S), np.arange(S))
    x, y = (u - c) / r, -(v - c) / r
    z2 = 1 - x ** 2 - y ** 2
    n = np.stack([x, y, np.sqrt(np.clip(z2, 0, 1))], -1)
    img = np.round((n * 0.5 + 0.5) * 255).astype(np.uint8)
    return np.where((z2 > 0)[..., None], img, 0)[None], z2


@pytest.mark.parametrize("deg", [25.0, -40.0])
def test_rotated_normals_turn_with_the_picture(deg):
    """A sphere looks the same after any turn about its centre, so a rotated sphere normal map must
    equal the original: only true if the vectors turn the same way as the pixels."""
    n, z2 = _sphere_normals()
    rot = rotate_normals(n, deg)
    inner = z2 > 0.1                                               # away from the silhouette
    dec = lambda a: a[0].astype(float) / 255 * 2 - 1
    err = np.abs(dec(rot) - dec(n))[inner].max()
    assert err < 0.12                                              # one-pixel nearest-neighbour steps
    t = np.deg2rad(-2 * deg)                                       # vectors turned the other way instead
    v = dec(rotate_normals(n, deg))
    x, y = v[..., 0] * np.cos(t) - v[..., 1] * np.sin(t), v[..., 0] * np.sin(t) + v[..., 1] * np.cos(t)
    assert np.abs(np.stack([x, y], -1) - dec(n)[..., :2])[inner].max() > 0.5
    assert (rot[0][~(z2 > -0.2)] == 0).all()                      # background stays exactly black
    assert np.array_equal(rotate_normals(n, 0.0), n)


def test_rotated_crop_takes_the_corners_from_the_frame(carphone):
    frames, lmk = carphone
    boxes = face_boxes(lmk, CropConfig())[:4]
    S = 64
    plain, turned = crop(frames[:4], boxes, S), crop(frames[:4], boxes, S, 30.0)
    import cv2
    twice = np.stack([cv2.warpAffine(p, rotation_affine(S, 30.0), (S, S), flags=cv2.INTER_CUBIC)
                      for p in plain])
    disc = blend_mask(S, 0.05) > 0.99                              # where rotating the crop is defined
    diff = np.abs(turned.astype(int) - twice.astype(int))[:, disc].mean()
    assert diff < 6                                                # same picture (interpolated twice)
    assert np.abs(turned.astype(int) - plain.astype(int))[:, disc].mean() > 3 * diff
