"""Hand an alignment on to editors and scripts: OTIO, CSV, CMX 3600 EDL, FCP 7 XML.

The timeline runs at FG's rate for FG's length (FG is the master). BG lies on the lower
video track as one clip per run of consecutive BG frames, so the frame map is carried
frame for frame by plain source ranges (no time warps that editors read differently);
FG frames BG has no frame for are gaps. FG lies above, one clip per shot, with its
placement in the clip's metadata; FG's sound is the audio track. EDL and FCP XML are
written by the OpenTimelineIO adapters from the same timeline (an EDL holds one video
track: BG's, the retimed edit). :func:`frame_map_from_otio` reads any of them back.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .alignment import Alignment
from .errors import VidkompyError
from .fsutil import atomic_write_text

if TYPE_CHECKING:
    import opentimelineio as otio

log = logging.getLogger(__name__)

FORMATS = ("otio", "csv", "edl", "fcpxml")
_SUFFIX = {".otio": "otio", ".csv": "csv", ".edl": "edl", ".xml": "fcpxml", ".fcpxml": "fcpxml"}
_ADAPTER = {"otio": "otio_json", "edl": "cmx_3600", "fcpxml": "fcp_xml"}
_PACKAGE = {"otio": "opentimelineio", "edl": "otio-cmx3600-adapter", "fcpxml": "otio-fcp-adapter"}
CSV_HEADER = ["fg_frame", "bg_frame", "similarity", "x", "y", "scale", "shot", "uncovered"]
BG_TRACK, FG_TRACK, AUDIO_TRACK = "BG", "FG", "FG audio"


def _otio() -> Any:
    try:
        import opentimelineio
    except ImportError:
        raise VidkompyError("exporting a timeline needs OpenTimelineIO: pip install 'vidkompy-vs[export]'") from None
    return opentimelineio


# -- the table ------------------------------------------------------------------------
def to_csv(al: Alignment) -> str:
    """One row per FG frame: its BG frame, similarity, placement, shot and whether BG covers it."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_HEADER)
    unc = set(al.temporal.uncovered)
    shots = al.shot_index()
    for n, (b, sim) in enumerate(zip(al.temporal.frame_map, al.temporal.similarity, strict=True)):
        x, y, s = al.spatial.at(n)
        w.writerow([n, b, repr(float(sim)), repr(x), repr(y), repr(s), shots[n], int(n in unc)])
    return buf.getvalue()


# -- the timeline ---------------------------------------------------------------------
def bg_runs(al: Alignment) -> list[tuple[int, int, int | None]]:
    """``(fg_start, length, bg_start)`` per run of FG frames over consecutive BG frames;
    ``bg_start`` is None for a run of uncovered FG frames (a gap)."""
    unc = set(al.temporal.uncovered)
    runs: list[tuple[int, int, int | None]] = []
    for i, b in enumerate(al.temporal.frame_map):
        cov = i not in unc
        if runs:
            s, n, b0 = runs[-1]
            if (b0 is None and not cov) or (b0 is not None and cov and b == b0 + n):
                runs[-1] = (s, n + 1, b0)
                continue
        runs.append((i, 1, b if cov else None))
    return runs


def _url(path: str) -> str:
    from opentimelineio import url_utils

    p = Path(path)
    return url_utils.url_from_filepath(str(p.resolve())) if p.exists() else path


def _ref(otio_: Any, path: str, frames: int, rate: float) -> Any:
    rt = otio_.opentime
    return otio_.schema.ExternalReference(target_url=_url(path), available_range=rt.TimeRange(
        rt.RationalTime(0, rate), rt.RationalTime(frames, rate)))


def _fg_segments(al: Alignment) -> list[tuple[int, int, int | None]]:
    """``(start, end, shot)`` covering FG: its shots, and the frames between them (shot None)."""
    out: list[tuple[int, int, int | None]] = []
    at = 0
    for k, sh in enumerate(al.shots):
        if sh.fg_start > at:
            out.append((at, sh.fg_start, None))
        out.append((sh.fg_start, sh.fg_end, k))
        at = sh.fg_end
    if at < al.fg.frames:
        out.append((at, al.fg.frames, None))
    return out


def _placement(al: Alignment, start: int, end: int, shot: int | None) -> dict[str, Any]:
    if shot is not None:
        sh = al.shots[shot]
        d: dict[str, Any] = {"shot": shot, "x": sh.x, "y": sh.y, "scale": sh.scale, "confidence": sh.confidence,
                             "active": sh.active, "bg_start": sh.bg_start, "bg_end": sh.bg_end}
    else:
        sp = al.spatial
        d = {"shot": None, "x": sp.x, "y": sp.y, "scale": sp.scale, "confidence": sp.confidence,
             "active": sp.active}
    if al.spatial.track:
        d["track"] = al.spatial.track[start:end]  # [x, y, scale] per frame of this clip
    d["bg_size"] = [al.bg.width, al.bg.height]
    return d


