"""ReenactPipeline end to end (tiny generator, random VAE, fast base-stage tracking) and the
`reenact` / `demo` commands' error paths."""
import json

import numpy as np
import pytest
import torch

from expportrait.cli import main
from expportrait.data.video import Video, read_source, read_video
from expportrait.errors import UserError
from expportrait.export import check_checkpoint
from expportrait.outputs import write_outputs
from expportrait.engines.base import Parts
from expportrait.pipeline import PipelineConfig, ReenactPipeline
from expportrait.tracking.config import BaseStageConfig, TrackConfig

FAST = TrackConfig(stages=("base",), base=BaseStageConfig(rigid_iters=30, iters=60))
STEPS_ORDER = ["check_inputs", "fit_source", "track_driver", "transfer", "engine",
               "engine/conditions", "engine/generate", "engine/paste_back"]


@pytest.fixture(scope="module")
def parts():
    from expportrait.generator.config import get_preset
    from expportrait.generator.model import ReenactGenerator
    from expportrait.generator.vae import build_vae
    from expportrait.head import load_head
    from expportrait.transfer.model import ExpressionTransfer
    torch.manual_seed(0)
    cfg = get_preset("tiny")
    return dict(head=load_head("bfm", density="medium"), transfer=ExpressionTransfer.load(),
                gen=ReenactGenerator(cfg), vae=build_vae(cfg))


def _parts(parts, **extra):
    return Parts(generator=parts["gen"], vae=parts["vae"], **extra)


@pytest.fixture(scope="module")
def pipe(parts):
    return ReenactPipeline(parts["head"], FAST, parts["transfer"], _parts(parts),
                           PipelineConfig(mode="cross", engine="full"))


@pytest.fixture(scope="module")
def media():
    return read_source("sample:astronaut"), read_source("sample:carphone", max_frames=8)


@pytest.fixture(scope="module")
def cross(pipe, media):
    astronaut, carphone = media
    drv = Video(carphone.frames[:5], carphone.fps, carphone.path)
    return pipe(astronaut, drv, steps=2, seed=0), astronaut, drv


def test_cross_reenactment_sizes_and_paste_back(cross):
    res, astronaut, drv = cross
    assert res.mode == "cross" and list(res.timings) == STEPS_ORDER
    assert res.frames.shape == (5, 512, 512, 3) and res.frames.dtype == np.uint8
    assert res.crops.shape == (5, 32, 32, 3) and res.pose_normals.shape == (5, 32, 32, 3)
    assert res.ref_crop.shape == res.ref_normal.shape == (32, 32, 3)
    # the driven fit lives in the astronaut's image; the face box sits on her face
    assert res.fits["driven"].image_size == (512, 512) and res.fits["driven"].num_frames == 5
    cx, cy, side = res.boxes.mean(0)
    assert 150 < cx < 330 and 80 < cy < 260 and 120 < side < 400
    # outside the pasted box the result is the background: the source frame with its own head
    # painted out (crop.clear_head) and untouched away from it (here: below her collar)
    yy, xx = np.mgrid[0:512, 0:512]
    far = (np.abs(xx - cx) > side * 0.6) | (np.abs(yy - cy) > side * 0.6)
    assert res.background.shape == (1, 512, 512, 3)
    assert np.array_equal(res.frames[0][far], res.background[0][far])
    assert np.array_equal(res.background[0, 400:], astronaut.frames[0][400:])
    changed = np.abs(res.background[0].astype(int) - astronaut.frames[0]).max(-1) > 0
    ys, xs = np.nonzero(changed)
    assert changed.mean() > 0.02 and 150 < xs.mean() < 330 and ys.mean() < 260   # her head
    # inside the box the generated crop (random weights) replaced the face
    assert not np.array_equal(res.frames[0][~far], res.background[0][~far])
    # conditions: normal maps have a camera-facing face in the middle, black background
    assert res.pose_normals[:, 12:20, 12:20].any(-1).mean() > 0.9
    assert not res.pose_normals[:, 0, 0].any()


