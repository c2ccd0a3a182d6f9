"""Identity preservation: CSIM between each output frame and the source portrait.

CSIM here = cosine similarity of face descriptors (output frame vs source image), averaged over
frames where a face is found. The descriptor that ships offline is dlib's 128-d ResNet
(``dlib_face_recognition_resnet_model_v1``); published CSIM numbers use ArcFace, so the dlib CSIM
is *not* comparable with paper tables. When the user supplies an ArcFace ONNX model (e.g.
insightface ``w600k_r50.onnx``) and onnxruntime is importable, ``csim_arcface`` is reported too.

Also reported: the dlib Euclidean distance (dlib's same-person threshold is 0.6) and the fraction
of *all* frames whose distance is below 0.6 (frames without a detected face count as failures).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from expportrait.detection.dlib_face import SAME_PERSON_DISTANCE, DlibFace
from expportrait.errors import UserError

# ArcFace 112x112 alignment template (insightface): left eye, right eye, nose tip, mouth corners
ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float64)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a (..., D), b (..., D) -> (...) cosine similarity (NaN rows stay NaN)."""
    na = np.linalg.norm(a, axis=-1)
    nb = np.linalg.norm(b, axis=-1)
    return (a * b).sum(-1) / np.maximum(na * nb, 1e-12)


@dataclass
class IdentityResult:
    """Per-frame arrays are (F,), NaN where no face was found in that output frame."""

    cosine: np.ndarray
    distance: np.ndarray
    landmarks: np.ndarray  # (F, 68, 2) dlib landmarks of the output frames (NaN where none)
    arcface_cosine: np.ndarray | None = None

    def summary(self) -> dict:
        found = np.isfinite(self.distance)
        out = {
            "backbone": "dlib_face_recognition_resnet_model_v1 (128-d; not ArcFace)",
            "csim": _nanmean(self.cosine),
            "dlib_distance": _nanmean(self.distance),
            "same_person_threshold": SAME_PERSON_DISTANCE,
            "same_person_fraction": float(np.mean(found & (np.nan_to_num(self.distance, nan=np.inf)
                                                          < SAME_PERSON_DISTANCE))),
            "face_found_fraction": float(found.mean()),
            "per_frame_csim": [None if not np.isfinite(v) else float(v) for v in self.cosine],
        }
        if self.arcface_cosine is not None:
            out["csim_arcface"] = _nanmean(self.arcface_cosine)
        return out


def identity_similarity(frames: np.ndarray, source_image: np.ndarray, face: DlibFace | None = None,
                        arcface: "ArcFaceONNX | None" = None, progress: bool = False) -> IdentityResult:
    """frames (F, H, W, 3) output video; source_image (H', W', 3) the source portrait (RGB uint8).

    Raises UserError if no face is found in the source image."""
    face = face or DlibFace()
    src_lmk, src = face.analyze_video(np.asarray(source_image)[None], descriptors=True)  # (1,68,2), (1,128)
    if not np.isfinite(src).all():
        raise UserError("no face found in the source image (dlib HOG detector)")
    src_lmk, src = src_lmk[0], src[0]
    lmk, desc = face.analyze_video(frames, descriptors=True, progress=progress)  # (F,68,2), (F,128)
    result = IdentityResult(cosine=cosine(desc, src[None]), distance=np.linalg.norm(desc - src[None], axis=-1),
                            landmarks=lmk)
    if arcface is not None:
        ref = arcface.embed(source_image, src_lmk)
        cos = np.full(len(frames), np.nan)
        for i, (frame, pts) in enumerate(zip(frames, lmk)):
            if np.isfinite(pts).all():
                cos[i] = float(cosine(arcface.embed(frame, pts), ref))
        result.arcface_cosine = cos
    return result


class ArcFaceONNX:
    """A user-supplied ArcFace ONNX model (input (1, 3, 112, 112) RGB, (x - 127.5) / 127.5).

    Faces are aligned to the standard 112x112 template with a similarity transform from five points
    taken from the dlib 68 landmarks (eye centres, nose tip 30, mouth corners 48 and 54)."""

    def __init__(self, path: str | Path):
        path = Path(path)
        if not path.is_file():
            raise UserError(f"ArcFace model not found: {path}")
        try:
            import onnxruntime as ort
        except ImportError:
            raise UserError("--arcface needs onnxruntime (pip install onnxruntime)") from None
        try:
            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - any load failure is bad user input
            raise UserError(f"{path}: cannot load as an ONNX model: {str(exc).splitlines()[0][:200]}") from None
        self.input = self.session.get_inputs()[0]

    def embed(self, img: np.ndarray, landmarks68: np.ndarray) -> np.ndarray:
        """img (H, W, 3) uint8 RGB, landmarks68 (68, 2) -> (D,) embedding."""
        crop, _ = align_arcface(img, landmarks68)  # (112, 112, 3) uint8
        x = (crop.astype(np.float32) - 127.5) / 127.5
        shape = self.input.shape
        x = x[None] if (len(shape) == 4 and shape[-1] == 3) else x.transpose(2, 0, 1)[None]  # NHWC or NCHW
        return np.asarray(self.session.run(None, {self.input.name: x})[0]).reshape(-1).astype(np.float64)


def five_points(landmarks68: np.ndarray) -> np.ndarray:
    """(68, 2) -> (5, 2): eye centres (image-left eye first), nose tip 30, mouth corners 48, 54."""
    return np.stack([landmarks68[36:42].mean(0), landmarks68[42:48].mean(0), landmarks68[30],
                     landmarks68[48], landmarks68[54]])


def align_arcface(img: np.ndarray, landmarks68: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """img (H, W, 3) uint8, landmarks68 (68, 2) pixels -> (crop (112, 112, 3) uint8, M (2, 3)
    similarity transform mapping image pixels to crop pixels)."""
    import cv2

    M = _similarity_lsq(five_points(landmarks68), ARCFACE_TEMPLATE)
    crop = cv2.warpAffine(np.ascontiguousarray(img), M, (112, 112), borderValue=0)  # (112, 112, 3)
    return crop, M


def _similarity_lsq(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (Umeyama 1991, as insightface's alignment; scikit-image's) src
    (N, 2) -> dst (N, 2); returns M (2, 3) with dst ~ src @ M[:, :2].T + M[:, 2]."""
    from skimage.transform import SimilarityTransform
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    if ((src - src.mean(0)) ** 2).sum() <= 0:
        raise UserError("cannot align the face for ArcFace (degenerate landmarks)")
    if hasattr(SimilarityTransform, "from_estimate"):          # scikit-image >= 0.26
        t = SimilarityTransform.from_estimate(src, dst)
    else:
        t = SimilarityTransform()
        t = t if t.estimate(src, dst) else None
    if not t:
        raise UserError("cannot align the face for ArcFace (degenerate landmarks)")
    return t.params[:2]


def _nanmean(x: np.ndarray) -> float | None:
    x = np.asarray(x, dtype=np.float64)
    return float(np.nanmean(x)) if np.isfinite(x).any() else None
