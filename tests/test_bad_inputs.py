"""Every user-facing command answers bad input with one 'error: ...' line and exit code 2, and
leaves no output file behind. The README's bad-input table lists the same cases."""
import numpy as np
import pytest
from PIL import Image

from expportrait.cli import main


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    (d / "junk.mp4").write_bytes(b"junk" * 10)
    (d / "empty.mp4").write_bytes(b"")
    (d / "notes.txt").write_text("not a video\n")
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(d / "flat.png")
    (d / "folder").mkdir()
    Image.fromarray(np.zeros((8, 9000), np.uint8)).save(d / "huge.png")   # 9000 px wide
    _wrong_shape_checkpoint(d / "ckpt")
    _wrong_shape_transfer(d / "transfer")
    assert main(["track", "sample:astronaut", "--stages", "base", "--out", str(d / "astro")]) == 0
    (d / "astro" / "fit.safetensors").rename(d / "fit.safetensors")
    return d


def _wrong_shape_checkpoint(folder):
    """A complete pipeline checkpoint whose generator weights have one tensor of the wrong shape."""
    from safetensors.torch import load_file, save_file
    from conftest import write_tiny_checkpoint

    write_tiny_checkpoint(folder)
    path = folder / "generator" / "model.safetensors"
    state = load_file(path)
    name = sorted(k for k in state if state[k].ndim == 2)[0]
    state[name] = state[name][:, :-1].contiguous()
    save_file(state, path)


def _wrong_shape_transfer(folder):
    import shutil

    from safetensors.torch import load_file, save_file

    from expportrait.transfer.model import default_checkpoint
    shutil.copytree(default_checkpoint("bfm"), folder)
    state = load_file(folder / "model.safetensors")
    name = sorted(state)[0]
    state[name] = state[name].flatten()[:1].contiguous()
    save_file(state, folder / "model.safetensors")


CASES = {
    "missing file": ["track", "{d}/missing.mp4", "--out", "{o}"],
    "empty file": ["track", "{d}/empty.mp4", "--out", "{o}"],
    "corrupt video": ["track", "{d}/junk.mp4", "--out", "{o}"],
    "text file as video": ["track", "{d}/notes.txt", "--out", "{o}"],
    "directory as input": ["track", "{d}/folder", "--out", "{o}"],
    "no face anywhere": ["track", "{d}/flat.png", "--out", "{o}"],
    "unknown sample": ["track", "sample:nothing", "--out", "{o}"],
    "bad --stages": ["track", "sample:astronaut", "--stages", "personalized", "--out", "{o}"],
    "corrupt fit (render)": ["render", "{d}/junk.mp4", "--out", "{o}"],
    "corrupt fit (transfer)": ["transfer", "--source", "{d}/junk.mp4", "--driving", "{d}/junk.mp4", "--out", "{o}"],
    "corrupt video (evaluate)": ["evaluate", "--pred", "{d}/junk.mp4", "--out", "{o}/m.json", "--no-motion"],
    "corrupt driving (reenact)": ["reenact", "--source", "{d}/flat.png", "--driving", "{d}/junk.mp4", "--out", "{o}/r.mp4"],
    "invalid config JSON": ["train-generator", "--config", "{d}/notes.txt"],
    "image larger than 8192 px": ["track", "{d}/huge.png", "--out", "{o}"],
    "checkpoint of the wrong shape (reenact)": ["reenact", "--source", "sample:astronaut", "--driving",
                                                "sample:carphone", "--max-frames", "3", "--checkpoint",
                                                "{d}/ckpt", "--out", "{o}/r.mp4"],
    "checkpoint of the wrong shape (transfer)": ["transfer", "--source", "{d}/fit.safetensors",
                                                       "--driving", "{d}/fit.safetensors", "--checkpoint",
                                                       "{d}/transfer", "--out", "{o}"],
    "unknown --regions (reenact)": ["reenact", "--source", "sample:astronaut", "--driving", "sample:carphone",
                                    "--regions", "nose", "--out", "{o}/r.mp4"],
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_one_line_exit_2(bad, tmp_path, capsys, case):
    out = tmp_path / "out"
    argv = [a.format(d=bad, o=out) for a in CASES[case]]
    rc = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2, (case, err)
    assert len(err) == 1 and err[0].startswith("error: "), err
    produced = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
    assert produced == [], produced


def test_grayscale_rgba_and_16_bit_images_are_read_as_rgb(tmp_path):
    from skimage import data

    from expportrait.data.video import read_source
    rgb = data.astronaut()
    alpha = np.full(rgb.shape[:2] + (1,), 255, np.uint8)
    Image.fromarray(np.concatenate([rgb, alpha], 2), "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(rgb).convert("L").save(tmp_path / "gray.png")
    Image.fromarray((rgb[..., 0].astype(np.uint16) * 257)).save(tmp_path / "gray16.png")
    Image.fromarray(rgb).convert("P").save(tmp_path / "palette.png")
    for name in ("rgba", "gray", "gray16", "palette"):
        frames = read_source(tmp_path / f"{name}.png").frames
        assert frames.shape == (1, 512, 512, 3) and frames.dtype == np.uint8, name
    np.testing.assert_array_equal(read_source(tmp_path / "rgba.png").frames[0], rgb)


def test_rgba_and_grayscale_portraits_track(tmp_path, capsys):
    """The same bad-looking inputs complete: a face is found and a fit written."""
    from skimage import data
    rgb = data.astronaut()
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 200, np.uint8)], 2)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(rgb).convert("L").save(tmp_path / "gray.png")
    for name in ("rgba", "gray"):
        assert main(["track", str(tmp_path / f"{name}.png"), "--stages", "base",
                     "--out", str(tmp_path / name)]) == 0, capsys.readouterr().err
        assert (tmp_path / name / "fit.safetensors").is_file()


def test_video_too_long_for_memory_is_refused(monkeypatch, tmp_path):
    from expportrait.data import video
    from expportrait.errors import UserError
    from expportrait.paths import carphone_path
    monkeypatch.setattr(video, "MAX_DECODED_GB", 2e-3)   # ~27 carphone frames
    with pytest.raises(UserError, match="--max-frames"):
        video.read_video(carphone_path())
    assert video.read_video(carphone_path(), max_frames=10).frames.shape[0] == 10
