"""The third stage: fingerprints of both inputs on the footprint (BG's early pass cut to
it, or BG's pass starting here), and the audio line they are matched with."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

from .. import fingerprint as fpm
from ..audio import AudioMatch
from ..errors import VidkompyError
from .footprint import Context, Crops, Footprint, audio_line, crops
from .passes import bg_partners, fingerprint_pass


class Prints(NamedTuple):
    fg: fpm.Fingerprints
    bg: fpm.Fingerprints
    crops: Crops  # what each was cut to
    refine_on_view: bool  # the refinement may re-match on its own footprint (BG was cut to a crop)
    fg_whole: np.ndarray  # FG's planes uncut (what its bars are looked for in)


def footprint_prints(ctx: Context, foot: Footprint) -> Prints | None:
    """BG's pass on ``foot`` (keeping the refinement's BG partners at full size) and FG's
    (its running pass, or a second one cut to the part inside BG). ``None`` for an
    audio-only run."""
    if not ctx.plan.visual:
        return None
    bg_probe, fg_probe, passes = ctx.bg.probe, ctx.fg.probe, ctx.passes
    cut = crops(foot.spatial, bg_probe, fg_probe)
    grab_bg: list[int] = []
    if ctx.plan.samples and foot.prior is not None:
        try:
            line = audio_line(ctx) if passes.audio is not None else None
        except Exception:  # noqa: BLE001 - the audio stage reports it
            line = None
        spread, pivot = 0.0, None
        if line is None and foot.line is not None:
            # a line from anchors in a window of FG: its rate is known to a few tenths
            # of a percent, so the partners far from them get wider windows
            line, spread, pivot = (foot.line.offset_s, foot.line.rate), 0.004, foot.line.pivot
        grab_bg = bg_partners(ctx.plan.samples, bg_probe, fg_probe, line, foot.picks if line is None else None,
                              spread, pivot)
        grab_bg = [j for j in grab_bg if j not in passes.have_bg]
    fs = ctx.settings.fingerprint
    fbg = None
    if passes.bg_pass is not None:
        ctx.run.trace(f"footprint found ({foot.spatial.method})")
        fbg = passes.bg_pass.prints(cut.bg, grab_bg)
    if fbg is None:
        ctx.run.trace(f"footprint found ({foot.spatial.method}); BG pass starts")
        bg_fs = fs if passes.bg_pass is None else dataclasses.replace(fs, decoder=passes.bg_pass.decoder)
        fbg = fingerprint_pass(ctx.bg, cut.bg, bg_fs, ctx.run, "decoding BG", grab_bg)
    ctx.run.trace("BG pass done")
    passes.have_bg.update(fbg.frames)
    fbg.frames = {}
    ffg = passes.fg_pass.get()
    passes.have_fg.update(ffg.frames)
    ffg.frames = {}
    whole = ffg.planes
    if cut.fg is not None:
        ffg = fingerprint_pass(ctx.fg, cut.fg, fs, ctx.run, "decoding FG (cropped)")
    return Prints(ffg, fbg, cut, ctx.plan.refine and foot.prior is not None and cut.bg is not None, whole)


def audio_result(ctx: Context) -> AudioMatch | None:
    """The audio line's result (``None`` without one; a failure is a fallback unless the
    user asked for the audio method)."""
    if ctx.passes.audio is None:
        return None
    try:
        return ctx.passes.audio.get()
    except VidkompyError as e:
        if ctx.req.method == "audio":
            raise
        ctx.run.fell_back(f"audio skipped: {e}")
        return None
