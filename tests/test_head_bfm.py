"""The embedded BFM head: asset, axes, open mouth/eyes triangulation, upsampling, regions."""
import pickle

import numpy as np
import pytest
import torch

from expportrait.errors import UserError
from expportrait.head import HeadModel, load_head
from expportrait.head.bfm import restricted_loads
from expportrait.head.topology import edge_lengths, points_in_polygon


@pytest.fixture(scope="module")
def heads():
    try:
        return {d: load_head("bfm", density=d) for d in ("coarse", "medium", "full")}
    except UserError as exc:  # no wheel and no PyPI access
        pytest.skip(f"BFM asset unavailable: {exc}")


def _open_mouth(head, sigma=3.0):
    """Expression (1, n_exp) along the direction that most widens the inner-lip gap 62-66."""
    lm = head.landmark_index
    base = head(torch.zeros(1, head.n_shape), torch.zeros(1, head.n_exp)).dense[0]
    basis = head.dense_basis[:, head.n_shape:].reshape(-1, 3, head.n_exp)  # (N_s, 3, n_exp)
    gap = base[lm[62]] - base[lm[66]]
    grad = (basis[lm[62]] - basis[lm[66]]).T @ (gap / gap.norm())
    return sigma * grad[None] / grad.norm()


def test_api_and_axes(heads):
    head = heads["medium"]
    assert isinstance(head, HeadModel) and head.name == "bfm" and not head.has_jaw
    assert len(list(head.parameters())) == 0
    out = head(torch.zeros(2, head.n_shape), torch.zeros(2, head.n_exp))
    assert out.coarse.shape == (2, head.num_coarse, 3) and out.dense.shape == (2, head.num_dense, 3)
    assert out.landmarks.shape == (2, 68, 3)
    assert 2000 <= head.num_coarse <= 3000 and 12000 <= head.num_dense <= 15000
    assert heads["full"].num_dense > 45000
    L = out.landmarks[0]
    assert L[36, 0] < 0 < L[45, 0]  # subject's right eye at -x
    assert L[30, 2] == L[:, 2].max()  # nose tip closest to the viewer
    assert L[19, 1] > L[57, 1] > L[8, 1]  # brow above mouth above chin
    assert 0.08 < float((L[36] - L[45]).norm()) < 0.10  # metres
    assert abs(float(L[:, 0].mean())) < 0.005
    with pytest.raises(UserError):
        head(torch.zeros(1, 3), torch.zeros(1, head.n_exp))


def test_shape_and_expression_move_vertices(heads):
    head = heads["coarse"]
    z = head(torch.zeros(1, head.n_shape), torch.zeros(1, head.n_exp)).dense
    s = head(torch.ones(1, head.n_shape), torch.zeros(1, head.n_exp)).dense
    e = head(torch.zeros(1, head.n_shape), torch.ones(1, head.n_exp)).dense
    assert (s - z).norm(dim=-1).max() > 0.005 and (e - z).norm(dim=-1).max() > 0.003
    face = head.regions["face"]
    moved = (e - z).norm(dim=-1)[0]
    assert moved[face].mean() > 1.3 * moved[~face].mean()  # the 3DDFA basis also moves the border


@pytest.mark.parametrize("density", ["coarse", "medium", "full"])
def test_mesh_is_clean(heads, density):
    head = heads[density]
    f = head.faces.numpy()
    verts = head(torch.zeros(1, head.n_shape), torch.zeros(1, head.n_exp)).dense[0].double().numpy()
    assert f.min() >= 0 and f.max() < head.num_dense
    assert len(np.unique(np.sort(f, 1), axis=0)) == len(f)  # no duplicates
    n = np.cross(verts[f[:, 1]] - verts[f[:, 0]], verts[f[:, 2]] - verts[f[:, 0]])
    assert (np.linalg.norm(n, axis=1) > 1e-12).all()  # no degenerate triangles
    directed = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    assert len(np.unique(directed, axis=0)) == len(directed)  # consistent winding, manifold edges
    undirected, count = np.unique(np.sort(directed, 1), axis=0, return_counts=True)
    assert count.max() <= 2
    # CCW from outside: normals point away from the head centre, and +z on the frontal face
    centroid = verts[f].mean(1)
    outward = (n * centroid).sum(1) > 0
    assert outward.mean() > 0.97
    front = head.regions["face"].numpy()[f].all(1) & (np.abs(centroid[:, 0]) < 0.03)
    assert (n[front, 2] > 0).mean() > 0.97
    assert np.isin(np.arange(head.num_dense), f).mean() > 0.99  # (almost) no isolated vertices


