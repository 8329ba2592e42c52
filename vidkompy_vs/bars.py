"""Bars baked into FG: letterbox, pillarbox, windowbox. The docstrings are the manual.

A bar is a band along an edge of the frame that is constant: flat across its length in
every frame (low spatial spread), the same in every frame (low temporal spread) and one
level across the band (any level: digital black 0, limited-range black 16, grey, ...),
while the picture next to it varies. FG's *active area* is what is left, ``[x, y, w, h]``
in FG pixels; the overlay lays only that over BG, so BG shows through where FG has bars.

The tests are made on whole rows and columns, with the *maximum over frames* of each
line's spread: one frame with picture in a line makes it picture. So a dark scene (a
night sky, a fade) is a bar only if it stays flat and unchanged in every frame given;
give frames from across the clip (or the shot). Tolerances are also relative to the
picture's own activity (a dim, low-contrast picture gets stricter ones), and a band must
end at a sharp edge: full picture within two lines of it (on the planes: the cell after
the part-bar one as far from the bar's level as the next), where a dark gradient, a
vignette or a dark sky creeps up over several lines.

Limits: a line with subtitles or a logo in the bar is picture, so the bar ends there
(the picture area then keeps those lines); a border crushed to one level in every frame
given and ending in a sharp edge is, by this definition, a bar.

Two ways in:

- :func:`detect_active` on grey frames (full size, or any size: the answer is in the
  frames' pixels), e.g. a few dozen frames decoded across the clip;
  :func:`detect_active_per_shot` when the bars change from shot to shot.
- From what the prepass already has: :func:`coarse_active` on the fingerprint planes
  (``Fingerprints.planes``, (N, 36, 64) grey, every FG frame: strong over time, coarse in
  space) then :func:`refine_active` on a few full-size grey FG frames (exact edges);
  :func:`active_from_prints` / :func:`active_per_shot_from_prints` do both.

Every answer is rounded *inward* (the active area never includes a bar line) and, with
``mod=2`` (the default), to even x, y, w, h so a 4:2:0 FG crops exactly there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Coarse", "detect_active", "detect_active_per_shot", "coarse_active", "refine_active",
           "active_from_prints", "active_per_shot_from_prints"]

Active = list[int]  # [x, y, w, h]

# A band may cover at most this share of its dimension on one side (a windowbox at half
# size has 25 %); the picture left over must be at least MIN_PICTURE of it.
MAX_BAR = 0.4
MIN_PICTURE = 0.15


@dataclass(frozen=True)
class Tol:
    """Tolerances in grey levels (8-bit) for one kind of input."""

    flat: float  # max spatial std along a bar line, in any frame
    still: float  # max change over frames of a bar line's mean
    level: float  # max distance of a bar line's mean from the band's level
    floor: float  # the relative tolerances never go below this
    edge: int  # at most this many lines of codec ringing past a band's edge count as bar


# Full-size frames keep codec noise and ringing; fingerprint cells average it away.
FULL = Tol(flat=2.5, still=3.0, level=4.0, floor=0.75, edge=6)
PLANES = Tol(flat=1.5, still=2.5, level=3.0, floor=0.5, edge=2)
# a bar thinner than a cell, seen only in a few full frames: codec noise (about one level
# either way) but no more
STRICT = Tol(flat=2.0, still=1.5, level=2.0, floor=0.75, edge=6)


@dataclass(frozen=True)
class Coarse:
    """What the fingerprint planes say about FG's bars, in FG pixels.

    ``bars`` = (top, bottom, left, right): each bar is at least this wide (whole cells of
    constant level). ``limit``: no bar is wider than this (the first cell where picture
    showed, plus a margin). ``estimate``: each bar's width from how much the cell where the
    picture starts is dimmed towards the bar's level (within about a pixel on real footage;
    0 where there is no bar). ``levels``: each bar's grey level in the planes (None where
    none was seen). ``size`` = FG's (width, height), ``cell`` a plane cell's.
    """

    size: tuple[int, int]
    bars: tuple[int, int, int, int]
    limit: tuple[int, int, int, int]
    levels: tuple[float | None, float | None, float | None, float | None]
    estimate: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    cell: tuple[float, float] = (20.0, 20.0)  # a plane cell's (width, height) in FG pixels

    def active(self, mod: int = 2) -> Active | None:
        """The coarse answer alone (no full frames to refine with, e.g. a 10-bit FG): the
        area inside the estimated bars plus a margin of a tenth of a cell, rounded inward,
        so a pixel or two of picture may be left out but no bar is laid over BG."""
        return _area(*self.sides(), *self.size, mod)

    def sides(self) -> list[int]:
        """(top, bottom, left, right) bar widths of :meth:`active`, before rounding."""
        cw, ch = self.cell
        cells = (ch, ch, cw, cw)
        return [min(lim, max(lo, math.ceil(e + 0.1 * c))) if lo else 0
                for lo, lim, e, c in zip(self.bars, self.limit, self.estimate, cells, strict=True)]


# -- statistics ---------------------------------------------------------------------
def _stack(frames: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """(N, H, W) from an array or a list of 2-D frames; colour frames are averaged to grey."""
    a = frames if isinstance(frames, np.ndarray) else np.stack([np.asarray(f) for f in frames])
    if a.ndim == 2:
        a = a[None]
    if a.ndim == 4:
        a = a.mean(axis=3)
    if a.ndim != 3 or a.shape[0] == 0:
        raise ValueError(f"frames must be (N, H, W) grey, got shape {a.shape}")
    return a


def _line_stats(a: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per line (rows: ``axis=2``, columns: ``axis=1``) of (N, H, W) frames: the maximum
    over frames of the spread along the line, the range over frames of the line's mean,
    and the mean level. Chunks of frames keep the wider copy small at full size. 8-bit
    frames are summed in integers (sum and sum of squares, exact): 1.7 times as fast as
    a float two-pass spread on 720p frames, and exact where that one is off in its last
    bits."""
    step = max(1, 8_000_000 // max(1, a.shape[1] * a.shape[2]))
    n = a.shape[axis]
    means, stds = [], []
    for lo in range(0, a.shape[0], step):
        if a.dtype == np.uint8:
            c = a[lo:lo + step].astype(np.uint16)
            s1 = c.sum(axis=axis, dtype=np.int64)
            np.multiply(c, c, out=c)  # (255 squared fits in 16 bits)
            s2 = c.sum(axis=axis, dtype=np.int64)
            means.append((s1 / n).astype(np.float32))
            stds.append(np.sqrt((n * s2 - s1 * s1) / float(n * n)).astype(np.float32))
            continue
        f = a[lo:lo + step].astype(np.float32)
        means.append(f.mean(axis=axis))
        stds.append(f.std(axis=axis))
    m, s = np.concatenate(means), np.concatenate(stds)
    return s.max(axis=0), m.max(axis=0) - m.min(axis=0), m.mean(axis=0)


def _band(flat: np.ndarray, still: np.ndarray, level: np.ndarray, tol: Tol, act: float,
          motion: float) -> tuple[int, bool]:
    """How many lines, from index 0 inward, are constant (no cap on the width), and
    whether picture starts sharply after them (a bar's edge, not a dark gradient)."""
    n = len(flat)
    # dim pictures get stricter tolerances: a bar must be far flatter than the picture
    t_flat = min(tol.flat, max(tol.floor, 0.1 * act))
    t_still = min(tol.still, max(tol.floor, 0.2 * motion))
    ok = (flat <= t_flat) & (still <= t_still) & (np.abs(level - level[0]) <= tol.level)
    k = n if ok.all() else int(np.argmin(ok))
    if k == 0 or k == n:
        return k, False
    # codec ringing next to the edge: lines still at the bar's level, a little less flat,
    # are bar too (the active area is rounded inward)
    loose = (flat <= min(4 * t_flat, max(t_flat, 0.2 * act))) & (still <= tol.still)
    loose &= np.abs(level - level[0]) <= tol.level
    stop = min(n, k + tol.edge)
    while k < stop and loose[k]:
        k += 1
    # a clear edge: in the next two lines, picture as busy as a quarter of the typical
    # line (a dark gradient, a vignette, creeps over the tolerance instead)
    nxt = slice(k, min(n, k + 2))
    busy = flat[nxt].max() >= max(0.25 * act, 2 * t_flat) or still[nxt].max() >= max(0.25 * motion, 2 * t_still)
    return k, bool(busy)


def _bands(a: np.ndarray, tol: Tol) -> tuple[tuple[int, int, int, int], tuple[float | None, ...]]:
    """(top, bottom, left, right) bar widths in lines of (N, H, W) frames, and each bar's
    level (None where there is no bar).

    Rows are measured between the side bars and columns between the top and bottom
    ones, twice over, so a windowbox's bars of two levels are each seen on their own.
    """
    _, h, w = a.shape
    t = b = left = r = 0
    for _ in range(2):
        rows = _line_stats(a[:, :, left:w - r], axis=2)
        act, motion = float(np.median(rows[0])), float(np.median(rows[1]))
        t = _capped(_band(*rows, tol, act, motion), h)
        b = _capped(_band(*(v[::-1] for v in rows), tol, act, motion), h)
        cols = _line_stats(a[:, t:h - b, :], axis=1)
        act, motion = float(np.median(cols[0])), float(np.median(cols[1]))
        left = _capped(_band(*cols, tol, act, motion), w)
        r = _capped(_band(*(v[::-1] for v in cols), tol, act, motion), w)
    if h - t - b < MIN_PICTURE * h or w - left - r < MIN_PICTURE * w:
        return (0, 0, 0, 0), (None,) * 4
    levels = tuple(float(line) if k else None
                   for k, line in ((t, rows[2][0]), (b, rows[2][-1]), (left, cols[2][0]), (r, cols[2][-1])))
    return (t, b, left, r), levels


def _capped(band: tuple[int, bool], n: int) -> int:
    """A bar: a band with a sharp edge, at most MAX_BAR of its dimension (wider: a flat scene)."""
    k, sharp = band
    return k if sharp and k <= MAX_BAR * n else 0


def _area(t: int, b: int, left: int, r: int, w: int, h: int, mod: int) -> Active | None:
    """[x, y, w, h] inside bars of these widths, rounded inward to multiples of ``mod``."""
    if not (t or b or left or r):
        return None
    x0, y0 = -(-left // mod) * mod, -(-t // mod) * mod
    x1, y1 = (w - r) // mod * mod, (h - b) // mod * mod
    if x1 <= x0 or y1 <= y0:
        return None
    return [int(x0), int(y0), int(x1 - x0), int(y1 - y0)]


# -- full-size frames ---------------------------------------------------------------
def detect_active(frames: np.ndarray | Sequence[np.ndarray], *, mod: int = 2, max_frames: int = 48) -> Active | None:
    """FG's picture area ``[x, y, w, h]`` (in the frames' pixels) inside bars baked into
    ``frames``, or None when there are none.

    ``frames``: (N, H, W) grey uint8 (or a list of 2-D frames; (N, H, W, 3) is averaged
    to grey), ideally from across the clip: a line is a bar only if it is constant in
    every frame, so more frames from more scenes make a dark scene less likely to pass
    for a bar. At most ``max_frames``, evenly spaced, are used. Bars of any constant level
    count (0, 16, grey); a band that would leave less than 15 % of the frame is not one.
    The area is rounded inward to multiples of ``mod`` (2: exact crops on 4:2:0).
    """
    a = _stack(frames)
    if a.shape[0] > max_frames:
        a = a[np.linspace(0, a.shape[0] - 1, max_frames).round().astype(int)]
    (t, b, left, r), _ = _bands(a, FULL)
    return _area(t, b, left, r, a.shape[2], a.shape[1], mod)


def detect_active_per_shot(frames: np.ndarray | Sequence[np.ndarray], shot_bounds: Sequence[tuple[int, int]], *,
                           mod: int = 2, min_frames: int = 4) -> list[Active | None]:
    """:func:`detect_active` for each shot ``(start, end)`` (end exclusive, indices into
    ``frames``). The bars all frames share are bars in every shot, so each shot's area
    lies inside the answer for all frames together; a shot with fewer than
    ``min_frames`` frames gets that answer, as its own would rest on too little."""
    a = _stack(frames)
    whole = detect_active(a, mod=mod)
    out: list[Active | None] = []
    for s, e in shot_bounds:
        s, e = max(0, int(s)), min(a.shape[0], int(e))
        out.append(_intersect(detect_active(a[s:e], mod=mod), whole) if e - s >= min_frames else whole)
    return out


# -- fingerprint planes + a few full-size frames --------------------------------------
def coarse_active(planes: np.ndarray, size: tuple[int, int], *, max_frames: int = 3000) -> Coarse:
    """Bars as seen on the fingerprint planes (``Fingerprints.planes``: (N, h, w) grey of
    every FG frame, 64x36 by default) of an FG of ``size`` = (width, height) pixels.

    Planes see every frame (a dark scene rarely survives the whole clip) but only whole
    cells: ``bars`` counts the cells of constant level, ``limit`` ends one and a half cells
    further (the cell where the picture starts may be part bar). At most ``max_frames``
    planes, evenly spaced, are read (an hour at 25 fps in about a quarter of a second).
    """
    a = _stack(planes)
    if a.shape[0] > max_frames:
        a = a[np.linspace(0, a.shape[0] - 1, max_frames).round().astype(int)]
    (t, b, left, r), levels = _bands(a, PLANES)
    # a bar's edge is sharp: the cell after the (part-bar) first picture cell is as far
    # from the bar's level as the one after it; a vignette or a dark sky crushed to one
    # level in every frame keeps rising for several cells
    rows = a[:, :, left:a.shape[2] - r].astype(np.float32).mean(axis=2)
    cols = a[:, t:a.shape[1] - b, :].astype(np.float32).mean(axis=1)
    t, b = (k if _sharp(m, k) else 0 for k, m in ((t, rows), (b, rows[:, ::-1])))
    left, r = (k if _sharp(m, k) else 0 for k, m in ((left, cols), (r, cols[:, ::-1])))
    levels = tuple(v if k else None for v, k in zip(levels, (t, b, left, r), strict=True))
    fw, fh = size
    ch, cw = fh / a.shape[1], fw / a.shape[2]

    def px(k: int, cell: float, dim: int) -> tuple[int, int]:
        return int(math.floor(k * cell)), min(int(MAX_BAR * dim), int(math.ceil((k + 1.5) * cell)))

    (bt, lt), (bb, lb), (bl, ll), (br, lr) = px(t, ch, fh), px(b, ch, fh), px(left, cw, fw), px(r, cw, fw)
    # the cell where the picture starts says how much of it is bar
    est = (_partial(rows, t) * ch, _partial(rows[:, ::-1], b) * ch, _partial(cols, left) * cw,
           _partial(cols[:, ::-1], r) * cw)
    return Coarse(size=(fw, fh), bars=(bt, bb, bl, br), limit=(lt, lb, ll, lr), levels=levels, estimate=est,
                  cell=(cw, ch))


def _sharp(means: np.ndarray, k: int) -> bool:
    """Whether (N, L) line means, ``k`` bar lines first, step from the bar to a picture
    that stays at one distance from the bar's level (lines k+1, k+2: measured 0.87-1.05 on
    real bars; a vignette 0.24-0.46)."""
    if k == 0 or k + 2 >= means.shape[1]:
        return k > 0
    level = means[:, :k].mean()
    near, far = np.abs(means[:, k + 1] - level).sum(), np.abs(means[:, k + 2] - level).sum()
    return bool(near >= 0.6 * far)


def _partial(means: np.ndarray, k: int) -> float:
    """A bar's width in cells, from (N, L) line means with ``k`` whole bar lines first: line
    ``k`` is a mix of bar and picture, its distance from the bar's level over all frames a
    fraction of line ``k + 1``'s (all picture); that fraction is the picture's share."""
    if k == 0 or k + 1 >= means.shape[1]:
        return float(k)
    level = means[:, :k].mean()
    near, far = np.abs(means[:, k] - level).sum(), np.abs(means[:, k + 1] - level).sum()
    share = float(np.clip(near / far, 0.0, 1.0)) if far > 1e-3 * means.shape[0] else 1.0
    return k + 1 - share


def refine_active(coarse: Coarse, frames: Sequence[np.ndarray] | np.ndarray, *, mod: int = 2) -> Active | None:
    """Exact bar edges from a few full-size grey FG frames, within what ``coarse`` allows.

    Each edge is searched from the frame's border up to ``coarse.limit``: rows (columns)
    that are flat in every frame and at the bars' level are bar. Where the planes saw a bar
    the answer is never narrower than ``coarse.bars``; where they saw none, a bar thinner
    than a cell (e.g. 1.85:1 in 16:9) is taken only when these frames show it with a clear
    edge. No frames: :meth:`Coarse.active`. Rounded inward to ``mod``.
    """
    if frames is None or len(frames) == 0:
        return coarse.active(mod)
    a = _stack(frames)
    fh, fw = a.shape[1], a.shape[2]
    if (fw, fh) != coarse.size:
        raise ValueError(f"frames are {fw}x{fh}; the coarse answer is for {coarse.size[0]}x{coarse.size[1]}")
    lim_t, lim_b, lim_l, lim_r = coarse.limit
    # lines are judged inside the other axis' limits, where no other bar can be
    inner = a[:, lim_t:fh - lim_b, lim_l:fw - lim_r]
    if inner.size == 0:
        return coarse.active(mod)
    inner_stats = _line_stats(inner, axis=2)
    act = float(np.median(inner_stats[0]))
    motion = float(np.median(inner_stats[1])) if a.shape[0] > 1 else math.inf
    # (only the lines an edge search can reach: each line's figures are its own)
    n = [min(lim + FULL.edge, fh if i < 2 else fw) for i, lim in enumerate(coarse.limit)]
    rows = _ends(a[:, :, lim_l:fw - lim_r], 1, n[0], n[1])
    cols = _ends(a[:, lim_t:fh - lim_b, :], 2, n[2], n[3])
    found = []
    for i, stats in enumerate((*rows, *cols)):
        flat, still, level = (v[:n[i]] for v in stats)
        found.append(_edge(flat, still, level, act, motion, coarse.bars[i], coarse.limit[i], coarse.sides()[i]))
    return _area(*found, fw, fh, mod)


def _ends(a: np.ndarray, axis: int, first: int, last: int) -> tuple[tuple, tuple]:
    """:func:`_line_stats` of the first ``first`` and the last ``last`` lines of (N, H, W)
    frames along ``axis`` (1: rows, 2: columns), each counted from its own border."""
    lines = a.shape[axis]
    along = 2 if axis == 1 else 1
    if first + last >= lines:
        whole = _line_stats(a, axis=along)
        return whole, tuple(v[::-1] for v in whole)
    head = _line_stats(a.take(range(first), axis=axis), axis=along)
    tail = _line_stats(a.take(range(lines - 1, lines - 1 - last, -1), axis=axis), axis=along)
    return head, tail


def _edge(flat: np.ndarray, still: np.ndarray, level: np.ndarray, act: float, motion: float, lo: int,
          hi: int, guess: int) -> int:
    """One bar's exact width in full-size frames, given that the planes vouch for ``lo``
    lines and allow at most ``hi``.

    With few frames the temporal test is weak, so a bar no cell vouches for must be flat
    to the floor. Constant lines up to the limit: these frames are dark there, keep the
    planes' word (``guess``, their estimate). An edge that is not sharp past ``lo``: a gradient (a
    vignette, a dark sky the planes took for a bar), no bar. Not even ``lo`` constant
    lines (grain in a scanned bar): the planes' ``lo``. (The planes' levels are not
    compared: their grey conversion may rescale the range.)
    """
    tol = FULL if lo else STRICT
    k, sharp = _band(flat, still, level, tol, act, motion)
    if k >= hi:
        return guess if lo else 0
    if k < lo:
        return lo
    return k if sharp else 0


def active_from_prints(planes: np.ndarray, size: tuple[int, int],
                       frames: Mapping[int, np.ndarray] | Sequence[np.ndarray] | None = None, *,
                       mod: int = 2) -> Active | None:
    """FG's active area from the prepass' data: :func:`coarse_active` on ``planes`` (every
    FG frame) refined by :func:`refine_active` on ``frames`` (a few full-size grey FG
    frames: ``Fingerprints.frames`` or a list)."""
    full = list(frames.values()) if isinstance(frames, Mapping) else frames
    return refine_active(coarse_active(planes, size), full if full is not None else [], mod=mod)


def active_per_shot_from_prints(planes: np.ndarray, size: tuple[int, int], shot_bounds: Sequence[tuple[int, int]],
                                frames: Mapping[int, np.ndarray] | None = None, *, mod: int = 2,
                                min_frames: int = 12, max_frames: int = 600) -> list[Active | None]:
    """:func:`active_from_prints` per FG shot ``(start, end)`` (end exclusive, FG frame
    numbers = indices into ``planes``); ``frames`` maps FG frame numbers to full-size grey
    frames and each shot is refined with those inside it.

    The bars the whole clip shares are bars in every shot, so each shot's area lies inside
    the whole clip's (a dark shot cannot lose them); a shot with fewer than ``min_frames``
    planes gets the whole clip's area. At most ``max_frames`` planes a shot are read
    (evenly spaced)."""
    frames = frames or {}
    whole = active_from_prints(planes, size, frames, mod=mod)
    out: list[Active | None] = []
    for s, e in shot_bounds:
        s, e = max(0, int(s)), min(len(planes), int(e))
        if e - s < min_frames:
            out.append(whole)
            continue
        inside = [f for i, f in frames.items() if s <= i < e]
        own = refine_active(coarse_active(planes[s:e], size, max_frames=max_frames), inside, mod=mod)
        out.append(_intersect(own, whole))
    return out


def _intersect(a: Active | None, b: Active | None) -> Active | None:
    """The area inside both (None: the whole frame)."""
    if a is None or b is None:
        return b if a is None else a
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    return [x0, y0, max(0, x1 - x0), max(0, y1 - y0)]