def to_timeline(al: Alignment, *, fg_audio: bool | None = None) -> otio.schema.Timeline:
    """The alignment as an OTIO timeline at FG's rate (see the module's docstring).

    ``fg_audio``: whether FG has sound; None asks its file (kept when it cannot be read).
    """
    otio_ = _otio()
    rt, schema = otio_.opentime, otio_.schema
    fr, br = al.fg.fps, al.bg.fps
    tl = schema.Timeline(name=f"{Path(al.fg.path).stem} over {Path(al.bg.path).stem}",
                         global_start_time=rt.RationalTime(0, fr))
    tl.metadata["vidkompy"] = {"schema": al.schema, "bg": al.bg.path, "fg": al.fg.path,
                               "offset_s": al.temporal.offset_s, "rate": al.temporal.rate,
                               "method": al.temporal.method, "confidence": al.temporal.confidence}
    bg = schema.Track(name=BG_TRACK, kind=schema.TrackKind.Video)
    fmap = al.temporal.frame_map
    for s, n, b0 in bg_runs(al):
        if b0 is None:
            # the map's clamped entries, so that the round trip gives the file's map back
            bg.append(schema.Gap(source_range=rt.TimeRange(rt.RationalTime(0, fr), rt.RationalTime(n, fr)),
                                 metadata={"vidkompy": {"uncovered": True, "bg_frames": fmap[s:s + n]}}))
            continue
        # source start in BG's own time; length in timeline (FG) frames: one BG frame each
        bg.append(schema.Clip(name=f"BG {b0}-{b0 + n - 1}", media_reference=_ref(otio_, al.bg.path, al.bg.frames, br),
                              source_range=rt.TimeRange(rt.RationalTime(b0, br), rt.RationalTime(n, fr)),
                              metadata={"vidkompy": {"fg_start": s, "bg_start": b0, "frames": n}}))
    fg = schema.Track(name=FG_TRACK, kind=schema.TrackKind.Video)
    for s, e, k in _fg_segments(al):
        meta = _placement(al, s, e, k)
        clip = schema.Clip(name=f"FG shot {k}" if k is not None else "FG",
                           media_reference=_ref(otio_, al.fg.path, al.fg.frames, fr),
                           source_range=rt.TimeRange(rt.RationalTime(s, fr), rt.RationalTime(e - s, fr)),
                           metadata={"vidkompy": meta})
        # OTIO has no transform schema: a named effect carries it for tools that look there
        clip.effects.append(schema.Effect(name="placement", effect_name="Transform", metadata={"vidkompy": meta}))
        fg.append(clip)
    tl.tracks.append(bg)
    tl.tracks.append(fg)
    if fg_audio is None:
        fg_audio = _has_audio(al.fg.path)
    if fg_audio:
        au = schema.Track(name=AUDIO_TRACK, kind=schema.TrackKind.Audio)
        au.append(schema.Clip(name="FG audio", media_reference=_ref(otio_, al.fg.path, al.fg.frames, fr),
                              source_range=rt.TimeRange(rt.RationalTime(0, fr), rt.RationalTime(al.fg.frames, fr))))
        tl.tracks.append(au)
    return tl


def _has_audio(path: str) -> bool:
    if not Path(path).is_file():
        return True  # not here to ask: the editor relinks it, sound and all
    from .sources import has_audio

    return has_audio(path)


def _edit_timeline(al: Alignment, fmt: str) -> Any:
    """The timeline an EDL or FCP XML can carry: no effects (the adapters reject or drop
    them), and for an EDL BG's track alone (CMX 3600 has one video track).

    BG's source in-points count BG frames at FG's rate: these formats have one rate, and
    keeping BG's frame numbers is what makes the edit exact (a source timecode at another
    rate would be rounded).
    """
    otio_ = _otio()
    rt = otio_.opentime
    tl = to_timeline(al, fg_audio=False if fmt == "edl" else None)
    fr = al.fg.fps
    if al.bg.fps_num * al.fg.fps_den != al.fg.fps_num * al.bg.fps_den:
        log.warning("BG runs at %d/%d fps and FG at %d/%d: the %s counts BG's frames at FG's rate",
                    al.bg.fps_num, al.bg.fps_den, al.fg.fps_num, al.fg.fps_den, fmt.upper())
    for track in tl.video_tracks():
        for item in track:
            if isinstance(item, otio_.schema.Clip):
                item.effects[:] = []
                if track.name == BG_TRACK:
                    sr = item.source_range
                    item.source_range = rt.TimeRange(rt.RationalTime(round(sr.start_time.value), fr), sr.duration)
                    item.media_reference.available_range = rt.TimeRange(
                        rt.RationalTime(0, fr), rt.RationalTime(al.bg.frames, fr))
    if fmt == "edl":
        keep = [t for t in tl.tracks if t.name == BG_TRACK]
        tl.tracks[:] = []
        for t in keep:
            tl.tracks.append(t)
    return tl


