"""engines.warp_field and engines.still: the mesh-driven backward warp of a photo (synthetic
expressions, the still background), BFM coarse."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from dataclasses import replace

from expportrait.data.prepare import still_motion
from expportrait.transfer.model import ExpressionTransfer, TransferConfig
from expportrait.transfer.synthetic import SyntheticConfig, SyntheticWorld
from expportrait.engines.still import drive_still, random_expressions, still_expressions
from expportrait.engines.warp_field import expression_warp


@pytest.fixture(scope="module")
def still(head):
    world = SyntheticWorld(head, SyntheticConfig(frames=1))
    return world.make_fit(torch.Generator().manual_seed(3), 1)


def _image(h=256, w=256):
    """A smooth colour pattern: every pixel distinct enough to show where it was sampled from."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([128 + 100 * np.sin(x / 9.0), 128 + 100 * np.sin(y / 11.0),
                    128 + 100 * np.sin((x + y) / 15.0)], -1)
    return np.clip(img, 0, 255).astype(np.uint8)


def test_warp_is_the_identity_when_nothing_moves(head, still):
    img = _image()
    out = expression_warp(img, still, still.frames(torch.zeros(2, dtype=torch.long)), head)
    assert out.shape == (2, 256, 256, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - img).max() <= 1


def test_warp_follows_the_mesh_and_leaves_the_far_background(head, still):
    """The driven head 6 px to the right (camera centre moved): inside the face the photo is
    sampled 6 px to the left, far from the face nothing changes."""
    img = _image()
    moved = replace(still, camera=still.camera + torch.tensor([0.0, 0.0, 6.0, 0.0]))
    out = expression_warp(img, still, moved, head)[0].astype(int)
    lmk = still.landmarks68_2d[0].numpy()
    cx, cy = np.round(lmk[30] + [6, 0]).astype(int)          # nose tip, moved
    patch = (slice(cy - 8, cy + 8), slice(cx - 8, cx + 8))
    shifted = np.roll(img, 6, axis=1).astype(int)
    assert np.abs(out[patch] - shifted[patch]).max() <= 3
    assert np.abs(out[patch] - img[patch]).mean() > 8           # it did move
    assert np.array_equal(out[:20, :20], img[:20, :20])         # far corner untouched


def test_random_expressions_start_at_the_photo_and_stay_smooth():
    base = torch.linspace(-2, 2, 10)
    psi, jaw = random_expressions(base, 40, seed=1, amplitude=2.0, jaw_max=0.3)
    assert psi.shape == (40, 10) and jaw.shape == (40, 3)
    assert torch.allclose(psi[0], base) and torch.all(jaw[0] == 0)
    assert (psi - base).abs().max() > 0.5                       # it does move
    assert (psi[1:] - psi[:-1]).abs().max() < 1.0               # smoothly
    assert jaw[:, 0].min() >= 0 and jaw[:, 0].max() <= 0.3 and torch.all(jaw[:, 1:] == 0)
    psi2, _ = random_expressions(base, 40, seed=2)
    assert not torch.allclose(psi, psi2)


def test_still_expressions_frame_zero_is_the_photo_and_the_face_changes(head, still):
    img = _image()
    torch.manual_seed(0)
    model = ExpressionTransfer(TransferConfig(n_exp=head.n_exp)).eval()
    psi, jaw = random_expressions(still.expression[0], 12, seed=0)
    driven = drive_still(head, still, model, psi, torch.zeros_like(jaw))
    assert driven.num_frames == 12 and torch.allclose(driven.expression, psi)
    out = still_expressions(img, still, head, model, 12, seed=0)
    assert out.shape == (12, 256, 256, 3)
    assert np.abs(out[0].astype(int) - img).max() <= 1
    lmk = still.landmarks68_2d[0].numpy()
    x0, y0 = lmk.min(0).astype(int)
    x1, y1 = lmk.max(0).astype(int)
    face = (slice(None), slice(y0, y1), slice(x0, x1))
    assert np.abs(out[face].astype(int) - img[face[1:]]).mean(axis=(1, 2, 3)).max() > 2


