"""dlib face model and identity similarity on real media (detection/dlib_face.py, metrics/identity.py)."""
import numpy as np
import pytest
import skimage.data

from expportrait.data.video import read_video
from expportrait.detection.dlib_face import SAME_PERSON_DISTANCE, DlibFace
from expportrait.errors import UserError
from expportrait.metrics.identity import ARCFACE_TEMPLATE, ArcFaceONNX, align_arcface, five_points, identity_similarity
from expportrait.paths import carphone_path


@pytest.fixture(scope="module")
def face():
    return DlibFace()


@pytest.fixture(scope="module")
def astro():
    return skimage.data.astronaut()


@pytest.fixture(scope="module")
def carphone():
    return read_video(carphone_path()).frames  # (120, 144, 176, 3)


def test_astronaut_box_and_landmarks(face, astro):
    boxes = face.detect(astro)
    assert len(boxes) == 1
    l, t, r, b = boxes[0]
    assert l < 220 < r and t < 125 < b  # the face centre (x ~ 220, y ~ 125)
    lmk = face.landmarks68(astro)
    assert lmk.shape == (68, 2)
    # eyes above the mouth, subject's right eye (36-41) on the image left
    assert lmk[36:48, 1].mean() < lmk[48:68, 1].mean()
    assert lmk[36:42, 0].mean() < lmk[42:48, 0].mean()
    assert ((lmk[:, 0] > l - 20) & (lmk[:, 0] < r + 20)).all()


def test_no_face(face):
    blank = np.full((200, 200, 3), 128, np.uint8)
    assert face.detect(blank) == []
    assert face.landmarks68(blank) is None
    assert face.descriptor(blank) is None


def test_carphone_detection_rate(face, carphone):
    lmk = face.landmarks68_video(carphone)
    assert lmk.shape == (120, 68, 2)
    found = np.isfinite(lmk).all(axis=(1, 2))
    assert found.sum() >= 110  # offline-resources: 118/120
    assert np.isnan(lmk[~found]).all()
    assert (lmk[found, :, 0] >= -10).all() and (lmk[found, :, 0] <= 186).all()


def test_identity_same_and_different_person(face, astro, carphone):
    flipped = astro[:, ::-1]
    d_same = np.linalg.norm(face.descriptor(flipped) - face.descriptor(astro))
    assert d_same < SAME_PERSON_DISTANCE
    d_other = np.linalg.norm(face.descriptor(carphone[0]) - face.descriptor(astro))
    assert d_other > SAME_PERSON_DISTANCE
    res = identity_similarity(np.stack([flipped, astro, np.full_like(astro, 90)]), astro, face=face)
    s = res.summary()
    assert s["face_found_fraction"] == pytest.approx(2 / 3)
    assert s["same_person_fraction"] == pytest.approx(2 / 3)  # the faceless frame counts as a failure
    assert np.isnan(res.cosine[2]) and res.cosine[0] > 0.9
    assert res.distance[1] == pytest.approx(0.0, abs=1e-6) and res.cosine[1] == pytest.approx(1.0)
    assert s["per_frame_csim"][2] is None


def test_identity_across_sizes(face, astro, carphone):
    res = identity_similarity(carphone[:2], astro, face=face)
    assert (res.distance > SAME_PERSON_DISTANCE).all()
    assert res.summary()["same_person_fraction"] == 0.0
    with pytest.raises(UserError, match="no face"):
        identity_similarity(carphone[:1], np.full((100, 100, 3), 200, np.uint8), face=face)


def test_arcface_alignment_and_missing_model(face, astro, tmp_path):
    lmk = face.landmarks68(astro)
    crop, M = align_arcface(astro, lmk)
    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
    mapped = five_points(lmk) @ M[:, :2].T + M[:, 2]  # (5, 2) in crop pixels
    err = np.linalg.norm(mapped - ARCFACE_TEMPLATE, axis=1)  # (5,) least-squares residuals
    assert err.max() < 8.0 and err[:3].max() < 5.0  # eyes and nose close; the smile moves the mouth
    assert crop[40:60, 30:80].std() > 10  # eyes region holds the face, not the black border
    with pytest.raises(UserError, match="not found"):
        ArcFaceONNX(tmp_path / "w600k_r50.onnx")
