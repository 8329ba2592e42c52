"""The fifth stage: the pair's structure. Shots in FG and BG from the fingerprints, edits
in the time map (inserted, missing and reordered shots: :mod:`..edits`), and the shots
the alignment file records."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

from ..alignment import Shot, Spatial, Temporal
from ..edits import bg_pieces, chunked, covered_mask, edited_map, good_similarity, is_plain, suspicious
from ..fingerprint import Fingerprints
from ..nearest import nearest_content
from ..shots import find_cuts, shot_ranges
from ..temporal import register_shift, shifted
from .footprint import Context
from .matching import Match
from .prints import Prints
from .run import log


class Structure(NamedTuple):
    fg_shots: list[tuple[int, int]]  # FG frame ranges (half-open)
    match: Match  # the map, with its edits when there are any


def structure_stage(ctx: Context, prints: Prints | None, found: Match) -> Structure:
    """Shots, and the map rebuilt piece by piece when the pair is edited."""
    if prints is None or found.similarity is None:
        return Structure([(0, ctx.fg.probe.frames)], found)
    fg_cuts = find_cuts(prints.fg.planes).starts
    bg_cuts = find_cuts(prints.bg.planes).starts
    t = found.temporal
    fg_fps, bg_fps = prints.fg.fps, prints.bg.fps
    fg_shots = shot_ranges(fg_cuts, prints.fg.n)
    unrelated = t.method == "start"  # no continuous map: an edited pair matches nowhere end to end
    if not unrelated and not suspicious(t.frame_map, t.similarity, t.uncovered, fg_cuts, bg_cuts, fg_fps, bg_fps):
        return Structure(fg_shots, found)
    ctx.run.trace("structure check")
    params = ctx.settings.temporal
    good = good_similarity(found.similarity, t.uncovered)
    fg = _registered(prints, t, good)
    pieces = bg_pieces(fg, prints.bg, chunked(shot_ranges(bg_cuts, prints.bg.n), bg_fps), params, good)
    log.debug("BG pieces (good similarity %.3f): %s", good, [(p.bg, p.fg) for p in pieces])
    gap = 1 + int(np.ceil(fg_fps / bg_fps))
    if is_plain(pieces, gap) and not unrelated:
        ctx.run.trace("structure: plain")
        return Structure(fg_shots, found)
    ed = edited_map(fg, prints.bg, pieces, params, good)
    if unrelated and len(ed.uncovered) > prints.fg.n // 2:
        return Structure(fg_shots, found)  # most of FG in no BG shot: unrelated after all
    ctx.run.trace(f"structure: edited ({sum(p.fg is None for p in pieces)} BG shots FG does not show, "
                  f"{len(ed.uncovered)} FG frames BG lacks)")
    temporal = Temporal(frame_map=[int(v) for v in ed.frame_map],
                        similarity=[round(float(v), 4) for v in ed.similarity],
                        confidence=ed.confidence if unrelated else t.confidence,
                        method="visual" if unrelated else t.method, offset_s=float(ed.line[0]), rate=float(ed.line[1]),
                        uncovered=[int(v) for v in ed.uncovered])
    # the refinement measured the continuous map's pairs: once more on these
    return Structure(fg_shots, Match(temporal, found.spatial, found.prior, False))


def nearest_stage(ctx: Context, prints: Prints | None, shape: Structure) -> Structure:
    """FG frames whose own picture BG lacks, moved onto the BG frame showing the nearest
    content (:mod:`..nearest`)."""
    t = shape.match.temporal
    if prints is None or t.method in ("start", "audio"):
        return shape
    got = nearest_content(prints.fg, prints.bg, np.asarray(t.frame_map, np.int64), covered(t), shape.fg_shots,
                          np.asarray(t.similarity, np.float32))
    ctx.run.trace(f"nearest content: {got.moved} FG frames BG lacks moved")
    if not got.moved:
        return shape
    temporal = dataclasses.replace(t, frame_map=[int(v) for v in got.frame_map],
                                   similarity=[round(float(v), 4) for v in got.similarity])
    return Structure(shape.fg_shots, shape.match._replace(temporal=temporal))


def _registered(prints: Prints, t: Temporal, good: float) -> Fingerprints:
    """FG's planes moved onto BG's by the sub-pixel shift its good matches show: BG was cut
    to a footprint good to a pixel or so, and the pieces are matched on single frames and
    short spans, where a misregistration costs more than over the whole map."""
    ok = covered(t) & (np.asarray(t.similarity) >= good)
    shift = register_shift(prints.fg, prints.bg, np.asarray(t.frame_map, np.int64), ok)
    return shifted(prints.fg, shift) if max(abs(shift[0]), abs(shift[1])) > 0.03 else prints.fg


def covered(temporal: Temporal) -> np.ndarray:
    """(N,) bool: the FG frames BG covers."""
    return covered_mask(len(temporal.frame_map), temporal.uncovered)


def shot_similarity(fg_shots: list[tuple[int, int]], temporal: Temporal, min_frames: int = 1) -> np.ndarray:
    """Each FG shot's median similarity over its covered frames (NaN with fewer than
    ``min_frames`` of them)."""
    sim = np.asarray(temporal.similarity, np.float64)
    cov = covered(temporal)
    return np.array([float(np.median(sim[a:b][cov[a:b]])) if cov[a:b].sum() >= min_frames else np.nan
                     for a, b in fg_shots])


def shots_of(fg_shots: list[tuple[int, int]], temporal: Temporal, spatial: Spatial) -> list[Shot]:
    """The alignment file's shots: each FG shot's BG range, placement and confidence."""
    fmap = np.asarray(temporal.frame_map, np.int64)
    cov = covered(temporal)
    conf = np.nan_to_num(shot_similarity(fg_shots, temporal), nan=0.0)
    out = []
    for (a, b), c in zip(fg_shots, conf):
        seg = fmap[a:b][cov[a:b]] if cov[a:b].any() else fmap[a:b]
        x, y, s = spatial.at(a)
        out.append(Shot(fg_start=a, fg_end=b, bg_start=int(seg.min()), bg_end=int(seg.max()) + 1, x=float(x),
                        y=float(y), scale=float(s), confidence=round(float(c), 4), active=spatial.active))
    return out
