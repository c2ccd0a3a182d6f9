"""engines.mouth: the inner-lip masks the learned mouth is pasted through."""
import numpy as np

from expportrait.engines.mouth import mouth_masks


def test_mouth_masks_cover_the_open_mouth_only():
    lm = np.zeros((2, 68, 2))
    lm[:, :, 0], lm[:, :, 1] = 100.0, 100.0
    angles = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    lm[0, 60:68] = np.stack([100 + 20 * np.cos(angles), 120 + 8 * np.sin(angles)], 1)   # open
    lm[1, 60:68] = np.stack([100 + 20 * np.cos(angles), np.full(8, 120.0)], 1)         # closed
    boxes = np.array([[100.0, 100.0, 128.0]] * 2)                  # crop side 128 px -> 64 px
    m = mouth_masks(lm, boxes, 64)
    assert m.shape == (2, 64, 64) and m.dtype == np.float32 and 0 <= m.min() and m.max() <= 1
    cy, cx = (np.array([120.0, 100.0]) - 100 + 64) / 2             # the mouth centre in the crop
    assert m[0, int(cy), int(cx)] == 1.0                           # inside the open lips
    assert m[0, :20].max() < 1e-3 and m[0, :, :10].max() < 1e-3    # nowhere near
    assert m[1].max() < m[0].max() and m[1].sum() < 0.2 * m[0].sum()


def _lips(cx, cy, w, open_h):
    """68 landmarks (zeros elsewhere) with outer lips 48-59 and inner lips 60-67 as ellipses."""
    lm = np.zeros((68, 2))
    a = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    lm[48:60] = np.stack([cx - w / 2 * np.cos(a), cy + (open_h / 2 + 6) * np.sin(a)], 1)
    b = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    lm[60:68] = np.stack([cx - w / 2.6 * np.cos(b), cy + open_h / 2 * np.sin(b)], 1)
    lm[48], lm[54] = [cx - w / 2, cy], [cx + w / 2, cy]
    return lm


def test_driver_mouth_fills_the_open_lips_and_nothing_else():
    """A result with a dark open mouth takes the driver's bright teeth inside its inner lips,
    matched to its own skin, and is untouched outside the lips; a closed driven mouth (gate 0)
    changes nothing."""
    import cv2

    from expportrait.engines.mouth import carry_driver_mouth, gate, opening, shows_teeth
    H = W = 160
    skin = np.array([200, 150, 120], np.uint8)
    res = np.tile(skin, (H, W, 1))
    t = _lips(80, 90, 60, 20)
    cv2.fillPoly(res, [np.round(t[60:68]).astype(np.int32)], (20, 10, 10))          # the dark hole
    drv = np.tile(np.array([150, 110, 90], np.uint8), (120, 120, 1))             # a darker skin
    d = _lips(60, 60, 40, 14)
    cv2.fillPoly(drv, [np.round(d[60:68]).astype(np.int32)], (190, 190, 185))       # teeth
    assert opening(t[None])[0] > 0.05 and shows_teeth(drv, d) and not shows_teeth(res, t)
    out = carry_driver_mouth(res[None], t[None], drv[None], d[None], np.ones(1))[0]
    inner = np.zeros((H, W), np.uint8)
    cv2.fillPoly(inner, [np.round(t[60:68]).astype(np.int32)], 1)
    core = cv2.erode(inner, np.ones((7, 7), np.uint8)) > 0
    assert out[core].mean() > 180                         # bright teeth, brighter for a lighter skin
    outside = cv2.dilate(inner, np.ones((3, 3), np.uint8)) == 0
    assert np.array_equal(out[outside], res[outside])
    closed = _lips(80, 90, 60, 0.5)
    assert gate(closed[None], closed)[0] == 0.0 and gate(t[None], closed)[0] == 1.0
    assert np.array_equal(carry_driver_mouth(res[None], t[None], drv[None], d[None], np.zeros(1)), res[None])
