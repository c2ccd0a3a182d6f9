"""The benchmarks' harness: shared flags, timing, the last-line JSON, the README section writer.

Every script under ``benchmarks/`` is run as ``python benchmarks/NAME.py``, so this folder is on
``sys.path`` and a script imports the harness as a sibling module (no path manipulation)::

    from common import finish, parser, setup

    ap = parser(__doc__, out="out/benchmarks/NAME")      # + the script's own flags
    args = setup(ap.parse_args())                        # --threads
    ...
    finish(args, summary, section=("NAME", command, rows, note))

The shared flags:

- ``--threads N``: torch CPU threads (``torch.set_num_threads``) and ``OMP_NUM_THREADS`` /
  ``MKL_NUM_THREADS`` for the subprocesses a benchmark starts; default (or 0): as they are,
  unless the script names its own default;
- ``--no-readme``: leave ``benchmarks/README.md`` alone (by default a run rewrites its section);
- ``--out DIR``: the run's files (each script's default): the summary as ``DIR/summary.json`` and
  whatever the script writes there (videos, images);
- ``--json FILE``: the summary written here as well.

``finish`` prints the summary as one JSON object on the last output line. Also here: ``timed``
and ``repeat_time`` (timing), ``load_average``, ``write_section`` (the README section format),
``mean_over_seeds`` (seed-dependent engines) and ``MemoTracker`` (the pipeline's tracker with
memoised fits, for benchmarks that call the pipeline on the same clips many times). Measuring
code shared by several benchmarks is in ``measures.py``; no benchmark imports another one or a
test file.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import statistics
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from expportrait.tracking.gaze import Tracker

README = Path(__file__).parent / "README.md"
HEADER = """# Benchmarks

