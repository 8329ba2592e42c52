"""Inputs read in-process through PyAV (FFmpeg's libraries from the ``av`` wheel): the facts
about a file's streams, every frame for the analysis passes, windows of reference frames
and the sound as mono float. Nothing here starts a process or needs ``ffmpeg`` on PATH.

Pictures are the decoder's own, bit for bit the frame server's (LWLibav decodes with
FFmpeg's decoders too, and they are exact by their standards): full-size grey pictures are handed over exactly as
``sources.frame_arrays(gray=True)`` makes them (:func:`gray8`). Frames come in
presentation order, the ones an MP4/MOV edit list discards left out, as ffmpeg and the
frame server (once ``sources.open_video`` has dropped the slots LWLibav shows for them)
number them; a variable-frame-rate stream is the exception (the frame server reads it at a
constant rate), which the callers leave to the frame server. Display rotation is never
applied: the frame server ignores it and frame coordinates must be its own.
"""

from __future__ import annotations

import contextlib
import math
import queue
import re
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

import av
import av.error
import numpy as np

from .errors import VidkompyError

DecodeError = av.error.FFmpegError  # what PyAV raises on input FFmpeg cannot read

__all__ = ["DecodeError", "VideoTrack", "AudioTrack", "Tracks", "tracks", "discarded_packets", "open_input", "frames",
           "frames_ahead", "plane_view", "luma", "Shrink", "gray8", "gray8_exact", "to_gray8", "full_range",
           "frame_number", "window", "audio"]


# -- the streams ----------------------------------------------------------------------
@dataclass(frozen=True)
class VideoTrack:
    """The first video stream (cover art aside), as the container describes it."""

    index: int
    codec: str
    width: int
    height: int
    pix_fmt: str  # FFmpeg's name; "" when the container does not say
    rate: Fraction | None  # nominal frame rate (ffprobe's r_frame_rate)
    avg_rate: Fraction | None  # frames over duration (avg_frame_rate)
    duration: float | None  # seconds of the container's timeline (an edit list shortens it)
    stored: int  # frames the container stores (0: it does not say)
    start: float | None  # start time in the container's timeline
    sar: Fraction  # sample (pixel) aspect ratio
    rotation: int  # display rotation flag in degrees, 0..359 (the frame server ignores it)


@dataclass(frozen=True)
class AudioTrack:
    """The first audio stream."""

    index: int
    codec: str
    rate: int
    channels: int
    start: float | None


@dataclass(frozen=True)
class Tracks:
    video: VideoTrack | None
    audio: AudioTrack | None


def _fraction(r: object) -> Fraction | None:
    try:
        f = Fraction(r) if r is not None else None  # type: ignore[arg-type]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return f if f is not None and f > 0 else None


def _seconds(ts: int | None, tb: Fraction | None) -> float | None:
    return None if ts is None or tb is None else float(ts * tb)


def _rotation(matrix: bytes | None) -> int:
    """Degrees of a display matrix (``av_display_rotation_get``), truncated to whole degrees
    as ffprobe printed them."""
    if not matrix or len(matrix) < 36:
        return 0
    m = [v / 65536.0 for v in struct.unpack("<9i", matrix[:36])]
    s0, s1 = math.hypot(m[0], m[3]), math.hypot(m[1], m[4])
    if s0 == 0 or s1 == 0:
        return 0
    return int(-math.degrees(math.atan2(m[1] / s1, m[0] / s0))) % 360


def _sar(stream: av.video.stream.VideoStream) -> Fraction:
    # as ffprobe (av_guess_sample_aspect_ratio): the container's ratio, else the codec's
    for r in (stream.sample_aspect_ratio, stream.codec_context.sample_aspect_ratio):
        f = _fraction(r)
        if f is not None:
            return f
    return Fraction(1)


def _video_track(s: av.video.stream.VideoStream) -> VideoTrack:
    cc = s.codec_context
    tb = _fraction(s.time_base)
    return VideoTrack(index=s.index, codec=cc.codec.canonical_name, width=int(cc.width), height=int(cc.height),
                      pix_fmt=cc.pix_fmt or "", rate=_fraction(s.base_rate), avg_rate=_fraction(s.average_rate),
                      duration=_seconds(s.duration, tb), stored=int(s.frames or 0), start=_seconds(s.start_time, tb),
                      sar=_sar(s), rotation=_rotation(cc.coded_side_data.get("display_matrix")))