def test_still_motion_moves_a_clip_frame_by_frame():
    img = _image(64, 48)
    clip = np.stack([img, img[::-1].copy(), img[:, ::-1].copy()])
    moved = still_motion(clip, 3, seed=4)
    for i in range(3):
        assert np.array_equal(moved[i], still_motion(clip[i], 3, seed=4)[i])


def test_still_background_keeps_the_background_and_fills_where_the_head_left(head, still):
    """With a person mask and a plate, a head moved 12 px right leaves the background beside it
    unmoved (no drag), shows the plate where the head used to be, and is the photo where nothing
    moved."""
    from expportrait.engines.segment import background_plate, plate_mask
    from expportrait.engines.warp_field import head_box
    img = _image()
    lmk = still.landmarks68_2d[0].numpy()
    person = np.zeros(img.shape[:2], np.float32)                 # the face's box is "the person"
    (x0, y0), (x1, y1) = lmk.min(0).astype(int), lmk.max(0).astype(int)
    person[y0:y1, x0:x1] = 1.0
    hole = plate_mask(person, head_box(still, 256, 256))
    plate = background_plate(img, hole)
    assert hole[person > 0].min() > 0.999 and hole[:20, :20].max() == 0.0
    assert np.array_equal(plate[hole == 0], img[hole == 0])        # only the person is painted out
    assert np.abs(plate[person > 0].astype(int) - img[person > 0]).mean() > 10
    same = expression_warp(img, still, still.frames([0]), head, person=person)[0]
    assert np.abs(same.astype(int) - img).max() <= 1
    moved = replace(still, camera=still.camera + torch.tensor([0.0, 0.0, 12.0, 0.0]))
    out = expression_warp(img, still, moved, head, person=person)[0].astype(int)
    free = expression_warp(img, still, moved, head)[0].astype(int)
    left = (slice(y0 + 5, y1 - 5), slice(x0 - 26, x0 - 12))      # background left of the face
    assert np.abs(out[left] - img[left]).max() <= 1             # stays put
    assert np.abs(free[left] - img[left]).mean() > 3             # (the plain warp drags it)
    uncovered = (slice(y0 + 5, y1 - 5), slice(x0 + 1, x0 + 6))   # where the face's left edge was
    assert np.abs(out[uncovered] - plate[uncovered]).mean() < np.abs(out[uncovered] - img[uncovered]).mean()


def test_person_mask_of_a_portrait():
    from expportrait.data.video import read_source
    from expportrait.engines.segment import person_mask
    img = read_source("sample:astronaut").frames[0]
    m = person_mask(img)
    assert m.shape == (512, 512) and m.dtype == np.float32
    assert m[100:160, 200:280].mean() > 0.9                     # her face
    assert m[:40, :40].mean() < 0.1                              # the top-left corner


def test_hair_moves_with_the_head_and_the_neck_stays():
    """The similarity from the driven head to the photo is recovered exactly, and its backward
    displacement has full weight above the chin and none well below it."""
    from expportrait.engines.warp_field import _head_frame, _rigid_displacement, similarity
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 200, (50, 2))
    th, s, t = 0.3, 1.2, np.array([5.0, -7.0])
    R = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    B = similarity(a, a @ (s * R).T + t)
    assert np.allclose(B[:, :2], s * R, atol=1e-6) and np.allclose(B[:, 2], t, atol=1e-6)
    lmk = np.zeros((68, 2))                          # an upright face: brows at y 40, chin at y 100
    lmk[:17] = np.stack([np.linspace(20, 80, 17), np.full(17, 70.0)], 1)
    lmk[17:27] = np.stack([np.linspace(25, 75, 10), np.full(10, 40.0)], 1)
    lmk[8] = (50, 100)
    gy, gx = np.mgrid[0:200, 0:100].astype(np.float32)
    shift = np.array([[1.0, 0, 3.0], [0, 1.0, 0]])   # the photo is 3 px right of the output
    r = _rigid_displacement(shift, gx, gy, _head_frame(lmk))
    assert np.allclose(r[..., 0], 3.0) and np.allclose(r[..., 1], 0.0)
    assert r[20, 50, 2] == 1.0 and r[99, 50, 2] == 1.0       # hair, face: with the head
    assert r[160, 50, 2] == 0.0 and 0 < r[110, 50, 2] < 1    # shoulders still, the neck between


