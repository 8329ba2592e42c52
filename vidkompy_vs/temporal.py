"""Visual temporal alignment: which BG frame lies under each FG frame.

A monotonic dynamic-programming alignment (DTW) of FG against BG over a band of the
FG x BG cost matrix (cost = 1 - correlation of zero-mean/unit-norm grey planes). Every
FG frame gets exactly one BG frame; from one FG frame to the next the BG index may stay
(BG repeats, FG has the higher rate) or advance by up to ``kmax`` (BG skips).

Multi-resolution so time and memory grow about linearly with length:

1. coarse: both inputs averaged into time bins of ``dt`` seconds (16x9 planes), the bin
   size chosen so the full FG x BG bin matrix stays small (or only a band around an
   audio prior); subsequence DTW (free start and end in BG);
2. finer bin levels (``dt`` / 4 each) in a band around the previous path;
3. frame level with the full-size planes in a band of a few frames around the last path;
4. a second frame-level pass adds a tiny penalty for straying from a smooth timeline
   fitted to the first pass (local linear regression weighted by how distinct each match
   is), so that among near-identical BG frames (static shots, repeats) the one nearest
   the timeline wins instead of an arbitrary one; near a frame boundary the timeline is
   sharpened by the frame cells of the distinct matches around (``_cell_timeline``).

The DP loops in Python once per FG row (vectorised over the band), never per cell.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from .fingerprint import Fingerprints, area_reduce, normalise
from .numeric import gauss1d, shift_planes
from .settings import TemporalParams

COARSE_SIZE = (16, 9)


@dataclass
class TemporalResult:
    frame_map: np.ndarray  # (N,) int64 BG frame per FG frame (clamped into BG)
    similarity: np.ndarray  # (N,) float32 correlation of each chosen pair
    confidence: float
    offset_s: float  # BG time = offset_s + rate * FG time
    rate: float
    residual_frames: float  # RMS distance of confident matches from that line, in BG frames
    uncovered: np.ndarray  # FG frames BG has no frame for
    timeline: np.ndarray  # (N,) float64 smooth fitted BG frame position per FG frame
    related: bool = True
    notes: list[str] = field(default_factory=list)


# -- anchors before the map --------------------------------------------------------------
def anchor_line(planes: np.ndarray, idx: list[int], bg_fps: float, fg: Fingerprints, *, rough: bool = True,
                complete: bool = True, min_score: float = 0.75,
                min_gap: float = 0.05) -> tuple[float, float, list[tuple[int, int, float]]] | None:
    """A time line from a few BG frames alone: each plane (BG frame ``idx[i]``, cropped
    to FG's footprint, at FG's fingerprint size) against every FG fingerprint.

    ``rough``: the footprint is only good to a fingerprint pixel or two, so both sides
    are reduced 4x each way first (measured: at 64x36 a crop 1.5 cells off put 3 of 8
    BG frames on wrong FG frames; at 16x9 all 8 landed on or next to their true frames),
    and an anchor may then be a few FG frames off its partner. ``complete=False``: ``fg``
    is FG's beginning only (its pass is under way), and a best frame near its end may
    have a better one beyond.

    A BG frame anchors when its best FG frame is clearly better than any FG frame more
    than half a second away (``min_gap``; a held shot anchors nothing) and correlates
    at ``min_score`` at least. Of the lines through the anchors (constant rate: the
    nominal one, and a robust Theil-Sen fit of three or more for a drift or an fps
    mismatch nobody declared) the one most anchors agree with is returned as
    ``(offset_s, rate, anchors)``, with BG time = offset_s + rate * FG time and the
    agreeing anchors (BG frame, FG frame, score), best first; ``None`` without half of
    them, and two at least, agreeing. It only guides what to decode and which frames
    to pair for the footprint; the map comes from the full match.
    """
    anchors = frame_anchors(planes, idx, fg, rough=rough, complete=complete, min_score=min_score, min_gap=min_gap)
    return line_through(anchors, bg_fps, fg.fps, rough=rough)


def frame_anchors(planes: np.ndarray, idx: list[int], fg: Fingerprints, *, rough: bool = True,
                  complete: bool = True, min_score: float = 0.75,
                  min_gap: float = 0.05) -> list[tuple[int, int, float]]:
    """The (BG frame, FG frame, score) matches of :func:`anchor_line`, before any line."""
    if len(planes) == 0 or fg.n < 2:
        return []
    size = (max(4, planes.shape[2] // 4), max(4, planes.shape[1] // 4)) if rough else None
    red = area_reduce(planes, size) if size is not None else planes
    v = normalise(red.reshape(len(planes), -1))
    s = np.empty((len(v), fg.n), np.float32)  # (K, N), FG in chunks: never all of it as floats
    for lo in range(0, fg.n, 8192):
        s[:, lo:lo + 8192] = v @ fg.vectors(lo, lo + 8192, size=size).T
    far = max(2, int(round(0.5 * fg.fps)))
    anchors = []
    for i, row in enumerate(s):
        f = int(np.argmax(row))
        best = float(row[f])
        rest = np.concatenate([row[:max(0, f - far)], row[f + far + 1:]])
        gap = best - float(rest.max()) if len(rest) else best
        # FG's first or last frame may only be the nearest to a BG frame outside FG
        if best >= min_score and gap >= min_gap and 0 < f < fg.n - (1 if complete else far):
            anchors.append((int(idx[i]), f, best))
    return anchors


def line_through(anchors: list[tuple[int, int, float]], bg_fps: float, fg_fps: float, *,
                 rough: bool = True) -> tuple[float, float, list[tuple[int, int, float]]] | None:
    """The line :func:`anchor_line` fits through ``anchors``."""
    if len(anchors) < 2:
        return None
    tb = np.array([(k + 0.5) / bg_fps for k, _, _ in anchors])
    tf = np.array([(f + 0.5) / fg_fps for _, f, _ in anchors])
    # rough anchors land within a few FG frames of their partners (measured: up to 5 at
    # 60 fps), exact ones within one; each line's offset is the median of its anchors
    tol = max(2.0 / bg_fps, 6.0 / fg_fps) if rough else max(1.0 / bg_fps, 1.5 / fg_fps)
    lines = [(float(np.median(tb - tf)), 1.0)]
    if len(anchors) >= 3:
        i, j = np.triu_indices(len(anchors), 1)
        apart = np.abs(tf[j] - tf[i]) >= 0.5
        if apart.any():
            rate = float(np.median((tb[j] - tb[i])[apart] / (tf[j] - tf[i])[apart]))
            if 0.5 <= rate <= 2.0:
                lines.append((float(np.median(tb - rate * tf)), rate))
    best_line, best_ok = None, np.zeros(len(anchors), bool)
    for off, rate in lines:
        ok = np.abs(tb - (off + rate * tf)) <= tol
        if ok.sum() >= 2:
            off = float(np.median((tb - rate * tf)[ok]))  # once more on its own anchors
            ok = np.abs(tb - (off + rate * tf)) <= tol
        if ok.sum() > best_ok.sum() + (1 if best_line is not None and rate != 1.0 else 0):
            best_line, best_ok = (off, rate), ok
    if best_line is None or best_ok.sum() < max(2, int(math.ceil(0.5 * len(anchors)))):
        return None
    good = sorted((a for a, o in zip(anchors, best_ok, strict=False) if o), key=lambda a: -a[2])
    return best_line[0], best_line[1], good


# -- DP core ---------------------------------------------------------------------------
def dtw_band(C: np.ndarray, lo: np.ndarray, kmax: int, *, free_start: bool = True,
             free_end: bool = True) -> np.ndarray:
    """Minimum-cost monotonic path through a banded cost matrix.

    ``C[i, k]`` is the cost of FG row ``i`` on BG column ``lo[i] + k``; ``lo`` must be
    non-decreasing. From row ``i-1`` to ``i`` the column advances by 0..``kmax``.
    Returns the BG column per row. Without ``free_start``/``free_end`` the path is pinned
    to the band's first/last column.
    """
    n, w = C.shape
    ptr = np.zeros((n, w), np.uint8)
    big = np.float64(1e30)
    D = C[0].astype(np.float64)
    if not free_start:
        D[1:] = big
    buf = np.full(kmax + w + int(np.max(np.diff(lo), initial=0)) + 1, big)
    for i in range(1, n):
        d = int(lo[i] - lo[i - 1])
        buf[:kmax] = big
        buf[kmax:kmax + w] = D
        buf[kmax + w:kmax + w + d + 1] = big
        # candidate s (steps advanced) sits at buf[kmax + d - s + k]
        cand = np.stack([buf[kmax + d - s:kmax + d - s + w] for s in range(kmax + 1)])
        s_best = np.argmin(cand, axis=0)
        D = cand[s_best, np.arange(w)] + C[i]
        ptr[i] = s_best
    k = int(np.argmin(D)) if free_end else w - 1
    path = np.empty(n, np.int64)
    for i in range(n - 1, -1, -1):
        path[i] = lo[i] + k
        if i:
            k = k + int(lo[i] - lo[i - 1]) - int(ptr[i, k])
    return path


def _band_costs(fvec: Callable[[int, int], np.ndarray], bvec: Callable[[int, int], np.ndarray],
                lo: np.ndarray, w: int, chunk: int) -> np.ndarray:
    """Cost 1 - corr for FG row i against BG lo[i]..lo[i]+w-1, computed in row chunks."""
    n = len(lo)
    C = np.empty((n, w), np.float32)
    for r0 in range(0, n, chunk):
        r1 = min(n, r0 + chunk)
        b0, b1 = int(lo[r0]), int(lo[r1 - 1]) + w
        F = fvec(r0, r1)  # (R, D)
        B = bvec(b0, b1)  # (b1-b0, D)
        # all FG rows of the chunk against the BG span they touch, then pick each row's band
        full = F @ B.T  # (R, b1-b0)
        idx = (lo[r0:r1] - b0)[:, None] + np.arange(w)[None, :]
        C[r0:r1] = 1.0 - np.take_along_axis(full, idx, axis=1)
    return C


def _make_band(centre: np.ndarray, hw: int, m: int, kmax: int) -> tuple[np.ndarray, int]:
    """Monotone band starts around ``centre`` (float BG index), width ``2*hw+1`` clamped to [0, m)."""
    w = min(m, 2 * hw + 1)
    lo = np.floor(centre).astype(np.int64) - hw
    lo = np.maximum.accumulate(np.clip(lo, 0, m - w))
    # keep consecutive bands overlapping so every row has a reachable cell
    for _ in range(2):
        gap = np.diff(lo) - (w - 1 + kmax)
        if (gap <= 0).all():
            break
        w = min(m, w + int(gap.max()))
        lo = np.maximum.accumulate(np.clip(lo, 0, m - w))
    return lo, w


# -- bins ------------------------------------------------------------------------------
def _reduced(prints: Fingerprints, size: tuple[int, int]) -> np.ndarray:
    """All planes area-reduced to ``size`` (float32, flattened), in chunks."""
    out = np.empty((prints.n, size[0] * size[1]), np.float32)
    for lo in range(0, prints.n, 4096):
        hi = min(prints.n, lo + 4096)
        out[lo:hi] = area_reduce(prints.planes[lo:hi], size).reshape(hi - lo, -1)
    return out


def _bin(red: np.ndarray, fps: float, dt: float) -> np.ndarray:
    """Average frames into bins of ``dt`` seconds (frame i goes to bin floor(i / fps / dt))."""
    n = len(red)
    b = np.floor((np.arange(n) / fps + 1e-9) / dt).astype(np.int64)
    nb = int(b[-1]) + 1
    sums = np.zeros((nb, red.shape[1]), np.float64)
    np.add.at(sums, b, red)
    cnt = np.bincount(b, minlength=nb).astype(np.float64)
    empty = cnt == 0
    sums /= np.maximum(cnt, 1)[:, None]
    if empty.any():  # only when dt < a frame: carry the previous frame
        idx = np.maximum.accumulate(np.where(~empty, np.arange(nb), 0))
        sums = sums[idx]
    return normalise(sums.astype(np.float32))


def _interp_path(t_query: np.ndarray, t_path: np.ndarray, v_path: np.ndarray) -> np.ndarray:
    """Piecewise-linear path value at ``t_query``, extrapolated linearly at both ends."""
    v = np.interp(t_query, t_path, v_path)
    if len(t_path) >= 2:
        lo, hi = t_query < t_path[0], t_query > t_path[-1]
        s0 = (v_path[min(len(v_path) - 1, 4)] - v_path[0]) / max(t_path[min(len(t_path) - 1, 4)] - t_path[0], 1e-9)
        s1 = (v_path[-1] - v_path[max(0, len(v_path) - 5)]) / max(t_path[-1] - t_path[max(0, len(t_path) - 5)], 1e-9)
        v[lo] = v_path[0] + (t_query[lo] - t_path[0]) * s0
        v[hi] = v_path[-1] + (t_query[hi] - t_path[-1]) * s1
    return v


# -- timeline fit ----------------------------------------------------------------------
def _distinctness(C: np.ndarray, k: np.ndarray) -> np.ndarray:
    """How much worse the neighbouring BG frames (±1, ±2) are than the chosen one."""
    n, w = C.shape
    r = np.arange(n)
    best = C[r, k]
    nb = np.full(n, np.inf, np.float32)
    for s in (-2, -1, 1, 2):
        q = k + s
        ok = (q >= 0) & (q < w)
        nb[ok] = np.minimum(nb[ok], C[r[ok], q[ok]])
    nb[np.isinf(nb)] = best[np.isinf(nb)]
    return np.maximum(nb - best, 0.0)


def _local_line(x: np.ndarray, y: np.ndarray, w: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian-weighted local linear regression of y on x; also the effective weight count."""
    g = lambda a: gauss1d(a, sigma)  # noqa: E731
    xc = x - x.mean()
    sw, swx, swy = g(w), g(w * xc), g(w * y)
    swxx, swxy = g(w * xc * xc), g(w * xc * y)
    det = sw * swxx - swx ** 2
    ok = det > 1e-9 * np.maximum(sw, 1e-12) ** 2 * max(sigma, 1.0) ** 2
    b = np.where(ok, (sw * swxy - swx * swy) / np.where(ok, det, 1.0), 0.0)
    a = np.where(sw > 0, (swy - b * swx) / np.where(sw > 0, sw, 1.0), 0.0)
    # effective number of (unit-weight) anchors inside the window
    return a + b * xc, np.where(ok, sw * sigma * math.sqrt(2 * math.pi), 0.0)


