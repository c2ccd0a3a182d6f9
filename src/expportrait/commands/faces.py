"""expportrait faces INPUT [--out PICTURE.png] [--frame N] [--face-detector auto|mediapipe|dlib|both]

Lists the faces found in a photo (or one frame of a video) with the numbers ``--face-index``
takes (0 = largest), their boxes and sizes, and writes the picture with the numbered boxes.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def add_arguments(p) -> None:
    from expportrait.detection.faces import DEFAULT_DETECTOR, DETECTORS

    p.add_argument("input", help="photo or video (or sample:NAME)")
    p.add_argument("--out", default=None,
                   help="picture with the numbered faces (.png/.jpg; default: INPUT-NAME.faces.png here)")
    p.add_argument("--frame", type=int, default=0, help="video frame to look at (default 0)")
    p.add_argument("--face-detector", default=DEFAULT_DETECTOR, choices=DETECTORS,
                   help="finds the faces before FaceMesh: auto (default: MediaPipe's short and full "
                        "range, near and far faces; dlib when they find none) | mediapipe | dlib | both")
    p.add_argument("--json", action="store_true", help="print the list as JSON")


def draw_faces(image: np.ndarray, faces) -> np.ndarray:
    """image (H, W, 3) uint8, faces (``detection.faces.Face``, in index order) -> a copy with
    each box drawn and its index written above it."""
    from PIL import Image, ImageDraw, ImageFont

    im = Image.fromarray(image)
    draw = ImageDraw.Draw(im)
    H, W = image.shape[:2]
    lw = max(2, round(max(H, W) / 400))
    for k, f in enumerate(faces):
        x0, y0, x1, y1 = f.box
        size = max(14, round(0.45 * (x1 - x0)), round(max(H, W) / 40))
        font = ImageFont.load_default(size=size)
        draw.rectangle((x0, y0, x1, y1), outline=(255, 40, 40), width=lw)
        label = str(k)
        l, t, r, b = draw.textbbox((0, 0), label, font=font)
        tx, ty = x0, max(0, y0 - (b - t) - 3 * lw)
        draw.rectangle((tx, ty, tx + (r - l) + 2 * lw, ty + (b - t) + 2 * lw), fill=(255, 40, 40))
        draw.text((tx + lw - l, ty + lw - t), label, fill=(255, 255, 255), font=font)
    return np.asarray(im)


def list_faces(path, frame: int = 0, detector: str = "auto"):
    """-> (image (H, W, 3) uint8, faces in index order) of a photo or one frame of a video."""
    from expportrait.data.video import read_source
    from expportrait.errors import UserError
    from expportrait.detection.faces import find_faces

    if frame < 0:
        raise UserError(f"--frame must be >= 0, got {frame}")
    video = read_source(path, max_frames=frame + 1)
    if frame >= len(video.frames):
        raise UserError(f"--frame {frame}: {path} has only {len(video.frames)} frame(s)")
    image = video.frames[frame]
    return image, find_faces(image, detector)


def run(args) -> int:
    from PIL import Image

    from expportrait.errors import UserError, atomic_path

    out = Path(args.out) if args.out else Path(f"{Path(str(args.input).split(':')[-1]).stem}.faces.png")
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise UserError(f"--out must end in .png or .jpg, got {out}")
    image, faces = list_faces(args.input, args.frame, args.face_detector)
    if not faces:
        where = f" (frame {args.frame})" if args.frame else ""
        raise UserError(f"no face found in {args.input}{where}")
    rows = [{"index": k, "box": [round(v, 1) for v in f.box], "width": round(f.width),
             "height": round(f.box[3] - f.box[1]), "score": round(f.score, 3), "detector": f.detector}
            for k, f in enumerate(faces)]
    fmt = "PNG" if out.suffix.lower() == ".png" else "JPEG"
    with atomic_path(out) as tmp:
        Image.fromarray(draw_faces(image, faces)).save(tmp, format=fmt)
    H, W = image.shape[:2]
    if args.json:
        print(json.dumps({"input": str(args.input), "frame": args.frame, "size_wh": [W, H],
                          "faces": rows, "picture": str(out)}, indent=1))
        return 0
    print(f"{len(faces)} face{'s' if len(faces) != 1 else ''} in {args.input} ({W}x{H}), largest first "
          f"-> {out}")
    for r in rows:
        x0, y0, x1, y1 = r["box"]
        print(f"  {r['index']:2d}  box ({x0:.0f}, {y0:.0f})-({x1:.0f}, {y1:.0f})  "
              f"{r['width']}x{r['height']} px  score {r['score']:.2f}")
    print("pick one with --face-index K (track, reenact, prepare, app)")
    return 0
