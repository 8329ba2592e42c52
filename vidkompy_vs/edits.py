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

__all__ = ["Piece", "Edited", "bg_pieces", "is_plain", "edited_map", "suspicious", "good_similarity", "chunked",
           "covered_mask"]

# BG shots longer than this are looked for in pieces of about this length (seconds): a
# splice in a continuous scene changes the picture no more than its motion does, and so
# is not always a cut; a piece that straddles it is split where its FG frames jump
CHUNK_S = 2.0

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
    confidence: float  # the pieces' confidence, weighted by the FG frames each covers


def _extend(fg: Fingerprints, bg: Fingerprints, fmap: np.ndarray, sim: np.ndarray, good: float) -> None:
    """Unclaimed FG frames next to a claimed one, in place: on the BG frame its line puts
    there (or one either side), while that matches at ``good`` at least."""
    rate = bg.fps / fg.fps
    slack = max(0, int(math.ceil(fg.fps / bg.fps - 1e-6)) - 1)  # FG frames one BG frame shows, less one
    for direction in (1, -1):
        order = range(fg.n) if direction == 1 else range(fg.n - 1, -1, -1)
        for i in order:
            c = i - direction
            if fmap[i] >= 0 or not 0 <= c < fg.n or fmap[c] < 0:
                continue
            j0 = int(round(fmap[c] + direction * rate))
            cand = [j for j in (j0 - 1, j0, j0 + 1) if 0 <= j < bg.n]
            if not cand:
                continue
            fi = fg.vectors(i, i + 1)[0]
            corr = np.array([float(bg.vectors(j, j + 1)[0] @ fi) for j in cand])
            k = int(np.argmax(corr))
            if corr[k] < good:
                continue
            # and that BG frame shows this FG frame, not a neighbour (a span cut from BG
            # starts with frames much like the last one BG kept)
            lo, hi = max(0, i - 2), min(fg.n, i + 3)
            mine = lo + int(np.argmax(fg.vectors(lo, hi) @ bg.vectors(cand[k], cand[k] + 1)[0]))
            if abs(mine - i) <= slack:
                fmap[i], sim[i] = cand[k], corr[k]


def _sub(fp: Fingerprints, lo: int, hi: int) -> Fingerprints:
    return from_planes(fp.planes[lo:hi], fp.fps)


def covered_mask(n: int, uncovered: list[int] | np.ndarray) -> np.ndarray:
    """(n,) bool: the FG frames not in ``uncovered``."""
    out = np.ones(n, bool)
    out[np.asarray(uncovered, np.int64)] = False
    return out


def good_similarity(similarity: list[float] | np.ndarray, uncovered: list[int] | np.ndarray) -> float:
    """What the continuous match's good rows reach: a BG shot matching worse than this is
    not in FG. From the upper part of the rows (an edited pair's continuous map is poor on
    the edited part: half of it may be wrong) and their spread."""
    sim = np.asarray(similarity, np.float64)
    keep = covered_mask(len(sim), uncovered)
    s = sim[keep] if keep.any() else sim
    upper = s[s >= np.median(s)]
    top = float(np.quantile(s, 0.75))
    mad = 1.4826 * float(np.median(np.abs(upper - np.median(upper))))
    return top - max(0.05, 6 * mad)


def suspicious(frame_map: list[int], similarity: list[float], uncovered: list[int], fg_cuts: list[int],
               bg_cuts: list[int], fg_fps: float, bg_fps: float) -> bool:
    """Whether the continuous map may hide an edit: it runs over a BG cut where FG has none
    (a splice: BG jumps inside FG's shot), it leaves FG frames uncovered (BG may show them
    elsewhere), or a run of frames matches much worse than the rest (an insert or a
    missing span the path had to cross)."""
    fmap = np.asarray(frame_map)
    tol = 2 + int(math.ceil(fg_fps / bg_fps))
    fg_c = np.asarray(fg_cuts, np.int64)
    for j in bg_cuts:
        rows = np.flatnonzero((fmap[:-1] < j) & (fmap[1:] >= j)) + 1  # FG frames where the path enters BG shot j
        for i in rows.tolist():
            if not len(fg_c) or np.min(np.abs(fg_c - i)) > tol:
                return True
    if len(uncovered) >= max(3, int(0.2 * fg_fps)):
        return True  # FG frames BG lacks, or shows elsewhere (shots in another order): look
    sim = np.asarray(similarity, np.float64)
    covered = covered_mask(len(sim), uncovered)
    s = sim[covered]
    if len(s) < 8:
        return False
    med = float(np.median(s))
    mad = float(np.median(np.abs(s - med)))
    low = covered & (sim < med - max(0.1, 8 * 1.4826 * mad))
    run = np.diff(np.concatenate([[0], low.astype(np.int8), [0]]))
    lengths = np.flatnonzero(run == -1) - np.flatnonzero(run == 1)
    return bool(len(lengths) and lengths.max() >= max(3, int(0.2 * fg_fps)))


