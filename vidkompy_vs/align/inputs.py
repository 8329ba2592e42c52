"""The first stage: what the user asked for, and both inputs probed and checked."""

from __future__ import annotations

import dataclasses
import math
import os
import threading
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..alignment import check_fits
from ..errors import VidkompyError
from ..sources import Probe, open_video, probe_clip
from .run import Job, Run

METHODS = ("auto", "audio", "visual")


class Request(NamedTuple):
    """What the caller asked for: the temporal ``method`` and any placement given by hand."""

    method: str = "auto"
    x: float | None = None
    y: float | None = None
    scale: float | None = None

    @property
    def manual(self) -> bool:
        return self.x is not None or self.y is not None

    @property
    def scale_or_1(self) -> float:
        return 1.0 if self.scale is None else float(self.scale)

    def check(self) -> Request:
        if self.method not in METHODS:
            raise VidkompyError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.scale is not None and (not math.isfinite(self.scale) or self.scale <= 0):
            raise VidkompyError(f"--scale must be a positive number, got {self.scale}")
        return self


@dataclass
class Input:
    """One side of the pair: its path, its probe and (once opened) its frame-server clip.

    FG with bars baked in is aligned as its picture area alone (:meth:`picture`):
    ``probe`` then has that area's size, ``origin`` is its corner in the file's frame and
    ``file_probe`` the file's own probe."""

    name: str  # "BG" or "FG", for messages
    path: str
    probe: Probe
    clip: Any = None  # vs.VideoNode, opened by :meth:`open` (an index build: only when aligning)
    origin: tuple[int, int] = (0, 0)
    file_probe: Probe | None = None
    # a caller's VideoNode (uncut, checked: :func:`nodes.analysis_clip`) and its content
    # key: every read then goes through the frame server, none to a file
    node: Any = None
    node_key: str | None = None

    @property
    def size(self) -> tuple[int, int]:
        return self.probe.width, self.probe.height

    @property
    def file(self) -> Probe:
        return self.file_probe or self.probe

    def open(self) -> Input:
        if self.clip is None:
            self.clip = open_video(self.probe.path)
        return self

    def picture(self, active: list[int]) -> Input:
        """This input cut to ``active`` = [x, y, w, h] (its picture area inside bars)."""
        x, y, w, h = active
        fw, fh = self.file.width, self.file.height
        clip = self.open().clip.std.Crop(left=x, right=fw - x - w, top=y, bottom=fh - y - h)
        return Input(self.name, self.path, dataclasses.replace(self.file, width=w, height=h), clip, (x, y), self.file,
                     self.node, self.node_key)

    @property
    def reads(self) -> Any:
        """What BG's window reads decode: the file, or the node through the frame server."""
        return self.probe.path if self.node is None else self.node

    def file_crop(self, crop: tuple[int, int, int, int] | None) -> tuple[int, int, int, int] | None:
        """``crop`` of this input's frames as a crop of the file's frames."""
        if self.file_probe is None:
            return crop
        x, y = self.origin
        return (x + crop[0], y + crop[1], crop[2], crop[3]) if crop else (x, y, self.probe.width, self.probe.height)

    def cut(self, img: Any) -> Any:
        """A full-size picture of the file as one of this input's frames."""
        if self.file_probe is None:
            return img
        x, y = self.origin
        return img[y:y + self.probe.height, x:x + self.probe.width]


class Probing:
    """Both inputs' probes, started first thing (a cached result needs them too), side by
    side and beside the result-cache lookup; each keeps the frame-server clip it opened
    to look (an index read and a decoder set up), handed over once the call knows it
    aligns (:meth:`decide`)."""

    def __init__(self, bg: str | os.PathLike[str], fg: str | os.PathLike[str]) -> None:
        self._got = (threading.Event(), threading.Event())
        self._probes: list[Probe | None] = [None, None]
        self._decided = threading.Event()
        self._open = False
        self.jobs = (Job(self._one, 0, bg), Job(self._one, 1, fg))

    def _one(self, i: int, path: str | os.PathLike[str]) -> tuple[Probe, Any]:
        try:
            p, clip = probe_clip(path)  # (the clip it opened to look is the one an alignment reads)
            self._probes[i] = p
        finally:
            self._got[i].set()
        self._decided.wait()
        return p, clip if self._open else None

    def decide(self, open_clips: bool) -> None:
        """Whether the probes go on to open the clips (not for a cached result); the probe
        jobs wait for this, so every call that makes a :class:`Probing` must make it."""
        self._open = open_clips
        self._decided.set()

    def has_audio(self, i: int) -> bool:
        """Whether input ``i`` (0: BG, 1: FG) has sound, as soon as its probe is in (its
        error, if it failed)."""
        self._got[i].wait()
        p = self._probes[i]
        if p is None:
            self.jobs[i].get()  # raises the probe's error
            raise AssertionError("a probe that failed raised")
        return p.has_audio

    def join(self) -> None:
        if not self._decided.is_set():
            self.decide(False)  # (a call that ended before deciding: no job waits for ever)
        for j in self.jobs:
            j.join()


def probe_inputs(bg: str | os.PathLike[str], fg: str | os.PathLike[str], req: Request,
                 run: Run, probing: Probing | None = None) -> tuple[Input, Input]:
    """Both inputs probed (each probe builds an index, a demux pass: both at once;
    ``probing``: probes already under way) and checked against the request; notes on
    what the frame server reads differently."""
    if probing is None:
        probing = Probing(bg, fg)
        probing.decide(False)
    # (FG's first: the first error reported names FG when both fail, as before)
    fg_probe, fg_clip = probing.jobs[1].get()
    bg_probe, bg_clip = probing.jobs[0].get()
    check_fits((fg_probe.width, fg_probe.height), (bg_probe.width, bg_probe.height), req.scale)
    if req.method == "audio":
        missing = [n for n, p in (("BG", bg_probe), ("FG", fg_probe)) if not p.has_audio]
        if missing:
            raise VidkompyError(f"--method audio needs audio in both inputs; {' and '.join(missing)} has none")
    _notes(bg_probe, fg_probe, run)
    run.trace("probed")
    return Input("BG", os.fspath(bg), bg_probe, bg_clip), Input("FG", os.fspath(fg), fg_probe, fg_clip)


def _notes(bg_probe: Probe, fg_probe: Probe, run: Run) -> None:
    for name, p in (("BG", bg_probe), ("FG", fg_probe)):
        if p.vfr:
            run.note(f"{name} has a variable frame rate; read at a constant "
                     f"{float(p.fps):.3f} fps (frames repeated or dropped by their timestamps)")
        if p.rotation:
            run.note(f"{name} is flagged to be shown rotated by {p.rotation} degrees; "
                     "vidkompy-vs works on the stored picture (rotate it first to composite it upright)")
    if bg_probe.sar != fg_probe.sar:
        run.note(f"FG's pixels are {fg_probe.sar.numerator}:{fg_probe.sar.denominator} and BG's "
                 f"{bg_probe.sar.numerator}:{bg_probe.sar.denominator} (non-square pixels): vidkompy-vs matches "
                 "stored pixels with one scale for both axes; resample FG to BG's pixel shape first "
                 "if the placement is off")
