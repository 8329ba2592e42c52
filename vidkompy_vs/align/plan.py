"""The second stage: what this run will do, decided once from the request, the probes and
the settings (every later stage reads it instead of re-deriving it)."""

from __future__ import annotations

from dataclasses import dataclass

from ..settings import Settings
from ..spatial import coarse_samples, refine_samples
from .inputs import Input, Request

# FG's frames the anchored footprint search starts from: a little before FG's middle, so
# that FG's pass (which they come from) reaches them sooner
ANCHOR_AT = (0.3, 0.4, 0.5)


def anchor_samples(frames: int) -> list[int]:
    return coarse_samples(frames, ANCHOR_AT)


@dataclass(frozen=True)
class Plan:
    visual: bool  # a visual time match (else the audio line is the map)
    use_audio: bool  # both inputs have sound and the method allows it: the audio line is the prior
    same_size: bool  # FG and BG the same size at scale 1: nothing to search
    searching: bool  # the footprint is searched (no placement by hand, sizes differ)
    anchored: bool  # without sound: the footprint from FG's own fingerprints first
    samples: tuple[int, ...]  # FG frames the refinement measures (empty: no refinement)
    fg_grab: tuple[int, ...]  # FG frames kept at full size from FG's fingerprint pass
    fg_nice: int  # FG's pass at a lower priority when a search runs beside it

    @property
    def refine(self) -> bool:
        return bool(self.samples)


def make_plan(bg: Input, fg: Input, req: Request, settings: Settings) -> Plan:
    visual = req.method != "audio"
    same_size = req.scale in (None, 1.0) and fg.size == bg.size
    # the refinement's FG samples at full size come from FG's fingerprint pass, their BG
    # partners from BG's: no random access into long-GOP inputs afterwards
    may_refine = visual and not req.manual and settings.spatial.refine and not same_size
    samples = refine_samples(fg.probe.frames) if may_refine else []
    searching = not req.manual and fg.size != bg.size
    use_audio = req.method in ("auto", "audio") and bg.probe.has_audio and fg.probe.has_audio
    # Without sound, FG's own fingerprints say which FG frame a few BG frames show
    # (anchors): FG's pass goes first, at full speed, while BG's window is read, and
    # keeps FG's middle frames for the footprint search
    anchored = visual and searching and not use_audio and settings.spatial.anchors
    grab = set(samples) | (set(anchor_samples(fg.probe.frames)) if anchored else set())
    # at a lower priority when the footprint search beside it is a chain of short steps
    # that BG's decode waits for: FG's pass fills the idle core around them
    return Plan(visual=visual, use_audio=use_audio, same_size=same_size, searching=searching, anchored=anchored,
                samples=tuple(samples), fg_grab=tuple(sorted(grab)), fg_nice=10 if searching and not anchored else 0)
