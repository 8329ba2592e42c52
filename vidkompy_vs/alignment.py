"""The alignment: where FG sits in BG and which BG frame goes under each FG frame.

Plain data with a JSON round-trip (schema ``vidkompy-vs/alignment@1``). Loading checks
every field and reports the first fault in one line; nothing is executed or unpickled.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import VidkompyError
from .fsutil import atomic_write_text

if TYPE_CHECKING:  # loading an alignment file must not load VapourSynth
    from .sources import Probe

SCHEMA = "vidkompy-vs/alignment@1"

# Sanity limits for loaded files. A value outside them cannot come from an alignment of
# real inputs, and some would make ``comp`` build an absurd graph (FG scaled to nothing,
# a resize to millions of pixels) that hangs or crashes instead of failing.
MAX_SIDE = 1 << 16  # pixels
MAX_FRAMES = 1 << 28
FPS_RANGE = (0.1, 1000.0)
MIN_FG_PX = 2.0  # FG's smaller side after scaling
MAX_FG_OVER_BG = 16.0  # FG's scaled sides against BG's
RATE_RANGE = (0.01, 100.0)  # BG seconds per FG second
SLACK = 1e-3  # for values rounded on the way to the file (float32 similarities)


@dataclass
class MediaInfo:
    """The probe facts an alignment was made for."""

    path: str
    width: int
    height: int
    fps_num: int
    fps_den: int
    frames: int

    @classmethod
    def from_probe(cls, p: Probe) -> MediaInfo:
        return cls(p.path, p.width, p.height, p.fps_num, p.fps_den, p.frames)

    @property
    def fps(self) -> float:
        return self.fps_num / self.fps_den


@dataclass
class Placement:
    """FG scaled by ``scale`` has its top-left at (``x``, ``y``) in BG pixels, found by
    ``method`` with ``confidence`` (0..1): what the spatial engine returns for one pair or
    many."""

    x: float
    y: float
    scale: float = 1.0
    confidence: float = 0.0
    method: str = ""


@dataclass
class Spatial(Placement):
    """The alignment file's placement: a :class:`Placement` (so it serves wherever one is
    asked for, e.g. as a refinement prior) plus ``track``, which, when set, holds one
    ``[x, y, scale]`` per FG frame and overrides the constant placement frame by frame.
    """

    method: str = "center"
    track: list[list[float]] | None = None
    # FG's picture area [x, y, w, h] in FG pixels when FG has bars baked in (None: all of
    # FG is picture); a shot's own ``active`` overrides it for that shot's frames
    active: list[int] | None = None

    @classmethod
    def of(cls, pl: Placement) -> Spatial:
        """The engine's placement as the file's (the one conversion between them)."""
        if isinstance(pl, Spatial):
            return pl
        return cls(x=float(pl.x), y=float(pl.y), scale=float(pl.scale), confidence=float(pl.confidence),
                   method=str(pl.method))

    def at(self, n: int) -> tuple[float, float, float]:
        if self.track:
            x, y, s = self.track[n]
            return float(x), float(y), float(s)
        return self.x, self.y, self.scale


@dataclass
class Temporal:
    """``frame_map[i]`` is the BG frame under FG frame ``i``.

    ``offset_s`` and ``rate`` describe the fitted line: BG time = offset_s + rate * FG time.
    ``uncovered`` lists FG frames that BG has no frame for (their map entry is clamped).
    """

    frame_map: list[int]
    similarity: list[float]
    confidence: float = 0.0
    method: str = "start"
    offset_s: float = 0.0
    rate: float = 1.0
    uncovered: list[int] = field(default_factory=list)


@dataclass
class Shot:
    """One FG shot: FG frames ``fg_start`` to ``fg_end`` (end exclusive) lie over BG frames
    ``bg_start`` to ``bg_end`` (end exclusive, the span the map uses), with FG placed at
    (``x``, ``y``, ``scale``) at the shot's start, matched with ``confidence`` (0..1).
    ``active`` is FG's picture area ``[x, y, w, h]`` in FG pixels (bars excluded), or None
    for the whole frame.
    """

    fg_start: int
    fg_end: int
    bg_start: int
    bg_end: int
    x: float
    y: float
    scale: float = 1.0
    confidence: float = 0.0
    active: list[int] | None = None


@dataclass
class Alignment:
    bg: MediaInfo
    fg: MediaInfo
    spatial: Spatial
    temporal: Temporal
    shots: list[Shot] = field(default_factory=list)
    schema: str = SCHEMA

    def active_at(self, n: int) -> list[int] | None:
        """FG's picture area [x, y, w, h] at FG frame ``n`` (None: the whole frame)."""
        for sh in self.shots:
            if sh.fg_start <= n < sh.fg_end and sh.active is not None:
                return sh.active
        return self.spatial.active

    def jumps(self) -> int:
        """Places where the map jumps: back, or forward over more BG frames than the rates
        explain (BG frames FG never shows)."""
        d = [b - a for a, b in zip(self.temporal.frame_map, self.temporal.frame_map[1:])]
        step = (self.bg.fps / self.fg.fps) * self.temporal.rate
        return sum(1 for v in d if v < 0 or v > 2 + 2 * step)

    def uncovered_spans(self) -> list[tuple[int, int]]:
        """Runs of FG frames BG does not have, as (first, last) pairs."""
        out: list[tuple[int, int]] = []
        for i in sorted(self.temporal.uncovered):
            if out and i == out[-1][1] + 1:
                out[-1] = (out[-1][0], i)
            else:
                out.append((i, i))
        return out

    def shot_index(self) -> list[int]:
        """The shot number of each FG frame (0 for every frame when no shots are recorded)."""
        out = [0] * self.fg.frames
        for k, sh in enumerate(self.shots):
            for i in range(max(sh.fg_start, 0), min(sh.fg_end, self.fg.frames)):
                out[i] = k
        return out

    # -- construction -------------------------------------------------------------
    @classmethod
    def simple(cls, bg: Probe, fg: Probe, *, x: float | None = None, y: float | None = None,
               scale: float = 1.0) -> Alignment:
        """Start-aligned, real-time map and FG centred (unless x/y given): the fallback."""
        fw, fh = fg.width * scale, fg.height * scale
        sx = (bg.width - fw) / 2 if x is None else x
        sy = (bg.height - fh) / 2 if y is None else y
        tmap, uncovered = realtime_map(fg.frames, fg.fps_num, fg.fps_den, bg.frames, bg.fps_num, bg.fps_den)
        return cls(
            bg=MediaInfo.from_probe(bg),
            fg=MediaInfo.from_probe(fg),
            spatial=Spatial(x=float(sx), y=float(sy), scale=float(scale), confidence=0.0,
                            method="center" if x is None and y is None else "manual"),
            temporal=Temporal(frame_map=tmap, similarity=[0.0] * fg.frames, confidence=0.0,
                              method="start", offset_s=0.0, rate=1.0, uncovered=uncovered),
        )

    # -- JSON ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d = {"schema": d.pop("schema"), **d}
        for k in ("track", "active"):
            if d["spatial"][k] is None:
                del d["spatial"][k]
        if not d["shots"]:
            del d["shots"]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write atomically: a temp file beside ``path``, then rename."""
        atomic_write_text(path, self.to_json() + "\n")

    @classmethod
    def from_dict(cls, d: Any) -> Alignment:
        return _parse(d)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Alignment:
        p = Path(path)
        if not p.is_file():
            raise VidkompyError(f"{p}: no such alignment file")
        try:
            d = json.loads(p.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
            raise VidkompyError(f"{p}: not a JSON alignment file ({str(e)[:80]})") from None
        try:
            return _parse(d)
        except VidkompyError as e:
            raise VidkompyError(f"{p}: {e}") from None

    # -- fitting to inputs --------------------------------------------------------
    def check_inputs(self, bg: Probe, fg: Probe) -> None:
        """Raise when this alignment was not made for inputs shaped like ``bg``/``fg``."""
        for name, info, probe_ in (("BG", self.bg, bg), ("FG", self.fg, fg)):
            got = (probe_.width, probe_.height, probe_.frames)
            want = (info.width, info.height, info.frames)
            if got != want:
                raise VidkompyError(
                    f"alignment does not fit the inputs: {name} is {got[0]}x{got[1]}, {got[2]} frames; "
                    f"the alignment expects {want[0]}x{want[1]}, {want[2]} frames"
                )


def check_fits(fg_size: tuple[int, int], bg_size: tuple[int, int], scale: float | None, *,
               slack: float = 1e-6, hint: str = "pass --scale to shrink it") -> None:
    """Raise when FG, scaled by ``scale`` (None: 1), does not fit inside BG (within ``slack`` px)."""
    s = 1.0 if scale is None else scale
    (fw, fh), (bw, bh) = fg_size, bg_size
    if fw * s > bw + slack or fh * s > bh + slack:
        what = "" if scale in (None, 1.0) else f" scaled by {s:g}"
        raise VidkompyError(f"FG ({fw}x{fh}){what} is larger than BG ({bw}x{bh}); {hint}")


def realtime_map(fg_frames: int, fg_num: int, fg_den: int, bg_frames: int, bg_num: int, bg_den: int,
                 offset_s: float = 0.0, rate: float = 1.0) -> tuple[list[int], list[int]]:
    """BG frame shown at each FG frame's time on the line BG t = offset_s + rate * FG t.

    Returns the map (clamped into BG) and the FG frames that fall outside BG.
    """
    import numpy as np

    t = np.arange(fg_frames) * (fg_den / fg_num)
    # The small epsilon keeps exact frame boundaries (e.g. 30->60 fps) on the frame they start.
    idx = np.floor((offset_s + rate * t) * (bg_num / bg_den) + 1e-6).astype(np.int64)
    uncovered = np.flatnonzero((idx < 0) | (idx >= bg_frames))
    return np.clip(idx, 0, bg_frames - 1).tolist(), uncovered.tolist()


# -- validation -------------------------------------------------------------------
def _need(d: Any, key: str, where: str) -> Any:
    if not isinstance(d, dict):
        raise VidkompyError(f"{where} must be an object")
    if key not in d:
        raise VidkompyError(f"{where}.{key} is missing")
    return d[key]


def _num(v: Any, where: str, *, positive: bool = False, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise VidkompyError(f"{where} must be a finite number, got {v!r}")
    if positive and v <= 0:
        raise VidkompyError(f"{where} must be > 0, got {v!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise VidkompyError(f"{where} = {v!r} is out of range [{lo:g}, {hi:g}]")
    return float(v)


def _int(v: Any, where: str, *, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise VidkompyError(f"{where} must be an integer, got {v!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise VidkompyError(f"{where} = {v} is out of range [{lo}, {hi}]")
    return v


def _str(v: Any, where: str) -> str:
    if not isinstance(v, str) or len(v) > 4096:
        raise VidkompyError(f"{where} must be a string (up to 4096 characters)")
    return v


def _unit(v: Any, where: str) -> float:
    """A confidence or similarity: 0..1 (similarities -1..1), a little rounding allowed."""
    return _num(v, where, lo=-1.0 - SLACK, hi=1.0 + SLACK)


def check_placement(x: float, y: float, scale: float, bg: MediaInfo | Probe, fg: MediaInfo | Probe,
                    where: str = "spatial.") -> None:
    """Raise unless FG scaled by ``scale`` at (``x``, ``y``) is a placement ``comp`` can build.

    FG must keep at least 2 px a side and stay within 16x BG's size, and its corner
    within a few BG sizes of BG: anything else is no alignment of these inputs, and a
    value such as ``scale = 1e-9`` would otherwise send the renderer into a resize to
    nothing (or to millions of pixels) that never ends.
    """
    for name, v in (("x", x), ("y", y), ("scale", scale)):
        _num(v, f"{where}{name}", positive=name == "scale")
    fw, fh = fg.width * scale, fg.height * scale
    if min(fw, fh) < MIN_FG_PX or fw > MAX_FG_OVER_BG * bg.width or fh > MAX_FG_OVER_BG * bg.height:
        raise VidkompyError(f"{where}scale = {scale:g} makes FG {fw:.4g}x{fh:.4g} px; it must be at least "
                            f"{MIN_FG_PX:g} px a side and at most {MAX_FG_OVER_BG:g}x BG ({bg.width}x{bg.height})")
    for name, v, lim in (("x", x, 4 * bg.width + fw), ("y", y, 4 * bg.height + fh)):
        if abs(v) > lim:
            raise VidkompyError(f"{where}{name} = {v:g} is out of range [{-lim:g}, {lim:g}] (a few BG sizes)")


def _media(d: Any, where: str) -> MediaInfo:
    m = MediaInfo(
        path=_str(_need(d, "path", where), f"{where}.path"),
        width=_int(_need(d, "width", where), f"{where}.width", lo=1, hi=MAX_SIDE),
        height=_int(_need(d, "height", where), f"{where}.height", lo=1, hi=MAX_SIDE),
        fps_num=_int(_need(d, "fps_num", where), f"{where}.fps_num", lo=1, hi=1 << 31),
        fps_den=_int(_need(d, "fps_den", where), f"{where}.fps_den", lo=1, hi=1 << 31),
        frames=_int(_need(d, "frames", where), f"{where}.frames", lo=1, hi=MAX_FRAMES),
    )
    if not FPS_RANGE[0] <= m.fps <= FPS_RANGE[1]:
        raise VidkompyError(f"{where}: frame rate {m.fps_num}/{m.fps_den} is out of range "
                            f"[{FPS_RANGE[0]:g}, {FPS_RANGE[1]:g}] fps")
    return m


def _list(v: Any, where: str, n: int | None = None) -> list:
    if not isinstance(v, list) or (n is not None and len(v) != n):
        got = len(v) if isinstance(v, list) else type(v).__name__
        raise VidkompyError(f"{where} has {got} entries; FG has {n} frames" if n is not None
                            else f"{where} must be a list")
    return v


def _parse(d: Any) -> Alignment:
    if not isinstance(d, dict):
        raise VidkompyError("alignment must be a JSON object")
    schema = d.get("schema")
    if schema != SCHEMA:
        raise VidkompyError(f"unknown schema {schema!r}; expected {SCHEMA!r}")
    bg = _media(_need(d, "bg", "alignment"), "bg")
    fg = _media(_need(d, "fg", "alignment"), "fg")
    return Alignment(bg=bg, fg=fg, spatial=_spatial(_need(d, "spatial", "alignment"), bg, fg),
                     temporal=_temporal(_need(d, "temporal", "alignment"), bg, fg),
                     shots=_shots(d.get("shots", []), bg, fg))


def _spatial(sd: Any, bg: MediaInfo, fg: MediaInfo) -> Spatial:
    track = sd.get("track") if isinstance(sd, dict) else None
    if track is not None:
        _list(track, "spatial.track", fg.frames)
        for i, row in enumerate(track):
            if not isinstance(row, list) or len(row) != 3:
                raise VidkompyError(f"spatial.track[{i}] must be [x, y, scale]")
            w = f"spatial.track[{i}]"
            for k, v in enumerate(row):
                _num(v, f"{w}[{k}]")
            check_placement(row[0], row[1], row[2], bg, fg, f"{w}.")
        track = [[float(v) for v in row] for row in track]
    spatial = Spatial(
        x=_num(_need(sd, "x", "spatial"), "spatial.x"),
        y=_num(_need(sd, "y", "spatial"), "spatial.y"),
        scale=_num(sd.get("scale", 1.0), "spatial.scale", positive=True),
        confidence=_unit(sd.get("confidence", 0.0), "spatial.confidence"),
        method=_str(sd.get("method", ""), "spatial.method"),
        track=track,
        active=_active(sd.get("active") if isinstance(sd, dict) else None, fg, "spatial.active"),
    )
    check_placement(spatial.x, spatial.y, spatial.scale, bg, fg)
    return spatial


def _temporal(td: Any, bg: MediaInfo, fg: MediaInfo) -> Temporal:
    fmap = _list(_need(td, "frame_map", "temporal"), "temporal.frame_map", fg.frames)
    for i, v in enumerate(fmap):
        _int(v, f"temporal.frame_map[{i}]", lo=0, hi=bg.frames - 1)
    sim = _list(td.get("similarity", [0.0] * fg.frames), "temporal.similarity", fg.frames)
    sim = [_unit(v, f"temporal.similarity[{i}]") for i, v in enumerate(sim)]
    unc = _list(td.get("uncovered", []), "temporal.uncovered")
    unc = [_int(v, f"temporal.uncovered[{i}]", lo=0, hi=fg.frames - 1) for i, v in enumerate(unc)]
    if any(b <= a for a, b in zip(unc, unc[1:], strict=False)):
        raise VidkompyError("temporal.uncovered must list FG frames in increasing order, each once")
    rate = _num(td.get("rate", 1.0), "temporal.rate", lo=RATE_RANGE[0], hi=RATE_RANGE[1])
    # BG time = offset_s + rate * FG time: an offset beyond both lengths (and a minute) lines
    # nothing up, and as an audio delay it would have ffmpeg make hours of silence
    lim = 2 * (bg.frames / bg.fps + rate * fg.frames / fg.fps) + 60
    return Temporal(
        frame_map=list(fmap),
        similarity=sim,
        confidence=_unit(td.get("confidence", 0.0), "temporal.confidence"),
        method=_str(td.get("method", ""), "temporal.method"),
        offset_s=_num(td.get("offset_s", 0.0), "temporal.offset_s", lo=-lim, hi=lim),
        rate=rate,
        uncovered=unc,
    )


def _active(act: Any, fg: MediaInfo, w: str) -> list[int] | None:
    if act is None:
        return None
    if not isinstance(act, list) or len(act) != 4:
        raise VidkompyError(f"{w} must be [x, y, w, h]")
    ax = _int(act[0], f"{w}[0]", lo=0, hi=fg.width - 1)
    ay = _int(act[1], f"{w}[1]", lo=0, hi=fg.height - 1)
    return [ax, ay, _int(act[2], f"{w}[2]", lo=1, hi=fg.width - ax), _int(act[3], f"{w}[3]", lo=1, hi=fg.height - ay)]


def _shots(v: Any, bg: MediaInfo, fg: MediaInfo) -> list[Shot]:
    _list(v, "shots")
    out: list[Shot] = []
    prev_end = 0
    for i, sd in enumerate(v):
        w = f"shots[{i}]"
        fs = _int(_need(sd, "fg_start", w), f"{w}.fg_start", lo=prev_end, hi=fg.frames - 1)
        fe = _int(_need(sd, "fg_end", w), f"{w}.fg_end", lo=fs + 1, hi=fg.frames)
        bs = _int(_need(sd, "bg_start", w), f"{w}.bg_start", lo=0, hi=bg.frames - 1)
        be = _int(_need(sd, "bg_end", w), f"{w}.bg_end", lo=bs + 1, hi=bg.frames)
        act = _active(sd.get("active"), fg, f"{w}.active")
        sh = Shot(fs, fe, bs, be, x=_num(_need(sd, "x", w), f"{w}.x"), y=_num(_need(sd, "y", w), f"{w}.y"),
                  scale=_num(sd.get("scale", 1.0), f"{w}.scale", positive=True),
                  confidence=_unit(sd.get("confidence", 0.0), f"{w}.confidence"), active=act)
        check_placement(sh.x, sh.y, sh.scale, bg, fg, f"{w}.")
        out.append(sh)
        prev_end = fe
    return out
