"""FLAME and SMPL-X heads from the user's licensed model files, evaluated with ``smplx.lbs``.

Files (not on PyPI; download them from flame.is.tue.mpg.de / smpl-x.is.tue.mpg.de):

- FLAME: ``model_path`` = a folder holding ``FLAME_NEUTRAL.pkl`` (or ``generic_model.pkl``,
  ``flame2023.pkl``, or the same names as ``.npz``) and the landmark embedding, or the model file
  itself (the embedding is then looked up next to it). The embedding is one of: DECA's
  ``landmark_embedding.npy`` (``full_lmk_faces_idx`` / ``full_lmk_bary_coords``, 68 points);
  ``flame_static_embedding.pkl`` with 68 points; or the usual 51-point
  ``flame_static_embedding.pkl`` plus ``flame_dynamic_embedding.npy``, whose frontal (middle) yaw
  bin gives the 17 jaw-contour points.
- SMPL-X: ``SMPLX_NEUTRAL.npz`` (or ``.pkl``) holding ``lmk_faces_idx`` / ``lmk_bary_coords``
  (51) and ``dynamic_lmk_faces_idx`` / ``dynamic_lmk_bary_coords`` (contour). The coarse mesh is the
  head: vertices whose skinning weight on the head, jaw and eye joints (15, 22, 23, 24) exceeds
  0.5, with the triangles among them; it is shifted so the template's head joint is the origin.

Pickles are read with a restricted unpickler (numpy arrays, scipy sparse matrices, chumpy arrays
turned into numpy); nothing else is executed. The shape / expression components are used as the
files define them (FLAME and SMPL-X coefficients are already roughly unit variance). The pose
is zero except the jaw; FLAME's own axes are head space (y up, z forward, metres).

Dense mesh = ``density`` levels of 1-to-4 midpoint subdivision ("coarse" 0, "medium" 1,
"full" 2, or an int), stored as barycentric weights, so V^s = B(V) exactly; landmarks are
evaluated exactly from the embedding on the coarse mesh (they lie on the dense surface too), and
``landmark_index`` is the dense vertex nearest each landmark on the template. Regions: the
landmark rules of ``head.regions`` on a spherical unwrap of the template.
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from expportrait.errors import UserError
from expportrait.head.base import HeadModel, HeadOutput
from expportrait.head.bfm import _RestrictedUnpickler
from expportrait.head.upsample import apply_barycentric, subdivision_weights

DENSITY_LEVELS = {"coarse": 0, "medium": 1, "full": 2}
MODEL_NAMES = {"flame": ["FLAME_NEUTRAL", "generic_model", "flame2023", "FLAME2020_NEUTRAL", "FLAME_MALE",
                         "FLAME_FEMALE"],
               "smplx": ["SMPLX_NEUTRAL", "SMPLX_MALE", "SMPLX_FEMALE"]}
JAW_JOINT = {"flame": 2, "smplx": 22}
SMPLX_HEAD_JOINTS = [15, 22, 23, 24]


class _Chumpy:
    """Stand-in for chumpy objects in old FLAME pickles: keeps the state, exposes ``x``."""

    def __init__(self, *args, **kwargs):
        self.state = {}

    def __setstate__(self, state):
        self.state = state if isinstance(state, dict) else {"x": state}


def _sparse_globals() -> dict:
    import copyreg

    import scipy.sparse as sp
    out = {("copyreg", "_reconstructor"): copyreg._reconstructor, ("builtins", "object"): object,
           ("__builtin__", "object"): object}
    for cls in (sp.csc_matrix, sp.csr_matrix, sp.coo_matrix):
        for mod in (cls.__module__, f"scipy.sparse.{cls.__name__.split('_')[0]}", "scipy.sparse"):
            out[(mod, cls.__name__)] = cls
    return out


class _ModelUnpickler(_RestrictedUnpickler):
    """numpy arrays, scipy sparse matrices and chumpy stand-ins only."""

    def find_class(self, module: str, name: str):
        if module.startswith("chumpy"):
            return _Chumpy
        return super().find_class(module, name)


def _unpickle(data: bytes):
    return _ModelUnpickler(io.BytesIO(data), _sparse_globals()).load()


def _plain(value):
    if isinstance(value, _Chumpy):
        if "x" not in value.state:
            raise UserError("a chumpy expression in the model file cannot be read; convert it to .npz")
        return np.asarray(value.state["x"])
    if hasattr(value, "toarray"):
        return value.toarray()
    return value


def load_arrays(path: Path) -> dict:
    """A model file (.npz or restricted .pkl) -> {key: numpy array or plain value}."""
    if not path.exists():
        raise UserError(f"model file not found: {path}")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    try:
        if path.suffix == ".npy":  # an object array (pickled dict) or a plain array
            with open(path, "rb") as f:
                version = np.lib.format.read_magic(f)
                header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                          else np.lib.format.read_array_header_2_0)(f)
                if not header[2].hasobject:
                    return {"array": np.load(path, allow_pickle=False)}
                raw = _unpickle(f.read())[()]
        else:
            raw = _unpickle(path.read_bytes())
    except (pickle.UnpicklingError, EOFError, ValueError, AttributeError, IndexError) as exc:
        raise UserError(f"cannot read {path}: {exc} (convert the model to .npz)") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path} does not hold a dictionary of arrays")
    return {k: _plain(v) for k, v in raw.items()}


def find_model_file(kind: str, model_path: str | Path) -> Path:
    path = Path(model_path)
    if path.is_file():
        return path
    for stem in MODEL_NAMES[kind]:
        for ext in (".npz", ".pkl"):
            if (path / f"{stem}{ext}").exists():
                return path / f"{stem}{ext}"
    raise UserError(f"no {kind.upper()} model in {path} (expected {MODEL_NAMES[kind][0]}.pkl or .npz)")


def _frontal_contour(faces_idx, bary) -> tuple[np.ndarray, np.ndarray]:
    faces_idx, bary = np.asarray(faces_idx), np.asarray(bary)
    if faces_idx.ndim == 2:  # (yaw bins, 17): the middle bin is yaw 0
        faces_idx, bary = faces_idx[len(faces_idx) // 2], bary[len(bary) // 2]
    return faces_idx.reshape(-1), bary.reshape(-1, 3)


def landmark_embedding(kind: str, model_file: Path, data: dict) -> tuple[np.ndarray, np.ndarray]:
    """-> (68,) triangle ids and (68, 3) barycentric coordinates of the iBUG-68 points."""
    folder = model_file.parent
    if kind == "smplx":
        static = (data.get("lmk_faces_idx"), data.get("lmk_bary_coords"))
        dynamic = (data.get("dynamic_lmk_faces_idx"), data.get("dynamic_lmk_bary_coords"))
    else:
        deca = folder / "landmark_embedding.npy"
        if deca.exists():
            d = load_arrays(deca)
            return np.asarray(d["full_lmk_faces_idx"]).reshape(-1), np.asarray(d["full_lmk_bary_coords"]).reshape(-1, 3)
        emb = folder / "flame_static_embedding.pkl"
        if not emb.exists():
            raise UserError(f"FLAME landmark embedding not found: put flame_static_embedding.pkl "
                            f"(+ flame_dynamic_embedding.npy) or landmark_embedding.npy in {folder}")
        d = load_arrays(emb)
        static = (d.get("lmk_face_idx"), d.get("lmk_b_coords"))
        dyn_file = folder / "flame_dynamic_embedding.npy"
        dd = load_arrays(dyn_file) if dyn_file.exists() else {}
        dynamic = (dd.get("lmk_face_idx"), dd.get("lmk_b_coords"))
    if static[0] is None:
        raise UserError(f"no landmark embedding in {model_file}")
    idx, bary = np.asarray(static[0]).reshape(-1), np.asarray(static[1]).reshape(-1, 3)
    if len(idx) == 68:
        return idx, bary
    if len(idx) == 51 and dynamic[0] is not None:
        cidx, cbary = _frontal_contour(*dynamic)
        return np.concatenate([cidx, idx]), np.concatenate([cbary, bary])
    raise UserError(f"{kind}: the landmark embedding has {len(idx)} points; 68, or 51 plus the "
                    f"dynamic contour embedding, are needed")


class LBSHead(HeadModel):
    """FLAME / SMPL-X head evaluated with smplx's linear blend skinning (zero pose except jaw)."""

    has_jaw = True

    def __init__(self, kind: str, data: dict, lmk: tuple[np.ndarray, np.ndarray], density="medium",
                 n_shape: int = 100, n_exp: int = 50):
        super().__init__()
        self.name = kind
        levels = DENSITY_LEVELS.get(density, density)
        if not isinstance(levels, int) or not 0 <= levels <= 3:
            raise UserError(f"density must be coarse, medium, full or 0-3, got {density!r}")
        shapedirs = np.asarray(data["shapedirs"], np.float32)
        if shapedirs.ndim == 2:
            shapedirs = shapedirs[:, :, None]  # (N, 3, K)
        split = 300 if shapedirs.shape[-1] > 300 else 10
        max_exp = shapedirs.shape[-1] - split
        if not (0 < n_shape <= split and 0 < n_exp <= max_exp):
            raise UserError(f"{kind} file has {split} shape and {max_exp} expression components")
        self.n_shape, self.n_exp, self.jaw_joint = int(n_shape), int(n_exp), JAW_JOINT[kind]
        faces = np.asarray(data["f"], np.int64)
        v_template = np.asarray(data["v_template"], np.float32)
        weights = np.asarray(data["weights"], np.float32)  # (N, J)
        j_reg = np.asarray(_plain(data["J_regressor"]), np.float32)  # (J, N)
        lmk_faces, lmk_bary = faces[lmk[0]], np.asarray(lmk[1], np.float32)  # (68, 3) vertex ids
        subset, origin = np.arange(len(v_template)), np.zeros(3, np.float32)
        if kind == "smplx":
            subset = np.flatnonzero(weights[:, SMPLX_HEAD_JOINTS].sum(1) > 0.5)
            origin = (j_reg @ v_template)[15]
        remap = np.full(len(v_template), -1)
        remap[subset] = np.arange(len(subset))
        coarse_faces = remap[faces[(remap[faces] >= 0).all(1)]]
        if (remap[lmk_faces] < 0).any():
            raise UserError(f"{kind}: landmark triangles fall outside the head vertices")
        posedirs = np.asarray(data["posedirs"], np.float32)
        parents = np.asarray(data["kintree_table"])[0].astype(np.int64)
        parents[0] = -1
        buffers = {"v_template": v_template, "shapedirs": np.concatenate(
            [shapedirs[..., :n_shape], shapedirs[..., split:split + n_exp]], -1),
            "posedirs": posedirs.reshape(-1, posedirs.shape[-1]).T, "J_regressor": j_reg,
            "lbs_weights": weights}
        for key, value in buffers.items():
            self.register_buffer(key, torch.from_numpy(np.ascontiguousarray(value)).float(), persistent=False)
        self.register_buffer("parents", torch.from_numpy(parents), persistent=False)
        self.register_buffer("subset", torch.from_numpy(subset), persistent=False)
        self.register_buffer("origin", torch.from_numpy(np.asarray(origin, np.float32)), persistent=False)
        self.register_buffer("lmk_vertices", torch.from_numpy(remap[lmk_faces]), persistent=False)
        self.register_buffer("lmk_bary", torch.from_numpy(lmk_bary), persistent=False)
        up_index, up_weight, dense_faces = subdivision_weights(coarse_faces, len(subset), levels)
        template = torch.from_numpy(v_template[subset] - origin)[None]  # (1, N, 3)
        dense = apply_barycentric(template, torch.from_numpy(up_index), torch.from_numpy(up_weight))[0].numpy()
        lm = apply_barycentric(template, self.lmk_vertices, self.lmk_bary)[0].numpy()  # (68, 3)
        lm_index = ((dense[None] - lm[:, None]) ** 2).sum(-1).argmin(1)  # (68,) nearest dense vertex
        regions = _regions(dense, lm)
        self._register_topology(torch.from_numpy(dense_faces), torch.from_numpy(coarse_faces),
                                torch.from_numpy(lm_index), torch.from_numpy(up_index),
                                torch.from_numpy(up_weight), {k: torch.from_numpy(v) for k, v in regions.items()},
                                num_coarse=len(subset))

    def forward(self, shape: Tensor, expression: Tensor, jaw: Tensor | None = None) -> HeadOutput:
        """shape (B, n_shape), expression (B, n_exp); jaw (B, 3) axis-angle radians or None.
        -> HeadOutput(coarse (B, N, 3), dense (B, N_s, 3), landmarks (B, 68, 3)), metres."""
        from smplx.lbs import lbs
        self._check(shape, expression)
        b = shape.shape[0]
        dtype = self.v_template.dtype
        pose = torch.zeros(b, self.J_regressor.shape[0], 3, dtype=dtype, device=self.v_template.device)
        if jaw is not None:
            pose[:, self.jaw_joint] = jaw.to(pose)
        verts, _ = lbs(torch.cat([shape, expression], 1).to(dtype), pose.reshape(b, -1), self.v_template,
                       self.shapedirs, self.posedirs, self.J_regressor, self.parents, self.lbs_weights,
                       pose2rot=True)  # (B, N_full, 3)
        coarse = verts[:, self.subset] - self.origin  # (B, N, 3)
        landmarks = apply_barycentric(coarse, self.lmk_vertices, self.lmk_bary)  # (B, 68, 3)
        return HeadOutput(coarse=coarse, dense=self.upsample(coarse), landmarks=landmarks)


def _regions(dense: np.ndarray, lm: np.ndarray) -> dict[str, np.ndarray]:
    """Landmark rules (head.regions) on a spherical unwrap about a centre behind the nose."""
    from expportrait.head.regions import make_regions
    from expportrait.head.topology import spherical_unwrap
    eye = float(np.linalg.norm(lm[36] - lm[45])) or 1.0
    center = np.array([lm[:, 0].mean(), lm[:, 1].mean(), lm[30, 2] - 1.1 * eye])
    uv = spherical_unwrap(dense, center, 1.1 * eye)
    return make_regions(uv, spherical_unwrap(lm, center, 1.1 * eye))


def load_lbs_head(kind: str, model_path: str | Path, density="medium", **kw) -> LBSHead:
    model_file = find_model_file(kind, model_path)
    data = load_arrays(model_file)
    missing = {"v_template", "shapedirs", "posedirs", "J_regressor", "kintree_table", "weights", "f"} - set(data)
    if missing:
        raise UserError(f"{model_file} is not a {kind.upper()} model (missing {sorted(missing)})")
    return LBSHead(kind, data, landmark_embedding(kind, model_file, data), density=density, **kw)
