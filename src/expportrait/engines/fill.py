"""Exemplar (patch-based) hole filling: what a moving head uncovers, continued from the
background's own patches instead of smeared in (``segment.background_plate``'s default method).

Multi-scale completion in the manner of Wexler, Shechtman and Irani (2007, "Space-time completion
of video", image case): on an image pyramid of the hole's box, each hole pixel is the weighted vote
of the patches that cover it, each patch copied from its nearest neighbour among the fully known
patches around the hole, alternated with a new nearest-neighbour search (expectation-maximisation).
The coarsest level is brute force: an onion-peel initialisation (rings of the hole filled from
the boundary inwards with the best match of each pixel's known neighbourhood, a Criminisi-like
start that carries edges in) followed by exact search. Finer levels use PatchMatch (Barnes et al.
2009), run on all pixels at once (propagation from the four neighbours at several jump lengths,
random search in halving windows), on low-frequency DCT coefficients of the patches; the field
found at one level is upsampled to start the next. Votes are weighted by patch similarity and, as
in Wexler et al., by GAMMA^-(depth of the patch's centre in the hole), so the rim follows the
known side; at the end the copies' mismatch with the pixels just outside the hole is spread
smoothly into its rim (a seam correction in the spirit of Poisson blending). Levels finer than
``work_side`` only vote with the upsampled field (full-resolution copies, no search), so big holes
cost little more than the working size. Known pixels in ``avoid`` (the rest of the person) are never copied, and those
near the hole are filled along with it (not returned), so no patch voting on the hole sees them.
Deterministic for a given ``seed``; benchmarks/plate_fill.py measures it against Telea.
"""
from __future__ import annotations

import numpy as np

PATCH = 7          # patch side, px (every level)
CONTEXT = 0.35     # known pixels used: the hole's box grown by this x its larger side
WORK_SIDE = 384    # levels whose box is larger only vote with the upsampled field
COARSE_HOLE = 24   # the coarsest level has the hole at most this many px across
MIN_HOLE = 16      # fewer hole pixels than this: Telea does as well
MIN_SOURCES = 64   # fewer fully known patches than this at some level: no exemplars to copy
MAX_EXHAUSTIVE = 5e6   # coarsest level's hole pixels x sources above this: too slow, Telea
GAMMA = 1.6        # a patch centred d px inside the hole votes with weight GAMMA^-d
HEAL_SIGMA, HEAL_TAU = 2.0, 6.0   # the rim's seam correction: spread (px), fade depth (px; 0: off)
EM_COARSE, EM_FINE = 3, 2   # search-and-vote rounds at the coarsest level / at each searched finer one
DCT_FREQ = (4, 1, 1)   # PatchMatch descriptors: DCT frequencies u + v <= this per opponent channel
OPPONENT = np.array([[1, 1, 1], [1, -1, 0], [1, 1, -2]], np.float32) / np.array(
    [[np.sqrt(3)], [np.sqrt(2)], [np.sqrt(6)]], np.float32)   # RGB -> orthonormal opponent colours


