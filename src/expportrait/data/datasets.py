"""Clip datasets for generator training: a manifest folder of prepared clips.

On-disk format (version 1), written by ``expportrait prepare`` and by :func:`write_clip` /
:func:`write_manifest`::

    ROOT/
      manifest.json
      clips/<name>.safetensors      one file per clip

``manifest.json``::

    {"format": "expportrait-clips", "version": 1,
     "resolution": [H, W], "frames_per_clip": F, "fps": 25.0,
     "clips": [{"file": "clips/000000.safetensors", "frames": F, "source": "video.mp4",
                "frame_range": [start, stop], "ref_frame": 12, "has_appearance": false}, ...]}

Each clip file holds uint8 tensors (all images RGB, channel first)::

    frames        (F, 3, H, W)  video frames, 0..255
    pose_normals  (F, 3, H, W)  driving normal maps N^D, normal in [-1, 1] stored as (n+1)/2*255
    ref_image     (3, H, W)     reference frame (appearance source)
    ref_normal    (3, H, W)     reference normal map N^R, same encoding as pose_normals
    appearance    (F, 3, H, W)  optional per-frame appearance condition

and its safetensors metadata ``{"clip": "<json>"}`` repeats the manifest entry (source video,
frame range, reference frame index). Clips in one manifest share ``resolution``; ``frames`` may
vary per clip (``frames_per_clip`` is the shortest); a training run needs every clip to have at
least its ``num_frames`` (times the frame stride).

:class:`ClipDataset` returns float tensors in [-1, 1]. Its items are addressed by *sample keys*
``key = epoch * len(dataset) + clip_index``; the temporal crop of a key is a pure function of
``(seed, key)``, so the data seen at any training step is reproducible from the step alone
(see :class:`StepBatchSampler`).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from expportrait.errors import UserError, atomic_path

FORMAT = "expportrait-clips"
VERSION = 1
MANIFEST = "manifest.json"
_REQUIRED = ("frames", "pose_normals", "ref_image", "ref_normal")


# ----------------------------------------------------------------------------- writing

Array = np.ndarray | torch.Tensor


def write_clip(root: str | Path, name: str, frames: Array, pose_normals: Array, ref_image: Array,
               ref_normal: Array, appearance: Array | None = None, *, source: str = "",
               frame_range: tuple[int, int] | None = None, ref_frame: int = 0) -> dict:
    """Write ``ROOT/clips/<name>.safetensors`` atomically and return its manifest entry.

    frames, pose_normals, appearance: (F, 3, H, W) uint8; ref_image, ref_normal: (3, H, W) uint8.
    """
    tensors = {"frames": frames, "pose_normals": pose_normals, "ref_image": ref_image,
               "ref_normal": ref_normal}
    if appearance is not None:
        tensors["appearance"] = appearance
    tensors = {k: torch.as_tensor(np.asarray(v)).contiguous() for k, v in tensors.items()}
    for k, v in tensors.items():
        if v.dtype != torch.uint8:
            raise UserError(f"clip {name}: {k} must be uint8, got {v.dtype}")
    f, c, h, w = tensors["frames"].shape
    if c != 3:
        raise UserError(f"clip {name}: frames must be (F, 3, H, W), "
                        f"got {tuple(tensors['frames'].shape)}")
    for k, v in tensors.items():
        want = (3, h, w) if k.startswith("ref_") else (f, 3, h, w)
        if tuple(v.shape) != want:
            raise UserError(f"clip {name}: {k} has shape {tuple(v.shape)}, expected {want}")
    entry = {"file": f"clips/{name}.safetensors", "frames": int(f), "resolution": [int(h), int(w)],
             "source": str(source), "frame_range": list(frame_range or (0, f)),
             "ref_frame": int(ref_frame), "has_appearance": appearance is not None}
    path = Path(root) / entry["file"]
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"clip": json.dumps(entry)})
    return entry


def write_manifest(root: str | Path, clips: list[dict], *, fps: float,
                   frames_per_clip: int | None = None) -> Path:
    """Write ``ROOT/manifest.json`` for the clip entries returned by :func:`write_clip`."""
    if not clips:
        raise UserError("a manifest needs at least one clip")
    res = {tuple(c["resolution"]) for c in clips}
    if len(res) != 1:
        raise UserError(f"all clips of a manifest must share one resolution, got {sorted(res)}")
    manifest = {"format": FORMAT, "version": VERSION, "resolution": list(res.pop()),
                "frames_per_clip": int(frames_per_clip or min(c["frames"] for c in clips)),
                "fps": float(fps), "clips": [{k: v for k, v in c.items() if k != "resolution"}
                                             for c in clips]}
    path = Path(root) / MANIFEST
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    return path


# ----------------------------------------------------------------------------- reading

def read_manifest(root: str | Path) -> dict:
    """Load and validate ``ROOT/manifest.json``; every problem is a one-line ``UserError``."""
    root = Path(root)
    path = root / MANIFEST
    if not root.is_dir():
        raise UserError(f"dataset folder not found: {root}")
    if not path.is_file():
        raise UserError(f"{root} is not a clip dataset: missing {MANIFEST} "
                        "(run `expportrait prepare`)")
    try:
        m = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        found = m.get("format") if isinstance(m, dict) else None
        raise UserError(f"{path}: not an {FORMAT} manifest (format={found!r})")
    if m.get("version") != VERSION:
        raise UserError(f"{path}: unsupported manifest version {m.get('version')!r} "
                        f"(expected {VERSION})")
    for key in ("resolution", "frames_per_clip", "fps", "clips"):
        if key not in m:
            raise UserError(f"{path}: missing key '{key}'")
    if not isinstance(m["clips"], list) or not m["clips"]:
        raise UserError(f"{path}: the clip list is empty")
    for i, c in enumerate(m["clips"]):
        if not isinstance(c, dict) or "file" not in c or "frames" not in c:
            raise UserError(f"{path}: clip {i} needs 'file' and 'frames'")
        if not (root / c["file"]).is_file():
            raise UserError(f"{path}: clip file missing: {root / c['file']}")
    return m


def read_clip(path: str | Path, keys: tuple[str, ...] | None = None,
              frame_slice: slice | None = None) -> dict[str, torch.Tensor]:
    """Read a clip file -> dict of uint8 tensors (see module docstring), optionally only ``keys``
    and only frames ``frame_slice`` of the per-frame tensors (read lazily from disk)."""
    try:
        with safe_open(str(path), framework="pt") as fh:
            names = set(fh.keys())
            missing = [k for k in _REQUIRED if k not in names]
            if missing:
                raise UserError(f"clip {path} lacks tensors {missing}")
            out = {}
            for k in sorted(names if keys is None else names & set(keys)):
                if frame_slice is not None and not k.startswith("ref_"):
                    out[k] = fh.get_slice(k)[frame_slice]
                else:
                    out[k] = fh.get_tensor(k)
            return out
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise UserError(f"clip {path} is not a readable safetensors file ({exc})") from None


def clip_metadata(path: str | Path) -> dict:
    """The manifest entry stored in a clip file's metadata."""
    try:
        with safe_open(str(path), framework="pt") as fh:
            return json.loads((fh.metadata() or {}).get("clip", "{}"))
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"clip {path} is not a readable safetensors file ({exc})") from None


