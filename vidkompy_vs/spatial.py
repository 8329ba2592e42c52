"""Spatial alignment: where FG (scaled by ``scale``) sits inside BG, to a fraction of a pixel.

Convention: pixel *corners* (zimg/OpenCV ``resize``): FG scaled by ``scale`` has its
top-left corner at (``x``, ``y``) in BG pixels, i.e. ``BG(x + scale*u, y + scale*v)``
shows ``FG(u, v)`` for continuous corner coordinates ``u, v``.

One pair of frames (:func:`estimate`):

1. coarse search: normalised cross-correlation (``TM_CCOEFF_NORMED``) of grey *and*
   gradient-magnitude images (the latter survives colour/brightness changes and dark
   footage) on a power-of-two pyramid, over a log-spaced grid of scales (scale 1.0 is
   preferred when it scores within a margin of the best);
2. when NCC is weak, a feature path (ORB, ratio test, ``estimateAffinePartial2D`` with
   RANSAC) proposes a placement; every proposal is verified by the same NCC score;
3. sub-pixel: ECC (``findTransformECC``) at a working resolution (affine when the scale is
   free and only roughly known), then translation-only ECC at full resolution in a few
   small textured windows (one per quadrant of FG); a least-squares fit of the windows'
   positions gives x, y and, when free, the scale (which snaps to 1.0 when it moves FG's
   corners by under a quarter pixel).

Many frames (:func:`coarse_from_clips`, :func:`refine_from_clips`): estimates on several
frame pairs are combined robustly (median, outlier rejection); a consistent drift of the
per-sample positions (BG framing pans or zooms relative to FG) becomes a per-frame track.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from .alignment import Placement, Spatial
from .errors import VidkompyError

if TYPE_CHECKING:
    import vapoursynth as vs

__all__ = ["Placement", "estimate", "coarse_from_clips", "refine_from_clips", "refine_samples", "last_stats"]

# Coarse pyramid level: the coarsest power-of-two level where BG is at least this wide
# (long side) and the FG footprint at least MIN_FOOT px on its short side.
COARSE_LONG = 200
MIN_FOOT = 28
# Working level for the first ECC: the FG footprint at most this many pixels.
WORK_PIXELS = 200_000
# Full-resolution ECC: a region of interest at most this big (BG px per side).
ROI = 256
GRID = 2  # windows: the most textured one in each cell of a GRID x GRID split of FG
SCALE_STEP = 1.04  # coarse scale grid ratio
PREFER_ONE = 0.012  # scale 1.0 wins when its NCC is within this of the best
FEATURE_BELOW = 0.6  # try the feature path when the best NCC is below this

# Timing of the last clip-level call: decode vs compute seconds (for the benchmark).
last_stats: dict[str, float] = {}


# -- small helpers ----------------------------------------------------------------------
def _grey(img: np.ndarray) -> np.ndarray:
    """float32 grey; BGR input is converted with OpenCV's luma weights."""
    if img.ndim == 3:
        if img.shape[2] == 1:
            img = img[:, :, 0]
        else:
            img = cv2.cvtColor(img[:, :, :3], cv2.COLOR_BGR2GRAY)
    return np.ascontiguousarray(img, dtype=np.float32)


def _resize(img: np.ndarray, fx: float, fy: float | None = None) -> np.ndarray:
    """Resize by exact factors (dsize from fx/fy keeps the mapping exactly fx, fy)."""
    fy = fx if fy is None else fy
    if abs(fx - 1) < 1e-9 and abs(fy - 1) < 1e-9:
        return img
    h, w = img.shape[:2]
    if round(w * fx) == w and round(h * fy) == h:
        # cv2.resize copies the image unchanged when the rounded size does not change,
        # whatever the factor (a 256 px window at scale 1.0016 would be 0.2 px off at its
        # edges): resample explicitly, output pixel i <- input (i + 0.5) / f - 0.5
        m = np.float32([[1 / fx, 0, 0.5 / fx - 0.5], [0, 1 / fy, 0.5 / fy - 0.5]])
        return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REPLICATE)
    interp = cv2.INTER_AREA if fx < 1 and fy < 1 else cv2.INTER_LINEAR
    return cv2.resize(img, None, fx=fx, fy=fy, interpolation=interp)


def _median_nearest(a: np.ndarray, k: int) -> np.ndarray:
    """Running median of ``k`` along axis 0, edges repeated: scipy.ndimage.median_filter
    with mode="nearest" over axis 0 only, without scipy's import on every run."""
    r = k // 2
    pad = np.concatenate([np.repeat(a[:1], r, axis=0), a, np.repeat(a[-1:], r, axis=0)])
    return np.median(np.lib.stride_tricks.sliding_window_view(pad, k, axis=0), axis=-1)


def _grad(img: np.ndarray) -> np.ndarray:
    """Gradient magnitude: edges survive colour shifts, gamma and dark grading."""
    gx = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=3)
    return cv2.magnitude(gx, gy)


