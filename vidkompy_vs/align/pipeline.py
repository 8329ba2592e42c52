"""The prepass as a short list of stages, each a function with typed inputs and one result:

request + settings -> inputs (probed) -> plan -> passes started (FG's fingerprints, BG's
decode, the audio line) -> footprint (a chain of finders) -> fingerprints on the footprint
(BG's pass cut to it) -> audio line -> map (+ re-matches) -> structure (shots; edits rebuild the map) -> nearest content
(FG frames BG lacks) -> refinement
-> per-shot placement -> :class:`Alignment`.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from rich.console import Console

from ..alignment import Alignment, MediaInfo, Spatial, Temporal
from ..settings import Settings, load_preset
from .footprint import Context, find_footprint
from .from_nodes import NodePair, given
from .inputs import Input, Probing, Request, probe_inputs
from .matching import match, refine_stage
from .passes import Early, start_early, start_passes
from .placement import shot_placements
from .plan import make_plan
from .prints import audio_result, footprint_prints
from .results import cached_result, keep_result, result_key
from .run import Job, Run
from .structure import nearest_stage, shots_of, structure_stage

if TYPE_CHECKING:
    import vapoursynth as vs


def align(bg: str | os.PathLike[str] | vs.VideoNode, fg: str | os.PathLike[str] | vs.VideoNode, *,
          preset: str | Settings = "default", method: str = "auto", x: float | None = None,
          y: float | None = None, scale: float | None = None, console: Console | None = None, cache: bool = True,
          bg_audio: vs.AudioNode | None = None, fg_audio: vs.AudioNode | None = None) -> Alignment:
    """Align ``fg`` to ``bg`` and return the :class:`Alignment`.

    ``bg``/``fg``: file paths, or VapourSynth ``VideoNode`` s (a script's own clips,
    filtered as they will be composited: every frame is then read through the frame
    server; ``bg_audio``/``fg_audio``: their sound as ``AudioNode`` s, for the audio line).
    ``preset``: a preset's name, a JSON file's path or :class:`Settings`. ``method``:
    ``auto`` (the audio line as a prior when both have sound, checked visually), ``audio``
    or ``visual``. ``x``/``y``/``scale`` override the spatial search by hand. Messages and
    progress go to ``console`` (stderr by default). ``cache``: reuse (and keep) the result
    for the same input contents, settings and code (a re-run only probes the inputs; a
    node's contents: :func:`vidkompy_vs.nodes.content_key`).
    """
    run = Run(console or Console(stderr=True))
    req = Request(method, x, y, scale).check()
    settings = preset if isinstance(preset, Settings) else load_preset(preset)
    nodes = NodePair.of(bg, fg, bg_audio, fg_audio) if given(bg, fg, bg_audio, fg_audio) else None
    probing = None
    if nodes:
        key = nodes.result_key(settings, req) if cache else None
        hit = cached_result(key)
        early = nodes.start_early(req, settings) if hit is None else Early()
    else:
        probing = Probing(bg, fg)  # first thing: a cached result needs the probes too
        hit = None
        try:
            key = result_key(bg, fg, settings, req) if cache else None
            hit = cached_result(key)
        except BaseException:
            probing.join()
            raise
        probing.decide(open_clips=hit is None)
        early = start_early(bg, fg, req, settings, probing) if hit is None else Early(probing=probing)
    try:
        bg_in, fg_in = nodes.inputs(req, run, cache) if nodes else probe_inputs(bg, fg, req, run, probing)
        if hit is not None:
            return _from_cache(hit, bg_in, fg_in, run, settings)
        found = _align(bg_in.open(), fg_in.open(), req, settings, run, early, bars=True)
        result = _without_bars(found, bg_in, fg_in, req, settings, run, early)
        warn(result.spatial, result.temporal, run, settings.audio.min_confidence)
    finally:
        early.join()  # nothing started before the probes outlives the call, however it ends
    if key and not run.fallbacks:  # a fallback's result is not kept: fixing the cause fixes the next run
        keep_result(key, result)
    return result


class Outcome(NamedTuple):
    alignment: Alignment
    fg_planes: np.ndarray | None  # FG's fingerprint planes, uncut (None: no visual pass)
    fg_frames: dict[int, np.ndarray]  # the full-size FG pictures kept
    active: Job | None = None  # FG's picture area inside bars (:func:`bars.active_from_prints`)


def _align(bg: Input, fg: Input, req: Request, settings: Settings, run: Run, early: Early,
           bars: bool = False) -> Outcome:
    plan = make_plan(bg, fg, req, settings)
    active = None
    with run.make_progress():
        passes = start_passes(bg, fg, req, plan, settings, run, early)
        try:
            ctx = Context(run, settings, req, bg, fg, plan, passes)
            foot = find_footprint(ctx)
            prints = footprint_prints(ctx, foot)
            if bars and prints is not None:
                from ..bars import active_from_prints

                # (what it looks at is all in now: it runs beside the matching and the
                # refinement instead of after them)
                active = Job(active_from_prints, prints.fg_whole, fg.size, dict(passes.have_fg))
            am = audio_result(ctx)
        finally:
            passes.join()
    found = match(ctx, foot, prints, am)
    shape = nearest_stage(ctx, prints, structure_stage(ctx, prints, found))
    temporal = shape.match.temporal
    spatial = shot_placements(ctx, shape.fg_shots, temporal, refine_stage(ctx, shape.match))
    al = Alignment(bg=MediaInfo.from_probe(bg.probe), fg=MediaInfo.from_probe(fg.probe), spatial=spatial,
                   temporal=temporal, shots=shots_of(shape.fg_shots, temporal, spatial))
    return Outcome(al, None if prints is None else prints.fg_whole, passes.have_fg, active)


def _without_bars(found: Outcome, bg: Input, fg: Input, req: Request, settings: Settings, run: Run,
                  early: Early) -> Alignment:
    """Bars baked into FG (letterbox, pillarbox, windowbox): FG's picture area aligned on
    its own (the bars would match nothing in an open-matte BG) and recorded, so that the
    overlay lays the picture alone (BG shows through the bars)."""
    from ..bars import active_per_shot_from_prints

    al = found.alignment
    if found.fg_planes is None or found.active is None:  # (no visual pass: the one is None with the other)
        return al
    full = [0, 0, fg.probe.width, fg.probe.height]
    active = found.active.get()
    if active is None or active == full:
        return al
    run.trace(f"bars in FG: its picture is {active}")
    if not req.manual:
        inner = _align(bg, fg.picture(active), req, settings, run, early).alignment
        al = in_file_frame(inner, MediaInfo.from_probe(fg.probe), active)
    al.spatial.active = active
    bounds = [(sh.fg_start, sh.fg_end) for sh in al.shots]
    per_shot = active_per_shot_from_prints(found.fg_planes, fg.size, bounds, found.fg_frames) if bounds else []
    for sh, act in zip(al.shots, per_shot):
        sh.active = None if act is None or act == full else act
    return al


def in_file_frame(al: Alignment, fg: MediaInfo, active: list[int]) -> Alignment:
    """An alignment made for FG's picture area ``active`` as one for the whole FG frame."""
    ox, oy = active[0], active[1]
    sp = al.spatial
    track = None if sp.track is None else [[x - ox * s, y - oy * s, s] for x, y, s in sp.track]
    spatial = Spatial(x=sp.x - ox * sp.scale, y=sp.y - oy * sp.scale, scale=sp.scale, confidence=sp.confidence,
                      method=sp.method, track=track, active=active)
    shots = [dataclasses.replace(sh, x=sh.x - ox * sh.scale, y=sh.y - oy * sh.scale, active=active)
             for sh in al.shots]
    return Alignment(bg=al.bg, fg=fg, spatial=spatial, temporal=al.temporal, shots=shots)


def _from_cache(hit: Alignment, bg: Input, fg: Input, run: Run, settings: Settings) -> Alignment:
    # the same contents may live at other paths now
    hit.bg, hit.fg = MediaInfo.from_probe(bg.probe), MediaInfo.from_probe(fg.probe)
    run.console.print("[dim]note: same inputs and settings as an earlier run: its alignment, from the cache[/]")
    warn(hit.spatial, hit.temporal, run, settings.audio.min_confidence)
    return hit


def warn(spatial: Spatial, temporal: Temporal, run: Run, audio_min: float) -> None:
    """The warnings a result calls for (the same for a fresh and a cached one)."""
    say = run.console.print
    if temporal.method == "audio" and temporal.confidence < audio_min:
        say(f"[yellow]warning:[/] audio match is weak (confidence {temporal.confidence:.2f}); "
            "the inputs may not share a soundtrack")
    if temporal.method == "start":
        say(f"[yellow]warning:[/] FG does not match BG (confidence {temporal.confidence:.2f}): "
            "are these the same footage? falling back to a start-aligned map")
    if temporal.method not in ("start", "audio") and spatial.method not in ("manual", "same-size", "center") \
            and spatial.confidence < 0.3:
        say(f"[yellow]warning:[/] FG's position is uncertain on the matched frames (spatial confidence "
            f"{spatial.confidence:.2f}): check the result, or give --x/--y/--scale")
    if temporal.uncovered:
        run.note(f"{len(temporal.uncovered)} FG frame(s) lie outside BG; "
                 "their BG frame is clamped to BG's first/last frame")
