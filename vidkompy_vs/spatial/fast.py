"""A fast scale and position estimate for one frame pair, before (and instead of) the scan
of a scale grid.

ORB keypoints on reduced copies of both pictures (contrast-limited equalisation first, so
that dark, flat footage still has corners), matched with Lowe's ratio test, give a
similarity without rotation (a RANSAC of its own, seeded); its scale and position are then
confirmed on the pictures themselves: NCC (grey and gradient, as the grid scores) of FG
against BG resampled there. Only an estimate that many keypoints agree on, without a
rotation, that fits inside BG and that the pictures confirm is returned; anything else
is ``None`` and the caller scans the grid as before.

Measured on the spatial benchmark's pairs and the speed pairs (one 1080p frame pair,
CPU time): the estimate lands within 3.3 px and 0.6 % of the truth, which the sub-pixel
step (affine ECC) takes to the grid's own result, in 0.05-0.065 s where the grid takes
0.06-0.17 s. SIFT lands closer (0.4 px) but costs 0.15-0.18 s, more than the grid; at
320 px ORB no longer finds enough matches on upscaled footage.
"""

from __future__ import annotations

import logging
import math
from typing import NamedTuple

import cv2
import numpy as np

from ..alignment import Placement
from .common import MIN_FOOT, Pyramid, fits, grad, ncc, resampled, resized

log = logging.getLogger(__name__)

# working size: the long side of each reduced copy (FG's and BG's alike)
SIDE = 480
# detector budget per picture
FEATURES = 1500
# a similarity that this many matches agree on, and at least this share of the matches
# that passed the ratio test (chance agreement of unrelated pictures stays far below both)
MIN_INLIERS = 12
MIN_SHARE = 0.15
# RANSAC hypotheses (pairs of matches): with a third of the matches right, the chance of
# missing every all-right pair in 500 draws is (1 - 1/9)**500, nil
HYPOTHESES = 500
# the confirming NCC (mean of grey and gradient, at the working size) a placement needs
CONFIRM = 0.7


def confirm_ncc(fg: Pyramid, bg: Pyramid, p: Placement, k: int) -> float:
    """NCC (mean of grey and gradient) of FG against BG resampled at ``p``, on level ``k``:
    the measure the grid ranks scales by, at one placement."""
    g, w = resampled(fg, bg, p, k)
    return (ncc(g, w) + ncc(grad(g), grad(w))) / 2


def _level(bg: Pyramid, fw: float, fh: float) -> int:
    """The pyramid level the confirmation runs on: FG's footprint still a few hundred px."""
    k = 0
    while max(fw, fh) / 2 ** (k + 1) >= SIDE / 2 and min(fw, fh) / 2 ** (k + 1) >= 2 * MIN_FOOT:
        k += 1
    return k


class FastEstimate(NamedTuple):
    """A confirmed estimate and what confirmed it."""

    placement: Placement  # full pixels; confidence = the confirming NCC
    inliers: int
    share: float  # inliers / matches that passed the ratio test
    ncc: float


class Keypoints(NamedTuple):
    """One picture's keypoints (corner coordinates in its full pixels) and descriptors."""

    points: np.ndarray  # (N, 2) float32
    desc: np.ndarray | None  # (N, 32) uint8
    width: int
    height: int
    factor: float  # working size / full size


def keypoints(img: np.ndarray, side: float = SIDE) -> Keypoints:
    """ORB keypoints of a grey picture (float32 or uint8), on its copy reduced to a long
    side of ``side``."""
    f = min(1.0, side / max(img.shape))
    small = cv2.convertScaleAbs(resized(img, f))
    # contrast-limited equalisation: corners in dark, low-contrast footage too
    eq = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(small)
    kp, desc = cv2.ORB_create(nfeatures=FEATURES, fastThreshold=7).detectAndCompute(eq, None)
    # keypoints sit at pixel centres of the reduced copy: corners of the full picture
    pts = (np.float32([k.pt for k in kp]).reshape(-1, 2) + 0.5) / f
    return Keypoints(pts, desc, img.shape[1], img.shape[0], f)


class Similarity(NamedTuple):
    """Keypoints' verdict before the pictures confirm it."""

    placement: Placement
    inliers: int
    share: float


def similarity(fk: Keypoints, bk: Keypoints, scale: float | None = None) -> Similarity | None:
    """FG's scale and corner in BG from matched keypoints (RANSAC similarity, no rotation
    allowed, refitted without one); ``None`` when the keypoints do not agree on one."""
    if fk.desc is None or bk.desc is None or len(fk.points) < MIN_INLIERS or len(bk.points) < MIN_INLIERS:
        return None
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(fk.desc, bk.desc, k=2)
    good = [m[0] for m in pairs if len(m) == 2 and m[0].distance < 0.8 * m[1].distance]
    if len(good) < MIN_INLIERS:
        return None
    src = fk.points[[m.queryIdx for m in good]].astype(np.float64)
    dst = bk.points[[m.trainIdx for m in good]].astype(np.float64)
    tol = 2.0 / bk.factor  # two working pixels
    inl = consensus(src, dst, tol, scale)
    if inl is None:
        return None
    n = int(inl.sum())
    if n < MIN_INLIERS or n / len(good) < MIN_SHARE:
        return None
    s, x, y = _fit(src[inl], dst[inl], scale)
    if not math.isfinite(s) or min(fk.width, fk.height) * s < MIN_FOOT \
            or not fits(fk.width, fk.height, bk.width + 2, bk.height + 2, s):
        return None
    # (a footprint a pixel or two past BG's edge is rounding: pull it inside)
    if fk.width * s <= bk.width:
        x = min(max(x, 0.0), bk.width - fk.width * s)
    if fk.height * s <= bk.height:
        y = min(max(y, 0.0), bk.height - fk.height * s)
    return Similarity(Placement(float(x), float(y), float(s), 0.0, "orb"), n, n / len(good))