def _ncc_map(bg: tuple[np.ndarray, np.ndarray], tpl: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Mean of grey and gradient NCC maps (flat templates give NaN: treated as no match)."""
    m = cv2.matchTemplate(bg[0], tpl[0], cv2.TM_CCOEFF_NORMED)
    m += cv2.matchTemplate(bg[1], tpl[1], cv2.TM_CCOEFF_NORMED)
    m *= 0.5
    np.nan_to_num(m, copy=False, nan=-1.0, posinf=-1.0, neginf=-1.0)
    return m


def _peak(m: np.ndarray) -> tuple[float, float, float]:
    """(score, x, y) of the maximum with a parabolic sub-pixel fit."""
    _, score, _, (px, py) = cv2.minMaxLoc(m)
    dx = dy = 0.0
    if 0 < px < m.shape[1] - 1:
        a, b, c = m[py, px - 1], m[py, px], m[py, px + 1]
        den = a - 2 * b + c
        if den < 0:
            dx = float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))
    if 0 < py < m.shape[0] - 1:
        a, b, c = m[py - 1, px], m[py, px], m[py + 1, px]
        den = a - 2 * b + c
        if den < 0:
            dy = float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))
    return float(score), px + dx, py + dy


class _Img:
    """A grey image with a power-of-two pyramid (level k = exact factor 2**-k), grey and
    gradient per level, built on demand; ``scaled(r)`` resizes from the nearest level."""

    def __init__(self, grey: np.ndarray):
        self.full = grey
        self.h, self.w = grey.shape
        self._g: dict[int, np.ndarray] = {0: grey}
        self._d: dict[int, np.ndarray] = {}
        self._s: dict[float, tuple[np.ndarray, np.ndarray]] = {}

    def grey(self, k: int) -> np.ndarray:
        if k not in self._g:
            self._g[k] = _resize(self.grey(k - 1), 0.5)
        return self._g[k]

    def level(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        if k not in self._d:
            self._d[k] = _grad(self.grey(k))
        return self._g[k], self._d[k]

    def scaled(self, r: float) -> tuple[np.ndarray, np.ndarray]:
        """(grey, gradient) at exact factor ``r``."""
        key = round(r, 9)
        if key not in self._s:
            j = max(0, int(math.floor(math.log2(1 / r) + 1e-9))) if r < 1 else 0
            g = _resize(self.grey(j), r * 2 ** j)
            self._s[key] = (g, _grad(g))
        return self._s[key]


def _coarse_k(bw: int, bh: int, fw: float, fh: float) -> int:
    """Coarsest level with BG long side >= COARSE_LONG and footprint short side >= MIN_FOOT."""
    k = 0
    while max(bw, bh) / 2 ** (k + 1) >= COARSE_LONG and min(fw, fh) / 2 ** (k + 1) >= MIN_FOOT:
        k += 1
    return k


def _search(bg: _Img, fg: _Img, s: float, k: int,
            window: tuple[float, float, float] | None = None) -> tuple[float, float, float]:
    """NCC search of FG scaled by ``s`` on BG level ``k``; (score, x, y) in BG px.

    ``window`` = (x, y, radius) in BG px restricts the search around an estimate.
    """
    f = 2.0 ** -k
    bgl = bg.level(k)
    tpl = fg.scaled(s * f)
    th, tw = tpl[0].shape
    bh, bw = bgl[0].shape
    if tw > bw or th > bh or tw < 4 or th < 4:
        return -1.0, 0.0, 0.0
    x0 = y0 = 0
    if window is not None:
        wx, wy, r = window
        r = max(r * f, 2.0)
        x0 = int(max(0, math.floor(wx * f - r)))
        y0 = int(max(0, math.floor(wy * f - r)))
        x1 = int(min(bw, math.ceil(wx * f + r) + tw + 1))
        y1 = int(min(bh, math.ceil(wy * f + r) + th + 1))
        if x1 - x0 < tw or y1 - y0 < th:
            return -1.0, 0.0, 0.0
        bgl = (bgl[0][y0:y1, x0:x1], bgl[1][y0:y1, x0:x1])
    score, px, py = _peak(_ncc_map(bgl, tpl))
    return score, (px + x0) / f, (py + y0) / f


def _fits(fw: int, fh: int, bw: int, bh: int, s: float) -> bool:
    return fw * s <= bw + 1e-6 and fh * s <= bh + 1e-6


def _scale_grid(fw: int, fh: int, bw: int, bh: int, step: float = SCALE_STEP) -> list[float]:
    """Log-spaced scales (including exactly 1.0) at which FG fits inside BG."""
    s_hi = min(bw / fw, bh / fh)
    s_lo = min(1.0, max(0.5, s_hi / 12))
    k0 = math.ceil(math.log(s_lo) / math.log(step))
    k1 = math.floor(math.log(s_hi) / math.log(step) + 1e-9)
    grid = [step ** k for k in range(k0, k1 + 1)]
    if not grid or s_hi / grid[-1] > 1.005:
        grid.append(s_hi)  # FG filling BG exactly is common (pure resolution change)
    return grid


def _ecc(tpl: np.ndarray, inp: np.ndarray, warp: np.ndarray, mode: int, iters: int = 60,
         eps: float = 1e-4, gauss: int = 3) -> tuple[float, np.ndarray]:
    """findTransformECC that reports failure as rho = -1 instead of raising."""
    w = warp.astype(np.float32).copy()
    try:
        rho, w = cv2.findTransformECC(tpl, inp, w, mode,
                                      (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, iters, eps),
                                      None, gauss)
    except cv2.error:
        return -1.0, warp
    if not np.all(np.isfinite(w)):
        return -1.0, warp
    return float(rho), w


def _score_at(fg: _Img, bg: _Img, p: Placement, k: int) -> float:
    """NCC of FG against BG resampled at placement ``p``, on BG level ``k``."""
    f = 2.0 ** -k
    tpl = fg.scaled(p.scale * f)[0]
    th, tw = tpl.shape
    m = np.float32([[1, 0, p.x * f], [0, 1, p.y * f]])
    warped = cv2.warpAffine(bg.grey(k), m, (tw, th), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_REPLICATE)
    a = tpl - tpl.mean()
    b = warped - warped.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else 0.0


# -- feature path -----------------------------------------------------------------------
def _features(fg: np.ndarray, bg: np.ndarray, scale: float | None) -> Placement | None:
    """ORB + ratio test + RANSAC similarity; None when too few consistent matches."""
    fb = min(1.0, 960 / max(bg.shape))
    ff = min(1.0, 960 / max(fg.shape))
    b8 = cv2.convertScaleAbs(_resize(bg, fb))
    f8 = cv2.convertScaleAbs(_resize(fg, ff))
    # Contrast-limited equalisation lets ORB find corners in dark, low-contrast footage.
    clahe = cv2.createCLAHE(clipLimit=3.0, tileGridSize=(8, 8))
    b8, f8 = clahe.apply(b8), clahe.apply(f8)
    orb = cv2.ORB_create(nfeatures=3000, fastThreshold=7)
    kf, df = orb.detectAndCompute(f8, None)
    kb, db = orb.detectAndCompute(b8, None)
    if df is None or db is None or len(kf) < 8 or len(kb) < 8:
        return None
    matches = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(df, db, k=2)
    good = [mm[0] for mm in matches if len(mm) == 2 and mm[0].distance < 0.8 * mm[1].distance]
    if len(good) < 8:
        return None
    pf = np.float32([kf[m.queryIdx].pt for m in good])
    pb = np.float32([kb[m.trainIdx].pt for m in good])
    # keypoint coordinates are pixel-centre indices: convert to corner coords in full px
    pf = (pf + 0.5) / ff
    pb = (pb + 0.5) / fb
    if scale is not None:
        d = pb - scale * pf
        inl = np.all(np.abs(d - np.median(d, axis=0)) < 3 / fb, axis=1)
        if inl.sum() < 8:
            return None
        x, y = np.median(d[inl], axis=0)
        return Placement(float(x), float(y), float(scale), float(inl.mean()), "orb")
    m, inl = cv2.estimateAffinePartial2D(pf, pb, method=cv2.RANSAC, ransacReprojThreshold=3 / fb,
                                         maxIters=2000, confidence=0.995)
    if m is None or inl is None or int(inl.sum()) < 8:
        return None
    s = float(math.hypot(m[0, 0], m[1, 0]))
    return Placement(float(m[0, 2]), float(m[1, 2]), s, float(inl.mean()), "orb")


# -- one pair of frames -----------------------------------------------------------------
Cand = tuple[float, float, float, float]  # (score, scale, x, y)


def _check_fit(fw: int, fh: int, bw: int, bh: int, scale: float | None) -> None:
    s = 1.0 if scale is None else scale
    if not _fits(fw, fh, bw, bh, s):
        what = "" if scale is None else f" scaled by {scale:g}"
        raise VidkompyError(f"FG ({fw}x{fh}){what} is larger than BG ({bw}x{bh}); pass --scale to shrink it")


def _finer(fg: _Img, bg: _Img, cand: Cand, steps: tuple[float, ...]) -> Cand:
    """Re-search around a candidate one level finer, over scales ``cand scale * steps``."""
    _, s0, x0, y0 = cand
    k = max(0, _coarse_k(bg.w, bg.h, fg.w * s0, fg.h * s0) - 1)
    best = (-2.0, s0, x0, y0)
    for st in steps:
        s = s0 * st
        if not _fits(fg.w, fg.h, bg.w, bg.h, s):
            continue
        # keep the footprint centre where it was when trying another scale
        cx = x0 + fg.w * (s0 - s) / 2
        cy = y0 + fg.h * (s0 - s) / 2
        sc, x, y = _search(bg, fg, s, k, (cx, cy, 3 * 2 ** k))
        if sc > best[0]:
            best = (sc, s, x, y)
    return best


def _roi_boxes(fg: _Img, s: float) -> list[tuple[int, int, int, int]]:
    """FG boxes (u0, v0, u1, v1) for the full-resolution step: the most textured window
    in each quadrant (one window when the footprint is small), spread apart so that
    their positions also pin down the scale."""
    fw, fh = fg.w, fg.h
    side = ROI / s  # window side in FG px (ROI BG px)
    if fw * s <= ROI * 1.5 and fh * s <= ROI * 1.5:
        return [(0, 0, fw, fh)]
    side_w, side_h = min(side, fw / 2), min(side, fh / 2)
    k = max(0, int(math.floor(math.log2(max(fw, fh) / 32))))
    g = 2.0 ** -k
    e = fg.level(k)[1] ** 2
    eh, ew = e.shape
    bw_, bh_ = max(1, int(round(side_w * g))), max(1, int(round(side_h * g)))
    box = cv2.boxFilter(e, -1, (bw_, bh_), normalize=False, borderType=cv2.BORDER_CONSTANT)
    out = []
    n = GRID
    for qy in range(n):
        for qx in range(n):
            # window centres (level px) inside this cell that keep the window in FG
            x_lo, x_hi = max(bw_ / 2, ew * qx / n), min(ew - bw_ / 2, ew * (qx + 1) / n)
            y_lo, y_hi = max(bh_ / 2, eh * qy / n), min(eh - bh_ / 2, eh * (qy + 1) / n)
            xs = np.arange(int(math.floor(x_lo)), int(math.ceil(x_hi)) + 1)
            ys = np.arange(int(math.floor(y_lo)), int(math.ceil(y_hi)) + 1)
            xs, ys = xs[(xs >= 0) & (xs < ew)], ys[(ys >= 0) & (ys < eh)]
            if len(xs) == 0 or len(ys) == 0:
                continue
            sub = box[np.ix_(ys, xs)]
            iy, ix = np.unravel_index(int(np.argmax(sub)), sub.shape)
            cu, cv_ = (xs[ix] + 0.5) / g, (ys[iy] + 0.5) / g
            u0 = int(np.clip(round(cu - side_w / 2), 0, fw - side_w))
            v0 = int(np.clip(round(cv_ - side_h / 2), 0, fh - side_h))
            out.append((u0, v0, int(min(fw, u0 + math.ceil(side_w))), int(min(fh, v0 + math.ceil(side_h)))))
    return sorted(set(out))


def _roi_measure(fg: _Img, bg: _Img, x: float, y: float, s: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Full resolution, translation-only ECC per textured window (resized by ``s``):
    matching (FG point, BG point, correlation) per window, or None."""
    cen_fg, cen_bg, wts = [], [], []
    for u0, v0, u1, v1 in _roi_boxes(fg, s):
        tpl = _resize(fg.full[v0:v1, u0:u1], s)
        th, tw = tpl.shape
        if tw < 8 or th < 8:
            continue
        bx, by = x + s * u0, y + s * v0  # template corner 0 <-> FG corner (u0, v0)
        margin = 6
        ox = int(max(0, math.floor(bx) - margin))
        oy = int(max(0, math.floor(by) - margin))
        inp = bg.full[oy:int(min(bg.h, math.ceil(by) + th + margin)), ox:int(min(bg.w, math.ceil(bx) + tw + margin))]
        w0 = np.float32([[1, 0, bx - ox], [0, 1, by - oy]])
        r2, w = _ecc(tpl, inp, w0, cv2.MOTION_TRANSLATION, iters=30, eps=1e-3, gauss=3)
        if r2 <= 0:
            continue
        nbx, nby = float(w[0, 2]) + ox, float(w[1, 2]) + oy
        if abs(nbx - bx) < 4 and abs(nby - by) < 4:
            # ECC pins the window where its texture is, not at its geometric centre: use
            # the texture centroid, so that a slightly wrong window scale does not bias
            # the fitted scale
            e = _grad(tpl)
            e *= e
            tot = float(e.sum())
            if tot > 0:
                cx = float((e.sum(axis=0) * np.arange(tw)).sum() / tot) + 0.5
                cy = float((e.sum(axis=1) * np.arange(th)).sum() / tot) + 0.5
            else:
                cx, cy = tw / 2, th / 2
            cen_fg.append((u0 + cx / s, v0 + cy / s))
            cen_bg.append((nbx + cx, nby + cy))
            wts.append(r2)
    if not cen_fg:
        return None
    return np.array(cen_fg), np.array(cen_bg), np.array(wts)


def _roi_solve(m: tuple[np.ndarray, np.ndarray, np.ndarray], s: float, free: bool
               ) -> tuple[float, float, float, float] | None:
    """Fit ``bg_point = (x, y) + s * fg_point`` (s too when ``free``) to the windows'
    matches, dropping a window that disagrees (it sits on something else, or mismatched)."""
    cf, cb, wt = m
    fit_s = free and len(cf) >= 3
    keep = np.ones(len(cf), bool)
    while True:
        ss = s
        if fit_s:
            # least squares for (x, y, s) from both axes
            n = int(keep.sum())
            a_ = np.zeros((2 * n, 3))
            a_[0::2, 0] = 1
            a_[1::2, 1] = 1
            a_[0::2, 2] = cf[keep, 0]
            a_[1::2, 2] = cf[keep, 1]
            sol = np.linalg.lstsq(a_, cb[keep].reshape(-1), rcond=None)[0]
            nx, ny, ss = float(sol[0]), float(sol[1]), float(sol[2])
        else:
            nx, ny = (float(v) for v in np.average(cb[keep] - s * cf[keep], axis=0, weights=wt[keep]))
        res = np.hypot(*(cb - (np.array([nx, ny]) + ss * cf)).T)
        worst = int(np.argmax(np.where(keep, res, -1)))
        # a window on something that moves differently (or mismatched) is dropped
        if res[worst] > 0.75 and keep.sum() > (3 if fit_s else 1):
            keep[worst] = False
            continue
        break
    if abs(ss / s - 1) > 0.03:
        return None
    return nx, ny, ss, float(np.mean(wt[keep]))


def _refine(fg: _Img, bg: _Img, p: Placement, free: bool, affine: bool) -> tuple[Placement, float]:
    """Sub-pixel placement: ECC at a working level (affine when ``affine``: scale and
    position from the whole footprint), then windows at full resolution (:func:`_roi_measure`,
    :func:`_roi_solve`).
    ``free`` lets the scale move; a scale within a fraction of a pixel of 1.0 snaps to 1."""
    s, x, y = p.scale, p.x, p.y
    rho = -1.0
    budget = WORK_PIXELS if affine else WORK_PIXELS // 4
    k = 0
    while fg.w * fg.h * s * s / 4 ** k > budget:
        k += 1
    if k > 0 or affine:
        f = 2.0 ** -k
        tpl = fg.scaled(s * f)[0]
        th, tw = tpl.shape
        margin = 8
        bgl = bg.grey(k)
        ox = int(max(0, math.floor(x * f) - margin))
        oy = int(max(0, math.floor(y * f) - margin))
        inp = bgl[oy:int(min(bgl.shape[0], math.ceil(y * f) + th + margin)),
                  ox:int(min(bgl.shape[1], math.ceil(x * f) + tw + margin))]
        # template index i -> input index i + (x*f - ox) (same scale at this level)
        w0 = np.float32([[1, 0, x * f - ox], [0, 1, y * f - oy]])
        mode = cv2.MOTION_AFFINE if affine else cv2.MOTION_TRANSLATION
        r1, w = _ecc(tpl, inp, w0, mode, iters=60 if affine else 30, eps=1e-4 if affine else 1e-3, gauss=5)
        if r1 > 0:
            a = math.sqrt(abs(float(np.linalg.det(w[:, :2])))) if affine else 1.0
            # centre index -> corner: BG_corner*f = a*T_corner + (b + 0.5 - 0.5a) + o
            nx = (float(w[0, 2]) + 0.5 - 0.5 * a + ox) / f
            ny = (float(w[1, 2]) + 0.5 - 0.5 * a + oy) / f
            if abs(nx - x) < 8 / f + 2 and abs(ny - y) < 8 / f + 2 and 0.8 < a < 1.25:
                x, y, s, rho = nx, ny, (s * a if free else s), r1
    size = max(fg.w, fg.h)
    tried_one = False
    for _ in range(4):
        m = _roi_measure(fg, bg, x, y, s)
        r = _roi_solve(m, s, free) if m is not None else None
        if r is None:
            break
        if free and abs(r[2] - 1) * size < 0.5 and (s == 1.0 or not tried_one):
            tried_one = True
            # the preference for 1.0: a scale that moves FG's corners by less than a quarter
            # pixel either way (about its centre) is 1.0
            if s == 1.0:
                r = _roi_solve(m, 1.0, False) or r
                x, y, s, rho = r
                break
            x, y, s = r[0] + (r[2] - 1) * fg.w / 2, r[1] + (r[2] - 1) * fg.h / 2, 1.0
            continue
        moved = abs(r[2] / s - 1)
        x, y, s, rho = r
        if moved * size < 0.1:  # the windows were resized by a scale close enough
            break
    return Placement(x, y, s, p.confidence, p.method), rho


def _conf(rho: float) -> float:
    """Confidence from a correlation coefficient: 2*rho - 1, clipped to [0, 1].

    True matches correlate at 0.9 and above even through recompression and colour shifts;
    a template dropped on unrelated content still finds ~0.5-0.7 somewhere. The
    stretch puts "not found" near 0 and a clean match near 1.
    """
    return float(min(1.0, max(0.0, 2.0 * rho - 1.0)))


def _finish(fg: _Img, bg: _Img, p: Placement, free: bool, affine: bool) -> Placement:
    q, rho = _refine(fg, bg, p, free, affine)
    q.method = p.method + ("+ecc" if rho > 0 else "")
    q.confidence = _conf(rho if rho > 0 else p.confidence)
    return q


def estimate(fg_img: np.ndarray, bg_img: np.ndarray, *, prior: Placement | None = None,
             scale: float | None = None) -> Placement:
    """Placement of one FG frame inside one BG frame (BGR uint8 or grey).

    ``scale`` fixes the scale; ``prior`` restricts the search to its neighbourhood.
    ``confidence`` is ``2*rho - 1`` of the final correlation coefficient rho, clipped to
    [0, 1] (0.8+ for a clean match, below ~0.4 when FG is probably not in BG); ``method``
    names the path that won.
    """
    fg = _Img(_grey(fg_img))
    bg = _Img(_grey(bg_img))
    _check_fit(fg.w, fg.h, bg.w, bg.h, scale)
    if prior is not None:
        return _estimate_prior(fg, bg, prior, scale, max(24.0, 0.08 * min(fg.w, fg.h) * prior.scale))
    return _estimate_full(fg, bg, scale)


def _estimate_full(fg: _Img, bg: _Img, scale: float | None) -> Placement:
    """estimate() without a prior: multi-scale search over the whole BG."""
    free = scale is None
    scales = [scale] if scale is not None else _scale_grid(fg.w, fg.h, bg.w, bg.h)
    cands: list[Cand] = []
    for s in scales:
        sc, x, y = _search(bg, fg, s, _coarse_k(bg.w, bg.h, fg.w * s, fg.h * s))
        cands.append((sc, s, x, y))
    cands.sort(key=lambda c: -c[0])
    best = cands[0]
    if free:
        # the few best distinct scales, one level finer, with 1.0 preferred when close
        tops: list[Cand] = []
        for c in cands:
            if all(abs(math.log(c[1] / t[1])) > 0.06 for t in tops):
                tops.append(c)
            if len(tops) == 3:
                break
        fine = [_finer(fg, bg, c, (1 / 1.02, 1.0, 1.02)) for c in tops if c[1] != 1.0]
        one = next((c for c in cands if c[1] == 1.0), None)
        one_f = _finer(fg, bg, one, (1.0,)) if one is not None else None
        fine.sort(key=lambda c: -c[0])
        best = fine[0] if fine else one_f
        if one_f is not None and one_f[0] >= best[0] - PREFER_ONE:
            best = one_f
    p = Placement(best[2], best[3], best[1], best[0], "ncc")
    if best[0] < FEATURE_BELOW:
        fp = _features(fg.full, bg.full, scale)
        if fp is not None and _fits(fg.w, fg.h, bg.w, bg.h, fp.scale):
            sc_f = _score_at(fg, bg, fp, _coarse_k(bg.w, bg.h, fg.w * fp.scale, fg.h * fp.scale))
            sc_n = _score_at(fg, bg, p, _coarse_k(bg.w, bg.h, fg.w * p.scale, fg.h * p.scale))
            if sc_f > sc_n:
                p = Placement(fp.x, fp.y, fp.scale, sc_f, "orb")
    return _finish(fg, bg, p, free, affine=free)


def _pc_spectra(crops: np.ndarray) -> np.ndarray:
    """Windowed, zero-mean spectra of ``crops`` (N, h, w) for :func:`_pc_peaks`."""
    n, h, w = crops.shape
    win = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
    b = (crops - crops.mean(axis=(1, 2), keepdims=True, dtype=np.float32)) * win
    return np.fft.rfft2(b.astype(np.float32), axes=(1, 2))


def _pc_peaks(tpl: np.ndarray, spectra: np.ndarray) -> np.ndarray:
    """Phase-correlation peak height of ``tpl`` against each crop behind ``spectra``."""
    h, w = tpl.shape
    win = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
    fa = np.fft.rfft2(((tpl - tpl.mean()) * win).astype(np.float32))
    r = spectra * np.conj(fa)
    r /= np.abs(r) + 1e-6
    c = np.fft.irfft2(r, s=(h, w), axes=(1, 2))
    # A sub-pixel shift splits the peak over its neighbours: sum the 3x3 around the
    # maximum, so that the height does not depend on the shift's fractional part.
    n = len(spectra)
    top = c.reshape(n, -1).argmax(axis=1)
    py, px = np.divmod(top, w)
    d = np.arange(-1, 2)
    yy = (py[:, None, None] + d[None, :, None]) % h
    xx = (px[:, None, None] + d[None, None, :]) % w
    return c[np.arange(n)[:, None, None], yy, xx].sum(axis=(1, 2))


def _estimate_prior(fg: _Img, bg: _Img, prior: Placement, scale: float | None,
                    radius: float, rough_scale: bool = False, fallback: bool = True) -> Placement:
    """estimate() around a prior: NCC within ``radius`` BG px at the prior's scale, then
    the sub-pixel fit (which also corrects the scale when it is free). ``rough_scale``:
    the prior's scale is only good to a few percent (search it, and fit it affinely)."""
    free = scale is None
    s = scale if scale is not None else prior.scale
    if not _fits(fg.w, fg.h, bg.w, bg.h, s):
        s = min(bg.w / fg.w, bg.h / fg.h)
    k = _coarse_k(bg.w, bg.h, fg.w * s, fg.h * s)
    sc, x, y = _search(bg, fg, s, k, (prior.x, prior.y, radius))
    if free and rough_scale:
        c = _finer(fg, bg, (sc, s, x, y), (1 / 1.03, 1 / 1.015, 1.0, 1.015, 1.03))
        if abs(c[1] - 1) < 0.03 and abs(s - 1) > 1e-9:
            one = _finer(fg, bg, (sc, 1.0, x + fg.w * (s - 1) / 2, y + fg.h * (s - 1) / 2), (1.0,))
            if one[0] >= c[0] - PREFER_ONE:
                c = one
        return _finish(fg, bg, Placement(c[2], c[3], c[1], c[0], "ncc"), free, affine=True)
    if k > 0 and sc >= FEATURE_BELOW:
        # one level finer in a small window: ECC's start within a pixel or two
        sc2, x2, y2 = _search(bg, fg, s, k - 1, (x, y, 2 ** k))
        if sc2 > 0:
            sc, x, y = sc2, x2, y2
    if sc < FEATURE_BELOW:
        # weak match near the prior: let the full search (features included) decide
        if not fallback:
            return Placement(x, y, s, _conf(sc), "ncc")
        full = _estimate_full(fg, bg, scale)
        if full.confidence > _conf(sc):
            return full
    return _finish(fg, bg, Placement(x, y, s, sc, "ncc"), free, affine=False)


# -- sequential window reads (ffmpeg pipe) ------------------------------------------------
# Longest BG window (frames) read sequentially; beyond it random reads touch fewer frames.
WINDOW_MAX = 3000
# Keyframe pass of the coarse search (:func:`coarse_from_clips`): used with at least
# KEY_MIN keyframes in the window and an NCC peak of KEY_NCC1 there; the search on the
# stretch of reference frames it points to is kept with an NCC peak of KEY_NCC.
KEY_MIN = 4
KEY_PIXELS = 150_000_000  # (window frames x BG pixels; a smaller window decodes cheaply: no keyframe pass)
KEY_NCC1 = 0.3
KEY_NCC = 0.6


@functools.lru_cache(maxsize=32)
def _start_time(path: str, _mtime: int = 0) -> float | None:
    import subprocess

    try:
        r = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "stream=start_time", "-of", "csv=p=0", path], capture_output=True, text=True,
                           timeout=30)
        return float(r.stdout.strip().splitlines()[0]) if r.returncode == 0 and r.stdout.strip() else None
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return None


