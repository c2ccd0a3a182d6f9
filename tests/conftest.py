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
