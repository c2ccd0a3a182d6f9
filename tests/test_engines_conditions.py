"""engines.conditions: the reference frame with its own head painted out (the DiT's paste-back
background, through the one inpainter engines.segment.background_plate)."""
import numpy as np

from expportrait.engines.conditions import clear_head


def test_clear_head_paints_the_head_out_and_nothing_far_from_it():
    """A red disc (the head, with a 'hair' band above it that the head mask does not cover) on a
    horizontal grey ramp: after clear_head the disc and the hair are background-coloured, and
    pixels far from the head are untouched."""
    H = W = 200
    ramp = np.repeat(np.linspace(60, 180, W)[None, :, None], H, 0).repeat(3, 2)
    frame = ramp.astype(np.uint8)
    yy, xx = np.mgrid[:H, :W]
    disc = (yy - 100) ** 2 + (xx - 100) ** 2 < 20 ** 2
    hair = (np.abs(xx - 100) < 15) & (yy > 70) & (yy <= 80)
    frame[disc | hair] = (220, 30, 30)
    box = np.array([100.0, 100.0, 88.0])                      # (cx, cy, side): 2.2 x the disc
    S = 64
    cy, cx = np.mgrid[:S, :S]
    head = (cy + 0.5 - S / 2) ** 2 + (cx + 0.5 - S / 2) ** 2 < (20 * S / 88) ** 2   # the disc, crop pixels
    out = clear_head(frame, box, head)
    assert out.shape == frame.shape and out.dtype == np.uint8
    red = (out[..., 0].astype(int) - out[..., 1]) > 60
    assert not red[disc | hair].any()
    assert np.abs(out[disc].astype(int) - ramp[disc]).mean() < 25
    far = (yy - 100) ** 2 + (xx - 100) ** 2 > 70 ** 2
    assert np.array_equal(out[far], frame[far])
