"""warp_first's mouth from the source's own frames (``engines.mouth_bank``) against the warp's own
mouth and the driver's, on a video source of the validation person cap_man.

Clips (cap_man is a validation person of ``configs/identity_split.json``; checked):
- self: source = ``cap13`` frames 0-360 (a video; reference frame 360, mouth closed, frontal),
  driven by the held-out ``cap13`` frames 380-579 every ``--stride``-th (as unseen.py's self
  clip: the bank never holds a driven frame), compared with those real frames; mode self.
- cross check (``--cross``): the same source driven by ``cap12`` frames 410-559 (another clip of
  the same person), same stride; mode self; its "real" frames are cap12's (another session:
  light and background differ, so its PSNR is only a relative figure).
Variants: ``mouth_source`` none (the warp's own mouth: no driver pixels, the honest self figure),
driver (the driver's mouth: in self mode a copy of the ground truth), source (the bank) and auto
(the bank, the driver's mouth where no own frame is close enough); in source mode also the bank
with ``--bank-sizes`` frames (PipelineConfig.mouth_bank_frames), "any" (``max_distance`` 2: every
frame with a bank mouth open enough takes one) and each ``--try`` BankConfig (``mouth_bank.BANK``
replaced for the run). The bank's retrieval uses the driver's teeth share (``BankConfig.teeth``):
in self mode one number per frame of the ground truth, so source / auto are not driver-free.
Measures (``measures.py``, dlib landmarks the tracker never sees): face-box and mouth-box PSNR /
SSIM against the real frames (the real frame's dlib box, unseen.py's), teeth ratio / correlation
with the driver (``measures.teeth_scores``), dlib mouth-opening correlation with the driver; the
retrieval as the engine makes it (bank frames used, switches) and the mouth-box PSNR gain of
"any" over none per frame, by lip distance; seconds per frame of the bank (the engine's refine
step less that of ``none``) and of detecting the bank's landmarks (once per source).
``--out``: ``contact_mouth.png``: per clip, the 4 frames with the driver's widest mouth, the 4
widest where the bank was used and the 4 closest it turned down, mouth zoomed: driver | none |
driver's mouth | bank (its frame) | auto | any (its frame and lip distance).

    python benchmarks/mouth_retrieval.py [--stride 4] [--cross] [--bank-sizes 32,64,128]
        [--try open_share=0.9 ...] [--checkpoint DIR] [--out out/mouth_retrieval] [--no-readme]
        [--json FILE] [--threads N]
"""
from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from common import MemoTracker, finish, parser, setup, timed
from measures import (face_box_crops, mouth_box_crops, mouth_opening, pearson, teeth_fraction, teeth_scores,
                      zoom_crop)

SOURCE = ("cap13", 0, 361, 360)          # media, first frame, end, reference frame (mouth closed)
SELF_DRIVER = ("cap13", 380, 580)        # held out of the source
CROSS_DRIVER = ("cap12", 410, 560)       # another clip of the same person
VARIANTS = ("none", "driver", "source", "auto")
ZOOM = 128                               # contact picture tile side
ANY = 2.0                                # a max_distance no bank frame open enough exceeds


def judge(frames, real, drv_lmk, face):
    """Result frames (F, H, W, 3) against the driver's real frames with their dlib landmarks
    drv_lmk (F, 68, 2) -> measures (see the module doc) and per-frame mouth PSNR (F,) (NaN where
    dlib finds no face in the driver)."""
    from expportrait.metrics.image import psnr, ssim
    lmk = face.landmarks68_video(frames)
    ok = np.isfinite(drv_lmk[:, 0, 0])
    a, b = face_box_crops(frames[ok], drv_lmk[ok]), face_box_crops(real[ok], drv_lmk[ok])
    ma, mb = mouth_box_crops(frames[ok], drv_lmk[ok]), mouth_box_crops(real[ok], drv_lmk[ok])
    per = np.full(len(frames), np.nan)
    per[ok] = psnr(ma, mb).per_frame
    out = {"psnr": psnr(a, b).mean, "ssim": ssim(a, b).mean, "mouth_psnr": psnr(ma, mb).mean,
           "mouth_ssim": ssim(ma, mb).mean,
           **teeth_scores(teeth_fraction(frames, lmk), teeth_fraction(real, drv_lmk), mouth_opening(drv_lmk)),
           "mouth_corr": pearson(mouth_opening(lmk), mouth_opening(drv_lmk))}
    return out, per


