"""The live engine: its causal filter, its per-frame solver, the streaming engine against the
offline warp, a session on a real clip, and ``expportrait live`` (recording, bad input)."""
import numpy as np
import pytest
import torch

from expportrait.cli import main


def test_one_euro_smooths_jitter_and_follows_a_step():
    from expportrait.live.track import OneEuro
    rng = np.random.default_rng(0)
    f = OneEuro(min_cutoff=1.5, beta=0.3)
    noisy = 1.0 + 0.01 * rng.standard_normal(200)
    out = np.array([f(np.array([x]), 1 / 30)[0] for x in noisy])
    assert np.std(np.diff(out[20:])) < 0.3 * np.std(np.diff(noisy[20:]))     # jitter cut
    f.reset()
    step = np.array([f(np.array([0.0 if i < 30 else 1.0]), 1 / 30)[0] for i in range(90)])
    assert step[29] == 0.0 and 0.0 < step[31] < 1.0 and step[-1] > 0.97      # causal, then there


def test_frame_solver_recovers_pose_and_expression(head):
    from expportrait.live.track import FrameSolver
    from expportrait.tracking.config import BaseStageConfig
    from expportrait.tracking.fit import make_camera, project_landmarks

    torch.manual_seed(0)
    cam = make_camera(1, 480, 640, 30.0)
    shape = 0.5 * torch.randn(head.n_shape)
    truth = torch.cat([torch.tensor([0.1, -0.25, 0.05, 0.01, -0.02, 0.6]), 0.8 * torch.randn(head.n_exp)])
    target = project_landmarks(head, shape[None], truth[None, 6:], torch.zeros(1, 3), truth[None, :3],
                               truth[None, 3:6], cam)[0].numpy()
    start = truth.clone()
    start[:3] += torch.tensor([-0.06, 0.08, 0.03])
    start[6:] = 0.0
    solver = FrameSolver(head, shape, cam[0], BaseStageConfig(), iters=8, w_previous=0.0)
    got = solver.solve(target, start)
    again = solver._project(got.double()[None])[0].numpy()
    assert np.abs(again - target).max() < 0.5                                  # pixels
    assert torch.allclose(got[:3], truth[:3], atol=0.02)
    far = project_landmarks(head, shape[None], start[None, 6:], torch.zeros(1, 3), start[None, :3],
                            start[None, 3:6], cam)[0].numpy()
    assert np.abs(far - target).max() > 10                                    # it had work to do


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    from conftest import write_tiny_checkpoint
    from expportrait.pipeline import ReenactPipeline
    ckpt = write_tiny_checkpoint(tmp_path_factory.mktemp("live") / "ckpt")
    return ReenactPipeline.from_checkpoint(ckpt)


def test_stream_is_the_offline_warp_frame_by_frame(pipe):
    """Without the mouth and lids (clip-level in the offline engine), one streamed frame is the
    offline warp's frame, pixel for pixel."""
    from dataclasses import replace

    from expportrait.data.video import read_source
    from expportrait.engines.stream import WarpFirstStream
    from expportrait.engines.segment import person_mask
    from expportrait.engines.warp_field import expression_warp

    img = read_source("sample:astronaut").frames[0][::2, ::2].copy()             # 256 px
    fit = pipe.tracker.fit(img[None], 25.0, "source", stages=("base",))
    ref = fit.frames(slice(0, 1))
    driven = ref.frames(torch.zeros(3, dtype=torch.long))
    driven.expression = driven.expression + torch.linspace(0, 1.5, 3)[:, None]
    driven.rotation = driven.rotation + torch.tensor([0.0, 0.15, 0.05]) * torch.linspace(0, 1, 3)[:, None]
    from expportrait.tracking.fit import project_landmarks
    driven.landmarks68_2d = project_landmarks(pipe.head, driven.shape, driven.expression, driven.jaw,
                                              driven.rotation, driven.translation, driven.camera)
    cfg = replace(pipe.config, mouth_source="none", regions=("pose", "expression"))
    offline = expression_warp(img, ref, driven, pipe.head, person=person_mask(img))
    stream = WarpFirstStream(pipe.head, img, ref, cfg)
    for i in range(3):
        frame, det = stream(driven.frames([i]), None, None)
        np.testing.assert_array_equal(frame, offline[i])
    assert np.abs(offline[2].astype(int) - img).mean() > 0.5                   # the head moved


