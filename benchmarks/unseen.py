"""Reenactment of people the project never trained on: the validation identities of
``configs/identity_split.json`` only, for every engine in ``expportrait.engines.ENGINE_NAMES``.

Clips (the persons are checked against the split file's "validation" list):
- cross: one image per validation person (obama, biden, audrey, walter, queen), each edge-padded
  to a centred square of side max(H, W, 2.2x its dlib face box) (walter's and queen's close crops
  get room for MediaPipe) and resized to 512x512 (INTER_AREA down, INTER_CUBIC up), driven by
  cap_man's ``cap12`` frames 410-559 (mouth opening and closing 414-475, head turns left and right
  486-545), every ``--stride``-th frame (default 4: 38 frames at 6.25 fps); mode cross.
- teeth: the same portraits driven by cap_man's ``cap13`` frames 80-229, same stride (38 frames);
  mode cross. The cap12 window above shows teeth (``measures.teeth_fraction`` >= 0.15) in about 8 %
  of its frames and the self window in none; among the 150-frame windows of cap12 and cap13 (starts
  every 40 frames, every 4th frame) this one shows them in 37 % (the most: cap13 200-349, 55 %) and
  is the one that also blinks (frames 98-110; no other window with teeth does), so the eyes are
  measured on it too. cap_man is a validation person: no training person is needed.
- self: cap_man re-created from one frame, ``cap13`` frame 360 (mouth closed, frontal), driven by
  the held-out ``cap13`` frames 380-579 (wide mouth opening 384-480, head turns 500-595), same
  stride (50 frames), compared with those real frames; mode self. The driver is the ground truth,
  so a figure made with its pixels is no result: the clip runs with ``mouth_source="none"`` (the
  headline self_*) and again, labelled, with ``"driver"`` (``self_driver_mouth:cap13``, the
  self_*_driver_mouth keys; with ``--synthesize``, ``"learned"``: the generator refining that
  composite); a PipelineConfig without mouth_source: once, as configured.
- self_hard: the same held-out frames re-created from ``cap13`` frame 100, mid-blink (eyes shut;
  the driver then opens them, opens the mouth wide and turns the head): a large change between
  reference and driver, where an alignment that forces landmarks tears (self_hard_* keys).
Measures, all on dlib's 68 landmarks and 128-d descriptor (``detection.dlib_face``), which the
tracker never sees, except AED/APD (the dlib measures are in ``benchmarks/measures.py``):
- identity: per result frame, dlib descriptor distance to the source portrait (the 512x512 input)
  below 0.6; frames without a dlib face count as misses. Per portrait fraction; identity_frac =
  mean over the portraits, identity_min_frac = the worst portrait.
- mouth opening: inner-lip gap (mean of the 61-67, 62-66, 63-65 distances) / outer-eye-corner
  distance (36-45). Yaw: nose-to-face-edge asymmetry (dl - dr) / (dl + dr), dl = |p30 - mean(p0..2)|,
  dr = |mean(p14..16) - p30| (signed, about sin(yaw); no 3D template). mouth_corr, yaw_corr: Pearson
  over frames where dlib finds a face in both driver and result (the fraction is reported).
- AED / APD: the project tracker (stage base, ``tracking.track.project_tracker``) on result and
  driver, ``metrics.motion``: expression coefficients / yaw-pitch-roll radians.
- self face-box PSNR / SSIM: each real frame's square around its dlib landmarks (1.2x their larger
  extent), the same box cut from the result and the real frame, both resized to 128x128; the
  mouth box the same around its mouth (48-67), 1.5x, at 64x64.
- teeth (``measures.teeth_fraction``): per frame the fraction of the pixels inside the inner lips
  (60-67) brighter (Rec. 601 luma) than 0.75x the median of that frame's skin: the nose between the
  inner eye corners (27, 39, 31-35, 42) and the two cheeks below the eyes (lower lid, nose wing and
  the jaw from the mouth's height to the eye's, shrunk to 0.7 about their centroid to stay off the
  face's edge, beard line and eyelids) - skin that a smile or a turn rarely shades. teeth_ratio:
  mean result / mean driver fraction over the frames where the driver's is >= 0.15, each clip's
  capped at 1 before the mean over the portraits (a source smiling with its teeth, as obama does,
  scores 2.4 however it moves: a still frame of the sources would pass 0.6 uncapped), and
  teeth_ratio_min the worst portrait's; teeth_corr: Pearson of the two over the frames where the
  driver's mouth opening is > 0.05 (0 where the result's fraction never changes).
- eye_corr: Pearson of the eye-aspect ratio (mean of both eyes) with the driver's. jitter_ratio:
  mean |second difference| of the 68 landmarks (eye-corner distance units) of the result over the
  driver's; jitter_floor: the same ratio for the source photo moved by nothing but the result's
  own head motion (``measures.head_motion_only``: no expression; what dlib reads of a moving still
  photo). flicker: mean |grey change| of consecutive result frames outside 2x the box of both
  frames' landmarks; background_flicker: the same outside the person as well (MediaPipe's person
  mask of either frame, ``measures.person_masks``: hair, hat and clothes left out). self
  warp_error: the real frames' DIS optical flow (medium, t -> t-1, forward-backward checked)
  warps result t-1 onto t; mean |difference| to result t over the consistent
  pixels of the face box; real_warp_error: the same on the real frames (the floor).
- min_jacobian: the least ``res.warp_stats["min_jacobian"]`` (the backward warp's Jacobian
  determinant) over every frame of every clip; None for an engine without warp stats.
- seconds per output frame: the pipeline call's wall time minus its fit_source and track_driver
  steps (tracking is memoised across engines: the pipeline's tracker is ``common.MemoTracker``),
  over the frames; plus end to end: the first portrait at 512x512 with the checkpoint's default
  engine, nothing cached (the whole pipeline call, no model loading or video writing), which is
  run first.
The flat keys (identity_*, mouth_corr, yaw_corr, aed, apd, eye_corr, jitter_ratio, flicker) are
means over the cross portraits; teeth_* over the teeth clips; self_* are the self clip.
Seed-dependent engines (``engines.is_stochastic``: the DiT and its ablations) run once per
``--seeds`` and report the mean. A clip the pipeline refuses (e.g. no face to track) counts as
identity 0 with no other measure. ``--out`` gets each result video (first seed), ``summary.json``,
``contact_zoom.png`` (``measures.write_zoom``: the default engine's mouth 4x and neck 2x at the
driver's widest mouth) and ``contact_sheet.png``: per clip one row, source | 4 driver frames
(first, widest mouth, lowest and highest yaw) | the same 4 result frames per engine, each tile
the square of 2.5x the face's extent (the source's dlib landmarks for source and results, the
driver's mean for the driver). The JSON keeps its layout whatever the flags ("variants": one
record per engine), so an earlier run's ``--json`` can be given to ``--merge`` (keys it lacks: None).
Writes benchmarks/README.md (section "unseen") unless ``--no-readme``; the last output line is one
JSON object (the harness flags: ``benchmarks/common.py``).

    python benchmarks/unseen.py [--engines full,mesh_warp] [--portraits obama,biden] [--stride 4]
        [--max-frames N] [--seeds 0] [--checkpoint DIR] [--steps N] [--synthesize] [--no-align]
        [--merge FILE] [--threads N] [--no-readme] [--out out/unseen] [--json FILE]
    (--variants: the old name of --engines)
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from common import MemoTracker, finish, mean_over_seeds, parser, setup, timed
from measures import (contact_frames, eye_aspect, face_box_crops, flicker, head_motion_only, landmark_jitter,
                      mouth_box_crops, person_masks,
                      mouth_opening, padded_square, pearson, square_around, teeth_fraction, teeth_scores,
                      warp_error, write_sheet, write_zoom, yaw_ratio)

PORTRAITS = ("obama", "biden", "audrey", "walter", "queen")   # one image per validation person
CROSS_DRIVER = ("cap12", 410, 560)                             # media, first frame, end
TEETH_DRIVER = ("cap13", 80, 230)                             # media, first frame, end (see the doc)
SELF_CLIP = ("cap13", 360, 380, 580)                           # media, reference frame, window
SELF_HARD = 100                                                # its reference with the eyes shut
DRIVER_MOUTH = "self_driver_mouth"                             # the self clip with the driver's mouth
ZOOM = 192                                                     # contact_zoom.png tile side
SIDE = 512                                                     # cross portraits: SIDE x SIDE
CONTEXT = 2.2                                                  # their canvas >= this x the face box
TILE = 128                                                     # contact sheet tile height
VIEW = 2.5                                                     # its tiles: this x the face's extent


@dataclass
class Clip:
    name: str            # "cross:obama" / "teeth:obama" / "self:cap13" / "self_driver_mouth:cap13"
    mode: str            # cross | self
    overrides: dict      # PipelineConfig fields replaced for this clip (mouth_source)
    source: object       # Video, 1 frame
    driving: object      # Video
    real: bool           # driving frames are the ground truth (self)
    src_desc: np.ndarray  # (128,) dlib descriptor of the source
    drv_lmk: np.ndarray   # (F, 68, 2) dlib landmarks of the driver, NaN where none
    drv_track: dict       # project tracker output on the driver
    show: list            # 4 driver frame indices for the contact sheet
    views: tuple          # contact sheet boxes (l, t, r, b): source / results, driver
    src_lmk: np.ndarray   # (68, 2) dlib landmarks of the source (NaN if none)
    drv: dict             # the driver's own measures: teeth (F,), jitter, real_warp (self)


def build_clips(args, face, tracker, self_mouth: str | None = "none", driver_mouth: str = "driver") -> list[Clip]:
    """The clips of the module doc; ``self_mouth``: the self clip's mouth_source (None: a
    PipelineConfig without one, the self clip runs once as configured); ``driver_mouth``: the
    labelled self clip's, with the driver's mouth pixels ("learned" refines them)."""
    from expportrait.data.media import MEDIA, load_split, names_of, person_of
    from expportrait.data.video import Video, read_source
    from expportrait.errors import UserError

    split = load_split(args.split)
    for name in (*args.portraits, CROSS_DRIVER[0], TEETH_DRIVER[0], SELF_CLIP[0]):
        if person_of(name) not in split["validation"]:
            raise UserError(f"{name} ({person_of(name)}) is not a validation identity of the split")
    left = {MEDIA[n].person for n in names_of("validation", "image", split)} - {person_of(p) for p in args.portraits}
    if left:
        print(f"note: validation people with images but no cross portrait: {', '.join(sorted(left))}")

    drivers = {}                                   # each driver is analysed once

    def clip(name, mode, src_img, frames, fps, overrides=None):
        frames = frames[:args.max_frames] if args.max_frames else frames
        desc = face.descriptor(src_img)
        if desc is None:
            raise UserError(f"{name}: dlib finds no face in the source")
        key = "self" if mode == "self" else name.split(":", 1)[0]      # one driver per clip kind
        if key not in drivers:
            lmk = face.landmarks68_video(frames)
            drv = {"teeth": teeth_fraction(frames, lmk), "jitter": landmark_jitter(lmk),
                   "real_warp": warp_error(frames, frames, lmk) if mode == "self" else None}
            drivers[key] = lmk, tracker(frames, fps), drv
        lmk, track, drv = drivers[key]
        print(f"{name}: source {src_img.shape[1]}x{src_img.shape[0]}, {len(frames)} driver frames, "
              f"dlib face in {np.isfinite(lmk[:, 0, 0]).mean():.0%}, driver teeth >= 0.15 in "
              f"{np.mean(np.nan_to_num(drv['teeth']) >= 0.15):.0%}", flush=True)
        src_lmk = face.landmarks68(src_img)
        src_lmk = np.full((68, 2), np.nan) if src_lmk is None else src_lmk
        views = (square_around(src_lmk, VIEW, *src_img.shape[:2]),
                 square_around(np.nanmean(lmk, 0), VIEW, *frames.shape[1:3]))
        return Clip(name, mode, overrides or {}, Video(src_img[None], fps, None), Video(frames, fps, None),
                    mode == "self", desc, lmk, track, contact_frames(lmk), views, src_lmk, drv)

    s = args.stride
    portraits = {p: padded_square(read_source(f"sample:{p}").frames[0], face, SIDE, CONTEXT)
                 for p in args.portraits}
    clips = []
    for kind, (media, a, b) in (("cross", CROSS_DRIVER), ("teeth", TEETH_DRIVER)):
        drv = read_source(f"sample:{media}", start=a, max_frames=b - a)
        clips += [clip(f"{kind}:{p}", "cross", img, drv.frames[::s], drv.fps / s) for p, img in portraits.items()]
    me = read_source(f"sample:{SELF_CLIP[0]}")
    self_args = (me.frames[SELF_CLIP[1]], me.frames[SELF_CLIP[2]:SELF_CLIP[3]:s], me.fps / s)
    if self_mouth is not None:                     # the headline without the driver's mouth pixels
        clips.append(clip(f"self:{SELF_CLIP[0]}", "self", *self_args, {"mouth_source": self_mouth}))
        clips.append(clip(f"{DRIVER_MOUTH}:{SELF_CLIP[0]}", "self", *self_args, {"mouth_source": driver_mouth}))
        clips.append(clip(f"self_hard:{SELF_CLIP[0]}", "self", me.frames[SELF_HARD], *self_args[1:],
                          {"mouth_source": self_mouth}))
    else:
        print("note: PipelineConfig has no mouth_source: the self clip runs as configured, once")
        clips.append(clip(f"self:{SELF_CLIP[0]}", "self", *self_args))
    return clips


def judge(frames: np.ndarray, clip: Clip, face, tracker, warp_stats=None, head=None) -> tuple[dict, np.ndarray]:
    """Result frames (F, H, W, 3) of ``clip`` -> (its metrics (see the module doc), the result's
    dlib landmarks (F, 68, 2)); ``warp_stats``: the result's (``min_jacobian`` (F,)); ``head``:
    (the source fit's 68 landmarks (68, 2), the driven ones (F, 68, 2)) or None (no jitter_floor)."""
    from expportrait.errors import UserError
    from expportrait.metrics import motion
    from expportrait.detection.dlib_face import SAME_PERSON_DISTANCE
    from expportrait.metrics.image import psnr, ssim

    lmk, desc = face.analyze_video(frames)                                  # (F, 68, 2), (F, 128)
    dist = np.linalg.norm(desc - clip.src_desc[None], axis=-1)              # NaN where no face
    both = np.isfinite(lmk[:, 0, 0]) & np.isfinite(clip.drv_lmk[:, 0, 0])
    try:
        p, d = tracker(frames, clip.driving.fps), clip.drv_track
        valid = np.asarray(p["valid"], bool) & np.asarray(d["valid"], bool)
        aed, apd = motion.aed(p["expression"], d["expression"], valid), motion.apd(p["pose"], d["pose"], valid)
    except UserError:                                                       # no face to track
        aed = apd = None
    out = {"identity_frac": float(np.mean(np.nan_to_num(dist, nan=np.inf) < SAME_PERSON_DISTANCE)),
           "dlib_distance": float(np.nanmean(dist)) if np.isfinite(dist).any() else None,
           "mouth_corr": pearson(mouth_opening(lmk), mouth_opening(clip.drv_lmk)),
           "yaw_corr": pearson(yaw_ratio(lmk), yaw_ratio(clip.drv_lmk)),
           "found_frac": float(both.mean()),
           "aed": aed, "apd": apd,
           **teeth_scores(teeth_fraction(frames, lmk), clip.drv["teeth"], mouth_opening(clip.drv_lmk)),
           "eye_corr": pearson(eye_aspect(lmk), eye_aspect(clip.drv_lmk)),
           "jitter_ratio": float(np.float64(landmark_jitter(lmk)) / clip.drv["jitter"]),
           "flicker": flicker(frames, lmk),
           "background_flicker": flicker(frames, lmk, exclude=person_masks(frames)),
           "jitter_floor": None if head is None else float(
               np.float64(landmark_jitter(face.landmarks68_video(head_motion_only(clip.source.frames[0], *head))))
               / clip.drv["jitter"]),
           "min_jacobian": min_finite((warp_stats or {}).get("min_jacobian"))}
    if clip.real:
        ok = np.isfinite(clip.drv_lmk[:, 0, 0])
        real, cut = clip.driving.frames[ok], clip.drv_lmk[ok]
        a, b = face_box_crops(frames[ok], cut), face_box_crops(real, cut)
        ma, mb = mouth_box_crops(frames[ok], cut), mouth_box_crops(real, cut)
        out.update(psnr=psnr(a, b).mean, ssim=ssim(a, b).mean, box_frac=float(ok.mean()),
                   mouth_psnr=psnr(ma, mb).mean, mouth_ssim=ssim(ma, mb).mean,
                   warp_error=warp_error(frames, clip.driving.frames, clip.drv_lmk),
                   real_warp_error=clip.drv["real_warp"])
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in out.items()}, lmk


