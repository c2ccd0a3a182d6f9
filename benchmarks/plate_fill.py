"""The still background's plate (``engines.segment.background_plate``): what the moving head
uncovers, filled by Telea inpainting against exemplar (patch) filling, on plates whose truth is
known.

Plates, 512x512 (warp_first's working size in unseen.py): a real background with a real person
pasted over it, the person's head painted out, the fill compared with the background.
- Backgrounds (none of them a portrait's background, which is no truth): scikit-image's offline
  images brick, gravel, grass (textures, grey), coffee (the centre 400x400: cup, saucer, wood
  grain), rocket (the left 427x427: the launch tower's lattice), garage (stereo_motorcycle's left
  view, its left 500x500: shelves, boxes, the motorbike) and railings (the project's media
  ``faceapi5``, its top-left 480x480: a staircase's metal railings against a wall; left out when
  the media cannot be fetched), each resized to 512x512 (INTER_AREA down, INTER_CUBIC up).
- Persons: the validation portraits obama, biden, audrey, walter, queen, made as unseen.py's
  (``measures.padded_square``: edge-padded to a square of 2.2x the dlib face box, 512x512);
  MediaPipe's ``person_mask`` composites the person (soft) over the background, and the hole is
  warp_first's own: ``plate_mask(person, box)``, box = ``warp_field.head_box``'s rule on dlib's 68
  landmarks (the landmarks' box grown by half the face width sideways, one face height up, a
  quarter down). The person's body below the box stays in the plate, as in a real portrait.
Methods: ``background_plate`` with method "telea" (the old default) and "patch" (exemplar
filling, ``engines.fill``), each as warp_field calls it (no ``avoid``) and with ``avoid`` = the
person (``person > 0.5``) outside the hole (telea_avoid, patch_avoid): the body is never drawn
from.
Measures, on the hole (mask > 0) and on its rim (hole pixels within ``--rim`` px of its edge,
default 16: what a head moving that far uncovers; the image border is no edge):
- PSNR (dB) and SSIM (scikit-image's map, 7x7, over the whole plate, averaged on the region);
- grad_corr: Pearson correlation of the Sobel gradient magnitude (grey, Gaussian sigma 1 first)
  of fill and truth on the region: edges in the right place (a blur scores low);
- grad_ratio: mean gradient magnitude of the fill over the truth's on the region: texture as
  strong as the truth's is 1, a blur is well below;
- seconds per fill (wall clock, each fill once; the machine's load is recorded).
PSNR rewards a blur over any misplaced texture (the mean is the MSE optimum), so a sharp fill can
lose on PSNR and still look right; the structure measures and the picture say whether it does.
``--out``: summary.json and plate_fill.png (rows: some background/person pairs; columns truth |
hole | telea | telea_avoid | patch | patch_avoid, each the hole's box); with the README section also written to
docs/images/plate_fill.png.

    python benchmarks/plate_fill.py [--rim 16] [--backgrounds brick,garage] [--persons obama]
        [--out out/plate_fill] [--no-readme] [--json FILE] [--threads N]
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from common import finish, load_average, parser, repeat_time, setup, timed
from measures import padded_square

SIDE = 512
PERSONS = ("obama", "biden", "audrey", "walter", "queen")
BACKGROUNDS = ("brick", "gravel", "grass", "coffee", "rocket", "garage", "railings")
METHODS = ("telea", "telea_avoid", "patch", "patch_avoid")
PICTURE = (("garage", "obama"), ("railings", "biden"), ("rocket", "audrey"), ("brick", "walter"),
           ("coffee", "queen"))
DOC_PICTURE = Path(__file__).resolve().parents[1] / "docs" / "images" / "plate_fill.png"


def background(name: str) -> np.ndarray | None:
    """name -> (SIDE, SIDE, 3) uint8 RGB, or None when it cannot be had offline."""
    import cv2
    from skimage import data
    if name in ("brick", "gravel", "grass"):
        img = cv2.cvtColor(getattr(data, name)(), cv2.COLOR_GRAY2RGB)
    elif name == "coffee":
        img = data.coffee()[:, 100:500]
    elif name == "rocket":
        img = data.rocket()[:, :427]
    elif name == "garage":
        img = data.stereo_motorcycle()[0][:, :500]
    elif name == "railings":
        from expportrait.data.video import read_source
        from expportrait.errors import UserError
        try:
            img = read_source("sample:faceapi5").frames[0][:480, :480]
        except (UserError, OSError):                          # no network, no cached media
            return None
    else:
        raise ValueError(name)
    interp = cv2.INTER_AREA if img.shape[0] > SIDE else cv2.INTER_CUBIC
    return cv2.resize(np.ascontiguousarray(img), (SIDE, SIDE), interpolation=interp)


def person(name: str, face) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A validation portrait -> (image (SIDE, SIDE, 3) uint8, person (SIDE, SIDE) in [0, 1],
    plate mask (SIDE, SIDE) in [0, 1] of its head)."""
    from expportrait.data.video import read_source
    from expportrait.engines.segment import person_mask, plate_mask
    img = padded_square(read_source(f"sample:{name}").frames[0], face, SIDE, 2.2)
    lm = face.landmarks68(img)
    (x0, y0), (x1, y1) = lm.min(0), lm.max(0)
    w, h = x1 - x0, y1 - y0                                   # warp_field.head_box's rule
    box = (int(max(0, x0 - 0.5 * w)), int(max(0, y0 - 1.0 * h)),
           int(min(SIDE, x1 + 0.5 * w + 1)), int(min(SIDE, y1 + 0.25 * h + 1)))
    p = person_mask(img)
    return img, p, plate_mask(p, box)