def distance_bins(dist: np.ndarray, gain: np.ndarray, open_: np.ndarray) -> list:
    """Per open-mouth frame lip distance (F,) and mouth PSNR gain bank - none (F,) -> rows
    [upper edge, frames, mean gain] over distance bins."""
    rows, sel = [], np.isfinite(dist) & np.isfinite(gain) & open_
    for lo, hi in ((0, 0.06), (0.06, 0.09), (0.09, 0.12), (0.12, 0.16), (0.16, 1.0)):
        m = sel & (dist >= lo) & (dist < hi)
        rows.append([hi, int(m.sum()), float(gain[m].mean()) if m.any() else None])
    return rows


def main() -> None:
    ap = parser(__doc__, out="out/mouth_retrieval")
    ap.add_argument("--stride", type=int, default=4, help="take every k-th driver frame")
    ap.add_argument("--cross", action="store_true", help="also the cap12 cross check")
    ap.add_argument("--bank-sizes", default="32,64,128", help="mouth_bank_frames tried in source mode")
    ap.add_argument("--try", dest="tries", action="append", default=None,
                    help="a BankConfig also tried in source mode, e.g. open_share=0.9,teeth=0 (repeatable; "
                         "default: teeth=0 and open_share=0.9)")
    ap.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the shipped demo)")
    args = setup(ap.parse_args())
    sizes = [int(x) for x in args.bank_sizes.split(",") if x.strip()]
    args.tries = args.tries or ["teeth=0", "open_share=0.9"]

    from expportrait.data.media import load_split, person_of
    from expportrait.data.video import Video, read_source
    from expportrait.detection.dlib_face import DlibFace
    from expportrait.engines import mouth_bank
    from expportrait.engines.mouth import gate, opening, teeth_share
    from expportrait.engines.mouth_bank import mouth_looks, retrieve, seen_lips
    from expportrait.pipeline import ReenactPipeline

    split = load_split()
    assert all(person_of(m) in split["validation"] for m in (SOURCE[0], CROSS_DRIVER[0]))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    face = DlibFace()
    pipe = ReenactPipeline.from_checkpoint(args.checkpoint)
    pipe.tracker = MemoTracker(pipe.tracker.cfg, pipe.head)
    me = read_source(f"sample:{SOURCE[0]}")
    source = Video(me.frames[SOURCE[1]:SOURCE[2]], me.fps)
    base = replace(pipe.config, engine="warp_first", reference_frame=SOURCE[3] - SOURCE[1])
    default_bank, s = mouth_bank.BANK, args.stride
    clips = {"self": Video(me.frames[SELF_DRIVER[1]:SELF_DRIVER[2]:s], me.fps / s)}
    if args.cross:
        other = read_source(f"sample:{CROSS_DRIVER[0]}", start=CROSS_DRIVER[1],
                            max_frames=CROSS_DRIVER[2] - CROSS_DRIVER[1])
        clips["cross"] = Video(other.frames[::s], other.fps / s)

    summary, tiles = {"clips": {}, "bank_detect_sec_per_frame": {}}, []
    for n in sizes:                                            # the bank's landmarks, first time
        pipe.config = replace(base, mouth_source="source", mouth_bank_frames=n)
        with timed() as t:
            frames, track, _ = pipe.source_bank(source)
        summary["bank_detect_sec_per_frame"][n] = t.seconds / len(frames)
        print(f"bank {n}: {len(frames)} frames, detected in {t.seconds:.1f} s, valid {track.valid.mean():.0%}, "
              f"open > 0.05 in {np.mean(opening(track.ibug68) > 0.05):.0%}, widest {opening(track.ibug68).max():.3f}",
              flush=True)
    runs = [(v, v, None, {}) for v in VARIANTS]
    runs += [(f"source@{n}", "source", n, {}) for n in sizes if n != base.mouth_bank_frames]
    runs += [("source any", "source", None, {"max_distance": ANY})]
    runs += [(f"source {t}", "source", None, {k: float(v) for k, v in (kv.split("=") for kv in t.split(","))})
             for t in args.tries]
    for name, drv in clips.items():
        drv_lmk = face.landmarks68_video(drv.frames)
        rec, res_frames, pers = {}, {}, {}
        for key, v, n, bank_cfg in runs:
            pipe.config = replace(base, mouth_source=v, **({} if n is None else {"mouth_bank_frames": n}))
            mouth_bank.BANK = replace(default_bank, **bank_cfg)
            try:
                res = pipe(source, drv, mode="self")
            finally:
                mouth_bank.BANK = default_bank
            m, per = judge(res.frames, drv.frames, drv_lmk, face)
            m["refine_sec_per_frame"] = res.timings["engine/refine"] / len(res.frames)
            rec[key], res_frames[key], pers[key] = m, res.frames, per
            print(name, key, {k: (round(x, 3) if isinstance(x, float) else x) for k, x in m.items()}, flush=True)
        for key in rec:
            if key.startswith("source"):
                rec[key]["bank_sec_per_frame"] = rec[key]["refine_sec_per_frame"] - rec["none"]["refine_sec_per_frame"]
        # the retrieval as the engine makes it (default bank), and at no distance limit
        pipe.config = replace(base, mouth_source="source")
        bank, track, ref = pipe.source_bank(source)
        target = res.fits["driven"].landmarks68_2d.numpy()
        own = res.fits["source"].landmarks68_2d[_ref_index(len(source.frames), base)].numpy()
        w, b68 = gate(target, own), track.ibug68
        seen, looks = seen_lips(target, own, b68[ref]), mouth_looks(bank, b68)
        dl = pipe.detect_driver(drv)                               # as the engine's teeth cue
        teeth = (np.array([teeth_share(f, lm) if ok else np.nan for f, lm, ok in zip(drv.frames, dl.ibug68, dl.valid)]),
                 np.array([teeth_share(b, lm) for b, lm in zip(bank, b68)]))
        pick, _ = retrieve(seen, b68, looks, w, track.valid, teeth, default_bank)
        anypick, dist = retrieve(seen, b68, looks, w, track.valid, teeth, replace(default_bank, max_distance=ANY))
        op = opening(seen) > 0.05                                  # open (as seen) frames
        rec["retrieval"] = {"frames_open": int(op.sum()), "bank_used": int((op & (pick >= 0)).sum()),
                            "distinct_picks": len(set(pick[op & (pick >= 0)])),
                            "switches_while_open": int(((pick[1:] != pick[:-1]) & op[1:] & op[:-1]).sum()),
                            "distance_quartiles": np.nanpercentile(dist[op], [25, 50, 75]).tolist()
                            if np.isfinite(dist[op]).any() else None,
                            "gain_by_distance": distance_bins(dist, pers["source any"] - pers["none"], op),
                            "no_bank_frame_open_enough": int((op & (anypick < 0)).sum()),
                            "per_frame": {"open": op.tolist(), "pick": pick.tolist(), "any_pick": anypick.tolist(),
                                          "any_distance": np.round(dist, 4).tolist(),
                                          "teeth_wanted": np.round(teeth[0], 3).tolist(),
                                          "teeth_any_pick": np.round(np.where(anypick >= 0, teeth[1][anypick], np.nan), 3).tolist(),
                                          "any_gain_db": np.round(pers["source any"] - pers["none"], 3).tolist()}}
        print(name, "retrieval", rec["retrieval"], flush=True)
        summary["clips"][name] = rec
        widest = np.argsort(-np.nan_to_num(mouth_opening(drv_lmk), nan=-1))[:4]
        used = np.flatnonzero(op & (pick >= 0))
        used = used[np.argsort(-opening(seen)[used])][:4]
        rejected = np.flatnonzero(op & (pick < 0) & (anypick >= 0))     # what max_distance turned down
        rejected = rejected[np.argsort(dist[rejected])][:4]
        for block, frames_at in (("widest", widest), ("bank used", used), ("rejected", rejected)):
            for i in sorted(frames_at):
                lm = drv_lmk[i] if np.isfinite(drv_lmk[i]).all() else np.nanmean(drv_lmk, 0)
                (cx, cy), side = lm[48:68].mean(0), 2.2 * np.linalg.norm(lm[54] - lm[48])
                row = [zoom_crop(drv.frames[i], cx, cy, side, ZOOM, f"{name} {block} {i}")]
                row += [zoom_crop(res_frames[k][i], cx, cy, side, ZOOM, lab) for k, lab in
                        (("none", "none"), ("driver", "driver mouth"), ("source", f"bank {pick[i]}"),
                         ("auto", "auto"), ("source any", f"any {anypick[i]} d={dist[i]:.2f}"))
                        if k in res_frames]
                tiles.append(np.concatenate(row, 1))
    import cv2
    cv2.imwrite(str(out / "contact_mouth.png"), np.concatenate(tiles, 0)[..., ::-1])
    summary["contact"] = str((out / "contact_mouth.png").resolve())
    summary["windows"] = {"source": f"{SOURCE[0]} frames {SOURCE[1]}-{SOURCE[2] - 1}, reference {SOURCE[3]}",
                          "self": f"{SELF_DRIVER[0]} {SELF_DRIVER[1]}-{SELF_DRIVER[2] - 1} stride {s}",
                          "cross": f"{CROSS_DRIVER[0]} {CROSS_DRIVER[1]}-{CROSS_DRIVER[2] - 1} stride {s}"}
    summary["config"] = {"max_source_frames": base.max_source_frames, "mouth_bank_frames": base.mouth_bank_frames,
                         "bank": asdict(mouth_bank.BANK)}
    finish(args, summary, section=readme_section(args, summary))


