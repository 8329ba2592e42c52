"""One frame pair: where FG (scaled by ``scale``) sits inside one BG frame, to a
fraction of a pixel.

0. without a prior, keypoints first (:mod:`.fast`: ORB on reduced copies, a RANSAC
   similarity confirmed by NCC), finished as in 3; the grid of 1. only when they are
   unsure or the finished fit is not clean;
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
"""

from __future__ import annotations

import logging
import math
from typing import NamedTuple

import cv2
import numpy as np

from ..alignment import Placement
from ..numeric import peak
from .common import (
    FEATURE_BELOW,
    MIN_FOOT,
    PREFER_ONE,
    Pyramid,
    check_fit,
    coarse_level,
    confidence,
    fits,
    grad,
    ncc,
    ncc_map,
    picture,
    resampled,
    resize,
    scale_grid,
)
from .fast import fast_estimate

log = logging.getLogger(__name__)

# a keypoint estimate whose sub-pixel fit ends at this confidence or better is the answer
# (rho 0.9: true matches through recompression and grading; unrelated content stays well
# below); under it the grid searches too
QUICK_KEEP = 0.8

# Working level for the first ECC: the FG footprint at most this many pixels.
WORK_PIXELS = 200_000
# Full-resolution ECC: a region of interest at most this big (BG px per side).
ROI = 256
GRID = 2  # windows: the most textured one in each cell of a GRID x GRID split of FG


class Candidate(NamedTuple):
    """A search result: NCC score, FG's scale and its top-left corner in BG px."""

    score: float
    scale: float
    x: float
    y: float


