"""Hypothesis fuzzing of every loader a user's file reaches: media, fit files, clip datasets,
checkpoints and JSON configs. Whatever the bytes, a loader returns a valid object or raises a
one-line ``UserError``; any other exception (a traceback for the user) fails the test."""
import json

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import write_talking
from expportrait.errors import UserError

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False)
                    | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)


def _one_line(exc: UserError) -> None:
    assert str(exc) and "\n" not in str(exc).strip(), str(exc)


def _mutate(data: bytes, cuts: list[tuple[int, int]], truncate: float) -> bytes:
    buf = bytearray(data[: max(1, int(len(data) * truncate))])
    for pos, val in cuts:
        buf[pos % len(buf)] = val
    return bytes(buf)


MUTATION = dict(cuts=st.lists(st.tuples(st.integers(0, 10**7), st.integers(0, 255)), max_size=12),
                truncate=st.floats(0.0, 1.0))


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    from PIL import Image

    from expportrait.data.video import write_video
    d = tmp_path_factory.mktemp("media")
    rng = np.random.default_rng(0)
    write_video(d / "clip.mp4", rng.integers(0, 255, (6, 24, 32, 3), dtype=np.uint8), 25.0)
    Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(d / "img.png")
    Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(d / "img.jpg")
    return {name: (d / name).read_bytes() for name in ("clip.mp4", "img.png", "img.jpg")}


@FUZZ
@given(name=st.sampled_from(["clip.mp4", "img.png", "img.jpg"]), **MUTATION)
def test_read_source_on_mutated_media(media, tmp_path, name, cuts, truncate):
    from expportrait.data.video import read_source
    path = tmp_path / name
    path.write_bytes(_mutate(media[name], cuts, truncate))
    try:
        video = read_source(path)
    except UserError as exc:
        _one_line(exc)
        return
    f = video.frames
    assert f.ndim == 4 and f.shape[-1] == 3 and f.dtype == np.uint8 and len(f) >= 1
    assert np.isfinite(video.fps) and video.fps > 0


@pytest.fixture(scope="module")
def talking(tmp_path_factory):
    """An mp4 (faststart: the index first, as web video is) and an mkv of 12 frames with an AAC
    tone, their bytes, original frames, and the byte spans of their video / audio packets."""
    import av
    d = tmp_path_factory.mktemp("talking")
    rng = np.random.default_rng(1)
    frames = np.repeat(np.repeat(rng.integers(0, 255, (12, 6, 8, 3), dtype=np.uint8), 4, 1), 4, 2)
    out = {}
    for name, fmt, opts in (("talk.mp4", "mp4", {"movflags": "faststart"}), ("talk.mkv", "matroska", {})):
        write_talking(d / name, frames, fmt, opts)
        spans = {"video": [], "audio": []}
        with av.open(str(d / name)) as c:
            for p in c.demux():
                if p.pos is not None and p.size:
                    spans[p.stream.type].append((p.pos, p.size))
        assert len(spans["video"]) == 12 and len(spans["audio"]) >= 6
        out[name] = ((d / name).read_bytes(), spans)
    return frames, out


@FUZZ
@given(name=st.sampled_from(["talk.mp4", "talk.mkv"]), how=st.sampled_from(["cut", "garbage", "packets"]),
       where=st.floats(0.05, 0.95), kind=st.sampled_from(["video", "audio", "both"]), seed=st.integers(0, 2**16))