def _ref_index(F: int, cfg) -> int:
    """The reference frame's index in the source fit (``ReenactPipeline.fit_source``'s selection)."""
    n = min(F, max(1, cfg.max_source_frames))
    idx = sorted(set(np.linspace(0, F - 1, n).round().astype(int).tolist()) | {cfg.reference_frame})
    return idx.index(cfg.reference_frame)


def readme_section(args, summary: dict) -> tuple:
    def f(x, fmt="{:.3f}"):
        return "n/a" if x is None else fmt.format(x)
    rows = []
    for name, rec in summary["clips"].items():
        for key, r in rec.items():
            if key == "retrieval":
                continue
            rows.append((f"{name}: mouth_source {key}: face-box PSNR / SSIM; mouth-box PSNR / SSIM; teeth ratio / "
                         f"corr; dlib mouth corr; refine s/frame",
                         f"{f(r['psnr'], '{:.2f}')} / {f(r['ssim'])}; {f(r['mouth_psnr'], '{:.2f}')} / "
                         f"{f(r['mouth_ssim'])}; {f(r['teeth_ratio'], '{:.2f}')} / {f(r['teeth_corr'], '{:.2f}')}; "
                         f"{f(r['mouth_corr'])}; {f(r['refine_sec_per_frame'], '{:.3f}')}", ""))
        q = rec["retrieval"]
        bins = ", ".join(f"< {hi}: {n} fr {f(g, '{:+.2f}')} dB" for hi, n, g in q["gain_by_distance"])
        rows.append((f"{name}: retrieval over the {q['frames_open']} open frames (seen opening > 0.05): bank used / "
                     "none open enough; distinct frames / switches; lip distance quartiles; mouth-box PSNR gain "
                     "of the bank at any distance (source any) over none, by distance",
                     f"{q['bank_used']} / {q['no_bank_frame_open_enough']}; {q['distinct_picks']} / "
                     f"{q['switches_while_open']}; "
                     f"{', '.join(f(x) for x in q['distance_quartiles'] or [])}; {bins}", ""))
    det = ", ".join(f"{n}: {v:.3f}" for n, v in summary["bank_detect_sec_per_frame"].items())
    rows.append(("bank landmarks: seconds per bank frame (MediaPipe, once per source)", det, ""))
    cmd = "python benchmarks/mouth_retrieval.py" + (f" --stride {args.stride}" if args.stride != 4 else "") + \
        (" --cross" if args.cross else "") + (f" --bank-sizes {args.bank_sizes}" if args.bank_sizes != "32,64,128" else "")
    cmd += "".join(f" --try {t}" for t in args.tries)
    w = summary["windows"]
    return ("mouth_retrieval", cmd, rows, (
        f"warp_first, validation person cap_man. Source: {w['source']} (a video: the mouth bank, "
        f"mouth_bank_frames {summary['config']['mouth_bank_frames']} unless named @N). self: driven by {w['self']} "
        f"(held out), compared with those frames; cross: driven by {w['cross']} (another session: PSNR relative "
        f"only), mode self. mouth_source driver copies the ground truth's mouth in self mode: not a result; the "
        f"bank (source, auto) takes one number per frame from the driver, its teeth share. BankConfig: "
        f"{summary['config']['bank']}; 'any': max_distance {ANY}. Teeth ratio n/a: the self window never shows "
        f"teeth (driver teeth fraction < 0.15). Contact: {args.out}/contact_mouth.png."))


if __name__ == "__main__":
    main()