def measure(fill: np.ndarray, truth: np.ndarray, region: np.ndarray) -> dict:
    """fill, truth (H, W, 3) uint8, region (H, W) bool -> psnr, ssim, grad_corr, grad_ratio."""
    import cv2
    from skimage.metrics import structural_similarity
    err = ((fill.astype(np.float64) - truth) ** 2)[region].mean()
    _, smap = structural_similarity(fill, truth, channel_axis=2, data_range=255, full=True)

    def grad(img):
        g = cv2.GaussianBlur(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 1.0)
        return np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))[region]
    gf, gt = grad(fill), grad(truth)
    corr = float(np.corrcoef(gf, gt)[0, 1]) if gf.std() > 1e-6 and gt.std() > 1e-6 else 0.0
    return {"psnr": float(10 * np.log10(255.0 ** 2 / max(err, 1e-10))), "ssim": float(smap.mean(-1)[region].mean()),
            "grad_corr": corr, "grad_ratio": float(gf.mean() / max(gt.mean(), 1e-6))}


def run_fill(method: str, plate: np.ndarray, hole: np.ndarray, body: np.ndarray):
    from expportrait.engines.segment import background_plate
    base, _, avoid = method.partition("_")
    with timed() as t:
        out = background_plate(plate, hole, method=base, avoid=body if avoid else None)
    return out, t.seconds


def mean(recs: list[dict]) -> dict:
    return {k: float(np.mean([r[k] for r in recs])) for k in recs[0]}


def least_times(persons: dict, bg: np.ndarray, repeats: int = 3) -> dict:
    """{method: {person: least seconds of ``repeats`` fills}} on one background (the least is
    the run other jobs on the machine disturbed least)."""
    out = {m: {} for m in METHODS}
    for p, (img, pm, mask) in persons.items():
        plate = np.rint(bg * (1.0 - pm[..., None]) + img * pm[..., None]).astype(np.uint8)
        body = (pm > 0.5) & ~(mask > 0)
        for m in METHODS:
            out[m][p] = repeat_time(lambda m=m, a=plate, h=mask, b=body: run_fill(m, a, h, b), repeats,
                                    warmup=0, reduce=min)
    return out


def write_picture(path: Path, tiles: dict, side: int = 150) -> None:
    """tiles {(background, person): [truth, hole, *METHODS] crops} -> one PNG,
    a row per pair, each tile resized to ``side`` px high (palette PNG, small)."""
    import cv2
    from PIL import Image
    rows = []
    for crops in tiles.values():
        h, w = crops[0].shape[:2]
        size = (max(1, round(w * side / h)), side)
        row = [cv2.resize(c, size, interpolation=cv2.INTER_AREA) for c in crops]
        rows.append(np.concatenate([np.pad(t, ((2, 2), (2, 2), (0, 0)), constant_values=255) for t in row], 1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, 0)).quantize(256, dither=Image.Dither.NONE).save(path, optimize=True)


