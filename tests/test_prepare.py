"""`expportrait prepare` (data/prepare.py + commands/prepare.py): clips, manifest, resume, ranks."""
import json
import os
from types import SimpleNamespace

import numpy as np
import pytest

from expportrait.cli import main
from expportrait.data.datasets import ClipDataset, read_clip, read_manifest
from expportrait.data.prepare import (PrepareConfig, clip_spans, flip_normals, parse_range,
                                      prepare_dataset, video_id)
from expportrait.errors import UserError


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("prep")
    tcfg = root / "track.json"
    tcfg.write_text(json.dumps({"stages": ["base"], "base": {"rigid_iters": 30, "iters": 60}}))
    args = ["prepare", "sample:carphone", "--out", str(root / "ds"), "--size", "64", "--frames",
            "0:10", "--clip-frames", "5", "--flip", "--stages", "base", "--track-config", str(tcfg)]
    assert main(args) == 0
    return root / "ds", args


def test_prepare_writes_a_loadable_manifest(prepared):
    ds, _ = prepared
    m = read_manifest(ds)
    assert m["resolution"] == [64, 64] and len(m["clips"]) == 4  # 2 clips x (plain, flipped)
    assert {tuple(c["frame_range"]) for c in m["clips"]} == {(0, 5), (5, 10)}
    assert all(c["ref_frame"] == 0 for c in m["clips"])
    item = ClipDataset(ds, 5)[0]
    assert item["frames"].shape == (3, 5, 64, 64) and item["pose_normals"].shape == (3, 5, 64, 64)
    assert item["frames"].min() >= -1 and item["frames"].max() <= 1
    plain = read_clip(ds / m["clips"][0]["file"])
    flip = read_clip(ds / m["clips"][1]["file"])
    assert m["clips"][1]["file"].endswith("-flip.safetensors")
    assert np.array_equal(flip["frames"].numpy(), plain["frames"].numpy()[..., ::-1])
    n = plain["pose_normals"].numpy()                                   # (F, 3, H, W)
    fg = n.any(1)
    # the face covers a good part of the crop centre and the normals point towards the camera
    assert fg[:, 16:48, 16:48].mean() > 0.5
    assert n[:, 2][fg].mean() > 170                                    # z mostly > 0.3
    # the reference of the first clip is its first frame
    assert np.array_equal(plain["ref_image"].numpy(), plain["frames"][0].numpy())
    assert np.array_equal(plain["ref_normal"].numpy(), plain["pose_normals"][0].numpy())


def test_prepare_rotation_copies(tmp_path):
    """--rotations adds turned copies of every clip; their reference stays the unturned frame."""
    tcfg = tmp_path / "track.json"
    tcfg.write_text(json.dumps({"stages": ["base"], "base": {"rigid_iters": 30, "iters": 60}}))
    assert main(["prepare", "sample:carphone", "--out", str(tmp_path / "ds"), "--size", "64",
                 "--frames", "0:5", "--clip-frames", "5", "--rotations=0,15", "--stages", "base",
                 "--track-config", str(tcfg)]) == 0
    m = read_manifest(tmp_path / "ds")
    names = [c["file"] for c in m["clips"]]
    assert len(names) == 2 and names[1].endswith("s0r1-0000.safetensors")
    plain, turned = (read_clip(tmp_path / "ds" / f) for f in names)
    assert np.array_equal(turned["ref_image"].numpy(), plain["ref_image"].numpy())
    assert np.array_equal(turned["ref_normal"].numpy(), plain["ref_normal"].numpy())
    assert np.abs(turned["frames"].float() - plain["frames"].float()).mean() > 5
    # the same normals, turned: equal foreground area up to nearest-neighbour edges
    a, b = plain["pose_normals"].numpy().any(1).sum(), turned["pose_normals"].numpy().any(1).sum()
    assert abs(a - b) < 0.05 * a


