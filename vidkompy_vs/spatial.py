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
   free, so the scale comes out to a fraction of a percent), then translation-only ECC at
   full resolution in a small, textured region of interest.

Many frames (:func:`coarse_from_clips`, :func:`refine_from_clips`): estimates on several
frame pairs are combined robustly (median, outlier rejection); a consistent drift of the
per-sample positions (BG framing pans or zooms relative to FG) becomes a per-frame track.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import cv2
import numpy as np

from .alignment import Spatial
from .errors import VidkompyError

__all__ = ["Placement", "estimate", "coarse_from_clips", "refine_from_clips", "last_stats"]

# Coarse pyramid level: the coarsest power-of-two level where BG is at least this wide
# (long side) and the FG footprint at least MIN_FOOT px on its short side.
COARSE_LONG = 200
MIN_FOOT = 28
# Working level for the first ECC: the FG footprint at most this many pixels.
WORK_PIXELS = 200_000
# Full-resolution ECC: a region of interest at most this big (BG px per side).
ROI = 384
SCALE_STEP = 1.04  # coarse scale grid ratio
PREFER_ONE = 0.012  # scale 1.0 wins when its NCC is within this of the best
FEATURE_BELOW = 0.6  # try the feature path when the best NCC is below this

# Timing of the last clip-level call: decode vs compute seconds (for the benchmark).
last_stats: dict[str, float] = {}


@dataclass
class Placement:
    """FG scaled by ``scale`` has its top-left at (``x``, ``y``) in BG pixels."""

    x: float
    y: float
    scale: float = 1.0
    confidence: float = 0.0
    method: str = ""


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
    interp = cv2.INTER_AREA if fx < 1 and fy < 1 else cv2.INTER_LINEAR
    return cv2.resize(img, None, fx=fx, fy=fy, interpolation=interp)


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


