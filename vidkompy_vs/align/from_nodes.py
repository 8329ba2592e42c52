"""The prepass's first stage for VapourSynth nodes: ``align(bg_node, fg_node)`` in a
caller's own script (see :mod:`vidkompy_vs.nodes` for the reads).

Each node stands in for a file: its probe comes from the node, its result cache key
from its content, and the audio line from the ``AudioNode`` the caller passes with it
(without one the match is visual only). A path beside a node is opened as one
(:func:`sources.open_video`; its sound, :func:`sources.open_audio`, only when the other
side's sound is given too), so both sides are read alike.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

from .. import nodes as nd
from ..alignment import check_fits
from ..audio import match_audio
from ..errors import VidkompyError
from ..settings import AudioSettings, Settings
from .inputs import Input, Request
from .passes import Early, _warm_imports
from .results import code_key
from .run import Job, Run


def given(*xs: object) -> bool:
    """Whether any of ``xs`` is a node (the pair then goes the node way)."""
    return any(nd.is_node(x) for x in xs)


@dataclass
class _Side:
    name: str
    clip: Any  # the analysis clip (:func:`nodes.analysis_clip`)
    fmt: Any  # the caller's own format
    audio: Any  # AudioNode or None
    key: str = ""


@dataclass
class NodePair:
    """Both sides as checked nodes, with their content keys once asked for."""

    bg: _Side
    fg: _Side

    @classmethod
    def of(cls, bg: object, fg: object, bg_audio: object = None, fg_audio: object = None) -> NodePair:
        sides = []
        want_sound = bg_audio is not None or fg_audio is not None
        for name, v, a in (("BG", bg, bg_audio), ("FG", fg, fg_audio)):
            if isinstance(v, (str, os.PathLike)):
                from ..sources import open_audio, open_video

                if a is None and want_sound:
                    a = open_audio(v)
                v = open_video(v)
            clip = nd.analysis_clip(v, name)
            sides.append(_Side(name, clip, v.format, nd.audio_checked(a, name)))
        return cls(*sides)

    def keys(self) -> tuple[str, str]:
        if not self.bg.key:
            # both at once: each is a few seeks into its own source
            job = Job(nd.content_key, self.bg.clip, "BG")
            self.fg.key = nd.content_key(self.fg.clip, "FG")
            self.bg.key = job.get()
        return self.bg.key, self.fg.key

    def result_key(self, settings: Settings, req: Request) -> str:
        bk, fk = self.keys()
        parts = ("result-nodes", bk, fk, nd.audio_key(self.bg.audio, "bg_audio"),
                 nd.audio_key(self.fg.audio, "fg_audio"), code_key(),
                 json.dumps(settings.to_dict(), sort_keys=True), req.method, req.x, req.y, req.scale)
        return hashlib.sha1(repr(parts).encode()).hexdigest()[:20]

    def start_early(self, req: Request, settings: Settings) -> Early:
        """As :func:`passes.start_early`: imports, and the sound when both sides have it."""
        both = self.bg.audio is not None and self.fg.audio is not None
        audio = Job(audio_match, self.bg.audio, self.fg.audio, settings.audio) \
            if both and req.method in ("auto", "audio") else None
        return Early(warm=Job(_warm_imports), audio=audio)

    def inputs(self, req: Request, run: Run, cache: bool) -> tuple[Input, Input]:
        """Both sides as :class:`Input` s, checked against the request as files are
        (``cache``: their fingerprints are kept under their content keys)."""
        bg_p = nd.node_probe(self.bg.clip, self.bg.audio, self.bg.fmt, "BG")
        fg_p = nd.node_probe(self.fg.clip, self.fg.audio, self.fg.fmt, "FG")
        check_fits((fg_p.width, fg_p.height), (bg_p.width, bg_p.height), req.scale)
        if req.method == "audio":
            missing = [s.name for s in (self.bg, self.fg) if s.audio is None]
            if missing:
                raise VidkompyError(f"method 'audio' needs sound on both sides; pass {' and '.join(missing)}'s "
                                    f"as {' and '.join(m.lower() + '_audio=' for m in missing)} (an AudioNode)")
        if bg_p.sar != fg_p.sar:
            run.note(f"FG's pixels are {fg_p.sar.numerator}:{fg_p.sar.denominator} and BG's "
                     f"{bg_p.sar.numerator}:{bg_p.sar.denominator}: one scale is used for both axes")
        bk, fk = self.keys() if cache else (None, None)
        run.trace("nodes checked")
        return (Input("BG", nd.NODE_PATH, bg_p, self.bg.clip, node=self.bg.clip, node_key=bk),
                Input("FG", nd.NODE_PATH, fg_p, self.fg.clip, node=self.fg.clip, node_key=fk))


def audio_match(bg: Any, fg: Any, cfg: AudioSettings) -> Any:
    """The audio line from two AudioNodes (both read at once)."""
    bg_job = Job(nd.node_audio, bg, cfg.rate, "bg_audio")
    a_fg = nd.node_audio(fg, cfg.rate, "fg_audio")
    a_bg = bg_job.get()
    return match_audio(a_bg, a_fg, cfg.rate, windows=cfg.windows, window_s=cfg.window_s)