Each script prints ratios measured side by side in one run and rewrites its own section below
(between its markers). Every script shares the harness flags of `benchmarks/common.py`:
`--threads N` (torch threads, and OMP/MKL threads for its subprocesses), `--no-readme` (leave this
file alone: smoke runs), `--out DIR` (the run's files; the summary as `DIR/summary.json`) and
`--json FILE` (the summary here as well); and each prints one JSON object, its summary, as its
last output line. Machine: the project's 2-core CPU machines unless a section says otherwise;
the 1-minute load average at the time is recorded because other jobs on a shared machine slow
everything down.
"""


# ---------------------------------------------------------------------------- flags
def parser(description: str, *, out: str | None = None, threads: int | None = None) -> argparse.ArgumentParser:
    """An ArgumentParser (description: the first line of ``description``, e.g. the module doc)
    with the shared flags; ``out`` / ``threads``: this benchmark's defaults of ``--out`` and
    ``--threads`` (None: threads as they are)."""
    ap = argparse.ArgumentParser(description=description.strip().splitlines()[0])
    g = ap.add_argument_group("harness (benchmarks/common.py)")
    g.add_argument("--threads", type=int, default=threads,
                   help="torch CPU threads, and OMP/MKL threads of subprocesses (default: "
                        + (f"{threads})" if threads else "as they are; 0 the same)"))
    g.add_argument("--no-readme", action="store_true", help="do not rewrite this benchmark's README section")
    g.add_argument("--out", default=out, help=f"folder for the run's files and summary.json (default: {out})")
    g.add_argument("--json", default=None, help="also write the final JSON object to this file")
    return ap


def setup(args: argparse.Namespace) -> argparse.Namespace:
    """Apply the shared flags that act before the run (``--threads``); -> ``args``."""
    n = getattr(args, "threads", None)
    if n and n > 0:
        import torch
        torch.set_num_threads(n)
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(n)
    return args


def finish(args: argparse.Namespace, summary: dict, section: tuple | None = None) -> dict:
    """End a run: the README section ``section`` = (name, command, rows, note) unless
    ``--no-readme`` (or ``section`` is None), the summary to ``--out``/summary.json and ``--json``,
    then the summary printed as one JSON object on the last output line. -> ``summary``."""
    line = json.dumps(summary)
    if section is not None and not getattr(args, "no_readme", False):
        name, command, rows, *note = section
        write_section(name, command, rows, *note)
    if getattr(args, "out", None):
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "summary.json").write_text(line + "\n")
    if getattr(args, "json", None):
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(line + "\n")
    print(line, flush=True)
    return summary


# ---------------------------------------------------------------------------- timing
@contextmanager
def timed():
    """``with timed() as t: ...`` -> ``t.seconds`` (wall clock) after the block."""
    r, t = SimpleNamespace(seconds=float("nan")), time.perf_counter()
    try:
        yield r
    finally:
        r.seconds = time.perf_counter() - t


def repeat_time(fn, repeats: int, warmup: int = 2, clock=time.perf_counter, reduce=statistics.median) -> float:
    """``fn()`` run ``warmup`` times, then timed ``repeats`` times -> ``reduce`` of the seconds
    (median by default; ``min``: least disturbed by other load)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = clock()
        fn()
        times.append(clock() - t)
    return reduce(times)


def load_average() -> float:
    """The 1-minute load average (NaN where the system has none)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


# ---------------------------------------------------------------------------- README
def write_section(name: str, command: str, rows: list[tuple[str, str, str]], note: str = "") -> None:
    """rows: (measure, value, goal). Replaces the section ``name`` in benchmarks/README.md."""
    text = README.read_text() if README.exists() else HEADER
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    lines = [start, f"## {name}", "", f"`{command}` — measured {datetime.date.today()}, "
             f"{os.cpu_count()} CPUs, load average {load_average():.1f}.", ""]
    if note:
        lines += [note, ""]
    lines += ["| measure | value | goal |", "|---|---|---|"]
    lines += [f"| {m} | {v} | {g} |" for m, v, g in rows]
    lines.append(end)
    block = "\n".join(lines)
    if start in text:
        text = text[:text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    README.write_text(text)


# ---------------------------------------------------------------------------- seeds
def mean_over_seeds(per_seed: dict) -> dict:
    """{seed: {"self": {metric: x}, "cross": {...}}} -> the same nesting with each metric's mean
    over the seeds (None where any seed has none), plus "seeds": per_seed when there are several."""
    runs = list(per_seed.values())
    out = {part: {k: (None if any(r[part][k] is None for r in runs) else
                      sum(r[part][k] for r in runs) / len(runs)) for k in runs[0][part]}
           for part in runs[0]}
    if len(runs) > 1:
        out["seeds"] = per_seed
    return out


# ---------------------------------------------------------------------------- tracking
def frames_digest(frames: np.ndarray) -> str:
    """sha1 of the frames' bytes (C order)."""
    return hashlib.sha1(np.ascontiguousarray(frames)).hexdigest()


class MemoTracker(Tracker):
    """The pipeline's ``tracking.gaze.Tracker`` answering a repeated call from memory: ``fit`` keyed
    by (the frames' sha1 and shape, fps, the effective TrackConfig: ``stages`` / ``face_index``
    applied), ``detect`` by (the frames' sha1 and shape, face_index, cfg.face_detector). The
    landmarks handed to ``fit`` are not part of its key (the same frames' landmarks are the same).
    Install it in a pipeline: ``pipe.tracker = MemoTracker(pipe.tracker.cfg, pipe.head)``; every
    engine then reuses the fits and landmarks the pipeline itself would make (direct_copy's
    personalized driver fit included). ``hits`` / ``misses`` count the calls."""

    def __init__(self, cfg, head):
        super().__init__(cfg, head)
        self._fits: dict = {}
        self._found: dict = {}
        self.hits = self.misses = 0

    def _memo(self, store: dict, key, make):
        if key in store:
            self.hits += 1
        else:
            self.misses += 1
            store[key] = make()
        return store[key]

    def effective_cfg(self, stages=None, face_index=None):
        """The TrackConfig ``fit`` runs with (``Tracker.fit``'s overrides applied)."""
        from dataclasses import replace
        cfg = self.cfg if face_index is None else replace(self.cfg, face_index=face_index)
        return cfg if not stages else replace(cfg, stages=tuple(stages))

    def detect(self, frames: np.ndarray, face_index: int = 0, what: str | None = None):
        key = (frames_digest(frames), frames.shape, int(face_index), self.cfg.face_detector)
        return self._memo(self._found, key, lambda: super(MemoTracker, self).detect(frames, face_index, what))

    def fit(self, frames: np.ndarray, fps: float, what: str | None = "video", *, stages=None,
            face_index=None, landmarks=None):
        key = (frames_digest(frames), frames.shape, float(fps), self.effective_cfg(stages, face_index))
        return self._memo(self._fits, key, lambda: super(MemoTracker, self).fit(
            frames, fps, what, stages=stages, face_index=face_index, landmarks=landmarks))