@pytest.mark.parametrize("density", ["coarse", "medium", "full"])
def test_mouth_and_eyes_open_without_bridges(heads, density):
    head = heads[density]
    uv, lm, f = head.uv.numpy(), head.landmark_index.numpy(), head.faces.numpy()
    centroid = uv[f].mean(1)
    for poly in (range(60, 68), range(36, 42), range(42, 48)):
        assert not points_in_polygon(centroid, uv[lm[list(poly)]]).any()
    rest = head(torch.zeros(1, head.n_shape), torch.zeros(1, head.n_exp)).dense[0]
    exp = _open_mouth(head, 3.0)
    opened = head(torch.zeros(1, head.n_shape), exp).dense[0]
    gap0, gap1 = (rest[lm[62]] - rest[lm[66]]).norm(), (opened[lm[62]] - opened[lm[66]]).norm()
    assert gap1 > 2 * gap0
    # upper / lower lip vertices of the central mouth: split by the inner-lip midline
    u_mid = uv[lm[[60, 61, 62, 63, 64]], 0]
    v_mid = (uv[lm[[60, 61, 62, 63, 64]], 1] + uv[lm[[60, 67, 66, 65, 64]], 1]) / 2
    lips = points_in_polygon(uv, uv[lm[48:60]]) | head.regions["lips"].numpy()
    central = lips & (uv[:, 0] > uv[lm[61], 0]) & (uv[:, 0] < uv[lm[63], 0])
    upper = central & (uv[:, 1] > np.interp(uv[:, 0], u_mid, v_mid))
    lower = central & ~upper
    assert upper.sum() > 0 and lower.sum() > 0
    assert not (upper[f].any(1) & lower[f].any(1)).any()
    # no triangle stretches much, also for other strong expressions
    torch.manual_seed(0)
    exps = torch.cat([_open_mouth(head, 4.0), 3.0 * torch.nn.functional.normalize(torch.randn(4, head.n_exp), dim=1)])
    for e in exps:
        v = head(torch.zeros(1, head.n_shape), e[None]).dense[0].double().numpy()
        ratio = edge_lengths(v, f) / edge_lengths(rest.double().numpy(), f)
        assert ratio.max() < 3.0, ratio.max()


def test_upsample_follows_the_dense_mesh(heads):
    head = heads["medium"]
    out = head(torch.zeros(1, head.n_shape), _open_mouth(head, 3.0))
    err = (head.upsample(out.coarse) - out.dense).norm(dim=-1)[0]
    assert head.upsample_weight.sum(1).allclose(torch.ones(head.num_dense), atol=1e-5)
    assert err[head.regions["face"]].mean() < 0.0015 and err[head.regions["face"]].max() < 0.006
    assert err[head.regions["lips"]].max() < 0.006  # upper lip vertices follow the upper lip


def test_regions(heads):
    head = heads["medium"]
    r = head.regions
    assert set(r) == {"face", "non_face", "lips", "eyes", "left_eye", "right_eye"}
    assert all(m.shape == (head.num_dense,) and m.dtype == torch.bool for m in r.values())
    assert torch.equal(r["face"], ~r["non_face"]) and torch.equal(r["eyes"], r["left_eye"] | r["right_eye"])
    assert 0.2 < r["face"].float().mean() < 0.8
    dense = head(torch.zeros(1, head.n_shape), torch.zeros(1, head.n_exp)).dense[0]
    assert dense[r["left_eye"], 0].mean() > 0 > dense[r["right_eye"], 0].mean()
    assert (r["lips"] & r["face"]).sum() >= 0.95 * r["lips"].sum()
    assert r["lips"][head.landmark_index[48:68]].all() and r["eyes"][head.landmark_index[36:48]].all()


def test_restricted_unpickler_refuses_code():
    class Evil:
        def __reduce__(self):
            return (print, ("owned",))
    assert restricted_loads(pickle.dumps({"a": np.arange(3)}))["a"].tolist() == [0, 1, 2]
    with pytest.raises(pickle.UnpicklingError):
        restricted_loads(pickle.dumps(Evil()))


def test_cli_check(heads, capsys):
    from expportrait.cli import main
    assert main(["assets", "check"]) == 0
    assert "medium" in capsys.readouterr().out