def mean_of(xs: list) -> float | None:
    xs = [x for x in xs if x is not None]
    return float(np.mean(xs)) if xs else None


def min_finite(xs) -> float | None:
    """The least finite number of ``xs`` (an array, or a list with Nones), None if there is none."""
    xs = np.asarray([np.nan if x is None else x for x in np.ravel(xs if xs is not None else [])], float)
    return float(xs[np.isfinite(xs)].min()) if np.isfinite(xs).any() else None


SELF_KEYS = ("psnr", "ssim", "mouth_psnr", "mouth_ssim", "warp_error", "real_warp_error", "aed", "apd",
             "mouth_corr", "yaw_corr", "eye_corr", "jitter_ratio", "identity_frac", "found_frac")
TEETH_KEYS = ("teeth_ratio", "teeth_corr", "teeth_frames", "eye_corr", "jitter_ratio", "jitter_floor", "flicker",
              "background_flicker", "mouth_corr", "identity_frac")


def summarise(per_clip: dict[str, dict]) -> dict:
    """{clip name: metrics} (one seed) -> the flat per-engine record (see the module doc)."""
    def part(kind):
        return {k.split(":", 1)[1]: v for k, v in per_clip.items() if k.split(":", 1)[0] == kind}
    cross, teeth = part("cross"), part("teeth")
    me = next(iter(part("self").values()), {})
    me_dm = next(iter(part(DRIVER_MOUTH).values()), {})
    hard = next(iter(part("self_hard").values()), {})

    def mean(key, clips=cross):
        return mean_of([v.get(key) for v in clips.values()])
    fr = [v["identity_frac"] for v in cross.values()]
    ratios = [v["teeth_ratio"] for v in teeth.values() if v.get("teeth_ratio") is not None]
    return {"identity_frac": float(np.mean(fr)) if fr else None,
            "identity_min_frac": float(np.min(fr)) if fr else None,
            **{k: mean(k) for k in ("mouth_corr", "yaw_corr", "aed", "apd", "found_frac", "dlib_distance",
                                    "eye_corr", "jitter_ratio", "jitter_floor", "flicker",
                                    "background_flicker")},
            **{f"teeth_{k.removeprefix('teeth_')}": mean(k, teeth) for k in TEETH_KEYS},
            "teeth_ratio": mean_of([min(r, 1.0) for r in ratios]) if ratios else None,   # capped: see the doc
            "teeth_ratio_min": min(ratios) if ratios else None,
            **{f"self_{k}": me.get(k) for k in SELF_KEYS},
            **{f"self_{k}_driver_mouth": me_dm.get(k) for k in ("psnr", "ssim", "mouth_psnr", "mouth_ssim",
                                                                "warp_error")},
            **{f"self_hard_{k}": hard.get(k) for k in ("psnr", "ssim", "eye_corr", "min_jacobian")},
            "min_jacobian": min_finite([v.get("min_jacobian") for v in per_clip.values()]),
            "sec_per_frame": mean_of([v.get("sec_per_frame") for v in per_clip.values()]),
            **{f"identity:{k}": v["identity_frac"] for k, v in cross.items()}}


