"""One frame from the per-face results of a group photo: each face's change kept in its own part.

``partition``: a soft partition of the photo between all the faces found in it (chosen or not).
Each pixel belongs to the face nearest to it in units of that face's width (a multiplicatively
weighted Voronoi of the face centres: a larger, usually nearer, face reaches further), except that
each face's own skin (its FaceMesh hull grown by ``core_margin`` x its width, and by more than
the blur below reaches) is always its own, and where two such cores overlap the larger face's
lies on top (front to back). The labels are then feathered by a Gaussian of ``feather`` x the
median face width, truncated at two sigma: inside a face's hull no other face has any weight
(unless a larger face's hull overlaps it).

``Composer.add``: a chosen face's result (F, H, W, 3) -> its change (result - photo) added to the
group's frames, weighted by its part of the partition times where its warp changed pixels
(> ``changed_level`` grey levels in some frame, grown by ``changed_grow`` x its width,
feathered; all of its own hull), so that inside its hull the group's frames are exactly its
own result. A face's warp (hair in its head box, fading displacement, background plate) thus
never drags a neighbour's pixels: its change inside the neighbour's part is dropped, and an
unchosen face's part stays as the photo shows it. ``Composer.finish`` also measures, per
result, what the partition did (``stats``):

- ``seam_jump``: at the borders between the parts (the hard labels), where either side changed,
  |change of one side - change of the other| (mean over channels, grey levels): the step the
  feathered blend bridges (mean, and the 95th percentile ``seam_jump_p95``); a chosen face's border
  with an unchosen face's part counts too (its change there is cut);
- ``drag_raw`` / ``drag_kept``: the largest mean |change| a face's own result makes inside another
  face's hull (its warp dragging the neighbour) before and after the partition.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ComposeConfig:
    feather: float = 0.05        # Gaussian sigma of the partition's edges, x the median face width
    core_margin: float = 0.12    # each face's hull grown by this x its width is its own
    changed_level: float = 3.0   # grey levels: a pixel a face's result changed (any frame, channel)
    changed_grow: float = 0.05   # that mask grown by this x the face width before feathering


@dataclass(frozen=True, eq=False)
class FacePlace:
    """Where a face of the photo is: the middle and width of its FaceMesh box, and its hull."""
    centre: tuple[float, float]  # (x, y) px
    width: float                 # px
    hull: np.ndarray             # (K, 2) float32 px: the convex hull of its mesh points

    @classmethod
    def from_points(cls, points: np.ndarray) -> "FacePlace":
        """points (N, 2|3) px: a face's FaceMesh landmarks (``detection.faces.Face.points``)."""
        import cv2
        p = np.ascontiguousarray(np.asarray(points, np.float32)[:, :2])
        (x0, y0), (x1, y1) = p.min(0), p.max(0)
        return cls(((x0 + x1) / 2.0, (y0 + y1) / 2.0), float(max(x1 - x0, 1.0)),
                   cv2.convexHull(p)[:, 0])


def _gaussian(x: np.ndarray, sigma: float) -> np.ndarray:
    """x (H, W) float32 blurred by a Gaussian truncated at 2 sigma (nothing spreads further)."""
    import cv2
    if sigma <= 0:
        return x
    r = max(1, int(np.ceil(2.0 * sigma)))
    return cv2.GaussianBlur(x, (2 * r + 1, 2 * r + 1), sigma, borderType=cv2.BORDER_REPLICATE)


def _grown(mask: np.ndarray, r: float) -> np.ndarray:
    """mask (H, W) uint8 dilated by a disc of radius ``r`` px."""
    import cv2
    r = int(round(r))
    if r <= 0 or not mask.any():
        return mask
    return cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))


def _core(place: FacePlace, H: int, W: int, grow: float) -> np.ndarray:
    """(H, W) bool: the face's hull grown by ``grow`` px (made in the hull's own box)."""
    import cv2
    r = int(round(grow)) + 1
    lo = np.floor(place.hull.min(0)).astype(int) - r                          # (x, y)
    hi = np.ceil(place.hull.max(0)).astype(int) + r + 1
    m = np.zeros((hi[1] - lo[1], hi[0] - lo[0]), np.uint8)
    cv2.fillConvexPoly(m, np.round(place.hull - lo).astype(np.int32), 1)
    m = _grown(m, grow) > 0
    out = np.zeros((H, W), bool)
    (x0, y0), (x1, y1) = np.maximum(lo, 0), np.minimum(hi, [W, H])           # inside the frame
    if x1 > x0 and y1 > y0:
        out[y0:y1, x0:x1] = m[y0 - lo[1]:y1 - lo[1], x0 - lo[0]:x1 - lo[0]]
    return out


def partition(H: int, W: int, places: list[FacePlace], cfg: ComposeConfig = ComposeConfig()
              ) -> tuple[np.ndarray, np.ndarray]:
    """-> (weights (K, H, W) float32 summing to 1 over the K ``places``, labels (H, W) int32: the
    hard partition they feather); see the module doc."""
    gy, gx = np.mgrid[0:H, 0:W].astype(np.float32)
    dist = np.stack([np.hypot(gx - p.centre[0], gy - p.centre[1]) / p.width for p in places])
    labels = np.argmin(dist, 0).astype(np.int32)                                  # (H, W)
    del dist, gx, gy
    sigma = cfg.feather * float(np.median([p.width for p in places]))
    for k in sorted(range(len(places)), key=lambda k: places[k].width):          # back to front
        grow = max(cfg.core_margin * places[k].width, 2 * sigma + 1)              # (> the blur's reach)
        labels[_core(places[k], H, W, grow)] = k
    weights = np.stack([_gaussian((labels == k).astype(np.float32), sigma) for k in range(len(places))])
    return weights / np.maximum(weights.sum(0, keepdims=True), 1e-6), labels


