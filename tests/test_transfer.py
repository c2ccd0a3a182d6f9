"""Expression transfer: E, G, training, synthetic identities, retargeting, CLI (BFM coarse)."""
from __future__ import annotations


import numpy as np
import pytest
import torch

from expportrait.errors import UserError
from expportrait.head.geometry import axis_angle_to_matrix, matrix_to_euler
from expportrait.tracking.io import load_fit, save_fit
from expportrait.transfer.encoder import DrivingEncoder
from expportrait.transfer.model import ExpressionTransfer, TransferConfig, default_checkpoint
from expportrait.transfer.retarget import RetargetConfig, reference_frame, retarget
from expportrait.transfer.synthetic import SyntheticConfig, SyntheticWorld
from expportrait.transfer.train import TrainTransferConfig, train_transfer


@pytest.fixture(scope="module")
def world(head):
    return SyntheticWorld(head, SyntheticConfig(frames=24))


def _fit(world, seed, frames=24, yaw=None):
    fit = world.make_fit(torch.Generator().manual_seed(seed), frames)
    if yaw is not None:
        fit.rotation = torch.stack([torch.zeros_like(yaw), yaw, torch.zeros_like(yaw)], -1)
    return fit


def test_encoder_is_temporal_and_local():
    enc = DrivingEncoder(10, code_dim=8, layers=2, kernel=5, use_jaw=True).eval()
    psi = torch.randn(2, 30, 10)
    q = enc(psi, torch.zeros(2, 30, 3))
    assert q.shape == (2, 30, 8)
    psi2 = psi.clone()
    psi2[:, 15] += 3.0
    d = (enc(psi2, None) - q).abs().amax(dim=(0, 2))  # (30,) change per frame
    receptive = 2 * (5 // 2)
    assert d[15] > 0 and d[15 - receptive:15 + receptive + 1].min() > 0
    assert torch.all(d[:15 - receptive] == 0) and torch.all(d[15 + receptive + 1:] == 0)


def test_synthetic_detail_depends_on_identity(world):
    g = torch.Generator().manual_seed(0)
    a, b = world.identity(g), world.identity(g)
    psi = world.expression(g, 16)
    da, db = world.detail(*a, psi), world.detail(*b, psi)
    assert da.abs().max() > 5e-4                       # millimetre-scale wrinkles
    assert (da - db).norm(dim=-1).mean() > 0.3 * da.norm(dim=-1).mean()
    assert world.detail(*a, torch.zeros(3, psi.shape[1])).abs().max() < 1e-9
    assert (world.detail(*a, 2 * psi) - 2 * da).abs().max() > 1e-4  # nonlinear in psi


def test_model_masked_density_agnostic_and_roundtrip(tmp_path, head, world):
    torch.manual_seed(0)
    model = ExpressionTransfer(TransferConfig()).eval()
    fit = _fit(world, 1, 8)
    out = model.predict_for_head(head, fit.shape, fit.static_offset, fit.expression)
    assert out.shape == (8, head.num_dense, 3)
    assert out[:, ~head.regions["face"]].abs().max() == 0
    model.save(tmp_path / "ckpt")
    again = ExpressionTransfer.load(tmp_path / "ckpt")
    out2 = again.predict_for_head(head, fit.shape, fit.static_offset, fit.expression)
    assert torch.allclose(out, out2, atol=2e-3 * out.abs().max().item() + 1e-7)
    (tmp_path / "ckpt" / "config.json").write_text('{"type": "expression_transfer", "hidden": 32}')
    with pytest.raises(UserError, match="does not match"):
        ExpressionTransfer.load(tmp_path / "ckpt")


def test_training_learns_identity_adaptive_detail(head, world):
    fits = [_fit(world, s, 32) for s in range(4)]
    cfg = TrainTransferConfig(steps=300, device="cpu", log_every=0)
    model, report = train_transfer(fits, head, cfg, log=None)
    first, last = np.mean(report["curve"][:3]), report["final_loss"]
    assert last < 0.6 * first
    f = fits[0]
    face = head.regions["face"]
    pred = model.predict_for_head(head, f.shape, f.static_offset, f.expression)[:, face]
    err = (pred - f.dynamic_offset[:, face]).norm(dim=-1).mean()
    assert err < 0.8 * f.dynamic_offset[:, face].norm(dim=-1).mean()


def test_reference_frame_is_most_neutral_frontal(world):
    fit = _fit(world, 2, 20, yaw=torch.linspace(-0.3, 0.3, 20))
    fit.expression[7] = 0.0
    fit.rotation[7] = 0.0
    assert reference_frame(fit) == 7
    fit.valid[7] = False
    assert reference_frame(fit) != 7


def _yaw(rot):
    return matrix_to_euler(axis_angle_to_matrix(rot))[:, 0]


def test_retarget_pose_modes(head, world):
    drv = _fit(world, 3, 20, yaw=0.4 * torch.sin(torch.linspace(0, 3, 20)))
    drv.translation[:, 0] = torch.linspace(-0.02, 0.02, 20)
    src = _fit(world, 4, 1)
    src.rotation[:] = torch.tensor([0.0, -0.2, 0.0])
    ref = 0
    rel = retarget(src, drv, head, None, RetargetConfig(mode="relative", reference=ref))
    assert rel.num_frames == 20 and rel.landmarks68_2d.shape == (20, 68, 2)
    assert torch.allclose(rel.rotation[ref], src.rotation[0], atol=1e-5)
    assert torch.allclose(_yaw(rel.rotation) - _yaw(rel.rotation[ref:ref + 1]),
                          _yaw(drv.rotation) - _yaw(drv.rotation[ref:ref + 1]), atol=1e-4)
    assert torch.allclose(rel.expression, drv.expression)
    assert torch.equal(rel.shape, src.shape) and torch.equal(rel.static_offset, src.static_offset)
    ab = retarget(src, drv, head, None, RetargetConfig(mode="absolute"))
    assert torch.allclose(ab.rotation, drv.rotation, atol=1e-6)
    # same camera and image size here, so absolute mode reproduces the driver's framing
    assert torch.allclose(ab.translation, drv.translation, atol=1e-6)
    sm = retarget(src, drv, head, None, RetargetConfig(smooth=3.0, reference=ref))
    jerk = lambda r: (r[2:] - 2 * r[1:-1] + r[:-2]).norm(dim=-1).mean()  # noqa: E731
    assert jerk(sm.rotation) < jerk(rel.rotation)
    half = retarget(src, drv, head, None, RetargetConfig(intensity=0.5, regions=("expression",)))
    assert torch.allclose(half.expression, 0.5 * drv.expression)
    assert torch.allclose(half.rotation, src.rotation.expand(20, 3))


def test_relative_translation_is_per_face_size_in_view(head, world):
    """translation "face" (the default): the driver's head moving by a share of its own face's
    size in view moves the source's by the same share of the source's: a face half as big in
    view moves half as far (in view angle); "frame" moves both as far for the image."""
    import copy
    drv = _fit(world, 3, 20)
    drv.translation[:, 0] = torch.linspace(-0.02, 0.02, 20)
    src = _fit(world, 4, 1)
    small = copy.deepcopy(src)
    c = small.landmarks68_2d.mean(1, keepdim=True)
    small.landmarks68_2d = c + 0.5 * (small.landmarks68_2d - c)                 # half the size in view

    def moved(fit, how):
        out = retarget(fit, drv, head, None, RetargetConfig(reference=0, translation=how))
        tan = out.translation[:, :2] / out.translation[:, 2:]
        return tan - tan[:1]
    assert moved(src, "face").abs().max() > 1e-3
    assert torch.allclose(moved(small, "face"), 0.5 * moved(src, "face"), atol=1e-6)
    assert torch.allclose(moved(small, "frame"), moved(src, "frame"), atol=1e-7)
    with pytest.raises(UserError):
        retarget(src, drv, head, None, RetargetConfig(translation="body"))


def test_partial_regions_move_only_their_vertices(head, world):
    drv, src = _fit(world, 5, 6), _fit(world, 6, 1)
    src.expression[:] = 0.0
    out = retarget(src, drv, head, None, RetargetConfig(regions=("lips",)))
    mesh = lambda fit: (head(src.shape.expand(fit.num_frames, -1), fit.expression).dense  # noqa: E731
                        + fit.dynamic_offset)
    moved = mesh(out) - mesh(src)[:1]
    want = head(src.shape.expand(6, -1), drv.expression).dense - mesh(src)[:1]
    lips, eyes = head.regions["lips"], head.regions["eyes"]
    err_lips = (moved[:, lips] - want[:, lips]).norm(dim=-1).mean()
    assert err_lips < 0.1 * want[:, lips].norm(dim=-1).mean()
    assert moved[:, eyes].norm(dim=-1).mean() < 0.2 * want[:, eyes].norm(dim=-1).mean()
    with pytest.raises(UserError):
        retarget(src, drv, head, None, RetargetConfig(regions=("nose",)))


@pytest.mark.skipif(not default_checkpoint("bfm").is_dir(), reason="shipped checkpoint missing")
def test_cli_transfer_writes_fit_and_normals(tmp_path, world):
    from expportrait.cli import main
    from expportrait.data.video import read_video

    drv = _fit(world, 7, 10, yaw=torch.linspace(0, 0.3, 10))
    drv.gaze = torch.zeros(10, 2, 3)
    drv.gaze[:, :, 1] = torch.linspace(-0.3, 0.3, 10)[:, None]
    save_fit(drv, tmp_path / "drv.safetensors")
    save_fit(_fit(world, 8, 1), tmp_path / "src.safetensors")
    args = ["transfer", "--source", str(tmp_path / "src.safetensors"), "--driving",
            str(tmp_path / "drv.safetensors"), "--out", str(tmp_path / "out")]
    assert main(args) == 0
    driven = load_fit(tmp_path / "out" / "driven.safetensors")
    assert driven.num_frames == 10 and driven.landmarks68_2d.shape == (10, 68, 2)
    assert driven.gaze is not None and torch.allclose(driven.gaze, drv.gaze)
    assert driven.dynamic_offset.abs().max() > 0
    video = read_video(tmp_path / "out" / "normals.mp4")
    assert video.frames.shape[:3] == (10, 256, 256)
    assert video.frames[0].astype(int).sum() > 0
    assert main(args + ["--pose-mode", "sideways"]) == 2