def consensus(src: np.ndarray, dst: np.ndarray, tol: float, scale: float | None,
              hypotheses: int = HYPOTHESES) -> np.ndarray | None:
    """The matches (rows of ``src`` -> ``dst``) that agree on one ``dst = s * src + t``
    within ``tol``: RANSAC over the model FG can have here (a scale and a shift, never a
    rotation), its hypotheses drawn from a generator seeded here, so that the answer does
    not depend on what ran before (OpenCV's RANSAC draws from a per-thread RNG: a case
    that passed alone failed in the suite). With ``scale`` fixed, one match is a
    hypothesis and all are tried (a median of the shifts, used before, went astray when
    fewer than half the matches were right: 30 % on a textured fractal). ``None``: no
    hypothesis."""
    n = len(src)
    if scale is not None:
        d = dst - scale * src
        best = None
        for lo in range(0, n, 512):  # (blocks: n x n votes at most 512 x n at a time)
            votes = (np.abs(d[lo:lo + 512, None, :] - d[None, :, :]) < tol).all(axis=2).sum(axis=1)
            k = lo + int(np.argmax(votes))
            if best is None or votes.max() > best[1]:
                best = (k, int(votes.max()))
        assert best is not None
        return np.all(np.abs(d - d[best[0]]) < tol, axis=1)
    rng = np.random.default_rng(0x5EED)
    i = rng.integers(0, n, hypotheses)
    j = rng.integers(0, n, hypotheses)
    ds, dd = src[i] - src[j], dst[i] - dst[j]
    norm = (ds * ds).sum(axis=1)
    ok = norm > 16.0  # two keypoints a few pixels apart pin no scale
    if not ok.any():
        return None
    i, ds, dd, norm = i[ok], ds[ok], dd[ok], norm[ok]
    # the scale of each pair's displacement along its FG displacement (least squares for
    # a model without rotation), the shift from its first match
    sc = (ds * dd).sum(axis=1) / norm
    t = dst[i] - sc[:, None] * src[i]
    best, best_n = None, 0
    for lo in range(0, len(sc), 128):
        pred = sc[lo:lo + 128, None, None] * src[None, :, :] + t[lo:lo + 128, None, :]
        hits = ((pred - dst[None, :, :]) ** 2).sum(axis=2) < tol * tol
        cnt = hits.sum(axis=1)
        k = int(np.argmax(cnt))
        if cnt[k] > best_n and sc[lo + k] > 0:
            best, best_n = hits[k], int(cnt[k])
    if best is None:
        return None
    # refitted on its inliers and re-selected once (a hypothesis from two matches is a
    # pixel or so off at the far end of the picture)
    s, x, y = _fit(src[best], dst[best], None)
    again = ((s * src + np.array([x, y]) - dst) ** 2).sum(axis=1) < tol * tol
    return again if again.sum() >= best.sum() else best


def confirmed(fg: Pyramid, bg: Pyramid, sim: Similarity) -> FastEstimate | None:
    """``sim`` if the pictures confirm it (NCC at least :data:`CONFIRM`)."""
    p = sim.placement
    ncc = confirm_ncc(fg, bg, p, _level(bg, fg.w * p.scale, fg.h * p.scale))
    if ncc < CONFIRM:
        return None
    return FastEstimate(Placement(p.x, p.y, p.scale, ncc, p.method), sim.inliers, sim.share, ncc)


def fast_estimate(fg: Pyramid, bg: Pyramid, scale: float | None = None) -> FastEstimate | None:
    """FG's placement in BG from keypoints, confirmed by NCC; ``None`` when unsure (too few
    or disagreeing keypoints, a rotation, FG not fitting, or the pictures not confirming
    it). ``scale`` fixes the scale (only the position is estimated)."""
    # BG's copy at least half FG's working resolution: a small FG (a quarter of BG's width,
    # a thin strip) keeps enough keypoints inside its footprint, and ORB's pyramid (8 steps
    # of 1.2) spans the scale between the copies (measured: a 640x180 strip at scale 1.5 in
    # 1080p, 7 inliers with BG at 480 px, 14 at 640, 20 at 800)
    bside = max(SIDE, 0.5 * SIDE * max(bg.w, bg.h) / max(fg.w, fg.h))
    try:
        sim = similarity(keypoints(fg.source), keypoints(bg.source, bside), scale)
        return None if sim is None else confirmed(fg, bg, sim)
    except (cv2.error, ValueError) as e:  # a method that fails is skipped: the grid stands in
        log.warning("fast estimate skipped: %s", str(e).strip().splitlines()[-1])
        return None


def _fit(src: np.ndarray, dst: np.ndarray, scale: float | None) -> tuple[float, float, float]:
    """Least squares for ``dst = (x, y) + s * src`` (no rotation), ``s`` fixed when given."""
    if scale is not None:
        x, y = np.median(dst - scale * src, axis=0)
        return float(scale), float(x), float(y)
    n = len(src)
    a = np.zeros((2 * n, 3))
    a[0::2, 0] = 1
    a[1::2, 1] = 1
    a[0::2, 2] = src[:, 0]
    a[1::2, 2] = src[:, 1]
    x, y, s = np.linalg.lstsq(a, dst.reshape(-1), rcond=None)[0]
    return float(s), float(x), float(y)