def _to_unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 -> float32 in [-1, 1]."""
    return x.float().div_(127.5).sub_(1.0)


def key_generator(seed: int, *keys: int) -> torch.Generator:
    """A CPU generator that depends only on ``(seed, *keys)`` (non-negative integers)."""
    entropy = [int(seed) & 0xFFFFFFFF, *map(int, keys)]
    state = np.random.SeedSequence(entropy).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


class ClipDataset(torch.utils.data.Dataset):
    """Random temporal crops of ``num_frames`` frames from a manifest of clips.

    ``dataset[key]`` with ``key = epoch * len(dataset) + clip_index`` returns::

        frames        (3, num_frames, H, W) float32 in [-1, 1]
        pose_normals  (3, num_frames, H, W) float32 in [-1, 1]
        ref_image     (3, H, W)             float32 in [-1, 1]
        ref_normal    (3, H, W)             float32 in [-1, 1]
        appearance    (3, num_frames, H, W) float32 in [-1, 1]   (only if the clip has one)
        key           ()                    int64

    The crop start is drawn from a generator seeded by ``(seed, key)`` (reproducible, and different
    per epoch); ``frame_stride`` takes every k-th frame.
    """

    def __init__(self, root: str | Path, num_frames: int, *, seed: int = 0, frame_stride: int = 1,
                 with_appearance: bool = False):
        self.root = Path(root)
        self.manifest = read_manifest(self.root)
        self.num_frames = int(num_frames)
        self.frame_stride = int(frame_stride)
        self.seed = int(seed)
        self.with_appearance = with_appearance
        if self.num_frames < 1 or self.frame_stride < 1:
            raise UserError("num_frames and frame_stride must be >= 1")
        span = (self.num_frames - 1) * self.frame_stride + 1
        short = [c["file"] for c in self.manifest["clips"] if int(c["frames"]) < span]
        if short:
            raise UserError(f"{len(short)} clip(s) have fewer than {span} frames "
                            f"(num_frames={num_frames}, stride={frame_stride}), e.g. {short[0]}")
        if with_appearance and not all(c.get("has_appearance") for c in self.manifest["clips"]):
            raise UserError(f"{self.root}: the preset needs an 'appearance' tensor in every clip")
        self.span = span

    @property
    def resolution(self) -> tuple[int, int]:
        return tuple(self.manifest["resolution"])

    def __len__(self) -> int:
        return len(self.manifest["clips"])

    def crop_start(self, key: int) -> int:
        clip = self.manifest["clips"][key % len(self)]
        high = int(clip["frames"]) - self.span + 1
        return int(torch.randint(high, (), generator=key_generator(self.seed, 0, key)))

    def __getitem__(self, key: int) -> dict[str, torch.Tensor]:
        key = int(key)
        clip = self.manifest["clips"][key % len(self)]
        start = self.crop_start(key)
        keys = ("frames", "pose_normals", "ref_image", "ref_normal")
        if self.with_appearance:
            keys += ("appearance",)
        raw = read_clip(self.root / clip["file"], keys,
                        slice(start, start + self.span, self.frame_stride))
        out = {}
        for k, v in raw.items():
            v = _to_unit(v)
            out[k] = v if k.startswith("ref_") else v.permute(1, 0, 2, 3)  # (3, F, H, W)
        out["key"] = torch.tensor(key, dtype=torch.int64)
        return out


class StepBatchSampler(torch.utils.data.Sampler):
    """Batches of sample keys for one rank, as a pure function of ``(seed, step)``.

    The global sample stream is the concatenation of per-epoch permutations of the clips
    (epoch e uses ``randperm(n, seed=(seed, e))``), keyed ``e * n + clip``. Micro-step s takes the
    ``world_size * batch_size`` consecutive stream positions starting at ``s * world_size *
    batch_size``; rank r gets its ``batch_size`` slice. Starting at ``start_step`` reproduces the
    exact batches an uninterrupted run would see from that step on.
    """

    def __init__(self, n: int, batch_size: int, *, seed: int = 0, rank: int = 0,
                 world_size: int = 1, start_step: int = 0, num_steps: int | None = None):
        self.n, self.batch_size, self.seed = int(n), int(batch_size), int(seed)
        self.rank, self.world_size = int(rank), int(world_size)
        self.start_step, self.num_steps = int(start_step), num_steps
        self._perm_cache: dict[int, torch.Tensor] = {}

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perm_cache:
            gen = key_generator(self.seed, 1, epoch)
            self._perm_cache = {epoch: torch.randperm(self.n, generator=gen)}
        return self._perm_cache[epoch]

    def batch(self, step: int) -> list[int]:
        """The keys rank ``self.rank`` sees at micro-step ``step``."""
        first = (step * self.world_size + self.rank) * self.batch_size
        keys = []
        for pos in range(first, first + self.batch_size):
            epoch, i = divmod(pos, self.n)
            keys.append(epoch * self.n + int(self._perm(epoch)[i]))
        return keys

    def __iter__(self) -> Iterator[list[int]]:
        step = self.start_step
        while self.num_steps is None or step < self.start_step + self.num_steps:
            yield self.batch(step)
            step += 1

    def __len__(self) -> int:
        if self.num_steps is None:
            raise TypeError("an endless StepBatchSampler has no length")
        return int(self.num_steps)


# ----------------------------------------------------------------------------- synthetic data

def synthetic_clip(frames: int, size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Render a moving shaded "face" (an ellipsoid with a mouth dent opening and closing) and its
    camera-facing normal maps from the same height field.

    Returns frames / pose_normals (F, 3, size, size) uint8 and the reference frame's pair.
    """
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / (size - 1) * 2 - 1  # (S, S) in [-1, 1]
    t = np.arange(frames + 1)[:, None, None] / max(frames, 1)  # frame 0..F-1 + reference (index F)
    phase = rng.uniform(0, 2 * np.pi, 3)
    cx = 0.25 * np.sin(2 * np.pi * t + phase[0])
    cy = 0.15 * np.sin(2 * np.pi * t + phase[1])
    a, b = rng.uniform(0.35, 0.5), rng.uniform(0.45, 0.6)
    mouth = 0.04 + 0.06 * (1 + np.sin(2 * np.pi * t + phase[2]))  # mouth opening (expression)
    u, v = (xx - cx) / a, (yy - cy) / b  # (F+1, S, S)
    r2 = u ** 2 + v ** 2
    inside = r2 < 1
    z = np.sqrt(np.clip(1 - r2, 1e-4, None)) * 0.5  # ellipsoid height field
    dent = 0.15 * np.exp(-((xx - cx) ** 2 / 0.02 + (yy - cy - 0.45 * b) ** 2 / mouth ** 2))
    height = np.where(inside, z - dent, 0.0)
    gy, gx = np.gradient(height, 2 / (size - 1), axis=(1, 2))
    # normal of z = h(x, y) with image y down: (−dh/dx, +dh/dy, 1) in (x right, y up, z out)
    n = np.stack([-gx, gy, np.ones_like(gx)], axis=1)  # (F+1, 3, S, S)
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    n *= inside[:, None]
    light = np.array([0.4, 0.5, 0.77])
    shade = np.clip(np.einsum("fcij,c->fij", n, light), 0, 1)  # (F+1, S, S)
    skin = rng.uniform(0.4, 1.0, 3)[None, :, None, None]
    bg = rng.uniform(0.0, 0.4, 3)[None, :, None, None]
    lips = (dent > 0.05)[:, None]
    albedo = np.where(lips, skin * 0.3, skin)
    img = np.where(inside[:, None], albedo * (0.25 + 0.75 * shade[:, None]), bg)  # (F+1, 3, S, S)
    to8 = lambda x: (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)  # noqa: E731
    nmap = np.where(inside[:, None], (n + 1) / 2, 0.0)
    return {"frames": to8(img[:frames]), "pose_normals": to8(nmap[:frames]),
            "ref_image": to8(img[frames]), "ref_normal": to8(nmap[frames])}


def make_synthetic_manifest(root: str | Path, n_clips: int = 4, frames: int = 9, size: int = 32,
                            seed: int = 0, fps: float = 25.0, appearance: bool = False) -> Path:
    """Write a test dataset of ``n_clips`` synthetic clips to ``root``; returns ``root``."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    entries = []
    for i in range(n_clips):
        c = synthetic_clip(frames, size, rng)
        app = c["frames"][:, :, ::-1].copy() if appearance else None  # any per-frame map will do
        entries.append(write_clip(root, f"{i:06d}", c["frames"], c["pose_normals"], c["ref_image"],
                                  c["ref_normal"], app, source=f"synthetic:{seed}:{i}",
                                  frame_range=(0, frames), ref_frame=frames))
    write_manifest(root, entries, fps=fps, frames_per_clip=frames)
    return root