def patch_fill(image: np.ndarray, hole: np.ndarray, avoid: np.ndarray | None = None, *,
               seed: int = 0, work_side: int | None = None, context: float | None = None,
               patch: int | None = None) -> np.ndarray | None:
    """image (H, W, 3) uint8, hole (H, W) bool (the pixels to fill), avoid (H, W) bool or None
    (known pixels never copied from, e.g. the rest of the person) -> (H, W, 3) uint8 with only the
    hole's pixels changed, or None where exemplar filling does not apply (a hole of fewer than
    ``MIN_HOLE`` px, no known pixel, fewer than ``MIN_SOURCES`` fully known patches to copy
    from, or so few that the coarsest level stays large: ``MAX_EXHAUSTIVE``): the caller falls
    back to a diffusion inpainter. Works on the hole's box
    grown by ``context`` x its larger side (at least 4 patches) on every side; ``work_side``: the
    largest box side (px) searched at, finer levels vote with the upsampled nearest-neighbour
    field."""
    hole = np.asarray(hole, bool)
    if hole.sum() < MIN_HOLE or hole.all():
        return None
    work_side = WORK_SIDE if work_side is None else work_side
    context = CONTEXT if context is None else context
    patch = PATCH if patch is None else patch
    r = patch // 2
    ys, xs = np.nonzero(hole)
    extent = max(np.ptp(ys), np.ptp(xs)) + 1
    m = max(4 * patch, int(context * extent))
    H, W = hole.shape
    y0, y1, x0, x1 = max(0, ys.min() - m), min(H, ys.max() + 1 + m), max(0, xs.min() - m), min(W, xs.max() + 1 + m)
    sub = hole[y0:y1, x0:x1]
    work, source = sub, ~sub
    if avoid is not None:
        av = np.asarray(avoid, bool)[y0:y1, x0:x1]
        source = source & ~av
        import cv2
        # those near the hole are filled too (not returned): no patch voting on it sees them
        near = cv2.dilate(sub.astype(np.uint8), np.ones((4 * r + 1, 4 * r + 1), np.uint8)) > 0
        work = sub | (av & near)
    n_levels = 1 + max(0, int(np.ceil(np.log2(extent / COARSE_HOLE))))
    pyr = [(image[y0:y1, x0:x1].astype(np.float32), work, source)]
    if _sources(work, source, r).sum() < MIN_SOURCES:
        return None
    while len(pyr) < n_levels:                   # coarser while patches are left to copy from
        nxt = _down(*pyr[-1])
        if _sources(nxt[1], nxt[2], r).sum() < MIN_SOURCES:
            break
        pyr.append(nxt)
    n_levels = len(pyr)
    _, h, s = pyr[-1]
    if h.sum() * _sources(h, s, r).sum() > MAX_EXHAUSTIVE:   # a thin rim of known pixels only
        return None
    rng = np.random.default_rng(seed)
    field = None
    for lev in range(n_levels - 1, -1, -1):
        img, h, s = pyr[lev]
        level = _Level(img, h, s, r)
        if field is None:
            level.onion_peel()
            for _ in range(EM_COARSE):
                level.exact_search()
                level.vote()
        else:
            level.upsample(field)
            level.vote(stride=r)
            if max(img.shape[:2]) > work_side:
                continue                         # past the working size: the upsampled field as is
            for it in range(EM_FINE):
                level.features()
                level.patchmatch(rng, iters=2 if it == 0 else 1)
                level.vote()
        field = level.field_map()
    if HEAL_TAU > 0:
        level.heal(HEAL_SIGMA, HEAL_TAU)
    filled = np.clip(np.rint(level.image()), 0, 255).astype(np.uint8)
    out = image.copy()
    out[y0:y1, x0:x1][sub] = filled[sub]
    return out


