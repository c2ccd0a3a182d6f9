"""engines.mouth: the inner-lip masks the learned mouth is pasted through."""
import numpy as np
import pytest

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


def _with_cheeks(lm, cx, cy, r):
    """lm (68, 2) with the cheek polygons (``segment.CHEEKS``) as squares of side r/2 centred r
    left and right of (cx, cy)."""
    from expportrait.engines.segment import CHEEKS
    lm = lm.copy()
    for side, poly in zip((-1, 1), CHEEKS):
        a = np.linspace(0, 2 * np.pi, len(poly), endpoint=False)
        lm[list(poly)] = np.stack([cx + side * r + r / 4 * np.cos(a), cy + r / 4 * np.sin(a)], 1)
    return lm


def _result_and_driver(skin, drv_skin, teeth, open_t, open_d):
    """A 160 px result of skin colour ``skin`` with a dark open mouth (inner lips ``open_t`` px
    apart) and a 120 px driver of ``drv_skin`` whose open mouth (``open_d``) is filled with
    ``teeth``, both with cheeks -> (res, t, drv, d) and the core (H, W) bool inside t's inner lips."""
    import cv2
    res = np.tile(np.array(skin, np.uint8), (160, 160, 1))
    t = _with_cheeks(_lips(80, 90, 60, open_t), 80, 50, 30)
    cv2.fillPoly(res, [np.round(t[60:68]).astype(np.int32)], (20, 10, 10))
    drv = np.tile(np.array(drv_skin, np.uint8), (120, 120, 1))
    d = _with_cheeks(_lips(60, 60, 40, open_d), 60, 30, 22)
    cv2.fillPoly(drv, [np.round(d[60:68]).astype(np.int32)], teeth)
    inner = np.zeros((160, 160), np.uint8)
    cv2.fillPoly(inner, [np.round(t[60:68]).astype(np.int32)], 1)
    return res, t, drv, d, cv2.erode(inner, np.ones((7, 7), np.uint8)) > 0


def test_teeth_stay_bright_on_a_pale_source():
    """A driver's dim teeth (0.9x its own skin) carried into a pale source (skin twice as
    bright) stay teeth: as bright against the source's skin as they were against the driver's,
    not shaded into the cavity (Audrey's teeth clip showed none)."""
    from expportrait.engines.mouth import LUMA, carry_driver_mouth
    from expportrait.engines.segment import cheek_pixels
    res, t, drv, d, core = _result_and_driver((245, 225, 215), (130, 100, 85), (100, 100, 95), 20, 14)  # dim
    out = carry_driver_mouth(res[None], t[None], drv[None], d[None], np.ones(1))[0]
    skin = np.median(cheek_pixels(out, t) @ LUMA)
    assert len(cheek_pixels(out, t)) > 50 and np.median(out[core] @ LUMA) > 0.75 * skin


def test_a_source_showing_teeth_gets_the_drivers_teeth_in_its_own_colour():
    """A source that shows greyish teeth, opened wider than its photo: the driver's yellowish teeth
    come in with the source's teeth colour (``teeth_colour`` of the driver's frames), not
    the driver's teeth lifted by the source's light."""
    import cv2

    from expportrait.engines.mouth import carry_driver_mouth, shows_teeth, teeth_colour
    H = W = 160
    src = np.tile(np.array([230, 190, 175], np.uint8), (H, W, 1))
    own = _with_cheeks(_lips(80, 90, 60, 10), 80, 50, 30)
    cv2.fillPoly(src, [np.round(own[60:68]).astype(np.int32)], (185, 190, 200))   # grey-blue teeth
    t = _with_cheeks(_lips(80, 90, 60, 20), 80, 50, 30)                            # opened wider
    drv = np.tile(np.array([150, 110, 90], np.uint8), (120, 120, 1))
    d = _with_cheeks(_lips(60, 60, 40, 14), 60, 30, 22)
    cv2.fillPoly(drv, [np.round(d[60:68]).astype(np.int32)], (200, 180, 140))     # yellowish teeth
    assert shows_teeth(src, own) and shows_teeth(drv, d)
    ours, theirs = teeth_colour(src[None], own[None]), teeth_colour(drv[None], d[None])
    assert theirs is not None and np.abs(theirs - [200, 180, 140]).max() < 2
    inner = np.zeros((H, W), np.uint8)
    cv2.fillPoly(inner, [np.round(t[60:68]).astype(np.int32)], 1)
    core = cv2.erode(inner, np.ones((7, 7), np.uint8)) > 0
    plain = carry_driver_mouth(src[None], t[None], drv[None], d[None], np.ones(1))[0]
    out = carry_driver_mouth(src[None], t[None], drv[None], d[None], np.ones(1), teeth=(ours, theirs))[0]
    assert np.abs(np.median(out[core], 0) - [185, 190, 200]).max() < 8           # the source's teeth
    assert np.abs(np.median(plain[core], 0) - [185, 190, 200]).max() > 30         # (without: the
    #   driver's teeth in the source's light, not its teeth)
    cv2.fillPoly(drv, [np.round(d[60:68]).astype(np.int32)], (150, 80, 80))       # a tongue
    tongue = carry_driver_mouth(src[None], t[None], drv[None], d[None], np.ones(1), teeth=(ours, theirs))[0]
    r, g, b = np.median(tongue[core], 0)
    assert r > b + 40 and r > g + 40                                              # stays a tongue