def main() -> None:
    from expportrait.data.media import SPLIT_FILE
    from expportrait.engines import ENGINE_NAMES

    ap = parser(__doc__, out="out/unseen")
    ap.add_argument("--engines", "--variants", dest="engines", default=",".join(ENGINE_NAMES),
                    help="comma list (default: engines.ENGINE_NAMES); --variants is its old name")
    ap.add_argument("--portraits", default=",".join(PORTRAITS), help="cross sources (validation images)")
    ap.add_argument("--stride", type=int, default=4, help="take every k-th frame of the windows")
    ap.add_argument("--max-frames", type=int, default=None, help="cut the windows (after --stride)")
    ap.add_argument("--seeds", default="0", help="comma list; seed-dependent engines report the mean")
    ap.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the shipped demo)")
    ap.add_argument("--steps", type=int, default=None, help="sampler steps (default: the checkpoint's)")
    ap.add_argument("--split", default=str(SPLIT_FILE), help="identity split file")
    ap.add_argument("--synthesize", action="store_true",
                    help="warp_first with the driver's mouth composite refined by the generator "
                         "(mouth_source='learned')")
    ap.add_argument("--no-align", action="store_true",
                    help="ablation: self-mode warp results without the landmark alignment (align_landmarks)")
    ap.add_argument("--merge", default=None,
                    help="a previous run's --json: its engines not run now are kept in the table "
                         "(e.g. rerun one engine after a change; the windows must be the same)")
    args = setup(ap.parse_args())
    args.engines = [v.strip() for v in args.engines.split(",") if v.strip()]
    args.portraits = [p.strip() for p in args.portraits.split(",") if p.strip()]
    args.seeds = [int(x) for x in args.seeds.split(",")]
    bad = set(args.engines) - set(ENGINE_NAMES)
    if bad:
        ap.error(f"unknown engines {sorted(bad)}; engines.ENGINE_NAMES = {', '.join(ENGINE_NAMES)}")

    from expportrait.data.video import write_video
    from expportrait.detection.dlib_face import DlibFace
    from expportrait.engines import is_stochastic
    from expportrait.errors import UserError
    from expportrait.pipeline import ReenactPipeline
    from expportrait.tracking.track import project_tracker

    out = Path(args.out)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    face, tracker = DlibFace(), project_tracker()
    pipe = ReenactPipeline.from_checkpoint(args.checkpoint)
    pipe.tracker = MemoTracker(pipe.tracker.cfg, pipe.head)   # every engine reuses the same fits
    base_cfg = replace(pipe.config, align_landmarks=pipe.config.align_landmarks and not args.no_align,
                       **({"mouth_source": "learned"} if args.synthesize else {}))
    mouths = {"cross": getattr(base_cfg, "mouth_source", None)}   # the self headline: no driver pixels
    mouths["self"] = mouths["cross"] if mouths["cross"] in (None, "source", "none") else "none"
    clips = build_clips(args, face, tracker, mouths["self"], "learned" if args.synthesize else "driver")
    default = base_cfg.engine                  # run first: its first clip is the end-to-end timing
    engines = sorted(args.engines, key=lambda v: v != default)
    results, sheet, zoom, e2e = {}, {}, {}, None
    merged = json.loads(Path(args.merge).read_text()) if args.merge else None
    now = {c.name: len(c.driving.frames) for c in clips}
    old = merged.get("clips", {}) if merged else {}          # an older file may lack the newer clips
    if merged and (any(now.get(k) != n for k, n in old.items()) or
                   any(old.get(k) != n for k, n in now.items() if k.split(":")[0] in ("cross", "self"))):
        ap.error(f"--merge {args.merge} was run on other clips: {merged.get('clips')}")
    self_mouth = next((c.overrides.get("mouth_source") for c in clips if c.name.startswith("self:")), None)
    for engine in engines:
        per_seed = {}
        for seed in args.seeds if is_stochastic(engine) else args.seeds[:1]:
            per_clip = {}
            for clip in clips:
                pipe.config = replace(base_cfg, engine=engine, **clip.overrides)
                try:
                    with timed() as t:
                        res = pipe(clip.source, clip.driving, steps=args.steps, seed=seed, mode=clip.mode)
                except UserError as exc:               # e.g. no face to track: all frames missed
                    per_clip[clip.name] = {"error": str(exc), "identity_frac": 0.0, "sec_per_frame": None}
                    print(engine, "seed", seed, clip.name, "failed:", exc, flush=True)
                    continue
                wall, F = t.seconds, len(res.frames)
                if e2e is None and engine == default:
                    e2e = {"clip": clip.name, "frames": F, "size": list(res.frames.shape[1:3]),
                           "sec_per_frame": wall / F, "timings": res.timings}
                    print("end to end", json.dumps(e2e), flush=True)
                fits = getattr(res, "fits", None) or {}
                head = ((fits["source"].landmarks68_2d[0].numpy(), fits["driven"].landmarks68_2d.numpy())
                        if "source" in fits and "driven" in fits else None)
                m, lmk = judge(res.frames, clip, face, tracker, getattr(res, "warp_stats", None), head)
                m["sec_per_frame"] = (wall - res.timings["fit_source"] - res.timings["track_driver"]) / F
                per_clip[clip.name] = m
                print(engine, "seed", seed, clip.name, json.dumps({**m, "timings": res.timings}), flush=True)
                if not per_seed:
                    sheet[(clip.name, engine)] = res.frames[clip.show]
                    if engine == default:              # the widest driver mouth's result frame
                        zoom[clip.name] = res.frames[clip.show[1]], lmk[clip.show[1]]
                    write_video(out / "videos" / f"{clip.name.replace(':', '_')}.{engine}.mp4",
                                res.frames, res.fps)
            per_seed[seed] = {"all": summarise(per_clip)}
        results[engine] = {**mean_over_seeds(per_seed)["all"], "self_mouth_source": self_mouth or "as configured"}
        if len(per_seed) > 1:
            results[engine]["seeds"] = {s: r["all"] for s, r in per_seed.items()}
        print(engine, json.dumps(results[engine]), flush=True)
    if merged:                                  # the earlier run's other engines, in ENGINE_NAMES order
        blank = dict.fromkeys(summarise({}))                    # keys an older file lacks -> None
        kept = {v: {**blank, "self_mouth_source": "as configured", **r}
                for v, r in merged["variants"].items() if v not in results}
        results = {v: results.get(v, kept.get(v)) for v in ENGINE_NAMES if v in results or v in kept}
        e2e = e2e or merged.get("end_to_end_512")
    sheet_path = write_sheet(out / "contact_sheet.png", clips, engines, sheet, TILE)
    zoom_path = write_zoom(out / "contact_zoom.png", clips, zoom, default, ZOOM) if zoom else None
    summary = {"split": str(Path(args.split).resolve()), "variants": results,
               "end_to_end_512": e2e, "contact_sheet": str(sheet_path.resolve()),
               "contact_zoom": str(zoom_path.resolve()) if zoom_path else None,
               "clips": now, "seeds": args.seeds, "mouth_source": mouths,
               "windows": {"cross": f"{CROSS_DRIVER[0]} frames {CROSS_DRIVER[1]}-{CROSS_DRIVER[2] - 1} "
                                    f"stride {args.stride}",
                           "teeth": f"{TEETH_DRIVER[0]} frames {TEETH_DRIVER[1]}-{TEETH_DRIVER[2] - 1} "
                                    f"stride {args.stride}",
                           "self": f"{SELF_CLIP[0]} reference frame {SELF_CLIP[1]}, frames "
                                   f"{SELF_CLIP[2]}-{SELF_CLIP[3] - 1} stride {args.stride}"}}
    finish(args, summary, section=readme_section(args, summary, default))