def test_session_follows_a_real_driver(pipe):
    from expportrait.data.video import read_source
    from expportrait.live.session import LiveConfig, LiveSession

    src = read_source("sample:astronaut").frames[0]
    drv = read_source("sample:carphone", max_frames=24).frames
    s = LiveSession(pipe, src, LiveConfig(size=192))
    piped = LiveSession(pipe, src, LiveConfig(size=192))
    try:
        blank = s(np.zeros((120, 160, 3), np.uint8))                            # no face yet: the source
        np.testing.assert_array_equal(blank, s.image)
        out = np.stack([s(f, 1 / 25) for f in drv])
        both = np.stack(list(piped.stream(drv, 1 / 25)))   # tracking the next frame while rendering
    finally:
        s.close()
        piped.close()
    np.testing.assert_array_equal(both, out)                                   # the same pictures
    assert out.shape[1:] == (192, 192, 3) and s.tracker.reference is not None
    lm = s.source_fit.landmarks68_2d[0].numpy()
    x0, y0 = lm.min(0).astype(int)
    x1, y1 = lm.max(0).astype(int)
    face = out[:, y0:y1, x0:x1].astype(float)
    assert np.abs(np.diff(face, axis=0)).mean() > 0.3                          # it moves
    own = s.image[y0:y1, x0:x1].astype(float).ravel()
    assert np.corrcoef(face[0].ravel(), own)[0, 1] > 0.9        # the source, at the reference pose
    gy, gx = np.mgrid[0:192, 0:192]
    far = np.hypot(gx - (x0 + x1) / 2, gy - (y0 + y1) / 2) > 1.6 * (x1 - x0)
    assert far.mean() > 0.2 and (out[:, far] == s.image[far]).mean() > 0.99  # the rest stays
    assert {"track", "transfer", "engine"} <= set(s.timings)


def test_live_command_records_and_answers_bad_input(tmp_path, capsys):
    import av
    from conftest import write_tiny_checkpoint
    ckpt = write_tiny_checkpoint(tmp_path / "ckpt")
    out = tmp_path / "rec.mp4"
    assert main(["live", "--source", "sample:astronaut", "--driving", "sample:carphone", "--max-frames", "6",
                 "--size", "128", "--out", str(out), "--no-window", "--checkpoint", str(ckpt)]) == 0
    with av.open(str(out)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 6 and frames[0].shape == (128, 128, 3)
    capsys.readouterr()
    bad = tmp_path / "bad.mp4"
    assert main(["live", "--source", "sample:astronaut", "--camera", "7", "--out", str(bad),
                 "--checkpoint", str(ckpt)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: camera 7 cannot be opened") and not bad.exists()
    assert main(["live", "--source", "sample:astronaut", "--size", "10", "--driving", "sample:carphone",
                 "--out", str(bad)]) == 2
    assert "--size" in capsys.readouterr().err and not bad.exists()


def test_video_writer_is_atomic(tmp_path):
    from expportrait.data.video import VideoWriter
    path = tmp_path / "a.mp4"
    w = VideoWriter(path, 25)
    w.write(np.zeros((33, 47, 3), np.uint8))                                   # odd: padded
    assert not path.exists()
    w.abort()
    assert not path.exists() and not list(tmp_path.iterdir())
    with pytest.raises(ValueError):
        with VideoWriter(path, 25) as w:
            w.write(np.zeros((32, 32, 3), np.uint8))
            raise ValueError("boom")
    assert not path.exists()
    with VideoWriter(path, 25) as w:
        for i in range(3):
            w.write(np.full((32, 48, 3), 60 * i, np.uint8))
    assert path.exists() and w.frames == 3
