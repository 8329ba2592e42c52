"""The fourth stage: the frame map (the audio line, or the visual match with its second
opinions), then the spatial refinement on the matched pairs."""

from __future__ import annotations

from typing import NamedTuple

from ..alignment import Placement, Spatial, Temporal, realtime_map
from ..audio import AudioMatch
from ..errors import VidkompyError
from ..temporal import TemporalResult, align_visual
from .footprint import Context, Crops, Footprint, crops, template_placement
from .passes import fingerprint_pass
from .prints import Prints

# The refined footprint is fingerprinted again (a second BG decode) when it moved by more
# than this many fingerprint pixels from the coarse one.
REMATCH_FP_PX = 0.1
# a visual map only moves the placement it was made on when the moved one fits clearly better
SECOND_FOOTPRINT_GAIN = 0.2


class Match(NamedTuple):
    temporal: Temporal
    spatial: Spatial
    prior: Placement | None  # the refinement's prior (None: no refinement)
    refined: bool  # the refinement already ran on this map
    similarity: list[float] | None = None  # the visual match's own, also when the map fell back to 'start'


def match(ctx: Context, foot: Footprint, prints: Prints | None, am: AudioMatch | None) -> Match:
    """The map, and the placement as far as the map's own checks moved it."""
    audio_ok = am is not None and am.confidence >= ctx.settings.audio.min_confidence
    if not ctx.plan.visual:
        off, rate = _snap(am.offset_s, am.rate, ctx)
        fg_probe, bg_probe = ctx.fg.probe, ctx.bg.probe
        fmap, unc = realtime_map(fg_probe.frames, fg_probe.fps_num, fg_probe.fps_den, bg_probe.frames,
                                 bg_probe.fps_num, bg_probe.fps_den, off, rate)
        temporal = Temporal(frame_map=fmap, similarity=[0.0] * fg_probe.frames, confidence=float(am.confidence),
                            method="audio", offset_s=float(off), rate=float(rate), uncovered=unc)
        return Match(temporal, foot.spatial, foot.prior, False)
    return _Visual(ctx, prints, (am.offset_s, am.rate) if audio_ok else None).run(foot)


def refine_stage(ctx: Context, m: Match) -> Spatial:
    """The refinement on the final map (unless it ran already); without a time match, FG
    centred (nothing confirms a spatial search then)."""
    spatial = m.spatial
    if spatial.method not in ("manual", "same-size") and ctx.settings.spatial.refine \
            and m.temporal.method != "start" and m.prior is not None and not m.refined:
        got = refine(ctx, m.temporal.frame_map, m.prior, m.temporal.uncovered)
        if got is not None:
            spatial = got
    if m.temporal.method == "start" and spatial.confidence < 0.8 and not ctx.req.manual:
        # (an unrelated clip still finds some best-correlating spot): FG at its own size
        # (or the user's --scale), centred, shrunk only when it does not fit
        bg_probe, fg_probe = ctx.bg.probe, ctx.fg.probe
        s = min(ctx.req.scale_or_1, bg_probe.width / fg_probe.width, bg_probe.height / fg_probe.height)
        fw, fh = fg_probe.width * s, fg_probe.height * s
        spatial = Spatial(x=(bg_probe.width - fw) / 2, y=(bg_probe.height - fh) / 2, scale=float(s), confidence=0.0,
                          method="center")
    ctx.run.trace("refined")
    return spatial


def refine(ctx: Context, frame_map: list[int], prior: Placement, uncovered: list[int] | None) -> Spatial | None:
    """The spatial refinement on matched pairs; ``None`` (with a note) when it fails."""
    try:
        from ..spatial import refine_from_clips

        return refine_from_clips(ctx.bg.clip, ctx.fg.clip, [int(v) for v in frame_map], prior=prior,
                                 scale=ctx.req.scale, frames={"fg": ctx.passes.have_fg, "bg": ctx.passes.have_bg},
                                 uncovered=None if uncovered is None else [int(v) for v in uncovered])
    except VidkompyError:
        raise
    except Exception as e:  # noqa: BLE001 - the coarse placement stands
        ctx.run.fell_back(f"spatial refinement skipped ({type(e).__name__}: {e})")
        return None


def _snap(offset: float, rate: float, ctx: Context) -> tuple[float, float]:
    """An audio line snapped to whole BG frames / the exact fps ratio when within noise."""
    bg_fps = float(ctx.bg.probe.fps)
    f = offset * bg_fps
    if abs(f - round(f)) < 0.15:
        offset = round(f) / bg_fps
    if abs(rate - 1.0) < 2e-4:
        rate = 1.0
    return offset, rate


def temporal_of(tr: TemporalResult, method: str) -> Temporal:
    return Temporal(frame_map=[int(v) for v in tr.frame_map], similarity=[round(float(v), 4) for v in tr.similarity],
                    confidence=round(float(tr.confidence), 4), method=method, offset_s=float(tr.offset_s),
                    rate=float(tr.rate), uncovered=[int(v) for v in tr.uncovered])


