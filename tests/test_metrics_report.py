"""report.evaluate with injected components, and the `expportrait evaluate` command end to end."""
import json
import sys
import types

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from expportrait.cli import main
from expportrait.data.video import write_video
from expportrait.detection.dlib_face import DlibFace
from expportrait.metrics.fvd import FVD
from expportrait.metrics.lpips import LPIPS
from expportrait.metrics.report import evaluate, json_safe


def _video(seed, n=8, h=48, w=64):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (1, h, w, 3)).astype(float)
    drift = np.arange(n)[:, None, None, None] * 3.0
    return np.clip(base + drift, 0, 255).astype(np.uint8)  # (n, h, w, 3)


def _fake_tracker(frames, fps):
    """Expression = per-frame mean intensity (x1, x2); pose = yaw from the mean; fixed landmarks."""
    m = frames.reshape(len(frames), -1).mean(1) / 255.0  # (F,)
    lmk = np.tile(np.linspace(0, 60, 136).reshape(1, 68, 2), (len(frames), 1, 1))
    lmk[:, 45, 0] += 30.0
    return {"expression": np.stack([m, 2 * m], 1), "pose": np.stack([m, 0 * m, 0 * m], 1),
            "landmarks68_2d": lmk, "valid": np.ones(len(frames), bool)}


class _StandIn(torch.nn.Module):
    def forward(self, x, rescale=False, resize=False, return_features=True):
        return torch.cat([x.mean(dim=(2, 3, 4)), x.std(dim=(2, 3, 4))], dim=1)


def test_evaluate_everything_injected():
    pred, drv = _video(0), _video(0)[::-1].copy()
    gt = pred.copy()
    gt[1:] = np.clip(gt[1:].astype(int) + 5, 0, 255)
    fvd = FVD(_StandIn(), clip_len=4, size=32)
    rep = evaluate(pred, driving_frames=drv, gt_frames=gt, tracker=_fake_tracker, lpips=LPIPS("alex"),
                   fvd=fvd, fps=25.0)
    json.dumps(rep, allow_nan=False)  # strictly valid JSON
    assert rep["psnr"]["per_frame"][0] == "inf" and rep["psnr"]["value"] == "inf"
    assert all(isinstance(v, float) for v in rep["psnr"]["per_frame"][1:])
    assert rep["ssim"]["per_frame"][0] == pytest.approx(1.0) and rep["ssim"]["settings"]["sigma"] == 1.5
    assert rep["lpips"]["computed"] and len(rep["lpips"]["per_frame"]) == 8
    e_p, e_d = _fake_tracker(pred, 25)["expression"], _fake_tracker(drv, 25)["expression"]
    assert rep["aed"]["value"] == pytest.approx(np.abs(e_p - e_d).mean())
    assert rep["apd"]["value"] == pytest.approx(np.abs(e_p[:, 0] - e_d[:, 0]).mean() / 3)
    assert rep["landmark_jitter"]["value"] == pytest.approx(0.0)
    assert rep["fvd"]["computed"] and rep["fvd"]["reference"] == "gt" and rep["fvd"]["clips_pred"] == 2
    assert rep["csim"] == {"computed": False, "reason": "no source image given (--source)"}


def test_evaluate_reports_what_is_missing():
    face = DlibFace()  # shared: loading the models is the slow part
    pred = _video(1)
    src = skimage.data.astronaut()[::2, ::2]
    rep = evaluate(pred, driving_frames=_video(2, n=6), source_image=src, tracker=_fake_tracker, face=face)
    for key in ("psnr", "ssim", "l1", "lpips"):
        assert rep[key]["computed"] is False and "ground truth" in rep[key]["reason"]
    assert rep["fvd"]["computed"] is False and "I3D" in rep["fvd"]["reason"]
    assert rep["csim"]["computed"] and rep["csim"]["face_found_fraction"] == 0.0  # noise has no face
    assert rep["csim"]["value"] is None and rep["csim"]["same_person_fraction"] == 0.0
    assert rep["aed"]["frames_compared"] == 6 and "first 6" in rep["aed"]["note"]
    assert rep["landmark_jitter"]["value"] == pytest.approx(0.0)
    rep = evaluate(pred, source_image=src, face=face)  # no tracker: dlib landmarks, and noise has no face
    assert rep["landmark_jitter"]["computed"] is False and "consecutive" in rep["landmark_jitter"]["reason"]
    rep = evaluate(pred, source_image=np.full((64, 64, 3), 128, np.uint8), face=face)
    assert rep["csim"]["computed"] is False and "no face" in rep["csim"]["reason"]
    assert rep["aed"]["computed"] is False and rep["landmark_jitter"]["computed"] is False