def _audio_track(s: av.audio.stream.AudioStream) -> AudioTrack:
    cc = s.codec_context
    return AudioTrack(index=s.index, codec=cc.codec.canonical_name, rate=int(cc.sample_rate or 0),
                      channels=int(cc.layout.nb_channels if cc.layout is not None else 0),
                      start=_seconds(s.start_time, _fraction(s.time_base)))


@contextlib.contextmanager
def open_input(path: str | Path) -> Iterator[av.container.InputContainer]:
    """``path`` opened for reading; :class:`VidkompyError` when FFmpeg cannot read it."""
    try:
        c = av.open(str(path), "r")
    except (DecodeError, OSError, UnicodeDecodeError) as e:
        if isinstance(e, FileNotFoundError):
            raise VidkompyError(f"{path}: no such file") from None
        if isinstance(e, PermissionError):
            raise VidkompyError(f"{path}: not readable (permission denied)") from None
        raise VidkompyError(f"{path}: not a media file ffmpeg can read") from None
    try:
        yield c
    finally:
        c.close()


@lru_cache(maxsize=64)
def _tracks(path: str, _mtime: int) -> Tracks:
    video = audio = None
    with open_input(path) as c:
        for s in c.streams:
            if s.codec_context is None:
                continue  # a codec FFmpeg does not know: nothing here or in the frame server reads it
            if s.type == "video" and video is None and not (s.disposition & av.stream.Disposition.attached_pic):
                video = _video_track(s)
            elif s.type == "audio" and audio is None:
                audio = _audio_track(s)
    return Tracks(video, audio)


def tracks(path: str | Path) -> Tracks:
    """The first video and audio streams of ``path`` (remembered per file version)."""
    p = Path(path)
    try:
        mtime = p.stat().st_mtime_ns
    except OSError:
        raise VidkompyError(f"{p}: no such file") from None
    return _tracks(str(p), mtime)


def discarded_packets(path: str | Path, n: int) -> int:
    """How many of the first ``n`` packets of the video stream the demuxer flags as
    discarded (what an MP4/MOV edit list hides); -1 when they cannot be read."""
    try:
        video = tracks(path).video
        if video is None:
            return -1
        with open_input(path) as c:
            seen = hidden = 0
            for pkt in c.demux(c.streams[video.index]):
                if pkt.size == 0:
                    continue  # the demuxer's end marker
                hidden += bool(pkt.is_discard)
                seen += 1
                if seen >= n:
                    break
            return hidden
    except (VidkompyError, DecodeError):
        return -1


# -- pictures -------------------------------------------------------------------------
def frames(container: av.container.InputContainer, index: int, *, skip: str | None = None,
           threads: bool = True) -> Iterator[av.VideoFrame]:
    """Every frame of stream ``index`` in presentation order (those the container
    discards left out). ``skip``: a libavcodec skip_frame level ("BIDIR", "NONKEY")."""
    stream = container.streams[index]
    if threads:
        # frame and slice threads, as ffmpeg decodes: frame threading alone is what makes
        # a long-GOP 1080p decode keep both cores busy
        stream.thread_type = "AUTO"
    if skip is not None:
        stream.codec_context.skip_frame = skip
    for pkt in container.demux(stream):
        try:
            yield from pkt.decode()
        except av.error.InvalidDataError:
            # a damaged packet: ffmpeg and the frame server go on after it too (the callers
            # check the frame count against the frame server's)
            continue


_END = object()


