"""ffmpeg and ffprobe for the benchmarks' footage, without either on PATH.

``FFMPEG`` is the binary the package runs (:func:`vidkompy_vs.ffpipe.ffmpeg_binary`: the
imageio-ffmpeg wheel's unless ``VIDKOMPY_VS_FFMPEG`` names one); what the benchmarks asked
ffprobe is read with PyAV, which has no ffprobe-like binary.
"""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import av

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vidkompy_vs.ffpipe import ffmpeg_binary  # noqa: E402

FFMPEG = ffmpeg_binary()


def _seconds(value: int | None, time_base: Fraction | None) -> float | None:
    return None if value is None or time_base is None else float(value * time_base)


def count_frames(path: Path | str) -> int:
    """Video frames a decode gives (edit lists applied; ffprobe's ``nb_read_frames``)."""
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def count_packets(path: Path | str) -> int:
    """Video packets (ffprobe's ``nb_read_packets``: demux only)."""
    with av.open(str(path)) as c:
        return sum(1 for p in c.demux(video=0) if p.size)


def packets(path: Path | str) -> list[tuple[int | None, bool]]:
    """(pts, keyframe) of each video packet in file order (ffprobe ``packet=pts,flags``)."""
    with av.open(str(path)) as c:
        return [(p.pts, p.is_keyframe) for p in c.demux(video=0) if p.size]


def streams(path: Path | str, *, frames: bool = False) -> dict:
    """The facts the benchmarks read from ``ffprobe -show_streams -show_format``, same keys:
    ``format.duration``, and per stream ``codec_type``, ``width``/``height`` (video),
    ``duration``, ``start_time``, and with ``frames`` the video's ``nb_read_frames``."""
    with av.open(str(path)) as c:
        out = {"format": {"duration": None if c.duration is None else c.duration / av.time_base}, "streams": []}
        for s in c.streams:
            d = {"codec_type": s.type, "duration": _seconds(s.duration, s.time_base),
                 "start_time": _seconds(s.start_time, s.time_base)}
            d = {k: v for k, v in d.items() if v is not None}  # ffprobe leaves unknown fields out
            if s.type == "video":
                d["width"], d["height"] = s.codec_context.width, s.codec_context.height
            out["streams"].append(d)
    if frames:
        v = next(d for d in out["streams"] if d["codec_type"] == "video")
        v["nb_read_frames"] = count_frames(path)
    return out