def test_prepare_warp_reference(tmp_path):
    """--warp-reference: every clip carries its reference warped to each frame by the fit, cropped
    and turned like the frames; frame 0 (the reference itself) is unchanged, later frames move
    towards the real ones."""
    tcfg = tmp_path / "track.json"
    tcfg.write_text(json.dumps({"stages": ["base"], "base": {"rigid_iters": 30, "iters": 60}}))
    assert main(["prepare", "sample:carphone", "--out", str(tmp_path / "ds"), "--size", "64",
                 "--frames", "56:61", "--clip-frames", "5", "--rotations=0,15", "--stages", "base",
                 "--track-config", str(tcfg), "--warp-reference"]) == 0
    m = read_manifest(tmp_path / "ds")
    assert all(c["has_appearance"] for c in m["clips"]) and len(m["clips"]) == 2
    plain, turned = (read_clip(tmp_path / "ds" / c["file"]) for c in m["clips"])
    app, frames = plain["appearance"].float(), plain["frames"].float()       # (F, 3, H, W)
    ref = plain["ref_image"].float()
    assert app.shape == frames.shape
    assert (app[0] - ref).abs().mean() < 1.0                                  # the identity warp
    moved = (ref[None] - frames[1:]).abs().mean()                             # the mouth opens
    print("warp error", float((app[1:] - frames[1:]).abs().mean()), "reference error", float(moved))
    assert (app[1:] - frames[1:]).abs().mean() < 0.8 * moved                  # closer to the real
    assert (turned["appearance"].float() - app).abs().mean() > 5              # turned with the frames
    item = ClipDataset(tmp_path / "ds", 5, with_appearance=True)[0]
    assert item["appearance"].shape == (3, 5, 64, 64)


def test_prepare_resumes(prepared, capsys):
    ds, args = prepared
    files = sorted((ds / "clips").glob("*.safetensors"))
    mtimes = {f: f.stat().st_mtime_ns for f in files}
    capsys.readouterr()
    assert main(args) == 0
    assert "skipped 1" in capsys.readouterr().out
    assert all(f.stat().st_mtime_ns == mtimes[f] for f in files)
    files[0].write_bytes(b"broken")                   # a damaged shard is redone (fit is cached)
    assert main(args) == 0
    assert len(read_manifest(ds)["clips"]) == 4 and files[0].stat().st_size > 1000


def test_prepare_refuses_to_mix_settings(prepared, capsys):
    """Resuming into a dataset made with other settings stops with one line naming the change,
    before anything is written."""
    ds, args = prepared
    before = sorted(p.name for p in ds.rglob("*"))
    other = list(args)
    other[other.index("--size") + 1] = "32"
    capsys.readouterr()
    assert main(other) == 2
    err = capsys.readouterr().err.strip()
    assert "prepared with other settings" in err and "size 64 -> 32" in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in ds.rglob("*")) == before


def _fake_tracker(frames, fps):
    F = len(frames)
    base = np.array([[10 + 2 * i, 20.0] for i in range(17)] + [[30.0, 30.0]] * 51)  # (68, 2)
    base[36:48] = [26.0, 18.0]
    base[48:68] = [26.0, 34.0]
    return SimpleNamespace(landmarks68_2d=np.repeat(base[None], F, 0),
                           camera=np.tile([[50.0, 50.0, 24.0, 24.0]], (F, 1)))


def _fake_render(fit, idx, boxes, size):
    return np.full((len(idx), size, size, 3), 128, np.uint8)


def test_rank_split(tmp_path, monkeypatch):
    import accelerate

    videos = ["a.mp4", "b.mp4", "c.mp4"]
    seen = []

    def read(path):
        seen.append(path)
        return SimpleNamespace(frames=np.zeros((6, 48, 48, 3), np.uint8), fps=25.0)

    class Rank1:
        process_index, num_processes, is_main_process = 1, 2, False

        def wait_for_everyone(self):
            pass

    monkeypatch.setattr(accelerate, "PartialState", Rank1)
    cfg = PrepareConfig(size=16, clip_frames=3)
    summary = prepare_dataset(tmp_path, videos, read, _fake_tracker, _fake_render, cfg)
    assert seen == ["b.mp4"] and summary["prepared"] == 1
    assert not (tmp_path / "manifest.json").exists()   # only rank 0 writes it
    assert (tmp_path / "index" / f"{video_id('b.mp4', None)}.json").is_file()


