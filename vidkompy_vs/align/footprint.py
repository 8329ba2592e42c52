"""The footprint: where FG lies in BG, found before BG's pass (which is cut to it).

A chain of finders, tried in turn, each returning a :class:`Footprint` or ``None``
(in the spirit of PySceneDetect's detectors): a placement given by hand, inputs of the
same size, the frame pair the audio line puts together, anchors from FG's own
fingerprints (:mod:`.anchored`), the coarse search through BG, and a template match that
always answers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .. import fingerprint as fpm
from ..alignment import Placement, Spatial
from ..errors import VidkompyError
from ..numeric import peak
from ..settings import Settings
from ..sources import Probe, frame_arrays
from .inputs import Input, Request
from .passes import Passes
from .plan import Plan
from .run import Run


@dataclass
class Context:
    """What every stage after the plan reads."""

    run: Run
    settings: Settings
    req: Request
    bg: Input
    fg: Input
    plan: Plan
    passes: Passes


class AnchorLine(NamedTuple):
    """A time line from anchors in a window of FG: BG t = offset_s + rate * FG t, its rate
    exact near FG frame ``pivot``."""

    offset_s: float
    rate: float
    pivot: float


class Footprint(NamedTuple):
    spatial: Spatial  # where FG's footprint is (BG's pass is cut to it)
    prior: Placement | None = None  # the refinement's prior (None: the map is not refined from it)
    line: AnchorLine | None = None  # the anchored finder's time line
    picks: tuple[list[int], list[int]] | None = None  # the coarse search's FG samples and BG partners


class Crops(NamedTuple):
    """Matching crops (x, y, w, h): of BG, FG's footprint clipped to BG; of FG, the part
    inside BG. ``None``: the whole frame (or, for both, FG and BG barely overlap)."""

    bg: fpm.Crop | None
    fg: fpm.Crop | None


def crops(sp: Placement, bg_probe: Probe, fg_probe: Probe) -> Crops:
    s = sp.scale
    x0, y0 = max(0.0, sp.x), max(0.0, sp.y)
    x1, y1 = min(float(bg_probe.width), sp.x + fg_probe.width * s), min(float(bg_probe.height),
                                                                         sp.y + fg_probe.height * s)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return Crops(None, None)
    bw, bh = max(8, int(round(x1 - x0))), max(8, int(round(y1 - y0)))
    bcrop = (min(int(round(x0)), bg_probe.width - bw), min(int(round(y0)), bg_probe.height - bh), bw, bh)
    fx0, fy0 = (x0 - sp.x) / s, (y0 - sp.y) / s
    fx1, fy1 = (x1 - sp.x) / s, (y1 - sp.y) / s
    fcrop = (int(round(fx0)), int(round(fy0)), int(round(fx1 - fx0)), int(round(fy1 - fy0)))
    fcrop = (min(fcrop[0], fg_probe.width - 8), min(fcrop[1], fg_probe.height - 8),
             max(8, min(fcrop[2], fg_probe.width - fcrop[0])), max(8, min(fcrop[3], fg_probe.height - fcrop[1])))
    # FG past BG's edge by under a pixel (FG filling BG, the estimate a fraction off) is
    # rounding, not a part of FG that BG lacks: FG stays whole (a crop a pixel short would
    # cost a second FG decode and match no better)
    ex0, ey0 = sp.x, sp.y
    ex1, ey1 = bg_probe.width - (sp.x + fg_probe.width * s), bg_probe.height - (sp.y + fg_probe.height * s)
    inside = min(ex0, ey0, ex1, ey1) > -1
    # (and BG whole when FG covers it to within a pixel: not a crop a pixel short of it)
    fills = inside and max(ex0, ey0, ex1, ey1) < 1
    return Crops(None if fills or bcrop == (0, 0, bg_probe.width, bg_probe.height) else bcrop,
                 None if inside or fcrop == (0, 0, fg_probe.width, fg_probe.height) else fcrop)


def audio_line(ctx: Context) -> tuple[float, float] | None:
    """The audio line (offset_s, rate) when it is confident; raises what its job raised."""
    if ctx.passes.audio is None:
        return None
    am = ctx.passes.audio.get()
    return (am.offset_s, am.rate) if am.confidence >= ctx.settings.audio.min_confidence else None


# -- the finders -------------------------------------------------------------------------
def manual_footprint(ctx: Context) -> Footprint | None:
    """--x/--y given: FG there (centred on the axis not given)."""
    if not ctx.req.manual:
        return None
    s = ctx.req.scale_or_1
    fw, fh = ctx.fg.probe.width * s, ctx.fg.probe.height * s
    x, y = ctx.req.x, ctx.req.y
    return Footprint(Spatial(x=float((ctx.bg.probe.width - fw) / 2 if x is None else x),
                             y=float((ctx.bg.probe.height - fh) / 2 if y is None else y),
                             scale=s, confidence=1.0, method="manual"))


def same_size_footprint(ctx: Context) -> Footprint | None:
    if not ctx.plan.same_size:
        return None
    return Footprint(Spatial(x=0.0, y=0.0, scale=1.0, confidence=1.0, method="same-size"))


def audio_pair_footprint(ctx: Context) -> Footprint | None:
    """The audio line (about a second of work) says which BG frame lies under FG's middle
    frame: one pair gives the footprint, one random-access read of each instead of a
    search through BG."""
    if ctx.passes.audio is None or ctx.fg.size == ctx.bg.size:
        return None
    try:
        line = audio_line(ctx)
        return None if line is None else _audio_pair(ctx, line)
    except VidkompyError:
        return None
    except Exception as e:  # noqa: BLE001 - the finders after this one stand in
        ctx.run.fell_back(f"audio-guided footprint skipped ({type(e).__name__}: {e})")
        return None


def _audio_pair(ctx: Context, line: tuple[float, float]) -> Footprint | None:
    from ..spatial import estimate

    bg_probe, fg_probe = ctx.bg.probe, ctx.fg.probe
    fmid = fg_probe.frames // 2
    t = line[0] + line[1] * (fmid + 0.5) / float(fg_probe.fps)
    j = int(round(t * float(bg_probe.fps) - 0.5))
    if not 0 <= j < bg_probe.frames:
        return None
    fg_mid = ctx.passes.fg_mid
    fimg = fg_mid.get() if fg_mid is not None else frame_arrays(ctx.fg.clip, [fmid], gray=True)[0]
    # (from BG's pass when it holds that frame: a random read decodes from the keyframe
    # before it, beside the pass)
    late = ctx.passes.bg_pass
    bimg = late.picture(j, wait=True) if late is not None else None
    if bimg is None:
        bimg = frame_arrays(ctx.bg.clip, [j], gray=True)[0]
    ctx.passes.have_bg[j] = bimg
    pl = estimate(fimg, bimg, scale=ctx.req.scale)
    if pl.confidence < 0.6:
        return None
    return Footprint(Spatial.of(pl), pl)


def anchored_footprint(ctx: Context) -> Footprint | None:
    if not ctx.plan.anchored:
        return None
    from .anchored import anchored_search

    try:
        return anchored_search(ctx)
    except VidkompyError:
        raise
    except Exception as e:  # noqa: BLE001 - the coarse search is the fallback
        ctx.run.fell_back(f"anchored footprint skipped ({type(e).__name__}: {e})")
        return None
    finally:
        ctx.passes.watch.spare.clear()  # (only this search pairs them)


def coarse_footprint(ctx: Context) -> Footprint | None:
    """The coarse search through BG (several frame pairs, multi-scale NCC)."""
    ctx.run.trace("coarse search")
    try:
        from ..spatial import coarse_from_clips

        c = coarse_from_clips(ctx.bg.clip, ctx.fg.clip, scale=ctx.req.scale, bg_path=ctx.bg.reads)
    except VidkompyError:
        raise
    except Exception as e:  # noqa: BLE001 - never block the map on the spatial engine
        ctx.run.fell_back(f"spatial engine unavailable ({type(e).__name__}: {e}); using template match")
        return None
    picks = (list(c.fg_samples), list(c.bg_picks)) if c.bg_picks else None
    return Footprint(Spatial.of(c.placement), c.placement, picks=picks)


def template_footprint(ctx: Context) -> Footprint:
    """The last resort, which always answers."""
    return Footprint(template_placement(ctx.bg, ctx.fg, ctx.req.scale_or_1))


FINDERS: tuple[Callable[[Context], Footprint | None], ...] = (
    manual_footprint, same_size_footprint, audio_pair_footprint, anchored_footprint, coarse_footprint,
    template_footprint)


def find_footprint(ctx: Context) -> Footprint:
    """The first finder's answer (the template match always gives one)."""
    for finder in FINDERS:
        got = finder(ctx)
        if got is not None:
            return got
    raise AssertionError("template_footprint always answers")