def test_unfold_removes_a_fold_locally():
    """A backward map that folds (a band mapped in reverse, as the far side of a turned nose) is
    smoothed there until its Jacobian determinant is positive; elsewhere it is kept."""
    from expportrait.engines.warp_field import jacobian, unfold
    gy, gx = np.mgrid[0:64, 0:64].astype(np.float32)
    mapx = gx.copy()
    mapx[:, 30:34] = gx[:, 30:34][:, ::-1] + 0.0                                # reversed band
    mapy = gy.copy()
    assert jacobian(mapx, mapy).min() < 0
    ux, uy, det = unfold(mapx, mapy, gx, gy, np.ones((64, 64), bool))
    assert det.min() > 0 and np.allclose(det, jacobian(ux, uy))
    assert np.array_equal(ux[:, :20], mapx[:, :20]) and np.array_equal(ux[:, 45:], mapx[:, 45:])


def test_unfold_removes_a_fold_at_the_edge_of_what_counts():
    """A fold next to where ``where`` ends (the rolled neck's displacement dropping to the still
    collar's) is smoothed on both sides of that edge: a blend cut at it folded the map along it
    (the Queen's collar at -1.55 on the unseen benchmark)."""
    from expportrait.engines.warp_field import unfold
    gy, gx = np.mgrid[0:96, 0:96].astype(np.float32)
    dx = np.where(gx < 48, 16.0, 0.0).astype(np.float32)                          # neck | collar
    mapx = gx + cv2.GaussianBlur(dx, (0, 0), 1.5)
    where = gx < 52                                                               # edge beside it
    _, _, raw = unfold(mapx, gy, gx, gy, where, iters=0)
    assert raw[where].min() < -1.0
    _, _, det = unfold(mapx, gy, gx, gy, where)
    assert det[where].min() > 0


def test_clothes_stay_in_front_of_the_driven_neck_and_behind_the_face():
    """Where the driven mesh reaches over the still clothes (a strongly rolled head over its
    collar) the clothes keep their pixels; inside the driven face the mesh's motion wins (a lowered
    chin covers the collar)."""
    from expportrait.engines.warp_field import _warp_roi
    img = _image(96, 96)
    gy, gx = np.mgrid[0:96, 0:96].astype(np.float32)
    cover = gy < 72                                                                # the mesh
    back = np.stack([gx + 6.0, gy], -1).astype(np.float32)                         # moved 6 px
    clothes = (gy >= 50).astype(np.float32)                                        # the collar
    face = (gy < 56).astype(np.float32)                                            # jaw line at 56
    lip = np.array([[40, 20], [50, 20], [50, 22], [40, 22]], np.float32)           # shut, covered
    kw = dict(sigma=4.0, lip=lip, src_lip=lip, src_open=20.0)
    before = _warp_roi(img, back, cover, gx, gy, **kw)                            # no clothes
    after = _warp_roi(img, back, cover, gx, gy, face=face, clothes=clothes, **kw)
    assert not np.array_equal(before[60:70, 10:80], img[60:70, 10:80])           # dragged along
    assert np.array_equal(after[60:70, 10:80], img[60:70, 10:80])                # stays
    assert np.array_equal(after[10:45, 10:80], before[10:45, 10:80])             # the face moves
    assert not np.array_equal(after[10:45, 10:80], img[10:45, 10:80])


def test_a_moving_jaw_passes_in_front_of_still_clothes_without_a_straight_cut():
    """Clothes are found by colour under a line below the photo's chin, so a wall beside the neck
    is "clothes" too. A rolled head carries its jaw's edge (the photo's face, grown a little; not
    inside the driven face polygon) down over it: those pixels show the jaw, not the still wall
    cut along the line; what shows the photo from elsewhere (the collar) stays still."""
    from expportrait.engines.warp_field import _warp_roi
    img = np.full((96, 96, 3), 90, np.uint8)                                      # the wall
    img[:60, 20:76] = (180, 120, 100)                                             # the jaw, chin at 60
    img[72:, 30:66] = 250                                                         # a collar
    gy, gx = np.mgrid[0:96, 0:96].astype(np.float32)
    clothes = (gy >= 64).astype(np.float32)                                       # the wall too
    src_face = (gy < 62).astype(np.float32)                                       # the photo's face
    face = (gy < 40).astype(np.float32)                                           # the face polygon
    cover = np.ones((96, 96), bool)
    back = np.stack([gx, gy - 8.0], -1).astype(np.float32)                        # lowered 8 px
    lip = np.array([[40, 20], [50, 20], [50, 22], [40, 22]], np.float32)
    kw = dict(sigma=4.0, lip=lip, src_lip=lip, src_open=20.0, clothes=clothes, face=face)
    out = _warp_roi(img, back, cover, gx, gy, src_face=src_face, **kw).astype(int)
    old = _warp_roi(img, back, cover, gx, gy, **kw).astype(int)                   # the face only
    assert np.abs(old[64:67, 25:70] - 90).max() <= 2                             # the cut
    assert np.abs(out[64:67, 25:70] - [180, 120, 100]).max() <= 2                # the jaw
    assert (out[74:96, 32:64] >= 248).all() and np.abs(out[74:96, 0:18] - 90).max() <= 2   # still


