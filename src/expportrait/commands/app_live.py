"""The web app's Live tab: the browser's webcam drives a source portrait frame by frame.

Gradio's streaming webcam input (``gr.Image(sources=["webcam"], streaming=True)``) sends a JPEG
of the camera every ``STREAM_EVERY`` seconds at most, and only once the previous result is back,
so a slow server lowers the frame rate instead of building a queue. Each frame goes through the
browser's own ``live.LiveSession`` (it holds the driver's tracking state), kept per Gradio
session hash in ``LiveSessions``, rebuilt when the source, its face or the size changes, and
closed when the browser leaves (``Blocks.unload``) or the app stops. The result goes back as a
JPEG data URL in an ``<img>`` (a ``gr.HTML``): a ``gr.Image`` output would write every frame
into Gradio's file cache and make the browser fetch it. The frame rate shown is measured on the
server, per session: results sent per second and the seconds each took.
"""
import base64
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from expportrait.errors import UserError

SIZES = (256, 512)
STREAM_EVERY = 0.04     # s: the most often the browser sends a camera frame (25 fps)
TIME_LIMIT = 600        # s a stream runs before the user starts it again (frees its slot)
MAX_STREAMS = 4         # browsers streaming at the same time (more wait in the queue)
WINDOW = 30             # frames the shown fps and ms are averaged over


@dataclass
class _Entry:
    """One browser's live state."""
    key: tuple                          # (source path, face index, size) the session was made for
    session: object                     # live.session.LiveSession
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrivals: deque = field(default_factory=lambda: deque(maxlen=WINDOW))  # perf_counter s
    seconds: deque = field(default_factory=lambda: deque(maxlen=WINDOW))   # s per frame
    recalibrate: bool = False


class LiveSessions:
    """The live sessions of all browsers, keyed by Gradio's session hash. ``make_pipe()`` builds
    the ``ReenactPipeline`` the sessions share (read only once a session is made)."""

    def __init__(self, make_pipe):
        self._make_pipe, self._pipe = make_pipe, None
        self._build_lock = threading.Lock()     # the shared pipeline fits one source at a time
        self._entries: dict[str, _Entry] = {}
        self._failed: dict[str, tuple] = {}     # sid -> (key, message): not fitted again each frame
        self._told: dict[str, str] = {}         # sid -> the error last shown to that browser

    def __len__(self) -> int:
        return len(self._entries)

    def frame(self, sid: str, source: str | None, face_index: int, size: int,
              frame: np.ndarray | None) -> tuple[np.ndarray | None, str]:
        """One camera frame (H, W, 3) uint8 RGB of browser ``sid`` -> (the result (h, w, 3)
        uint8 RGB, or None without a frame; one line: fps and ms per frame). Raises UserError."""
        if not source:
            raise UserError("upload a source portrait first (or pick the bundled sample)")
        if size not in SIZES:
            raise UserError(f"size must be one of {SIZES}, got {size}")
        entry = self._entry(sid, (source, face_index, size))
        self._told.pop(sid, None)
        if frame is None:
            return None, "waiting for the camera"
        with entry.lock:
            now = time.perf_counter()
            dt = now - entry.arrivals[-1] if entry.arrivals else None
            if entry.recalibrate:
                entry.session.reset()
                entry.recalibrate = False
            out = entry.session(np.ascontiguousarray(frame[..., :3]), min(dt, 0.5) if dt else None)
            entry.arrivals.append(now)
            entry.seconds.append(time.perf_counter() - now)
            return out, _stats_line(entry)

    def first_time(self, sid: str, message: str) -> bool:
        """Whether ``message`` is new to browser ``sid`` (a stream sends frames on after an
        error: it is shown once, not once a frame)."""
        new = self._told.get(sid) != message
        self._told[sid] = message
        return new

    def recalibrate(self, sid: str) -> None:
        """The driver's next frame becomes the reference again (the user looks at the camera)."""
        if sid in self._entries:
            self._entries[sid].recalibrate = True

    def close(self, sid: str) -> None:
        self._failed.pop(sid, None)
        self._told.pop(sid, None)
        entry = self._entries.pop(sid, None)
        if entry is not None:
            with entry.lock:
                entry.session.close()

    def close_all(self) -> None:
        for sid in list(self._entries):
            self.close(sid)

    def _entry(self, sid: str, key: tuple) -> _Entry:
        """The browser's entry, made (or made again, when the source, face or size changed)."""
        entry = self._entries.get(sid)
        if entry is not None and entry.key == key:
            return entry
        if self._failed.get(sid, (None,))[0] == key:
            raise UserError(self._failed[sid][1])
        from expportrait.data.video import read_source
        from expportrait.live.session import LiveConfig, LiveSession

        source, face_index, size = key
        try:
            image = read_source(source, max_frames=1).frames[0]        # (H, W, 3) uint8
            with self._build_lock:
                if self._pipe is None:
                    self._pipe = self._make_pipe()
                session = LiveSession(self._pipe, image, LiveConfig(size=size, face_index=face_index))
        except UserError as exc:
            self._failed[sid] = (key, str(exc))
            raise
        self.close(sid)
        self._entries[sid] = entry = _Entry(key, session)
        return entry