def test_streams_damaged_part_way(talking, tmp_path, capfd, name, how, where, kind, seed):
    """A file damaged from some point on (cut there, garbage from there, or its video / audio
    packets from there overwritten): reading gives the frames decoded before the damage (never
    more than there were, a one-line warning when fewer) or one UserError line; its audio gives
    a result with what decodes. Never another exception."""
    from expportrait.data.video import read_audio, read_video, write_video
    original, (data, spans) = talking[0], talking[1][name]
    rng = np.random.default_rng(seed)
    buf = bytearray(data)
    at = int(len(buf) * where)
    if how == "cut":
        buf = buf[:at]
    elif how == "garbage":
        buf[at:] = rng.integers(0, 256, len(buf) - at, dtype=np.uint8).tobytes()
    else:
        for k in (["video", "audio"] if kind == "both" else [kind]):
            for pos, size in spans[k][int(len(spans[k]) * where):]:
                buf[pos:pos + size] = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    path = tmp_path / name
    path.write_bytes(bytes(buf))
    capfd.readouterr()
    try:
        video = read_video(path)
    except UserError as exc:
        _one_line(exc)
        return
    err = capfd.readouterr().err
    f = video.frames
    assert f.ndim == 4 and f.shape[1:] == original.shape[1:] and 1 <= len(f) <= len(original)
    warnings = [ln for ln in err.splitlines() if ln.startswith("warning: ")]
    # mp4 states its frame count; mkv only a duration (audio may run on: 2 frames + 2 % slack)
    if len(f) < len(original) - (0 if name.endswith(".mp4") else 2):
        assert len(warnings) == 1 and f"using the {len(f)} frames decoded before the damage" in warnings[0]
    assert len(warnings) <= 1
    audio = read_audio(path)
    assert audio is None or (audio[0].ndim == 2 and audio[0].dtype == np.float32 and audio[1] == 16000)
    out = write_video(tmp_path / "out.mp4", f, video.fps, audio_from=path)
    assert len(read_video(out).frames) == len(f)
    assert all(ln.startswith("warning: ") for ln in capfd.readouterr().err.splitlines() if ln.strip())


@FUZZ
@given(data=st.binary(max_size=2048), suffix=st.sampled_from([".mp4", ".png", ".jpg", ".mov", ".txt", ""]))
def test_read_source_on_random_bytes(tmp_path, data, suffix):
    from expportrait.data.video import read_source
    path = tmp_path / f"input{suffix}"
    path.write_bytes(data)
    try:
        video = read_source(path)
    except UserError as exc:
        _one_line(exc)
        return
    assert video.frames.ndim == 4 and video.frames.shape[-1] == 3


@pytest.fixture(scope="module")
def fit_bytes(tmp_path_factory):
    from expportrait.tracking.io import HeadFit, save_fit
    F, N = 3, 10
    r = lambda *s: torch.randn(*s)  # noqa: E731
    fit = HeadFit(shape=r(4), static_offset=r(N, 3), expression=r(F, 3), jaw=r(F, 3), rotation=r(F, 3),
                  translation=r(F, 3), camera=r(F, 4), dynamic_offset=r(F, N, 3), albedo=r(N, 3),
                  sh=r(F, 9, 3), valid=torch.ones(F, dtype=torch.bool), landmarks68_2d=r(F, 68, 2),
                  meta={"head": "bfm", "image_size": [10, 12], "fps": 25.0})
    path = tmp_path_factory.mktemp("fit") / "fit.safetensors"
    save_fit(fit, path)
    return path.read_bytes()


@FUZZ
@given(**MUTATION)
def test_load_fit_on_mutated_files(fit_bytes, tmp_path, cuts, truncate):
    from expportrait.tracking.io import load_fit
    path = tmp_path / "fit.safetensors"
    path.write_bytes(_mutate(fit_bytes, cuts, truncate))
    try:
        fit = load_fit(path)
    except UserError as exc:
        _one_line(exc)
        return
    assert fit.expression.shape[0] == fit.rotation.shape[0]


@FUZZ
@given(header=JSON | st.fixed_dictionaries({"format": st.just("expportrait-fit"), "version": st.just(1)},
                                           optional={"head": JSON, "image_size": JSON, "fps": JSON}),
       frames=st.integers(0, 3), drop=st.sampled_from(["", "valid", "expression", "sh"]))