def test_helpers():
    assert parse_range("0:60") == (0, 60) and parse_range(None) is None
    for bad in ("60", "5:2", "a:b"):
        with pytest.raises(UserError):
            parse_range(bad)
    assert clip_spans(10, 5, None) == [(0, 5), (5, 10)]
    assert clip_spans(11, 5, 3) == [(0, 5), (3, 8), (6, 11)]
    assert clip_spans(3, 5, None) == [(0, 3)]
    n = np.zeros((1, 2, 2, 3), np.uint8)
    n[0, 0, 0] = (200, 100, 220)
    f = flip_normals(n)
    assert tuple(f[0, 0, 1]) == (55, 100, 220) and not f[0, 0, 0].any()
    assert video_id("x/a.mp4", (0, 5)) != video_id("x/a.mp4", (0, 6))


def test_prepare_missing_file_exits_2(tmp_path, capsys):
    assert main(["prepare", str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "ds")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not found" in err[0]
    assert os.listdir(tmp_path) in ([], ["ds"])


def test_prepare_killed_half_way_resumes_without_redoing_or_corrupting(tmp_path):
    """SIGKILL a real `expportrait prepare` process once its first video is finished, run the
    same command again: finished shards are kept as they were (same bytes, same mtimes), leftover
    temporaries are removed, and the dataset equals one made without interruption."""
    import hashlib
    import signal
    import subprocess
    import sys
    import time

    from expportrait.data.video import read_source, write_video
    carphone = read_source("sample:carphone", max_frames=30)
    videos = []
    for i in range(3):
        videos.append(tmp_path / f"v{i}.mp4")
        write_video(videos[-1], carphone.frames[i * 10:i * 10 + 10], carphone.fps)
    tcfg = tmp_path / "track.json"
    tcfg.write_text(json.dumps({"stages": ["base"], "base": {"rigid_iters": 30, "iters": 60}}))

    def cmd(out):
        return [sys.executable, "-m", "expportrait.cli", "prepare", *map(str, videos), "--out", str(out),
                "--size", "32", "--clip-frames", "5", "--stages", "base", "--track-config", str(tcfg)]

    def digest(ds):
        return {f.relative_to(ds).as_posix(): hashlib.sha1(f.read_bytes()).hexdigest()
                for f in sorted((ds / "clips").glob("*.safetensors"))}

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ds = tmp_path / "ds"
    proc = subprocess.Popen(cmd(ds), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and not list((ds / "index").glob("*.json")) and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = list((ds / "index").glob("*.json"))
    assert len(finished) == 1 and not (ds / "manifest.json").exists(), "killed too late"
    kept = {f: f.stat().st_mtime_ns for f in (ds / "clips").glob("*.safetensors")}
    (ds / "clips" / ".v9-s0-0000.abc.part.safetensors").write_bytes(b"half")  # as a kill leaves it
    resumed = subprocess.run(cmd(ds), env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "skipped 1" in resumed.stdout
    assert kept and all(f.stat().st_mtime_ns == t for f, t in kept.items())
    assert not list(ds.rglob(".*.part*"))
    assert len(read_manifest(ds)["clips"]) == 6                       # 3 videos x 2 clips
    ref = tmp_path / "ref"
    assert subprocess.run(cmd(ref), env=env, capture_output=True).returncode == 0
    assert digest(ds) == digest(ref)
    assert json.loads((ds / "manifest.json").read_text())["clips"] == \
        json.loads((ref / "manifest.json").read_text())["clips"]


def test_still_motion_is_a_smooth_small_camera_move():
    from skimage import data

    from expportrait.data.prepare import still_motion
    img = data.astronaut()
    clip = still_motion(img, 20, seed=1)
    assert clip.shape == (20, 512, 512, 3) and clip.dtype == np.uint8
    assert np.abs(clip[0].astype(int) - img).mean() < 1.0               # starts at the photo
    step = [np.abs(clip[i + 1].astype(int) - clip[i]).mean() for i in range(19)]
    total = np.abs(clip[1:].astype(int) - clip[0]).mean(axis=(1, 2, 3))
    assert max(total) > 5 and max(step) < max(total) / 2                # moves, but gradually
    assert np.array_equal(still_motion(img, 20, seed=1), clip)           # seeded


def test_still_expressions_on_the_base_stage_move_the_photo():
    """stage base alone: the photo's base head through psi and jaw (warp_first's warp, no G)."""
    from skimage import data

    from expportrait.commands.prepare import photo_expressions
    from expportrait.head import load_head
    from expportrait.tracking.config import TrackConfig
    img = data.astronaut()
    tcfg = TrackConfig(stages=("base",))
    clip = photo_expressions(img, 6, 0, tcfg, load_head(tcfg.head, density=tcfg.density))
    assert clip.shape == (6, 512, 512, 3) and clip.dtype == np.uint8
    assert np.abs(clip[0].astype(int) - img).mean() < 0.5              # frame 0 is the photo
    face = np.abs(clip[1:, 60:220, 170:330].astype(int) - img[60:220, 170:330]).mean()
    suit = np.abs(clip[1:, 420:].astype(int) - img[420:]).mean()
    assert face > 1.0 and suit < 0.1, (face, suit)                     # the face moves, not the suit


def test_prepare_mouth_donor_carries_a_donors_mouth_into_the_warp(tmp_path, capsys):
    """--mouth-donor: the warped references take the donor's inner mouth where the lips open wider
    than the reference's (the reference frame itself about the plain warp); it needs
    --warp-reference, and a video prepared without a donor is not mixed with one."""
    from expportrait.data.video import read_source, write_video
    tcfg = tmp_path / "track.json"
    tcfg.write_text(json.dumps({"stages": ["base"], "base": {"rigid_iters": 30, "iters": 60}}))
    car = read_source("sample:carphone", max_frames=120)
    write_video(tmp_path / "donor.mp4", car.frames[100:120], car.fps)
    args = ["sample:carphone", "--size", "64", "--frames", "24:30", "--clip-frames", "6", "--stages", "base",
            "--track-config", str(tcfg), "--warp-reference", "--crop-centre", "mouth", "--crop-scale", "0.8"]
    assert main(["prepare", *args, "--out", str(tmp_path / "plain")]) == 0
    assert main(["prepare", *args, "--out", str(tmp_path / "donor"), "--mouth-donor", str(tmp_path / "donor.mp4")]) == 0
    plain, donor = (read_clip(tmp_path / d / read_manifest(tmp_path / d)["clips"][0]["file"])["appearance"].float()
                    for d in ("plain", "donor"))                                 # (F, 3, 64, 64)
    diff = (plain - donor).abs().amax(1)                                          # (F, 64, 64)
    print("changed pixels per frame", (diff > 8).sum((1, 2)).tolist())
    assert (diff[0] > 8).sum() == 0 and (diff[2:] > 8).sum() > 20       # (the gate is smoothed in time)
    ys, xs = np.nonzero((diff > 8).any(0).numpy())
    assert 12 <= ys.mean() <= 52 and 12 <= xs.mean() <= 52                       # about the mouth
    assert main(["prepare", *args, "--out", str(tmp_path / "plain"), "--mouth-donor", str(tmp_path / "donor.mp4")]) == 2
    assert "other settings" in capsys.readouterr().err
    bare = [a for a in args if a != "--warp-reference"]
    assert main(["prepare", *bare, "--out", str(tmp_path / "x"), "--mouth-donor", str(tmp_path / "donor.mp4")]) == 2