def window_frames(path: str, lo: int, hi: int, fps: float, size: tuple[int, int], *,
                  src_size: tuple[int, int] | None = None, want: set[int] | None = None, every: int = 1, start: float | None = None,
                  skip: str = "bidir") -> dict[int, np.ndarray] | None:
    """Grey (luma) frames of ``path`` numbered ``lo..hi`` from one sequential ffmpeg decode:
    a keyframe seek to ``lo``, then B-frames skipped (``-skip_frame bidir``: a random
    read through a long GOP decodes every frame up to its target; here only I/P frames are
    decoded). So the result holds the *reference* frames of the window (every frame for
    codecs without B-frames), or only ``want`` of them, every ``every``-th at most
    (``skip="nokey"``: only the keyframes),
    at ``size`` (not scaled when it is ``src_size``). Frame numbers come from the timestamps (CFR input);
    ``None`` when they cannot be had (the caller reads through the frame server)."""
    import queue
    import re
    import subprocess
    import threading

    if start is None:
        import os

        start = _start_time(path, os.stat(path).st_mtime_ns)  # one ffprobe per file
    if start is None or fps <= 0:
        return None
    # (-noaccurate_seek lands on the keyframe at or before the time: just after lo's own
    # time, so a window starting on a keyframe starts there, not a GOP earlier)
    t0 = max(0.0, (lo + 0.25) / fps)
    vf = ["select='not(mod(n," + str(every) + "))'" if every > 1 else "null"]
    # full size: the luma plane as it is (8-bit YUV input: equal to the frame server's
    # grey); reduced: any grey will do
    vf.append(f"scale={size[0]}:{size[1]}:flags=area,format=gray" if size != src_size else "extractplanes=y")
    # showinfo last: it checksums every picture it passes (a third of the window's CPU
    # on full-size 1080p frames, next to nothing on the grey copies)
    vf.append("showinfo")
    cmd = ["ffmpeg", "-nostdin", "-nostats", "-v", "info", "-noautorotate", "-skip_frame", skip,
           "-noaccurate_seek",
           "-ss", f"{start + t0:.6f}", "-t", f"{(hi + 1 - lo) / fps + 1.0:.6f}", "-copyts", "-i", path,
           "-map", "0:v:0", "-an", "-sn", "-dn", "-fps_mode", "passthrough", "-vf", ",".join(vf),
           "-f", "rawvideo", "-pix_fmt", "gray", "-"]
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    except OSError:
        return None
    pts: queue.Queue = queue.Queue()
    pat = re.compile(rb"Parsed_showinfo.*? n: *\d+ .*?pts_time:(-?[0-9.e+-]+)")

    def errs() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            m = pat.search(line)
            if m:
                pts.put(float(m.group(1)))
        pts.put(None)

    th = threading.Thread(target=errs, daemon=True)
    th.start()
    out: dict[int, np.ndarray] = {}
    shape = (size[1], size[0])
    ok = True
    last = -1
    try:
        assert proc.stdout is not None
        while True:
            t = pts.get(timeout=60)
            if t is None:
                break
            n = int(round((t - start) * fps))
            buf = bytearray(shape[0] * shape[1])
            view, got = memoryview(buf), 0
            while got < len(buf):
                k = proc.stdout.readinto(view[got:])
                if not k:
                    break
                got += k
            if got < len(buf):
                ok = False
                break
            if n <= last or abs((t - start) * fps - n) > 0.25:  # not CFR-numbered: give up
                ok = False
                break
            last = n
            if n > hi:
                break
            if n >= lo and (want is None or n in want):
                out[n] = np.frombuffer(buf, np.uint8).reshape(shape)
            if want is not None and all(i in out for i in want):
                break
    except (queue.Empty, ValueError, OSError):
        ok = False
    finally:
        proc.kill()
        proc.wait()
        th.join(timeout=5)
    return out if ok and out else None