def _similar(lm, angle, scale, shift):
    """lm (68, 2) rotated by ``angle`` radians and scaled about its mouth centre, then shifted."""
    c = lm[48:68].mean(0)
    R = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return (lm - c) @ R.T + c + np.asarray(shift, float)


def _bank_shapes():
    """Four mouths (4, 68, 2): closed, half open, wide open, open and narrow (a rounded 'o')."""
    return np.stack([_lips(80, 90, 60, 1), _lips(80, 90, 60, 10), _lips(80, 90, 60, 24),
                     _lips(80, 90, 36, 18)])


def test_retrieval_picks_the_bank_mouth_of_the_same_shape_whatever_its_pose():
    """Each driven mouth, a bank mouth moved by a similarity (roll, scale, shift), retrieves that
    bank frame; a mouth much more open than any in the bank retrieves none (-1)."""
    from expportrait.engines.mouth_bank import BankConfig, lip_distance, retrieve
    bank = _bank_shapes()
    order = [2, 3, 1, 2]
    target = np.stack([_similar(bank[k], a, s, sh) for k, a, s, sh in
                       zip(order, (0.2, -0.15, 0.1, -0.3), (1.3, 0.8, 1.1, 0.9), ([5, -3], [0, 9], [-7, 2], [3, 3]))])
    d = lip_distance(target, bank)
    assert d.shape == (4, 4) and np.allclose(d[np.arange(4), order], 0, atol=1e-6)
    looks = np.ones((4, 24, 32), np.float32)
    pick, dist = retrieve(target, bank, looks, np.zeros(4), cfg=BankConfig(switch=0.0))   # no smoothing
    assert pick.tolist() == order and np.allclose(dist, 0, atol=1e-6)
    wider = _lips(80, 90, 60, 60)[None]                      # opens 2.5x the widest bank mouth
    assert retrieve(wider, bank, looks, np.ones(1))[0].tolist() == [-1]


def test_seen_lips_carry_the_detectors_offset_through_the_driven_head_motion():
    """A detector that sees the lips 3 px lower and a little narrower than the head puts them
    there: the driven lips (the reference's moved by a similarity) get the offset turned and
    scaled with them; the other landmarks stay."""
    from expportrait.engines.mouth_bank import seen_lips
    model = _lips(80, 90, 60, 10)
    seen = model.copy()
    seen[48:68] = (model[48:68] - [80, 90]) * [0.9, 1.0] + [80, 93]
    target = np.stack([_similar(model, 0.3, 1.5, [10, -4]), model])
    got = seen_lips(target, model, seen)
    c = model[48:68].mean(0)                                   # _similar turns about the mouth centre
    R = 1.5 * np.array([[np.cos(0.3), -np.sin(0.3)], [np.sin(0.3), np.cos(0.3)]])
    want = (seen[48:68] - c) @ R.T + c + [10, -4]
    assert np.allclose(got[0, 48:68], want, atol=1e-3) and np.allclose(got[1, 48:68], seen[48:68], atol=1e-3)
    assert np.array_equal(got[:, :48], target[:, :48])


