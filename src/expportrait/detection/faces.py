"""Face detection front-end: find every face in a frame, choose one, mesh it on a crop.

MediaPipe has two face detectors (``mp.solutions.face_detection``, both in the wheel), each
made for what the other misses: the full-range one (``model_selection=1``) for faces far from the
camera (it misses close-ups: a face box filling 80 % of a 512-px frame, 7 of the 12 ~250-px
``*_crop`` portraits of the registry media), the short-range one (``model_selection=0``, also
FaceMesh's own) for faces near it (it misses the small faces of group photos, and its boxes
round them are loose). Here faces are found first by

* MediaPipe, both ranges: the full-range detector on the whole frame and, for frames larger than
  ``TILE`` px, on overlapping ``TILE``-px tiles (its 192x192 input misses faces under ~4 % of the
  side it sees; a tile keeps a 30 px face above that), and the short-range one on the whole
  frame (cheap: 128x128), or
* dlib's HOG detector (``detection.dlib_face``; one pyramid upsampling below 2000 px),

merged by non-maximum suppression (the full-range and dlib boxes; the short-range ones join
after meshing, below). ``DETECTORS``: "auto" (the default) is MediaPipe, then dlib when none of
MediaPipe's candidates gets a mesh; "mediapipe" and "dlib" are one of them alone; "both" is both
always.

Each candidate, highest score first, is then meshed: a square crop of side ``MARGIN`` x the
box's longer side, centred on the box, resampled to ``CROP_MIN``..``CROP_MAX`` px (small faces
upscaled), goes through FaceMesh, and the landmarks are mapped back into the frame. A candidate
without a mesh is not a face (dlib's HOG fires on badges and prints); one overlapping the mesh of
a face already found is that face (one face's boxes from the two ranges overlap by IoU 0.7-0.9).

Faces are numbered by box area, largest first (``--face-index K``; ``expportrait faces`` shows
the numbers). In a video the chosen face is followed frame to frame (``detection.follow``).

Boxes are ``(x0, y0, x1, y1)`` float pixels; images ``(H, W, 3)`` uint8 RGB; landmarks
``(478, 3)`` float32 x, y, z pixels of the full frame.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from expportrait.errors import UserError

Box = tuple[float, float, float, float]
DETECTORS = ("auto", "mediapipe", "dlib", "both")
DEFAULT_DETECTOR = "auto"
TILE = 640            # tile side (px) of the full-range detector's second pass
MARGIN = 2.0          # crop side / face box side
CROP_MIN, CROP_MAX = 256, 512   # crop resolution (px) FaceMesh sees


@dataclass
class Face:
    box: Box                            # (x0, y0, x1, y1) pixels
    score: float                        # detector confidence (dlib: 1.0)
    detector: str                       # "mediapipe" | "dlib"
    points: np.ndarray | None = None    # (478, 3) FaceMesh landmarks, full-frame pixels

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def area(self) -> float:
        return (self.box[2] - self.box[0]) * (self.box[3] - self.box[1])


# ---------------------------------------------------------------------------------- boxes
def iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _covered(a: Box, b: Box) -> float:
    """Fraction of the smaller box inside the other."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    small = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return ix * iy / small if small > 0 else 0.0


def overlaps(a: Box, b: Box, thresh: float = 0.3) -> bool:
    """One face's two boxes: IoU >= ``thresh``, or the smaller mostly (60 %) inside the other."""
    return iou(a, b) >= thresh or _covered(a, b) >= 0.6


def merge(faces: list[Face], thresh: float = 0.3) -> list[Face]:
    """Non-maximum suppression (highest score kept; a box mostly inside a kept one is dropped)."""
    keep: list[Face] = []
    for f in sorted(faces, key=lambda f: -f.score):
        if not any(overlaps(f.box, k.box, thresh) for k in keep):
            keep.append(f)
    return keep


def mesh_box(points: np.ndarray) -> Box:
    """(478, 2|3) landmarks -> their bounding box (about the detector's box: 0.9 x its width,
    1.06 x its height, same centre, measured on the group photos)."""
    x, y = points[:, 0], points[:, 1]
    return float(x.min()), float(y.min()), float(x.max()), float(y.max())


def order(faces: list[Face]) -> list[Face]:
    """Largest box first (ties: left to right): the numbering of ``--face-index``."""
    return sorted(faces, key=lambda f: (-round(f.area), f.box[0]))


# ---------------------------------------------------------------------------------- detectors
def _quiet():
    from expportrait.detection.landmarks import quiet_stderr
    return quiet_stderr()


def _mediapipe():
    os.environ.setdefault("GLOG_minloglevel", "2")
    try:
        import mediapipe as mp
    except ImportError as exc:  # pragma: no cover - install problem
        raise UserError(f"mediapipe is not installed ({exc}); see README set-up") from None
    return mp