def _down(img: np.ndarray, hole: np.ndarray, source: np.ndarray):
    """One pyramid step: halve (h, w), known colours averaged over known pixels only; a coarse
    pixel is a hole pixel if any fine one is, a source only if all its fine ones are."""
    import cv2
    h, w = hole.shape
    size = (max(1, (w + 1) // 2), max(1, (h + 1) // 2))
    known = (~hole).astype(np.float32)
    num = cv2.resize(img * known[..., None], size, interpolation=cv2.INTER_AREA)   # (h/2, w/2, 3)
    den = cv2.resize(known, size, interpolation=cv2.INTER_AREA)                    # (h/2, w/2)
    small = num / np.maximum(den, 1e-6)[..., None]
    src = cv2.resize(source.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0.999
    return small.astype(np.float32), den < 0.999, src


def _sources(hole: np.ndarray, source: np.ndarray, r: int) -> np.ndarray:
    """(h, w) bool: patch centres whose whole (2r+1)^2 patch is in the image and copyable."""
    import cv2
    k = np.ones((2 * r + 1, 2 * r + 1), np.uint8)
    ok = cv2.erode(source.astype(np.uint8), k, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
    return ok & ~hole


class _Level:
    """One pyramid level: the image (padded by r, reflected), its hole, the source centres and the
    nearest-neighbour field of the target centres (every centre whose patch touches the hole).
    Coordinates are in the padded image."""

    def __init__(self, img: np.ndarray, hole: np.ndarray, source: np.ndarray, r: int):
        import cv2
        from scipy.ndimage import distance_transform_edt
        self.r, (self.h, self.w) = r, hole.shape
        self.img = cv2.copyMakeBorder(img, r, r, r, r, cv2.BORDER_REFLECT)        # (h+2r, w+2r, 3)
        self.hole = np.pad(hole, r)              # (h+2r, w+2r): the pixels written (not the border)
        src = np.pad(_sources(hole, source, r), r)
        # nearest source centre of every position (snaps candidates onto valid patches)
        _, (self.snap_y, self.snap_x) = distance_transform_edt(~src, return_indices=True)
        self.src_y, self.src_x = np.nonzero(src)
        k = np.ones((2 * r + 1, 2 * r + 1), np.uint8)
        tgt = cv2.dilate(self.hole.astype(np.uint8), k) > 0
        tgt[:r], tgt[-r:], tgt[:, :r], tgt[:, -r:] = False, False, False, False
        self.ty, self.tx = np.nonzero(tgt)                                        # (n,)
        self.index = np.full(self.hole.shape, -1, np.int64)
        self.index[self.ty, self.tx] = np.arange(len(self.ty))
        self.ny, self.nx = self.snap_y[self.ty, self.tx], self.snap_x[self.ty, self.tx]
        self.dist = np.full(len(self.ty), np.inf, np.float32)
        inside = distance_transform_edt(self.hole)[self.ty, self.tx]              # (n,) px from the rim
        self.trust = GAMMA ** -inside                                             # Wexler's weights
        self.copyable = np.pad(source & ~hole, r)                                 # known, not avoided
        self.feat = self.tfeat = None
        oy, ox = np.mgrid[-r:r + 1, -r:r + 1]
        self.oy, self.ox = oy.ravel(), ox.ravel()                                 # (p^2,)

    def _sync(self) -> None:
        """The r-px border <- the interior mirrored (BORDER_REFLECT), after the interior changed."""
        import cv2
        r = self.r
        self.img = cv2.copyMakeBorder(np.ascontiguousarray(self.image()), r, r, r, r, cv2.BORDER_REFLECT)

    # ------------------------------------------------------------------ patches
    def _patches(self, y: np.ndarray, x: np.ndarray, img: np.ndarray | None = None) -> np.ndarray:
        """centres (m,) -> (m, p^2 * 3) float32 patches of the current image."""
        img = self.img if img is None else img
        return img[y[:, None] + self.oy, x[:, None] + self.ox].reshape(len(y), -1)

    def onion_peel(self) -> None:
        """Fill the hole ring by ring from its boundary: each ring pixel takes the centre colour of
        the source patch nearest to its known neighbourhood (masked SSD, exhaustive)."""
        import cv2
        S = self._patches(self.src_y, self.src_x)                                 # (m, D)
        S2 = S * S                                                                # (m, D)
        r, inner = self.r, (slice(self.r, self.r + self.h), slice(self.r, self.r + self.w))
        known = ~self.hole[inner]                                                 # (h, w)
        todo = ~known
        while todo.any():
            ring = todo & (cv2.dilate(known.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
            if not ring.any():                                                    # cannot happen
                ring = todo
            y, x = np.nonzero(ring)
            y, x = y + r, x + r                                                   # padded
            kp = np.pad(known, r, mode="symmetric")                               # (h+2r, w+2r)
            T = self._patches(y, x)                                               # (n, D)
            M = np.repeat(kp[y[:, None] + self.oy, x[:, None] + self.ox], 3, 1).astype(np.float32)
            # masked SSD (n, m); OpenCV's gemm: small products, no BLAS threads to wake up
            d = (M * T * T).sum(1)[:, None] - 2.0 * cv2.gemm(M * T, S, 1.0, None, 0.0, flags=cv2.GEMM_2_T) \
                + cv2.gemm(M, S2, 1.0, None, 0.0, flags=cv2.GEMM_2_T)
            best = np.argmin(d, 1)
            self.img[y, x] = self.img[self.src_y[best], self.src_x[best]]
            self._sync()
            known |= ring
            todo &= ~ring

    def exact_search(self) -> None:
        """Exhaustive nearest source patch of every target (full SSD)."""
        S = self._patches(self.src_y, self.src_x)                                 # (m, D)
        T = self._patches(self.ty, self.tx)                                       # (n, D)
        s2 = (S * S).sum(1)
        for a in range(0, len(T), 2048):
            d = s2[None] - 2.0 * T[a:a + 2048] @ S.T                              # (b, m)
            best = np.argmin(d, 1)
            self.ny[a:a + 2048], self.nx[a:a + 2048] = self.src_y[best], self.src_x[best]
            self.dist[a:a + 2048] = np.maximum(d[np.arange(len(best)), best]
                                               + (T[a:a + 2048] ** 2).sum(1), 0.0)

    # ------------------------------------------------------------------ PatchMatch
    def features(self) -> None:
        """Per-position patch descriptors of the current image: the patch's coefficients on the
        low-frequency 2-D DCT basis (orthonormal, separable) of an orthonormal opponent colour
        space, ``DCT_FREQ`` per channel (the first channel luminance), so squared distances are
        the patch SSD restricted to those frequencies."""
        import cv2
        p = 2 * self.r + 1
        opp = self.img @ OPPONENT.T                                               # (H', W', 3)
        n = np.arange(p)
        dct = np.cos(np.pi * (n[None] + 0.5) * n[:, None] / p) * np.sqrt(2.0 / p)   # (p, p) rows
        dct[0] /= np.sqrt(2.0)
        dct = dct.astype(np.float32)
        feats = []
        for ch, top in enumerate(DCT_FREQ):
            chan = np.ascontiguousarray(opp[..., ch])
            for u in range(top + 1):
                for v in range(top + 1 - u):
                    feats.append(cv2.sepFilter2D(chan, -1, dct[v], dct[u], borderType=cv2.BORDER_REFLECT))
        self.feat = np.stack(feats, -1)                                           # (H', W', k)
        self.tfeat = self.feat[self.ty, self.tx]                                  # (n, k)
        self.dist = self._d(self.ny, self.nx)

    def _d(self, cy: np.ndarray, cx: np.ndarray) -> np.ndarray:
        """(n,) squared feature distance of each target to the candidate centre (cy, cx)."""
        diff = self.tfeat - self.feat[cy, cx]
        return np.einsum("nk,nk->n", diff, diff)

    def _try(self, cy: np.ndarray, cx: np.ndarray, valid: np.ndarray | None = None) -> None:
        H, W = self.hole.shape
        cy, cx = np.clip(cy, 0, H - 1), np.clip(cx, 0, W - 1)
        cy, cx = self.snap_y[cy, cx], self.snap_x[cy, cx]
        d = self._d(cy, cx)
        better = d < self.dist if valid is None else (d < self.dist) & valid
        self.ny[better], self.nx[better], self.dist[better] = cy[better], cx[better], d[better]

    def patchmatch(self, rng: np.random.Generator, iters: int = 2) -> None:
        """Parallel PatchMatch on ``features``: neighbours' offsets at jumps 8, 4, 2, 1, then
        random candidates in windows halving from the level's size."""
        H, W = self.hole.shape
        for it in range(iters):
            for step in (8, 4, 2, 1) if it == 0 else (4, 2, 1):
                for dy, dx in ((step, 0), (-step, 0), (0, step), (0, -step)):
                    j = self.index[np.clip(self.ty + dy, 0, H - 1), np.clip(self.tx + dx, 0, W - 1)]
                    self._try(self.ny[j] - dy, self.nx[j] - dx, j >= 0)
            rad = max(H, W) / 2
            while rad >= 1:
                u = rng.uniform(-1.0, 1.0, (2, len(self.ty)))
                self._try(np.rint(self.ny + rad * u[0]).astype(np.int64),
                          np.rint(self.nx + rad * u[1]).astype(np.int64))
                rad /= 2

    # ------------------------------------------------------------------ voting
    def vote(self, stride: int = 1, at: np.ndarray | None = None) -> np.ndarray | None:
        """Each hole pixel <- the weighted mean of its covering patches' copies, weight
        exp(-d / 2 sigma^2) (sigma^2 the 75th percentile of the field's distances) x the patch's
        trust; ``stride`` > 1: only the patch offsets on that grid vote (stride r: 9 of them).
        ``at`` (H', W') bool: instead, the votes at those pixels -> (k, 3) float (NaN: no vote)."""
        finite = np.isfinite(self.dist)
        s2 = float(np.percentile(self.dist[finite], 75)) if finite.any() else 1.0
        wt = np.where(finite, np.exp(-np.where(finite, self.dist, 0.0) / (2.0 * s2 + 1e-6)), 1e-3)
        wt = np.maximum(wt * self.trust, 1e-6).astype(np.float64)
        H, W = self.hole.shape
        where, ty, tx, ny, nx = self.hole, self.ty, self.tx, self.ny, self.nx
        if at is not None:                       # only the targets whose patches reach ``at``
            import cv2
            where = at
            sel = (cv2.dilate(at.astype(np.uint8), np.ones((2 * self.r + 1,) * 2, np.uint8)) > 0)[ty, tx]
            ty, tx, ny, nx, wt = ty[sel], tx[sel], ny[sel], nx[sel], wt[sel]
        on = (self.oy % stride == self.r % stride) & (self.ox % stride == self.r % stride)
        oy, ox = self.oy[on, None], self.ox[on, None]                             # (q, 1)
        to = ((ty[None] + oy) * W + tx[None] + ox).ravel()                        # (q * n,)
        fr = ((ny[None] + oy) * W + nx[None] + ox).ravel()
        keep = where.ravel()[to]
        to, fr = to[keep], fr[keep]
        ww = np.broadcast_to(wt, (len(oy), len(wt))).ravel()[keep]
        flat = self.img.reshape(-1, 3)
        den = np.bincount(to, ww, H * W)
        num = np.stack([np.bincount(to, ww * flat[fr, c], H * W) for c in range(3)], -1)   # (H'W', 3)
        if at is not None:
            idx = np.flatnonzero(at)
            return np.where(den[idx, None] > 0, num[idx] / np.maximum(den[idx, None], 1e-12), np.nan)
        fill = self.hole.ravel() & (den > 0)
        flat[fill] = (num[fill] / den[fill, None]).astype(np.float32)
        self._sync()
        return None

    def heal(self, sigma: float, tau: float) -> None:
        """Seamless rim: the copies' mismatch with the known pixels just outside the hole (what
        the votes would put there minus what is there), spread smoothly into the hole by
        normalised convolution (Gaussian ``sigma`` px) and added, fading as exp(-depth / tau),
        so the fill meets the boundary without a seam and keeps its texture deeper in."""
        import cv2
        from scipy.ndimage import distance_transform_edt
        ring = (cv2.dilate(self.hole.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0) & ~self.hole
        ring &= self.copyable
        if not ring.any():
            return
        pred = self.vote(at=ring)                                                 # (k, 3)
        ok = np.isfinite(pred).all(1)
        res = np.zeros(self.img.shape, np.float32)                                # (H', W', 3)
        wts = np.zeros(self.hole.shape, np.float32)
        ry, rx = np.nonzero(ring)
        res[ry[ok], rx[ok]] = self.img[ry[ok], rx[ok]] - pred[ok]
        wts[ry[ok], rx[ok]] = 1.0
        den = cv2.GaussianBlur(wts, (0, 0), sigma)
        m = cv2.GaussianBlur(res, (0, 0), sigma) / np.maximum(den, 1e-3)[..., None]
        fade = np.exp(-distance_transform_edt(self.hole) / tau) * (den > 1e-3)    # (H', W')
        self.img[self.hole] += (m * fade[..., None])[self.hole]
        self._sync()

    # ------------------------------------------------------------------ between levels
    def field_map(self) -> np.ndarray:
        """(h, w, 2) int64 unpadded: each position's source centre (itself off the targets)."""
        gy, gx = np.mgrid[0:self.h, 0:self.w]
        f = np.stack([gy, gx], -1)
        f[self.ty - self.r, self.tx - self.r] = np.stack([self.ny, self.nx], -1) - self.r
        return f

    def upsample(self, coarse: np.ndarray) -> None:
        """Start from the coarser level's field (h', w', 2): source 2 x its source + parity."""
        y, x = self.ty - self.r, self.tx - self.r
        cy = np.minimum(y // 2, coarse.shape[0] - 1)
        cx = np.minimum(x // 2, coarse.shape[1] - 1)
        H, W = self.hole.shape
        sy = np.clip(2 * coarse[cy, cx, 0] + y % 2 + self.r, 0, H - 1)
        sx = np.clip(2 * coarse[cy, cx, 1] + x % 2 + self.r, 0, W - 1)
        self.ny, self.nx = self.snap_y[sy, sx], self.snap_x[sy, sx]
        self.dist = np.zeros(len(self.ty), np.float32)                            # equal votes

    def image(self) -> np.ndarray:
        """(h, w, 3) float32, unpadded."""
        r = self.r
        return self.img[r:r + self.h, r:r + self.w]
