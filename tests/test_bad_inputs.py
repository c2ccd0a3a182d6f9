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
    return d


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
