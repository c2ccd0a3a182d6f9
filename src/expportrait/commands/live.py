"""expportrait live --source PHOTO [--camera N | --driving VIDEO] [--size S] [--out REC.mp4]

The source portrait follows a webcam (or a video read frame by frame) live: each frame is
tracked and the portrait warped as it arrives (``live.LiveSession``). Where a display exists, a
window shows the driver and the result side by side with the frame rate (``q`` or Esc quits,
``r`` re-calibrates: look at the camera and press it); without one (or with ``--no-window``)
the result is recorded to ``--out`` (default ``live.mp4``). ``--out`` also records while the
window is open. Ctrl-C stops and keeps the recording.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

from expportrait.errors import UserError


def add_arguments(p) -> None:
    from expportrait.detection.faces import DETECTORS
    from expportrait.engines.mouth import MOUTH_SOURCES

    p.add_argument("--source", required=True, help="portrait image (or a video: its --reference-frame)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--camera", type=int, default=None, help="webcam index (default 0 when no --driving)")
    g.add_argument("--driving", default=None, help="a driving video, read frame by frame as if live")
    p.add_argument("--size", type=int, default=256, help="the result's longer side in px (default 256)")
    p.add_argument("--out", default=None, help="record the result here (.mp4; default live.mp4 without a window)")
    p.add_argument("--no-window", action="store_true", help="never open a window (record only)")
    p.add_argument("--max-frames", type=int, default=None, help="stop after N driver frames")
    p.add_argument("--reference-frame", type=int, default=0, help="the source video's frame to animate")
    p.add_argument("--face-index", type=int, default=0, help="the source's face (0 = largest)")
    p.add_argument("--driving-face-index", type=int, default=0, help="the driver's face (0 = largest)")
    p.add_argument("--face-detector", default=None, choices=DETECTORS,
                   help="finds the faces before FaceMesh (default: the checkpoint's)")
    p.add_argument("--mouth-source", default=None, choices=MOUTH_SOURCES,
                   help="the open mouth (default: the checkpoint's, auto: the driver's teeth)")
    p.add_argument("--intensity", type=float, default=None, help="expression multiplier")
    p.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the shipped demo)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (the source fit)")


class _Sentinel:
    def __eq__(self, other):       # ``iter(read, _END)`` compares frames (arrays) with it
        return other is self

    __hash__ = object.__hash__


_END = _Sentinel()


def has_display() -> bool:
    """Whether a window can open: a desktop session (Windows, macOS) or an X/Wayland display."""
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class Driver:
    """Frames (H, W, 3) uint8 RGB of a webcam (``cv2.VideoCapture``) or a video file, one at a
    time; ``fps`` the source's rate (a camera's as it reports it, else 30)."""

    def __init__(self, camera: int | None = None, path: str | None = None, max_frames: int | None = None):
        self.max_frames, self.count, self._cap, self._frames = max_frames, 0, None, None
        if path is not None:
            from expportrait.data.video import read_source
            video = read_source(path, max_frames=max_frames)
            self._frames, self.fps, self.name = video.frames, float(video.fps), str(path)
            return
        import cv2
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)   # our one line only
        index = camera or 0
        cap = cv2.VideoCapture(index)
        ok, frame = cap.read() if cap.isOpened() else (False, None)
        if not ok:
            cap.release()
            raise UserError(f"camera {index} cannot be opened: it is missing or another program uses it "
                            f"(try --camera 1, or --driving VIDEO)")
        self._cap, self._first = cap, frame
        self.fps = float(cap.get(cv2.CAP_PROP_FPS) or 0) or 30.0
        self.name = f"camera {index}"

    def read(self):
        """-> the next frame, or ``_END``."""
        if self.max_frames is not None and self.count >= self.max_frames:
            return _END
        self.count += 1
        if self._frames is not None:
            return self._frames[self.count - 1] if self.count <= len(self._frames) else _END
        import cv2
        if self._first is not None:
            frame, self._first = self._first, None
        else:
            ok, frame = self._cap.read()
            if not ok:
                return _END
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()


def side_by_side(driver: np.ndarray, result: np.ndarray, fps: float) -> np.ndarray:
    """The window's picture: driver | result at the result's height, the frame rate written on it
    (BGR for OpenCV)."""
    import cv2
    h = result.shape[0]
    d = cv2.resize(driver, (max(1, round(driver.shape[1] * h / driver.shape[0])), h), interpolation=cv2.INTER_AREA)
    view = cv2.cvtColor(np.concatenate([d, result], 1), cv2.COLOR_RGB2BGR)
    cv2.putText(view, f"{fps:.1f} fps  q: quit  r: recalibrate", (8, 20), cv2.FONT_HERSHEY_SIMPLEX,
                0.5, (0, 255, 0), 1, cv2.LINE_AA)
    return view


def _window(name: str) -> bool:
    """Open an OpenCV window -> whether it worked (a headless OpenCV build has no windows)."""
    import cv2
    try:
        cv2.namedWindow(name, cv2.WINDOW_AUTOSIZE)
        return True
    except cv2.error:
        return False


def run(args) -> int:
    from expportrait.data.video import VideoWriter, read_source
    from expportrait.live.session import LiveConfig, LiveSession

    cfg = LiveConfig(size=args.size, face_index=args.face_index, driver_face_index=args.driving_face_index,
                     mouth_source=args.mouth_source, intensity=args.intensity)
    if args.max_frames is not None and args.max_frames < 1:
        raise UserError(f"--max-frames must be >= 1, got {args.max_frames}")
    source = read_source(args.source, max_frames=args.reference_frame + 1)
    if args.reference_frame >= len(source.frames) or args.reference_frame < 0:
        raise UserError(f"--reference-frame {args.reference_frame} is outside the source (0..{len(source.frames) - 1})")
    driver = Driver(args.camera, args.driving, args.max_frames)
    window = not args.no_window and has_display() and _window("expportrait live")
    out = args.out or (None if window else "live.mp4")
    writer = session = None
    try:
        print(f"preparing the source ({args.source}) ...", file=sys.stderr, flush=True)
        session = LiveSession.from_checkpoint(source.frames[args.reference_frame], cfg, args.checkpoint,
                                              device=args.device, detector=args.face_detector)
        writer = VideoWriter(out, driver.fps) if out else None
        print(f"live: {driver.name} -> {'a window' if window else ''}{' and ' if window and out else ''}"
              f"{out or ''} ({session.image.shape[1]}x{session.image.shape[0]}); source ready in "
              f"{session.prepare_s:.1f} s", file=sys.stderr, flush=True)
        secs, last, rate = [], time.perf_counter(), 0.0
        frames = iter(lambda: driver.read(), _END)
        for frame, result in session.stream(frames, 1.0 / driver.fps, with_frames=True):
            secs.append(time.perf_counter() - last)        # pipelined: the time between results
            rate = 0.9 * rate + 0.1 / max(secs[-1], 1e-6) if rate else 1.0 / max(secs[-1], 1e-6)
            last = time.perf_counter()
            if writer:
                writer.write(result)
            if window:
                import cv2
                cv2.imshow("expportrait live", side_by_side(frame, result, rate))
                key = cv2.waitKey(1) & 0xFF
                if key in (ord("q"), 27):
                    break
                if key == ord("r"):
                    session.reset()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    except BaseException:
        if writer:
            writer.abort()
        raise
    finally:
        driver.close()
        if window:
            import cv2
            cv2.destroyAllWindows()
    path = writer.close() if writer else None
    steady = np.array(secs[10:] or secs or [float("nan")])
    print(f"{len(secs)} frames, {1 / steady.mean():.1f} fps (p95 {np.percentile(steady, 95) * 1e3:.0f} ms between frames)"
          + (f"; recorded {path}" if path else ""), flush=True)
    if session is not None:
        session.close()
    return 0
