"""Edits in the time map: BG shots FG never shows (inserts, ad breaks), FG spans BG lacks
(cut scenes), shots BG shows in another order.

The banded DTW of :mod:`.temporal` gives one monotonic map, exact on a continuous pair.
Here BG is cut into its shots (:mod:`.shots`) and each BG shot is found in FG on its own
(a subsequence match of the shot against all of FG): a shot FG does not show is an
insert; FG frames no BG shot covers are uncovered; shots whose FG spans come in another
order than BG's are a reorder. Only when that structure is not the plain one (every BG
shot in FG, in order, end to end) is the map rebuilt piece by piece: each BG shot's FG
span matched against that shot alone, so the map may jump at shot boundaries and never
inside a shot. The plain case keeps the continuous map untouched.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .fingerprint import Fingerprints, from_planes
from .settings import TemporalParams
from .temporal import TemporalResult, align_visual

__all__ = ["Piece", "Edited", "bg_pieces", "is_plain", "edited_map", "suspicious"]

MIN_PIECE = 3  # BG frames: a shorter BG shot is not matched on its own
RUN_K = 4  # frames each side whose median offset says where a BG shot's FG frames jump


class Piece(NamedTuple):
    """BG frames ``bg[0]..bg[1]`` (half-open), a BG shot, showing FG frames ``fg[0]..fg[1]``
    (half-open; None when FG does not show the shot)."""

    bg: tuple[int, int]
    fg: tuple[int, int] | None
    confidence: float


class Edited(NamedTuple):
    frame_map: np.ndarray  # (N,) BG frame per FG frame (uncovered: the nearest covered frame's)
    similarity: np.ndarray  # (N,) float32
    uncovered: np.ndarray  # FG frames no BG shot shows
    line: tuple[float, float]  # (offset_s, rate) of the piece covering most of FG
    pieces: list[Piece]


def _sub(fp: Fingerprints, lo: int, hi: int) -> Fingerprints:
    return from_planes(fp.planes[lo:hi], fp.fps)


def suspicious(frame_map: list[int], similarity: list[float], uncovered: list[int], fg_cuts: list[int],
               bg_cuts: list[int], fg_fps: float, bg_fps: float) -> bool:
    """Whether the continuous map may hide an edit: it runs over a BG cut where FG has none
    (a splice: BG jumps inside FG's shot), or a run of frames matches much worse than the
    rest (an insert or a missing span the path had to cross)."""
    if not bg_cuts:
        return False
    fmap = np.asarray(frame_map)
    tol = 2 + int(math.ceil(fg_fps / bg_fps))
    fg_c = np.asarray(fg_cuts, np.int64)
    for j in bg_cuts:
        rows = np.flatnonzero((fmap[:-1] < j) & (fmap[1:] >= j)) + 1  # FG frames where the path enters BG shot j
        for i in rows.tolist():
            if not len(fg_c) or np.min(np.abs(fg_c - i)) > tol:
                return True
    sim = np.asarray(similarity, np.float64)
    covered = np.ones(len(sim), bool)
    covered[np.asarray(uncovered, np.int64)] = False
    s = sim[covered]
    if len(s) < 8:
        return False
    med = float(np.median(s))
    mad = float(np.median(np.abs(s - med)))
    low = covered & (sim < med - max(0.1, 8 * 1.4826 * mad))
    run = np.diff(np.concatenate([[0], low.astype(np.int8), [0]]))
    lengths = np.flatnonzero(run == -1) - np.flatnonzero(run == 1)
    return bool(len(lengths) and lengths.max() >= max(3, int(0.2 * fg_fps)))


def bg_pieces(fg: Fingerprints, bg: Fingerprints, bg_shots: list[tuple[int, int]], params: TemporalParams,
              good_similarity: float) -> list[Piece]:
    """Each BG shot found in FG (or not): a subsequence match of the shot against FG. A
    shot whose match is well below ``good_similarity`` (what the pair's true matches
    reach) is not in FG; one whose FG frames jump inside it is split there (BG was cut
    inside a shot: the FG frames between are missing from BG) and each part found anew."""
    out: list[Piece] = []
    for a, b in bg_shots:
        found = _find(fg, bg, a, b, params, good_similarity)
        if found is None:
            out.append(Piece((a, b), None, 0.0))
            continue
        r, shown = found
        parts = _runs(_best_fg(fg, bg, a + shown, np.asarray(r.frame_map)[shown]), fg.fps / bg.fps)
        if len(parts) == 1:
            out.append(_piece(fg, bg, a, r, shown))
            continue
        for lo, hi in parts:
            a2, b2 = a + int(shown[lo]), a + int(shown[hi - 1]) + 1
            part = _find(fg, bg, a2, b2, params, good_similarity)
            out.append(_piece(fg, bg, a2, *part) if part is not None else Piece((a2, b2), None, 0.0))
    return out


def _find(fg: Fingerprints, bg: Fingerprints, a: int, b: int, params: TemporalParams,
          good_similarity: float) -> tuple[TemporalResult, np.ndarray] | None:
    """BG frames a..b matched against all of FG, and the ones FG shows; None when FG does
    not show them."""
    if b - a < MIN_PIECE:
        return None
    r = align_visual(_sub(bg, a, b), fg, params=params)
    shown = np.setdiff1d(np.arange(b - a), np.asarray(r.uncovered, np.int64))
    if not r.related or len(shown) == 0 or float(np.median(np.asarray(r.similarity)[shown])) < good_similarity:
        return None
    return r, shown


def _piece(fg: Fingerprints, bg: Fingerprints, a: int, r: TemporalResult, shown: np.ndarray) -> Piece:
    f = np.asarray(r.frame_map)[shown]
    # FG frames past the last one a BG frame shows that still show its content (BG slower)
    ext = max(0, int(math.ceil(fg.fps / bg.fps - 1e-6)) - 1)
    return Piece((a + int(shown[0]), a + int(shown[-1]) + 1), (int(f.min()), min(fg.n, int(f.max()) + 1 + ext)),
                 float(r.confidence))


def _best_fg(fg: Fingerprints, bg: Fingerprints, bg_frames: np.ndarray, path: np.ndarray) -> np.ndarray:
    """Each BG frame's best FG frame near ``path`` (its matched FG frame), on its own: the
    DTW path spreads a jump over the frames around it, a frame's own best match does not."""
    w = int(round(3 * fg.fps))
    lo = np.clip(path - w, 0, max(0, fg.n - 2 * w - 1))
    span = min(fg.n, 2 * w + 1)
    fv = fg.vectors()
    bv = bg.vectors(int(bg_frames.min()), int(bg_frames.max()) + 1)[bg_frames - bg_frames.min()]
    cand = fv[lo[:, None] + np.arange(span)[None, :]]  # (L, span, D)
    return lo + np.argmax(np.einsum("lsd,ld->ls", cand, bv), axis=1)


def _runs(best: np.ndarray, step: float) -> list[tuple[int, int]]:
    """Splits of a BG shot where its FG frames jump forward beyond what the rates allow
    (BG was cut inside the shot), as index ranges. Each side's offset from the rate line
    is the median of a few frames, so a single noisy best match splits nothing; of the
    positions around a jump, the one between the two cleanest sides is the cut."""
    n = len(best)
    off = best - step * np.arange(n)
    k = RUN_K
    if n < 2 * k:
        return [(0, n)]
    tol = 3 + 2 * step
    pos = np.arange(k, n - k + 1)
    gap = np.array([np.median(off[p:p + k]) - np.median(off[p - k:p]) for p in pos])
    hot = gap > tol
    cuts = []
    for run in np.split(np.arange(len(pos)), np.flatnonzero(np.diff(hot.astype(np.int8))) + 1):
        if not hot[run[0]]:
            continue
        p0, p1 = int(pos[run[0]]), int(pos[run[-1]])
        left, right = np.median(off[p0 - k:p0]), np.median(off[p1:p1 + k])
        # the split that leaves each frame nearest its own side's offset
        seg = off[p0 - k:p1 + k]
        cand = np.arange(p0, p1 + 1)
        cost = [np.abs(seg[:c - p0 + k] - left).sum() + np.abs(seg[c - p0 + k:] - right).sum() for c in cand]
        cuts.append(int(cand[int(np.argmin(cost))]))
    return [(lo, hi) for lo, hi in zip([0, *cuts], [*cuts, n])]


def is_plain(pieces: list[Piece], gap: int) -> bool:
    """Every BG shot between the first and last one FG shows is in FG, in order, end to end
    (within ``gap`` frames): what one continuous map describes."""
    shown = [k for k, p in enumerate(pieces) if p.fg is not None]
    if not shown:
        return True
    inner = pieces[shown[0]:shown[-1] + 1]
    if any(p.fg is None for p in inner):
        return False  # a BG shot FG never shows, between two it does: an insert
    return all(abs(q.fg[0] - p.fg[1]) <= gap for p, q in zip(inner[:-1], inner[1:]))


def edited_map(fg: Fingerprints, bg: Fingerprints, pieces: list[Piece], params: TemporalParams) -> Edited:
    """The map rebuilt from the BG shots FG shows: each one's FG span matched against that
    BG shot alone; where two claim an FG frame, the better match wins."""
    n = fg.n
    fmap = np.full(n, -1, np.int64)
    sim = np.full(n, -np.inf, np.float32)
    best_cover, line = -1, (0.0, fg.fps / bg.fps)
    margin = max(3, int(round(0.2 * bg.fps)))
    for p in pieces:
        if p.fg is None:
            continue
        (a, b), (fa, fb) = p.bg, p.fg
        # against the BG shot and a few frames beyond: a path pinned to the band's edge
        # loses its last frames (the frames beyond show other content: never chosen)
        a, b = max(0, a - margin), min(bg.n, b + margin)
        r = align_visual(_sub(fg, fa, fb), _sub(bg, a, b), params=params)
        m = np.clip(np.asarray(r.frame_map), 0, b - a - 1) + a
        s = np.nan_to_num(np.asarray(r.similarity, np.float32), nan=0.0)
        better = s > sim[fa:fb]
        fmap[fa:fb][better] = m[better]
        sim[fa:fb][better] = s[better]
        if fb - fa > best_cover:
            # the line in whole-clip seconds: FG t0 = fa / fps, BG t0 = a / fps
            best_cover = fb - fa
            line = (r.offset_s + a / bg.fps - r.rate * fa / fg.fps, r.rate)
    uncovered = np.flatnonzero(fmap < 0)
    sim[uncovered] = 0.0
    if len(uncovered) < n:
        # an uncovered frame's entry: the nearest covered frame's BG frame (what a held BG shows)
        cov = np.flatnonzero(fmap >= 0)
        pos = np.searchsorted(cov, uncovered)
        nxt = cov[np.clip(pos, 0, len(cov) - 1)]
        prev = cov[np.clip(pos - 1, 0, len(cov) - 1)]
        pick = np.where(np.abs(prev - uncovered) <= np.abs(nxt - uncovered), prev, nxt)
        fmap[uncovered] = fmap[pick]
    else:
        fmap[:] = 0
    return Edited(fmap, sim, uncovered, line, pieces)