def fit_timeline(x: np.ndarray, y: np.ndarray, wts: np.ndarray, sigma0: float,
                 min_count: float = 6.0) -> tuple[np.ndarray, float, float]:
    """Smooth position per row: local linear fits through weighted anchors, adaptive width.

    Each row takes the narrowest Gaussian window (``sigma0``, x2, x4, ...) holding at
    least ``min_count`` effective anchors, so a static stretch between anchors is
    bridged by the line through the anchors on both sides, while ramps keep a narrow,
    nearly unbiased window. The global weighted line covers what no window reaches.
    Returns (timeline, global slope, global intercept).
    """
    n = len(x)
    wts = np.asarray(wts, np.float64)
    wsum = wts.sum()
    if wsum <= 0:
        wts = np.ones(n)
        wsum = float(n)
    xm = (wts * x).sum() / wsum
    ym = (wts * y).sum() / wsum
    sxx = (wts * (x - xm) ** 2).sum()
    slope = float((wts * (x - xm) * (y - ym)).sum() / sxx) if sxx > 0 else 1.0
    icpt = float(ym - slope * xm)
    out = icpt + slope * x
    todo = np.ones(n, bool)
    sigma = max(1.0, sigma0)
    while todo.any() and sigma < 4 * n:
        fit, cnt = _local_line(x, y, wts, sigma)
        take = todo & (cnt >= min_count)
        out[take] = fit[take]
        todo &= ~take
        sigma *= 2
    return out, slope, icpt


