"""Triangulating a point-cloud face model (numpy, build time only).

The 3DDFA/BFM basis ships vertices without triangles. We unwrap the mean shape onto a sphere
around the head centre (better than the plain frontal (x, y) projection, which folds the sides of
the face onto themselves: 20k of 106k frontal Delaunay triangles come out inside-out), run a 2D
Delaunay triangulation there, and then cut away what does not belong to the surface:

1. triangles whose centroid lies inside the inner-mouth polygon (landmarks 60-67) or an eye
   polygon (36-41, 42-47): the lips and eyelids must be able to part;
2. triangles that stretch by more than ``stretch_ratio`` under any of the given deformations
   (mouth-opening expressions): they bridge an opening that the polygons missed;
3. triangles with an edge longer than ``fold_ratio`` x the median edge (3D, mean shape): folds of
   the projection (nostrils, ears), and, peeled from the border inwards, boundary triangles with an
   edge over ``border_ratio`` x the median (the convex-hull fill of the concave outline);
4. only the largest connected piece is kept, and the holes step 3 cut into folds (perimeter below
   ``fill_perimeter``; never the mouth or eye openings) are closed again by ear clipping in the
   hole's own best-fit plane.

Faces are ordered counter-clockwise in the unwrap (u grows with x, v with y), so normals point
out of the face.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial import Delaunay

MOUTH_INNER = list(range(60, 68))
RIGHT_EYE = list(range(36, 42))  # subject's right eye (image left)
LEFT_EYE = list(range(42, 48))


def spherical_unwrap(verts: np.ndarray, center: np.ndarray, radius: float) -> np.ndarray:
    """verts (N, 3) head space -> (N, 2) (u, v) = radius * (azimuth about y, elevation); u ~ x, v ~ y."""
    d = verts - center
    az = np.arctan2(d[:, 0], d[:, 2])
    el = np.arctan2(d[:, 1], np.sqrt(d[:, 0] ** 2 + d[:, 2] ** 2))
    return radius * np.stack([az, el], 1)


def signed_area(uv: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(T,) twice the signed 2D area; > 0 for counter-clockwise triangles."""
    a, b, c = uv[faces[:, 0]], uv[faces[:, 1]], uv[faces[:, 2]]
    return (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])


def edge_lengths(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """verts (..., N, 3), faces (T, 3) -> (..., T, 3) lengths of edges (01, 12, 20)."""
    return np.stack([np.linalg.norm(verts[..., faces[:, k], :] - verts[..., faces[:, (k + 1) % 3], :],
                                    axis=-1) for k in range(3)], -1)


def points_in_polygon(pts: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Even-odd rule. pts (P, 2), poly (K, 2) closed implicitly -> (P,) bool."""
    inside = np.zeros(len(pts), bool)
    x, y = pts[:, 0], pts[:, 1]
    for i in range(len(poly)):
        (x0, y0), (x1, y1) = poly[i], poly[(i + 1) % len(poly)]
        cross = (y0 > y) != (y1 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            xi = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        inside ^= cross & (x < xi)
    return inside


def edge_keys(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Undirected edge key per face edge (3T,) and how many faces share it (3T,)."""
    e = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), 1)
    key = e[:, 0].astype(np.int64) * (int(faces.max()) + 1) + e[:, 1]
    _, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
    return key, cnt[inv]


def boundary_faces(faces: np.ndarray) -> np.ndarray:
    """(T,) bool: faces with at least one edge used by no other face."""
    if len(faces) == 0:
        return np.zeros(0, bool)
    _, count = edge_keys(faces)
    return (count == 1).reshape(3, -1).any(0)


