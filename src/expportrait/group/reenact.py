"""Every chosen face of a group photo (or video) driven, each by its own driver or all by one.

``reenact_group(pipe, source, drivers, faces)``: the steps, with what is shared shared:

1. the faces of the source's first frame are found once (``detection.faces.find_faces``, the
   numbers of ``expportrait faces`` and ``--face-index``; for a photo they are also the
   landmarks each face's fit starts from, so no face is searched for twice); ``faces`` ("all" or
   a list) is checked against them, and the number of drivers against the faces (one for all,
   or one per face in the list's order);
2. each distinct driving video is tracked once (``DriverTracks``: its landmarks and fit; keep
   one across calls to reuse them) and, when shorter than the longest, held on its last frame or
   looped (``GroupConfig.shorter``) to the longest's length;
3. per face, the single-face pipeline (``pipeline.ReenactPipeline``, mode cross: each face keeps
   its place and turns relative to it) with that face's source fit, its driver's fit and
   landmarks found in step 2 given;
4. each face's result goes into one frame at the source's resolution (``compose.Composer``: its
   change kept inside its own part of the photo, so no face drags a neighbour's pixels), once.

Cost: one source fit and one engine run per face, one tracking per driver, one composite.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from expportrait.data.video import Video
from expportrait.errors import UserError
from expportrait.group.compose import ComposeConfig, Composer, FacePlace
from expportrait.pipeline import ReenactPipeline

SHORTER = ("hold", "loop")


@dataclass(frozen=True)
class GroupConfig:
    shorter: str = "hold"        # a driver shorter than the longest: hold its last frame | loop
    compose: ComposeConfig = field(default_factory=ComposeConfig)   # the per-face parts

    def __post_init__(self):
        if self.shorter not in SHORTER:
            raise UserError(f"--shorter must be one of {', '.join(SHORTER)}, got {self.shorter!r}")


@dataclass
class GroupResult:
    frames: np.ndarray           # (F, H, W, 3) uint8 at the source's resolution
    fps: float
    faces: tuple[int, ...]       # the animated faces (``expportrait faces`` numbers them)
    drivers: tuple[int, ...]     # per face, its driver: index among the distinct driving videos
    places: list[FacePlace]      # every face found in the reference frame (the partition's)
    place_of: dict[int, int]     # face number -> its index in ``places``
    fits: dict[int, dict]        # face number -> {"source", "driven"} HeadFit of its own run
    stats: dict = field(default_factory=dict)    # ``compose.Composer.finish``'s
    timings: dict = field(default_factory=dict)  # seconds per step ("face K" per face)
    mode: str = "cross"
    reference_frame: int = 0     # source frame every face's result warps

    def info(self) -> dict:
        """The OUT.json summary."""
        return {"mode": self.mode, "frames": int(len(self.frames)), "size_hw": list(self.frames.shape[1:3]),
                "fps": self.fps, "faces": list(self.faces), "drivers": list(self.drivers),
                "stats": {k: round(v, 3) if isinstance(v, float) else v for k, v in self.stats.items()},
                "timings_s": self.timings}


# ---------------------------------------------------------------------------- the flags
def parse_faces(text) -> int | str | tuple[int, ...] | None:
    """``--face-index`` -> None (not given), K (one face: the single-face path), "all", or a
    tuple of distinct face numbers ("0,2,3"); a malformed or repeating list is a UserError."""
    if text is None or isinstance(text, int):
        return text
    s = str(text).strip()
    if s.lower() == "all":
        return "all"
    parts = [p.strip() for p in s.split(",")]
    if not all(p.isdigit() for p in parts):
        raise UserError(f"--face-index takes a face number (0 = largest), all, or a list "
                        f"such as 0,2,3; got {text!r}")
    nums = [int(p) for p in parts]
    twice = sorted({k for k in nums if nums.count(k) > 1})
    if twice:
        raise UserError(f"--face-index {text}: face {', '.join(map(str, twice))} is listed twice")
    return nums[0] if len(nums) == 1 else tuple(nums)


def resolve_faces(spec, found: int) -> tuple[int, ...]:
    """``parse_faces``' "all" or tuple, and how many faces the source shows -> the face numbers
    (a number out of range is a UserError that says how many there are)."""
    n = found
    if spec == "all":
        if not n:
            raise UserError("no face found in the source")
        return tuple(range(n))
    spec = tuple(int(k) for k in spec)
    if any(k < 0 for k in spec) or len(set(spec)) < len(spec) or not spec:
        raise UserError(f"--face-index takes distinct face numbers >= 0, got {','.join(map(str, spec))}")
    from expportrait.detection.faces import choose
    for k in spec:                           # the single-face path's one-line answer
        choose(range(n), k)
    return tuple(spec)


def check_drivers(n_drivers: int, n_faces: int) -> None:
    """One driver (every face follows it) or one per face, else a UserError."""
    if n_drivers != 1 and n_drivers != n_faces:
        raise UserError(f"{n_drivers} --driving videos for {n_faces} face{'s' if n_faces != 1 else ''}: "
                        f"give one (every face follows it) or one per face, in the order of --face-index")


def read_drivers(paths: list[str], max_frames: int | None = None, fps: float | None = None) -> list[Video]:
    """The driving videos (the same path read once: the same ``Video``), each resampled to ``fps``
    (default: the first's frame rate; the same duration, audio in sync)."""
    from expportrait.data.video import read_source, resample_fps
    read = {}
    for p in paths:
        if p not in read:
            v = read_source(p, max_frames=max_frames)
            if len(v.frames) < 2:
                raise UserError(f"the driving input {p} must be a video (got {len(v.frames)} frame)")
            read[p] = v
    rate = fps if fps is not None else read[paths[0]].fps
    read = {p: resample_fps(v, rate) for p, v in read.items()}
    return [read[p] for p in paths]


def frame_index(m: int, n: int, shorter: str = "hold") -> np.ndarray:
    """(n,) int: which of a driver's ``m`` frames each of ``n`` output frames shows (``shorter``:
    hold the last one, or loop)."""
    t = np.arange(n)
    return np.minimum(t, m - 1) if shorter == "hold" else t % m


# ---------------------------------------------------------------------------- the drivers
class DriverTracks:
    """Each driving video's landmarks and fit, found once (for one pipeline configuration):
    ``get(pipe, video)`` -> (LandmarkTrack, HeadFit). Keep one across calls to reuse them."""

    def __init__(self):
        self._memo = {}
        self.seconds = 0.0       # spent tracking

    def get(self, pipe: ReenactPipeline, video: Video):
        hit = self._memo.get(id(video))
        if hit is None or hit[0] is not video:
            t = time.perf_counter()
            lmk = pipe.detect_driver(video)
            hit = self._memo[id(video)] = (video, lmk, pipe.track_driver(video, lmk))
            self.seconds += time.perf_counter() - t
        return hit[1], hit[2]


def _lengthened(video: Video, lmk, fit, n: int, shorter: str):
    """A driver, its LandmarkTrack and fit made ``n`` frames long (``frame_index``)."""
    import torch

    from expportrait.detection.landmarks import LandmarkTrack
    m = len(video.frames)
    if m == n:
        return video, lmk, fit
    idx = frame_index(m, n, shorter)
    return (Video(video.frames[idx], video.fps, video.path),
            LandmarkTrack(lmk.points[idx], lmk.valid[idx], lmk.size), fit.frames(torch.as_tensor(idx)))


def driving_for_outputs(drivers: list[Video], n: int, shorter: str = "hold") -> Video:
    """The drivers as one ``Video`` for ``outputs.write_outputs``: the distinct ones (``n``
    frames each, ``frame_index``) stacked top to bottom at the first one's width (the compare
    video's driver panel), with the audio of the first longest."""
    import cv2
    uniq = list({id(d): d for d in drivers}.values())
    W = uniq[0].frames.shape[2]
    rows = []
    for d in uniq:
        f = d.frames[frame_index(len(d.frames), n, shorter)]
        if f.shape[2] != W:
            h = max(2, round(f.shape[1] * W / f.shape[2]))
            f = np.stack([cv2.resize(x, (W, h), interpolation=cv2.INTER_AREA) for x in f])
        rows.append(f)
    longest = max(uniq, key=lambda d: len(d.frames))
    return Video(np.concatenate(rows, 1), uniq[0].fps, longest.path)


# ---------------------------------------------------------------------------- all steps
def reenact_group(pipe: ReenactPipeline, source: Video, drivers: list[Video], faces="all",
                  cfg: GroupConfig = GroupConfig(), *, steps: int | None = None, seed: int = 0,
                  mode: str | None = None, tracks: DriverTracks | None = None) -> GroupResult:
    """source: photo (1 frame) or video, (F_s, H, W, 3) uint8; drivers: one driving video, or one
    per face in the order of ``faces`` ("all", or face numbers: a tuple, or ``parse_faces``'
    text) -> GroupResult with max(len(driver)) frames (H, W) (see the module doc). ``mode``:
    auto or cross (self, absolute pose, would move a face to where its driver is)."""
    from expportrait.detection.faces import find_faces, iou
    from expportrait.detection.landmarks import LandmarkTrack

    times, t0 = {}, time.perf_counter()
    mode = mode or pipe.config.mode
    if mode == "self":
        raise UserError("--mode self puts a face where its driver's is (absolute pose); "
                        "the faces of a group use cross (relative pose)")
    faces = parse_faces(faces) if isinstance(faces, str) else faces
    if isinstance(faces, int):
        faces = (faces,)
    if not drivers:
        raise UserError("give a driving video")
    for d in drivers:
        pipe.check_inputs(source, d)
    detector = pipe.tracker.cfg.face_detector
    r = pipe.config.reference_frame
    found = find_faces(source.frames[0], detector)                      # the numbering
    faces = resolve_faces(faces if faces == "all" else tuple(faces), len(found))
    check_drivers(len(drivers), len(faces))
    here = found if r == 0 else find_faces(source.frames[r], detector)  # the frame warped
    places = [FacePlace.from_points(f.points) for f in here]
    place_of = {}
    for k in faces:             # a face's place: the face of the reference frame over it
        best = max(range(len(here)), key=lambda j: iou(here[j].box, found[k].box), default=None)
        if best is None or iou(here[best].box, found[k].box) < 0.3:
            places.append(FacePlace.from_points(found[k].points))
            best = len(places) - 1
        place_of[k] = best
    times["find_faces"] = round(time.perf_counter() - t0, 3)

    tracks = tracks if tracks is not None else DriverTracks()
    n = max(len(d.frames) for d in drivers)
    shared = {}
    for d in drivers:                                                   # 2
        if id(d) not in shared:
            t = time.perf_counter()
            shared[id(d)] = _lengthened(d, *tracks.get(pipe, d), n, cfg.shorter)
            times[f"driver {len(shared) - 1}"] = round(time.perf_counter() - t, 3)
    order = {i: list(shared).index(id(d)) for i, d in enumerate(drivers)}

    t = time.perf_counter()
    composer = Composer(source.frames[r], places, cfg.compose)
    times["partition"] = round(time.perf_counter() - t, 3)
    own, fits, blend = pipe.tracker.cfg, {}, 0.0
    H, W = source.frames.shape[1:3]
    try:
        for i, k in enumerate(faces):                                   # 3
            t = time.perf_counter()
            pipe.tracker.cfg = replace(own, face_index=k)
            d = drivers[i if len(drivers) > 1 else 0]
            video, lmk, fit = shared[id(d)]
            source_fit = None
            try:
                if len(source.frames) == 1:   # a photo: the face's landmarks found in step 1
                    marks_k = LandmarkTrack(found[k].points[None].astype(np.float32), np.ones(1, bool), (H, W))
                    stages = pipe.config.source_stages or pipe.engine.source_stages
                    source_fit = pipe.tracker.fit(source.frames, source.fps, "source", stages=stages,
                                                  face_index=k, landmarks=marks_k)
                res = pipe(source, video, steps=steps, seed=seed, mode="cross", source_fit=source_fit,
                           driving_fit=fit, driving_landmarks=lmk)
            except UserError as exc:
                raise UserError(f"face {k}: {exc}") from None
            times[f"face {k}"] = round(time.perf_counter() - t, 3)
            t = time.perf_counter()
            composer.add(place_of[k], res.frames)                      # 4
            fits[k] = {"source": res.fits["source"], "driven": res.fits["driven"]}
            del res
            blend += time.perf_counter() - t
    finally:
        pipe.tracker.cfg = own
    t = time.perf_counter()
    frames, stats = composer.finish()
    times["composite"] = round(blend + time.perf_counter() - t, 3)
    times["total"] = round(time.perf_counter() - t0, 3)
    return GroupResult(frames=frames, fps=float(drivers[0].fps), faces=tuple(faces),
                       drivers=tuple(order[i if len(drivers) > 1 else 0] for i in range(len(faces))),
                       places=places, place_of=place_of, fits=fits, stats=stats, timings=times,
                       reference_frame=r)
