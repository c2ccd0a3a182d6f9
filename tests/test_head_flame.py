"""FLAME through smplx on a tiny synthetic model written in FLAME's file format."""
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from expportrait.errors import UserError
from expportrait.head import load_head


def _sphere(n_lat=12, n_lon=20, r=0.09):
    """Lat-long ellipsoid head: (N, 3) vertices, (T, 3) faces counter-clockwise from outside."""
    lat = np.linspace(-0.45 * np.pi, 0.45 * np.pi, n_lat)
    lon = np.linspace(-np.pi, np.pi, n_lon, endpoint=False)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    v = np.stack([r * np.cos(la) * np.sin(lo), 1.2 * r * np.sin(la), r * np.cos(la) * np.cos(lo)], -1).reshape(-1, 3)
    f = []
    for i in range(n_lat - 1):
        for j in range(n_lon):
            a, b = i * n_lon + j, i * n_lon + (j + 1) % n_lon
            c, d = a + n_lon, b + n_lon
            f += [(a, b, d), (a, d, c)]
    return v.astype(np.float64), np.array(f, np.uint32)


@pytest.fixture(scope="module")
def flame_dir(tmp_path_factory):
    rng = np.random.default_rng(0)
    v, f = _sphere()
    n = len(v)
    jaw_verts = (v[:, 1] < -0.03) & (v[:, 2] > 0.0)
    weights = np.zeros((n, 5))
    weights[:, 1] = 1.0
    weights[jaw_verts, 1], weights[jaw_verts, 2] = 0.2, 0.8
    j_reg = np.zeros((5, n))
    for j, sel in enumerate([np.ones(n, bool), v[:, 1] < -0.05, jaw_verts, v[:, 0] > 0.05, v[:, 0] < -0.05]):
        j_reg[j, sel] = 1.0 / sel.sum()
    model = {"v_template": v, "f": f, "shapedirs": rng.normal(0, 1e-3, (n, 3, 400)),
             "posedirs": rng.normal(0, 1e-4, (n, 3, 36)), "J_regressor": sp.csc_matrix(j_reg),
             "kintree_table": np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]]), "weights": weights}
    front = np.flatnonzero(v[f].mean(1)[:, 2] > 0.04)
    emb = {"lmk_face_idx": rng.choice(front, 51).astype(np.uint32), "lmk_b_coords": rng.dirichlet(np.ones(3), 51)}
    dyn = {"lmk_face_idx": rng.choice(front, (79, 17)), "lmk_b_coords": rng.dirichlet(np.ones(3), (79, 17))}
    d = tmp_path_factory.mktemp("flame")
    (d / "FLAME_NEUTRAL.pkl").write_bytes(pickle.dumps(model, protocol=2))
    (d / "flame_static_embedding.pkl").write_bytes(pickle.dumps(emb, protocol=2))
    np.save(d / "flame_dynamic_embedding.npy", dyn, allow_pickle=True)
    return d, model, emb, dyn


def test_matches_smplx_flame(flame_dir):
    import smplx
    d, model, emb, dyn = flame_dir
    head = load_head("flame", str(d), n_shape=20, n_exp=30, density="coarse")
    assert head.name == "flame" and head.has_jaw and len(list(head.parameters())) == 0
    ref = smplx.FLAME(model_path=str(d), num_betas=20, num_expression_coeffs=30, batch_size=2)
    torch.manual_seed(0)
    shape, exp, jaw = torch.randn(2, 20), torch.randn(2, 30), 0.2 * torch.randn(2, 3)
    out = head(shape, exp, jaw)
    with torch.no_grad():
        r = ref(betas=shape, expression=exp, jaw_pose=jaw, global_orient=torch.zeros(2, 3),
                neck_pose=torch.zeros(2, 3), transl=torch.zeros(2, 3))
    assert torch.allclose(out.coarse, r.vertices, atol=1e-6)
    assert torch.allclose(out.landmarks[:, 17:], r.joints[:, -51:], atol=1e-6)  # static 51 points
    # the 17 contour points come from the frontal (middle) bin of the dynamic embedding
    faces = model["f"].astype(np.int64)[dyn["lmk_face_idx"][39]]
    expect = (out.coarse[:, faces] * torch.tensor(dyn["lmk_b_coords"][39], dtype=torch.float32)[None, :, :, None]).sum(2)
    assert torch.allclose(out.landmarks[:, :17], expect, atol=1e-6)


def test_expression_jaw_and_dense(flame_dir):
    d, model, *_ = flame_dir
    head = load_head("flame", str(d), n_shape=10, n_exp=100, density="medium")
    n = len(model["v_template"])
    z = head(torch.zeros(1, 10), torch.zeros(1, 100))
    assert z.coarse.shape == (1, n, 3) and head.num_coarse == n
    edges = len({tuple(sorted(e)) for t in model["f"].tolist() for e in ((t[0], t[1]), (t[1], t[2]), (t[2], t[0]))})
    assert head.num_dense == n + edges and z.dense.shape == (1, n + edges, 3)
    assert len(head.faces) == 4 * len(model["f"]) and len(head.coarse_faces) == len(model["f"])
    assert torch.allclose(z.dense[:, :n], z.coarse, atol=1e-7)
    f = head.faces
    dense_normals = torch.cross(z.dense[0, f[:, 1]] - z.dense[0, f[:, 0]], z.dense[0, f[:, 2]] - z.dense[0, f[:, 0]], dim=-1)
    assert ((dense_normals * z.dense[0, f].mean(1)).sum(-1) > 0).all()  # orientation preserved
    e = head(torch.zeros(1, 10), torch.ones(1, 100))
    assert (e.coarse - z.coarse).norm(dim=-1).max() > 1e-3
    jaw = head(torch.zeros(1, 10), torch.zeros(1, 100), torch.tensor([[0.3, 0.0, 0.0]]))
    moved = (jaw.coarse - z.coarse).norm(dim=-1)[0]
    on_jaw = torch.tensor(model["weights"][:, 2] > 0)
    # jaw-skinned vertices rotate; the rest only feel the (small) pose blend shapes
    assert moved[on_jaw].min() > 1e-3 and moved[on_jaw].mean() > 10 * moved[~on_jaw].mean()
    assert torch.allclose(head.upsample(jaw.coarse), jaw.dense)
    lm_err = (jaw.dense[:, head.landmark_index] - jaw.landmarks).norm(dim=-1)
    assert lm_err.max() < 0.02  # nearest dense vertex to each landmark
    r = head.regions
    assert set(r) == {"face", "non_face", "lips", "eyes", "left_eye", "right_eye"}
    assert torch.equal(r["face"], ~r["non_face"]) and r["face"].shape == (head.num_dense,)


def test_errors(flame_dir, tmp_path):
    d, model, *_ = flame_dir
    (tmp_path / "FLAME_NEUTRAL.pkl").write_bytes((d / "FLAME_NEUTRAL.pkl").read_bytes())
    with pytest.raises(UserError, match="embedding"):
        load_head("flame", str(tmp_path))
    with pytest.raises(UserError):
        load_head("flame", str(d), n_exp=101)
    with pytest.raises(UserError):
        load_head("flame", None)

    class Evil:
        def __reduce__(self):
            return (print, ("owned",))
    (tmp_path / "FLAME_NEUTRAL.pkl").write_bytes(pickle.dumps({"v_template": Evil()}))
    with pytest.raises(UserError, match="cannot read"):
        load_head("flame", str(tmp_path))
