"""Barycentric upsampling B(V): every dense vertex is a fixed convex combination of the three
vertices of one coarse triangle. Weights are computed once (build time, numpy) and applied
with a gather (run time, torch)."""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree
from torch import Tensor

from expportrait.head.topology import midpoint_subdivide


def apply_barycentric(coarse: Tensor, index: Tensor, weight: Tensor) -> Tensor:
    """coarse (B, N, C); index (N_s, 3) coarse vertex ids; weight (N_s, 3) rows sum to 1
    -> (B, N_s, C) = sum_k weight[:, k] * coarse[:, index[:, k]]."""
    gathered = coarse[:, index.reshape(-1)].reshape(coarse.shape[0], *index.shape, coarse.shape[-1])
    return (gathered * weight[None, :, :, None].to(coarse)).sum(2)  # (B, N_s, C)


def _barycentric_2d(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """p, a, b, c (..., 2) -> (..., 3) barycentric coordinates of p (unclamped)."""
    v0, v1, v2 = b - a, c - a, p - a
    d00, d01, d11 = (v0 * v0).sum(-1), (v0 * v1).sum(-1), (v1 * v1).sum(-1)
    d20, d21 = (v2 * v0).sum(-1), (v2 * v1).sum(-1)
    den = np.where(np.abs(d00 * d11 - d01 * d01) < 1e-30, 1e-30, d00 * d11 - d01 * d01)
    w1 = (d11 * d20 - d01 * d21) / den
    w2 = (d00 * d21 - d01 * d20) / den
    return np.stack([1.0 - w1 - w2, w1, w2], -1)


def _closest_in_triangle(p: np.ndarray, tri: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """p (..., 2), tri (..., 3, 2) -> (squared distance (...), barycentric (..., 3)) of the
    closest point of each triangle to p."""
    w = _barycentric_2d(p, tri[..., 0, :], tri[..., 1, :], tri[..., 2, :])
    inside = (w >= 0).all(-1)
    best_d = np.where(inside, 0.0, np.inf)
    best_w = np.where(inside[..., None], w, 0.0)
    for i, j in ((0, 1), (1, 2), (2, 0)):
        a, b = tri[..., i, :], tri[..., j, :]
        ab = b - a
        t = np.clip(((p - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-30), 0.0, 1.0)
        d = ((a + t[..., None] * ab - p) ** 2).sum(-1)
        better = ~inside & (d < best_d)
        ew = np.zeros(w.shape)
        ew[..., i], ew[..., j] = 1.0 - t, t
        best_d = np.where(better, d, best_d)
        best_w = np.where(better[..., None], ew, best_w)
    return best_d, best_w


def barycentric_weights(points: np.ndarray, uv: np.ndarray, faces: np.ndarray,
                        candidates: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Weights that place each 2D point in the coarse triangulation (nearest triangle if it
    falls in a hole or outside).

    points (P, 2) dense vertices in the unwrap; uv (N, 2) coarse vertices; faces (T, 3).
    Returns index (P, 3) int64 coarse vertex ids and weight (P, 3) float32, rows sum to 1.
    """
    centroids = uv[faces].mean(1)  # (T, 2)
    tree = cKDTree(centroids)
    _, near = tree.query(points, k=min(candidates, len(faces)))  # (P, K) triangle ids
    near = near.reshape(len(points), -1)
    index = np.empty((len(points), 3), np.int64)
    weight = np.empty((len(points), 3), np.float64)
    for start in range(0, len(points), 8192):
        sl = slice(start, start + 8192)
        tri = uv[faces[near[sl]]]  # (p, K, 3, 2)
        d, w = _closest_in_triangle(points[sl, None, :], tri)  # (p, K), (p, K, 3)
        k = d.argmin(1)
        rows = np.arange(len(k))
        index[sl] = faces[near[sl][rows, k]]
        weight[sl] = w[rows, k]
    weight = np.clip(weight, 0.0, 1.0)
    weight /= weight.sum(1, keepdims=True)
    return index, weight.astype(np.float32)


def subdivision_weights(faces: np.ndarray, num_verts: int, levels: int
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Midpoint subdivision as barycentric upsampling.

    faces (T, 3) coarse triangles over num_verts vertices; levels >= 0.
    Returns index (N_s, 3), weight (N_s, 3) into the coarse vertices (the first num_verts dense
    vertices are the coarse ones) and the dense faces (4^levels T, 3).
    """
    # every dense vertex as (coarse triangle, barycentric) so the weights stay on 3 vertices
    tri_of = np.full(num_verts, -1, np.int64)
    corner = np.zeros(num_verts, np.int64)
    for k in range(3):
        tri_of[faces[:, k]] = np.arange(len(faces))
        corner[faces[:, k]] = k
    used = tri_of >= 0
    bary = np.zeros((num_verts, 3))
    bary[np.arange(num_verts), corner] = 1.0
    tri_of[~used] = 0  # isolated vertices: weight 1 on themselves (fixed below)
    n, cur, parent = num_verts, faces, np.arange(len(faces))
    for _ in range(levels):
        edges, cur, edge_face = midpoint_subdivide(cur, n)
        t = parent[edge_face]  # (E,) coarse triangle holding each edge
        ba = _rebase(edges[:, 0], t, faces, tri_of, bary)
        bb = _rebase(edges[:, 1], t, faces, tri_of, bary)
        tri_of = np.concatenate([tri_of, t])
        bary = np.concatenate([bary, 0.5 * (ba + bb)])
        parent = np.tile(parent, 4)
        n += len(edges)
    index = faces[tri_of]
    index[:num_verts][~used] = np.arange(num_verts)[~used, None]
    return index, bary.astype(np.float32), cur


def _rebase(v: np.ndarray, t: np.ndarray, faces: np.ndarray, tri_of: np.ndarray,
            bary: np.ndarray) -> np.ndarray:
    """Barycentric coords of dense vertices v expressed in coarse triangles t (v lies on t's
    closure, possibly stored relative to a neighbouring triangle that shares an edge/vertex)."""
    out = np.zeros((len(v), 3))
    src = faces[tri_of[v]]  # (E, 3) coarse ids of the triangle v is stored in
    dst = faces[t]  # (E, 3)
    for i in range(3):
        for j in range(3):
            out[:, j] += np.where(src[:, i] == dst[:, j], bary[v, i], 0.0)
    return out
