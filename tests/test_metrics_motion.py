"""AED / APD / landmark jitter / NME on constructed sequences (metrics/motion.py)."""
import numpy as np
import pytest

from expportrait.metrics import motion


def test_aed_known_value_and_masks():
    a = np.zeros((4, 10))
    b = np.zeros((4, 10))
    b[0] = 1.0
    b[1, :5] = 2.0                   # mean |diff| 1.0 on frame 1
    assert motion.aed(a, b) == pytest.approx((1.0 + 1.0 + 0 + 0) / 4)
    assert motion.aed(a, b, valid=np.array([True, False, False, False])) == pytest.approx(1.0)
    b[2] = np.nan                    # NaN frames are skipped
    assert motion.aed(a, b) == pytest.approx(2.0 / 3)
    assert np.isnan(motion.aed(a, b, valid=np.zeros(4, bool)))
    with pytest.raises(ValueError):
        motion.aed(a, b[:, :3])


def test_apd_wraps_angles():
    p = np.array([[np.pi - 0.01, 0.0, 0.0], [0.1, 0.2, -0.3]])
    d = np.array([[-np.pi + 0.01, 0.0, 0.0], [0.0, 0.0, 0.0]])
    assert motion.apd(p, d) == pytest.approx((0.02 / 3 + 0.6 / 3) / 2)
    with pytest.raises(ValueError):
        motion.apd(p[:, :2], d[:, :2])


def _face(scale=1.0, shift=(0.0, 0.0)):
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 100, (68, 2))
    pts[36], pts[45] = (20, 50), (80, 50)  # inter-ocular distance 60
    return pts * scale + np.asarray(shift)


def test_jitter_zero_for_constant_velocity_and_known_for_shake():
    base = _face()
    smooth = np.stack([base + [t * 1.5, -t * 0.5] for t in range(10)])  # (10, 68, 2)
    assert motion.landmark_jitter(smooth) == pytest.approx(0.0, abs=1e-12)
    shake = np.stack([base + [(-1) ** t * 1.0, 0.0] for t in range(10)])  # ±1 px alternation
    assert motion.landmark_jitter(shake) == pytest.approx(4.0)  # |1 - 2(-1) + 1| = 4
    assert motion.landmark_jitter(shake, norm="interocular") == pytest.approx(4.0 / 60)
    assert motion.landmark_jitter(shake, norm=2.0) == pytest.approx(2.0)
    # scale invariance of the normalised version
    big = np.stack([_face(scale=3.0) + [(-1) ** t * 3.0, 0.0] for t in range(10)])
    assert motion.landmark_jitter(big, norm="interocular") == pytest.approx(4.0 / 60)
    # NaN frame kills the three triples that touch it, the rest still count
    holes = shake.copy()
    holes[5] = np.nan
    assert motion.landmark_jitter(holes) == pytest.approx(4.0)
    assert np.isnan(motion.landmark_jitter(shake[:2]))


def test_nme_known_offsets_and_subsets():
    ref = np.stack([_face(), _face(scale=2.0)])  # inter-ocular 60 and 120
    pred = ref.copy()
    pred[:, :, 0] += 6.0                        # 6 px everywhere
    np.testing.assert_allclose(motion.nme(pred, ref, per_frame=True), [0.1, 0.05])
    assert motion.nme(pred, ref) == pytest.approx(0.075)
    jaw_only = ref.copy()
    jaw_only[:, :17] += 30.0                    # only the jaw line is wrong
    assert motion.nme(jaw_only, ref, subset="inner") == pytest.approx(0.0)
    assert motion.nme(jaw_only, ref) > 0.1
    assert len(motion.INNER) == 51
    pred[1] = np.nan
    assert motion.nme(pred, ref) == pytest.approx(0.1)
    with pytest.raises(ValueError):
        motion.nme(pred, ref, subset="outer")