def main():
    from scipy.ndimage import distance_transform_edt

    from expportrait.detection.dlib_face import DlibFace
    ap = parser(__doc__, out="out/plate_fill")
    ap.add_argument("--rim", type=int, default=16, help="rim width in px (default 16)")
    ap.add_argument("--backgrounds", default=",".join(BACKGROUNDS))
    ap.add_argument("--persons", default=",".join(PERSONS))
    args = setup(ap.parse_args())
    face = DlibFace()
    persons = {p: person(p, face) for p in args.persons.split(",")}
    bgs = {b: background(b) for b in args.backgrounds.split(",")}
    missing = [b for b, img in bgs.items() if img is None]
    bgs = {b: img for b, img in bgs.items() if img is not None}
    results = {m: {b: {} for b in bgs} for m in METHODS}
    tiles = {}
    for b, bg in bgs.items():
        for p, (img, pm, mask) in persons.items():
            alpha = pm[..., None]
            plate = np.rint(bg * (1.0 - alpha) + img * alpha).astype(np.uint8)     # (H, W, 3)
            hole = mask > 0
            rim = hole & (distance_transform_edt(hole) <= args.rim)
            body = (pm > 0.5) & ~hole
            outs = {}
            for m in METHODS:
                out, sec = run_fill(m, plate, mask, body)
                assert np.array_equal(out[~hole], plate[~hole])
                outs[m] = out
                results[m][b][p] = {**{f"hole_{k}": v for k, v in measure(out, bg, hole).items()},
                                    **{f"rim_{k}": v for k, v in measure(out, bg, rim).items()}, "seconds": sec}
            print(b, p, {m: round(results[m][b][p]["rim_grad_corr"], 3) for m in METHODS}, flush=True)
            if (b, p) in PICTURE:
                ys, xs = np.nonzero(hole)
                m = 16
                y0, y1 = max(0, ys.min() - m), min(SIDE, ys.max() + 1 + m)
                x0, x1 = max(0, xs.min() - m), min(SIDE, xs.max() + 1 + m)
                holed = np.where(hole[..., None], 0, plate).astype(np.uint8)
                tiles[(b, p)] = [a[y0:y1, x0:x1] for a in (bg, holed, *(outs[k] for k in METHODS))]
    per_bg = {m: {b: mean(list(r.values())) for b, r in results[m].items()} for m in METHODS}
    timing = least_times(persons, next(iter(bgs.values())))
    summary = {"methods": {m: mean(list(per_bg[m].values())) for m in METHODS}, "per_background": per_bg,
               "least_seconds": timing, "timing_background": next(iter(bgs)),
               "hole_px": {p: int((v[2] > 0).sum()) for p, v in persons.items()}, "rim_px": args.rim, "missing_backgrounds": missing,
               "persons": list(persons), "load_average": load_average()}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if tiles:
        write_picture(out / "plate_fill.png", tiles)
        summary["picture"] = str((out / "plate_fill.png").resolve())
        if not args.no_readme:
            write_picture(DOC_PICTURE, tiles)
    finish(args, summary, section=readme_section(args, summary))


def readme_section(args, summary: dict) -> tuple:
    def cell(rec: dict, part: str) -> str:
        return (f"{rec[f'{part}_psnr']:.2f} / {rec[f'{part}_ssim']:.3f} / {rec[f'{part}_grad_corr']:.3f} / "
                f"{rec[f'{part}_grad_ratio']:.2f}")
    rows = []
    for m, rec in summary["methods"].items():
        rows.append(((f"{m}, mean over the backgrounds: hole PSNR / SSIM / grad corr / grad ratio; rim the "
                      "same; seconds per fill"), f"{cell(rec, 'hole')}; {cell(rec, 'rim')}; {rec['seconds']:.2f}",
                     "grad ratio near 1; <= 1 s" if m.startswith("patch") else ""))
    t = summary["least_seconds"]
    holes = ", ".join(f"{p} {n}" for p, n in summary["hole_px"].items())
    rows.append((f"least seconds per fill of 3 on {summary['timing_background']}, per person (hole px: {holes}): "
                 + "; ".join(METHODS), "; ".join(" / ".join(f"{v:.2f}" for v in t[m].values()) for m in METHODS),
                 "patch <= 1 s on 2 cores"))
    for b in summary["per_background"]["telea"]:
        for part in ("hole", "rim"):
            rows.append((f"{b}: {part} PSNR / SSIM / grad corr / grad ratio, " + "; ".join(METHODS),
                         "; ".join(cell(summary["per_background"][m][b], part) for m in METHODS), ""))
    cmd = "python benchmarks/plate_fill.py" + (f" --rim {args.rim}" if args.rim != 16 else "")
    miss = f" Left out (media not available): {', '.join(summary['missing_backgrounds'])}." \
        if summary["missing_backgrounds"] else ""
    return ("plate_fill", cmd, rows, (
        f"warp_first's still-background plate on 512x512 plates with known truth: {len(summary['per_background']['telea'])} "
        f"real backgrounds x {len(summary['persons'])} validation persons pasted over them "
        f"({', '.join(summary['persons'])}), the head painted out with warp_first's own plate mask; measured on "
        f"the hole and on its {summary['rim_px']} px rim (what a head moving that far uncovers). grad corr: "
        f"gradient-magnitude correlation with the truth; grad ratio: the fill's gradient energy over the "
        f"truth's (a blur is well below 1). PSNR favours a blur over misplaced texture.{miss} "
        f"Picture: docs/images/plate_fill.png (truth | hole | {' | '.join(METHODS)})."))


if __name__ == "__main__":
    main()