# -- clips ------------------------------------------------------------------------------
class _Clock:
    """Wall and CPU seconds of one clip-level call, decoding kept apart (benchmark)."""

    def __init__(self) -> None:
        self.t0, self.c0 = time.perf_counter(), time.process_time()
        self.dec = self.dec_cpu = 0.0
        self.misses = 0

    def frames(self, clip: vs.VideoNode, idx: list[int], have: Mapping[int, np.ndarray] | None = None,
               **kw: int) -> list[np.ndarray]:
        """Grey frames ``idx`` of ``clip``: from ``have`` (full-size pictures already
        decoded elsewhere) where present, the rest read from the clip in frame order."""
        from .sources import frame_arrays

        t, c = time.perf_counter(), time.process_time()
        have = have if have is not None and not kw else {}
        miss = sorted({int(i) for i in idx if int(i) not in have})
        got = dict(zip(miss, frame_arrays(clip, miss, gray=True, **kw))) if miss else {}
        self.misses += len(miss)
        out = [have[int(i)] if int(i) in have else got[int(i)] for i in idx]
        self.dec += time.perf_counter() - t
        self.dec_cpu += time.process_time() - c
        return out

    def report(self, **extra: float) -> None:
        last_stats.clear()
        last_stats.update(decode_s=self.dec, reads=float(self.misses),
                          compute_s=time.perf_counter() - self.t0 - self.dec,
                          compute_cpu_s=time.process_time() - self.c0 - self.dec_cpu, **extra)