class _Pyr:
    """Power-of-two pyramid of one BG image: grey and gradient per level, made on demand."""

    def __init__(self, grey: np.ndarray):
        self.full = grey
        self._lv: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._g: dict[int, np.ndarray] = {0: grey}

    def grey(self, k: int) -> np.ndarray:
        if k not in self._g:
            self._g[k] = _resize(self.grey(k - 1), 0.5)
        return self._g[k]

    def level(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        if k not in self._lv:
            g = self.grey(k)
            self._lv[k] = (g, _grad(g))
        return self._lv[k]


def _coarse_k(bw: int, bh: int, fw: float, fh: float) -> int:
    """Coarsest level with BG long side >= COARSE_LONG and footprint short side >= MIN_FOOT."""
    k = 0
    while max(bw, bh) / 2 ** (k + 1) >= COARSE_LONG and min(fw, fh) / 2 ** (k + 1) >= MIN_FOOT:
        k += 1
    return k


def _search(pyr: _Pyr, fg: np.ndarray, s: float, k: int,
            window: tuple[float, float, float] | None = None) -> tuple[float, float, float]:
    """NCC search of FG scaled by ``s`` on level ``k``; returns (score, x, y) in BG px.

    ``window`` = (x, y, radius) in BG px restricts the search around an estimate.
    """
    f = 2.0 ** -k
    bgl = pyr.level(k)
    tg = _resize(fg, s * f)
    th, tw = tg.shape
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
    m = _ncc_map(bgl, (tg, _grad(tg)))
    score, px, py = _peak(m)
    return score, (px + x0) / f, (py + y0) / f


def _fits(fw: int, fh: int, bw: int, bh: int, s: float) -> bool:
    return fw * s <= bw + 1e-6 and fh * s <= bh + 1e-6


def _scale_grid(fw: int, fh: int, bw: int, bh: int) -> list[float]:
    """Log-spaced scales (including exactly 1.0) at which FG fits inside BG."""
    s_hi = min(bw / fw, bh / fh)
    s_lo = min(1.0, max(0.5, s_hi / 12))
    k0 = math.ceil(math.log(s_lo) / math.log(SCALE_STEP))
    k1 = math.floor(math.log(s_hi) / math.log(SCALE_STEP) + 1e-9)
    grid = [SCALE_STEP ** k for k in range(k0, k1 + 1)]
    if s_hi / grid[-1] > 1.005:
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


def _score_at(fg: np.ndarray, bg: np.ndarray, p: Placement, k: int) -> float:
    """NCC of FG against BG resampled at placement ``p``, on pyramid level ``k`` sizes."""
    f = 2.0 ** -k
    tpl = _resize(fg, p.scale * f)
    th, tw = tpl.shape
    # BG level coordinates of template pixel centres: i -> (x*f) + (i+0.5) - 0.5 (scale 1 at level)
    bgl = _resize(bg, f)
    m = np.float32([[1, 0, p.x * f], [0, 1, p.y * f]])
    warped = cv2.warpAffine(bgl, m, (tw, th), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
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
    good = [m for m, *rest in (mm for mm in matches if len(mm) >= 1)
            if not rest or m.distance < 0.8 * rest[0].distance]
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
def _check_fit(fw: int, fh: int, bw: int, bh: int, scale: float | None) -> None:
    s = 1.0 if scale is None else scale
    if not _fits(fw, fh, bw, bh, s):
        what = "" if scale is None else f" scaled by {scale:g}"
        raise VidkompyError(f"FG ({fw}x{fh}){what} is larger than BG ({bw}x{bh}); pass --scale to shrink it")


def _coarse(fg: np.ndarray, pyr: _Pyr, prior: Placement | None, scale: float | None,
            radius: float | None = None) -> list[tuple[float, float, float, float]]:
    """Coarse candidates (score, scale, x, y), best first."""
    bh, bw = pyr.full.shape
    fh, fw = fg.shape
    if scale is not None:
        scales = [scale]
    elif prior is not None:
        scales = [prior.scale * 1.02 ** j for j in (-1, 0, 1)]
        if abs(prior.scale - 1) < 0.03:
            scales = [1.0] + [s for s in scales if abs(s - 1) > 1e-6]
        scales = [s for s in scales if _fits(fw, fh, bw, bh, s)] or [min(bw / fw, bh / fh)]
    else:
        scales = _scale_grid(fw, fh, bw, bh)
    out = []
    for s in scales:
        k = _coarse_k(bw, bh, fw * s, fh * s)
        win = None
        if prior is not None:
            r = radius if radius is not None else max(24.0, 0.08 * min(fw, fh) * s)
            win = (prior.x, prior.y, r)
        sc, x, y = _search(pyr, fg, s, k, win)
        out.append((sc, s, x, y))
    out.sort(key=lambda c: -c[0])
    return out


def _finer(fg: np.ndarray, pyr: _Pyr, cand: tuple[float, float, float, float], free: bool,
           steps: tuple[float, ...]) -> tuple[float, float, float, float]:
    """Re-search around a candidate one or two levels finer, with a finer scale grid."""
    _, s0, x0, y0 = cand
    bh, bw = pyr.full.shape
    fh, fw = fg.shape
    k = max(0, _coarse_k(bw, bh, fw * s0, fh * s0) - 1)
    best = (-2.0, s0, x0, y0)
    for st in (steps if free else (1.0,)):
        s = s0 * st
        if not _fits(fw, fh, bw, bh, s):
            continue
        # keep the footprint centre where it was when trying another scale
        cx = x0 + fw * (s0 - s) / 2
        cy = y0 + fh * (s0 - s) / 2
        sc, x, y = _search(pyr, fg, s, k, (cx, cy, 3 * 2 ** k))
        if sc > best[0]:
            best = (sc, s, x, y)
    return best


def _refine(fg: np.ndarray, bg: np.ndarray, p: Placement, free: bool) -> tuple[Placement, float]:
    """ECC: affine (free scale) or translation at a working level, then translation at full res."""
    bh, bw = bg.shape
    fh, fw = fg.shape
    s = p.scale
    x, y = p.x, p.y
    rho = -1.0
    # Working level: footprint <= WORK_PIXELS.
    k = 0
    while fw * fh * s * s / 4 ** k > WORK_PIXELS:
        k += 1
    if k > 0 or free:
        f = 2.0 ** -k
        tpl = _resize(fg, s * f)
        th, tw = tpl.shape
        margin = 8
        ox = int(max(0, math.floor(x * f) - margin))
        oy = int(max(0, math.floor(y * f) - margin))
        bgl = _resize(bg, f) if k else bg
        inp = bgl[oy:int(min(bgl.shape[0], math.ceil(y * f) + th + margin)),
                  ox:int(min(bgl.shape[1], math.ceil(x * f) + tw + margin))]
        # template index i -> input index i + (x*f - ox) (same scale at this level)
        w0 = np.float32([[1, 0, x * f - ox], [0, 1, y * f - oy]])
        mode = cv2.MOTION_AFFINE if free else cv2.MOTION_TRANSLATION
        r1, w = _ecc(tpl, inp, w0, mode, iters=80, eps=1e-5, gauss=5)
        if r1 > 0:
            a = math.sqrt(abs(float(np.linalg.det(w[:, :2])))) if free else 1.0
            # centre index -> corner: BG_corner*f = a*T_corner + (b + 0.5 - 0.5a) + o
            nx = (float(w[0, 2]) + 0.5 - 0.5 * a + ox) / f
            ny = (float(w[1, 2]) + 0.5 - 0.5 * a + oy) / f
            if abs(nx - x) < 8 / f + 2 and abs(ny - y) < 8 / f + 2 and 0.8 < a < 1.25:
                x, y, s, rho = nx, ny, s * a, r1
    # Full resolution, translation only, in a textured ROI of the footprint.
    tw_full, th_full = fw * s, fh * s
    rw, rh = min(ROI, tw_full), min(ROI, th_full)
    if k > 0 or rw < tw_full or rh < th_full or rho < 0:
        # pick the most textured ROI (gradient energy on a coarse FG copy)
        g = 16.0 / max(fw, fh)
        small = _resize(fg, g)
        e = _grad(small) ** 2
        bw_ = max(1, int(round(rw / s * g)))
        bh_ = max(1, int(round(rh / s * g)))
        box = cv2.boxFilter(e, -1, (bw_, bh_), normalize=False, borderType=cv2.BORDER_CONSTANT)
        # box centre positions that keep the ROI inside FG
        cy0, cy1 = bh_ // 2, max(bh_ // 2, e.shape[0] - (bh_ - bh_ // 2))
        cx0, cx1 = bw_ // 2, max(bw_ // 2, e.shape[1] - (bw_ - bw_ // 2))
        sub = box[cy0:cy1 + 1, cx0:cx1 + 1]
        iy, ix = np.unravel_index(int(np.argmax(sub)), sub.shape)
        u0 = float(np.clip((ix + cx0) / g - rw / s / 2, 0, fw - rw / s))
        v0 = float(np.clip((iy + cy0) / g - rh / s / 2, 0, fh - rh / s))
        # FG crop (integer start) resized by s: template corner 0 <-> FG corner (iu0, iv0)
        iu0, iv0 = int(u0), int(v0)
        iu1 = min(fw, int(math.ceil(iu0 + rw / s)) + 1)
        iv1 = min(fh, int(math.ceil(iv0 + rh / s)) + 1)
        tpl = _resize(fg[iv0:iv1, iu0:iu1], s)
        th, tw = tpl.shape
        bx = x + s * iu0
        by = y + s * iv0
        margin = 6
        ox = int(max(0, math.floor(bx) - margin))
        oy = int(max(0, math.floor(by) - margin))
        inp = bg[oy:int(min(bh, math.ceil(by) + th + margin)), ox:int(min(bw, math.ceil(bx) + tw + margin))]
        w0 = np.float32([[1, 0, bx - ox], [0, 1, by - oy]])
        r2, w = _ecc(tpl, inp, w0, cv2.MOTION_TRANSLATION, iters=40, eps=1e-4, gauss=3)
        if r2 > 0:
            nbx, nby = float(w[0, 2]) + ox, float(w[1, 2]) + oy
            if abs(nbx - bx) < 3 and abs(nby - by) < 3:
                x, y = nbx - s * iu0, nby - s * iv0
                rho = r2 if rho < 0 else 0.5 * (rho + r2)
    return Placement(x, y, s, p.confidence, p.method), rho


def estimate(fg_img: np.ndarray, bg_img: np.ndarray, *, prior: Placement | None = None,
             scale: float | None = None) -> Placement:
    """Placement of one FG frame inside one BG frame (BGR uint8 or grey).

    ``scale`` fixes the scale; ``prior`` restricts the search to its neighbourhood.
    ``confidence`` is the final correlation coefficient (about 0.9+ for a clean match,
    below ~0.4 when FG is probably not in BG); ``method`` names the path that won.
    """
    fg = _grey(fg_img)
    bg = _grey(bg_img)
    fh, fw = fg.shape
    bh, bw = bg.shape
    _check_fit(fw, fh, bw, bh, scale)
    pyr = _Pyr(bg)
    cands = _coarse(fg, pyr, prior, scale)
    free = scale is None
    best = cands[0]
    if free and prior is None:
        # refine the few best distinct scales one level finer, then prefer 1.0 if close
        tops: list[tuple[float, float, float, float]] = []
        for c in cands:
            if all(abs(math.log(c[1] / t[1])) > 0.06 for t in tops):
                tops.append(c)
            if len(tops) == 3:
                break
        steps = (1 / 1.02, 1.0, 1.02)
        fine = [_finer(fg, pyr, c, True, steps) for c in tops]
        one = next((c for c in cands if c[1] == 1.0), None)
        if one is not None and all(abs(t[1] - 1.0) > 1e-9 for t in tops):
            fine.append(_finer(fg, pyr, one, False, (1.0,)))
        elif one is not None:
            fine.append(_finer(fg, pyr, one, False, (1.0,)))
        fine.sort(key=lambda c: -c[0])
        best = fine[0]
        one_f = next((c for c in fine if c[1] == 1.0), None)
        if one_f is not None and one_f[0] >= best[0] - PREFER_ONE:
            best = one_f
    method = "ncc"
    p = Placement(best[2], best[3], best[1], best[0], method)
    if best[0] < FEATURE_BELOW:
        fp = _features(fg, bg, scale)
        if fp is not None and _fits(fw, fh, bw, bh, fp.scale):
            k = _coarse_k(bw, bh, fw * fp.scale, fh * fp.scale)
            sc_f = _score_at(fg, bg, fp, k)
            sc_n = _score_at(fg, bg, p, _coarse_k(bw, bh, fw * p.scale, fh * p.scale))
            if sc_f > sc_n:
                p = Placement(fp.x, fp.y, fp.scale, sc_f, "orb")
    free_scale = free and abs(p.scale - 1.0) > 1e-9
    q, rho = _refine(fg, bg, p, free_scale)
    q.method = p.method + ("+ecc" if rho > 0 else "")
    q.confidence = float(max(0.0, rho if rho > 0 else p.confidence))
    return q


# -- clips ------------------------------------------------------------------------------
def _frames(clip, idx: list[int], **kw) -> list[np.ndarray]:
    from .sources import frame_arrays

    return frame_arrays(clip, idx, gray=True, **kw)


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
    conf = float(np.median(c[inl]))
    return Placement(float(med[0]), float(med[1]), float(med[2]), conf, ""), inl, spread


def coarse_from_clips(bg, fg, *, scale: float | None = None) -> Placement:
    """Placement before the temporal map exists.

    FG's middle frames are matched against BG frames around the proportional time, in a
    window of several seconds (BG may start earlier or later): a cheap small-size search
    over a few BG frames finds the placement and scale, a fixed-placement correlation
    over every candidate picks each FG frame's best BG partner, and a full estimate on
    those pairs is combined by the median.
    """
    t0 = time.perf_counter()
    dec = 0.0
    nf, nb = fg.num_frames, bg.num_frames
    bw, bh, fw, fh = bg.width, bg.height, fg.width, fg.height
    _check_fit(fw, fh, bw, bh, scale)
    fps = float(bg.fps) if bg.fps.numerator else 25.0
    fidx = sorted({int(round(q * (nf - 1))) for q in (0.4, 0.5, 0.6)})
    centres = [int(round(i * nb / nf)) for i in fidx]
    half = max(8, int(round(4.0 * fps)))
    lo, hi = max(0, min(centres) - half), min(nb - 1, max(centres) + half)
    stride = max(1, math.ceil((hi - lo + 1) / 64))
    cand = list(range(lo, hi + 1, stride))
    # Small BG copies: long side ~COARSE_LONG*2 (zimg resizes them while decoding).
    f = min(1.0, 2 * COARSE_LONG / max(bw, bh))
    sw, sh = max(16, int(round(bw * f))), max(16, int(round(bh * f)))
    fx, fy = sw / bw, sh / bh
    td = time.perf_counter()
    small = _frames(bg, cand, width=sw, height=sh)
    fgs = _frames(fg, fidx)
    dec += time.perf_counter() - td
    fgs = [_grey(a) for a in fgs]
    small = [_grey(a) for a in small]
    # 1) placement hypothesis: multi-scale search of the middle FG frame on a few BG frames
    #    spread over the window (a still camera's framing does not depend on time).
    mid = fgs[len(fgs) // 2]
    probe_idx = np.linspace(0, len(cand) - 1, min(8, len(cand))).round().astype(int)
    best = (-2.0, 1.0, 0.0, 0.0, 0)
    for j in sorted(set(probe_idx.tolist())):
        c = _coarse_small(mid, _Pyr(small[j]), fx, fy, scale)
        if c[0] > best[0]:
            best = (*c, j)
    sc0, s0, x0, y0, _ = best
    # 2) with the placement fixed, pick each FG frame's best-correlating BG candidate
    th, tw = _resize(mid, s0 * fx, s0 * fy).shape
    picks = []
    for fi, g in zip(fidx, fgs):
        tg = _resize(g, s0 * fx, s0 * fy)
        tgd = (tg, _grad(tg))
        scores = []
        for a in small:
            r = 3
            px, py = int(round(x0 * fx)), int(round(y0 * fy))
            xa, ya = max(0, px - r), max(0, py - r)
            xb, yb = min(a.shape[1], px + r + tw), min(a.shape[0], py + r + th)
            if xb - xa < tw or yb - ya < th:
                scores.append(-1.0)
                continue
            roi = a[ya:yb, xa:xb]
            scores.append(float(_ncc_map((roi, _grad(roi)), tgd).max()))
        picks.append(cand[int(np.argmax(scores))])
    td = time.perf_counter()
    bgf = _frames(bg, picks)
    dec += time.perf_counter() - td
    prior = Placement(x0, y0, s0, sc0, "ncc")
    radius = 4.0 / min(fx, fy) + 4
    ests = [_estimate_prior(g, b, prior, scale, radius) for g, b in zip(fgs, bgf)]
    p, inl, spread = _combine(ests)
    p.method = ests[int(np.argmax([e.confidence for e in ests]))].method
    p.confidence = float(p.confidence * math.exp(-spread / 2.0))
    last_stats.clear()
    last_stats.update(decode_s=dec, compute_s=time.perf_counter() - t0 - dec, bg_picks=picks)  # type: ignore[arg-type]
    return p


def _coarse_small(fg: np.ndarray, pyr: _Pyr, fx: float, fy: float,
                  scale: float | None) -> tuple[float, float, float, float]:
    """Multi-scale search on a small BG copy (factors fx, fy); (score, s, x, y) in full BG px."""
    bh, bw = pyr.full.shape
    fh, fw = fg.shape
    full_w, full_h = bw / fx, bh / fy
    scales = [scale] if scale is not None else _scale_grid(fw, fh, int(round(full_w)), int(round(full_h)))
    best = (-2.0, 1.0, 0.0, 0.0)
    res = []
    for s in scales:
        k = _coarse_k(bw * 2, bh * 2, fw * s * fx * 2, fh * s * fy * 2) - 1
        k = max(0, k)
        f = 2.0 ** -k
        bgl = pyr.level(k)
        tg = _resize(fg, s * fx * f, s * fy * f)
        th, tw = tg.shape
        if tw > bgl[0].shape[1] or th > bgl[0].shape[0] or tw < 4 or th < 4:
            continue
        sc, px, py = _peak(_ncc_map(bgl, (tg, _grad(tg))))
        res.append((sc, s, px / f / fx, py / f / fy))
    if not res:
        return best
    res.sort(key=lambda c: -c[0])
    best = res[0]
    one = next((c for c in res if c[1] == 1.0), None)
    if one is not None and one[0] >= best[0] - PREFER_ONE:
        best = one
    return best


def _estimate_prior(fg: np.ndarray, bg: np.ndarray, prior: Placement, scale: float | None,
                    radius: float) -> Placement:
    """estimate() around a prior with an explicit search radius (BG px)."""
    fg = _grey(fg)
    bg = _grey(bg)
    fh, fw = fg.shape
    bh, bw = bg.shape
    pyr = _Pyr(bg)
    free = scale is None
    if free:
        # scale search near the prior on the coarse level, 1.0 preferred when close
        cands = _coarse(fg, pyr, prior, None, radius)
        best = cands[0]
        one = next((c for c in cands if c[1] == 1.0), None)
        if one is not None and one[0] >= best[0] - PREFER_ONE:
            best = one
    else:
        best = _coarse(fg, pyr, prior, scale, radius)[0]
    p = Placement(best[2], best[3], best[1], best[0], "ncc")
    if best[0] < FEATURE_BELOW:
        # weak match near the prior: let the full search (features included) decide
        return estimate(fg, bg, scale=scale)
    q, rho = _refine(fg, bg, p, free and abs(p.scale - 1.0) > 1e-9)
    q.method = "ncc" + ("+ecc" if rho > 0 else "")
    q.confidence = float(max(0.0, rho if rho > 0 else p.confidence))
    return q


def refine_from_clips(bg, fg, frame_map: list[int], *, prior: Placement,
                      scale: float | None = None) -> Spatial:
    """Placement from temporally matched pairs (FG frame i over BG frame ``frame_map[i]``).

    Several FG frames spread over the clip are estimated around ``prior`` and combined by
    the median after outlier rejection. When the per-sample positions drift consistently
    by more than ~0.5 px, FG frames are sampled densely and ``track`` gets one
    ``[x, y, scale]`` per FG frame, smoothly interpolated between samples.
    """
    t0 = time.perf_counter()
    dec = 0.0
    nf = fg.num_frames
    if len(frame_map) != nf:
        raise VidkompyError(f"frame map has {len(frame_map)} entries; FG has {nf} frames")
    _check_fit(fg.width, fg.height, bg.width, bg.height, scale)
    fh, fw = fg.height, fg.width
    n = min(nf, 9)
    idx = sorted({int(round(v)) for v in np.linspace(0.04 * (nf - 1), 0.96 * (nf - 1), n)})
    radius = max(24.0, 0.08 * min(fw, fh) * prior.scale)

    def run(ids: list[int], priors: list[Placement], rad: float) -> list[Placement]:
        nonlocal dec
        td = time.perf_counter()
        fgs = _frames(fg, ids)
        bgs = _frames(bg, [frame_map[i] for i in ids])
        dec += time.perf_counter() - td
        return [_estimate_prior(a, b, pr, scale, rad) for a, b, pr in zip(fgs, bgs, priors)]

    ests = run(idx, [prior] * len(idx), radius)
    p, inl, spread = _combine(ests)
    a = np.array([[e.x, e.y, e.scale] for e in ests])
    t = np.array(idx, dtype=np.float64)
    track = None
    if inl.sum() >= 4:
        # drift: a smooth (quadratic) trend over time that moves the footprint's corners
        # by more than half a pixel and explains the spread better than noise does
        span = []
        resid = []
        for j, mult in ((0, 1.0), (1, 1.0), (2, max(fw, fh))):
            c = np.polyfit(t[inl], a[inl, j], 2)
            fit = np.polyval(c, t[inl])
            span.append((fit.max() - fit.min()) * mult)
            resid.append(np.std(a[inl, j] - fit) * mult)
        if max(span) > 0.5 and max(span) > 4 * max(max(resid), 0.05):
            track = _track(run, ests, idx, nf, scale, fw, fh)
    med_rho = float(np.median([e.confidence for e in np.array(ests, dtype=object)[inl]]))
    if track is not None:
        tr = np.asarray(track)
        conf = med_rho
        x, y, s = (float(v) for v in np.median(tr, axis=0))
        method = "track"
    else:
        conf = med_rho * math.exp(-spread / 1.0)
        x, y, s = p.x, p.y, p.scale
        method = ests[int(np.argmax([e.confidence for e in ests]))].method
    last_stats.clear()
    last_stats.update(decode_s=dec, compute_s=time.perf_counter() - t0 - dec, spread_px=spread,
                      samples=float(len(idx)))
    return Spatial(x=x, y=y, scale=s, confidence=float(conf), method=method,
                   track=None if track is None else [[float(v) for v in row] for row in track])


def _track(run, ests: list[Placement], idx: list[int], nf: int, scale: float | None,
           fw: int, fh: int) -> list[list[float]]:
    """Dense samples (every few frames) tracked from the sparse ones, then interpolated."""
    step = max(1, int(round(nf / 48)))
    dense = sorted(set(range(0, nf, step)) | {nf - 1} | set(idx))
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
    from scipy.ndimage import median_filter

    ok = c >= 0.5 * np.median(c)
    for j in range(3):
        ref = median_filter(a[:, j], size=5, mode="nearest")
        tol = 1.5 if j < 2 else 1.5 / max(fw, fh)
        ok &= np.abs(a[:, j] - ref) <= tol
    if ok.sum() < 2:
        ok[:] = True
    t, a = t[ok], a[ok]
    # light smoothing: 3-tap binomial on interior samples (noise ~0.1 px, motion smooth)
    if len(t) >= 5:
        sm = a.copy()
        sm[1:-1] = 0.25 * a[:-2] + 0.5 * a[1:-1] + 0.25 * a[2:]
        a = sm
    from scipy.interpolate import PchipInterpolator

    out = np.empty((nf, 3))
    tt = np.arange(nf, dtype=float)
    for j in range(3):
        if len(t) >= 2:
            out[:, j] = PchipInterpolator(t, a[:, j], extrapolate=True)(tt)
        else:
            out[:, j] = a[0, j]
    if scale is not None:
        out[:, 2] = scale
    return out.tolist()
