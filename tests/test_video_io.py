"""Video IO: round trip, odd sizes, grayscale/RGBA images, and the driver's audio carried over."""
from fractions import Fraction

import av
import numpy as np
import pytest

from conftest import audio_seconds
from expportrait.data.video import read_image, read_source, read_video, to_rgb, write_video
from expportrait.errors import UserError


def _clip_with_audio(path, frames=30, fps=25, rate=16000, freq=440.0):
    """An mp4 with a moving square and a sine tone of the same duration."""
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        a = out.add_stream("aac", rate=rate)
        for i in range(frames):
            img = np.zeros((48, 64, 3), np.uint8)
            img[10:20, i:i + 10] = 255
            for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
        n = int(rate * frames / fps)
        t = np.arange(n) / rate
        tone = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)[None]
        for s in range(0, n, 1024):
            fr = av.AudioFrame.from_ndarray(tone[:, s:s + 1024], format="fltp", layout="mono")
            fr.sample_rate = rate
            for p in a.encode(fr):
                out.mux(p)
        for p in a.encode():
            out.mux(p)


def test_write_read_round_trip_odd_size(tmp_path):
    frames = (np.random.default_rng(0).random((5, 33, 47, 3)) * 255).astype(np.uint8)
    frames[:] = frames.mean(axis=(1, 2), keepdims=True).astype(np.uint8)  # flat colours survive x264
    out = write_video(tmp_path / "v.mp4", frames, 25.0)
    v = read_video(out)
    assert v.frames.shape == (5, 34, 48, 3)  # padded to even sizes for yuv420p
    assert abs(v.fps - 25.0) < 1e-6
    assert np.abs(v.frames[:, :33, :47].astype(int) - frames.astype(int)).mean() < 4


def test_driver_audio_is_carried_over_in_sync(tmp_path):
    drv = tmp_path / "drv.mp4"
    _clip_with_audio(drv, frames=30, fps=25)
    d = read_video(drv)
    out = write_video(tmp_path / "out.mp4", d.frames[:20], d.fps, audio_from=drv)
    assert len(read_video(out).frames) == 20
    secs = audio_seconds(out)
    assert abs(secs - 20 / 25) < 0.1  # cut to the video's duration (AAC frames are 1024 samples)
    with av.open(str(out)) as c:
        assert c.streams.audio[0].start_time is None or float(
            c.streams.audio[0].start_time * c.streams.audio[0].time_base) < 0.05


def test_no_audio_source_is_fine(tmp_path):
    img = np.zeros((4, 16, 16, 3), np.uint8)
    out = write_video(tmp_path / "a.mp4", img, Fraction(30000, 1001), audio_from=tmp_path / "missing.wav")
    assert audio_seconds(out) == 0.0


def test_image_modes(tmp_path):
    from PIL import Image
    gray = (np.arange(64 * 64) % 256).reshape(64, 64).astype(np.uint8)
    Image.fromarray(gray).save(tmp_path / "g.png")
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 255, 0  # fully transparent red -> white
    Image.fromarray(rgba).save(tmp_path / "a.png")
    g = read_image(tmp_path / "g.png")
    assert g.shape == (64, 64, 3) and (g[..., 0] == gray).all()
    assert (read_image(tmp_path / "a.png") == 255).all()
    assert to_rgb(np.ones((2, 2), np.float32)).dtype == np.uint8
    assert read_source(tmp_path / "g.png").frames.shape == (1, 64, 64, 3)
    with pytest.raises(UserError):
        to_rgb(np.zeros((2, 2, 5)))