def export(align_file: str | os.PathLike[str], output: str | os.PathLike[str], *, to: str | None = None,
           overwrite: bool = False) -> Path:
    """Write the alignment in ``align_file`` to ``output`` as ``to`` (default: from its suffix)."""
    from .fsutil import check_output

    out = Path(output)
    fmt = to or _SUFFIX.get(out.suffix.lower())
    if fmt not in FORMATS:
        raise VidkompyError(f"{out}: cannot tell the format from the suffix; pass --to {'|'.join(FORMATS)}")
    al = Alignment.load(align_file)
    out = check_output(out, [align_file, al.bg.path, al.fg.path], overwrite=overwrite)
    if fmt == "csv":
        text = to_csv(al)
    else:
        otio_ = _otio()
        tl = to_timeline(al) if fmt == "otio" else _edit_timeline(al, fmt)
        try:
            text = otio_.adapters.write_to_string(tl, adapter_name=_ADAPTER[fmt])
        except (otio_.exceptions.OTIOError, ValueError) as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise VidkompyError(f"cannot write {fmt} ({msg}); is {_PACKAGE[fmt]} installed? "
                                f"pip install 'vidkompy-vs[export]'") from None
    atomic_write_text(out, text)
    return out


# -- reading back ---------------------------------------------------------------------
def read_timeline(path: str | os.PathLike[str], *, rate: float | None = None) -> Any:
    """An OTIO file, EDL (``rate``: its frame rate, e.g. 24000/1001) or FCP XML as a timeline."""
    otio_ = _otio()
    p = Path(path)
    fmt = _SUFFIX.get(p.suffix.lower(), "otio")
    kw = {"rate": rate} if fmt == "edl" and rate is not None else {}
    return otio_.adapters.read_from_file(str(p), adapter_name=_ADAPTER[fmt], **kw)


def _bg_track(tl: Any) -> Any:
    vids = list(tl.video_tracks())
    if not vids:
        raise VidkompyError("the timeline has no video track")
    named = [t for t in vids if t.name == BG_TRACK]
    return named[0] if named else vids[0]  # EDL/FCP readers may rename; BG is the lowest


def frame_map_from_otio(src: Any, *, rate: float | None = None,
                        frames: int | None = None) -> tuple[list[int], list[int]]:
    """Rebuild ``(frame_map, uncovered)`` from a timeline written by :func:`to_timeline` (or
    a path to one, an EDL or FCP XML of it; ``rate`` is an EDL's frame rate).

    Each clip on the BG track gives one BG frame per timeline frame from its source
    start; a gap gives uncovered frames. EDL and FCP XML keep no gap at the ends of a
    track: ``frames`` (FG's length) restores the trailing one, an EDL's first record
    time the leading one. An uncovered frame's map entry comes from the gap's metadata
    where it was kept (OTIO); else it is made as the aligner makes it: the BG frame of
    the nearest covered FG frame (the one before on a tie).
    """
    otio_ = _otio()
    tl = read_timeline(src, rate=rate) if isinstance(src, (str, os.PathLike)) else src
    track = _bg_track(tl)

    def count(t: Any) -> int:
        return round(t.value_rescaled_to(rate) if rate else t.value)

    fmap: list[int | None] = []
    unc: list[int] = []

    def gap(n: int, kept: list[int] | None = None) -> None:
        unc.extend(range(len(fmap), len(fmap) + n))
        fmap.extend(list(kept) if kept is not None and len(kept) == n else [None] * n)

    if track.source_range is not None and count(track.source_range.start_time) < 0:
        # the EDL reader starts the track at its first event: a start of -k frames is a
        # first record time k frames after the timeline's start
        gap(-count(track.source_range.start_time))
    for item in track:
        if isinstance(item, otio_.schema.Transition):
            raise VidkompyError("the BG track has a transition: not a frame map")
        n = count(item.duration())
        if isinstance(item, otio_.schema.Gap):
            gap(n, (item.metadata.get("vidkompy") or {}).get("bg_frames"))
            continue
        b0 = round(item.trimmed_range().start_time.value)  # in the clip's own (BG's) rate: BG frame numbers
        fmap.extend(range(b0, b0 + n))
    if frames is not None and len(fmap) < frames:
        gap(frames - len(fmap))
    return _fill_nearest(fmap), unc


def _fill_nearest(fmap: list[int | None]) -> list[int]:
    """Entries not known (None) from the nearest known one, the one before on a tie."""
    known = [i for i, v in enumerate(fmap) if v is not None]
    if not known:
        return [0] * len(fmap)
    out: list[int] = []
    k = 0  # known[k] is the first known index at or after i
    for i, v in enumerate(fmap):
        while k < len(known) and known[k] < i:
            k += 1
        if v is None:
            before = known[k - 1] if k > 0 else None
            after = known[k] if k < len(known) else None
            v = fmap[before if after is None or (before is not None and i - before <= after - i) else after]
        out.append(v)
    return out
