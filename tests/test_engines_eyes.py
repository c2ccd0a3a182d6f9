"""engines.eyes: the driver's blinks lower the result's upper lids; the map never folds."""
import cv2
import numpy as np

from expportrait.engines.eyes import EYES, eye_aspect, keep_fraction, set_lid


def _eye_landmarks(cx=80.0, cy=60.0, w=40.0, h=14.0):
    lm = np.zeros((68, 2))
    for e, dx in ((EYES[0], -30.0), (EYES[1], 30.0)):
        x0 = cx + dx - w / 2
        lm[list(e)] = [[x0, cy], [x0 + w / 3, cy - h / 2], [x0 + 2 * w / 3, cy - h / 2], [x0 + w, cy],
                       [x0 + 2 * w / 3, cy + h / 2], [x0 + w / 3, cy + h / 2]]
    return lm


def test_eye_aspect_and_what_to_keep():
    open_, half = _eye_landmarks(h=14.0), _eye_landmarks(h=7.0)
    assert np.allclose(eye_aspect(open_[None]), 14.0 / 40.0)
    drv = np.stack([open_] * 9 + [half])                         # the driver blinks half-way once
    keep = keep_fraction(np.stack([open_] * 10), open_, drv, np.ones(10, bool))
    assert (keep[:9] == 1).all() and np.allclose(keep[9], 1 - 0.4 / 0.9)    # past the fit's noise


def test_eyes_the_driver_opens_wide_open_wider_by_as_much_and_no_more_than_wider():
    """keep_fraction over 1 only where the driver's eye is wider than its own open eyes, by that
    share, at most WIDER; set_lid raises the lid and the eye between the lids fills the opening
    (the iris taller, the white under it still there), nothing moves outside the eye's box."""
    from expportrait.engines.eyes import WIDER
    open_ = _eye_landmarks(h=14.0)
    drv = np.stack([open_] * 19 + [_eye_landmarks(h=14.0 * 1.2)] + [_eye_landmarks(h=14.0 * 1.8)])
    keep = keep_fraction(np.stack([open_] * 21), open_, drv, np.ones(21, bool))
    assert (keep[:19] == 1).all() and np.allclose(keep[19], 1.15) and np.allclose(keep[20], WIDER)
    H, W = 120, 160
    img = np.tile(np.array([210, 170, 150], np.uint8), (H, W, 1))              # skin
    eye = open_[list(EYES[0])]
    cv2.fillPoly(img, [np.round(eye).astype(np.int32)], (250, 250, 250))       # sclera
    c = np.round(eye[[0, 3]].mean(0)).astype(int)
    cv2.circle(img, tuple(c), 5, (40, 30, 20), -1)                             # iris
    wide = set_lid(img, eye, keep=1.25)
    col = lambda im: im[:, c[0] - 1:c[0] + 2].astype(int)                      # down the middle
    iris = lambda im: int((col(im).max(-1) < 80).all(1).sum())
    white = lambda im: int((col(im).min(-1) > 240).all(1).sum())
    assert iris(wide) >= iris(img) + 2 and white(wide) >= white(img) - 1 > 0
    assert int((col(wide).max(-1) < 80).any(1).nonzero()[0].min()) < int((col(img).max(-1) < 80).any(1).nonzero()[0].min())
    far = np.ones((H, W), bool)
    far[20:80, 25:80] = False
    assert np.array_equal(wide[far], img[far])
    assert np.array_equal(set_lid(img, eye, keep=1.0), img)


def test_the_lid_never_jumps_where_the_share_leaves_the_noise_band():
    """keep_fraction's share goes continuously from "leave it" (within the fit's 10 % of noise)
    to a shut eye or to WIDER: 0.91 and 0.89 of the opening are both (nearly) 1, not 1 and 0.89."""
    from expportrait.engines.eyes import WIDER
    open_ = _eye_landmarks(h=14.0)
    hs = np.linspace(0.0, 14.0 * 1.4, 200)
    drv = np.stack([open_] * 1800 + [_eye_landmarks(h=h) for h in hs])
    keep = keep_fraction(np.stack([open_] * len(drv)), open_, drv, np.ones(len(drv), bool))[1800:, 0]
    assert np.abs(np.diff(keep)).max() < 0.02                                   # no step
    assert keep[0] < 0.01 and np.allclose(keep[-1], WIDER) and (np.diff(keep) >= -1e-12).all()


def test_a_closed_lid_covers_the_eye_with_skin_and_leaves_the_rest():
    H, W = 120, 160
    img = np.tile(np.array([210, 170, 150], np.uint8), (H, W, 1))              # skin
    lm = _eye_landmarks()
    eye = lm[list(EYES[0])]
    cv2.fillPoly(img, [np.round(eye).astype(np.int32)], (250, 250, 250))       # sclera
    cv2.circle(img, tuple(np.round(eye[[0, 3]].mean(0)).astype(int)), 5, (40, 30, 20), -1)   # iris
    shut = set_lid(img, eye, keep=0.0)
    inside = np.zeros((H, W), np.uint8)
    cv2.fillPoly(inside, [np.round(eye).astype(np.int32)], 1)
    core = cv2.erode(inside, np.ones((5, 5), np.uint8)) > 0
    assert np.abs(shut[core].astype(int) - [210, 170, 150]).max(-1).mean() < 25   # skin now
    far = np.ones((H, W), bool)
    far[20:80, 25:80] = False
    assert np.array_equal(shut[far], img[far])                                 # the other eye too
    assert np.array_equal(set_lid(img, eye, keep=1.0), img)


def test_a_shut_eye_opens_with_the_drivers_iris_and_the_rest_stays():
    from expportrait.engines.eyes import open_eyes
    H, W = 120, 160
    skin = np.array([200, 160, 140], np.uint8)
    img = np.tile(skin, (H, W, 1))
    shut = _eye_landmarks(h=2.0)                                               # EAR 0.05
    for e in EYES:
        cv2.polylines(img, [np.round(shut[list(e)]).astype(np.int32)], True, (150, 110, 100), 1)  # lash line
    drv = np.tile(skin, (H, W, 1))
    open_ = _eye_landmarks(h=12.0)
    for e in EYES:
        eye = open_[list(e)]
        cv2.fillPoly(drv, [np.round(eye).astype(np.int32)], (245, 245, 245))
        cv2.circle(drv, tuple(np.round(eye[[0, 3]].mean(0)).astype(int)), 5, (30, 40, 120), -1)  # blue iris
    out = open_eyes(img[None], shut[None], shut, shut, drv[None], open_[None], np.ones(1, bool))[0]
    for e in EYES:
        c = np.round(shut[list(e)][[0, 3]].mean(0)).astype(int)
        patch = out[c[1] - 4:c[1] + 1, c[0] - 3:c[0] + 4].reshape(-1, 3).astype(int)
        assert (patch[:, 2] - patch[:, 0]).max() > 30                          # the iris shows
    far = np.ones((H, W), bool)
    far[25:75, 25:135] = False
    assert np.array_equal(out[far], img[far])
    # an open source, or a driver no wider than the source: nothing to do
    same = open_eyes(img[None], open_[None], open_, open_, drv[None], open_[None], np.ones(1, bool))
    assert np.array_equal(same[0], img)
    closed_drv = open_eyes(img[None], shut[None], shut, shut, drv[None], shut[None], np.ones(1, bool))
    assert np.array_equal(closed_drv[0], img)