def test_clear_source_head_off_pastes_into_the_source_frame_itself(parts, media):
    astronaut, carphone = media
    p = ReenactPipeline(parts["head"], FAST, parts["transfer"], _parts(parts),
                        PipelineConfig(mode="cross", engine="full", clear_source_head=False))
    res = p(astronaut, Video(carphone.frames[:1], carphone.fps, None), steps=1, seed=0)
    assert np.array_equal(res.background, astronaut.frames[:1])
    cx, cy, side = res.boxes[0]
    yy, xx = np.mgrid[0:512, 0:512]
    far = (np.abs(xx - cx) > side * 0.6) | (np.abs(yy - cy) > side * 0.6)
    assert np.array_equal(res.frames[0][far], astronaut.frames[0][far])


def test_compare_video_has_three_panels(cross, tmp_path):
    res, astronaut, drv = cross
    out, cmp = write_outputs(res, tmp_path / "out.mp4", astronaut, drv)
    main_v, cmp_v = read_video(out), read_video(cmp)
    assert main_v.frames.shape == (5, 512, 512, 3)
    drv_w = round(176 * 512 / 144)
    assert cmp_v.frames.shape[:3] == (5, 512, 512 + drv_w + 512 + (512 + drv_w + 512) % 2)
    with pytest.raises(UserError):
        write_outputs(res, tmp_path / "out.avi", astronaut, drv)


def test_self_reenactment_keeps_source_size(pipe, media):
    _, carphone = media
    src = Video(carphone.frames[:1], carphone.fps)
    drv = Video(carphone.frames[3:8], carphone.fps)
    res = pipe(src, drv, steps=1, seed=1, mode="self")
    assert res.mode == "self" and res.frames.shape == (5, 144, 176, 3)
    assert res.fits["driven"].meta["transfer"]["mode"] == "absolute"
    with pytest.raises(UserError, match="mode"):
        pipe(src, drv, mode="sideways")


@pytest.mark.parametrize("own", [False, True], ids=["face-crop", "mouth-crop-generator"])
def test_warp_first_synthesizes_only_the_open_mouth(parts, media, own):
    """warp_first's learned part changes the open mouth and nothing else, with the pipeline's
    generator on the face crops or its own generator on close crops of the mouth."""
    from expportrait.data.crop import CropConfig
    from expportrait.generator.model import ReenactGenerator
    astro, _ = media
    car = read_source("sample:carphone", max_frames=40)
    drv = Video(car.frames[24:28], car.fps)
    torch.manual_seed(1)
    extra = dict(synth_crop=CropConfig(centre="mouth", scale=0.8)) if own else {}
    synth_gen = ReenactGenerator(parts["gen"].config) if own else None
    res = {}
    for synth in ("learned", "none"):
        p = ReenactPipeline(parts["head"], FAST, parts["transfer"], _parts(parts),
                            PipelineConfig(mode="cross", engine="warp_first", mouth_source=synth,
                                           intensity=2.0, **extra))
        p.parts = _parts(parts, synth=synth_gen)
        res[synth] = p(astro, drv, steps=1, seed=0)
    a, b = res["learned"].frames.astype(int), res["none"].frames.astype(int)
    lip = res["none"].fits["driven"].landmarks68_2d.numpy()[:, 60:68]                 # (F, 8, 2)
    changed = np.abs(a - b).max(-1) > 0                                          # (F, H, W)
    assert changed.any()
    for f in range(len(a)):
        (x0, y0), (x1, y1) = lip[f].min(0) - 30, lip[f].max(0) + 30
        ys, xs = np.nonzero(changed[f])
        assert ((xs >= x0) & (xs <= x1) & (ys >= y0) & (ys <= y1)).all()
    assert res["learned"].crops.shape == res["none"].crops.shape      # the face crops either way
    with pytest.raises(UserError, match="mouth_source"):
        PipelineConfig(mode="cross", mouth_source="hair")