def _stats_line(entry: _Entry) -> str:
    """'12.5 fps, 38 ms per frame on the server (track 15, transfer 1, engine 21 ms)'."""
    t = entry.arrivals
    fps = (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else 0.0
    ms = 1000 * sum(entry.seconds) / max(1, len(entry.seconds))
    timings = entry.session.timings
    steps = ", ".join(f"{k} {1000 * v:.0f}" for k, v in timings.items())
    waiting = "" if len(timings) > 1 else " · no face in the camera yet: look at it"
    return f"**{fps:.1f} fps**, {ms:.0f} ms per frame on the server ({steps} ms){waiting}"


def to_html(image: np.ndarray | None, quality: int = 85) -> str:
    """(h, w, 3) uint8 RGB -> an ``<img>`` with the picture as a JPEG data URL."""
    if image is None:
        return '<p class="live-empty">The result appears here once the camera streams.</p>'
    import cv2
    _, jpg = cv2.imencode(".jpg", np.ascontiguousarray(image[..., ::-1]),
                           [cv2.IMWRITE_JPEG_QUALITY, quality])
    data = base64.b64encode(jpg.tobytes()).decode("ascii")
    h, w = image.shape[:2]
    return (f'<img id="live_frame" alt="live result" width="{w}" height="{h}" '
            f'style="max-width:100%;height:auto" src="data:image/jpeg;base64,{data}">')


def live_tab(gr, reenactor, sessions: LiveSessions, preview_source, face_index, path):
    """The Live tab's components and events, inside an open ``gr.Tab`` of ``build_ui``.
    ``preview_source``, ``face_index`` and ``path`` are app.py's helpers (numbered faces, the
    picker's value, an upload's path). -> the function for ``Blocks.unload`` (closes the
    leaving browser's session). No ``from __future__ import annotations`` in this file: Gradio
    finds its ``gr.Request`` arguments by their evaluated annotations."""
    sample = reenactor.samples[0]
    picture, _, choices, line = preview_source(sample)

    def show_source(src):
        picture, _, choices, line = preview_source(path(src))
        return (gr.update(value=picture, visible=picture is not None),
                gr.update(choices=[(c, str(k)) for k, c in enumerate(choices)] or [("0", "0")], value="0"),
                line, path(src))

    def on_frame(frame, src, face, size, request: gr.Request):
        sid = request.session_hash
        try:
            out, stats = sessions.frame(sid, src, face_index(face), int(size), frame)
        except UserError as exc:
            if sessions.first_time(sid, str(exc)):
                raise gr.Error(str(exc)) from None
            return gr.skip(), f"**error:** {exc}"       # the stream goes on: fix it and it runs
        return to_html(out), stats

    def recalibrate(request: gr.Request):
        sessions.recalibrate(request.session_hash)

    def leave(request: gr.Request):
        sessions.close(request.session_hash)

    gr.Markdown("Your webcam drives the portrait live: press the camera's record button, look "
                "at the camera for the first frame (the reference of the head pose), then move. "
                f"Each browser has its own session; a stream stops after {TIME_LIMIT // 60} "
                "minutes (press record again).")
    with gr.Row():
        with gr.Column():
            source = gr.File(value=sample, label="Source portrait (image)", file_types=["image"],
                             elem_id="live_source", height=110)
            chosen = gr.State(sample)   # its path: a gr.File input leaves a temp file a call
            faces_line = gr.Markdown(line, elem_id="live_faces_line")
            faces = gr.Image(picture, label="Source (faces numbered)", interactive=False,
                             elem_id="live_source_faces", buttons=[], height=260)
            face = gr.Radio([(c, str(k)) for k, c in enumerate(choices)] or [("0", "0")], value="0",
                            label="face to animate (0 = largest)", elem_id="live_face")
            size = gr.Radio([str(s) for s in SIZES], value=str(SIZES[0]), label="result size (px)",
                            elem_id="live_size")
            gr.Examples([[sample]], [source], label="Bundled sample (astronaut)", elem_id="live_examples")
        with gr.Column():
            camera = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Camera",
                              elem_id="live_camera")
            again = gr.Button("Re-calibrate (look at the camera)", elem_id="live_reset", size="sm")
        with gr.Column():
            result = gr.HTML(to_html(None), label="Live result", elem_id="live_result",
                             min_height=256)
            stats = gr.Markdown("", elem_id="live_fps")
    source.change(show_source, [source], [faces, face, faces_line, chosen],
                  concurrency_id="preview", concurrency_limit=2)
    camera.stream(on_frame, [camera, chosen, face, size], [result, stats],
                  stream_every=STREAM_EVERY, time_limit=TIME_LIMIT, concurrency_id="live",
                  concurrency_limit=MAX_STREAMS, show_progress="hidden")
    again.click(recalibrate, None, None, queue=False)
    return leave
