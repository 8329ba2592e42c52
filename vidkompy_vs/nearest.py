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

Only FG frames no BG frame shows (within noise: :func:`_gap`) and that share their BG
frame with a neighbour, or lie within a couple of rows of such a pair (the frame BG
lacks may be the one the map gave a BG frame of its own), are moved, within their shot
and a couple of BG frames of the map: elsewhere the map stands as it is. A frame on a
BG frame whose content position is not known (its best match is worse than the shot's
exact level) is never moved: there is no ground to say that BG frame shows other
content (a 30 fps FG over 25 fps, FG's repeated frames on such a BG frame, was moved
off it).

Where several FG frames match a BG frame within noise (near-still content), its
position is the one that keeps sample and hold along the run of BG frames: BG frame j
shows FG frame floor(P(j)) with P advancing at the map's local rate r, so a position
steps by floor(r) or ceil(r) from one BG frame to the next (:func:`_positions`; r counted
from each BG frame's first FG frame, so that a held last frame does not raise it).

Near-still content needs one more fact: whether FG's frames there are pictures of their
own or repeats. A frame FG repeats matches the BG frame showing its picture as well as
the original does, and so, within the fingerprints' noise, does a distinct frame a
fraction of a grey level away; neither the fingerprints nor full-size pictures through
two lossy encodes tell the two apart (measured: a 60-over-30 FG's copies differ by 0.3-0.5
grey levels, a near-still shot's distinct frames by 0.15-0.45). Where FG moves, repeats
show (:func:`_copies`: a step to the next frame no larger than an exact match costs, far
below the steps around it), and a shot's share of them says which it is
(:func:`_distinct`): with r FG frames per BG frame and a share q of repeats, FG has
r (1 - q) pictures per BG frame, 1 where BG has all of FG's pictures and FG's extra
frames repeat them (a higher frame rate, a slow motion), r where FG's frames are all
distinct and BG lacks some; the shot is taken for the nearer (a shot with too little
motion to judge: FG's share over all its shots). Where FG's frames are distinct, a BG
frame shows only the frame at its position (and the repeats seen of it), so every frame
near a shared BG frame goes to the BG frame whose position is nearest in content (FG's
pictures counted, a seen repeat as one with its original), then in time, then the
earlier (:func:`_distinct_moves`; onto a BG frame showing its own picture only where it
matches that one better than its map's). Elsewhere only frames no BG frame shows within
noise move, as above, and a repeat stays with its original.

Limit: the positions themselves come from the fingerprints and the step model; where two
neighbouring FG frames match a BG frame within noise and either step fits the model, a
position may be one frame off, and a frame next to it with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from .fingerprint import Fingerprints, normalise

__all__ = ["Nearest", "nearest_content"]

REACH = 2  # BG frames either side of the map an FG frame may move to (and match over)
# A BG frame's content position counts only where its best match is as good as the
# shot's typical exact match within this factor: a BG frame showing a picture FG does
# not have (past FG's ends, a frame of another shot) has no position in FG.
EXACT_LEVEL = 3.0
RATE_WINDOW = 4  # BG frames either side over which the map's local rate is counted
# FG's repeated frames (:func:`_copies`): a step below COPY_STEP of the largest of the
# COPY_WINDOW steps either side, where that one is above MOVING times the exact level;
# at least MIN_MOVING such steps in a shot to judge it (else FG's as a whole)
COPY_STEP = 0.2
COPY_WINDOW = 2
MOVING = 8.0
MIN_MOVING = 10
CHUNK = 1024  # FG frames per batch of vectors
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
    use = [(a, e, np.arange(a, e)[covered[a:e]]) for a, e in shots]
    # (a map that runs backward inside a shot is no timeline to count on)
    use = [(a, e, rows) for a, e, rows in use if len(rows) >= 3 and not np.any(np.diff(old[rows]) < 0)]
    copies = {(a, e): _copies(sc, old, rows, a, e) for a, e, rows in use}
    pooled = np.sum([c.counts for c in copies.values()], axis=0) if copies else np.zeros(2)
    for a, e, rows in use:
        cp = copies[(a, e)]
        counts = cp.counts if cp.counts[0] >= MIN_MOVING else pooled
        content = cp.content if _distinct(counts, rows, old) else None
        for i, j in _moves(sc, old, rows, bg.n, content).items():
            fmap[i] = j
            sim[i] = float(sc.fg([i])[0] @ sc.bg([j])[0])
    return Nearest(fmap, sim, int(np.count_nonzero(fmap != old)))


class _Scale(NamedTuple):
    fg: Vectors
    bg: Vectors
    dims: int  # values per vector (the noise model's D)


def _moves(sc: _Scale, fmap: np.ndarray, rows: np.ndarray, n_bg: int,
           content: np.ndarray | None = None) -> dict[int, int]:
    """One shot's covered ``rows`` (sorted; map nondecreasing): FG frame -> BG frame for
    the frames to move (module doc). ``content``: where FG's frames are distinct pictures
    (:func:`_distinct`), each row's picture number (:func:`_copies`)."""
    rmap = fmap[rows]
    # Where the map runs one to one, a frame is only a noisy match (a moving window, a
    # blurred BG), left be; BG lacks pictures where FG frames share a BG frame (fewer BG
    # pictures than FG frames), and the frame it lacks may be a neighbour of those.
    rep = np.zeros(len(rows), bool)
    rep[1:] |= rmap[1:] == rmap[:-1]
    rep[:-1] |= rmap[:-1] == rmap[1:]
    if not rep.any():
        return {}
    rep = np.convolve(np.pad(rep, REACH), np.ones(2 * REACH + 1), "valid") > 0
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
    gap = _gap(np.where(ok, best, 0.0).clip(0.0), sc.dims)
    tied = [cand[cost <= best[k] + gap[k]] if ok[k] else cand[:0] for k, (cand, cost) in enumerate(near)]
    pos = _positions(pos, ok, tied, near, _rate(rmap, rows, lo, span))
    if content is not None:
        return _distinct_moves(sc, rows, rmap, rep, lo, hi, ok, pos, content)
    shown = np.zeros(len(rows), bool)  # rows some BG frame shows (within noise)
    for k in np.flatnonzero(ok).tolist():
        shown[np.searchsorted(rows, tied[k])] = True
    moves: dict[int, int] = {}
    for t in np.flatnonzero(rep & ~shown).tolist():
        i, j0 = int(rows[t]), int(rmap[t])
        if not ok[j0 - lo]:
            continue  # on a BG frame whose content is not known: no ground to move it
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


def _distinct_moves(sc: _Scale, rows: np.ndarray, rmap: np.ndarray, rep: np.ndarray, lo: int, hi: int,
                    ok: np.ndarray, pos: np.ndarray, content: np.ndarray) -> dict[int, int]:
    """Where FG's frames are distinct pictures (:func:`_distinct`): each FG frame near a
    shared BG frame onto the BG frame whose position is nearest in content (``content``:
    per row, FG's pictures counted with its repeats seen as one), then in time, then the
    earlier."""
    moves: dict[int, int] = {}
    at = np.full(len(ok), -1, np.int64)
    at[ok] = np.searchsorted(rows, pos[ok])
    for t in np.flatnonzero(rep).tolist():
        i, j0 = int(rows[t]), int(rmap[t])
        if not ok[j0 - lo]:
            continue  # on a BG frame whose content is not known: no ground to move it
        ks = np.arange(max(lo, j0 - REACH), min(hi, j0 + REACH + 1)) - lo
        ks = ks[ok[ks]]
        if not len(ks):
            continue
        d = np.abs(content[at[ks]] - content[t])
        k = int(ks[np.lexsort((ks, np.abs(pos[ks] - i), d))][0])
        if lo + k == j0:
            continue
        if d.min() == 0:  # a picture BG shows: only where the FG frame matches it better
            c = 1.0 - sc.bg([lo + k, j0]) @ sc.fg([i])[0]
            if c[0] >= c[1]:
                continue
        moves[i] = lo + k
    return moves


class _Copies(NamedTuple):
    counts: np.ndarray  # (moving steps, copy steps)
    content: np.ndarray  # (len(rows),) per row its picture's number: a repeat shares its neighbour's


def _copies(sc: _Scale, fmap: np.ndarray, rows: np.ndarray, a: int, e: int) -> _Copies:
    """FG's repeated frames in shot [a, e) where motion shows them: a step (FG frame to
    the next, in fingerprint cost) no larger than an exact FG-BG match costs (the shot's
    exact level: a repeat differs by FG's own coding noise) and far below the steps
    around it, which lie well above that level (in still content a repeat is not told
    apart; and a step only small next to its neighbours may be fine detail moving, which
    the fingerprints do not see)."""
    steps = np.zeros(max(0, e - a - 1))
    match = np.zeros(len(rows))
    for c0 in range(0, e - a, CHUNK):
        idx = list(range(a + c0, min(e, a + c0 + CHUNK + 1)))
        v = sc.fg(idx)
        steps[c0:c0 + len(idx) - 1] = 1.0 - np.sum(v[:-1] * v[1:], axis=1)
    for c0 in range(0, len(rows), CHUNK):
        r = rows[c0:c0 + CHUNK]
        match[c0:c0 + len(r)] = 1.0 - np.sum(sc.fg(r.tolist()) * sc.bg(fmap[r].tolist()), axis=1)
    level = max(float(np.quantile(match, 0.25)), 0.0)
    n = len(steps)
    pad = np.pad(steps, COPY_WINDOW)
    around = np.zeros(n)
    for d in range(1, COPY_WINDOW + 1):
        around = np.maximum(around, np.maximum(pad[COPY_WINDOW - d:COPY_WINDOW - d + n],
                                               pad[COPY_WINDOW + d:COPY_WINDOW + d + n]))
    moving = around > MOVING * level
    rep = moving & (steps < COPY_STEP * around) & (steps <= level)
    content = np.concatenate([[0], np.cumsum(~rep)])
    return _Copies(np.array([int(moving.sum()), int(rep.sum())]), content[rows - a])


def _distinct(counts: np.ndarray, rows: np.ndarray, fmap: np.ndarray) -> bool:
    """Whether FG shows a picture of its own on (nearly) every frame of the shot rather
    than repeats: with r FG frames per BG frame (the map's) and a share q of FG's steps
    repeats (``counts``: moving steps, repeats among them), FG has r (1 - q) pictures per
    BG frame: 1 where BG has every picture FG has (FG's extra frames repeats: a higher
    frame rate, a slow motion), r where FG's frames are all distinct and BG lacks some.
    The nearer of the two (a footage's own occasional repeated frame does not make FG's
    frames repeats)."""
    moving, reps = int(counts[0]), int(counts[1])
    span = int(fmap[rows[-1]] - fmap[rows[0]])
    if moving < MIN_MOVING or span <= 0:
        return False
    r = (int(rows[-1]) - int(rows[0])) / span
    return r > 1.0 and r * (1.0 - reps / moving) > 0.5 * (r + 1.0)


def _rate(rmap: np.ndarray, rows: np.ndarray, lo: int, span: int) -> np.ndarray:
    """(span,) FG frames per BG frame around each BG frame of the span, from the map."""
    out = np.ones(span)
    for k in range(span):
        j = lo + k
        a, b = max(j - RATE_WINDOW, int(rmap[0])), min(j + RATE_WINDOW, int(rmap[-1]))
        if b > a:
            # from the first row on BG frame a to the first on b: each BG frame counted
            # once from its start (its last rows would count a held end frame's whole
            # hold and no BG frame's time for it)
            r0, r1 = np.searchsorted(rmap, a), np.searchsorted(rmap, b)
            out[k] = (rows[r1] - rows[r0]) / (b - a) if r1 > r0 else 1.0
    return out


def _positions(pos: np.ndarray, ok: np.ndarray, tied: list[np.ndarray], near: list[tuple[np.ndarray, np.ndarray]],
               rate: np.ndarray) -> np.ndarray:
    """Each BG frame's content position: where other FG frames match it as well as its best
    within noise (near-still content), the choice along each run of known BG frames that
    best keeps sample and hold: BG frame j shows FG frame floor(P(j)), P advancing at the
    map's local rate r, so from one BG frame to the next the position steps by floor(r)
    or ceil(r). Fewest steps off that first, then the least cost."""
    pos = pos.copy()
    k = 0
    span = len(pos)
    while k < span:
        if not ok[k]:
            k += 1
            continue
        e = k
        while e < span and ok[e]:
            e += 1
        if any(len(tied[q]) > 1 for q in range(k, e)):
            _run_positions(pos, k, e, tied, near, rate)
        k = e
    return pos


def _run_positions(pos: np.ndarray, a: int, e: int, tied: list[np.ndarray],
                   near: list[tuple[np.ndarray, np.ndarray]], rate: np.ndarray) -> None:
    costs = []
    for q in range(a, e):
        cand, cost = near[q]
        costs.append(cost[np.isin(cand, tied[q])].astype(np.float64))
    score = [np.zeros(len(tied[a]), np.int64)]  # steps off the model so far
    total = [costs[0]]
    back: list[np.ndarray] = []
    for q in range(a + 1, e):
        prev, cur = tied[q - 1], tied[q]
        r = 0.5 * (rate[q - 1] + rate[q])
        step = cur[:, None] - prev[None, :]
        off = ((step < np.floor(r)) | (step > np.ceil(r))).astype(np.int64)
        s = score[-1][None, :] + off
        t = total[-1][None, :] + costs[q - a][:, None]
        # lexicographic (steps off, cost): cost differences are far below 1
        key = s + t / (1.0 + float(np.max(t)))
        arg = np.argmin(key, axis=1)
        rr = np.arange(len(cur))
        score.append(s[rr, arg])
        total.append(t[rr, arg])
        back.append(arg)
    c = int(np.argmin(score[-1] + total[-1] / (1.0 + float(np.max(total[-1])))))
    for q in range(e - 1, a - 1, -1):
        pos[q] = tied[q][c]
        if q > a:
            c = int(back[q - a - 1][c])


def _plane_vectors(fp: Fingerprints) -> Vectors:
    # per frame as needed: a whole shot's vectors at once would cost gigabytes on hours of FG
    def get(idx: list[int]) -> np.ndarray:
        p = fp.planes[np.asarray(idx, np.int64)]
        return normalise(p.reshape(len(p), -1))
    return get


def _gap(cost: np.ndarray, dims: int) -> np.ndarray:
    """The cost difference beyond noise (:func:`..temporal._distinct_gap`) without its
    absolute floor of 1e-4: in near-still content the matches cost a few 1e-5, and that
    floor made every neighbouring frame "shown"; the model's own terms scale with the
    match's cost (measured: the right neighbour was then told apart on every frame of
    the ramp's near-still end)."""
    return np.maximum(np.minimum(3.0 * np.sqrt(4.0 * cost / dims), 0.5 * cost), 1e-9)