def _combine(ps: list[Placement]) -> tuple[Placement, np.ndarray, float]:
    """Median placement over inliers; returns it, the inlier mask and the spread (px)."""
    a = np.array([[p.x, p.y, p.scale] for p in ps], dtype=np.float64)
    c = np.array([p.confidence for p in ps])
    ok = c >= 0.5 * c.max() if c.max() > 0 else np.ones(len(ps), bool)
    med = np.median(a[ok], axis=0)
    d = np.hypot(a[:, 0] - med[0], a[:, 1] - med[1])
    mad = 1.4826 * np.median(d[ok]) if ok.any() else 0.0
    inl = ok & (d <= max(1.0, 4 * mad))
    if not inl.any():
        inl = ok
    med = np.median(a[inl], axis=0)
    spread = float(np.sqrt(np.mean(np.hypot(a[inl, 0] - med[0], a[inl, 1] - med[1]) ** 2)))
    # agreement counts: samples that disagree with the median (FG not there, or a wrong
    # partner frame) scale the confidence down
    conf = float(np.median(c[inl])) * float(inl.sum()) / len(ps)
    return Placement(float(med[0]), float(med[1]), float(med[2]), conf, ""), inl, spread


COARSE_AT = (0.4, 0.5, 0.6)


def coarse_samples(nf: int, at: tuple[float, ...] = COARSE_AT) -> list[int]:
    """FG frames the coarse search matches (at these fractions of FG): by default FG's
    middle, the part most likely inside BG."""
    return sorted({int(round(q * (nf - 1))) for q in at})


def _window_plan(nf: int, nb: int, fps: float, at: tuple[float, ...] = COARSE_AT) -> tuple[list[int], int, int]:
    """(FG samples, first and last BG frame of the window searched for them): several
    seconds either side of the proportional time (BG may start earlier or later)."""
    fidx = coarse_samples(nf, at)
    centres = [int(round(i * nb / nf)) for i in fidx]
    half = max(8, int(round(4.0 * fps)))
    return fidx, max(0, min(centres) - half), min(nb - 1, max(centres) + half)


def _mid_size(bw: int, bh: int, fw: int, fh: int) -> tuple[int, int, float, float]:
    """Mid-size BG copies (zimg or ffmpeg resizes while decoding): long side ~480, FG's
    footprint at scale 1 at least 48 px on its short side. (width, height, fx, fy)."""
    fm = min(1.0, max(480 / max(bw, bh), 48 / min(fw, fh)))
    sw, sh = max(16, int(round(bw * fm))), max(16, int(round(bh * fm)))
    return sw, sh, sw / bw, sh / bh


def _small_factor(sw: int, sh: int, fg_mid: np.ndarray) -> float:
    """Mid size -> the small copies of the exhaustive search: long side ~160, FG's
    footprint (``fg_mid``, FG at mid size) at least 20 px."""
    return min(1.0, max(160 / max(sw, sh), 20 / min(fg_mid.shape)))


def _thin(cand: list[int]) -> list[int]:
    """At most ~160 candidates: a codec without B-frames hands over every frame of the
    window, not only its reference frames."""
    return cand[::math.ceil(len(cand) / 160)] if len(cand) > 240 else cand


@dataclass
class Scan:
    """BG frames around FG's middle at mid size, and FG's rough footprint among them."""

    frames: dict[int, np.ndarray]  # BG frame number -> grey picture at mid size
    fx: float  # mid size / full size, across and down
    fy: float
    placement: Placement  # in full BG pixels; good to a few pixels