def _distinct_gap(cost: np.ndarray, dims: int) -> np.ndarray:
    """Per row, the cost difference that tells one column from another beyond noise.

    With FG-BG noise energy e (cost ~ e/2) spread over D dims, the dot-product noise is
    ~ sqrt(4 cost / D); three times that is real. Where FG and BG differ systematically
    (binned levels, grading) the noise model overstates; half the match's own cost is
    then distinct enough.
    """
    return np.maximum(np.minimum(3.0 * np.sqrt(4.0 * cost / dims), 0.5 * cost), 1e-4)


def _timeline(C: np.ndarray, lo: np.ndarray, path: np.ndarray, sigma: float, dims: int,
              m: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fitted BG position per FG row from the path's distinct, well-matched rows (anchors).

    ``m``: BG's length. Rows on its first or last frame are never anchors: FG frames
    before or after BG are clamped there, and the frame next to the true one often
    matches well and distinctly (continuous footage), which would bend the timeline
    back into BG and hide the uncovered rows.
    """
    n = len(path)
    k = path - lo
    sim = 1.0 - C[np.arange(n), k]
    gap = _distinctness(C, k)
    good = sim > 0.5
    anchor = good & (gap >= _distinct_gap(np.maximum(1.0 - sim, 0.0), dims))
    if m is not None and anchor.sum() > 2:
        inner = anchor & (path > 0) & (path < m - 1)
        if inner.sum() >= 2:
            anchor = inner
    # frame j shows BG time [j, j+1): its centre j + 0.5 is the unbiased sample of the line
    tl, _, _ = fit_timeline(np.arange(n, dtype=np.float64), path + 0.5, anchor.astype(np.float64), sigma)
    return tl - 0.5, anchor


# Interval timeline (see _cell_timeline): anchors per side for the line and for the
# quadratic, how far from the gap they may be (rows: a held shot can leave a long gap;
# a cut or a change of speed between makes the cells inconsistent, which is detected),
# and rows whose regression timeline lies within this much of a frame's centre are
# left alone.
CELL_SIDE_LINE = 20
CELL_SIDE_QUAD = 8
CELL_SPAN = 256
CELL_NEAR = 0.2
CELL_GAPS = 400  # at most this many gaps (a polytope or two each, ~3 ms) per call


@functools.lru_cache(maxsize=16)
def _subsets(n: int, r: int) -> np.ndarray:
    """All r-subsets of range(n), one per row."""
    from itertools import combinations

    return np.array(list(combinations(range(n), r)), dtype=np.intp)


def _det(M: np.ndarray) -> np.ndarray:
    """Determinants of a stack of 2x2 or 3x3 matrices."""
    if M.shape[1] == 2:
        return M[:, 0, 0] * M[:, 1, 1] - M[:, 0, 1] * M[:, 1, 0]
    return (M[:, 0, 0] * (M[:, 1, 1] * M[:, 2, 2] - M[:, 1, 2] * M[:, 2, 1])
            - M[:, 0, 1] * (M[:, 1, 0] * M[:, 2, 2] - M[:, 1, 2] * M[:, 2, 0])
            + M[:, 0, 2] * (M[:, 1, 0] * M[:, 2, 1] - M[:, 1, 1] * M[:, 2, 0]))


def _cell_vertices(d: np.ndarray, k: np.ndarray, deg: int) -> tuple[np.ndarray, float] | None:
    """Vertices of the polytope of polynomials (degree ``deg``, coefficients of
    ``(d/s)**e``) passing through every cell ``[k - 0.5, k + 0.5)`` at offsets ``d``; and
    ``s``. ``None`` when no such polynomial exists (or only a degenerate one).

    At most a few dozen half-spaces in 2 or 3 dimensions: every vertex is where ``deg+1``
    of their planes meet, so all such points are solved for at once and the feasible ones
    kept (numpy; a linear program and qhull gave the same vertices but scipy.optimize
    alone takes half a second to import)."""
    s = float(max(1.0, np.abs(d).max()))
    u = d / s
    A = np.stack([u ** e for e in range(deg + 1)], axis=1)
    a_ub = np.vstack([A, -A])
    b_ub = np.concatenate([k + 0.5 - 1e-6, -(k - 0.5)])
    idx = _subsets(len(a_ub), deg + 1)
    M, b = a_ub[idx], b_ub[idx]
    # Cramer's rule on every (deg+1)-subset at once (closed-form 2x2/3x3 determinants:
    # LAPACK per tiny matrix is ten times slower)
    det = _det(M)
    ok = np.abs(det) > 1e-12
    if not ok.any():
        return None
    M, b, det = M[ok], b[ok], det[ok]
    pts = np.empty((len(M), deg + 1))
    for j in range(deg + 1):
        Mj = M.copy()
        Mj[:, :, j] = b
        pts[:, j] = _det(Mj) / det
    scale = np.maximum(np.abs(b_ub), 1.0)
    feas = ((pts @ a_ub.T - b_ub) <= 1e-9 * scale).all(axis=1)
    v = pts[feas]
    # an interior (the cells overlap in more than a point or an edge): its vertices span
    # every dimension
    if len(v) < deg + 2 or np.linalg.matrix_rank(v[1:] - v[0], tol=1e-9) < deg + 1:
        return None
    return v, s


def _cell_timeline(path: np.ndarray, anchor: np.ndarray, timeline: np.ndarray) -> np.ndarray:
    """Sharpen the timeline on ambiguous rows with what the anchors' *cells* say.

    The regression timeline treats each anchor's frame as a noisy sample of the true BG
    position (±0.5 frame of rounding); near a frame boundary its error (a few tenths
    of a frame) decides between two near-identical neighbours. But an anchor matched to
    frame ``k`` says more: the position lies *inside* ``[k - 0.5, k + 0.5)`` (half
    open: FG shows the BG frame on screen at its start, and when the two start together
    that is the later one, as with 60 fps over 25 every fifth frame). The pattern of
    repeated and skipped frames of the anchors around a row pins a smooth timeline to a
    few hundredths of a frame.

    Between two neighbouring anchors every row sees the same anchors, so one polytope
    (the curves through all their cells) serves the whole gap: the range of positions
    it allows at each row is read off its vertices, and the timeline takes the middle.
    The curve is the simplest the cells allow: a line through the 20 anchors either
    side (constant rates, fps ratios and drift pin it tightest), or where no line fits
    (a ramp), a quadratic through the nearest 8. Gaps whose anchors admit neither (a
    cut, a wrong anchor), or without anchors on both sides, keep the regression.
    """
    out = timeline.copy()
    arows = np.flatnonzero(anchor)
    todo = np.flatnonzero(~anchor)
    if len(arows) < 6 or len(todo) == 0:
        return out
    # near a boundary between two frames only: those are the rows whose choice the
    # regression's error can flip
    frac = np.abs(timeline[todo] - np.round(timeline[todo]))
    sel = frac > CELL_NEAR
    todo, frac = todo[sel], frac[sel]
    gap = np.searchsorted(arows, todo)  # rows in one gap share their anchors (todo is sorted)
    qs, first = np.unique(gap, return_index=True)
    bounds = list(zip(qs, first, list(first[1:]) + [len(todo)], strict=False))
    if len(bounds) > CELL_GAPS:  # a budget: the gaps whose rows lie nearest a boundary
        nearest = np.maximum.reduceat(frac, first)
        keep = np.sort(np.argsort(-nearest, kind="stable")[:CELL_GAPS])
        bounds = [bounds[i] for i in keep]
    for q, a, b in bounds:
        rows_t = todo[a:b]
        r0 = int(rows_t[0])
        for side, deg in ((CELL_SIDE_LINE, 1), (CELL_SIDE_QUAD, 2)):
            left, right = arows[max(0, q - side):q], arows[q:q + side]
            left, right = left[r0 - left <= CELL_SPAN], right[right - rows_t[-1] <= CELL_SPAN]
            if len(left) < deg + 2 or len(right) < deg + 2:
                break
            rows = np.concatenate([left, right])
            got = _cell_vertices((rows - r0).astype(np.float64), path[rows].astype(np.float64), deg)
            if got is None:
                continue
            verts, sc = got
            u = (rows_t - r0) / sc
            vals = sum(verts[:, e][:, None] * (u[None, :] ** e) for e in range(deg + 1))
            lo_v, hi_v = vals.min(axis=0), vals.max(axis=0)
            ok = hi_v - lo_v < 1.0
            out[rows_t[ok]] = 0.5 * (lo_v[ok] + hi_v[ok])
            break
    return out


class _Pass(NamedTuple):
    path: np.ndarray  # BG frame (column) per row
    timeline: np.ndarray  # smooth fitted position per row
    anchors: np.ndarray  # rows whose match is distinct


def _two_pass(C: np.ndarray, lo: np.ndarray, kmax: int, dims: int, sigma: float,
              tie: float, tie_cost: float = 0.0, cells: bool = False,
              m: int | None = None) -> _Pass:
    """DTW, timeline through its distinct matches, DTW again with the tie-breaker.

    Only ambiguous rows (whose chosen column is no better than its neighbours beyond
    noise) feel the penalty, so distinct matches are never pulled off their frame.
    ``cells``: sharpen the penalty's timeline with :func:`_cell_timeline` (frame level).
    """
    p1 = dtw_band(C, lo, kmax)
    timeline, anchor = _timeline(C, lo, p1, sigma, dims, m)
    if cells:
        timeline = _cell_timeline(p1, anchor, timeline)
    w = C.shape[1]
    cols = lo[:, None] + np.arange(w)[None, :]
    # the penalty scales with the row's noise: its best match cost (noise energy)
    row_cost = np.maximum(C.min(axis=1), 0.0).astype(np.float64)
    weight = np.maximum(tie, tie_cost * row_cost) * (~anchor)
    pen = (weight[:, None] * (cols - timeline[:, None]) ** 2).astype(np.float32)
    p2 = dtw_band(C + pen, lo, kmax)
    timeline, anchor2 = _timeline(C, lo, p2, sigma, dims, m)
    return _Pass(p2, timeline, anchor2)


# The plain line replaces the path when at most this share of rows is distinctly better
# on the path (and at most PLAIN_ROWS rows).
PLAIN_SHARE = 0.02
PLAIN_ROWS = 3


def _plain_line(C: np.ndarray, lo: np.ndarray, path: np.ndarray, dims: int, rate: float,
                m: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(path, timeline) of the constant-rate line at ``rate`` BG frames per FG frame that
    fits the costs best, when the DTW path beats it distinctly on (almost) no row; else
    ``None``.

    "Distinctly" as for anchors: by more than the noise a row's own match cost implies.
    The line's offset is searched within three frames of the path's median offset in
    steps of a twentieth of a frame (its phase matters for fps ratios); it is the simplest
    timeline, so it wins only where the data cannot tell it from the path.
    """
    n, w = C.shape
    if n < 16:
        return None
    rows = np.arange(n)
    x = rows.astype(np.float64)
    o0 = round(float(np.median(path + 0.5 - rate * x)) * 20) / 20
    best = None
    for o in o0 + np.arange(-60, 61) / 20:
        # (+1e-9: 24 + 39.99999999999999 and 25 + 39.99999999999999 floor 2 apart)
        col = np.clip(np.floor(rate * x + o + 1e-9), 0, m - 1).astype(np.int64)
        k = col - lo
        if not ((k >= 0) & (k < w)).all():  # every row's cost must be known (the map stays in the band)
            continue
        cost = C[rows, k]
        total = float(cost.sum())
        if best is None or total < best[0]:
            best = (total, cost, o, col)
    if best is None:
        return None
    _, line_cost, o, col = best
    own = np.maximum(C[rows, path - lo], 0.0)
    distinct = int((line_cost - own > _distinct_gap(own, dims)).sum())
    if distinct > min(PLAIN_ROWS, PLAIN_SHARE * n):
        return None
    return col, rate * x + o - 0.5


def register_shift(fg: Fingerprints, bg: Fingerprints, path: np.ndarray, anchor: np.ndarray,
                   samples: int = 400, iters: int = 3) -> tuple[float, float]:
    """(dx, dy) in plane pixels such that FG moved by d, FG(x - d), matches BG(x) (Lucas-Kanade on pairs)."""
    rows = np.flatnonzero(anchor)
    if len(rows) < 8:
        rows = np.arange(fg.n)
    if len(rows) > samples:
        rows = rows[np.linspace(0, len(rows) - 1, samples).round().astype(int)]

    def unit(a: np.ndarray) -> np.ndarray:
        a = a.astype(np.float32)
        a -= a.mean(axis=(1, 2), keepdims=True)
        return a / np.maximum(a.std(axis=(1, 2), keepdims=True), 1e-3)

    F0 = fg.planes[rows].astype(np.float32)
    B = unit(bg.planes[path[rows]])
    gy, gx = np.gradient(B, axis=(1, 2))
    inner = (slice(None), slice(2, -2), slice(2, -2))
    gx, gy, B = gx[inner], gy[inner], B[inner]
    a11, a12, a22 = float((gx * gx).sum()), float((gx * gy).sum()), float((gy * gy).sum())
    det = a11 * a22 - a12 * a12
    if det <= 1e-9 * max(a11 * a22, 1e-12):
        return 0.0, 0.0
    d = np.zeros(2)
    for _ in range(iters):
        F = unit(shift_planes(F0, d[0], d[1]) if d.any() else F0)[inner]
        e = F - B
        # moving F further by s: F'(x - s) ~ F'(x) - s . grad(B); want that = B, so e = s . grad(B)
        bx, by = float((e * gx).sum()), float((e * gy).sum())
        step = np.array([(a22 * bx - a12 * by) / det, (a11 * by - a12 * bx) / det])
        d += step
        if np.abs(step).max() < 0.01:
            break
    return float(d[0]), float(d[1])


def shifted(prints: Fingerprints, shift: tuple[float, float]) -> Fingerprints:
    """A copy of ``prints`` with every plane moved by ``shift`` (new(x) = old(x - shift)), bilinear."""
    out = np.empty_like(prints.planes)
    for lo in range(0, prints.n, 2048):
        hi = min(prints.n, lo + 2048)
        out[lo:hi] = np.clip(np.rint(shift_planes(prints.planes[lo:hi], shift[0], shift[1])), 0, 255).astype(np.uint8)
    return Fingerprints(out, prints.fps)


# -- the matcher -----------------------------------------------------------------------
class _BinPath(NamedTuple):
    """The finest bin level's path: BG time (s) at each FG bin centre (s)."""

    times: np.ndarray
    bg_times: np.ndarray
    dt: float  # the bin size of the level before it (the band around it is that wide)


def _first_dt(fg: Fingerprints, bg: Fingerprints, prior: tuple[float, float] | None,
              P: TemporalParams) -> tuple[float, float]:
    """(coarse bin size, finest bin size) in seconds: the coarse FG x BG bin matrix (or
    its band around ``prior``) stays below ``coarse_cells``."""
    t_fg, t_bg = fg.n / fg.fps, bg.n / bg.fps
    frame_dt = 1.0 / min(fg.fps, bg.fps)
    dt_min = P.min_bin_frames * frame_dt
    if prior is None:
        return max(dt_min, math.sqrt(t_fg * t_bg / P.coarse_cells)), dt_min
    band = 2 * P.prior_band_s
    return max(dt_min, math.sqrt(t_fg * band / P.coarse_cells)), dt_min


def _bin_levels(fg: Fingerprints, bg: Fingerprints, prior: tuple[float, float] | None,
                P: TemporalParams) -> _BinPath:
    """Bin levels from coarse to fine, each in a band around the previous path."""
    dt, dt_min = _first_dt(fg, bg, prior, P)
    red_f, red_b = _reduced(fg, COARSE_SIZE), _reduced(bg, COARSE_SIZE)
    path_t: np.ndarray | None = None
    path_v: np.ndarray | None = None
    prev_dt = dt
    while True:
        Fb, Bb = _bin(red_f, fg.fps, dt), _bin(red_b, bg.fps, dt)
        nb, mb = len(Fb), len(Bb)
        tc = (np.arange(nb) + 0.5) * dt  # FG bin centres (s)
        if path_t is None:
            if prior is None:
                lo, w = np.zeros(nb, np.int64), mb
            else:
                centre = (prior[0] + prior[1] * tc) / dt - 0.5
                lo, w = _make_band(centre, int(math.ceil(P.prior_band_s / dt)), mb, P.kmax_bins)
        else:
            centre = _interp_path(tc, path_t, path_v) / dt - 0.5
            lo, w = _make_band(centre, int(math.ceil(P.band_bins * prev_dt / dt)) + 1, mb, P.kmax_bins)
        C = _band_costs(lambda a, b, Fb=Fb: Fb[a:b], lambda a, b, Bb=Bb: Bb[a:b], lo, w, P.chunk)
        # the tie-breaker matters here too: a held shot is a run of equal bins, and a path
        # wandering through it would put the next level's band in the wrong place
        pb = _two_pass(C, lo, P.kmax_bins, Fb.shape[1], max(2.0, P.fit_window_s / dt), P.tie, P.tie_cost,
                       m=mb).path
        path_t, path_v = tc, (pb + 0.5) * dt
        if dt <= dt_min * 1.0001:
            return _BinPath(path_t, path_v, prev_dt)
        prev_dt, dt = dt, max(dt_min, dt / P.level_factor)


class _FrameMatch(NamedTuple):
    """The frame-level match: costs over the band, and the path through them."""

    costs: np.ndarray  # (N, w) 1 - correlation of FG row i with BG lo[i] + k
    lo: np.ndarray
    path: np.ndarray
    timeline: np.ndarray
    anchors: np.ndarray  # (N,) bool: rows distinctly matched


class _FrameLevel(NamedTuple):
    match: _FrameMatch
    fg: Fingerprints  # FG's fingerprints it was made with (re-registered ones, or as given)
    notes: list[str]


def _frame_level(fg: Fingerprints, bg: Fingerprints, bins: _BinPath, P: TemporalParams) -> _FrameLevel:
    """Frame-level DTW in a band around the bin path, FG's planes re-registered once when
    they are off by a fraction of a pixel."""
    n, m = fg.n, bg.n
    centre = _interp_path((np.arange(n) + 0.5) / fg.fps, bins.times, bins.bg_times) * bg.fps - 0.5
    slope_local = np.gradient(centre) if n > 1 else np.ones(1)
    smax = float(np.percentile(slope_local, 99)) if n > 1 else 1.0
    kmax = int(max(2, math.ceil(1.5 * smax) + 1))
    hw = int(math.ceil(P.band_bins * bins.dt * bg.fps)) + P.band_frames
    lo, w = _make_band(centre, hw, m, kmax)
    dims = int(fg.planes.shape[1] * fg.planes.shape[2])
    sigma = max(2.0, P.fit_window_s * fg.fps)

    def match(fgp: Fingerprints) -> _FrameMatch:
        C = _band_costs(fgp.vectors, bg.vectors, lo, w, P.chunk)
        return _FrameMatch(C, lo, *_two_pass(C, lo, kmax, dims, sigma, P.tie, P.tie_cost, cells=P.cells, m=m))

    fm = match(fg)
    notes: list[str] = []
    # The footprint crop is whole pixels from a coarse placement: a fraction of a
    # fingerprint pixel of misregistration already rivals the change between
    # neighbouring frames in slow pans. Estimate the residual shift from the matched
    # pairs, move FG's planes by it, and match again (no re-decode).
    if P.register:
        shift = register_shift(fg, bg, fm.path, fm.anchors)
        if max(abs(shift[0]), abs(shift[1])) > 0.03:
            fg = shifted(fg, shift)
            fm = match(fg)
            notes.append(f"registered FG fingerprints by ({shift[0]:+.2f}, {shift[1]:+.2f}) px")
    return _FrameLevel(fm, fg, notes)


class _Line(NamedTuple):
    """BG time = offset_s + rate * FG time (s), and the RMS residual in BG frames."""

    offset_s: float
    rate: float
    residual_frames: float


def _global_line(path: np.ndarray, weights: np.ndarray, covered: np.ndarray, fg_fps: float,
                 bg_fps: float) -> _Line:
    """Weighted least-squares line in seconds between frame centres (see Temporal)."""
    n = len(path)
    wline = weights.copy()
    wline[~covered] = 0
    if wline.sum() <= 0:
        wline = covered.astype(np.float64) + 1e-9
    xs = (np.arange(n) + 0.5) / fg_fps
    ys = (path + 0.5) / bg_fps
    wsum = wline.sum()
    xm, ym = (wline * xs).sum() / wsum, (wline * ys).sum() / wsum
    sxx = (wline * (xs - xm) ** 2).sum()
    rate = float((wline * (xs - xm) * (ys - ym)).sum() / sxx) if sxx > 0 else 1.0
    offset = float(ym - rate * xm)
    resid = float(np.sqrt((wline * (ys - offset - rate * xs) ** 2).sum() / wsum) * bg_fps)
    return _Line(offset, rate, resid)


def align_visual(fg: Fingerprints, bg: Fingerprints, *, prior: tuple[float, float] | None = None,
                 params: TemporalParams | None = None) -> TemporalResult:
    """Frame map of ``fg`` onto ``bg``; ``prior`` = (offset_s, rate) from audio, if any."""
    P = params or TemporalParams()
    n, m = fg.n, bg.n
    # (FG's planes as matched: re-registered ones, when they were)
    (C, lo, path, timeline, anchors), fg, notes = _frame_level(fg, bg, _bin_levels(fg, bg, prior, P), P)
    # Where nothing tells neighbouring frames apart (a talking head through heavy
    # distortion), the path follows noise and its timeline a drift that is not there: the
    # plain line at the nominal rate wins when the path is distinctly better on almost
    # no row.
    dims = int(fg.planes.shape[1] * fg.planes.shape[2])
    line = _plain_line(C, lo, path, dims, (bg.fps / fg.fps) * (prior[1] if prior is not None else 1.0), m)
    if line is not None:
        path, timeline = line
        anchors = np.zeros(n, bool)
        notes.append("no frame told its neighbours apart: the map is the constant-rate line that fits best")
    sim = (1.0 - C[np.arange(n), path - lo]).astype(np.float32)
    # uncovered: the smooth timeline (extrapolated where matches are poor) leaves BG. A
    # row on a frame edge exactly (the middle of the cells its anchors allow) is read as
    # the later frame at both ends, within rounding: the last bit of it (in the audio
    # prior, say) must not decide whether FG's first or last rows are covered.
    edge = 1e-6
    uncovered = np.flatnonzero((timeline < -0.5 - edge) | (timeline >= m - 0.5 - edge))
    covered = np.ones(n, bool)
    covered[uncovered] = False
    fit = _global_line(path, anchors.astype(np.float64) if anchors.any() else np.ones(n), covered, fg.fps, bg.fps)
    conf = _confidence(fg, bg, path, sim, covered)
    return TemporalResult(frame_map=path, similarity=sim, confidence=conf, offset_s=fit.offset_s, rate=fit.rate,
                          residual_frames=fit.residual_frames, uncovered=uncovered, timeline=timeline,
                          related=conf >= P.min_confidence, notes=notes)


def _confidence(fg: Fingerprints, bg: Fingerprints, path: np.ndarray, sim: np.ndarray,
                covered: np.ndarray, samples: int = 48) -> float:
    """How much better the chosen BG frames are than BG frames far from the path.

    For a sample of FG frames, the best correlation with ``samples`` BG frames away from
    the path is the 'chance' level; confidence is the median margin of the chosen match
    over chance, scaled so 0.2 of margin (or a perfect match) reads as 1.
    """
    m = bg.n
    idx = np.flatnonzero(covered)
    if len(idx) == 0:
        return 0.0
    rng = np.random.default_rng(0)
    pick = idx if len(idx) <= 256 else np.sort(rng.choice(idx, 256, replace=False))
    def vec(prints: Fingerprints, rows: np.ndarray) -> np.ndarray:
        return normalise(area_reduce(prints.planes[rows], COARSE_SIZE).reshape(len(rows), -1))

    F = vec(fg, pick)
    far = max(8, int(round(bg.fps)))  # at least a second away
    cand = rng.integers(0, m, size=(len(pick), samples))
    need = np.unique(np.concatenate([path[pick], cand.ravel()]))
    B = vec(bg, need)
    pos = {int(j): q for q, j in enumerate(need)}
    chosen = np.einsum("rd,rd->r", F, B[[pos[int(path[i])] for i in pick]])
    margins = np.empty(len(pick), np.float32)
    for r, i in enumerate(pick):
        c = cand[r][np.abs(cand[r] - path[i]) > far]
        if len(c) == 0:
            margins[r] = 1.0 - chosen[r]
            continue
        margins[r] = chosen[r] - float(np.max(B[[pos[int(j)] for j in c]] @ F[r]))
    med_sim = float(np.median(sim[covered]))
    m_med = float(np.median(margins))
    # a near-perfect match is confident even when BG repeats itself (loops, static shots)
    return float(np.clip(max(m_med / 0.2, (med_sim - 0.9) / 0.08), 0.0, 1.0))
