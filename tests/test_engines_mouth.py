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