def frames_ahead(path: str | Path, index: int, *, depth: int = 6) -> Iterator[av.VideoFrame]:
    """:func:`frames` of ``path``'s stream ``index``, decoded in a thread of their own up to
    ``depth`` frames ahead of the caller. What the caller does with each frame (scaling,
    copying) then overlaps the decode instead of holding it up (measured on a 1080p pass,
    2 cores: about a sixth less wall time than one loop, for a few percent more CPU).
    Leaving the loop (or closing the generator) stops the decode; its errors come out here."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            with open_input(path) as c:
                for f in frames(c, index):
                    if not put(f):
                        return
            put(_END)
        except BaseException as e:  # noqa: BLE001 - raised in the caller's thread
            put(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        t.join()


# planar (or NV-style semi-planar) YUV and grey: the luma plane holds luma alone, in the
# low bits of each sample
_LUMA = re.compile(r"^(?:(?:yuvj?|yuva)(?:420|422|444|440|411|410)p|gray)(?:9|10|12|14|16)?(?:le)?$"
                   r"|^nv(?:12|21|16|24|42)$")


def gray8_exact(pix_fmt: str) -> bool:
    """Whether :func:`gray8` can hand over frames of ``pix_fmt`` as the frame server does."""
    return bool(_LUMA.match(pix_fmt)) and not pix_fmt.endswith("be")


def plane_view(buf: Any, height: int, line_size: int, width: int, wide: bool = False) -> np.ndarray:
    """A picture plane laid out as FFmpeg lays it (``line_size`` bytes a line, padding at
    each line's end) as a (height, width) view of ``buf``: uint8, or uint16 (``wide``)."""
    dt = np.dtype("<u2" if wide else "u1")
    return np.frombuffer(buf, dt).reshape(height, line_size // dt.itemsize)[:, :width]


def luma(frame: av.VideoFrame) -> np.ndarray:
    """The luma plane as a view of the frame's buffer (uint8, or uint16 above 8 bits)."""
    p = frame.planes[0]
    return plane_view(p, p.height, p.line_size, p.width, frame.format.components[0].bits > 8)


def to_gray8(y: np.ndarray, bits: int, full_range: bool) -> np.ndarray:
    """Luma samples of ``bits`` bits as the frame server's GRAY8 conversion (zimg, no
    dither) makes them: limited-range grey, rounded half to even. Checked against zimg
    for every code value (tests)."""
    if not full_range:
        if bits == 8:
            return np.array(y, np.uint8, copy=True)
        return np.clip(np.rint(y / float(1 << (bits - 8))), 0, 255).astype(np.uint8)
    # full range is squeezed into 16..235
    return np.clip(np.rint(y * (219.0 / ((1 << bits) - 1)) + 16.0), 0, 255).astype(np.uint8)


def full_range(color_range: int, pix_fmt: str) -> bool:
    """Whether a frame's samples span the full range (flagged so, or a ``yuvj`` format)."""
    return color_range == 2 or pix_fmt.startswith("yuvj")  # 2: AVCOL_RANGE_JPEG


def gray8(frame: av.VideoFrame) -> np.ndarray | None:
    """The frame as ``sources.frame_arrays(gray=True)`` gives it (a copy), ``None`` for a
    pixel format whose grey the frame server makes otherwise (RGB, packed YUV)."""
    if not gray8_exact(frame.format.name):
        return None
    return to_gray8(luma(frame), frame.format.components[0].bits, full_range(frame.color_range, frame.format.name))


def frame_number(t: float, start: float, fps: float) -> int | None:
    """The frame that time ``t`` (s) numbers at ``fps`` from ``start``, or ``None`` when it
    lies more than a quarter frame off a whole one (not numbered by a constant rate)."""
    x = (t - start) * fps
    n = int(round(x))
    return n if abs(x - n) <= 0.25 else None


class Shrink:
    """Each frame cropped, area-scaled and turned grey by FFmpeg's own filters in-process
    (the filter chain the ffmpeg pipe ran: full-range grey, every source pixel averaged,
    so fine texture and noise do not alias). Measured beside cropping the luma plane and
    ``cv2.resize(INTER_AREA)``: the filters cost less CPU and give today's planes."""

    def __init__(self, size: tuple[int, int], crop: tuple[int, int, int, int] | None = None) -> None:
        self.size, self.crop = size, crop
        self._key: tuple | None = None
        self._graph: av.filter.Graph | None = None

    def _build(self, frame: av.VideoFrame) -> None:
        g = av.filter.Graph()
        src = g.add_buffer(width=frame.width, height=frame.height, format=frame.format,
                           time_base=frame.time_base or Fraction(1, 1000))
        chain = [src]
        if self.crop is not None:
            cx, cy, cw, ch = self.crop
            chain.append(g.add("crop", f"{cw}:{ch}:{cx}:{cy}:exact=1"))
        chain.append(g.add("scale", f"{self.size[0]}:{self.size[1]}:flags=area"))
        chain.append(g.add("format", "gray"))
        chain.append(g.add("buffersink"))
        for a, b in zip(chain, chain[1:]):
            a.link_to(b)
        g.configure()
        self._graph = g
        self._key = (frame.width, frame.height, frame.format.name)

    def __call__(self, frame: av.VideoFrame) -> np.ndarray:
        if (frame.width, frame.height, frame.format.name) != self._key:
            # (built per picture size: a stream may change size midway)
            self._build(frame)
        assert self._graph is not None
        self._graph.push(frame)
        out = self._graph.pull()
        p = out.planes[0]
        return plane_view(p, p.height, p.line_size, p.width).copy()


def window(path: str | Path, lo: int, hi: int, fps: float, start: float, size: tuple[int, int], *,
           src_size: tuple[int, int] | None = None, want: set[int] | None = None, every: int = 1,
           skip: str = "BIDIR") -> dict[int, np.ndarray] | None:
    """Grey frames numbered ``lo..hi`` from one sequential decode after a keyframe seek,
    skipping what ``skip`` says (libavcodec's skip_frame: "BIDIR" decodes only I/P frames,
    "NONKEY" only keyframes); ``want`` only those, every ``every``-th decoded frame at most;
    at ``size`` (area-scaled grey), or at full size (``size == src_size``) as the frame
    server's grey. Frame ``n`` is the one at ``start + n / fps``; ``None`` when the
    timestamps do not number the frames that way (variable rate) or the pictures cannot
    be had (the caller reads through the frame server)."""
    shape = (size[1], size[0])
    full = size == src_size
    shrink = None if full else Shrink(size)
    out: dict[int, np.ndarray] = {}
    try:
        video = tracks(path).video
        if video is None:
            return None
        with open_input(path) as c:
            stream = c.streams[video.index]
            tb = stream.time_base
            # the keyframe at or before a quarter frame past lo's time: a window starting
            # on a keyframe starts there, not a GOP earlier
            t0 = start + max(0.0, (lo + 0.25) / fps)
            c.seek(int(math.floor(t0 / tb)), stream=stream, backward=True, any_frame=False)
            last = -1
            for k, f in enumerate(frames(c, video.index, skip=skip)):
                if every > 1 and k % every:
                    continue
                if f.pts is None:
                    return None
                n = frame_number(float(f.pts * tb), start, fps)
                if n is None or n <= last:  # not numbered by a constant rate
                    return None
                last = n
                if n > hi:
                    break
                if n >= lo and (want is None or n in want):
                    img = gray8(f) if full else shrink(f)  # type: ignore[misc]
                    if img is None or img.shape != shape:
                        return None
                    out[n] = img
                if want is not None and all(i in out for i in want):
                    break
    except (VidkompyError, DecodeError, ValueError):
        return None
    return out or None


# -- sound ----------------------------------------------------------------------------
def audio(path: str | Path, rate: int) -> np.ndarray:
    """The first audio stream as mono float32 at ``rate`` Hz, from its first sample (FFmpeg's
    resampler, as ``ffmpeg -ac 1 -ar RATE -f f32le`` made it)."""
    info = tracks(path).audio
    if info is None:
        raise VidkompyError(f"{path}: cannot decode audio (no audio stream)")
    chunks: list[np.ndarray] = []
    try:
        with open_input(path) as c:
            stream = c.streams[info.index]
            rs = av.AudioResampler(format="flt", layout="mono", rate=rate)
            for pkt in c.demux(stream):
                try:
                    decoded = pkt.decode()
                except av.error.InvalidDataError:
                    continue  # (ffmpeg goes on after a damaged packet too)
                for fr in decoded:
                    chunks.extend(o.to_ndarray().reshape(-1) for o in rs.resample(fr))
            chunks.extend(o.to_ndarray().reshape(-1) for o in rs.resample(None))
    except (DecodeError, ValueError) as e:
        raise VidkompyError(f"{path}: cannot decode audio ({e})") from None
    return np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)
