"""The warp field of the warp engines: a frame warped by its own head driven to new expressions
and poses (a backward map at the frame's own resolution, so nothing is resampled twice).

``expression_warp``: every pixel the driven mesh covers samples the frame where the same surface
point lies in the still head (the rasterizer interpolates the source pixel coordinates of the
vertices); outside the mesh the displacement fades out with distance (normalised convolution), so
the neck and shoulders stay put and the chin drags the skin below it, and the two blend over a band
inside the mesh rim (its jagged edge would otherwise tear the image); pixels inside the driven
inner-lip contour that the mesh does not cover (the open mouth) sample the frame's own mouth
through the affine map between the two inner-lip contours (teeth or lips), darkened the wider the
mouth opens. With a person mask (``engines.segment``) the person is warped over a still background
and the hair and ears follow the head's similarity motion.

The warp cannot show what the frame hides (teeth of a closed mouth, the side of the head).
"""
from __future__ import annotations

import numpy as np
import torch

from expportrait.render.camera import to_screen
from expportrait.render.rasterize import interpolate, rasterize
from expportrait.tracking.io import HeadFit
from expportrait.tracking.representation import camera_vertices

INNER_LIP = list(range(60, 68))     # 68-point inner lip contour
RIGID = list(range(17, 48))         # brows, nose, eyes: they move with the skull, not the jaw