class _Visual:
    """The visual match on the footprint's fingerprints, with ``prior`` the audio line."""

    def __init__(self, ctx: Context, prints: Prints, prior: tuple[float, float] | None) -> None:
        self.ctx, self.prints, self.prior = ctx, prints, prior
        self.params = ctx.settings.temporal

    def rematch(self, cut: Crops, why: str) -> TemporalResult:
        """Fingerprint BG (and FG, when its crop changed) on another footprint; match again."""
        fs, run = self.ctx.settings.fingerprint, self.ctx.run
        with run.progress:
            fbg = fingerprint_pass(self.ctx.bg, cut.bg, fs, run, f"decoding BG ({why})")
            ffg = self.prints.fg if cut.fg == self.prints.crops.fg else fingerprint_pass(
                self.ctx.fg, cut.fg, fs, run, "decoding FG")
        return align_visual(ffg, fbg, prior=self.prior, params=self.params)

    def run(self, foot: Footprint) -> Match:
        self.ctx.run.trace("matching")
        tr = align_visual(self.prints.fg, self.prints.bg, prior=self.prior, params=self.params)
        self.ctx.run.trace("matched")
        if self.prior is not None and not tr.related:
            # a wrong audio prior must not sink a visual match that exists: search freely
            tr2 = align_visual(self.prints.fg, self.prints.bg, prior=None, params=self.params)
            if tr2.confidence > tr.confidence:
                tr = tr2
        spatial, prior_pl = foot.spatial, foot.prior
        if not tr.related and spatial.method not in ("manual", "same-size"):
            tr, spatial, prior_pl = self.second_opinion(tr, spatial, prior_pl)
        refined = False
        if self.prints.refine_on_view and tr.related and prior_pl is not None:
            tr, spatial, prior_pl, refined = self.refine_and_rematch(tr, spatial, prior_pl)
        temporal = temporal_of(tr, "audio+visual" if self.prior is not None else "visual")
        if not tr.related:
            fg_probe, bg_probe = self.ctx.fg.probe, self.ctx.bg.probe
            fmap, unc = realtime_map(fg_probe.frames, fg_probe.fps_num, fg_probe.fps_den, bg_probe.frames,
                                     bg_probe.fps_num, bg_probe.fps_den)
            temporal = Temporal(frame_map=fmap, similarity=[0.0] * fg_probe.frames,
                                confidence=round(float(tr.confidence), 4), method="start", offset_s=0.0, rate=1.0,
                                uncovered=unc)
        return Match(temporal, spatial, prior_pl, refined, [float(v) for v in tr.similarity])

    def second_opinion(self, tr: TemporalResult, spatial: Spatial, prior_pl: Placement | None
                       ) -> tuple[TemporalResult, Spatial, Placement | None]:
        """A wrong footprint looks exactly like unrelated inputs: the template match's."""
        alt = template_placement(self.ctx.bg, self.ctx.fg, self.ctx.req.scale_or_1, self.prior)
        if abs(alt.x - spatial.x) + abs(alt.y - spatial.y) > 2:
            tr2 = self.rematch(crops(alt, self.ctx.bg.probe, self.ctx.fg.probe), "second footprint")
            # (both unrelated: the footprint stays; an edited pair matches nowhere end to
            # end, and the structure stage looks at it shot by shot)
            if tr2.related and tr2.confidence > tr.confidence:
                self.ctx.run.note(f"spatial estimate ({spatial.x:.0f}, {spatial.y:.0f}) did not match in time; "
                                  f"using template match ({alt.x:.0f}, {alt.y:.0f})")
                # the refinement starts from it on the matched pairs (a Spatial is a Placement)
                return tr2, alt, alt
        return tr, spatial, prior_pl

    def refine_and_rematch(self, tr: TemporalResult, spatial: Spatial, prior_pl: Placement
                           ) -> tuple[TemporalResult, Spatial, Placement, bool]:
        """The coarse footprint is good to a pixel or two when the camera moves, and BG's
        fingerprints were cut with it: refine it on the matched pairs and, when it moved,
        fingerprint BG once more on the refined footprint and match again (the first map is
        right almost everywhere, so the refinement is exact)."""
        refined = refine(self.ctx, tr.frame_map, prior_pl, tr.uncovered)
        if refined is None:
            return tr, spatial, prior_pl, False
        fg_probe = self.ctx.fg.probe
        # in fingerprint pixels: a move well inside one is what the sub-pixel
        # re-registration of the planes absorbs; more shifts content across the crop
        moved = max(abs(refined.x - spatial.x), abs(refined.y - spatial.y),
                    abs(refined.scale - spatial.scale) * max(fg_probe.width, fg_probe.height))
        moved_fp = moved * float(self.ctx.settings.fingerprint.size[0]) / max(1.0, fg_probe.width * refined.scale)
        cut = crops(refined, self.ctx.bg.probe, fg_probe)
        if moved_fp <= REMATCH_FP_PX or cut.bg is None or cut == self.prints.crops:
            return tr, refined, prior_pl, True
        if refined.confidence >= 0.3:
            tr1 = self.rematch(cut, "refined footprint")
            if tr1.related:
                tr1.notes.append(f"re-matched on the refined footprint (moved {moved:.2f} px)")
                # the refinement saw the first map's pairs, a frame off here and there (a
                # drift it reports may be theirs): once more on the new map, around it
                return tr1, refined, refined, False
            return tr, refined, prior_pl, True
        # Unsure on the matched pairs and elsewhere than the crop: the crop may be what is
        # wrong (zooming content: a neighbouring frame fits a slightly shifted, scaled
        # footprint, and the map follows it, a frame or two off). Match again on the
        # refined footprint; keep that if the pairs it gives confirm a placement clearly.
        tr1 = self.rematch(cut, "second footprint")
        r2 = refine(self.ctx, tr1.frame_map, prior_pl, tr1.uncovered) if tr1.related else None
        if r2 is not None and r2.confidence >= max(0.3, refined.confidence + SECOND_FOOTPRINT_GAIN):
            tr1.notes.append(f"re-matched on the refined footprint (moved {moved:.2f} px, "
                             f"spatial confidence {refined.confidence:.2f} -> {r2.confidence:.2f})")
            return tr1, r2, prior_pl, True
        return tr, refined, prior_pl, True
