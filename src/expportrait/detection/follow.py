"""One face followed through a video (``follow_face``) or a live camera (``FaceFollower``, one
frame at a time): its crop comes from the previous frame's mesh (kept still while the face stays
inside, so FaceMesh's own tracking keeps working); when the mesh is lost the frame is searched
again (``detection.faces.find_faces``) and the face is re-found by box overlap with where it just
was, or, after frames without it (someone else may stand there now), by its dlib descriptor (same
person: distance < ``SAME_PERSON``).

Boxes are ``(x0, y0, x1, y1)`` float pixels; images ``(H, W, 3)`` uint8 RGB; landmarks
``(478, 3)`` float32 x, y, z pixels of the full frame.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from expportrait.detection.faces import (
    DEFAULT_DETECTOR,
    MARGIN,
    Box,
    CropMesh,
    FaceDetector,
    choose,
    crop_transform,
    find_faces,
    iou,
    mesh_box,
)
from expportrait.errors import UserError

SAME_PERSON = 0.6     # dlib descriptor distance


class FaceFollower:
    """One face followed frame by frame (``follow_face`` offline, the live tracker per camera
    frame): ``follower(img, where="") -> (478, 3) float32 points or None``. The first frame with
    faces chooses face ``face_index`` (``where`` names the frame in ``choose``'s error); then
    FaceMesh runs on a crop that is kept still while the face stays well inside it
    (``crop_moved``); a face the crop lost is searched for again (``_refind``: by overlap right
    after it was seen, else by its dlib descriptor; ``identify=False``: by overlap only, no dlib
    on a live frame). ``refind``: the detector of that search (default ``detector``). ``info``:
    ``faces`` in the choosing frame, ``reacquired`` frames."""

    def __init__(self, face_index: int = 0, detector: str | FaceDetector = DEFAULT_DETECTOR,
                 video: bool = True, refind: str | FaceDetector | None = None, identify: bool = True):
        self.face_index, self.identify = face_index, identify
        self.det = detector if isinstance(detector, FaceDetector) else FaceDetector(detector)
        self.refind = self.det if refind is None else (refind if isinstance(refind, FaceDetector)
                                                       else FaceDetector(refind))
        self.still = CropMesh(static=True)
        self.mesh = CropMesh(static=False) if video else self.still
        self.box = self.crop = None    # last known face box, and the crop that is kept still
        self.lost = 0                  # frames since the face was last seen
        self.ref = {}                  # the chosen face's frame and box; its dlib descriptor, lazily
        self.info = {"faces": 0, "reacquired": 0}

    def __call__(self, img: np.ndarray, where: str = "") -> np.ndarray | None:
        p = None
        if self.box is None:                                      # not yet chosen
            faces = find_faces(img, self.det, self.still)
            if not faces:
                return None
            face = choose(faces, self.face_index, where)
            self.info["faces"] = len(faces)
            self.box, p = face.box, face.points
            self.ref.update(image=img, box=face.box)
        else:
            if self.crop is not None and self.lost == 0:   # after a gap, someone else may be there
                p = self.mesh(img, self.box, self.crop)
            if p is None:                                         # lost: search the frame again
                p = _refind(img, self.refind, self.still, self.box, self.ref, self.lost == 0, self.identify)
                self.info["reacquired"] += p is not None
        if p is None:
            self.lost += self.box is not None
            return None
        self.lost = 0
        new = mesh_box(p)
        if self.crop is None or crop_moved(self.crop, new):
            self.crop = crop_transform(new)
        self.box = new
        return p

    def close(self) -> None:
        for d in {id(x): x for x in (self.det, self.refind, self.still, self.mesh)}.values():
            d.close()


def follow_face(frames: np.ndarray, face_index: int = 0, detector: str = DEFAULT_DETECTOR,
                progress: bool = False) -> tuple[np.ndarray, np.ndarray, dict]:
    """frames (F, H, W, 3) uint8 -> (points (F, 478, 3) float32, valid (F,) bool, info).

    The face ``face_index`` of the first frame with faces is chosen and followed
    (``FaceFollower``); ``info`` has ``faces`` (how many in that frame), ``first`` (its index),
    ``reacquired`` (frames where it was searched for again and re-found). Raises ``UserError``
    when no frame has a face."""
    F = len(frames)
    follow = FaceFollower(face_index, detector, video=F > 1)
    pts = np.zeros((F, 478, 3), np.float32)
    valid = np.zeros(F, bool)
    first = None
    it = range(F)
    if progress:
        from tqdm import tqdm
        it = tqdm(it, desc="landmarks", unit="frame", leave=False, disable=None)
    try:
        for i in it:
            p = follow(frames[i], f" in frame {i}" if F > 1 else "")
            if p is not None:
                pts[i], valid[i] = p, True
                first = i if first is None else first
    finally:
        follow.close()
    if not valid.any():
        raise UserError("no face found in any frame")
    return pts, valid, {**follow.info, "first": first}


def crop_moved(t, box: Box) -> bool:
    """Is the face no longer well inside the still crop ``t`` (centre off by > 10 % of the crop,
    or size off by > 15 %)?"""
    s, x0, y0, S = t
    side = S / s
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    want = MARGIN * max(box[2] - box[0], box[3] - box[1])
    return (abs(cx - (x0 + side / 2)) > 0.1 * side or abs(cy - (y0 + side / 2)) > 0.1 * side
            or not 0.87 < want / side < 1.15)


def _refind(img, det, mesh, box: Box, ref: dict, recent: bool, identify: bool = True) -> np.ndarray | None:
    """The followed face in a frame where its crop lost it: right after it was seen
    (``recent``), the candidate overlapping its last box; else (or if none overlaps) the one
    whose dlib descriptor is nearest (within SAME_PERSON), since after a gap someone else may
    stand where it was (by overlap alone when dlib is missing or ``identify`` is False)."""
    faces = find_faces(img, det, mesh)
    if not faces:
        return None
    best = max(faces, key=lambda f: iou(f.box, box))
    if recent and iou(best.box, box) > 0.5:
        return best.points
    if identify and "desc" not in ref:
        ref["desc"] = _descriptor(ref["image"], ref["box"])
    if not identify or ref["desc"] is None:                       # by overlap alone
        return best.points if iou(best.box, box) > 0.3 else None
    dist = [np.linalg.norm(d - ref["desc"]) if (d := _descriptor(img, f.box)) is not None else np.inf
            for f in faces]
    k = int(np.argmin(dist))
    return faces[k].points if dist[k] < SAME_PERSON else None


@lru_cache(maxsize=1)
def _dlib_face():
    from expportrait.detection.dlib_face import DlibFace
    return DlibFace()


def _descriptor(img: np.ndarray, box: Box) -> np.ndarray | None:
    try:
        return _dlib_face().descriptor(img, tuple(int(round(v)) for v in box))
    except UserError:          # dlib missing: follow by overlap alone
        return None