def _screen(head, fit: HeadFit, idx) -> torch.Tensor:
    idx = torch.as_tensor(idx)
    return to_screen(camera_vertices(head, fit, idx), fit.camera[idx])            # (B, N, 3)


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """x (h, w) float32 Gaussian-blurred by ``sigma`` px (edges replicated). A wide blur (the
    fade of a large face: sigma ~25 px at 512 px) is done at 1/k of the resolution (k = sigma / 4,
    a Gaussian 4 px wide there) and resized back: the same smooth field within ~1 %, 5-10x
    cheaper (its cost grows with the kernel)."""
    import cv2
    k = int(sigma // 4)
    if k < 2 or min(x.shape[:2]) < 8 * k:
        return cv2.GaussianBlur(x, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    h, w = x.shape[:2]
    small = cv2.resize(x, (max(1, round(w / k)), max(1, round(h / k))), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma / k, borderType=cv2.BORDER_REPLICATE)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


@torch.no_grad()
def expression_warp(image: np.ndarray, still: HeadFit, driven: HeadFit, head,
                    chunk: int = 8, person: np.ndarray | None = None,
                    stats: dict | None = None) -> np.ndarray:
    """image (H, W, 3) uint8 + ``still``: the head as the photo shows it (frame 0 is used) +
    ``driven`` (F frames in the photo's image space, same head) -> (F, H, W, 3) uint8 the photo
    warped to each frame. Pass as ``still`` a frame made the same way as ``driven`` (same Delta_f
    model, same pose: ``driven.frames([0])`` when frame 0 carries the photo's expression), so the
    warp is exactly the identity where nothing moved. Only a box around the two heads (padded by
    the fade-out distance) is computed; the rest of each frame is the photo as it is.

    ``person`` (H, W) in [0, 1] (``engines.segment.person_mask``) keeps the background still:
    the warped person is laid over the photo's own background, and where the head moved away
    from, over the photo with the head painted out (``engines.segment.background_plate`` of
    ``plate_mask`` in ``head_box``; ``_composite``); hair and ears follow the head's similarity
    motion. ``stats`` (a dict) gets "min_jacobian" (F,): each frame's smallest Jacobian
    determinant of the backward map (``jacobian``; 1 where nothing moved; the open mouth's own map
    left out), below 0 where the warp folds. ``WarpField`` is the same one frame batch at a time
    (the live engine's)."""
    field = WarpField(image, still, head, person)
    out = np.repeat(image[None], driven.num_frames, 0)
    dets = np.ones(driven.num_frames)
    for a in range(0, driven.num_frames, chunk):
        idx = list(range(a, min(driven.num_frames, a + chunk)))
        for i, (box, roi, det) in zip(idx, field(driven, idx)):
            x0, y0, x1, y1 = box
            out[i, y0:y1, x0:x1] = roi
            dets[i] = det
    if stats is not None:
        stats["min_jacobian"] = dets
    return out


class WarpField:
    """``expression_warp`` in two halves: what depends only on the photo and its still head
    (made once: its screen vertices, lips, face size, person mask, clothes, the photo's face grown
    by 0.1 face heights (what passes in front of the clothes) and background plate)
    and ``field(driven, idx)``: frames ``idx`` of a driven head -> for each, ((x0, y0, x1, y1) the
    box it changed, (y1 - y0, x1 - x0, 3) uint8 the new pixels there, its least Jacobian
    determinant). ``scale`` < 1 rasterises the mesh at that fraction of the photo's resolution
    (the field is smooth; the pixels are still resampled at full resolution)."""

    @torch.no_grad()
    def __init__(self, image: np.ndarray, still: HeadFit, head, person: np.ndarray | None = None,
                 scale: float = 1.0):
        import cv2
        self.image, self.head, self.person, self.scale = image, head, person, float(scale)
        H, W = self.size = image.shape[:2]
        self.src = _screen(head, still, [0])[0, :, :2]                            # (N, 2) px
        self.src_lip = still.landmarks68_2d[0, INNER_LIP].numpy().astype(np.float32)  # (8, 2)
        self.src_open = cv2.contourArea(self.src_lip)                             # px^2
        face_px = float(np.ptp(still.landmarks68_2d[0, :17, 0].numpy()))         # face width
        self.sigma = max(2.0, 0.12 * face_px)
        self.head_up = _head_frame(still.landmarks68_2d[0].numpy())
        self.src_rigid = still.landmarks68_2d[0, RIGID].numpy()                   # (31, 2)
        if person is not None:
            from expportrait.engines.segment import background_plate, clothes_mask, plate_mask
            self.clothes = clothes_mask(image, still.landmarks68_2d[0].numpy())  # (H, W)
            self.src_face = _face_region(still.landmarks68_2d[0].numpy(), 0, 0, H, W, grow=0.1)  # (H, W)
            self.hbox = head_box(still, H, W)
            self.hole = plate_mask(person, self.hbox)                             # (H, W)
            self.plate = background_plate(image, self.hole, avoid=person > 0.5)  # (H, W, 3): filled
            #   from the background only, never from the body

    @torch.no_grad()
    def __call__(self, driven: HeadFit, idx) -> list[tuple[tuple[int, int, int, int], np.ndarray, float]]:
        H, W = self.size
        image, person, sigma, src = self.image, self.person, self.sigma, self.src
        idx = torch.as_tensor(idx)
        scr = _screen(self.head, driven, idx)                                     # (B, N, 3)
        pts = [scr[..., :2].reshape(-1, 2), src]
        if person is not None:   # the hair moves with the head: all of it inside the box
            hx0, hy0, hx1, hy1 = self.hbox
            pts.append(torch.tensor([[hx0, hy0], [hx1, hy1]], dtype=src.dtype))
        x0, y0, x1, y1 = _roi(torch.cat(pts), 3.5 * sigma, H, W)
        if x1 <= x0 or y1 <= y0:
            return [((0, 0, 0, 0), image[:0, :0], 1.0) for _ in idx]
        scr = scr - torch.tensor([x0, y0, 0.0], dtype=scr.dtype)                  # ROI pixels
        back, cover = self._raster(scr, y1 - y0, x1 - x0)
        gy, gx = np.mgrid[y0:y1, x0:x1].astype(np.float32)                        # image px
        out = []
        for j, i in enumerate(idx.tolist()):
            rigid = None
            if person is not None:   # hair and ears follow the head's similarity motion
                B = similarity(driven.landmarks68_2d[i, RIGID].numpy(), self.src_rigid)
                rigid = _rigid_displacement(B, gx, gy, self.head_up)
            jac = []
            roi = _warp_roi(image, back[j], cover[j], gx, gy, sigma,
                            driven.landmarks68_2d[i, INNER_LIP].numpy(), self.src_lip, self.src_open,
                            person, rigid, jac, None if person is None else self.clothes,
                            None if person is None else _face_region(driven.landmarks68_2d[i].numpy(), x0, y0,
                                                                     y1 - y0, x1 - x0),
                            None if person is None else self.src_face)
            if person is not None:
                roi = _composite(roi, image[y0:y1, x0:x1], self.plate[y0:y1, x0:x1],
                                 person[y0:y1, x0:x1], self.hole[y0:y1, x0:x1])
            out.append(((x0, y0, x1, y1), roi[..., :3], jac[0]))
        return out

    def _raster(self, scr: torch.Tensor, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        """scr (B, N, 3) ROI screen vertices -> (back (B, h, w, 2) the photo pixel each covered
        pixel shows, cover (B, h, w) bool), rasterised at ``scale`` and resized back."""
        import cv2
        B, s = len(scr), self.scale
        attrs = self.src[None].expand(B, -1, -1).contiguous()                    # (B, N, 2)
        if s >= 1.0:
            frags = rasterize(scr, self.head.faces, h, w)
            return interpolate(attrs, self.head.faces, frags).numpy(), frags.mask.numpy()
        hs, ws = max(1, round(h * s)), max(1, round(w * s))
        small = scr * torch.tensor([ws / w, hs / h, 1.0], dtype=scr.dtype)
        frags = rasterize(small, self.head.faces, hs, ws)
        back = interpolate(attrs, self.head.faces, frags).numpy()
        cover = frags.mask.numpy().astype(np.float32)
        cov = np.stack([cv2.resize(c, (w, h), interpolation=cv2.INTER_LINEAR) for c in cover])
        back = np.stack([cv2.resize(b * c[..., None], (w, h), interpolation=cv2.INTER_LINEAR)
                         for b, c in zip(back, cover)]) / np.maximum(cov, 1e-6)[..., None]
        return back.astype(np.float32), cov > 0.5        # (normalised: no pull towards 0 at the rim)


def unfold(mapx: np.ndarray, mapy: np.ndarray, gx: np.ndarray, gy: np.ndarray, where: np.ndarray,
           min_det: float = 0.05, iters: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A backward map (h, w) x 2 over the output grid gx, gy that folds somewhere (the far side
    of the nose when the head turns: the projected mesh overlaps itself) -> (mapx, mapy float32,
    its Jacobian determinant (h, w)) with the displacement smoothed where the determinant is below
    ``min_det`` inside ``where`` (h, w) bool, over a wider neighbourhood each round and blended in
    (on both sides of ``where``'s edge: a blend cut there folds the map along it, as it did at the
    collar under a rolled head); the best map found is kept (the smallest determinant inside
    ``where`` the largest), so it never makes a fold worse."""
    import cv2
    mapx, mapy = mapx.astype(np.float32), mapy.astype(np.float32)
    det = jacobian(mapx, mapy)

    def worst(dt):
        return float(dt[where].min()) if where.any() else 1.0
    best = (worst(det), mapx, mapy, det)
    for k in range(iters):
        bad = (det < min_det) & where
        if not bad.any():
            break
        r = 3 * 2 ** k
        grow = cv2.dilate(bad.astype(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8)).astype(np.float32)
        d = np.stack([mapx - gx, mapy - gy], -1)
        smooth = cv2.GaussianBlur(d, (0, 0), 0.5 * r)
        g = np.minimum(cv2.GaussianBlur(grow, (0, 0), 0.5 * r) * 2.0, 1.0)
        d = d + g[..., None] * (smooth - d)          # blended in: no new seam at its edge
        mapx, mapy = (gx + d[..., 0]).astype(np.float32), (gy + d[..., 1]).astype(np.float32)
        det = jacobian(mapx, mapy)
        if worst(det) > best[0]:
            best = (worst(det), mapx, mapy, det)
    return best[1], best[2], best[3]


def jacobian(mapx: np.ndarray, mapy: np.ndarray) -> np.ndarray:
    """A backward map (h, w) x 2 (the source pixel of every output pixel) -> (h, w) the
    determinant of its Jacobian (central differences): 1 for a shift, < 0 where it folds."""
    mxy, mxx = np.gradient(mapx.astype(np.float64))
    myy, myx = np.gradient(mapy.astype(np.float64))
    return mxx * myy - mxy * myx


def _composite(warped: np.ndarray, image: np.ndarray, plate: np.ndarray, person: np.ndarray,
               hole: np.ndarray) -> np.ndarray:
    """warped (h, w, 5): the warped photo, the warped person mask (x255) and how far each pixel
    moved (x255, 1 from 2 px on); image, plate (h, w, 3) uint8, person and hole (h, w) in [0, 1]
    (where the plate is painted out: the person grown a few px) at the same pixels -> (h, w, 3)
    uint8. The warped person over a still background: the photo's where it showed background,
    the plate where it showed the person, and also over the grown edge where pixels moved (so
    the old head's edge leaves no ghost outline). Where nothing moved this is the photo, up to
    the plate's share (1 - a) p on the person's soft edge."""
    a = warped[..., 3:4].astype(np.float32) / 255.0
    moved = warped[..., 4:5].astype(np.float32) / 255.0
    p = np.maximum(person[..., None], hole[..., None] * moved)
    back = p * plate.astype(np.float32) + (1 - p) * image.astype(np.float32)
    out = a * warped[..., :3].astype(np.float32) + (1 - a) * back
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def head_box(fit: HeadFit, H: int, W: int, frame: int = 0) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) around a fit's head in its image: the 68 landmarks' box grown by half
    the face width to the sides, one face height upwards (hair) and a quarter downwards."""
    lm = fit.landmarks68_2d[frame].numpy()
    (x0, y0), (x1, y1) = lm.min(0), lm.max(0)
    w, h = x1 - x0, y1 - y0
    return (int(max(0, x0 - 0.5 * w)), int(max(0, y0 - 1.0 * h)),
            int(min(W, x1 + 0.5 * w + 1)), int(min(H, y1 + 0.25 * h + 1)))


def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Least-squares similarity (Umeyama, scikit-image's) taking points a (N, 2) to b (N, 2)
    -> (2, 3)."""
    from skimage.transform import SimilarityTransform
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if hasattr(SimilarityTransform, "from_estimate"):          # scikit-image >= 0.26
        t = SimilarityTransform.from_estimate(a, b)
    else:
        t = SimilarityTransform()
        t = t if t.estimate(a, b) else None
    return t.params[:2] if t else np.eye(2, 3)


def _head_frame(lmk: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """68 landmarks of the photo -> (centre (2,), up (2,) unit vector from chin to brows,
    chin distance along up below the centre (px), face height (px)): where the head ends."""
    brows, chin = lmk[17:27].mean(0), lmk[8]
    up = brows - chin
    h = float(np.linalg.norm(up)) or 1.0
    up = up / h
    centre = lmk[:17].mean(0)
    return centre, up, float((centre - chin) @ up), h


def _rigid_displacement(B: np.ndarray, gx, gy, head_up) -> np.ndarray:
    """B (2, 3) similarity from output to photo pixels, gx/gy (h, w) output pixels -> (h, w, 3):
    the backward displacement that moves a pixel with the head (x, y) and its weight: 1 above the
    chin (hair, ears), fading to 0 below it (the shoulders stay; the upper neck turns with a
    strongly rolled head instead of smearing the jaw's skin sideways) over 0.4 face heights, or
    over 2.5x the head's displacement at the chin when that is longer: the neck's stretch stays
    bounded (the blend's gradient below 0.4), so a strong roll or lift does not fold it."""
    sx = B[0, 0] * gx + B[0, 1] * gy + B[0, 2]
    sy = B[1, 0] * gx + B[1, 1] * gy + B[1, 2]
    centre, up, chin, h = head_up
    below = -((sx - centre[0]) * up[0] + (sy - centre[1]) * up[1]) - chin     # px below the chin
    p = centre - up * chin                                                    # the chin (photo px)
    moved = float(np.linalg.norm(np.linalg.solve(B[:, :2], p - B[:, 2]) - p)) # how far it went
    w = np.clip(1.0 - below / max(0.4 * h, 2.5 * moved), 0.0, 1.0)
    return np.stack([sx - gx, sy - gy, w], -1).astype(np.float32)


def _face_region(lmk: np.ndarray, x0: int, y0: int, h: int, w: int, grow: float = 0.0) -> np.ndarray:
    """68 driven landmarks (image px) -> (h, w) float32 in [0, 1] over the ROI at (x0, y0): the
    face inside its jaw line (0-16) and brows (26-17), grown by ``grow`` face heights (brows to
    chin), edges softened by 2 px."""
    import cv2
    m = np.zeros((h, w), np.float32)
    poly = np.concatenate([lmk[0:17], lmk[26:16:-1]]) - [x0, y0]
    if np.isfinite(poly).all():
        cv2.fillPoly(m, [np.round(poly * 4).astype(np.int32)], 1.0, shift=2)
        r = int(round(grow * float(np.linalg.norm(lmk[17:27].mean(0) - lmk[8]))))
        if r > 0:
            m = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    return cv2.GaussianBlur(m, (0, 0), 2.0)


def _roi(points: torch.Tensor, pad: float, H: int, W: int) -> tuple[int, int, int, int]:
    """points (N, 2) px -> (x0, y0, x1, y1) their bounding box grown by ``pad``, inside the image."""
    lo = points.min(0).values.numpy() - pad
    hi = points.max(0).values.numpy() + pad
    return (int(np.clip(np.floor(lo[0]), 0, W)), int(np.clip(np.floor(lo[1]), 0, H)),
            int(np.clip(np.ceil(hi[0]) + 1, 0, W)), int(np.clip(np.ceil(hi[1]) + 1, 0, H)))


def _warp_roi(image, back, cover, gx, gy, sigma, lip, src_lip, src_open, person=None,
              rigid=None, jac: list | None = None, clothes: np.ndarray | None = None,
              face: np.ndarray | None = None, src_face: np.ndarray | None = None) -> np.ndarray:
    """One frame inside the ROI: back (h, w, 2) the photo pixel each covered pixel shows, cover
    (h, w) bool, gx/gy (h, w) the ROI's image pixel coordinates -> (h, w, 3) uint8, or (h, w, 5)
    with the person mask (H, W) warped the same way and the pixel's displacement (1 from 2 px
    on), both x255, as channels 4 and 5. ``rigid`` (h, w, 3)
    (``_rigid_displacement``): away from the mesh the pixels move with the similarity motion
    of the brows, eyes and nose by its weight instead of the mesh's fading extrapolation.
    ``clothes`` (H, W) in [0, 1] (``segment.clothes_mask``, the photo's pixels) stays still and
    in front of the driven neck, behind the driven face: the ``face`` (h, w) in [0, 1]
    (``_face_region``) and, with ``src_face`` (H, W) (the photo's, grown), every pixel that shows
    the photo's face (its jaw's edge carried past the driven jaw line)."""
    import cv2
    grid = np.stack([gx, gy], -1)                                                 # (h, w, 2)
    m = cover.astype(np.float32)
    d = (back - grid) * m[..., None]                                              # (h, w, 2)
    wm = _blur(m, sigma)
    ext = np.stack([_blur(d[..., c], sigma) for c in range(2)], -1) / np.maximum(wm, 1e-4)[..., None]
    fade = np.clip(wm * 2.0 - 0.05, 0.0, 1.0)[..., None]                          # 1 near, 0 far
    lip = lip.astype(np.float32)
    mouth = np.zeros(m.shape, np.uint8)                                           # the inner lips
    cv2.fillPoly(mouth, [np.round(lip - [gx[0, 0], gy[0, 0]]).astype(np.int32)], 1)
    slit = cv2.dilate(mouth, np.ones((3, 3), np.uint8))   # the mouth's slit is no rim: there the
    #   lips keep the mesh's own motion (faded into the field's blur, a closing mouth's upper and
    #   lower lip averaged to no motion and the teeth between them stayed in sight)
    inner = cv2.erode(np.maximum(m, slit), np.ones((5, 5), np.uint8), iterations=max(1, round(sigma / 6)))
    alpha = (_blur(inner, sigma / 4) * m)[..., None]                              # 0 at the mesh rim
    outside = ext * fade
    if rigid is not None:    # where it is the head's (hair, ears): next to the mesh its own
        #   extrapolation (seamless), away from it the head's motion; elsewhere (neck) as before
        near = np.clip(wm * 2.0, 0.0, 1.0)[..., None]
        w = rigid[..., 2:]
        outside = w * (near * ext + (1 - near) * rigid[..., :2]) + (1 - w) * outside
    disp = alpha * d + (1 - alpha) * outside
    still = None
    if clothes is not None:  # the clothes under the head keep their place (``clothes_mask``) and
        #   are in front of the driven neck (a strongly rolled head's mesh reaches over the collar
        #   and cut it along its rim); the driven head is in front of them (a lowered chin covers
        #   the collar; a moving jaw's edge passes over a wall that is "clothes" by its colour)
        oy, ox = int(round(float(gy[0, 0]))), int(round(float(gx[0, 0])))
        still = clothes[oy:oy + gx.shape[0], ox:ox + gx.shape[1]]                 # (h, w)
        front = np.zeros(m.shape, np.float32) if face is None else face
        if src_face is not None:
            front = np.maximum(front, cv2.remap(src_face, (gx + disp[..., 0]).astype(np.float32),
                                                (gy + disp[..., 1]).astype(np.float32), cv2.INTER_LINEAR,
                                                borderMode=cv2.BORDER_CONSTANT))
        disp = disp * (1.0 - still * (1.0 - front))[..., None]
    mapx, mapy = gx + disp[..., 0], gy + disp[..., 1]
    hole = (mouth > 0) & (m == 0)
    shade = np.ones(m.shape, np.float32)
    if hole.any():
        A, _ = cv2.estimateAffine2D(lip, src_lip)
        if A is not None:
            hx = A[0, 0] * gx + A[0, 1] * gy + A[0, 2]
            hy = A[1, 0] * gx + A[1, 1] * gy + A[1, 2]
            mapx, mapy = np.where(hole, hx, mapx), np.where(hole, hy, mapy)
        grow = cv2.contourArea(lip) / max(src_open, 1.0)          # wider than the photo: darker
        shade[hole] = float(np.clip(1.0 / max(grow, 1.0), 0.35, 1.0))
    keep = cv2.dilate(hole.astype(np.uint8), np.ones((5, 5), np.uint8)) == 0   # (the open
    #   mouth's own affine map meets the mesh's in a seam: it is not part of the field)
    if person is not None:   # only what shows the warped person (the background stays still)
        keep &= cv2.remap(person, mapx.astype(np.float32), mapy.astype(np.float32), cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT) > 0.05
    mapx, mapy, det = unfold(mapx, mapy, gx, gy, keep)
    if jac is not None:
        jac.append(float(det[keep].min()) if keep.any() else 1.0)
    warped = cv2.remap(image, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    shade = _blur(shade, 1.0)[..., None]
    out = np.clip(warped.astype(np.float32) * shade + 0.5, 0, 255).astype(np.uint8)
    if person is None:
        return out
    a = cv2.remap(person, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    moved = np.clip((np.hypot(mapx - gx, mapy - gy) - 0.05) / 2.0, 0.0, 1.0)    # 1 from 2 px on (an
    #   identity map's float noise, ~0.02 px, lets no textured plate through)
    extra = np.stack([a, moved], -1) * 255 + 0.5
    return np.concatenate([out, np.clip(extra, 0, 255).astype(np.uint8)], -1)