def test_retrieval_keeps_its_choice_between_nearly_equal_mouths_and_switches_for_a_clearly_better():
    """Two bank mouths a hair apart: a driven sequence whose nearest alternates between them keeps
    one (hysteresis); one that moves to a clearly different bank mouth switches to it."""
    from expportrait.engines.mouth_bank import lip_distance, retrieve
    a, b = _lips(80, 90, 60, 20), _lips(80, 90, 60, 21)
    c = _lips(80, 90, 34, 20)                                  # a rounded mouth
    bank = np.stack([a, b, c])
    looks = np.stack([np.full((24, 32), v, np.float32) for v in (0.5, 0.9, 0.6)])
    wobble = np.stack([_lips(80, 90, 60, 20.2 if f % 2 else 20.8) for f in range(10)])
    d = lip_distance(wobble, bank)
    assert (np.argmin(d, 1) == np.arange(10) % 2 * -1 + 1).all()   # the nearest alternates: b, a, b, ...
    pick, _ = retrieve(wobble, bank, looks, np.ones(10))
    assert len(set(pick.tolist())) == 1 and pick[0] in (0, 1)
    moves = np.concatenate([wobble[:5], np.stack([c] * 5)])
    pick, _ = retrieve(moves, bank, looks, np.ones(10))
    assert pick[:5].tolist() == [pick[0]] * 5 and pick[5:].tolist() == [2] * 5


def _scene(t, inside, H=160, W=160):
    """A skin frame (H, W, 3) uint8 with the lips ``t`` (68, 2) and their opening filled with ``inside``."""
    import cv2
    img = np.tile(np.array([200, 150, 120], np.uint8), (H, W, 1))
    cv2.fillPoly(img, [np.round(t[48:60]).astype(np.int32)], (170, 90, 90))
    cv2.fillPoly(img, [np.round(t[60:68]).astype(np.int32)], inside)
    return img


def test_own_mouth_comes_from_the_retrieved_frame_inside_the_driven_lips_only():
    """The warped result (a dark stretched hole) takes the inside of the bank frame of the same
    mouth shape (its colour, not the other frames'), and no pixel outside the driven lips changes."""
    import cv2

    from expportrait.detection.landmarks import LandmarkTrack
    from expportrait.engines.mouth_bank import carry_own_mouth
    shapes = _bank_shapes()
    colours = [(60, 20, 20), (235, 235, 230), (90, 200, 90), (40, 40, 200)]   # frame 1: white teeth
    bank = np.stack([_scene(s, c) for s, c in zip(shapes, colours)])
    track = LandmarkTrack(points=shapes.astype(np.float32), valid=np.ones(4, bool), size=(160, 160))
    t = _similar(shapes[2], 0.1, 1.1, [4, 2])                 # wants the wide mouth (frame 2)
    res = _scene(t, (20, 10, 10))
    out, pick = carry_own_mouth(res[None], t[None], bank, track, np.ones(1))
    assert pick.tolist() == [2]
    inner = np.zeros((160, 160), np.uint8)
    cv2.fillPoly(inner, [np.round(t[60:68]).astype(np.int32)], 1)
    core = cv2.erode(inner, np.ones((7, 7), np.uint8)) > 0
    got = out[0][core].astype(float).mean(0)
    assert got[1] > 150 and got[1] > got[0] + 60              # the green of frame 2, not white or dark
    outside = cv2.dilate(inner, np.ones((3, 3), np.uint8)) == 0
    assert np.array_equal(out[0][outside], res[outside])
    out0, _ = carry_own_mouth(res[None], t[None], bank, track, np.zeros(1))  # gate shut: nothing
    assert np.array_equal(out0, res[None])


def test_a_single_frame_source_has_no_mouth_bank_and_warp_first_keeps_todays_mouth():
    """An image source: no bank (nothing detected); warp_first's refine without a bank is
    ``carry_driver_mouth`` for auto, the warp's own mouth for source."""
    from types import SimpleNamespace

    import torch

    from expportrait.data.video import Video
    from expportrait.engines.base import Parts
    from expportrait.engines.mouth import carry_driver_mouth, gate
    from expportrait.engines.warp_first import WarpFirst
    from expportrait.pipeline import PipelineConfig, ReenactPipeline

    class NoDetect:
        cfg = SimpleNamespace(face_index=0)

        def detect(self, *a, **k):
            raise AssertionError("an image source has no bank to detect")
    pipe = ReenactPipeline(None, NoDetect(), None, config=PipelineConfig(mouth_source="source"))
    assert pipe.source_bank(Video(np.zeros((1, 64, 64, 3), np.uint8), 25.0)) == (None, None, None)
    pipe.config = PipelineConfig(mouth_source="none")
    assert pipe.source_bank(Video(np.zeros((5, 64, 64, 3), np.uint8), 25.0)) == (None, None, None)

    class Detect(NoDetect):
        def detect(self, frames, face_index=0, what=None):
            return SimpleNamespace(frames=frames)
    pipe.tracker = Detect()                                    # a video: spread frames and the reference
    pipe.config = PipelineConfig(mouth_source="auto", mouth_bank_frames=3, reference_frame=4)
    video = np.arange(7)[:, None, None, None] * np.ones((1, 8, 8, 3), np.uint8)
    frames, track, ref = pipe.source_bank(Video(video, 25.0))
    assert frames[:, 0, 0, 0].tolist() == [0, 3, 4, 6] and track.frames is frames and ref == 2

    own, t = _lips(80, 90, 60, 1), _lips(80, 90, 60, 22)
    res = _scene(t, (20, 10, 10))[None]
    d = _lips(80, 90, 60, 20)
    drv = _scene(d, (235, 235, 230))[None]
    inp = SimpleNamespace(driven=SimpleNamespace(landmarks68_2d=torch.tensor(t[None])),
                          ref_fit=SimpleNamespace(landmarks68_2d=torch.tensor(own[None])),
                          driver_landmarks=SimpleNamespace(ibug68=d[None], valid=np.ones(1, bool)),
                          image=_scene(own, (20, 10, 10)), driver_frames=drv,
                          source_frames=None, source_landmarks=None, source_reference=None)
    engine = WarpFirst(Parts())
    got = engine.refine(inp, PipelineConfig(mouth_source="auto", regions=("lips",)), res)
    want = carry_driver_mouth(res, t[None], drv, d[None], gate(t[None], own))
    assert np.array_equal(got, want) and not np.array_equal(got, res)
    assert np.array_equal(engine.refine(inp, PipelineConfig(mouth_source="source", regions=("lips",)), res), res)


