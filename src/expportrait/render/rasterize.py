"""Pure-PyTorch z-buffer rasterizer: rasterize (no gradient), then interpolate (differentiable).

Pipeline ("rasterize, then interpolate"):

1. ``_zbuffer`` (no autograd): every triangle's clamped pixel bounding box is enumerated; faces are
   bucketed by bounding-box size class so that each bucket is one dense ``(n_faces, bw * bh)``
   tensor op. Each candidate pixel centre is tested with the triangle's screen-space barycentric
   planes, and visibility is resolved with one ``scatter_reduce(amax)`` into an int64 z-buffer
   whose keys pack quantised inverse depth (high bits) and face index (low bits): nearest wins.
2. ``_fragments`` (autograd): for every covered pixel the winning face's three screen vertices are
   gathered, the 2x2 system for the screen barycentrics is solved in closed form, and the result
   is made perspective-correct with 1/z. Gradients flow to ``screen`` (pixel x, y and depth z).

Conventions: OpenCV pixels (x right, y down, pixel centres at integer coordinates); a pixel is
covered when its centre lies inside the triangle (edges inclusive, no back-face culling).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from expportrait.errors import UserError

_NEAR = 1e-6          # vertices with z <= _NEAR (behind / at the camera) cull their triangle
_EDGE_EPS = 1e-6      # inclusive edge test tolerance (in barycentric units): no cracks on shared edges
_CHUNK = 1 << 22      # max candidate pixels processed in one dense op (memory bound)
# bounding-box size classes (pixels); a box is padded to the next class in each direction
_SIZES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024,
          1536, 2048, 3072, 4096, 6144, 8192)


@dataclass
class Fragments:
    """Per-pixel rasterization result.

    face_id: (B, H, W) int64 index into ``faces``, -1 = background.
    bary: (B, H, W, 3) perspective-correct barycentrics of the pixel centre w.r.t. the face's
        three vertices (sum to 1 on covered pixels, 0 on background); differentiable w.r.t. the
        screen vertices.
    depth: (B, H, W) camera z in metres at the pixel centre (perspective-correct), 0 on background.
    """

    face_id: Tensor
    bary: Tensor
    depth: Tensor

    @property
    def mask(self) -> Tensor:
        """(B, H, W) bool, True where a face covers the pixel centre."""
        return self.face_id >= 0


def rasterize(screen: Tensor, faces: Tensor, height: int, width: int, backend: str = "auto") -> Fragments:
    """Rasterize a batch of meshes.

    screen: (B, V, 3) pixel x, pixel y (OpenCV, pixel centres at integer coordinates, y down) and
        camera depth z > 0 in metres (``render.camera.to_screen`` makes this).
    faces: (T, 3) int64 vertex indices (shared by the batch).
    backend: "torch" | "nvdiffrast" | "auto" (nvdiffrast when importable and ``screen`` is on CUDA).
    Returns ``Fragments`` with (B, height, width) tensors; the nearest surface wins.
    """
    if screen.ndim != 3 or screen.shape[-1] != 3:
        raise UserError(f"screen must be (B, V, 3), got {tuple(screen.shape)}")
    if faces.ndim != 2 or faces.shape[-1] != 3:
        raise UserError(f"faces must be (T, 3), got {tuple(faces.shape)}")
    if height < 1 or width < 1:
        raise UserError(f"image size must be positive, got {height}x{width}")
    faces = faces.to(device=screen.device, dtype=torch.long)
    from expportrait.render import nvdiff  # local: keeps the optional backend out of import time

    if nvdiff.select_backend(backend, screen) == "nvdiffrast":
        return nvdiff.rasterize_nvdiffrast(screen, faces, height, width)
    face_id = _zbuffer(screen.detach(), faces, height, width)
    return _fragments(screen, faces, face_id)


def interpolate(attrs: Tensor, faces: Tensor, frags: Fragments) -> Tensor:
    """attrs (B, V, C) per-vertex values -> (B, H, W, C) perspective-correct per-pixel values,
    zeros on background. Differentiable w.r.t. ``attrs`` and (through ``frags.bary``) the
    screen vertices."""
    B, H, W = frags.face_id.shape
    if attrs.ndim != 3 or attrs.shape[0] != B:
        raise UserError(f"attrs must be (B={B}, V, C), got {tuple(attrs.shape)}")
    fid = frags.face_id.reshape(-1)                       # (B*H*W,)
    pix = torch.nonzero(fid >= 0).squeeze(1)              # (N,) covered flat pixels
    a = _gather_face_verts(attrs, faces.to(fid.device), fid, pix, H * W)   # (N, 3, C)
    w = frags.bary.reshape(-1, 3).index_select(0, pix)    # (N, 3)
    val = (a * w[..., None].to(a.dtype)).sum(1)           # (N, C)
    out = attrs.new_zeros(B * H * W, attrs.shape[-1]).index_put((pix,), val)
    return out.reshape(B, H, W, -1)                       # (B, H, W, C)


def pixel_barycentrics(tri: Tensor, px: Tensor, py: Tensor) -> Tensor:
    """Screen-space (affine) barycentrics of points w.r.t. triangles, differentiable.

    tri: (N, 3, >=2) screen vertices (pixel x, y); px, py: (N,) point coordinates (pixels)
    -> (N, 3) barycentrics l with l @ tri[..., :2] == (px, py). Solves the 2x2 system
    [v1 - v0, v2 - v0] (l1, l2) = p - v0 in closed form (Cramer's rule).
    """
    v0, v1, v2 = tri[:, 0, :2], tri[:, 1, :2], tri[:, 2, :2]   # (N, 2) each
    d1, d2 = v1 - v0, v2 - v0
    dpx, dpy = px - v0[:, 0], py - v0[:, 1]                     # (N,)
    den = d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]
    den = torch.where(den.abs() < 1e-12, torch.full_like(den, 1e-12), den)
    l1 = (dpx * d2[:, 1] - dpy * d2[:, 0]) / den
    l2 = (d1[:, 0] * dpy - d1[:, 1] * dpx) / den
    return torch.stack([1.0 - l1 - l2, l1, l2], -1)             # (N, 3)


def perspective_correct(lam: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
    """Screen barycentrics lam (N, 3) and vertex depths z (N, 3) > 0 -> perspective-correct
    barycentrics (N, 3) and the depth (N,) at the point (1 / sum(lam / z))."""
    w = lam / z                                                 # (N, 3)
    s = w.sum(-1, keepdim=True)                                 # (N, 1) = 1 / depth
    return w / s, 1.0 / s.squeeze(-1)


def _fragments(screen: Tensor, faces: Tensor, face_id: Tensor) -> Fragments:
    """Differentiable barycentrics / depth of the winning faces. face_id (B, H, W) int64."""
    B, H, W = face_id.shape
    fid = face_id.reshape(-1)                                   # (B*H*W,)
    pix = torch.nonzero(fid >= 0).squeeze(1)                    # (N,)
    rem = pix % (H * W)
    py = (rem // W).to(screen.dtype)
    px = (rem % W).to(screen.dtype)
    tri = _gather_face_verts(screen, faces, fid, pix, H * W)    # (N, 3, 3) pixel x, y, z
    lam = pixel_barycentrics(tri, px, py)                       # (N, 3)
    bary, depth = perspective_correct(lam, tri[..., 2])         # (N, 3), (N,)
    bary_full = screen.new_zeros(B * H * W, 3).index_put((pix,), bary)
    depth_full = screen.new_zeros(B * H * W).index_put((pix,), depth)
    return Fragments(face_id=face_id, bary=bary_full.reshape(B, H, W, 3),
                     depth=depth_full.reshape(B, H, W))


def _gather_face_verts(values: Tensor, faces: Tensor, fid: Tensor, pix: Tensor, hw: int) -> Tensor:
    """values (B, V, C), faces (T, 3), fid (B*H*W,) face per flat pixel, pix (N,) flat pixels
    (all covered) -> (N, 3, C) the values at the three vertices of each pixel's face."""
    B, V, C = values.shape
    vidx = faces.index_select(0, fid.index_select(0, pix))       # (N, 3) vertex indices
    flat = (vidx + (pix // hw)[:, None] * V).reshape(-1)          # (N*3,) rows of (B*V, C)
    return values.reshape(B * V, C).index_select(0, flat).reshape(-1, 3, C)


def _size_class(n: Tensor) -> Tensor:
    """(T,) int64 box extents >= 1 -> index into _SIZES of the smallest class >= n."""
    sizes = torch.tensor(_SIZES, device=n.device)
    return torch.searchsorted(sizes, n.clamp(max=_SIZES[-1]))


@torch.no_grad()
def _zbuffer(screen: Tensor, faces: Tensor, height: int, width: int) -> Tensor:
    """Visible face per pixel. screen (B, V, 3) (no grad), faces (T, 3) -> (B, H, W) int64, -1 bg."""
    B, T = screen.shape[0], faces.shape[0]
    dev = screen.device
    zbuf = torch.full((B * height * width,), -1, dtype=torch.long, device=dev)
    if T == 0:
        return zbuf.reshape(B, height, width)
    tri = screen.float().index_select(1, faces.reshape(-1)).reshape(B * T, 3, 3)  # (B*T, 3 verts, xyz)
    x, y, z = tri[..., 0], tri[..., 1], tri[..., 2]               # (B*T, 3) each
    x0 = x.amin(1).ceil().clamp(min=0)
    x1 = x.amax(1).floor().clamp(max=width - 1)
    y0 = y.amin(1).ceil().clamp(min=0)
    y1 = y.amax(1).floor().clamp(max=height - 1)
    # barycentric planes l_k(p) = l_k(corner) + gx_k * ox + gy_k * oy  (k = 1, 2), and 1/z likewise
    d1x, d1y = x[:, 1] - x[:, 0], y[:, 1] - y[:, 0]
    d2x, d2y = x[:, 2] - x[:, 0], y[:, 2] - y[:, 0]
    den = d1x * d2y - d1y * d2x                                   # 2 * signed area (pixels^2)
    ok = (z > _NEAR).all(1) & (x1 >= x0) & (y1 >= y0) & (den.abs() > 1e-9) & torch.isfinite(den)
    sel = torch.nonzero(ok).squeeze(1)                            # (M,) surviving (batch, face)
    if sel.numel() == 0:
        return zbuf.reshape(B, height, width)
    x, y, iz = x[sel], y[sel], 1.0 / z[sel]                       # (M, 3)
    x0, x1, y0, y1 = x0[sel], x1[sel], y0[sel], y1[sel]
    d1x, d1y, d2x, d2y, inv = d1x[sel], d1y[sel], d2x[sel], d2y[sel], 1.0 / den[sel]
    ex, ey = x0 - x[:, 0], y0 - y[:, 0]                           # corner relative to v0
    g1x, g1y = d2y * inv, -d2x * inv                              # d l1 / d(px, py)
    g2x, g2y = -d1y * inv, d1x * inv                              # d l2 / d(px, py)
    c1 = ex * g1x + ey * g1y                                      # l1 at the box corner
    c2 = ex * g2x + ey * g2y
    dz1, dz2 = iz[:, 1] - iz[:, 0], iz[:, 2] - iz[:, 0]           # 1/z = iz0 + l1 dz1 + l2 dz2
    cz = iz[:, 0] + c1 * dz1 + c2 * dz2
    gzx, gzy = g1x * dz1 + g2x * dz2, g1y * dz1 + g2y * dz2
    # packed key: quantised 1/z (relative to the largest 1/z) << fbits | face index
    fbits = max(1, math.ceil(math.log2(T + 1)))
    zscale = float(2 ** (62 - fbits) - 1) / float(iz.max())
    fidx = sel % T                                                # (M,) face index
    base = (sel // T) * (height * width) + y0.long() * width + x0.long()   # (M,) flat corner pixel
    wext, hext = x1 - x0, y1 - y0                                 # box extent - 1 (pixels)
    cls = _size_class(wext.long() + 1) * len(_SIZES) + _size_class(hext.long() + 1)
    order = torch.argsort(cls)
    ucls, counts = torch.unique_consecutive(cls[order], return_counts=True)
    params = torch.stack([c1, g1x, g1y, c2, g2x, g2y, cz, gzx, gzy, wext, hext], 1)  # (M, 11)
    start = 0
    for k, n in zip(ucls.tolist(), counts.tolist()):
        bw, bh = _SIZES[k // len(_SIZES)], _SIZES[k % len(_SIZES)]
        idx = order[start:start + n]
        start += n
        oy, ox = torch.meshgrid(torch.arange(bh, device=dev), torch.arange(bw, device=dev),
                                indexing="ij")
        ox, oy = ox.reshape(-1), oy.reshape(-1)                   # (bh*bw,) pixel offsets
        off = oy * width + ox
        oxf, oyf = ox.float(), oy.float()
        step = max(1, _CHUNK // (bw * bh))
        for s in range(0, n, step):
            j = idx[s:s + step]
            p = params[j]                                         # (m, 11)
            pc = [p[:, i:i + 1] for i in range(11)]               # (m, 1) each
            l1 = pc[0] + pc[1] * oxf + pc[2] * oyf                # (m, bh*bw)
            l2 = pc[3] + pc[4] * oxf + pc[5] * oyf
            inside = (l1 >= -_EDGE_EPS) & (l2 >= -_EDGE_EPS) & (l1 + l2 <= 1.0 + _EDGE_EPS)
            if bw > 1:
                inside &= oxf <= pc[9]                            # inside the clamped box
            if bh > 1:
                inside &= oyf <= pc[10]
            izp = pc[6] + pc[7] * oxf + pc[8] * oyf               # (m, bh*bw) 1/z
            key = ((izp * zscale).clamp(min=0).long() << fbits) | fidx[j, None]
            key = torch.where(inside, key, torch.full_like(key, -1))
            tgt = (base[j, None] + off).clamp(max=zbuf.numel() - 1)   # (m, bh*bw) flat pixels
            zbuf.scatter_reduce_(0, tgt.reshape(-1), key.reshape(-1), reduce="amax")
    face = torch.where(zbuf >= 0, zbuf & ((1 << fbits) - 1), torch.full_like(zbuf, -1))
    return face.reshape(B, height, width)


_DIRS = ((1, 0), (-1, 0), (0, 1), (0, -1))
_WALK = 32            # soft silhouette: faces walked from p towards q to find a silhouette edge


def soft_silhouette(screen: Tensor, faces: Tensor, frags: Fragments) -> Tensor:
    """Anti-aliased coverage (B, H, W) in [0, 1] whose silhouette moves with the vertices.

    For every pair of 4-neighbour pixels (p covered, q background) the covering face at p is
    intersected with the segment between the two pixel centres (crossing at fraction t from p,
    from the face's barycentric planes, differentiable w.r.t. ``screen``). Like nvdiffrast's
    antialias, q gains coverage t - 0.5 when the edge passes beyond the midpoint and p loses
    0.5 - t when it falls short, weighted by how perpendicular the edge is to the pair's axis
    (|grad l_k| share), so straight edges at any angle give about their box-filtered area.
    The crossing is found by walking along the segment p -> q through the mesh (face to face
    across interior edges, at most ``_WALK`` faces) until it leaves through a silhouette-capable
    edge (mesh boundary, or between a front- and a back-facing face in screen space), so
    interior edges of a fine mesh never cut coverage (no exit found: no change).
    Interior pixels are 1, far background 0; gradients only exist on silhouette pixels.
    """
    B, H, W = frags.face_id.shape
    fid = frags.face_id
    hard = frags.mask.to(screen.dtype)
    pix = torch.nonzero(fid.reshape(-1) >= 0).squeeze(1)            # (N,) covered flat pixels
    b, rem = pix // (H * W), pix % (H * W)
    y, x = rem // W, rem % W
    sil, partner = _silhouette_edges(screen.detach(), faces)        # (B, T, 3) each
    delta = screen.new_zeros(B * H * W)
    for dx, dy in _DIRS:
        qx, qy = x + dx, y + dy
        ok = (qx >= 0) & (qx < W) & (qy >= 0) & (qy < H)
        qflat = b * H * W + qy.clamp(0, H - 1) * W + qx.clamp(0, W - 1)
        ok &= fid.reshape(-1)[qflat] < 0                               # neighbour is background
        if not bool(ok.any()):
            continue
        pf, qf, pb = pix[ok], qflat[ok], b[ok]
        face = fid.reshape(-1)[pf]                                     # (n,) p's face
        px, py = x[ok], y[ok]
        t, wgt, first = _edge_crossing(screen, faces, sil, pb, face, px, py, dx, dy)
        # the segment leaves p's face through an interior edge: walk along it into the next
        # face(s) until it leaves through a silhouette edge (at most _WALK faces)
        todo = torch.nonzero((wgt == 0) & (first >= 0)).squeeze(1)       # (r,) pairs to walk
        cur, step = face, first
        for _ in range(_WALK):
            if todo.numel() == 0:
                break
            nxt = partner[pb[todo], cur[todo], step[todo]]
            t2, w2, f2 = _edge_crossing(screen, faces, sil, pb[todo], nxt, px[todo], py[todo], dx, dy)
            t, wgt = t.index_put((todo,), t2), wgt.index_put((todo,), w2)
            cur, step = cur.index_put((todo,), nxt), step.index_put((todo,), f2)
            todo = todo[(w2 == 0) & (f2 >= 0) & (nxt != face[todo])]
        delta = delta.index_add(0, qf, (t - 0.5).clamp(0.0, 0.5) * wgt)
        delta = delta.index_add(0, pf, -(0.5 - t).clamp(0.0, 0.5) * wgt)
    return (hard + delta.reshape(B, H, W)).clamp(0.0, 1.0)


def _edge_crossing(screen, faces, sil, b, face, x, y, dx: int, dy: int):
    """Where the segment from pixel p = (x, y) to q = (x + dx, y + dy) leaves ``face`` (batch
    ``b``); all index tensors (n,). Returns t (n,) in [0, 1] (fraction from p, differentiable),
    the edge-angle weight (n,) (0 unless the exit edge is a silhouette edge) and the exit edge
    (n,) int64 (-1: the segment does not leave the face before q)."""
    tri = screen[b[:, None], faces[face]]                             # (n, 3, 3)
    fx, fy = x.to(screen.dtype), y.to(screen.dtype)
    lp = pixel_barycentrics(tri, fx, fy)                              # (n, 3) at p (maybe < 0)
    gx = pixel_barycentrics(tri, fx + 1.0, fy) - lp                   # (n, 3) d l / d px
    gy = pixel_barycentrics(tri, fx, fy + 1.0) - lp                   # (n, 3) d l / d py
    dl = gx * dx + gy * dy                                            # (n, 3) change p -> q
    out = (lp + dl).detach() < 0                                      # q beyond these lines
    crossing = out & (dl.detach() < 0)
    tk = torch.where(crossing, -lp / torch.where(crossing, dl, -torch.ones_like(dl)),
                     torch.full_like(lp, 2.0))                        # (n, 3) crossing fractions
    k = tk.detach().argmin(1, keepdim=True)                           # (n, 1) exit edge
    hit = crossing.any(1)
    first = torch.where(hit, k.squeeze(1), torch.full_like(b, -1))
    t = tk.gather(1, k).squeeze(1).clamp(0.0, 1.0)                   # (n,)
    ax = (gx.abs() * abs(dx) + gy.abs() * abs(dy)).gather(1, k).squeeze(1)
    wgt = ax / (gx.abs() + gy.abs()).gather(1, k).squeeze(1).clamp_min(1e-12)
    wgt = wgt * (hit & sil[b, face].gather(1, k).squeeze(1))         # exit is not a silhouette: 0
    return t, wgt, first


def _silhouette_edges(screen: Tensor, faces: Tensor) -> tuple[Tensor, Tensor]:
    """Silhouette-capable edges. Returns (B, T, 3) bool: the edge opposite vertex k of each face
    is a mesh boundary edge, a non-manifold edge, or its two faces have opposite screen
    orientation; and (B, T, 3) int64 the face across that edge (itself when there is none).
    screen (B, V, 3) pixels; faces (T, 3)."""
    B, T = screen.shape[0], faces.shape[0]
    V = screen.shape[1]
    a = faces[:, [1, 2, 0]].reshape(-1)                           # (3T,) edge k = (k+1, k+2)
    b = faces[:, [2, 0, 1]].reshape(-1)
    key = torch.minimum(a, b) * V + torch.maximum(a, b)            # (3T,) undirected edge id
    key_sorted, order = torch.sort(key)
    _, inv, counts = torch.unique_consecutive(key_sorted, return_inverse=True, return_counts=True)
    cnt = counts[inv]                                              # (3T,) faces on this edge
    prev_same = torch.cat([key_sorted.new_zeros(1, dtype=torch.bool), key_sorted[1:] == key_sorted[:-1]])
    partner_sorted = torch.where(prev_same, order.roll(1), order.roll(-1))   # the other half-edge
    partner = torch.empty_like(order)
    partner[order] = partner_sorted                                # (3T,) half-edge index
    single = torch.empty_like(cnt)
    single[order] = cnt
    tri = screen.index_select(1, faces.reshape(-1)).reshape(B, T, 3, 3)
    d1, d2 = tri[:, :, 1, :2] - tri[:, :, 0, :2], tri[:, :, 2, :2] - tri[:, :, 0, :2]
    front = (d1[..., 0] * d2[..., 1] - d1[..., 1] * d2[..., 0]) > 0   # (B, T) screen orientation
    face_of = torch.arange(3 * T, device=faces.device) // 3
    flip = front[:, face_of] != front[:, partner // 3]            # (B, 3T)
    other = torch.where(single == 2, partner // 3, face_of)       # (3T,) face across the edge
    return ((flip | (single != 2)[None]).reshape(B, T, 3),
            other.reshape(1, T, 3).expand(B, T, 3))