class FaceDetector:
    """``detector(image) -> [Face]`` (candidates, not yet meshed); ``detector.fallback(image)``
    the candidates to try when none of those gets a mesh. ``kind`` one of ``DETECTORS``."""

    SHORT, FULL = 0, 1    # MediaPipe's model_selection: short range (close), full range (far)

    def __init__(self, kind: str = DEFAULT_DETECTOR, min_confidence: float = 0.5):
        if kind not in DETECTORS:
            raise UserError(f"face detector must be one of {', '.join(DETECTORS)}, got {kind!r}")
        self.kind, self.min_confidence = kind, min_confidence
        self._mp: dict[int, object] = {}    # model_selection -> FaceDetection
        self._dlib: dict[int | None, object] = {}   # upsample -> DlibFace

    def _mp_model(self, selection: int):
        if selection not in self._mp:
            with _quiet():
                self._mp[selection] = _mediapipe().solutions.face_detection.FaceDetection(
                    model_selection=selection, min_detection_confidence=self.min_confidence)
        return self._mp[selection]

    def _mp_boxes(self, image: np.ndarray, selection: int) -> list[Face]:
        """Short range: the whole frame; full range: the whole frame and the tiles."""
        H, W = image.shape[:2]
        regions = [(0, 0, W, H)]
        if selection == self.FULL and max(H, W) > TILE:   # overlapping tiles, stride TILE / 2
            regions += [(x, y, min(W, x + TILE), min(H, y + TILE))
                        for y in _starts(H, TILE) for x in _starts(W, TILE)]
        model = self._mp_model(selection)
        out = []
        for x0, y0, x1, y1 in regions:
            whole = (x0, y0, x1, y1) == (0, 0, W, H)
            with _quiet():
                res = model.process(np.ascontiguousarray(image[y0:y1, x0:x1]))
            w, h = x1 - x0, y1 - y0
            for d in res.detections or []:
                b = d.location_data.relative_bounding_box
                box = (x0 + b.xmin * w, y0 + b.ymin * h, x0 + (b.xmin + b.width) * w,
                       y0 + (b.ymin + b.height) * h)
                # a face cut by an inner tile edge is found whole in the overlapping tile
                cut = (not whole) and ((box[0] < x0 + 2 and x0 > 0) or (box[1] < y0 + 2 and y0 > 0)
                                       or (box[2] > x1 - 2 and x1 < W) or (box[3] > y1 - 2 and y1 < H))
                if not cut and box[2] > box[0] and box[3] > box[1]:
                    out.append(Face(_clip(box, W, H), float(d.score[0]), "mediapipe"))
        return out

    def _dlib_boxes(self, image: np.ndarray, upsample: int | None) -> list[Face]:
        """dlib's HOG boxes; ``upsample`` pyramid steps (None: 1 below 360 px, ``DlibFace``'s)."""
        if upsample not in self._dlib:
            from expportrait.detection.dlib_face import DlibFace
            self._dlib[upsample] = DlibFace(upsample=upsample)
        return [Face(tuple(float(v) for v in b), 1.0, "dlib") for b in self._dlib[upsample].detect(image)]

    def __call__(self, image: np.ndarray) -> list[Face]:
        """-> the full-range (and dlib) boxes merged, and the short-range boxes, highest score
        first: one face may have a box of each range (``find_faces`` meshes the first only)."""
        mp = self.kind in ("auto", "mediapipe", "both")
        faces = self._mp_boxes(image, self.FULL) if mp else []
        if self.kind in ("dlib", "both"):
            faces += self._dlib_boxes(image, 1 if max(image.shape[:2]) < 2000 else 0)
        faces = merge(faces) + (self._mp_boxes(image, self.SHORT) if mp else [])
        return sorted(faces, key=lambda f: -f.score)

    def fallback(self, image: np.ndarray) -> list[Face]:
        """"auto": dlib's candidates (none when dlib is not installed), without upsampling above
        360 px (what MediaPipe misses is not small; 4x cheaper: 20 ms at 640x427, a frame
        without a face pays it); other kinds: none."""
        if self.kind != "auto":
            return []
        try:
            return merge(self._dlib_boxes(image, None))
        except UserError:      # dlib missing: MediaPipe alone
            return []

    def close(self) -> None:
        with _quiet():
            for model in self._mp.values():
                model.close()
        self._mp = {}