def chunked(shots: list[tuple[int, int]], fps: float) -> list[tuple[int, int]]:
    """``shots`` with the long ones cut into about :data:`CHUNK_S` second pieces."""
    size = max(MIN_PIECE * 4, int(round(CHUNK_S * fps)))
    out = []
    for a, b in shots:
        k = max(1, int(round((b - a) / size)))
        edges = np.linspace(a, b, k + 1).round().astype(int)
        out.extend((int(lo), int(hi)) for lo, hi in zip(edges[:-1], edges[1:]) if hi > lo)
    return out


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
        best = _best_fg(fg, bg, a + shown, np.asarray(r.frame_map)[shown])
        parts = _runs(fg, bg, a + shown, best, good_similarity)
        if len(parts) == 1:
            out.append(_piece(fg, bg, a, r, shown))
            continue
        for lo, hi in parts:
            a2, b2 = a + int(shown[lo]), a + int(shown[hi - 1]) + 1
            part = _find(fg, bg, a2, b2, params, good_similarity)
            out.append(_piece(fg, bg, a2, *part) if part is not None else Piece((a2, b2), None, 0.0))
    return _joined(out, 1 + int(math.ceil(fg.fps / bg.fps)))


def _joined(pieces: list[Piece], gap: int) -> list[Piece]:
    """Neighbouring pieces that continue each other, in BG and in FG, as one (a shot cut
    into chunks to be looked for is matched whole again)."""
    out: list[Piece] = []
    for p in pieces:
        q = out[-1] if out else None
        if q is not None and q.fg is not None and p.fg is not None and q.bg[1] == p.bg[0] \
                and abs(p.fg[0] - q.fg[1]) <= gap:
            out[-1] = Piece((q.bg[0], p.bg[1]), (q.fg[0], max(q.fg[1], p.fg[1])), min(q.confidence, p.confidence))
        else:
            out.append(p)
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
    # every BG frame against the FG frames its window can reach, once (FG may be hours long)
    f0, f1 = int(lo.min()), int(lo.max()) + span
    bv = bg.vectors(int(bg_frames.min()), int(bg_frames.max()) + 1)[bg_frames - bg_frames.min()]
    corr = bv @ fg.vectors(f0, f1).T  # (L, f1 - f0)
    win = np.take_along_axis(corr, (lo - f0)[:, None] + np.arange(span)[None, :], axis=1)
    return lo + np.argmax(win, axis=1)


def _line_match(fg: Fingerprints, bg: Fingerprints, bg_frames: np.ndarray, off: float, q: int) -> float:
    """How well BG frames ``bg_frames`` (the ``q``-th and on of a shot) match the FG frames
    the line ``off`` + step * index puts under them (mean correlation)."""
    step = fg.fps / bg.fps
    f = np.clip(np.round(off + step * (q + np.arange(len(bg_frames)))).astype(np.int64), 0, fg.n - 1)
    return float(np.mean([bg.vectors(int(j), int(j) + 1)[0] @ fg.vectors(int(i), int(i) + 1)[0]
                          for j, i in zip(bg_frames, f)]))


def _runs(fg: Fingerprints, bg: Fingerprints, bg_frames: np.ndarray, best: np.ndarray,
          good: float) -> list[tuple[int, int]]:
    """Splits of a BG shot where its FG frames jump forward beyond what the rates allow
    (BG was cut inside the shot), as index ranges. Each side's offset from the rate line
    is the median of a few frames, so a single noisy best match splits nothing; of the
    positions around a jump, the one between the two cleanest sides is the cut. A jump
    counts only where the frames after it do not match on the line before it (best
    matches in a still stretch wander without any cut)."""
    n = len(best)
    step = fg.fps / bg.fps
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
        c = int(cand[int(np.argmin(cost))])
        if _line_match(fg, bg, bg_frames[c:c + k], float(left), c) < good:
            cuts.append(c)
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


def edited_map(fg: Fingerprints, bg: Fingerprints, pieces: list[Piece], params: TemporalParams,
               good_similarity: float) -> Edited:
    """The map rebuilt from the BG shots FG shows: each one's FG span matched against that
    BG shot alone; where two claim an FG frame, the better match wins. FG frames next to a
    span that no span claims follow its line while they match as well as the pair's good
    rows (a BG shot overlapping FG by a few frames at FG's ends is too short to be found
    on its own)."""
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
    _extend(fg, bg, fmap, sim, good_similarity)
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
    shown = [p for p in pieces if p.fg is not None]
    weights = [p.fg[1] - p.fg[0] for p in shown]
    conf = float(np.average([p.confidence for p in shown], weights=weights)) if shown and sum(weights) else 0.0
    return Edited(fmap, sim, uncovered, line, pieces, round(conf, 4))
