"""The fit file: a versioned, self-describing record of a personalized head fit.

``fit.safetensors`` holds the tensors below; its safetensors metadata holds one JSON header
(``{"format": "expportrait-fit", "version": 1, ...}``) with the head model, sizes and fps.

=====================  =================  ================================================
key                    shape              meaning
=====================  =================  ================================================
shape                  (n_shape,)         identity beta (std units)
static_offset          (N_s, 3)           Delta_g, head space metres
expression             (F, n_exp)         psi (std units)
jaw                    (F, 3)             omega, axis-angle (zeros for models without a jaw)
rotation               (F, 3)             head rotation, axis-angle (head -> camera, see geometry)
translation            (F, 3)             metres, OpenCV camera space
camera                 (F, 4)             fx, fy, cx, cy in input-frame pixels
dynamic_offset         (F, N_s, 3)        Delta_f, head space metres (stored float16)
albedo                 (N_s, 3)           per-vertex albedo in [0, 1]
sh                     (F, 9, 3)          spherical-harmonics lighting per frame
valid                  (F,)               bool: the landmark detector found the face
landmarks68_2d         (F, 68, 2)         iBUG-68 points of the fitted detailed mesh in pixels
gaze                   (F, 2, 3)          optional: eyeball rotations (right, left), axis-angle
=====================  =================  ================================================
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from expportrait.errors import UserError, atomic_path

FORMAT = "expportrait-fit"
VERSION = 1
_REQUIRED = ("shape", "static_offset", "expression", "jaw", "rotation", "translation", "camera",
             "dynamic_offset", "albedo", "sh", "valid", "landmarks68_2d")


@dataclass
class HeadFit:
    shape: torch.Tensor
    static_offset: torch.Tensor
    expression: torch.Tensor
    jaw: torch.Tensor
    rotation: torch.Tensor
    translation: torch.Tensor
    camera: torch.Tensor
    dynamic_offset: torch.Tensor
    albedo: torch.Tensor
    sh: torch.Tensor
    valid: torch.Tensor
    landmarks68_2d: torch.Tensor
    gaze: torch.Tensor | None = None
    meta: dict = field(default_factory=dict)  # head model, density, image_size (H, W), fps, ...

    @property
    def num_frames(self) -> int:
        return int(self.expression.shape[0])

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.meta["image_size"])  # (H, W)

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "meta"}
        return {k: v for k, v in out.items() if v is not None}

    def frames(self, idx) -> "HeadFit":
        """A fit restricted to frame indices ``idx`` (slice or index tensor)."""
        per_frame = {"expression", "jaw", "rotation", "translation", "camera", "dynamic_offset",
                     "sh", "valid", "landmarks68_2d", "gaze"}
        kw = {}
        for f in fields(self):
            v = getattr(self, f.name)
            kw[f.name] = v[idx] if (f.name in per_frame and v is not None) else v
        kw["meta"] = dict(self.meta)
        return HeadFit(**kw)


def save_fit(fit: HeadFit, path: str | Path) -> Path:
    header = {"format": FORMAT, "version": VERSION, **fit.meta}
    tensors = {}
    for k, v in fit.tensors().items():
        v = v.detach().cpu()
        if k == "dynamic_offset":
            v = v.half()
        elif k == "valid":
            v = v.to(torch.uint8)
        elif v.is_floating_point():
            v = v.float()
        tensors[k] = v.contiguous()
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"expportrait": json.dumps(header)})
    return Path(path)


def load_fit(path: str | Path) -> HeadFit:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"fit file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"{path} is not a readable fit file ({exc})") from None
    try:
        header = json.loads(meta.get("expportrait", "{}"))
    except json.JSONDecodeError:
        header = {}
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise UserError(f"{path} is not an expportrait fit file")
    if not isinstance(header.get("version"), int) or isinstance(header["version"], bool):
        raise UserError(f"{path}: fit header has no valid format version")
    if header["version"] > VERSION:
        raise UserError(f"{path} has fit format version {header['version']}; this expportrait reads <= {VERSION}")
    _check_meta(path, header)
    missing = [k for k in _REQUIRED if k not in tensors]
    if missing:
        raise UserError(f"{path} is missing fit fields {missing}")
    F = tensors["expression"].shape[0]
    for k in ("jaw", "rotation", "translation", "camera", "dynamic_offset", "sh", "valid", "landmarks68_2d"):
        if tensors[k].shape[0] != F:
            raise UserError(f"{path}: field '{k}' has {tensors[k].shape[0]} frames, expected {F}")
    tensors["dynamic_offset"] = tensors["dynamic_offset"].float()
    tensors["valid"] = tensors["valid"].bool()
    header.pop("format")
    header.pop("version")
    return HeadFit(**tensors, meta=header)


def _check_meta(path: Path, header: dict) -> None:
    size = header.get("image_size", [1, 1])
    if not (isinstance(size, list) and len(size) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)):
        raise UserError(f"{path}: fit header image_size must be [H, W], got {size!r}")
    fps = header.get("fps", 25.0)
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0 < fps < 1e4:
        raise UserError(f"{path}: fit header fps must be a positive number, got {fps!r}")
    if not isinstance(header.get("head", "bfm"), str):
        raise UserError(f"{path}: fit header head must be a name, got {header.get('head')!r}")