def scan_window(bg: vs.VideoNode, fg: vs.VideoNode, fg_imgs: Callable[[], list[np.ndarray] | None], *,
                bg_path: str, scale: float | None = None, at: tuple[float, ...] = COARSE_AT) -> Scan | None:
    """The first half of :func:`coarse_from_clips`, for a caller that then finds the
    frame pairs itself (from FG's fingerprints): BG's window around FG's middle read by
    one sequential decode at mid size (only the keyframes when the window is large; only
    the reference frames otherwise), and the multi-scale NCC search of FG's middle frames
    on them. ``fg_imgs()`` gives those (full-size grey pictures of :func:`coarse_samples` ``at``,
    or ``None``); it is called once BG's window is in, so it may wait for a decode that
    runs meanwhile.

    ``None`` when the window cannot be read that way (not numbered by constant
    rate timestamps, fewer than :data:`KEY_MIN` keyframes) or no footprint stands out.
    """
    nf, nb = fg.num_frames, bg.num_frames
    bw, bh, fw, fh = bg.width, bg.height, fg.width, fg.height
    _check_fit(fw, fh, bw, bh, scale)
    fps = float(bg.fps) if bg.fps.numerator else 25.0
    fidx, lo, hi = _window_plan(nf, nb, fps, at)
    if hi - lo + 1 > WINDOW_MAX:  # (long inputs) the middle of it: its keyframes are read
        lo = max(0, (lo + hi) // 2 - WINDOW_MAX // 2)
        hi = min(nb - 1, lo + WINDOW_MAX - 1)
    sw, sh, fx, fy = _mid_size(bw, bh, fw, fh)
    if (hi - lo + 1) * bw * bh >= KEY_PIXELS:
        got = window_frames(bg_path, lo, hi, fps, (sw, sh), src_size=(bw, bh), skip="nokey")
        if not got or len(got) < KEY_MIN:
            return None
    else:
        got = window_frames(bg_path, lo, hi, fps, (sw, sh), src_size=(bw, bh),
                            every=max(1, math.ceil((hi - lo + 1) / 640)))
        if not got or len(got) < 3:
            return None
    cand = _thin(sorted(got))
    imgs = fg_imgs()
    if not imgs or len(imgs) != len(fidx):
        return None
    fgm = [_resize(_grey(g), fx, fy) for g in imgs]
    ft = _small_factor(sw, sh, fgm[0])
    r = _coarse_core(fgm, cand=cand, mids=[_grey(got[j]) for j in cand], ft=ft, scale=scale, search=None,
                     fw=fw, fh=fh, bw=bw, bh=bh, mid_i=len(fgm) // 2)
    if r is None or r[3] < KEY_NCC1:
        return None
    pm = r[0]
    return Scan({j: got[j] for j in cand}, fx, fy, Placement(pm.x / fx, pm.y / fy, pm.scale, pm.confidence, "scan"))


def coarse_from_clips(bg: vs.VideoNode, fg: vs.VideoNode, *, scale: float | None = None,
                      bg_path: str | None = None) -> Placement:
    """Placement before the temporal map exists.

    FG's middle frames are matched against BG frames around the proportional time, in a
    window of several seconds either side (BG may start earlier or later, its camera may
    move). BG's window is read once at a reduced size: a multi-scale NCC search on small
    copies finds the scale and rough position, refined on the mid-size copy; each FG
    frame's BG partner is the candidate with the highest phase-correlation peak over the
    footprint (a moving camera makes neighbouring frames match almost as well, shifted,
    which fools NCC at a fixed position); full-resolution estimates on those pairs are
    combined by the median. With a moving camera the partners can be a frame or two off,
    so expect a pixel or two of error here; :func:`refine_from_clips` removes it.

    ``bg_path`` (BG's file): the window is read by one sequential ffmpeg decode of its
    reference frames (:func:`window_frames`) instead of random reads through the frame
    server, which decode every frame up to each target on long-GOP inputs. Its keyframes
    are read first (``-skip_frame nokey``, a small fraction of the decode): the search on
    them gives rough partners, and the reference frames are then decoded only from the
    keyframe before the earliest to the keyframe after the latest (windows of at least
    :data:`KEY_PIXELS` only). Few keyframes (fewer than :data:`KEY_MIN`), a weak match
    there or on that stretch, or a partner at the stretch's edge: the whole window is
    decoded as before.
    """
    from concurrent.futures import ThreadPoolExecutor

    clock = _Clock()
    nf, nb = fg.num_frames, bg.num_frames
    bw, bh, fw, fh = bg.width, bg.height, fg.width, fg.height
    _check_fit(fw, fh, bw, bh, scale)
    fps = float(bg.fps) if bg.fps.numerator else 25.0
    fidx, lo, hi = _window_plan(nf, nb, fps)
    stride = max(1, math.ceil((hi - lo + 1) / 160))
    cand = list(range(lo, hi + 1, stride))
    sw, sh, fx, fy = _mid_size(bw, bh, fw, fh)
    seq = bg_path is not None and hi - lo + 1 <= WINDOW_MAX
    # FG's samples are random reads: beside BG's keyframe pass rather than before it
    pool = ThreadPoolExecutor(max_workers=4)
    fg_read = pool.submit(clock.frames, fg, fidx)
    mid_i = len(fidx) // 2

    def window(a: int, b: int, skip: str = "bidir") -> dict[int, np.ndarray] | None:
        t_, c_ = time.perf_counter(), time.process_time()
        got = window_frames(str(bg_path), a, b, fps, (sw, sh), src_size=(bw, bh), skip=skip,
                            every=1 if skip == "nokey" else max(1, math.ceil((b - a + 1) / 640)))
        clock.dec += time.perf_counter() - t_
        clock.dec_cpu += time.process_time() - c_
        return got

    res = None
    got = None
    last_stats_extra: dict[str, float] = {}
    # Keyframes first (a small fraction of the decode): scale, position and rough
    # partners; then reference frames of only the stretch around those partners.
    # Any doubt (few keyframes, a weak match, a partner at the stretch's edge): the
    # whole window as before.
    kf = window(lo, hi, "nokey") if seq and (hi - lo + 1) * bw * bh >= KEY_PIXELS else None
    fgs = [_grey(a) for a in fg_read.result()]
    # FG at the mid copies' pixel size, so that scales there are scales in full pixels
    fgm = [_resize(g, fx, fy) for g in fgs]
    ft = _small_factor(sw, sh, fgm[0])
    if seq:
        if kf and len(kf) >= KEY_MIN:
            kc = sorted(kf)
            if float(np.median(np.diff(kc))) <= 2:  # intra-only: that was the whole window
                got = kf
            else:
                r1 = _coarse_core(fgm, cand=kc, mids=[_grey(kf[j]) for j in kc], ft=ft, scale=scale,
                                  search=None, fw=fw, fh=fh, bw=bw, bh=bh, mid_i=mid_i)
                del kf
                if r1 is not None and r1[3] >= KEY_NCC1:
                    # a partner found among keyframes lies between that keyframe's
                    # neighbours; decoding starts at the keyframe before anyway. One
                    # stretch per partner (merged where they overlap), decoded at once:
                    # a reference-frames-only decode is a serial chain, one core each.
                    ivs: list[list[int]] = []
                    for pk in sorted(set(r1[1])):
                        a = max(lo, max([k for k in kc if k < pk], default=lo))
                        b = min(hi, min([k for k in kc if k > pk], default=hi))
                        if ivs and a <= ivs[-1][1]:
                            ivs[-1][1] = max(ivs[-1][1], b)
                        else:
                            ivs.append([a, b])
                    # and a long stretch in two at its middle keyframe (each part from a keyframe)
                    chunks: list[tuple[int, int]] = []
                    for a, b in ivs:
                        inner = [k for k in kc if a < k < b]
                        if inner and len(ivs) < 3:
                            m = min(inner, key=lambda k: abs(k - (a + b) / 2))
                            chunks += [(a, m), (m, b)]
                        else:
                            chunks.append((a, b))
                    parts = list(pool.map(lambda ab: window(*ab), chunks))
                    g2 = {j: img for part in parts for j, img in part.items()} if all(parts) else {}
                    if len(g2) >= 3:
                        c2 = sorted(g2)
                        # the stretches' own first and last frames (not the cuts between parts)
                        edges = {j for a, b in ivs for j in (min(k for k in c2 if k >= a),
                                                             max(k for k in c2 if k <= b))} - {lo, hi}
                        c2 = _thin(c2)
                        m2 = [_grey(g2[j]) for j in c2]
                        r2 = _coarse_core(fgm, cand=c2, mids=m2, ft=ft, scale=scale,
                                          search=None, fw=fw, fh=fh, bw=bw, bh=bh, mid_i=mid_i)
                        # a partner on a stretch's edge may really lie beyond it
                        if r2 is not None and r2[3] >= max(KEY_NCC, r1[3] - 0.05) and \
                                not edges & set(r2[1]):
                            res = r2
                            last_stats_extra = {"key_frames": float(len(kc)), "key_ncc": r1[3],
                                                "stretch": float(sum(b - a + 1 for a, b in ivs))}
        if res is None and got is None:
            got = window(lo, hi)
    pool.shutdown(wait=False)
    if res is None:
        if got:
            cand = _thin(sorted(got))
            mids = [_grey(got[j]) for j in cand]
            del got
        else:
            mids = [_grey(a) for a in clock.frames(bg, cand, width=sw, height=sh)]
        res = _coarse_core(fgm, cand=cand, mids=mids, ft=ft, scale=scale, search=None, fw=fw, fh=fh, bw=bw,
                           bh=bh, mid_i=mid_i, force=True)
    pm, picks = res[0], res[1]
    s_m = pm.scale
    # three random reads (cheaper here than a second pass through the window)
    bgf = clock.frames(bg, picks)
    prior = Placement(pm.x / fx, pm.y / fy, s_m, pm.confidence, "ncc")
    radius = 3 / min(fx, fy) + 4
    ests = [_estimate_prior(_Img(g), _Img(_grey(b)), prior, scale, radius) for g, b in zip(fgs, bgf)]
    p, inl, spread = _combine(ests)
    p.method = ests[int(np.argmax([e.confidence for e in ests]))].method
    # a moving camera leaves the picked partners a frame or two off: a few px of spread
    p.confidence = float(p.confidence * math.exp(-spread / 10.0))
    clock.report(bg_picks=picks, fg_samples=fidx, **last_stats_extra)  # type: ignore[arg-type]
    from typing import NamedTuple
    class Coarse(NamedTuple):
        placement: object
        fg_samples: list
        bg_picks: list
        stats: dict
    return Coarse(p, list(fidx), list(picks), {})


def _coarse_core(fgm: list[np.ndarray], *, cand: list[int], mids: list[np.ndarray], ft: float,
                 scale: float | None, search: list[float] | None, fw: int, fh: int, bw: int, bh: int,
                 mid_i: int, force: bool = False) -> tuple[Placement, list[int], float, float] | None:
    """Steps 1-3 of :func:`coarse_from_clips` on BG candidates ``cand`` (their mid-size
    grey copies ``mids``): (mid-size placement, each FG sample's partner, the search scale
    chosen, its NCC peak on the small copies). ``search``: scales to search instead of the
    grid. ``None`` when nothing fits (unless ``force``)."""
    sh, sw = mids[0].shape
    smalls = [_resize(m, ft) for m in mids]
    small_d = [(a, _grad(a)) for a in smalls]
    th_, tw_ = smalls[0].shape

    def srch(img: np.ndarray, s: float, frames: list[int]) -> list[tuple[float, float, float]]:
        """(score, x, y) of FG image ``img`` scaled by ``s`` per small frame, x/y in mid px."""
        tg = _resize(img, s * ft)
        if tg.shape[1] > tw_ or tg.shape[0] > th_ or min(tg.shape) < 4:
            return [(-1.0, 0.0, 0.0)] * len(frames)
        tpl = (tg, _grad(tg))
        out = []
        for j in frames:
            sc, x, y = _peak(_ncc_map(small_d[j], tpl))
            out.append((sc, x / ft, y / ft))
        return out

    # 1) scales: full grid on a few BG frames spread over the window; keep the best few
    #    distinct scales plus 1.0, then search those on every candidate frame.
    if scale is not None:
        scales = [scale]
    elif search is not None:
        scales = list(search)
    else:
        grid = _scale_grid(fw, fh, bw, bh, step=1.05)
        probe = sorted(set(np.linspace(0, len(cand) - 1, min(5, len(cand))).round().astype(int).tolist()))
        per_s = [max(r[0] for r in srch(fgm[mid_i], s, probe)) for s in grid]
        scales = []
        for i in np.argsort(per_s)[::-1]:
            if all(abs(math.log(grid[i] / t)) > 0.08 for t in scales):
                scales.append(grid[i])
            if len(scales) == 3:
                break
        if 1.0 in grid and 1.0 not in scales:
            scales.append(1.0)
    # (every few frames: this only has to find the scale and the rough position)
    allj = list(range(0, len(cand), max(1, len(cand) // 40)))
    res = {s: srch(fgm[mid_i], s, allj) for s in scales}
    best_s = max(scales, key=lambda s: max(r[0] for r in res[s]))
    if 1.0 in res and max(r[0] for r in res[1.0]) >= max(r[0] for r in res[best_s]) - PREFER_ONE:
        best_s = 1.0
    j0 = int(np.argmax([v[0] for v in res[best_s]]))
    sc0, x0, y0 = res[best_s][j0]
    if sc0 <= -1.0 and not force:
        return None
    j0 = allj[j0]
    # 2) scale and position on the mid copy of that frame (affine ECC when scale is free)
    fm_img = _Img(fgm[mid_i])
    pm = _estimate_prior(fm_img, _Img(mids[j0]), Placement(x0, y0, best_s, sc0), scale,
                         2 / ft + 2, rough_scale=scale is None)
    s_m = pm.scale
    # 3) each FG frame's partner: the sharpest phase-correlation peak of FG against the
    #    same footprint of every candidate. The peak height barely depends on a small
    #    shift, so a moving camera (neighbouring frames match almost as well, shifted)
    #    does not fool it the way NCC at a fixed position does.
    picks = []
    x_m, y_m = int(round(pm.x)), int(round(pm.y))
    th, tw = _resize(fgm[0], s_m).shape
    th, tw = min(th, sh - y_m), min(tw, sw - x_m)
    # at most 128 px a side: the centre of the footprint is enough to tell frames apart
    ch, cw = min(th, 128), min(tw, 128)
    v0, u0 = (th - ch) // 2, (tw - cw) // 2
    spectra = _pc_spectra(np.stack([m[y_m + v0:y_m + v0 + ch, x_m + u0:x_m + u0 + cw] for m in mids]))
    for g in fgm:
        t = _resize(g, s_m)[v0:v0 + ch, u0:u0 + cw]
        picks.append(cand[int(np.argmax(_pc_peaks(t, spectra)))])
    return pm, picks, float(best_s), float(sc0)


def refine_samples(nf: int) -> list[int]:
    """The FG frames :func:`refine_from_clips` estimates on (spread over the clip), so
    that a caller decoding the inputs anyway can keep those pictures for it."""
    n = min(nf, 9)
    return sorted({int(round(v)) for v in np.linspace(0.04 * (nf - 1), 0.96 * (nf - 1), n)})


def refine_from_clips(bg: vs.VideoNode, fg: vs.VideoNode, frame_map: list[int], *, prior: Placement,
                      scale: float | None = None,
                      frames: Mapping[str, Mapping[int, np.ndarray]] | None = None,
                      uncovered: Iterable[int] | None = None) -> Spatial:
    """Placement from temporally matched pairs (FG frame i over BG frame ``frame_map[i]``).

    Several FG frames spread over the clip (:func:`refine_samples`) are estimated around
    ``prior`` and combined by the median after outlier rejection. When the per-sample
    positions drift consistently by more than ~0.5 px, FG frames are sampled densely and
    ``track`` gets one ``[x, y, scale]`` per FG frame, smoothly interpolated between samples.

    ``frames`` = ``{"fg": {i: grey}, "bg": {j: grey}}``: full-size grey (luma) pictures
    already decoded (e.g. kept from a sequential fingerprint pass); frames not there are
    read from the clips (random access: slow on long-GOP inputs).

    ``uncovered``: FG frames BG does not cover (their map entry is clamped to BG's first or
    last frame, which does not show them): never sampled, since a position measured on a
    wrong partner could pass for framing drift.
    """
    clock = _Clock()
    nf = fg.num_frames
    if len(frame_map) != nf:
        raise VidkompyError(f"frame map has {len(frame_map)} entries; FG has {nf} frames")
    _check_fit(fg.width, fg.height, bg.width, bg.height, scale)
    fh, fw = fg.height, fg.width
    have_fg = dict((frames or {}).get("fg") or {})
    have_bg = dict((frames or {}).get("bg") or {})
    unc = {int(i) for i in uncovered} if uncovered is not None else set()
    idx = [i for i in refine_samples(nf) if i not in unc]
    if len(idx) < 3 and len(unc) < nf:
        # most of FG lies outside BG: the samples spread over the covered part instead
        cov = np.array([i for i in range(nf) if i not in unc])
        idx = sorted({int(cov[int(round(q * (len(cov) - 1)))]) for q in np.linspace(0.04, 0.96, 9)})
    if not idx:
        idx = refine_samples(nf)
    radius = max(24.0, 0.08 * min(fw, fh) * prior.scale)
    pairs: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # grey FG sample, its BG partner

    def run(ids: list[int], priors: list[Placement] | None, rad: float) -> list[Placement]:
        """Estimates for FG frames ``ids``; without ``priors``, from the middle sample
        outwards, each around its confident neighbour's result (follows a wide pan)."""
        fgs = clock.frames(fg, ids, have_fg)
        bgs = clock.frames(bg, [frame_map[i] for i in ids], have_bg)
        pairs.update(zip(ids, zip(fgs, bgs)))
        if priors is not None:
            return [_estimate_prior(_Img(_grey(a)), _Img(_grey(b)), pr, scale, rad, fallback=False)
                    for a, b, pr in zip(fgs, bgs, priors)]
        out: list[Placement | None] = [None] * len(ids)
        m = len(ids) // 2
        fm, bm = _Img(_grey(fgs[m])), _Img(_grey(bgs[m]))
        out[m] = _estimate_prior(fm, bm, prior, scale, rad)
        if out[m].confidence < 0.8:
            # a doubtful prior (the coarse pass can be fooled, e.g. by zooming content
            # that matches itself at another time and scale): on this matched pair, a
            # search without it decides
            full = _estimate_full(fm, bm, scale)
            if full.confidence > out[m].confidence:
                out[m] = full
        for order in (range(m + 1, len(ids)), range(m - 1, -1, -1)):
            last = out[m]
            for i in order:
                pr = last if last.confidence >= 0.5 else prior
                # no full-frame fallback here: one slow search per sample on a clip where
                # FG is not in BG would cost seconds; a weak sample is simply outvoted
                out[i] = e = _estimate_prior(_Img(_grey(fgs[i])), _Img(_grey(bgs[i])), pr, scale, rad,
                                             fallback=False)
                if e.confidence >= 0.5:
                    last = e
        return out  # type: ignore[return-value]

    ests = run(idx, None, radius)
    p, inl, spread = _combine(ests)
    a = np.array([[e.x, e.y, e.scale] for e in ests])
    t = np.array(idx, dtype=np.float64)
    track = None
    track_conf = 0.0
    conf_ok = np.array([e.confidence for e in ests]) >= 0.5 * max(e.confidence for e in ests)
    if conf_ok.sum() >= 5 and np.median([e.confidence for e in ests]) >= 0.6:
        # Drift: the samples move by more than half a pixel (footprint corners), and
        # smoothly: far more than their noise, estimated from second differences (which
        # a slow, smooth motion barely has). A lone outlier is removed first against a
        # running median (exact for a steady pan). Only from good matches: positions
        # found on content that is not FG can look like a drift.
        mults = np.array([1.0, 1.0, float(max(fw, fh))])
        ts, av = t[conf_ok], a[conf_ok] * mults
        dev = np.abs(av - _median_nearest(av, 3)).max(axis=1)
        ok = dev <= max(0.75, 4 * 1.4826 * float(np.median(dev)))
        if ok.sum() >= 5:
            av = av[ok]
            # span of the 3-median: one odd sample (a scale that did not snap, a window on
            # a moving object) is no drift; a real one moves several samples
            sm = _median_nearest(av, 3)
            span = sm.max(axis=0) - sm.min(axis=0)
            d2 = av[2:] - 2 * av[1:-1] + av[:-2]
            noise = 1.4826 * np.median(np.abs(d2), axis=0) / math.sqrt(6)
            if np.any((span > 0.5) & (span > 6 * np.maximum(noise, 0.02))):
                keep = np.flatnonzero(conf_ok)[ok]
                fixed = _static_fit(pairs, [idx[i] for i in keep], [ests[i] for i in keep], p)
                if fixed is not None:  # scattered, not drifting: the placement that fits all
                    p = Placement(fixed.x, fixed.y, fixed.scale, p.confidence, fixed.method)
                    spread = 0.0
                else:
                    track, track_conf = _track(run, [ests[i] for i in keep], [idx[i] for i in keep], nf, scale,
                                               fw, fh, unc)
                    inl = np.zeros(len(ests), bool)
                    inl[keep] = True
    med_rho = float(np.median([e.confidence for e in np.array(ests, dtype=object)[inl]]))
    med_rho *= float(inl.sum()) / len(ests)  # share of samples that agree
    if track is not None:
        tr = np.asarray(track)
        conf = track_conf
        x, y, s = (float(v) for v in np.median(tr, axis=0))
        method = "track"
    else:
        conf = med_rho * math.exp(-spread / 1.0)
        x, y, s = p.x, p.y, p.scale
        method = ests[int(np.argmax([e.confidence for e in ests]))].method
    clock.report(spread_px=spread,
                      samples=float(len(idx)))
    return Spatial(x=x, y=y, scale=s, confidence=float(conf), method=method,
                   track=None if track is None else [[float(v) for v in row] for row in track])


def _static_fit(pairs: Mapping[int, tuple[np.ndarray, np.ndarray]], ids: list[int],
                ests: list[Placement], median: Placement) -> Placement | None:
    """One fixed placement that fits every sample about as well as its own fit, if any.

    On smooth, low-detail content (an upscaled, blurry picture) a pair correlates at 0.999
    a few pixels off the truth, so the per-sample positions scatter and look like drift.
    A real drift makes any fixed placement clearly worse for the samples that moved. The
    candidates are the samples' median (noise averages out), then their own placements,
    best matches first; one that fits each sample within a quarter of what that sample's
    own fit leaves unexplained wins.
    """
    if any(i not in pairs for i in ids):
        return None
    imgs = [tuple(_Img(_grey(a)) for a in pairs[i]) for i in ids]
    own = [_score_at(f, b, e, 0) for (f, b), e in zip(imgs, ests)]
    for c in [median] + [ests[k] for k in sorted(range(len(ests)), key=lambda k: -own[k])[:3]]:
        if all(_score_at(f, b, c, 0) >= o - max(1e-4, 0.25 * (1.0 - o)) for (f, b), o in zip(imgs, own)):
            return c
    return None


def _track(run, ests: list[Placement], idx: list[int], nf: int, scale: float | None,
           fw: int, fh: int, unc: set[int] | None = None) -> tuple[list[list[float]], float]:
    """Dense samples (every few frames) tracked from the sparse ones, then interpolated.

    Returns the track and its confidence (median sample confidence times the share of
    samples kept)."""
    from scipy.interpolate import PchipInterpolator

    step = max(1, int(round(nf / 32)))
    dense = sorted((set(range(0, nf, step)) | {nf - 1}) - (unc or set()) | set(idx))
    have = dict(zip(idx, ests))
    t_sp = np.array(idx, float)
    a_sp = np.array([[e.x, e.y, e.scale] for e in ests])
    todo = [i for i in dense if i not in have]
    priors = []
    for i in todo:
        v = [float(np.interp(i, t_sp, a_sp[:, j])) for j in range(3)]
        priors.append(Placement(v[0], v[1], v[2], 1.0, "track"))
    # a prior from interpolated neighbours is good to a few px: search tightly
    for i, e in zip(todo, run(todo, priors, 8.0)):
        have[i] = e
    t = np.array(dense, float)
    a = np.array([[have[i].x, have[i].y, have[i].scale] for i in dense])
    c = np.array([have[i].confidence for i in dense])
    # drop outliers against a 5-sample running median before interpolating
    ok = c >= 0.5 * np.median(c)
    for j in range(3):
        ref = _median_nearest(a[:, j], 5)
        tol = 1.5 if j < 2 else 1.5 / max(fw, fh)
        ok &= np.abs(a[:, j] - ref) <= tol
    if ok.sum() < 2:
        ok[:] = True
    conf = float(np.median(c[ok])) * float(ok.mean())
    t, a = t[ok], a[ok]
    # No smoothing of the samples: each is good to a few hundredths of a pixel, and a
    # tap filter over unevenly spaced samples would shift them in time (biasing a pan).
    out = np.empty((nf, 3))
    tt = np.arange(nf, dtype=float)
    for j in range(3):
        if len(t) >= 2:
            out[:, j] = PchipInterpolator(t, a[:, j], extrapolate=True)(tt)
        else:
            out[:, j] = a[0, j]
    if scale is not None:
        out[:, 2] = scale
    return out.tolist(), conf