def test_over_exposed_teeth_turn_white_not_orange():
    """match_colour with a large gain: a yellowish tooth keeps its luminance (255 where it
    overflows) and loses colour instead of saturating channel by channel into orange."""
    from expportrait.engines.mouth import LUMA, match_colour
    tooth = np.array([[200.0, 150.0, 60.0]])
    skin_ours, skin_theirs = np.full((20, 3), 220.0), np.full((20, 3), 110.0)    # gain 2, no tint
    out = match_colour(tooth, skin_ours, skin_theirs, (0.75, 2.0))[0]
    naive = np.clip(tooth[0] * 2.0, 0, 255)                                     # (255, 255, 120)
    assert out.max() <= 255 and abs(out @ LUMA - min(tooth[0] @ LUMA * 2, 255)) < 1.0
    assert np.ptp(out) < 0.5 * np.ptp(naive) and out[2] > naive[2] + 50
    dim = match_colour(np.array([[100.0, 75.0, 30.0]]), skin_ours, skin_theirs, (0.75, 2.0))[0]
    assert np.allclose(dim, [200.0, 150.0, 60.0], atol=1e-3)                   # no overflow: plain gain


def test_a_smiling_source_keeps_its_upper_teeth_on_its_upper_lip():
    """A source whose photo shows a row of teeth under its upper lip, its mouth driven open twice
    as wide with the driver's dark mouth pasted in: the upper row stays under the upper lip at its
    own height (not stretched), the driver's mouth below it; outside the inner lips nothing
    changes, and a gate of 0 keeps the frame as it is."""
    import cv2

    from expportrait.engines.own_teeth import keep_upper_teeth, teeth_depth

    def ibug(lm):         # ``_lips`` draws 61-63 below the corners; iBUG's upper inner lip is 61-63
        lm = lm.copy()
        lm[[61, 62, 63, 65, 66, 67]] = lm[[67, 66, 65, 63, 62, 61]]
        return lm
    H = W = 160
    skin = np.array([200, 160, 140], np.uint8)
    src = np.tile(skin, (H, W, 1))
    own = ibug(_lips(80, 90, 60, 16))
    cv2.fillPoly(src, [np.round(own[60:68]).astype(np.int32)], (40, 20, 20))      # the cavity
    cv2.rectangle(src, (50, 80), (110, 86), (235, 235, 230), -1)                  # the upper row
    depth = teeth_depth(src, own)
    assert depth is not None and 0.05 < depth.max() < 0.2
    t = ibug(_lips(80, 90, 60, 32))                                                # twice as wide
    res = np.tile(skin, (H, W, 1))
    cv2.fillPoly(res, [np.round(t[60:68]).astype(np.int32)], (30, 15, 15))        # the driver's mouth
    out = keep_upper_teeth(res[None], t[None], src, own, np.ones(1))[0]
    top = int(np.ceil(t[62, 1]))                                                   # the upper inner lip
    column = out[:, 80].astype(int).sum(-1)
    rows = np.nonzero(column[top:int(t[66, 1])] > 500)[0]
    assert 4 <= len(rows) <= 10 and rows.min() <= 3                               # teeth, own height
    assert column[top + 14:int(t[66, 1]) - 1].max() < 150                          # the dark below
    inside = np.zeros((H, W), np.uint8)
    cv2.fillPoly(inside, [np.round(t[60:68]).astype(np.int32)], 1)
    outside = cv2.dilate(inside, np.ones((3, 3), np.uint8)) == 0
    assert np.array_equal(out[outside], res[outside])
    assert np.array_equal(keep_upper_teeth(res[None], t[None], src, own, np.zeros(1)), res[None])


