"""Fréchet distance between Gaussians and FVD with a user-supplied I3D TorchScript.

No I3D weights ship offline (offline-resources section 3). ``FVD.from_file`` takes the common
``i3d_torchscript.pt`` (StyleGAN-V / DIGAN / common_metrics_on_video_quality) and follows their
convention: each clip is resized to 224x224 (bicubic, antialiased, per frame), scaled to [-1, 1],
laid out (B, 3, T, 224, 224) and passed as ``detector(x, rescale=False, resize=False,
return_features=True)``, which returns (B, 400) pre-softmax features.

For one predicted video against one reference video, each is cut into non-overlapping clips of
``clip_len`` frames (16 by default); FVD is the Fréchet distance between the two sets of clip
features. With few clips the covariances are rank-deficient and the number is only a rough
indication; the report states the clip count.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.linalg

from expportrait.errors import UserError
from expportrait.metrics.image import to_unit_float


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)) for mu (D,), sigma (D, D) symmetric PSD.

    tr((S1 S2)^(1/2)) is computed as the sum of square roots of the eigenvalues of the symmetric PSD
    matrix S1^(1/2) S2 S1^(1/2) (same eigenvalues as S1 S2), with tiny negative round-off clipped
    to zero (and eigenvalues below D * eps * max treated as exact zeros). This avoids the complex results and non-convergence of ``sqrtm(S1 @ S2)`` on singular
    covariances; the tests compare it with ``scipy.linalg.sqrtm`` on well-conditioned inputs."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (len(mu1), len(mu1)):
        raise ValueError(f"shape mismatch: mu {mu1.shape} {mu2.shape}, sigma {s1.shape} {s2.shape}")
    s1 = (s1 + s1.T) / 2
    s2 = (s2 + s2.T) / 2
    w1, v1 = scipy.linalg.eigh(s1)
    root1 = (v1 * np.sqrt(np.clip(w1, 0, None))) @ v1.T  # S1^(1/2), (D, D) symmetric
    m = root1 @ s2 @ root1
    w = scipy.linalg.eigvalsh((m + m.T) / 2)
    w[w < np.abs(w).max(initial=0.0) * len(w) * np.finfo(np.float64).eps] = 0.0  # round-off of a zero
    tr_covmean = np.sqrt(w).sum()
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)
    return max(value, 0.0)  # a distance; tiny negative round-off is clamped


def feature_stats(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """feats (N, D) -> mean (D,), covariance (D, D) (unbiased, N - 1; zeros when N == 1)."""
    feats = np.asarray(feats, np.float64)
    mu = feats.mean(0)
    if len(feats) < 2:
        return mu, np.zeros((feats.shape[1], feats.shape[1]))
    return mu, np.cov(feats, rowvar=False)


class FVD:
    """Wraps a TorchScript I3D: ``features(video)`` and ``distance(pred, ref)``."""

    def __init__(self, detector, clip_len: int = 16, size: int = 224):
        self.detector = detector
        self.clip_len = clip_len
        self.size = size

    @classmethod
    def from_file(cls, path: str | Path, clip_len: int = 16) -> "FVD":
        import torch

        path = Path(path)
        if not path.is_file():
            raise UserError(f"I3D TorchScript file not found: {path}")
        try:
            detector = torch.jit.load(str(path), map_location="cpu").eval()
        except Exception as exc:  # noqa: BLE001 - any load failure is bad user input
            raise UserError(f"{path}: cannot load as TorchScript (expected i3d_torchscript.pt): "
                            f"{str(exc).splitlines()[0][:200]}") from None
        return cls(detector, clip_len=clip_len)

    def clips(self, frames: np.ndarray) -> "torch.Tensor":
        """frames (F, H, W, 3) uint8 or float [0, 1] -> (F // clip_len, 3, clip_len, S, S) in [-1, 1]."""
        import torch
        import torch.nn.functional as F

        x = to_unit_float(frames)
        n = len(x) // self.clip_len
        if n == 0:
            raise UserError(f"FVD needs at least {self.clip_len} frames, got {len(x)}")
        t = torch.from_numpy(x[: n * self.clip_len]).float().permute(0, 3, 1, 2)  # (n*T, 3, H, W)
        t = F.interpolate(t, size=(self.size, self.size), mode="bicubic", antialias=True, align_corners=False)
        t = t.clamp(0, 1) * 2 - 1
        return t.reshape(n, self.clip_len, 3, self.size, self.size).permute(0, 2, 1, 3, 4)  # (n, 3, T, S, S)

    def features(self, frames: np.ndarray, batch: int = 4) -> np.ndarray:
        """frames (F, H, W, 3) -> (F // clip_len, D) I3D features (D = 400 for i3d_torchscript.pt)."""
        import torch

        clips = self.clips(frames)
        out = []
        with torch.no_grad():
            for s in range(0, len(clips), batch):
                f = self.detector(clips[s:s + batch], rescale=False, resize=False, return_features=True)
                out.append(np.asarray(f.detach().cpu().double().numpy()).reshape(len(clips[s:s + batch]), -1))
        return np.concatenate(out)

    def distance(self, pred: np.ndarray, ref: np.ndarray) -> dict:
        """pred, ref (F, H, W, 3) videos -> {"fvd": float, "clips_pred": n, "clips_ref": m, ...}."""
        fp, fr = self.features(pred), self.features(ref)
        value = frechet_distance(*feature_stats(fp), *feature_stats(fr))
        return {"computed": True, "fvd": value, "clip_len": self.clip_len, "clips_pred": len(fp),
                "clips_ref": len(fr)}
