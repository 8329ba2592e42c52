"""FG frames whose own picture BG lacks, on the BG frame showing the nearest content.

A BG with fewer pictures than FG over a span (24 fps under a 60 fps FG, a speed ramp
that skips) cannot show every FG frame's picture. The map's match puts such an FG
frame on the BG frame that correlates best with it, which may be one a step further
away: correlation is no measure of how far apart two pictures lie in the footage.

FG is the master, so the distance is counted in FG frames: each BG frame shows one of
FG's pictures (its *content position*: the FG frame it matches best, near the map), and
an FG frame that no BG frame shows goes to the BG frame whose position is nearest to
it. On a tie the earlier one: a frame is shown from its time on until the next (sample
and hold, as a camera, a display or a frame-dropping conversion does), so of two BG
frames as far in content the earlier one's time lies nearer.

Only FG frames no BG frame shows (within noise, as :mod:`.temporal` judges a distinct
match) and that share their BG frame with a neighbour are moved, within their shot and a
couple of BG frames of the map: elsewhere the map stands as it is.

Limit: in near-still content, frames a grey level or less apart, the fingerprints (and,
measured, 160 px pictures of the footprint through two lossy encodes) cannot tell which
of two neighbouring frames a BG frame shows; the map's own choice stands there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from .fingerprint import Fingerprints, normalise
from .temporal import _distinct_gap

__all__ = ["Nearest", "nearest_content"]

REACH = 2  # BG frames either side of the map an FG frame may move to (and match over)
# A BG frame's content position counts only where its best match is as good as the
# shot's typical exact match within this factor: a BG frame showing a picture FG does
# not have (past FG's ends, a frame of another shot) has no position in FG.
EXACT_LEVEL = 3.0
Vectors = Callable[[list[int]], np.ndarray]


class Nearest(NamedTuple):
    frame_map: np.ndarray  # (N,) int64
    similarity: np.ndarray  # (N,) float32: the pair's correlation, for moved frames too
    moved: int  # FG frames moved


def nearest_content(fg: Fingerprints, bg: Fingerprints, frame_map: np.ndarray, covered: np.ndarray,
                    shots: list[tuple[int, int]], similarity: np.ndarray) -> Nearest:
    """The map with each covered FG frame that no BG frame shows moved onto the BG frame
    showing the nearest content (module doc); ``shots``: FG shots (half-open ranges)."""
    old = np.asarray(frame_map, np.int64)
    fmap = old.copy()
    sim = np.asarray(similarity, np.float32).copy()
    sc = _Scale(_plane_vectors(fg), _plane_vectors(bg), fg.planes[0].size)
    for a, e in shots:
        rows = np.arange(a, e)[covered[a:e]]
        if len(rows) < 3 or np.any(np.diff(old[rows]) < 0):
            continue  # (a map that runs backward inside a shot is no timeline to count on)
        for i, j in _moves(sc, old, rows, bg.n).items():
            fmap[i] = j
            sim[i] = float(sc.fg([i])[0] @ sc.bg([j])[0])
    return Nearest(fmap, sim, int(np.count_nonzero(fmap != old)))


class _Scale(NamedTuple):
    fg: Vectors
    bg: Vectors
    dims: int  # values per vector (the noise model's D)


def _moves(sc: _Scale, fmap: np.ndarray, rows: np.ndarray, n_bg: int) -> dict[int, int]:
    """One shot's covered ``rows`` (sorted; map nondecreasing): FG frame -> BG frame for
    the frames to move (module doc)."""
    rmap = fmap[rows]
    lo, hi = max(0, int(rmap[0]) - REACH), min(n_bg, int(rmap[-1]) + REACH + 1)
    span = hi - lo
    pos = np.full(span, -1, np.int64)  # content position (FG frame) per BG frame, -1: none
    best = np.full(span, np.inf)
    cut_off = np.zeros(span, bool)  # the best lies where the rows it may match were cut off
    near: list[tuple[np.ndarray, np.ndarray]] = []
    for k in range(span):
        j = lo + k
        r0, r1 = np.searchsorted(rmap, j - REACH), np.searchsorted(rmap, j + REACH, side="right")
        cand = rows[r0:r1]
        cost = 1.0 - sc.fg(cand.tolist()) @ sc.bg([j])[0] if len(cand) else np.zeros(0, np.float32)
        near.append((cand, cost))
        if len(cand):
            i = int(np.argmin(cost))
            best[k], pos[k] = cost[i], cand[i]
            cut_off[k] = (i == 0 and r0 > 0) or (i == len(cand) - 1 and r1 < len(rows))
    ok = pos >= 0
    if not ok.any():
        return {}
    # (a low quantile: some BG frames may lie past a cut or FG's ends)
    level = max(float(np.quantile(best[ok], 0.25)), 0.0)
    # at the exact level; where the best lies at a cut-off edge (the content may lie
    # beyond), only as good as the typical exact match
    ok &= (best <= EXACT_LEVEL * level + 1e-4) & (~cut_off | (best <= level + 1e-4))
    gap = _distinct_gap(np.where(ok, best, 0.0).clip(0.0), sc.dims)
    shown = np.zeros(len(rows), bool)  # rows some BG frame shows (within noise)
    for k in np.flatnonzero(ok).tolist():
        cand, cost = near[k]
        shown[np.searchsorted(rows, cand[cost <= best[k] + gap[k]])] = True
    # An FG frame whose picture BG lacks shares its BG frame with a neighbour on the map
    # (there are fewer BG pictures than FG frames there); where the map runs one to one,
    # a frame not "shown" is only a noisy match (a moving window, a blurred BG), left be.
    rep = np.zeros(len(rows), bool)
    rep[1:] |= rmap[1:] == rmap[:-1]
    rep[:-1] |= rmap[:-1] == rmap[1:]
    moves: dict[int, int] = {}
    for t in np.flatnonzero(rep & ~shown).tolist():
        i, j0 = int(rows[t]), int(rmap[t])
        ks = np.arange(max(lo, j0 - REACH), min(hi, j0 + REACH + 1)) - lo
        ks = ks[ok[ks]]
        below, above = ks[pos[ks] < i], ks[pos[ks] > i]
        # the nearest on each side in content; on the same content, the nearer in time
        kb = below[np.lexsort((-below, -pos[below]))][0] if len(below) else None
        ka = above[np.lexsort((above, pos[above]))][0] if len(above) else None
        if kb is None and ka is None:
            continue
        k = kb if ka is None or (kb is not None and i - pos[kb] <= pos[ka] - i) else ka
        if lo + int(k) != j0:
            moves[i] = lo + int(k)
    return moves


def _plane_vectors(fp: Fingerprints) -> Vectors:
    # per frame as needed: a whole shot's vectors at once would cost gigabytes on hours of FG
    def get(idx: list[int]) -> np.ndarray:
        p = fp.planes[np.asarray(idx, np.int64)]
        return normalise(p.reshape(len(p), -1))
    return get