def triangulate(verts: np.ndarray, uv: np.ndarray, landmarks: np.ndarray,
                deformed: np.ndarray | None = None, stretch_ratio: float = 2.0,
                fold_ratio: float = 4.0, border_ratio: float = 2.5,
                fill_perimeter: float = 0.3) -> tuple[np.ndarray, dict]:
    """Surface triangles of a point cloud with open mouth and eyes.

    verts: (N, 3) rest shape, metres. uv: (N, 2) unwrap. landmarks: (68,) vertex ids (iBUG-68).
    deformed: (K, N, 3) shapes the mesh must follow without bridging (e.g. open mouths).
    Returns faces (T, 3) int64, counter-clockwise in uv, and counts of what each rule removed.
    """
    faces = Delaunay(uv).simplices.astype(np.int64)
    flip = signed_area(uv, faces) < 0
    faces[flip] = faces[flip][:, [0, 2, 1]]
    info = {"delaunay": len(faces)}
    keep = signed_area(uv, faces) > 1e-14  # drop flat slivers of collinear points
    hole = _in_openings(uv, faces, landmarks)
    info["holes"] = int((hole & keep).sum())
    keep &= ~hole
    rest = edge_lengths(verts, faces)  # (T, 3)
    median = float(np.median(rest[keep]))
    if deformed is not None and len(deformed):
        stretch = (edge_lengths(deformed, faces) / np.maximum(rest, 1e-12)).max(-1).max(0)  # (T,)
        bad = stretch > stretch_ratio
        info["stretch"] = int((bad & keep).sum())
        keep &= ~bad
    fold = rest.max(1) > fold_ratio * median
    info["long"] = int((fold & keep).sum())
    keep &= ~fold
    long_border = rest.max(1) > border_ratio * median
    peeled = 0
    while True:
        idx = np.flatnonzero(keep)
        rm = idx[boundary_faces(faces[idx]) & long_border[idx]]
        if len(rm) == 0:
            break
        keep[rm] = False
        peeled += len(rm)
    info["border"] = peeled
    faces = largest_component(faces[keep], len(verts))
    centres = [uv[landmarks[poly]].mean(0) for poly in (MOUTH_INNER, RIGHT_EYE, LEFT_EYE)]
    faces, info["filled_holes"] = fill_holes(verts, uv, faces, fill_perimeter, centres)
    faces = clean_faces(faces[~_in_openings(uv, faces, landmarks)])
    info["faces"] = len(faces)
    return faces, info


def _in_openings(uv: np.ndarray, faces: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """(T,) bool: centroid inside the inner-mouth or an eye polygon."""
    centroid = uv[faces].mean(1)  # (T, 2)
    hole = np.zeros(len(faces), bool)
    for poly in (MOUTH_INNER, RIGHT_EYE, LEFT_EYE):
        hole |= points_in_polygon(centroid, uv[landmarks[poly]])
    return hole


def clean_faces(faces: np.ndarray) -> np.ndarray:
    """Drop faces with repeated vertices and duplicate faces (any winding)."""
    faces = faces[(faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])]
    _, first = np.unique(np.sort(faces, 1), axis=0, return_index=True)
    return faces[np.sort(first)]


def farthest_point_order(points: np.ndarray, count: int, seeds: np.ndarray) -> np.ndarray:
    """Farthest-point sampling: the seeds, then points greedily farthest from everything chosen.

    points (N, D); seeds (S,) ids chosen first. Returns (count,) ids; every prefix is itself a
    well-spread subset, so levels taken as prefixes are nested.
    """
    order = list(dict.fromkeys(int(s) for s in seeds))
    dist = np.full(len(points), np.inf)
    for s in order:
        dist = np.minimum(dist, ((points - points[s]) ** 2).sum(1))
    out = np.empty(count, np.int64)
    out[:len(order)] = order
    for i in range(len(order), count):
        j = int(dist.argmax())
        out[i] = j
        dist = np.minimum(dist, ((points - points[j]) ** 2).sum(1))
    return out


