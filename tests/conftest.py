import pytest
import torch


@pytest.fixture(scope="module")
def head():
    """The embedded BFM head at coarse density (test modules may override with their own)."""
    from expportrait.head import load_head

    torch.set_num_threads(1)
    return load_head("bfm", density="coarse")


def write_tiny_checkpoint(folder):
    """A complete pipeline checkpoint folder with a random tiny generator + VAE and fast
    base-stage tracking: exercises every step of ReenactPipeline in seconds (output is noise)."""
    import json

    from expportrait.generator.config import get_preset
    from expportrait.generator.model import ReenactGenerator
    from expportrait.generator.vae import build_vae

    torch.manual_seed(0)
    cfg = get_preset("tiny")
    ReenactGenerator(cfg).save_pretrained(folder / "generator", dtype=torch.float16)
    build_vae(cfg).save_pretrained(str(folder / "vae"))
    (folder / "pipeline.json").write_text(json.dumps({
        "pipeline": {"mode": "auto", "steps": 1},
        "tracking": {"stages": ["base"], "base": {"rigid_iters": 30, "iters": 60}}}))
    return folder


def write_talking(path, frames, fmt=None, opts=None, fps=25, rate=16000):
    """frames (F, H, W, 3) uint8 -> ``path``: H.264 video with an interleaved AAC 440 Hz tone
    (mono, ``rate`` Hz), as a recorder writes it; ``fmt``/``opts`` go to PyAV's container."""
    import av
    import numpy as np
    with av.open(str(path), "w", format=fmt, options=opts or {}) as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        a = out.add_stream("aac", rate=rate, layout="mono")
        n = int(rate * len(frames) / fps)
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / rate)).astype(np.float32)[None]
        k = 0
        for i, img in enumerate(frames):
            for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
            while k < n and k / rate <= (i + 1) / fps:              # interleaved
                fr = av.AudioFrame.from_ndarray(tone[:, k:k + 1024], format="fltp", layout="mono")
                fr.sample_rate, fr.pts = rate, k
                for p in a.encode(fr):
                    out.mux(p)
                k += 1024
        for p in vs.encode():
            out.mux(p)
        for p in a.encode():
            out.mux(p)
    return path


def audio_seconds(path) -> float:
    """Seconds of decodable audio in the first audio stream of ``path`` (0 without one)."""
    import av
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return 0.0
        s = c.streams.audio[0]
        return sum(f.samples for f in c.decode(s)) / s.rate


def browser_or_skip():
    """The browser tests' guard: -> (chromedriver path, chromium path, selenium.webdriver); the
    calling module is skipped where there is none (in CI, where CI=1, that is an error), or where
    gradio or selenium is missing."""
    import os
    import shutil
    driver = shutil.which("chromedriver")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not (driver and chromium):
        if os.environ.get("CI"):
            raise RuntimeError("CI needs chromium + chromium-driver (bash scripts/setup.sh --browser)")
        pytest.skip("no chromium/chromedriver here (bash scripts/setup.sh --browser)", allow_module_level=True)
    pytest.importorskip("gradio")
    return driver, chromium, pytest.importorskip("selenium.webdriver")
