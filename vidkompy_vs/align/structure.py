"""The fifth stage: the pair's structure. Shots in FG and BG from the fingerprints, edits
in the time map (inserted, missing and reordered shots: :mod:`..edits`), and the shots
the alignment file records."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..alignment import Shot, Spatial, Temporal
from ..edits import bg_pieces, edited_map, is_plain, suspicious
from ..shots import find_cuts, shot_ranges
from .footprint import Context
from .matching import Match
from .prints import Prints


class Structure(NamedTuple):
    fg_shots: list[tuple[int, int]]  # FG frame ranges (half-open)
    match: Match  # the map, with its edits when there are any


def structure_stage(ctx: Context, prints: Prints | None, found: Match) -> Structure:
    """Shots, and the map rebuilt piece by piece when the pair is edited."""
    if prints is None or found.temporal.method == "start":
        return Structure([(0, ctx.fg.probe.frames)], found)
    fg_cuts = find_cuts(prints.fg.planes).starts
    bg_cuts = find_cuts(prints.bg.planes).starts
    t = found.temporal
    fg_fps, bg_fps = prints.fg.fps, prints.bg.fps
    fg_shots = shot_ranges(fg_cuts, prints.fg.n)
    if not suspicious(t.frame_map, t.similarity, t.uncovered, fg_cuts, bg_cuts, fg_fps, bg_fps):
        return Structure(fg_shots, found)
    ctx.run.trace("structure check")
    params = ctx.settings.temporal
    pieces = bg_pieces(prints.fg, prints.bg, shot_ranges(bg_cuts, prints.bg.n), params, _good_similarity(t))
    gap = 1 + int(np.ceil(fg_fps / bg_fps))
    if is_plain(pieces, gap):
        ctx.run.trace("structure: plain")
        return Structure(fg_shots, found)
    ed = edited_map(prints.fg, prints.bg, pieces, params)
    ctx.run.trace(f"structure: edited ({sum(p.fg is None for p in pieces)} BG shots FG does not show, "
                  f"{len(ed.uncovered)} FG frames BG lacks)")
    temporal = Temporal(frame_map=[int(v) for v in ed.frame_map],
                        similarity=[round(float(v), 4) for v in ed.similarity], confidence=t.confidence,
                        method=t.method, offset_s=float(ed.line[0]), rate=float(ed.line[1]),
                        uncovered=[int(v) for v in ed.uncovered])
    # the refinement measured the continuous map's pairs: once more on these
    return Structure(fg_shots, Match(temporal, found.spatial, found.prior, False))


def _good_similarity(t: Temporal) -> float:
    """What the continuous map's good matches reach: a BG shot matching worse than this is
    not in FG (the map's worst rows are the edits' own, so a robust level of the rest)."""
    sim = np.asarray(t.similarity, np.float64)
    keep = np.ones(len(sim), bool)
    keep[np.asarray(t.uncovered, np.int64)] = False
    s = sim[keep] if keep.any() else sim
    med = float(np.median(s))
    mad = 1.4826 * float(np.median(np.abs(s - med)))
    return med - max(0.05, 6 * mad)


def shots_of(fg_shots: list[tuple[int, int]], temporal: Temporal, spatial: Spatial) -> list[Shot]:
    """The alignment file's shots: each FG shot's BG range, placement and confidence."""
    fmap = np.asarray(temporal.frame_map, np.int64)
    sim = np.asarray(temporal.similarity, np.float64)
    unc = np.zeros(len(fmap), bool)
    unc[np.asarray(temporal.uncovered, np.int64)] = True
    out = []
    for a, b in fg_shots:
        cov = ~unc[a:b]
        seg = fmap[a:b][cov] if cov.any() else fmap[a:b]
        x, y, s = spatial.at(a)
        out.append(Shot(fg_start=a, fg_end=b, bg_start=int(seg.min()), bg_end=int(seg.max()) + 1, x=float(x),
                        y=float(y), scale=float(s),
                        confidence=round(float(np.median(sim[a:b][cov])) if cov.any() else 0.0, 4),
                        active=spatial.active))
    return out
