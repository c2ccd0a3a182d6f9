"""Generator training data: videos -> tracked, cropped, rendered clips + manifest.

Per input video (``prepare_video``):

1. frames ``A:B`` of the video (``PrepareConfig.frames``), tracked by the injected ``tracker``
   (``frames, fps -> fit`` with ``landmarks68_2d (F, 68, 2)`` and ``camera (F, 4)``);
2. crop boxes from the fit's landmarks (``data.crop.face_boxes``), per scale augmentation;
3. frames cropped to ``size``; the fit's normal maps rendered straight into crop space by the
   injected ``render`` (``fit, frame indices (n,), crop boxes (n, 3), size -> (n, S, S, 3)
   uint8``, ``engines.conditions.render_crop_normals``);
4. split into clips of ``clip_frames`` (stride ``clip_stride``; a tail shorter than a clip is
   dropped unless the video is shorter than one clip, then it is one clip);
5. a reference per clip (``reference``): ``"first"`` = the first frame of the frame range (what
   ``reenact`` does: one reference frame for the whole video), ``"random"`` = a frame of the same
   video drawn outside the clip when possible (seeded by the clip name), which teaches the
   generator to handle a reference whose pose/expression differs from the target;
6. optional horizontal flip copies (normal x flipped) of every clip, and in-plane rotation copies
   (``rotations`` in degrees: crop and normal maps turned about the crop centre, normal vectors
   turned with them; the reference stays unrotated, so the generator learns head rolls the
   reference does not show); with ``warp_reference`` every clip also carries ``appearance``: its
   reference frame warped by the fit to each clip frame (the injected ``warp``, in full-frame
   space, then cropped, rotated and flipped like the frames): the base a ``residual_base="warp"``
   generator starts from;
7. ``write_clip`` per clip (atomic), then ``DATASET/index/<video_id>.json`` listing the entries
   and the settings they were made with: the marker that the video is complete (resume skips it
   when every clip file validates; a video done with other settings is a clear error, not a
   dataset that mixes two kinds of clips).

``prepare_dataset`` splits the videos over the processes of an ``accelerate launch`` (rank r takes
videos r, r + world, ...), waits for everyone, and rank 0 writes ``manifest.json`` from the index
files. Tracking is injected (this layer imports no tracker); ``commands/prepare.py`` wires it.
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from expportrait.data.crop import CropConfig, crop, face_boxes, rotate_normals
from expportrait.data.datasets import clip_metadata, write_clip, write_manifest
from expportrait.errors import PARTIAL_GLOB, UserError, atomic_path

Tracker = Callable[[np.ndarray, float], Any]
Renderer = Callable[[Any, np.ndarray, np.ndarray, int], np.ndarray]
Warper = Callable[[np.ndarray, Any, int, np.ndarray], np.ndarray]   # frames, fit, ref, idx -> (n, H, W, 3)


@dataclass(frozen=True)
class PrepareConfig:
    size: int = 512                    # crop side (pixels)
    clip_frames: int = 33              # frames per clip
    clip_stride: int | None = None     # start-to-start distance (None: clip_frames, no overlap)
    frames: tuple[int, int] | None = None  # frame range [A, B) of every video (None: all)
    reference: str = "first"           # "first" | "random"
    flip: bool = False                 # add horizontally flipped copies
    scales: tuple[float, ...] = (1.0,)  # crop-box scale augmentation (1.0 = the CropConfig box)
    rotations: tuple[float, ...] = (0.0,)  # in-plane rotation augmentation, degrees (0 = none)
    warp_reference: bool = False       # clips carry the reference warped to every frame (appearance)
    crop: CropConfig = CropConfig()
    seed: int = 0


def still_motion(image: np.ndarray, frames: int, seed: int = 0, max_deg: float = 6.0,
                 max_shift: float = 0.04, max_zoom: float = 0.06) -> np.ndarray:
    """A still portrait (H, W, 3) uint8 -> (frames, H, W, 3): the same image under a smooth random
    in-plane rotation / shift / zoom (a slow camera move; no expression change), so a photo can
    join a training set as a short clip. Borders are reflected. ``image`` may also be
    (frames, H, W, 3) (e.g. ``engines.still.still_expressions``): frame i gets move i."""
    import cv2

    H, W = image.shape[-3:-1]
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, frames)
    def wave():  # sum of two low-frequency sines in [-1, 1], starting near 0
        f, ph = rng.uniform(0.5, 1.5, 2), rng.uniform(0, 2 * np.pi, 2)
        w = np.sin(2 * np.pi * f[0] * t + ph[0]) + 0.5 * np.sin(2 * np.pi * f[1] * t + ph[1])
        return (w - w[0]) / 1.5
    deg, dx, dy, zoom = wave() * max_deg, wave() * max_shift * W, wave() * max_shift * H, 1 + wave() * max_zoom
    out = np.empty((frames, H, W, 3), np.uint8)
    for i in range(frames):
        m = cv2.getRotationMatrix2D((W / 2, H / 2), float(deg[i]), float(zoom[i]))
        m[:, 2] += (dx[i], dy[i])
        out[i] = cv2.warpAffine(image if image.ndim == 3 else image[i], m, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return out


def parse_range(text: str | None) -> tuple[int, int] | None:
    """``"A:B"`` -> (A, B); ``None``/``""`` -> None."""
    if not text:
        return None
    a, sep, b = text.partition(":")
    try:
        out = (int(a or 0), int(b)) if sep else None
    except ValueError:
        out = None
    if out is None or out[0] < 0 or out[1] <= out[0]:
        raise UserError(f"--frames must be A:B with 0 <= A < B, got {text!r}")
    return out


def video_id(path: str, frames: tuple[int, int] | None) -> str:
    """Stable name of one input: file stem + hash of the absolute path and the frame range."""
    key = f"{Path(path).resolve() if not str(path).startswith('sample:') else path}|{frames}"
    stem = Path(str(path).replace("sample:", "")).stem
    return f"{stem}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"


def clip_spans(num: int, clip_frames: int, stride: int | None) -> list[tuple[int, int]]:
    """[start, stop) spans of the clips of a ``num``-frame video."""
    if num <= clip_frames:
        return [(0, num)]
    stride = stride or clip_frames
    return [(s, s + clip_frames) for s in range(0, num - clip_frames + 1, stride)]


def flip_normals(n: np.ndarray) -> np.ndarray:
    """Horizontally flipped normal maps (..., H, W, 3) uint8: mirror and negate x; background stays 0."""
    out = n[..., ::-1, :].copy()
    fg = out.any(-1)
    out[..., 0] = np.where(fg, 255 - out[..., 0], 0)
    return out


def _chw(x: np.ndarray) -> np.ndarray:
    """(..., H, W, 3) -> (..., 3, H, W)."""
    return np.ascontiguousarray(np.moveaxis(x, -1, -3))


def index_path(root: Path, vid: str) -> Path:
    return root / "index" / f"{vid}.json"


def video_done(root: Path, vid: str) -> dict | None:
    """The video's index ``{"fps", "clips": [entries]}`` if it exists and every clip file
    validates, else None."""
    path = index_path(root, vid)
    if not path.is_file():
        return None
    try:
        index = json.loads(path.read_text())
        for e in index["clips"]:
            if clip_metadata(root / e["file"]).get("file") != e["file"]:
                return None
    except (UserError, json.JSONDecodeError, KeyError, TypeError):
        return None
    return index


def remove_partial_files(root: Path) -> int:
    """Delete the ``.NAME.*.part*`` temporaries a killed run left (finished files are only ever
    renamed into place, so these are never part of the dataset) -> how many."""
    count = 0
    for sub in ("clips", "index", "fits", "."):
        folder = root / sub
        if folder.is_dir():
            for f in folder.glob(PARTIAL_GLOB):
                f.unlink(missing_ok=True)
                count += 1
    return count


def prepare_video(root: str | Path, frames: np.ndarray, fps: float, name: str, tracker: Tracker,
                  render: Renderer, cfg: PrepareConfig, source: str = "",
                  settings: dict | None = None, warp: Warper | None = None) -> list[dict]:
    """frames (F, H, W, 3) uint8 of one video (already cut to the frame range) -> clip entries
    (written to ``root``), plus the index file. ``name``: the video id; ``settings``: what made
    the clips (default: ``cfg``), kept in the index for ``check_settings``; ``warp``
    (``cfg.warp_reference``): ``frames, fit, ref, idx (n,) -> (n, H, W, 3)`` uint8, frame ``ref``
    warped by the fit to frames ``idx``."""
    root = Path(root)
    if cfg.warp_reference and warp is None:
        raise UserError("warp_reference needs a warp function")
    if cfg.reference not in ("first", "random"):
        raise UserError(f"--reference must be 'first' or 'random', got {cfg.reference!r}")
    offset = cfg.frames[0] if cfg.frames else 0
    fit = tracker(frames, fps)                                                   # 1
    lmk = np.asarray(fit.landmarks68_2d, np.float64)                             # (F, 68, 2)
    F = len(frames)
    spans = clip_spans(F, cfg.clip_frames, cfg.clip_stride)
    # warped references (ref, a, b) -> (b - a, H, W, 3), each dropped after its last use: "first"
    # shares one per span across the scale and rotation copies, "random" rarely repeats one
    warped: dict[tuple[int, int, int], np.ndarray] = {}
    uses = Counter((_reference(cfg, F, a, b, _clip_name(name, si, ri, deg, ci)), a, b)
                   for si in range(len(cfg.scales)) for ri, deg in enumerate(cfg.rotations)
                   for ci, (a, b) in enumerate(spans)) if cfg.warp_reference else Counter()
    entries = []
    for si, scale in enumerate(cfg.scales):
        ccfg = replace(cfg.crop, scale=cfg.crop.scale * scale)
        boxes = face_boxes(lmk, ccfg)                                            # 2 (F, 3)
        crops = crop(frames, boxes, cfg.size)                                    # 3 (F, S, S, 3)
        normals = render(fit, np.arange(F), boxes, cfg.size)
        for ri, deg in enumerate(cfg.rotations):
            rcrops = crops if deg == 0 else crop(frames, boxes, cfg.size, deg)      # (F, S, S, 3)
            rnormals = normals if deg == 0 else rotate_normals(normals, deg)
            for ci, (a, b) in enumerate(spans):                                  # 4
                clip_name = _clip_name(name, si, ri, deg, ci)
                ref = _reference(cfg, F, a, b, clip_name)                        # 5
                parts = {"frames": rcrops[a:b], "pose_normals": rnormals[a:b],
                         "ref_image": crops[ref], "ref_normal": normals[ref]}
                if cfg.warp_reference:
                    key = (ref, a, b)
                    if key not in warped:
                        warped[key] = warp(frames, fit, ref, np.arange(a, b))
                    parts["appearance"] = crop(warped[key], boxes[a:b], cfg.size, deg)
                    uses[key] -= 1
                    if not uses[key]:
                        del warped[key]
                variants = [("", parts)]
                if cfg.flip:                                                     # 6
                    variants.append(("-flip", {k: (flip_normals(v) if "normal" in k else v[..., ::-1, :])
                                               for k, v in parts.items()}))
                for suffix, p in variants:                                       # 7
                    entries.append(write_clip(
                        root, clip_name + suffix, _chw(p["frames"]), _chw(p["pose_normals"]),
                        _chw(p["ref_image"]), _chw(p["ref_normal"]),
                        _chw(p["appearance"]) if "appearance" in p else None, source=source,
                        frame_range=(offset + a, offset + b), ref_frame=offset + ref))
    with atomic_path(index_path(root, name)) as tmp:
        tmp.write_text(json.dumps({"fps": float(fps), "settings": _settings(cfg, settings),
                                   "clips": entries}, indent=1) + "\n")
    return entries


def _settings(cfg: PrepareConfig, settings: dict | None) -> dict:
    from expportrait.config import to_dict
    return json.loads(json.dumps(to_dict(cfg) if settings is None else settings))  # tuples -> lists


def check_settings(root: Path, videos: list[str], cfg: PrepareConfig, settings: dict | None) -> None:
    """UserError if a video of ``videos`` is already done in ``root`` with other settings
    (indexes written before settings were recorded are accepted)."""
    def short(v):  # one value of the message, at most 60 characters (the tracking config is long)
        text = json.dumps(v)
        return text if len(text) <= 60 else text[:57] + "..."

    want = _settings(cfg, settings)
    for path in videos:
        index = video_done(root, video_id(path, cfg.frames))
        have = (index or {}).get("settings")
        if have is None or have == want:
            continue
        diff = [f"{k} {short(have.get(k))} -> {short(want.get(k))}"
                for k in sorted(set(have) | set(want)) if have.get(k) != want.get(k)]
        raise UserError(f"{root} already holds {path} prepared with other settings ({'; '.join(diff)}); "
                        "use another --out, or delete that folder to redo it")


def _clip_name(video: str, si: int, ri: int, deg: float, ci: int) -> str:
    """Clip ``ci`` of scale copy ``si`` and rotation copy ``ri`` (turned by ``deg``)."""
    return f"{video}-s{si}-{ci:04d}" if deg == 0 else f"{video}-s{si}r{ri}-{ci:04d}"


def _reference(cfg: PrepareConfig, F: int, a: int, b: int, clip_name: str) -> int:
    if cfg.reference == "first":
        return 0
    outside = [i for i in range(F) if not a <= i < b] or list(range(F))
    seed = int.from_bytes(hashlib.sha1(f"{cfg.seed}|{clip_name}".encode()).digest()[:4], "little")
    return int(np.random.default_rng(seed).choice(outside))


def prepare_dataset(root: str | Path, videos: list[str], read: Callable[[str], Any],
                    tracker: Tracker, render: Renderer, cfg: PrepareConfig,
                    progress: bool = False, settings: dict | None = None,
                    warp: Warper | None = None) -> dict:
    """Prepare every video in ``videos`` (paths) into ``root``; ``read(path) -> Video``.
    Distributed over the processes of an ``accelerate launch``; -> summary dict. ``settings``:
    JSON-able description of everything that shapes the clips (default: ``cfg``); resuming a
    dataset whose videos were made with other settings raises UserError."""
    from accelerate import PartialState

    state = PartialState()
    rank, world = state.process_index, state.num_processes
    root = Path(root)
    mine = videos[rank::world]
    if state.is_main_process:          # temporaries of a killed earlier run, before anyone writes
        stale = remove_partial_files(root)
        if stale and progress:
            print(f"prepare: removed {stale} partial files of an interrupted run")
    state.wait_for_everyone()
    check_settings(root, videos, cfg, settings)   # every rank checks all videos: all stop alike
    done = skipped = 0
    it = mine
    if progress and state.is_main_process:
        from tqdm import tqdm
        it = tqdm(mine, desc="prepare", unit="video", disable=None)
    for path in it:
        vid = video_id(path, cfg.frames)
        if video_done(root, vid) is not None:
            skipped += 1
            continue
        video = read(path)
        frames = video.frames
        if cfg.frames:
            a, b = cfg.frames
            if a >= len(frames):
                raise UserError(f"{path}: --frames {a}:{b} starts past its {len(frames)} frames")
            frames = frames[a:b]
        prepare_video(root, frames, video.fps, vid, tracker, render, cfg, source=str(path),
                      settings=settings, warp=warp)
        done += 1
    state.wait_for_everyone()
    summary = {"rank": rank, "world_size": world, "prepared": done, "skipped": skipped}
    if state.is_main_process:
        entries, fps = [], []
        for path in videos:
            index = video_done(root, video_id(path, cfg.frames))
            if index is None:
                raise UserError(f"{path}: its clips are missing after preparation")
            entries += index["clips"]
            fps.append(index["fps"])
        write_manifest(root, entries, fps=fps[0])
        summary.update(clips=len(entries), manifest=str(root / "manifest.json"))
    state.wait_for_everyone()
    return summary