def test_a_donor_mouth_is_the_donor_frame_that_opens_most_alike():
    """nearest_openings (prepare --mouth-donor): each target frame takes the donor frame whose
    inner lips open most alike, never one with a missing landmark, whatever the donor's size."""
    from expportrait.engines.mouth import nearest_openings, opening
    donor = np.stack([_lips(60, 60, 40, g) for g in (2, 8, 14, 20)])              # (4, 68, 2)
    donor[3, 5] = np.nan                                                          # lost landmark
    target = np.stack([_lips(200, 150, 120, g) for g in (45, 5, 60, 24)])        # 3x larger mouths
    pick = nearest_openings(target, donor)
    assert opening(donor[:3]).tolist() == sorted(opening(donor[:3]).tolist())
    assert pick.tolist() == [2, 0, 2, 1]
    with pytest.raises(ValueError, match="donor"):
        nearest_openings(target, np.full((2, 68, 2), np.nan))


def test_the_drivers_yellow_teeth_come_nearer_white_and_its_tongue_stays_red():
    """The driver's teeth keep TEETH_CHROMA of their colour (a warm light's cast, brown on a darker
    source), the same brightness; its tongue keeps all of its red; chroma=1 (a source's own
    frames' teeth) keeps the teeth's colour."""
    import cv2

    from expportrait.engines.mouth import LUMA, TEETH_CHROMA, carry_driver_mouth
    res, t, drv, d, core = _result_and_driver((200, 150, 120), (190, 140, 115), (230, 205, 120), 24, 16)
    cv2.rectangle(drv, (52, 62), (68, 68), (200, 60, 70), -1)                        # a red tongue
    outs = {c: carry_driver_mouth(res[None], t[None], drv[None], d[None], np.ones(1), chroma=c)[0]
            for c in (TEETH_CHROMA, 1.0)}
    H = W = 160
    top = core & (np.arange(H)[:, None] < 84)                                      # above the tongue
    tongue = core & (np.arange(H)[:, None] > 94) & (np.abs(np.arange(W)[None] - 80) < 8)

    def spread(px):                       # mean distance of the channels from their luminance
        px = px.astype(np.float64)
        return np.abs(px - (px @ LUMA)[:, None]).mean()
    half, full = outs[TEETH_CHROMA], outs[1.0]
    assert TEETH_CHROMA < 1 and spread(half[top]) < 0.7 * spread(full[top])
    assert abs(np.mean(half[top] @ LUMA) - np.mean(full[top] @ LUMA)) < 2            # as bright
    assert tongue.sum() > 10 and np.abs(half[tongue].astype(int) - full[tongue].astype(int)).max() <= 2


def test_the_lip_map_is_smooth_so_a_row_of_teeth_stays_a_row():
    """lip_spline takes the result's inner lips exactly onto the driver's (none of the driver's
    lips inside the result's) and bends without kinks: a straight tooth edge in the driver comes
    out as a smooth curve in a differently shaped result mouth (the piecewise-affine map it
    replaced bent it at every landmark into "fangs")."""
    from expportrait.engines.mouth import lip_spline
    t = np.round(_lips(100, 100, 80, 20)[60:68])
    t[[1, 2, 3], 1] += [2.0, 5.0, -1.0]                                         # an uneven upper lip
    d = _lips(60, 60, 40, 16)[60:68]
    box = (40, 70, 161, 131)
    rows, cols = (t[:, 1] - 70).astype(int), (t[:, 0] - 40).astype(int)
    src = lip_spline(t, d, box)                                                   # (61, 121, 2)
    np.testing.assert_allclose(src[rows, cols], d, atol=1e-3)
    edge = np.full(src.shape[1], np.nan)                 # where the driver's y = 60 falls, per column
    for x in range(src.shape[1]):
        col = src[:, x, 1]
        k = np.nonzero((col[:-1] <= 60) & (col[1:] > 60))[0]
        if len(k):
            edge[x] = k[0] + (60 - col[k[0]]) / (col[k[0] + 1] - col[k[0]])
    inside = slice(30, 90)                               # across the inner lips' width
    kinks = np.abs(np.diff(edge[inside], 2))
    assert np.isfinite(kinks).all() and kinks.max() < 0.05