class Composer:
    """The group's frames, one face's result at a time (``add``), then ``finish``.

    image (H, W, 3) uint8: the photo every result warps; places: every face found in it."""

    def __init__(self, image: np.ndarray, places: list[FacePlace], cfg: ComposeConfig = ComposeConfig()):
        self.image, self.places, self.cfg = image, places, cfg
        H, W = image.shape[:2]
        self.weights, self.labels = partition(H, W, places, cfg)
        self.hulls = [_core(p, H, W, 0.0) for p in places]                        # (H, W) bool each
        right = self.labels[:, :-1] != self.labels[:, 1:]                          # borders
        down = self.labels[:-1, :] != self.labels[1:, :]
        border = np.zeros((H, W), bool)
        border[:, :-1] |= right
        border[:-1, :] |= down
        self.border = np.flatnonzero(border)                                       # (B,) flat px
        other = self.labels.copy()                                                 # the far side
        other[:, :-1] = np.where(right, self.labels[:, 1:], other[:, :-1])
        other[:-1, :] = np.where(down, self.labels[1:, :], other[:-1, :])
        self.pair = np.stack([self.labels.ravel()[self.border], other.ravel()[self.border]])  # (2, B)
        self.frames = None
        self.at_border = {}     # place -> (F, B, 3) float32 its change at the border pixels
        self.drag = []          # (raw, kept) mean |change| of a face inside another's hull

    def add(self, place: int, frames: np.ndarray) -> None:
        """frames (F, H, W, 3) uint8: the photo animated by face ``place`` alone."""
        import cv2
        image, cfg, w = self.image, self.cfg, self.places[place].width
        if frames.shape[1:] != image.shape:
            raise ValueError(f"a face's result is {frames.shape[1:]}, the photo {image.shape}")
        if self.frames is None:
            self.frames = np.repeat(image[None], len(frames), 0)
        elif len(frames) != len(self.frames):
            raise ValueError(f"a face's result has {len(frames)} frames, the group {len(self.frames)}")
        peak = np.zeros_like(image)
        for f in frames:
            cv2.max(peak, cv2.absdiff(f, image), dst=peak)
        changed = peak.max(-1) > cfg.changed_level                                 # (H, W)
        rows, cols = np.flatnonzero(changed.any(1)), np.flatnonzero(changed.any(0))
        if not len(rows):
            self.drag.append((0.0, 0.0))
            return
        H, W = changed.shape                # all that follows in the box it changed, grown by
        pad = int(np.ceil((cfg.changed_grow + 2 * cfg.feather) * w)) + 2   # how far alpha reaches
        y0, y1 = max(0, rows[0] - pad), min(H, rows[-1] + 1 + pad)
        x0, x1 = max(0, cols[0] - pad), min(W, cols[-1] + 1 + pad)
        grown = _grown(changed[y0:y1, x0:x1].astype(np.uint8), cfg.changed_grow * w)
        seen = np.maximum(np.clip(_gaussian(grown.astype(np.float32), cfg.feather * w), 0.0, 1.0),
                          self.hulls[place][y0:y1, x0:x1])   # (its own hull: all of its change)
        a = self.weights[place, y0:y1, x0:x1] * seen                                # (h, w) its alpha
        src = image[y0:y1, x0:x1].astype(np.float32)
        by, bx = np.unravel_index(self.border, (H, W))
        inside = (by >= y0) & (by < y1) & (bx >= x0) & (bx < x1)
        at = np.zeros((len(frames), len(self.border), 3), np.float32)
        raw = kept = 0.0
        for i, f in enumerate(frames):
            change = f[y0:y1, x0:x1].astype(np.float32) - src                      # (h, w, 3)
            at[i, inside] = change[by[inside] - y0, bx[inside] - x0]
            box = self.frames[i, y0:y1, x0:x1]
            box[:] = np.clip(np.rint(box + a[..., None] * change), 0, 255).astype(np.uint8)
        self.at_border[place] = at
        for j, hull in enumerate(self.hulls):       # what its warp does inside another's hull
            h = hull[y0:y1, x0:x1]
            if j != place and h.any():
                d = np.stack([np.abs(f[y0:y1, x0:x1][h].astype(np.float32) - src[h]).mean(-1) for f in frames])
                n = hull.sum()                                                     # (the hull's
                raw = max(raw, float(d.sum() / n / len(frames)))                   # mean over all
                kept = max(kept, float((d * a[h]).sum() / n / len(frames)))        # its pixels)
        self.drag.append((raw, kept))

    def finish(self) -> tuple[np.ndarray, dict]:
        """-> (frames (F, H, W, 3) uint8, stats: see the module doc)."""
        if self.frames is None:
            raise ValueError("no face was added")
        F, B = len(self.frames), len(self.border)
        side = [np.zeros((F, B, 3), np.float32) for _ in range(2)]
        for s in range(2):
            for k, d in self.at_border.items():
                side[s] = np.where((self.pair[s] == k)[None, :, None], d, side[s])
        jump = np.abs(side[0] - side[1]).mean(-1)                                  # (F, B)
        moved = np.maximum(np.abs(side[0]).max(-1), np.abs(side[1]).max(-1)) > self.cfg.changed_level
        jumps = jump[moved] if moved.any() else np.zeros(1)
        return self.frames, {"seam_jump": float(jumps.mean()),
                             "seam_jump_p95": float(np.percentile(jumps, 95)),
                             "seam_px": int(moved.any(0).sum()),
                             "drag_raw": max(r for r, _ in self.drag),
                             "drag_kept": max(k for _, k in self.drag)}