def _starts(n: int, tile: int) -> list[int]:
    if n <= tile:
        return [0]
    s = list(range(0, n - tile, tile // 2))
    return s + [n - tile]


def _clip(box: Box, W: int, H: int) -> Box:
    return (max(0.0, box[0]), max(0.0, box[1]), min(float(W), box[2]), min(float(H), box[3]))


# ---------------------------------------------------------------------------------- crop + mesh
def crop_transform(box: Box, margin: float = MARGIN) -> tuple[float, float, float, int]:
    """box -> (scale, x0, y0, S): the square crop of side ``margin`` x the box's longer side
    around its centre, resampled to S px; a crop pixel (u, v) is frame pixel
    (x0 + u / scale, y0 + v / scale)."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    side = max(margin * max(box[2] - box[0], box[3] - box[1]), 8.0)
    S = int(np.clip(round(side), CROP_MIN, CROP_MAX))
    s = S / side
    return s, cx - side / 2, cy - side / 2, S


def crop_image(image: np.ndarray, transform) -> np.ndarray:
    """(H, W, 3) uint8 -> (S, S, 3) uint8 crop (black outside the frame)."""
    import cv2
    s, x0, y0, S = transform
    M = np.array([[s, 0, -s * x0], [0, s, -s * y0]], np.float32)
    return cv2.warpAffine(image, M, (S, S), flags=cv2.INTER_CUBIC if s > 1 else cv2.INTER_AREA,
                          borderMode=cv2.BORDER_CONSTANT)


class CropMesh:
    """FaceMesh (478 points with irises) on a crop around a box; ``static`` for single images."""

    def __init__(self, static: bool = True, min_confidence: float = 0.5):
        mp = _mediapipe()
        with _quiet():
            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=static, max_num_faces=2, refine_landmarks=True,
                min_detection_confidence=min_confidence, min_tracking_confidence=min_confidence)
        self._calls = 0

    def __call__(self, image: np.ndarray, box: Box, transform=None) -> np.ndarray | None:
        """image (H, W, 3) uint8, box around the wanted face -> (478, 3) float32 frame pixels of
        the mesh that overlaps ``box`` most (None: no mesh, or only a neighbour's)."""
        t = transform or crop_transform(box)
        s, x0, y0, S = t
        crop = crop_image(image, t)
        if self._calls < 2:  # the first calls print TFLite/XNNPACK start-up lines
            with _quiet():
                res = self._mesh.process(crop)
        else:
            res = self._mesh.process(crop)
        self._calls += 1
        best, best_iou = None, 0.2
        for lm in res.multi_face_landmarks or []:
            p = np.array([(q.x * S, q.y * S, q.z * S) for q in lm.landmark], np.float32) / s
            p[:, 0] += x0
            p[:, 1] += y0
            o = iou(mesh_box(p), box)
            if o > best_iou:
                best, best_iou = p, o
        return best

    def close(self) -> None:
        with _quiet():
            self._mesh.close()


# ---------------------------------------------------------------------------------- faces
def find_faces(image: np.ndarray, detector: str | FaceDetector = DEFAULT_DETECTOR,
               mesh: CropMesh | None = None) -> list[Face]:
    """image (H, W, 3) uint8 -> the faces in it, largest first, each with its ``points``
    (candidates FaceMesh finds no face in are dropped; when none is left, the detector's
    ``fallback`` candidates are meshed instead)."""
    det = detector if isinstance(detector, FaceDetector) else FaceDetector(detector)
    own = mesh is None
    mesh = mesh or CropMesh(static=True)
    try:
        faces = _meshed(image, det(image), mesh)
        if not faces:
            faces = _meshed(image, det.fallback(image), mesh)
    finally:
        if own:
            mesh.close()
        if det is not detector:
            det.close()
    return order(faces)


def _meshed(image: np.ndarray, candidates: list[Face], mesh: CropMesh) -> list[Face]:
    """Non-maximum suppression by meshes: the candidates (in order) FaceMesh finds a face in,
    with their ``points``, skipping any that overlaps (``overlaps``) a kept face's mesh box. A
    candidate without a mesh suppresses nothing (a full-range box on half of a close-up face),
    and a loose box (the short range's round a small face) only the face it meshes."""
    faces: list[Face] = []
    for f in candidates:
        if any(overlaps(f.box, mesh_box(k.points)) for k in faces):
            continue
        f.points = mesh(image, f.box)
        if f.points is not None:       # again on the crop its own mesh gives (as a video's next
            #   frame is): the points no longer depend on which detector's box found the face
            f.points = _first(mesh(image, mesh_box(f.points)), f.points)
        if f.points is not None and not any(overlaps(mesh_box(f.points), mesh_box(k.points))
                                            for k in faces):
            faces.append(f)
    return faces


def _first(*xs):
    return next((x for x in xs if x is not None), None)


def choose(faces: list[Face], index: int, where: str = "") -> Face:
    """``faces[index]`` (``order``-ed) or a one-line error naming what there is."""
    if index < 0:
        raise UserError(f"--face-index must be >= 0, got {index}")
    if index >= len(faces):
        n = len(faces)
        raise UserError(f"--face-index {index} is out of range: {n} face{'s' if n != 1 else ''} "
                        f"found{where} (0-{n - 1}); `expportrait faces INPUT` shows them numbered")
    return faces[index]