def midpoint_subdivide(faces: np.ndarray, num_verts: int
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One level of 1-to-4 midpoint subdivision.

    faces (T, 3) -> edges (E, 2) whose midpoints become vertices num_verts + e, new faces
    (4T, 3) (block k of T faces lies inside old face i = row % T), and (E,) one old face per edge.
    Orientation is preserved.
    """
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])  # (3T, 2)
    e_sorted = np.sort(e, 1)
    edges, first, inv = np.unique(e_sorted, axis=0, return_index=True, return_inverse=True)
    inv = inv.reshape(-1)
    mid = num_verts + inv.reshape(3, -1).T  # (T, 3): midpoints of edges 01, 12, 20
    a, b, c = faces[:, 0], faces[:, 1], faces[:, 2]
    m01, m12, m20 = mid[:, 0], mid[:, 1], mid[:, 2]
    new = np.concatenate([np.stack([a, m01, m20], 1), np.stack([m01, b, m12], 1),
                          np.stack([m20, m12, c], 1), np.stack([m01, m12, m20], 1)])
    return edges, new, first % len(faces)


def boundary_loops(faces: np.ndarray) -> list[np.ndarray]:
    """Closed loops of boundary edges, each (L,) vertex ids in the faces' edge direction
    (clockwise around a hole seen from outside)."""
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])  # (3T, 2) directed
    _, count = edge_keys(faces)
    out: dict[int, list[int]] = {}
    for a, b in e[count == 1]:
        out.setdefault(int(a), []).append(int(b))
    loops = []
    for start in list(out):
        while out.get(start):
            loop, v = [start], out[start].pop()
            while v != start and out.get(v) and len(loop) < 10 * len(e):
                loop.append(v)
                v = out[v].pop()
            if v == start and len(loop) >= 3:
                loops.append(np.array(loop))
    return loops


def _ear_clip(p: np.ndarray) -> list[tuple[int, int, int]]:
    """Triangulate a counter-clockwise 2D polygon p (L, 2) -> index triples (fan if it fails)."""
    idx = list(range(len(p)))
    out = []

    def cross(a, b, c):
        return (p[b, 0] - p[a, 0]) * (p[c, 1] - p[a, 1]) - (p[b, 1] - p[a, 1]) * (p[c, 0] - p[a, 0])

    while len(idx) > 3:
        for k in range(len(idx)):
            a, b, c = idx[k - 1], idx[k], idx[(k + 1) % len(idx)]
            if cross(a, b, c) <= 0:
                continue
            others = [o for o in idx if o not in (a, b, c)]
            q = p[others]
            inside = ((cross_pts(p[a], p[b], q) > 0) & (cross_pts(p[b], p[c], q) > 0)
                      & (cross_pts(p[c], p[a], q) > 0))
            if not inside.any():
                out.append((a, b, c))
                idx.pop(k)
                break
        else:  # no ear: not a simple polygon in this projection; fan the rest
            out += [(idx[0], idx[i], idx[i + 1]) for i in range(1, len(idx) - 1)]
            return out
    out.append(tuple(idx))
    return out


def cross_pts(a: np.ndarray, b: np.ndarray, q: np.ndarray) -> np.ndarray:
    return (b[0] - a[0]) * (q[:, 1] - a[1]) - (b[1] - a[1]) * (q[:, 0] - a[0])


def fill_holes(verts: np.ndarray, uv: np.ndarray, faces: np.ndarray, max_perimeter: float,
               keep_open: list[np.ndarray]) -> tuple[np.ndarray, int]:
    """Close small holes (projection folds: nostrils, ears) by ear clipping in each hole's
    best-fit plane. Loops longer than max_perimeter (3D) and loops around any of the
    ``keep_open`` uv points (P, 2) (mouth and eye centres) stay open. Returns (faces, filled)."""
    new, filled = [], 0
    for loop in boundary_loops(faces):
        ring = verts[loop]
        if np.linalg.norm(ring - np.roll(ring, -1, 0), axis=1).sum() > max_perimeter:
            continue
        if any(points_in_polygon(np.asarray(pt)[None], uv[loop])[0] for pt in keep_open):
            continue
        loop = loop[::-1]  # counter-clockwise around the hole seen from outside
        ring = verts[loop] - verts[loop].mean(0)
        normal = np.cross(ring, np.roll(ring, -1, 0)).sum(0)  # (3,) Newell normal of the CCW ring
        normal /= max(np.linalg.norm(normal), 1e-20)
        e1 = np.cross(normal, [0.0, 0.0, 1.0] if abs(normal[2]) < 0.9 else [1.0, 0.0, 0.0])
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(normal, e1)
        tris = _ear_clip(np.stack([ring @ e1, ring @ e2], 1))
        new += [(loop[a], loop[b], loop[c]) for a, b, c in tris]
        filled += 1
    if new:
        added = np.array(new, np.int64)
        faces = np.concatenate([faces, added])
        _, count = edge_keys(faces)
        bad = (count > 2).reshape(3, -1).any(0)
        bad[:-len(added)] = False  # only ever drop filling triangles
        faces = faces[~bad]
    return faces, filled


def largest_component(faces: np.ndarray, num_verts: int) -> np.ndarray:
    """Faces of the largest edge-connected piece of the mesh."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]]])
    adj = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(num_verts, num_verts))
    _, label = connected_components(adj, directed=False)
    face_label = label[faces[:, 0]]
    return faces[face_label == np.bincount(face_label).argmax()]