def test_load_fit_with_fuzzed_header_and_fields(tmp_path, header, frames, drop):
    from safetensors.torch import save_file

    from expportrait.tracking.io import load_fit
    tensors = {k: torch.zeros(frames, 3) for k in ("expression", "jaw", "rotation", "translation")}
    tensors.update(shape=torch.zeros(4), static_offset=torch.zeros(5, 3), camera=torch.zeros(2, 4),
                   dynamic_offset=torch.zeros(frames, 5, 3), albedo=torch.zeros(5, 3),
                   sh=torch.zeros(frames, 9, 3), valid=torch.ones(frames), landmarks68_2d=torch.zeros(frames, 68, 2))
    tensors.pop(drop, None)
    path = tmp_path / "fit.safetensors"
    save_file(tensors, str(path), metadata={"expportrait": json.dumps(header)})
    try:
        fit = load_fit(path)
    except UserError as exc:
        _one_line(exc)
    else:  # camera has 2 frames: only a file whose frame counts agree may load, with a sane header
        assert frames == 2 and drop == ""
        assert len(fit.image_size) == 2 and fit.meta.get("fps", 25.0) > 0


@FUZZ
@given(manifest=JSON | st.fixed_dictionaries(
    {"format": st.just("expportrait-clips"), "version": st.just(1), "resolution": JSON,
     "frames_per_clip": JSON, "fps": JSON, "clips": st.lists(JSON, max_size=3)}))
def test_read_manifest_on_fuzzed_json(tmp_path, manifest):
    from expportrait.data.datasets import read_manifest
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    try:
        m = read_manifest(tmp_path)
    except UserError as exc:
        _one_line(exc)
        return
    assert m["clips"]


@FUZZ
@given(data=st.binary(max_size=512))
def test_read_clip_on_random_bytes(tmp_path, data):
    from expportrait.data.datasets import clip_metadata, read_clip
    path = tmp_path / "clip.safetensors"
    path.write_bytes(data)
    for fn in (read_clip, clip_metadata):
        with pytest.raises(UserError) as info:
            fn(path)
        _one_line(info.value)


def _config_classes():
    from expportrait.generator.config import GeneratorConfig
    from expportrait.pipeline import PipelineConfig
    from expportrait.generator.train import TrainConfig
    from expportrait.tracking.config import TrackConfig
    from expportrait.transfer.model import TransferConfig
    return [GeneratorConfig, PipelineConfig, TrainConfig, TrackConfig, TransferConfig]


@FUZZ
@given(index=st.integers(0, 4), data=JSON, use_real_keys=st.booleans(), st_data=st.data())
def test_configs_from_fuzzed_json(index, data, use_real_keys, st_data):
    """Real field names with fuzzed values, or arbitrary JSON: a config or one line."""
    import dataclasses

    from expportrait.config import from_dict
    cls = _config_classes()[index]
    if use_real_keys:
        names = [f.name for f in dataclasses.fields(cls)]
        keys = st_data.draw(st.lists(st.sampled_from(names), max_size=4, unique=True))
        data = {k: st_data.draw(JSON) for k in keys}
    try:
        cfg = from_dict(cls, data)
    except UserError as exc:
        _one_line(exc)
        return
    assert isinstance(cfg, cls)


@FUZZ
@given(shapes=st.dictionaries(st.sampled_from(["weight", "bias", "extra", "net.0.weight"]),
                              st.lists(st.integers(0, 4), max_size=3), max_size=4),
       config=JSON)
def test_checkpoint_folder_with_fuzzed_weights_and_config(tmp_path, shapes, config):
    from safetensors.torch import save_file

    from expportrait.checkpoint import load_state_strict, read_config
    (tmp_path / "config.json").write_text(json.dumps(config))
    save_file({k: torch.zeros(s) for k, s in shapes.items()}, str(tmp_path / "model.safetensors"))
    module = torch.nn.Linear(3, 2)
    assert read_config(tmp_path) == config
    try:
        load_state_strict(module, tmp_path)
    except UserError as exc:
        _one_line(exc)
    else:
        assert shapes == {"weight": [2, 3], "bias": [2]}
