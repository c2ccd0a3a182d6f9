"""The shipped demo checkpoint (src/expportrait/checkpoints/demo, made by scripts/train_demo.sh and
scripts/train_demo16.sh): it loads strictly, and a short cross-reenactment keeps the astronaut (dlib)."""
import json

import numpy as np
import pytest

from expportrait.export import default_checkpoint

pytestmark = pytest.mark.skipif(not (default_checkpoint() / "generator" / "config.json").is_file(),
                                reason="the demo checkpoint is not in this checkout")


def test_shipped_checkpoint_is_small_fp16_and_loads_strictly():
    from safetensors import safe_open

    from expportrait.pipeline import ReenactPipeline
    folder = default_checkpoint()
    total = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    assert total < 40e6
    with safe_open(str(folder / "generator" / "model.safetensors"), "pt") as f:
        assert {str(f.get_slice(k).get_dtype()) for k in f.keys()} == {"F16"}
    pipe = ReenactPipeline.from_checkpoint(folder)
    assert pipe.parts.loaded() == [] and pipe.engine.parts.loaded() == []   # warp_first loads none
    assert pipe.parts.generator().config.preset == "demo16"
    assert json.loads((folder / "pipeline.json").read_text())["pipeline"]["mode"] == "auto"


def test_short_cross_reenactment_with_the_shipped_checkpoint(tmp_path):
    """Runs end to end at the source's size; only the face box changes (paste-back), the
    generated face moves with the driver (frames differ), and dlib still finds the astronaut in
    it (distance < 0.6). Full identity / quality figures are in benchmarks/README.md ("reenact")."""
    from expportrait.cli import main
    from expportrait.data.video import read_source, read_video
    out = tmp_path / "cross.mp4"
    assert main(["reenact", "--source", "sample:astronaut", "--driving", "sample:carphone",
                 "--max-frames", "9", "--out", str(out), "--engine", "full"]) == 0
    frames = read_video(out).frames.astype(np.int16)
    src = read_source("sample:astronaut").frames[0].astype(np.int16)
    assert frames.shape == (9, 512, 512, 3)
    box = json.loads(out.with_suffix(".json").read_text())["crop"]
    assert box == 64
    face = np.abs(frames[:, 20:200, 150:350] - src[20:200, 150:350]).mean()   # the head
    rest = np.abs(frames[:, 400:] - src[400:]).mean()                           # the suit below
    assert face > 5 and rest < 3 and face > 4 * rest, (face, rest)
    assert np.abs(frames[-1] - frames[0]).mean() > 0.5                    # the face moves
    from expportrait.metrics.identity import identity_similarity
    ident = identity_similarity(frames.astype(np.uint8), src.astype(np.uint8)).summary()
    assert ident["same_person_fraction"] >= 8 / 9, ident["dlib_distance"]   # dlib: still her