def test_the_learned_mouth_refines_the_driver_composite(parts, media, monkeypatch):
    """mouth_source "learned" hands the generator the frames "driver" makes (the driver's teeth
    carried into the driven lips), not the bare warp: it is the refiner of that composite; so it
    asks for the driver's landmarks as "driver" does (here the eyes, which also want them, are off,
    and the driver's fit is given, so nothing else finds them)."""
    from expportrait.engines import mouth
    astro, _ = media
    car = read_source("sample:carphone", max_frames=40)
    drv = Video(car.frames[24:28], car.fps)
    seen = []
    monkeypatch.setattr(mouth, "learned_mouth", lambda parts_, inp, cfg, frames: seen.append(frames) or frames)
    res, fit = {}, None
    for src in ("driver", "learned", "none"):
        p = ReenactPipeline(parts["head"], FAST, parts["transfer"], _parts(parts),
                            PipelineConfig(mode="cross", engine="warp_first", mouth_source=src, intensity=2.0,
                                           regions=("pose", "expression", "lips")))
        fit = fit if fit is not None else p.track_driver(drv)
        res[src] = p(astro, drv, steps=1, seed=0, driving_fit=fit).frames
    assert len(seen) == 1
    assert np.abs(res["driver"].astype(int) - res["none"].astype(int)).max() > 0    # a composite
    np.testing.assert_array_equal(res["learned"], res["driver"])   # the identity refiner: the composite


def test_checkpoint_with_a_learned_part_round_trips(parts, tmp_path):
    """export_checkpoint(synth_dir=...) writes DIR/synth in fp16 and from_checkpoint loads it
    as the pipeline's synth_generator (strictly: the same weights); the committed pipeline.json
    of the mouth recipe (scripts/train_mouth_synth.sh) turns it on, on its mouth crops."""
    from pathlib import Path

    from expportrait.export import export_checkpoint
    from expportrait.generator.model import ReenactGenerator
    parts["gen"].save_pretrained(tmp_path / "g")
    torch.manual_seed(2)
    ReenactGenerator(parts["gen"].config).save_pretrained(tmp_path / "s")
    parts["vae"].save_pretrained(str(tmp_path / "v"))
    recipe = Path(__file__).parents[1] / "configs" / "demo" / "pipeline-synth-mouth.json"
    out = export_checkpoint(tmp_path / "g", tmp_path / "v", tmp_path / "ckpt", recipe,
                            synth_dir=tmp_path / "s")
    pipe = ReenactPipeline.from_checkpoint(out)
    assert pipe.config.mouth_source == "learned" and pipe.config.synth_crop.centre == "mouth"
    assert pipe.config.synth_crop.scale == 0.8 and pipe.config.crop.scale == 2.2
    want = ReenactGenerator.from_pretrained(tmp_path / "s").state_dict()
    assert pipe.parts.loaded() == []                      # nothing loaded before an engine asks
    got = pipe.parts.synth().state_dict()
    assert set(got) == set(want)
    assert all(torch.allclose(got[k], want[k].half().float()) for k in want)
    main_gen = pipe.parts.generator().state_dict()
    assert any(not torch.equal(got[k], main_gen[k]) for k in want)             # not the main one