def template_placement(bg: Input, fg: Input, scale: float, line: tuple[float, float] | None = None) -> Spatial:
    """FG's middle frame against a few BG frames (cv2.matchTemplate at ~480 px, then at full
    size around the peak): a fallback, and a second opinion when a footprint did not match
    in time."""
    import cv2

    bg_probe, fg_probe = bg.probe, fg.probe
    fw, fh = max(1, round(fg_probe.width * scale)), max(1, round(fg_probe.height * scale))
    k = max(1.0, max(bg_probe.width, bg_probe.height) / 480)
    sw, sh = max(8, round(fw / k)), max(8, round(fh / k))
    bw, bh = max(round(bg_probe.width / k), sw), max(round(bg_probe.height / k), sh)
    fmid = fg_probe.frames // 2
    tpl = frame_arrays(fg.clip, [fmid], gray=True, width=sw, height=sh)[0]
    # BG may start anywhere relative to FG: the proportional time plus a spread of others
    cands = sorted({min(bg_probe.frames - 1, int(q * bg_probe.frames)) for q in np.linspace(0.05, 0.95, 9)}
                   | {min(bg_probe.frames - 1, round(fmid * bg_probe.frames / max(1, fg_probe.frames)))})
    if line is not None:  # the audio line says exactly where FG's middle frame is in BG
        t = line[0] + line[1] * fmid / float(fg_probe.fps)
        cands = sorted(set(cands) | {int(min(bg_probe.frames - 1, max(0, round(t * float(bg_probe.fps)))))})
    best_v, best_x, best_y, best_n = -2.0, 0, 0, 0
    for n, img in zip(cands, frame_arrays(bg.clip, cands, gray=True, width=bw, height=bh), strict=True):
        _, v, _, loc = cv2.minMaxLoc(cv2.matchTemplate(img, tpl, cv2.TM_CCOEFF_NORMED))
        if v > best_v:
            best_v, best_x, best_y, best_n = v, loc[0], loc[1], n
    x = min(max(0.0, best_x * bg_probe.width / bw), bg_probe.width - fw)
    y = min(max(0.0, best_y * bg_probe.height / bh), bg_probe.height - fh)
    if k > 1.0 and scale == 1.0:
        # full resolution around the coarse peak, on the best frame, with a sub-pixel peak
        full = frame_arrays(bg.clip, [best_n], gray=True)[0]
        ftpl = frame_arrays(fg.clip, [fmid], gray=True)[0]
        rad = int(math.ceil(k)) + 2
        x0, y0 = max(0, int(x) - rad), max(0, int(y) - rad)
        x1, y1 = min(bg_probe.width, int(x) + rad + fw + 1), min(bg_probe.height, int(y) + rad + fh + 1)
        if x1 - x0 >= fw and y1 - y0 >= fh:
            best_v, px, py = peak(cv2.matchTemplate(full[y0:y1, x0:x1], ftpl, cv2.TM_CCOEFF_NORMED))
            x, y = x0 + px, y0 + py
    return Spatial(x=float(x), y=float(y), scale=scale, confidence=float(max(best_v, 0.0)), method="template")