def test_json_safe():
    assert json_safe({"a": np.float32(np.nan), "b": [np.inf, -np.inf, np.int64(3)], "c": np.array([1.5])}) == \
        {"a": None, "b": ["inf", "-inf", 3], "c": [1.5]}


@pytest.fixture()
def media(tmp_path):
    pred = _video(3, n=8)
    paths = {"pred": tmp_path / "pred.mp4", "gt": tmp_path / "gt.mp4", "short": tmp_path / "short.mp4",
             "src": tmp_path / "src.png"}
    write_video(paths["pred"], pred, fps=25)
    write_video(paths["gt"], np.clip(pred.astype(int) + 10, 0, 255).astype(np.uint8), fps=25)
    write_video(paths["short"], pred[:5], fps=25)
    Image.fromarray(skimage.data.astronaut()[::2, ::2]).save(paths["src"])
    return paths


def _run(args, capsys):
    rc = main(["evaluate", *map(str, args)])
    return rc, capsys.readouterr()


def test_command_end_to_end(media, tmp_path, capsys):
    out = tmp_path / "res" / "metrics.json"
    rc, cap = _run(["--pred", media["pred"], "--gt", media["gt"], "--driving", media["pred"],
                    "--source", media["src"], "--out", out, "--no-motion"], capsys)
    assert rc == 0, cap.err
    rep = json.loads(out.read_text())
    assert rep["frames"] == 8 and rep["size_hw"] == [48, 64]
    assert 15 < rep["psnr"]["value"] < 40 and 0 < rep["l1"]["value"] < 0.1
    assert rep["aed"]["computed"] is False and "--no-motion" in rep["aed"]["reason"]
    assert rep["csim"]["computed"] and rep["inputs"]["gt"].endswith("gt.mp4")
    assert not [p for p in out.parent.iterdir() if p.name != "metrics.json"]  # no temp files left


@pytest.mark.parametrize("case", ["missing", "count", "lpips_half"])
def test_command_bad_inputs(media, tmp_path, capsys, case):
    out = tmp_path / "m.json"
    args = {"missing": ["--pred", tmp_path / "nope.mp4"],
            "count": ["--pred", media["pred"], "--gt", media["short"]],
            "lpips_half": ["--pred", media["pred"], "--lpips-heads", media["src"]]}[case]
    rc, cap = _run([*args, "--out", out, "--no-motion"], capsys)
    assert rc == 2
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert not out.exists()


def test_command_without_tracker_module(media, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "expportrait.tracking.track", None)  # import fails
    rc, cap = _run(["--pred", media["pred"], "--driving", media["pred"], "--out", tmp_path / "m.json"], capsys)
    assert rc == 2 and "tracker not available" in cap.err


def test_project_tracker_adapter(monkeypatch):
    from expportrait.tracking import track

    yaw = np.array([0.0, 0.3, -0.2])

    def track_video(frames, fps, config=None):
        F = len(frames)
        return types.SimpleNamespace(
            expression=torch.arange(F * 4, dtype=torch.float32).reshape(F, 4),
            rotation=torch.tensor(np.stack([0 * yaw, yaw, 0 * yaw], 1)),  # axis-angle about y = yaw
            landmarks68_2d=torch.zeros(F, 68, 2), valid=torch.tensor([True, False, True])), {}

    monkeypatch.setattr(track, "TrackConfig", lambda **k: None)
    monkeypatch.setattr(track, "track_video", track_video)
    res = track.project_tracker()(np.zeros((3, 8, 8, 3), np.uint8), 25.0)
    np.testing.assert_allclose(res["pose"], np.stack([yaw, 0 * yaw, 0 * yaw], 1), atol=1e-6)
    assert res["expression"].shape == (3, 4) and res["valid"].tolist() == [True, False, True]