def test_self_warp_is_aligned_to_the_driver(parts):
    """Self mode, warp engine: the result frames are moved onto the driver's landmarks, which
    brings the face closer to the real frames than the plain warp (and only in self mode)."""
    car = read_source("sample:carphone", max_frames=40)
    src, drv = Video(car.frames[:1], car.fps), Video(car.frames[30:34], car.fps)
    res = {}
    for align in (True, False):
        p = ReenactPipeline(parts["head"], FAST, parts["transfer"], _parts(parts),
                            PipelineConfig(engine="warp_first", align_landmarks=align))
        res[align] = p(src, drv, mode="self")
    lm = res[True].fits["driving"].landmarks68_2d.numpy()                        # (F, 68, 2)
    (x0, y0), (x1, y1) = lm.min((0, 1)).astype(int), lm.max((0, 1)).astype(int)

    def err(r):
        return np.abs(r.frames[:, y0:y1, x0:x1].astype(float) - drv.frames[:, y0:y1, x0:x1]).mean()
    assert not np.array_equal(res[True].frames, res[False].frames)
    assert err(res[True]) < err(res[False]) * 0.97, (err(res[True]), err(res[False]))
    cross = ReenactPipeline(parts["head"], FAST, parts["transfer"], _parts(parts),
                            PipelineConfig(engine="warp_first"))(src, drv, mode="cross")
    assert cross.timings["engine/align"] < 0.05                                  # not run there


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    from conftest import write_tiny_checkpoint
    return write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt"))