def search(bg: Pyramid, fg: Pyramid, s: float, k: int,
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
    score, px, py = peak(ncc_map(bgl, tpl))
    return score, (px + x0) / f, (py + y0) / f


def ecc(tpl: np.ndarray, inp: np.ndarray, warp: np.ndarray, mode: int, iters: int = 60,
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


def score_at(fg: Pyramid, bg: Pyramid, p: Placement, k: int) -> float:
    """NCC of FG against BG resampled at placement ``p``, on BG level ``k``."""
    return ncc(*resampled(fg, bg, p, k))


# -- feature path -----------------------------------------------------------------------
def features(fg: np.ndarray, bg: np.ndarray, scale: float | None) -> Placement | None:
    """ORB + ratio test + RANSAC similarity; None when too few consistent matches."""
    fb = min(1.0, 960 / max(bg.shape))
    ff = min(1.0, 960 / max(fg.shape))
    b8 = cv2.convertScaleAbs(resize(bg, fb))
    f8 = cv2.convertScaleAbs(resize(fg, ff))
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
    if not math.isfinite(s) or min(fg.shape) * s < MIN_FOOT:
        return None  # RANSAC on a few chance matches: a degenerate similarity, not a placement
    return Placement(float(m[0, 2]), float(m[1, 2]), s, float(inl.mean()), "orb")


# -- coarse to fine ---------------------------------------------------------------------
def finer(fg: Pyramid, bg: Pyramid, cand: Candidate, steps: tuple[float, ...]) -> Candidate:
    """Re-search around a candidate one level finer, over scales ``cand.scale * steps``."""
    _, s0, x0, y0 = cand
    k = max(0, coarse_level(bg.w, bg.h, fg.w * s0, fg.h * s0) - 1)
    best = Candidate(-2.0, s0, x0, y0)
    for st in steps:
        s = s0 * st
        if not fits(fg.w, fg.h, bg.w, bg.h, s):
            continue
        # keep the footprint centre where it was when trying another scale
        cx = x0 + fg.w * (s0 - s) / 2
        cy = y0 + fg.h * (s0 - s) / 2
        sc, x, y = search(bg, fg, s, k, (cx, cy, 3 * 2 ** k))
        if sc > best.score:
            best = Candidate(sc, s, x, y)
    return best


def _roi_boxes(fg: Pyramid, s: float) -> list[tuple[int, int, int, int]]:
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


class WindowMatches(NamedTuple):
    """Matching points of the full-resolution windows (one row per window)."""

    fg_points: np.ndarray  # (N, 2) FG px
    bg_points: np.ndarray  # (N, 2) BG px
    weights: np.ndarray  # (N,) the windows' ECC correlation


def _texture_centre(tpl: np.ndarray) -> tuple[float, float]:
    """The gradient-energy centroid of ``tpl`` (corner coordinates), its middle when flat."""
    th, tw = tpl.shape
    e = grad(tpl)
    e *= e
    tot = float(e.sum())
    if tot > 0:
        cx = float((e.sum(axis=0) * np.arange(tw)).sum() / tot) + 0.5
        cy = float((e.sum(axis=1) * np.arange(th)).sum() / tot) + 0.5
        return cx, cy
    return tw / 2, th / 2


def _roi_measure(fg: Pyramid, bg: Pyramid, x: float, y: float, s: float) -> WindowMatches | None:
    """Full resolution, translation-only ECC per textured window (resized by ``s``):
    matching (FG point, BG point, correlation) per window, or None."""
    cen_fg, cen_bg, wts = [], [], []
    for u0, v0, u1, v1 in _roi_boxes(fg, s):
        tpl = resize(fg.region(v0, v1, u0, u1), s)
        th, tw = tpl.shape
        if tw < 8 or th < 8:
            continue
        bx, by = x + s * u0, y + s * v0  # template corner 0 <-> FG corner (u0, v0)
        margin = 6
        ox = int(max(0, math.floor(bx) - margin))
        oy = int(max(0, math.floor(by) - margin))
        inp = bg.region(oy, int(min(bg.h, math.ceil(by) + th + margin)),
                        ox, int(min(bg.w, math.ceil(bx) + tw + margin)))
        w0 = np.float32([[1, 0, bx - ox], [0, 1, by - oy]])
        r2, w = ecc(tpl, inp, w0, cv2.MOTION_TRANSLATION, iters=30, eps=1e-3, gauss=3)
        if r2 <= 0:
            continue
        nbx, nby = float(w[0, 2]) + ox, float(w[1, 2]) + oy
        if abs(nbx - bx) < 4 and abs(nby - by) < 4:
            # ECC pins the window where its texture is, not at its geometric centre: use
            # the texture centroid, so that a slightly wrong window scale does not bias
            # the fitted scale
            cx, cy = _texture_centre(tpl)
            cen_fg.append((u0 + cx / s, v0 + cy / s))
            cen_bg.append((nbx + cx, nby + cy))
            wts.append(r2)
    if not cen_fg:
        return None
    return WindowMatches(np.array(cen_fg), np.array(cen_bg), np.array(wts))


class WindowFit(NamedTuple):
    """A placement fitted to the windows' matches and their mean correlation."""

    x: float
    y: float
    scale: float
    rho: float


def _roi_solve(m: WindowMatches, s: float, free: bool) -> WindowFit | None:
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
    return WindowFit(nx, ny, ss, float(np.mean(wt[keep])))


def _working_ecc(fg: Pyramid, bg: Pyramid, x: float, y: float, s: float, free: bool,
                 affine: bool) -> WindowFit | None:
    """ECC of the whole footprint at a working level (affine when ``affine``: scale and
    position), when FG is too large for full resolution or the scale is rough; the new
    placement and its correlation, or None (not run, failed, or moved too far)."""
    budget = WORK_PIXELS if affine else WORK_PIXELS // 4
    k = 0
    while fg.w * fg.h * s * s / 4 ** k > budget:
        k += 1
    if not (k > 0 or affine):
        return None
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
    r1, w = ecc(tpl, inp, w0, mode, iters=60 if affine else 30, eps=1e-4 if affine else 1e-3, gauss=5)
    if r1 <= 0:
        return None
    a = math.sqrt(abs(float(np.linalg.det(w[:, :2])))) if affine else 1.0
    # centre index -> corner: BG_corner*f = a*T_corner + (b + 0.5 - 0.5a) + o
    nx = (float(w[0, 2]) + 0.5 - 0.5 * a + ox) / f
    ny = (float(w[1, 2]) + 0.5 - 0.5 * a + oy) / f
    if abs(nx - x) < 8 / f + 2 and abs(ny - y) < 8 / f + 2 and 0.8 < a < 1.25:
        return WindowFit(nx, ny, s * a if free else s, r1)
    return None


def subpixel(fg: Pyramid, bg: Pyramid, p: Placement, free: bool, affine: bool) -> tuple[Placement, float]:
    """Sub-pixel placement and its correlation: ECC at a working level
    (:func:`_working_ecc`), then windows at full resolution (:func:`_roi_measure`,
    :func:`_roi_solve`). ``free`` lets the scale move; a scale within a fraction of a
    pixel of 1.0 snaps to 1."""
    s, x, y = p.scale, p.x, p.y
    rho = -1.0
    work = _working_ecc(fg, bg, x, y, s, free, affine)
    if work is not None:
        x, y, s, rho = work
    size = max(fg.w, fg.h)
    tried_one = False
    for _ in range(4):
        m = _roi_measure(fg, bg, x, y, s)
        r = _roi_solve(m, s, free) if m is not None else None
        if r is None:
            break
        if free and abs(r.scale - 1) * size < 0.5 and (s == 1.0 or not tried_one):
            tried_one = True
            # the preference for 1.0: a scale that moves FG's corners by less than a quarter
            # pixel either way (about its centre) is 1.0
            if s == 1.0:
                r = _roi_solve(m, 1.0, False) or r
                x, y, s, rho = r
                break
            x, y, s = r.x + (r.scale - 1) * fg.w / 2, r.y + (r.scale - 1) * fg.h / 2, 1.0
            continue
        moved = abs(r.scale / s - 1)
        x, y, s, rho = r
        if moved * size < 0.1:  # the windows were resized by a scale close enough
            break
    return Placement(x, y, s, p.confidence, p.method), rho


def finish(fg: Pyramid, bg: Pyramid, p: Placement, free: bool, affine: bool) -> Placement:
    """:func:`subpixel` with the method and confidence it earned."""
    q, rho = subpixel(fg, bg, p, free, affine)
    q.method = p.method + ("+ecc" if rho > 0 else "")
    q.confidence = confidence(rho if rho > 0 else p.confidence)
    return q


# -- one pair of frames -----------------------------------------------------------------
def estimate(fg_img: np.ndarray, bg_img: np.ndarray, *, prior: Placement | None = None,
             scale: float | None = None) -> Placement:
    """Placement of one FG frame inside one BG frame (BGR uint8 or grey).

    ``scale`` fixes the scale; ``prior`` restricts the search to its neighbourhood.
    ``confidence`` is ``2*rho - 1`` of the final correlation coefficient rho, clipped to
    [0, 1] (0.8+ for a clean match, below ~0.4 when FG is probably not in BG); ``method``
    names the path that won.
    """
    fg = Pyramid(picture(fg_img))
    bg = Pyramid(picture(bg_img))
    check_fit(fg.w, fg.h, bg.w, bg.h, scale)
    if prior is not None:
        return estimate_prior(fg, bg, prior, scale, max(24.0, 0.08 * min(fg.w, fg.h) * prior.scale))
    return estimate_full(fg, bg, scale)


def _best_free(fg: Pyramid, bg: Pyramid, cands: list[Candidate]) -> Candidate:
    """Of grid candidates (best first): the few best distinct scales, one level finer,
    with 1.0 preferred when close."""
    tops: list[Candidate] = []
    for c in cands:
        if all(abs(math.log(c.scale / t.scale)) > 0.06 for t in tops):
            tops.append(c)
        if len(tops) == 3:
            break
    fine = [finer(fg, bg, c, (1 / 1.02, 1.0, 1.02)) for c in tops if c.scale != 1.0]
    one = next((c for c in cands if c.scale == 1.0), None)
    one_f = finer(fg, bg, one, (1.0,)) if one is not None else None
    fine.sort(key=lambda c: -c.score)
    best = fine[0] if fine else one_f
    if one_f is not None and one_f.score >= best.score - PREFER_ONE:
        best = one_f
    return best


def estimate_full(fg: Pyramid, bg: Pyramid, scale: float | None) -> Placement:
    """estimate() without a prior: keypoints (:func:`.fast.fast_estimate`) when they and
    the pictures agree and the sub-pixel fit holds; else the multi-scale search over the
    whole BG (the better of both when keypoints gave a middling fit)."""
    free = scale is None
    quick = None
    got = fast_estimate(fg, bg, scale)
    if got is not None:
        quick = finish(fg, bg, got.placement, free, affine=free)
        if quick.confidence >= QUICK_KEEP:
            return quick
    grid = _grid_full(fg, bg, scale)
    return quick if quick is not None and quick.confidence > grid.confidence else grid


def _grid_full(fg: Pyramid, bg: Pyramid, scale: float | None) -> Placement:
    """The multi-scale search over the whole BG (features when NCC is weak), finished."""
    free = scale is None
    scales = [scale] if scale is not None else scale_grid(fg.w, fg.h, bg.w, bg.h)
    cands: list[Candidate] = []
    for s in scales:
        sc, x, y = search(bg, fg, s, coarse_level(bg.w, bg.h, fg.w * s, fg.h * s))
        cands.append(Candidate(sc, s, x, y))
    cands.sort(key=lambda c: -c.score)
    best = _best_free(fg, bg, cands) if free else cands[0]
    p = Placement(best.x, best.y, best.scale, best.score, "ncc")
    if best.score < FEATURE_BELOW:
        try:
            orb = features(fg.full, bg.full, scale)
        except cv2.error as e:  # a method that fails is skipped, the search goes on
            log.warning("feature path skipped: %s", str(e).strip().splitlines()[-1])
            orb = None
        if orb is not None and fits(fg.w, fg.h, bg.w, bg.h, orb.scale):
            sc_f = score_at(fg, bg, orb, coarse_level(bg.w, bg.h, fg.w * orb.scale, fg.h * orb.scale))
            sc_n = score_at(fg, bg, p, coarse_level(bg.w, bg.h, fg.w * p.scale, fg.h * p.scale))
            if sc_f > sc_n:
                p = Placement(orb.x, orb.y, orb.scale, sc_f, "orb")
    return finish(fg, bg, p, free, affine=free)


def estimate_prior(fg: Pyramid, bg: Pyramid, prior: Placement, scale: float | None,
                   radius: float, rough_scale: bool = False, fallback: bool = True) -> Placement:
    """estimate() around a prior: NCC within ``radius`` BG px at the prior's scale, then
    the sub-pixel fit (which also corrects the scale when it is free). ``rough_scale``:
    the prior's scale is only good to a few percent (search it, and fit it affinely)."""
    free = scale is None
    s = scale if scale is not None else prior.scale
    if not fits(fg.w, fg.h, bg.w, bg.h, s):
        s = min(bg.w / fg.w, bg.h / fg.h)
    k = coarse_level(bg.w, bg.h, fg.w * s, fg.h * s)
    sc, x, y = search(bg, fg, s, k, (prior.x, prior.y, radius))
    if free and rough_scale:
        c = finer(fg, bg, Candidate(sc, s, x, y), (1 / 1.03, 1 / 1.015, 1.0, 1.015, 1.03))
        if abs(c.scale - 1) < 0.03 and abs(s - 1) > 1e-9:
            one = finer(fg, bg, Candidate(sc, 1.0, x + fg.w * (s - 1) / 2, y + fg.h * (s - 1) / 2), (1.0,))
            if one.score >= c.score - PREFER_ONE:
                c = one
        return finish(fg, bg, Placement(c.x, c.y, c.scale, c.score, "ncc"), free, affine=True)
    if k > 0 and sc >= FEATURE_BELOW:
        # one level finer in a small window: ECC's start within a pixel or two
        sc2, x2, y2 = search(bg, fg, s, k - 1, (x, y, 2 ** k))
        if sc2 > 0:
            sc, x, y = sc2, x2, y2
    if sc < FEATURE_BELOW:
        # weak match near the prior: let the full search (features included) decide
        if not fallback:
            return Placement(x, y, s, confidence(sc), "ncc")
        full = estimate_full(fg, bg, scale)
        if full.confidence > confidence(sc):
            return full
    return finish(fg, bg, Placement(x, y, s, sc, "ncc"), free, affine=False)
