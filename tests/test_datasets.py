"""Clip manifest datasets: round trip, validation, deterministic order, synthetic clips."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from expportrait.data.datasets import (ClipDataset, StepBatchSampler, clip_metadata, make_synthetic_manifest,
                                       read_clip, read_manifest, synthetic_clip, write_clip, write_manifest)
from expportrait.errors import UserError


def _random_clip(rng, frames=6, h=16, w=24, appearance=False):
    u8 = lambda *s: rng.integers(0, 256, s, dtype=np.uint8)  # noqa: E731
    return dict(frames=u8(frames, 3, h, w), pose_normals=u8(frames, 3, h, w), ref_image=u8(3, h, w),
                ref_normal=u8(3, h, w), appearance=u8(frames, 3, h, w) if appearance else None)


def test_clip_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    clip = _random_clip(rng, appearance=True)
    entry = write_clip(tmp_path, "a", **clip, source="vid.mp4", frame_range=(10, 16), ref_frame=3)
    write_manifest(tmp_path, [entry], fps=30.0)
    back = read_clip(tmp_path / entry["file"])
    for key, value in clip.items():
        assert back[key].dtype == torch.uint8 and np.array_equal(back[key].numpy(), value)
    meta = clip_metadata(tmp_path / entry["file"])
    assert meta["source"] == "vid.mp4" and meta["frame_range"] == [10, 16] and meta["ref_frame"] == 3
    m = read_manifest(tmp_path)
    assert m["resolution"] == [16, 24] and m["frames_per_clip"] == 6 and m["fps"] == 30.0

    ds = ClipDataset(tmp_path, num_frames=3, frame_stride=2, seed=1, with_appearance=True)
    item = ds[0]
    start = ds.crop_start(0)
    assert start in (0, 1)  # 6 frames, span 5
    assert item["frames"].shape == (3, 3, 16, 24) and item["ref_normal"].shape == (3, 16, 24)
    want = torch.from_numpy(clip["frames"][start:start + 5:2]).float() / 127.5 - 1  # (F, 3, H, W)
    torch.testing.assert_close(item["frames"], want.permute(1, 0, 2, 3))
    want = torch.from_numpy(clip["appearance"][start:start + 5:2]).float() / 127.5 - 1
    torch.testing.assert_close(item["appearance"], want.permute(1, 0, 2, 3))
    assert item["frames"].min() >= -1 and item["frames"].max() <= 1


def test_write_clip_rejects_bad_shapes_and_dtypes(tmp_path):
    clip = _random_clip(np.random.default_rng(1))
    with pytest.raises(UserError, match="pose_normals has shape"):
        write_clip(tmp_path, "a", **{**clip, "pose_normals": clip["pose_normals"][:-1]})
    with pytest.raises(UserError, match="uint8"):
        write_clip(tmp_path, "a", **{**clip, "ref_image": clip["ref_image"].astype(np.float32)})
    small = write_clip(tmp_path, "b", **_random_clip(np.random.default_rng(2), h=8, w=8))
    big = write_clip(tmp_path, "c", **clip)
    with pytest.raises(UserError, match="one resolution"):
        write_manifest(tmp_path, [small, big], fps=25)
    assert not list(tmp_path.rglob("*.part*"))  # no temporary leftovers


def test_manifest_validation_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        read_manifest(tmp_path / "missing")
    with pytest.raises(UserError, match="missing manifest.json"):
        read_manifest(tmp_path)
    root = make_synthetic_manifest(tmp_path / "ok", n_clips=2, frames=5, size=16)
    manifest = json.loads((root / "manifest.json").read_text())

    def broken(text: str, match: str):
        (root / "manifest.json").write_text(text)
        with pytest.raises(UserError, match=match):
            ClipDataset(root, 5)

    broken("{oops", "not valid JSON")
    broken(json.dumps({**manifest, "format": "other"}), "not an expportrait-clips manifest")
    broken(json.dumps({**manifest, "version": 99}), "unsupported manifest version")
    broken(json.dumps({k: v for k, v in manifest.items() if k != "fps"}), "missing key 'fps'")
    broken(json.dumps({**manifest, "clips": []}), "clip list is empty")
    broken(json.dumps({**manifest, "clips": [{"file": "clips/nope.safetensors", "frames": 5}]}),
           "clip file missing")
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="fewer than 9 frames"):
        ClipDataset(root, 9)
    with pytest.raises(UserError, match="appearance"):
        ClipDataset(root, 5, with_appearance=True)
    (root / manifest["clips"][1]["file"]).write_bytes(b"\x00garbage, not safetensors")
    ds = ClipDataset(root, 5)
    ds[0]
    with pytest.raises(UserError, match="not a readable safetensors file"):
        ds[1]


def test_step_sampler_order_is_a_pure_function_of_the_step():
    n, bs, world = 5, 2, 3
    ranks = [StepBatchSampler(n, bs, seed=4, rank=r, world_size=world, num_steps=10) for r in range(world)]
    stream = [k for step in range(10) for s in ranks for k in s.batch(step)]  # global order
    for epoch in range(len(stream) // n):  # every epoch is a permutation of the clips
        keys = stream[epoch * n:(epoch + 1) * n]
        assert sorted(k % n for k in keys) == list(range(n)) and all(k // n == epoch for k in keys)
    assert stream[:n] != stream[n:2 * n]  # reshuffled each epoch (keys differ by epoch anyway)
    assert [k % n for k in stream[:n]] != [k % n for k in stream[n:2 * n]]
    full = list(ranks[1])
    resumed = list(StepBatchSampler(n, bs, seed=4, rank=1, world_size=world, start_step=6, num_steps=4))
    assert resumed == full[6:] and len(full) == 10
    other_seed = [k for s in range(4) for k in StepBatchSampler(n, bs, seed=5, rank=1, world_size=world).batch(s)]
    assert other_seed != [k for b in full[:4] for k in b]


def test_crops_depend_on_seed_and_key_only(tmp_path):
    root = make_synthetic_manifest(tmp_path, n_clips=2, frames=13, size=16, seed=2)
    a, b = ClipDataset(root, 5, seed=1), ClipDataset(root, 5, seed=1)
    starts = [a.crop_start(k) for k in range(40)]
    assert starts == [b.crop_start(k) for k in range(40)]
    assert len(set(starts)) > 3 and all(0 <= s <= 8 for s in starts)
    assert starts != [ClipDataset(root, 5, seed=2).crop_start(k) for k in range(40)]
    torch.testing.assert_close(a[7]["frames"], b[7]["frames"])
    loader = torch.utils.data.DataLoader(a, batch_sampler=StepBatchSampler(len(a), 2, num_steps=3), num_workers=2)
    keys = [batch["key"].tolist() for batch in loader]
    assert keys == [StepBatchSampler(len(a), 2).batch(s) for s in range(3)]


def test_synthetic_normals_match_the_frames():
    clip = synthetic_clip(5, 32, np.random.default_rng(0))
    assert clip["frames"].shape == (5, 3, 32, 32) and clip["ref_normal"].shape == (3, 32, 32)
    normals = clip["pose_normals"].astype(np.float64) / 255 * 2 - 1  # (F, 3, H, W) in [-1, 1]
    face = clip["pose_normals"].any(axis=1)  # (F, H, W) face pixels
    background = clip["frames"][:, :, 0, 0][:, :, None, None]  # corner pixel = background colour
    differs = (clip["frames"] != background).any(axis=1)
    assert (face == differs).mean() > 0.97  # the shaded face covers exactly the normal-map silhouette
    length = np.linalg.norm(normals, axis=1)[face]
    assert np.abs(length - 1).max() < 0.03  # unit normals (up to 8-bit quantisation)
    assert (normals[:, 2][face] > 0).all()  # camera-facing
    centre_x = [np.nonzero(f.any(axis=0))[0].mean() for f in face]
    assert np.ptp(centre_x) > 1.0  # the head moves