def test_reenact_cli_bad_inputs_exit_2(ckpt, tmp_path, capsys):
    from PIL import Image
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((96, 96, 3), 120, np.uint8)).save(blank)
    cases = [(["--source", str(tmp_path / "missing.png"), "--driving", "sample:carphone"], "not found"),
             (["--source", str(blank), "--driving", "sample:carphone", "--max-frames", "3",
               "--mode", "cross"], "no face"),
             (["--source", "sample:astronaut", "--driving", str(blank)], "video")]
    for extra, words in cases:
        capsys.readouterr()
        code = main(["reenact", *extra, "--out", str(tmp_path / "o.mp4"), "--checkpoint", str(ckpt)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and words in err[0], (extra, err)
    assert not (tmp_path / "o.mp4").exists()
    with pytest.raises(UserError, match="incomplete"):
        check_checkpoint(tmp_path)
    assert main(["demo", "--out", str(tmp_path / "d"), "--checkpoint", str(tmp_path)]) == 2


def test_reenact_cli_end_to_end(ckpt, tmp_path):
    out = tmp_path / "r.mp4"
    code = main(["reenact", "--source", "sample:astronaut", "--driving", "sample:carphone",
                 "--max-frames", "3", "--out", str(out), "--checkpoint", str(ckpt)])
    assert code == 0
    info = json.loads(out.with_suffix(".json").read_text())
    assert info["mode"] == "cross" and info["frames"] == 3 and info["size_hw"] == [512, 512]
    assert read_video(out.with_suffix(".compare.mp4")).frames.shape[0] == 3
    assert info["clear_source_head"] is True
    kept = tmp_path / "k.mp4"
    assert main(["reenact", "--source", "sample:astronaut", "--driving", "sample:carphone",
                 "--max-frames", "2", "--out", str(kept), "--checkpoint", str(ckpt),
                 "--keep-source-head", "--cfg-scale", "2", "--guide", "pose", "--mouth-source",
                 "learned", "--no-align", "--engine", "full", "--head-motion", "frame"]) == 0
    kept_info = json.loads(kept.with_suffix(".json").read_text())
    assert kept_info["clear_source_head"] is False
    assert kept_info["mouth_source"] == "learned" and kept_info["align_landmarks"] is False
    assert info["mouth_source"] == "auto" and info["align_landmarks"] is True
    assert info["head_motion"] == "face" and kept_info["head_motion"] == "frame"
    assert kept_info["cfg_scale"] == 2.0 and kept_info["guide"] == ["pose"]
    bad = tmp_path / "bad.mp4"
    assert main(["reenact", "--source", "sample:astronaut", "--driving", "sample:carphone",
                 "--max-frames", "2", "--out", str(bad), "--checkpoint", str(ckpt),
                 "--guide", "text"]) == 2 and not bad.exists()
    warp = tmp_path / "w.mp4"                 # a baseline without the generator, at full resolution
    assert main(["reenact", "--source", "sample:astronaut", "--driving", "sample:carphone",
                 "--max-frames", "3", "--out", str(warp), "--checkpoint", str(ckpt),
                 "--engine", "mesh_warp"]) == 0
    assert json.loads(warp.with_suffix(".json").read_text())["engine"] == "mesh_warp"
    assert info["engine"] == "warp_first"          # the default engine


def test_ablation_variants(parts, media):
    astro, car = media
    drv = Video(car.frames[:4], car.fps, None)
    out = {}
    for variant in ("base_only", "direct_copy", "repeat_reference", "mesh_warp", "warp_first"):
        p = ReenactPipeline(parts["head"], FAST, parts["transfer"], _parts(parts),
                            PipelineConfig(mode="cross", engine=variant))
        out[variant] = p(astro, drv, steps=1, seed=0)
    driven = out["base_only"].fits["driven"]
    assert driven.static_offset.abs().max() == 0 and driven.dynamic_offset.abs().max() == 0
    dc = out["direct_copy"].fits
    assert torch.equal(dc["driven"].dynamic_offset, dc["driving"].dynamic_offset)
    rr = out["repeat_reference"]
    assert (rr.crops == rr.ref_crop[None]).all()
    mw = out["mesh_warp"]                     # the warped source frames themselves, the head moved
    assert mw.frames.shape == (4, *astro.frames.shape[1:]) and "engine/warp" in mw.timings
    assert np.abs(mw.frames[0].astype(int) - astro.frames[0]).max() > 20
    wf = out["warp_first"]                    # the reference's own offsets, held over the frames
    src = wf.fits["source"]
    assert torch.equal(wf.fits["driven"].dynamic_offset,
                       src.dynamic_offset[:1].expand_as(wf.fits["driven"].dynamic_offset))
    assert wf.frames.shape == mw.frames.shape and (wf.crops.shape[1:] == mw.crops.shape[1:])
    moved = np.abs(wf.frames.astype(int) - astro.frames[0]).max(-1) > 12          # (F, H, W)
    assert moved.any(axis=0)[60:260, 150:360].mean() > 0.02                     # the face moves
    assert not moved[:, 420:].any() and not moved[:, :, :60].any()               # the suit, the edge
    with pytest.raises(UserError, match="engine must be one of"):       # when the config is made
        PipelineConfig(mode="cross", engine="nope")


def _driver_with_click(path, frames, fps, click_s, rate=16000):
    """``frames`` as an mp4 whose audio is a quiet hum with one loud click at ``click_s``."""
    import av
    from expportrait.data.video import write_video
    wav = path.with_suffix(".wav")
    n = int(rate * len(frames) / fps)
    t = np.arange(n) / rate
    sound = 0.05 * np.sin(2 * np.pi * 220 * t)
    k = int(click_s * rate)
    sound[k:k + 160] = 0.9
    with av.open(str(wav), "w") as out:
        a = out.add_stream("pcm_s16le", rate=rate, layout="mono")
        fr = av.AudioFrame.from_ndarray((sound * 32767).astype(np.int16)[None], format="s16", layout="mono")
        fr.sample_rate = rate
        for p in a.encode(fr):
            out.mux(p)
        for p in a.encode():
            out.mux(p)
    return write_video(path, frames, fps, audio_from=wav)


def _click_time(path):
    import av
    with av.open(str(path)) as c:
        s = c.streams.audio[0]
        chunks = [f.to_ndarray() for f in c.decode(s)]       # planar (C, n) or packed (1, n * C)
        x = np.concatenate([ch[0] if s.format.is_planar else ch[0, ::s.channels] for ch in chunks])
        if x.dtype.kind == "i":
            x = x / float(np.iinfo(x.dtype).max)
        return float(np.argmax(np.abs(x) > 0.5)) / s.rate, len(x) / s.rate


def test_reenact_keeps_the_drivers_audio_in_sync_also_with_fps(ckpt, tmp_path):
    carphone = read_source("sample:carphone", max_frames=20)
    drv = _driver_with_click(tmp_path / "drv.mp4", carphone.frames, 25.0, click_s=0.4)
    out = tmp_path / "r.mp4"
    assert main(["reenact", "--source", "sample:astronaut", "--driving", str(drv), "--fps", "12.5",
                 "--out", str(out), "--checkpoint", str(ckpt)]) == 0
    video = read_video(out)
    assert len(video.frames) == 10 and abs(video.fps - 12.5) < 1e-6   # same 0.8 s at half the rate
    click, seconds = _click_time(out)
    assert abs(click - 0.4) < 0.02                                      # within half a driver frame
    assert abs(seconds - 0.8) < 0.07                                    # cut to the video (AAC 1024-sample frames)


def test_warp_base_generator_starts_from_the_warped_reference(parts, media):
    """A residual_base "warp" generator, untrained: its crops are the reference warped by the
    driven head (in the source frame, cropped with the driven boxes) through the VAE."""
    from dataclasses import replace

    from expportrait.data.crop import crop
    from expportrait.engines.warp_field import expression_warp
    from expportrait.generator.longvideo import _frames_uint8, _unit, generate_crops
    from expportrait.generator.model import ReenactGenerator
    from expportrait.generator.vae import decode_latents, encode_video
    astro, car = media
    drv = Video(car.frames[:5], car.fps, None)
    gen = ReenactGenerator(replace(parts["gen"].config, prediction="ref_residual", residual_base="warp"))
    p = ReenactPipeline(parts["head"], FAST, parts["transfer"], Parts(generator=gen, vae=parts["vae"]),
                        PipelineConfig(mode="cross", engine="full"))
    res = p(astro, drv, steps=1, seed=0)
    warped = expression_warp(astro.frames[0], res.fits["source"].frames(slice(0, 1)), res.fits["driven"], p.head)
    assert warped.shape == (5, *astro.frames.shape[1:])
    diff = np.abs(warped[0].astype(int) - astro.frames[0])
    assert diff.max() > 20 and diff.mean() < 5                               # the head moved, not all
    crops = crop(warped, res.boxes, res.crops.shape[1])
    vae = parts["vae"]
    with torch.no_grad():
        expect = _frames_uint8(decode_latents(vae, encode_video(vae, _unit(crops).permute(1, 0, 2, 3)[None]))[0])
    assert np.abs(res.crops.astype(int) - expect).max() <= 1
    with pytest.raises(UserError, match="warped"):
        generate_crops(gen, vae, res.ref_crop, res.ref_normal, res.pose_normals, steps=1)


def test_engine_name_is_checked_when_the_config_is_read_and_warp_first_loads_nothing(ckpt, tmp_path):
    """A checkpoint naming an unknown engine is refused when its pipeline.json is read (before
    any tracking); the default engine runs without loading the generator or the VAE."""
    import shutil

    from expportrait.pipeline import load_configs
    bad = tmp_path / "bad"
    shutil.copytree(ckpt, bad)
    (bad / "pipeline.json").write_text(json.dumps({"pipeline": {"engine": "nope"}}))
    with pytest.raises(UserError, match="engine must be one of"):
        load_configs(bad)
    assert main(["reenact", "--source", "sample:astronaut", "--driving", "sample:carphone",
                 "--out", str(tmp_path / "x.mp4"), "--checkpoint", str(bad)]) == 2
    pipe = ReenactPipeline.from_checkpoint(ckpt)
    car = read_source("sample:carphone", max_frames=3)
    res = pipe(Video(car.frames[:1], car.fps), Video(car.frames, car.fps), mode="cross")
    assert pipe.config.engine == "warp_first" and res.frames.shape == (3, 144, 176, 3)
    assert pipe.parts.loaded() == []                       # no generator, no VAE
