"""The web app's Group tab: several faces of a group photo animated at once, each by its own
driving video or all by one (``reenact --face-index 0,2 --driving a.mp4 --driving b.mp4``).

The numbered faces picture (``app.preview_source``) comes with a tick box per face (all ticked
for a group photo); a driver video for all the ticked faces, and under it one optional driver
slot per face (face 0..``SLOTS - 1``), shown while that face is ticked: a face with a video in
its slot follows it, the others the video for all. ``--shorter``'s choice (a shorter driver
holds its last frame or loops), the open mouth, and the result, compare video and run info as
on the Reenact tab.

Hook (``commands.app.build_ui``, after the Reenact tab)::

    from expportrait.commands.app_group import group_tab
    with gr.Tab("Group", id="group"):
        group_tab(gr, reenactor, preview_source, _path)

``run_group`` is the tab's work without gradio (the tests call it). No ``from __future__ import
annotations`` here (as in ``app_live``: Gradio reads its event functions' annotations).
"""
import io
import time

SLOTS = 6          # faces 0..SLOTS-1 may each get their own driver


def driver_plan(faces: list[int], shared: str | None, own: dict[int, str | None]) -> list[str]:
    """The ticked ``faces`` (in order), the video for all, and each face's own (``own``: face ->
    path or None) -> the ``--driving`` list: one path when every face follows the video for all,
    else one per face. A face with neither is a UserError."""
    from expportrait.errors import UserError
    if not faces:
        raise UserError("tick at least one face to animate")
    per_face = [own.get(k) or shared for k in faces]
    missing = [k for k, p in zip(faces, per_face) if not p]
    if missing:
        raise UserError(f"face {missing[0]} has no driver: upload a driving video for all the "
                        f"ticked faces, or one in its slot")
    return [shared] if all(p == shared for p in per_face) else per_face


def run_group(reenactor, source_path, faces: list[int], shared: str | None, own: dict[int, str | None],
              shorter: str = "hold", max_frames=None, mouth_source: str = "auto"):
    """-> (result.mp4, result.compare.mp4, info dict) for the ticked ``faces`` of the source at
    ``source_path``, with ``reenactor``'s loaded pipeline (``app.Reenactor``). UserError on bad input."""
    import contextlib
    import sys

    from expportrait.commands.app import REGIONS, _Tee
    from expportrait.data.video import read_source
    from expportrait.errors import UserError
    from expportrait.group.reenact import GroupConfig, driving_for_outputs, read_drivers, reenact_group
    from expportrait.outputs import write_outputs

    if not source_path:
        raise UserError("upload a group photo (or video) first")
    paths = driver_plan(sorted(int(k) for k in faces), shared, own)
    limit = min(int(max_frames or reenactor.max_frames), reenactor.max_frames)
    cfg = GroupConfig(shorter=shorter)
    log = io.StringIO()
    with contextlib.redirect_stderr(_Tee(log, sys.stderr)):
        source = read_source(source_path)
        drivers = read_drivers(paths, limit)
        pipe = reenactor.pipeline(mode=None, regions=REGIONS, intensity=1.0, smooth=1.0,
                                  reference_frame=0, face_index=0, mouth_source=mouth_source)
        t = time.perf_counter()
        result = reenact_group(pipe, source, drivers, tuple(sorted(int(k) for k in faces)), cfg)
        stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{int(t * 1000) % 1000:03d}"
        out, cmp = write_outputs(result, reenactor.output_dir / f"group-{stamp}.mp4", source,
                                 driving_for_outputs(drivers, len(result.frames), shorter))
    info = {**result.info(), "driving": [str(p) for p in paths], "shorter": shorter,
            "seconds": round(time.perf_counter() - t, 1),
            "warnings": [ln[len("warning: "):] for ln in log.getvalue().splitlines()
                         if ln.startswith("warning: ")]}
    return str(out), str(cmp), info


def group_tab(gr, reenactor, preview_source, path_of) -> None:
    """The Group tab's components and events, inside an open ``gr.Tab`` (``preview_source``,
    ``path_of``: ``commands.app``'s, passed in as ``app_live.live_tab`` gets them)."""
    from expportrait.engines.mouth import MOUTH_SOURCES

    gr.Markdown("Animate several faces of a group photo: tick the faces, give a driving video for "
                "all of them, and, for a face that should follow someone else, a video in its own "
                "slot. Each face moves only in its own part of the picture.")
    with gr.Row():
        with gr.Column():
            source = gr.File(label="Group photo (or video)", file_types=["image", "video"],
                             elem_id="group_source", height=110)
            line = gr.Markdown("", elem_id="group_faces_line")
            picture = gr.Image(label="Faces, numbered", interactive=False, visible=False,
                               elem_id="group_faces", buttons=[])
            ticked = gr.CheckboxGroup([], value=[], label="faces to animate", elem_id="group_ticked")
        with gr.Column():
            shared = gr.Video(label="Driving video for all ticked faces", sources=["upload"],
                              elem_id="group_driving")
            slots = [gr.Video(label=f"own driver for face {k} (optional)", sources=["upload"],
                              visible=False, elem_id=f"group_driving_{k}") for k in range(SLOTS)]
    with gr.Row():
        shorter = gr.Radio(["hold", "loop"], value="hold", label="a shorter driver",
                           info="holds its last frame, or loops, until the longest ends")
        mouth_source = gr.Radio(list(MOUTH_SOURCES), value="auto", label="open mouth")
        max_frames = gr.Number(min(60, reenactor.max_frames), precision=0,
                               label=f"max driving frames (<= {reenactor.max_frames})")
    button = gr.Button("Animate the ticked faces", variant="primary", elem_id="group_run")
    from expportrait.commands.app import result_panel, show_result
    result, compare, files, info = result_panel(gr, "group_", "drivers")

    def show(path):
        pic, _, choices, text = preview_source(path_of(path))
        faces = [(c, str(k)) for k, c in enumerate(choices)]
        return (gr.update(value=pic, visible=pic is not None),
                gr.update(choices=faces, value=[v for _, v in faces]), text)

    def show_slots(values):
        on = {int(v) for v in values or []}
        return [gr.update(visible=k in on) for k in range(SLOTS)]

    def run(path, faces, all_video, shorter, mouth, frames, *own):
        return show_result(gr, lambda: run_group(
            reenactor, path_of(path), [int(v) for v in faces or []], path_of(all_video),
            {k: path_of(v) for k, v in enumerate(own)}, shorter, frames, mouth))

    source.change(show, [source], [picture, ticked, line], concurrency_id="preview", concurrency_limit=2)
    ticked.change(show_slots, [ticked], slots)
    button.click(run, [source, ticked, shared, shorter, mouth_source, max_frames, *slots],
                 [result, compare, files, info])