def test_clothes_below_the_chin_stay_and_the_neck_skin_may_move():
    """engines.segment.clothes_mask: a blue shirt under a skin-coloured face and neck is marked
    still from a little below the chin on; the neck's skin and everything above the chin are not."""
    import cv2

    from expportrait.engines.segment import clothes_mask
    H, W = 200, 160
    img = np.full((H, W, 3), 230, np.uint8)                                     # a light wall
    cv2.ellipse(img, (80, 70), (40, 55), 0, 0, 360, (205, 150, 120), -1)        # the face
    img[110:200, 60:100] = (200, 145, 118)                                      # the neck
    img[150:200] = (40, 60, 160)                                                # the shirt
    img[150:200, 60:100] = (200, 145, 118)                                      # a V of skin
    lm = np.zeros((68, 2))
    lm[:17] = np.stack([80 + 40 * np.cos(np.linspace(np.pi, 0, 17)), 70 + 55 * np.sin(np.linspace(np.pi, 0, 17))], 1)
    lm[17:27] = np.stack([np.linspace(55, 105, 10), np.full(10, 45.0)], 1)      # brows
    lm[27:36] = np.stack([np.full(9, 80.0), np.linspace(55, 85, 9)], 1)         # nose
    lm[36:48] = np.stack([np.tile(np.linspace(60, 100, 6), 2), np.full(12, 60.0)], 1)
    lm[48:68] = np.stack([np.linspace(65, 95, 20), np.full(20, 100.0)], 1)
    m = clothes_mask(img, lm, feather=0)
    assert m[170:, :40].min() == 1 and m[170:, 120:].min() == 1                 # the shirt
    assert m[170:, 65:95].max() == 0 and m[:125].max() == 0                      # the neck, the head


def test_a_closing_mouth_hides_the_teeth_between_its_lips():
    """The mesh closes the lips over the photo's teeth (upper lip 6 px down, lower lip 6 px up,
    meeting at the mouth's slit): the lips next to the slit keep the mesh's own motion, so no
    tooth shows between them (faded into the field's blur, the two opposite motions averaged to
    none and the teeth stayed in sight)."""
    from expportrait.engines.warp_field import _warp_roi
    img = np.full((96, 96, 3), (150, 60, 60), np.uint8)                            # lips
    img[43:54] = 250                                                               # the teeth
    gy, gx = np.mgrid[0:96, 0:96].astype(np.float32)
    cover = np.abs(gy - 48) >= 1                                                   # slit at y = 48
    back = np.stack([gx, np.where(gy < 48, gy - 6.0, gy + 6.0)], -1).astype(np.float32)
    lip = np.array([[30, 48], [50, 47.8], [70, 48], [50, 48.2]], np.float32)      # shut, driven
    src_lip = np.array([[30, 48], [50, 42], [70, 48], [50, 54]], np.float32)      # open, photo
    out = _warp_roi(img, back, cover, gx, gy, sigma=12.0, lip=lip, src_lip=src_lip, src_open=240.0)
    mouth = np.concatenate([out[38:48, 40:61], out[49:58, 40:61]]).astype(int)   # the slit's own
    assert mouth.min(-1).max() < 200, "teeth show between the closed lips"       # row aside
    assert (out[20:30, 40:61].astype(int) == img[20:30, 40:61]).all()             # lips stay lips
