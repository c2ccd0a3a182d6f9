"""warp_first's mouth from the source's own frames (a video source; ``mouth_source`` auto and
source), as Face2Face retrieves the target's mouth interior (Thies et al. 2016, section 7).

- ``lip_distance``: how far each bank frame's lips are from each driven frame's, the full
  Procrustes distance of the 20 lip points (translation, scale and rotation removed; the inner
  lips weighted ``inner_weight``); a bank mouth that opens less than ``open_share`` x the driven
  one does not count (its teeth would be stretched).
- ``retrieve``: one bank frame per output frame, smoothed over time: the cheapest path (Viterbi)
  over the bank frames and "none" (a constant ``max_distance``: no frame close enough), where
  changing frame costs ``switch`` + ``look`` x how differently the two mouths look
  (``mouth_looks``), going to or from "none" ``leave``, all scaled by the gate and the opening (a switch while the mouth is closed is not
  seen); with a driver, a bank frame whose teeth show more or less than the driver's costs more
  (``teeth``).
- ``seen_lips``: the driven head's lips are compared where a detector would see them (the head's
  and MediaPipe's lips differ for the same mouth).
- ``carry_own_mouth``: the chosen frame's inner mouth carried into the driven inner lips exactly
  as the driver's is (``engines.mouth.carry_driver_mouth``, colour matched to the result's
  cheeks; no cavity shading: the source's own frames are not washed out).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from expportrait.engines.mouth import (
    LUMA,
    carry_driver_mouth,
    opening,
    skin_ring,
    teeth_share,
)

LIPS = slice(48, 68)                 # 68-point outer (48-59) and inner (60-67) lips
LOOK = (32, 24)                      # (w, h) of the canonical mouth patch of ``mouth_looks``


@dataclass(frozen=True)
class BankConfig:
    max_distance: float = 0.13       # cost (lip distance + teeth) above which no own frame is close enough
    open_share: float = 0.625        # a bank mouth opens at least this x the driven one (stretched at
    #   most 1.6x: a mouth stretched further shows grey "tombstone" teeth)
    teeth: float = 0.2               # + this x |teeth share wanted (the driver's) - the bank frame's|
    inner_weight: float = 2.0        # weight of the inner lips (60-67) against the outer ones
    switch: float = 0.02             # cost of changing the retrieved frame (distance units) ...
    look: float = 0.1                # ... + this x the mean |grey difference| of the two mouths
    shown: float = 0.05              # ... in full from this ``opening`` on (less: a switch is not seen)
    leave: float = 0.1               # cost of going from a bank frame to none or back (another mouth)


def seen_lips(target68: np.ndarray, model_ref: np.ndarray, seen_ref: np.ndarray) -> np.ndarray:
    """The driven lips moved to where a detector sees them: target68 (F, 68, 2) the driven head's
    landmarks, model_ref / seen_ref (68, 2) the head's and the detector's at the reference frame ->
    (F, 68, 2) with the lips 48-67 offset by seen_ref - model_ref carried through the similarity
    from the reference's head lips to each frame's. (The head's and MediaPipe's lips differ for the
    same mouth: full Procrustes distance 0.08 on cap13, 0.03-0.05 after this.)"""
    out = np.array(target68, np.float64)
    p, off = np.asarray(model_ref, np.float64)[LIPS], np.asarray(seen_ref, np.float64)[LIPS] - model_ref[LIPS]
    if not (np.isfinite(p).all() and np.isfinite(off).all()):
        return out
    for f, t in enumerate(out):
        A, _ = cv2.estimateAffinePartial2D(p.astype(np.float32), t[LIPS].astype(np.float32))
        if A is not None:
            out[f, LIPS] += off @ A[:, :2].T
    return out


BANK = BankConfig()                  # warp_first's (benchmarks/mouth_retrieval.py tries others)


def lip_shapes(lmk68: np.ndarray, inner_weight: float = 2.0) -> np.ndarray:
    """(F, 68, 2) -> (F, 20) complex: the lips 48-67 as complex numbers, each scaled by the square
    root of its weight about the weighted centroid, unit norm (NaN rows for non-finite lips)."""
    lip = np.asarray(lmk68, np.float64)[:, LIPS]
    z = lip[..., 0] + 1j * lip[..., 1]                                         # (F, 20)
    w = np.r_[np.ones(12), np.full(8, inner_weight)]
    z = (z - (z * w).sum(1, keepdims=True) / w.sum()) * np.sqrt(w)
    return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-9)


def lip_distance(target68: np.ndarray, bank68: np.ndarray, inner_weight: float = 2.0) -> np.ndarray:
    """target68 (F, 68, 2), bank68 (K, 68, 2) -> (F, K) full Procrustes distance of their lips in
    [0, 1]: sqrt(1 - |<z, w>|^2) of the unit-norm shapes (0: the same shape up to a similarity)."""
    c = lip_shapes(target68, inner_weight) @ lip_shapes(bank68, inner_weight).conj().T
    return np.sqrt(np.clip(1.0 - np.abs(c) ** 2, 0.0, 1.0))


def mouth_looks(frames: np.ndarray, lmk68: np.ndarray) -> np.ndarray:
    """frames (K, H, W, 3) uint8, lmk68 (K, 68, 2) -> (K, h, w) float32: each mouth in a canonical
    ``LOOK`` patch (the similarity taking the mouth corners 48, 54 to its quarter and three-quarter
    width on the middle row), grey over the median grey of the skin around the lips (1: skin)."""
    w, h = LOOK
    dst = np.array([[0.25 * w, 0.5 * h], [0.75 * w, 0.5 * h]], np.float32)
    out = np.ones((len(frames), h, w), np.float32)
    for k, (img, lm) in enumerate(zip(frames, np.asarray(lmk68, np.float64))):
        if not np.isfinite(lm).all():
            continue
        A, _ = cv2.estimateAffinePartial2D(lm[[48, 54]].astype(np.float32), dst)
        if A is None:
            continue
        grey = cv2.warpAffine(img, A, (w, h), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE) @ LUMA
        skin = skin_ring(img, lm) @ LUMA
        out[k] = grey / max(float(np.median(skin)) if len(skin) else 1.0, 1.0)
    return out


def viterbi(unary: np.ndarray, trans: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """unary (F, S) costs, trans (S, S) cost of going from state i to j, scale (F,) the factor on
    the transition into frame f -> (F,) int the path of least total cost."""
    F, S = unary.shape
    cost, back = unary[0].copy(), np.zeros((F, S), np.int64)
    for f in range(1, F):
        total = cost[:, None] + scale[f] * trans                               # (S from, S to)
        back[f] = np.argmin(total, 0)
        cost = total[back[f], np.arange(S)] + unary[f]
    path = np.empty(F, np.int64)
    path[-1] = int(np.argmin(cost))
    for f in range(F - 1, 0, -1):
        path[f - 1] = back[f, path[f]]
    return path


def retrieve(target68: np.ndarray, bank68: np.ndarray, looks: np.ndarray, weight: np.ndarray,
             valid: np.ndarray | None = None, teeth: tuple | None = None,
             cfg: BankConfig = BankConfig()) -> tuple[np.ndarray, np.ndarray]:
    """target68 (F, 68, 2) the driven lips, bank68 (K, 68, 2) the bank's, looks (K, h, w)
    (``mouth_looks``), weight (F,) in [0, 1] the gate, valid (K,) bool bank frames with a face,
    teeth ((F,), (K,)) the teeth wanted (the driver's ``teeth_share``, NaN: any) and the bank's ->
    (pick (F,) int: the bank frame of each output frame, -1 for none; distance (F,) its lip
    distance, NaN for none)."""
    F, K = len(target68), len(bank68)
    d = lip_distance(target68, bank68, cfg.inner_weight)                      # (F, K)
    ok = opening(bank68)[None] >= cfg.open_share * opening(target68)[:, None]
    ok &= np.isfinite(d) & (np.ones(K, bool) if valid is None else np.asarray(valid, bool))[None]
    cost = d if teeth is None else d + cfg.teeth * np.nan_to_num(np.abs(teeth[0][:, None] - teeth[1][None]))
    unary = np.concatenate([np.where(ok, cost, np.inf), np.full((F, 1), cfg.max_distance)], 1)
    diff = np.abs(looks[:, None] - looks[None]).mean((2, 3))                  # (K, K)
    trans = np.full((K + 1, K + 1), float(cfg.leave))                         # into / out of none
    trans[:K, :K] = cfg.switch + cfg.look * diff
    np.fill_diagonal(trans, 0.0)
    w = np.asarray(weight, np.float64) * np.clip(opening(target68) / cfg.shown, 0.0, 1.0)
    scale = np.r_[0.0, np.minimum(w[1:], w[:-1])]
    path = viterbi(np.where(np.isfinite(unary), unary, 1e6), trans, scale)
    pick = np.where(path < K, path, -1)
    dist = np.where(pick >= 0, d[np.arange(F), np.maximum(pick, 0)], np.nan)
    return pick, dist


def carry_own_mouth(frames: np.ndarray, target68: np.ndarray, bank: np.ndarray, bank_track,
                    weight: np.ndarray, model_ref: np.ndarray | None = None, ref: int | None = None,
                    teeth: np.ndarray | None = None, cfg: BankConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """frames (F, H, W, 3) uint8 the warped result, target68 (F, 68, 2) its driven landmarks,
    bank (K, H, W, 3) uint8 the source's frames, bank_track their LandmarkTrack, weight (F,) in
    [0, 1] (``engines.mouth.gate``); model_ref (68, 2) the head's landmarks at the reference frame,
    bank frame ``ref`` (both given: the driven lips are compared as seen, ``seen_lips``); teeth (F,)
    the driver's ``teeth_share`` (NaN: unknown) -> (frames with the retrieved own mouths inside the
    driven inner lips, pick (F,) int the bank frame of each, -1 where none is close enough);
    ``cfg``: default ``BANK``."""
    b68 = np.asarray(bank_track.ibug68, np.float64)
    wanted = target68 if model_ref is None or ref is None else seen_lips(target68, model_ref, b68[ref])
    theirs = None if teeth is None else (np.asarray(teeth, np.float64),
                                         np.array([teeth_share(b, lm) for b, lm in zip(bank, b68)]))
    pick, _ = retrieve(wanted, b68, mouth_looks(bank, b68), weight, bank_track.valid, theirs, cfg or BANK)
    w = np.asarray(weight, np.float64) * (pick >= 0)
    out = carry_driver_mouth(frames, target68, bank, b68, w, pick=np.maximum(pick, 0), shade=False,
                             chroma=1.0)
    return out, pick