def readme_section(args, summary: dict, default: str) -> tuple:
    """The section "unseen" of benchmarks/README.md, (name, command, rows, note); the goals sit on
    the ``default`` engine's rows."""
    from expportrait.engines import ENGINE_NAMES

    def f(x, fmt="{:.3f}"):
        return "n/a" if x is None else fmt.format(x)
    res, rows, w = summary["variants"], [], summary["windows"]
    for v, r in res.items():
        r, g = {**dict.fromkeys(summarise({})), **r}, v == default       # g: the goals on this row
        per = ", ".join(f"{k.split(':')[1]} {x:.2f}" for k, x in r.items() if k.startswith("identity:"))
        rows += [(f"{v}: cross identity, dlib distance < 0.6: mean / worst portrait ({per})",
                  f"{f(r['identity_frac'])} / {f(r['identity_min_frac'])}", ">= 0.95 mean, >= 0.85 each" * g),
                 (f"{v}: cross mouth / yaw correlation with the driver (dlib face in both: {f(r['found_frac'])}); "
                  "AED / APD", f"{f(r['mouth_corr'])} / {f(r['yaw_corr'])}; {f(r['aed'])} / {f(r['apd'])}",
                  "mouth >= 0.7, yaw >= 0.8" * g),
                 (f"{v}: cross eye-aspect correlation; landmark jitter ratio to the driver (floor: the photo "
                  "moved by the head alone); flicker outside 2x the head box (grey levels; the background alone)",
                  f"{f(r['eye_corr'])}; {f(r['jitter_ratio'])} ({f(r['jitter_floor'])}); {f(r['flicker'])} "
                  f"({f(r['background_flicker'])})", ">= 0.6; <= 1.1; <= 0.5" * g),
                 (f"{v}: teeth clips ({w['teeth'].split()[0]} driving the same portraits): teeth ratio, each "
                  f"capped at 1 (worst portrait) / teeth correlation (over {f(r['teeth_frames'], '{:.0f}')} frames "
                  "showing teeth); eye correlation; jitter ratio (floor); flicker (background alone); mouth "
                  "correlation",
                  f"{f(r['teeth_ratio'])} ({f(r['teeth_ratio_min'])}) / {f(r['teeth_corr'])}; "
                  f"{f(r['teeth_eye_corr'])}; {f(r['teeth_jitter_ratio'])} ({f(r['teeth_jitter_floor'])}); "
                  f"{f(r['teeth_flicker'])} ({f(r['teeth_background_flicker'])}); "
                  f"{f(r['teeth_mouth_corr'])}",
                  ">= 0.6 / >= 0.6; >= 0.6; <= 1.1; <= 0.5; >= 0.7" * g),
                 (f"{v}: self, mouth_source {r['self_mouth_source']} ("
                  + ("may carry the driver's mouth pixels" if r["self_mouth_source"] in
                     ("auto", "driver", "as configured") else "no driver pixels") + "): face-box "
                  "PSNR / SSIM; mouth-box PSNR / SSIM; AED / APD; mouth / yaw correlation; identity",
                  f"{f(r['self_psnr'], '{:.2f}')} dB / {f(r['self_ssim'])}; {f(r['self_mouth_psnr'], '{:.2f}')} dB"
                  f" / {f(r['self_mouth_ssim'])}; {f(r['self_aed'])} / {f(r['self_apd'])}; "
                  f"{f(r['self_mouth_corr'])} / {f(r['self_yaw_corr'])}; {f(r['self_identity_frac'])}",
                  "face box >= 27.61 dB (the 27.81 of before the mouth and eyes, less 0.2)" * g),
                 (f"{v}: self_hard (reference frame {SELF_HARD}, eyes shut): face-box PSNR / SSIM; eye "
                  "correlation; least Jacobian determinant", f"{f(r['self_hard_psnr'], '{:.2f}')} dB / "
                  f"{f(r['self_hard_ssim'])}; {f(r['self_hard_eye_corr'])}; {f(r['self_hard_min_jacobian'])}",
                  "no tear (looked at); > 0" * g),
                 (f"{v}: self warping error, grey levels (the real frames' own: the floor); eye correlation; "
                  "jitter ratio", f"{f(r['self_warp_error'], '{:.2f}')} ({f(r['self_real_warp_error'], '{:.2f}')}); "
                  f"{f(r['self_eye_corr'])}; {f(r['self_jitter_ratio'])}", ""),
                 (f"{v}: self WITH the driver's mouth pixels (mouth_source driver: copies the ground truth, not "
                  "a result): face-box / mouth-box PSNR; warping error",
                  f"{f(r['self_psnr_driver_mouth'], '{:.2f}')} / {f(r['self_mouth_psnr_driver_mouth'], '{:.2f}')} "
                  f"dB; {f(r['self_warp_error_driver_mouth'], '{:.2f}')}", ""),
                 (f"{v}: least Jacobian determinant of the backward warp, every frame of every clip (n/a: no "
                  "warp stats)", f(r["min_jacobian"]), "> 0" * g),
                 (f"{v}: seconds per output frame (tracking memoised)", f(r["sec_per_frame"], "{:.2f}"), "")]
    e = summary["end_to_end_512"]
    if e:
        rows.append((f"end to end at {e['size'][1]}x{e['size'][0]}, {e['clip']}, {default}, nothing "
                     f"cached: seconds per output frame ({e['frames']} frames)", f"{e['sec_per_frame']:.2f}",
                     "<= 1 s on 2 cores"))
    flags = {"--engines": None if set(args.engines) == set(ENGINE_NAMES) else ",".join(args.engines),
             "--portraits": None if tuple(args.portraits) == PORTRAITS else ",".join(args.portraits),
             "--stride": None if args.stride == 4 else args.stride, "--max-frames": args.max_frames,
             "--seeds": None if args.seeds == [0] else ",".join(map(str, args.seeds))}
    cmd = "python benchmarks/unseen.py" + "".join(f" {k} {x}" for k, x in flags.items() if x is not None)
    cmd += "".join(f" {k}" for k, on in (("--synthesize", args.synthesize), ("--no-align", args.no_align)) if on)
    if args.merge:
        cmd += f" --merge {args.merge}"
    split = Path(summary["split"])
    root = Path(__file__).resolve().parents[1]
    split = split.relative_to(root) if split.is_relative_to(root) else split
    return ("unseen", cmd, rows, (
        f"Validation identities only ({split}). Cross: {', '.join(args.portraits)} (each edge-padded to a "
        f"square >= {CONTEXT}x its face box, {SIDE}x{SIDE}) driven by {w['cross']}; teeth: the same driven by "
        f"{w['teeth']} (smiles: teeth in 55 % of its frames); self: {w['self']}, run twice: the driver's "
        f"mouth pixels off (the headline) and on (labelled). "
        f"Mouth: inner-lip gap / eye-corner distance; yaw: nose-to-face-edge asymmetry; both from dlib's 68 "
        f"landmarks, Pearson over frames with a face in both. Self face box: the real frame's dlib "
        f"landmarks, 1.2x, at 128 px; mouth box: its 48-67, 1.5x, at 64 px. Teeth: the fraction of inner-lip "
        f"pixels brighter than 0.75x the nose and cheek skin's median luma; ratio over the frames where the "
        f"driver's is >= 0.15, correlation over its open-mouth frames. Jitter: mean |second difference| of the "
        f"68 landmarks per eye-corner distance, result / driver. Self mode moves the warp engines' frames onto "
        f"the driver's landmarks ({'off in this run' if args.no_align else 'align_landmarks'}); warp_first's "
        f"open mouth: mouth_source {summary['mouth_source']['cross']} (cross), {summary['mouth_source']['self']} "
        f"(self). Seeds {','.join(map(str, args.seeds))} (mean). Contact sheet: "
        f"{args.out}/contact_sheet.png, zoomed mouths and necks ({default}): {args.out}/contact_zoom.png."
        + (f" Engines not rerun ({', '.join(v for v in res if v not in args.engines)}) are those of "
           f"{args.merge}." if args.merge else "")))


if __name__ == "__main__":
    main()
