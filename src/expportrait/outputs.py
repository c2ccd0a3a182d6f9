"""Writing a reenactment: ``OUT.mp4`` (the driver's audio carried over) and ``OUT.compare.mp4``
(source | driver | result side by side)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from expportrait.data.video import Video, write_video
from expportrait.errors import UserError


def compare_frames(source: np.ndarray, driving: np.ndarray, result: np.ndarray) -> np.ndarray:
    """source (F_s, H_s, W_s, 3), driving (F, H_d, W_d, 3), result (F, H, W, 3) uint8
    -> (F, H, W_s' + W_d' + W, 3): the three resized to the result's height side by side
    (a 1-frame source is held)."""
    import cv2
    H = result.shape[1]

    def fit_h(img):
        w = max(2, round(img.shape[1] * H / img.shape[0]))
        return cv2.resize(img, (w, H), interpolation=cv2.INTER_AREA)

    out = []
    for i in range(len(result)):
        s = source[min(i, len(source) - 1)]
        out.append(np.concatenate([fit_h(s), fit_h(driving[min(i, len(driving) - 1)]), result[i]], 1))
    return np.stack(out)


def write_outputs(result, out: str | Path, source: Video, driving: Video) -> tuple[Path, Path]:
    """result (``pipeline.ReenactResult``) -> OUT.mp4 (driving audio carried over) and
    OUT.compare.mp4 (source | driver | result)."""
    out = Path(out)
    if out.suffix.lower() != ".mp4":
        raise UserError(f"--out must end in .mp4, got {out}")
    write_video(out, result.frames, result.fps, audio_from=driving.path)
    ref = source.frames[[result.reference_frame]]
    cmp_path = out.with_suffix(".compare.mp4")
    write_video(cmp_path, compare_frames(ref, driving.frames, result.frames), result.fps)
    return out, cmp_path
