"""The last stage: a placement per shot where the framing changes between shots
(pan-and-scan: FG's window jumps at each cut).

The map is made on BG cut to one footprint; a shot framed elsewhere still matches in time
(its crop overlaps), but worse than the shots framed there. Those shots are placed anew
on one matched pair of their own (a search of the whole BG frame) and refined on their
own pairs; ``spatial.track`` then carries one ``[x, y, scale]`` per FG frame and jumps at
those cuts.
"""

from __future__ import annotations

import numpy as np

from ..alignment import Spatial, Temporal
from ..errors import VidkompyError
from ..sources import frame_arrays
from .footprint import Context
from .structure import shot_similarity

# a shot whose matches are this much below the best shots' is checked at full size
SHOT_SIM_DROP = 0.02
# at most this many shots are checked (the worst first): each costs two random reads
MAX_CHECKED = 24
# a shot's own placement replaces the clip's when it moves FG by more than this (BG px)
MOVED_PX = 2.0


def shot_placements(ctx: Context, fg_shots: list[tuple[int, int]], temporal: Temporal, spatial: Spatial) -> Spatial:
    """``spatial`` with a per-shot track where some shots are framed elsewhere."""
    if len(fg_shots) < 2 or ctx.req.manual or spatial.method in ("same-size", "center", "manual") \
            or temporal.method in ("start", "audio"):
        return spatial
    suspects = _suspects(fg_shots, temporal)
    if not suspects:
        return spatial
    ctx.run.trace(f"checking {len(suspects)} shot(s) for their own framing")
    placed: dict[int, Spatial] = {}
    for k in suspects:
        try:
            got = _place_shot(ctx, fg_shots[k], temporal, spatial)
        except VidkompyError:
            raise
        except Exception as e:  # noqa: BLE001 - the clip's placement stands for that shot
            ctx.run.fell_back(f"shot {k} placement skipped ({type(e).__name__}: {e})")
            got = None
        if got is not None:
            placed[k] = got
    if not placed:
        return spatial
    track = np.array([spatial.at(i) for i in range(ctx.fg.probe.frames)], np.float64)
    for k, sp in placed.items():
        a, b = fg_shots[k]
        track[a:b] = [sp.at(i) for i in range(b - a)]
    x, y, s = (float(v) for v in np.median(track, axis=0))
    ctx.run.trace(f"{len(placed)} shot(s) placed on their own")
    return Spatial(x=x, y=y, scale=s, confidence=spatial.confidence, method="shots",
                   track=[[float(v) for v in row] for row in track], active=spatial.active)


def _suspects(fg_shots: list[tuple[int, int]], temporal: Temporal) -> list[int]:
    med_a = shot_similarity(fg_shots, temporal, min_frames=3)
    if np.all(np.isnan(med_a)):
        return []
    best = float(np.nanmax(med_a))
    bad = [k for k in np.argsort(med_a) if not np.isnan(med_a[k]) and med_a[k] < best - SHOT_SIM_DROP]
    return [int(k) for k in bad[:MAX_CHECKED]]


def _place_shot(ctx: Context, shot: tuple[int, int], temporal: Temporal, spatial: Spatial) -> Spatial | None:
    """The shot's own placement: a whole-frame search on its middle pair, refined on its
    own pairs; None when it is where the clip's is (or nothing clear is found)."""
    from ..spatial import estimate, refine_from_clips

    a, b = shot
    unc = set(temporal.uncovered)
    cov = [i for i in range(a, b) if i not in unc]
    i = cov[len(cov) // 2]
    fimg = frame_arrays(ctx.fg.clip, [i], gray=True)[0]
    bimg = frame_arrays(ctx.bg.clip, [temporal.frame_map[i]], gray=True)[0]
    pl = estimate(fimg, bimg, scale=ctx.req.scale)
    x0, y0, s0 = spatial.at(i)
    moved = max(abs(pl.x - x0), abs(pl.y - y0), abs(pl.scale - s0) * max(ctx.fg.size))
    if pl.confidence < 0.6 or moved <= MOVED_PX:
        return None
    fmap = temporal.frame_map[a:b]
    shot_unc = [j - a for j in range(a, b) if j in unc]
    refined = refine_from_clips(ctx.bg.clip, ctx.fg.clip[a:b], fmap, prior=pl, scale=ctx.req.scale,
                                uncovered=shot_unc)
    return refined if refined.confidence >= 0.3 else Spatial.of(pl)
