"""Frame reads for the clip-level searches: BG windows by one sequential ffmpeg decode,
single frames through the frame server, and the clock that keeps decoding time apart
from compute time (the benchmark reports both)."""

from __future__ import annotations

import contextlib
import queue
import re
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from .. import ffpipe
from ..errors import VidkompyError

if TYPE_CHECKING:
    import vapoursynth as vs

# a showinfo line: the picture's presentation time
_PTS = re.compile(rb"Parsed_showinfo.*? n: *\d+ .*?pts_time:(-?[0-9.e+-]+)")


class _Window(NamedTuple):
    """What one window read needs to number and keep its pictures."""

    lo: int
    hi: int
    fps: float
    start: float  # the video stream's start time: frame n is at start + n / fps
    shape: tuple[int, int]  # (height, width) of each picture
    want: set[int] | None


def _start_time(path: str) -> float | None:
    from ..sources import video_start

    try:
        return video_start(path)
    except VidkompyError:
        return None


def _window_command(path: str, w: _Window, size: tuple[int, int], src_size: tuple[int, int] | None,
                    every: int, skip: str) -> list[str]:
    # (-noaccurate_seek lands on the keyframe at or before the time: just after lo's own
    # time, so a window starting on a keyframe starts there, not a GOP earlier)
    t0 = max(0.0, (w.lo + 0.25) / w.fps)
    vf = ["select='not(mod(n," + str(every) + "))'" if every > 1 else "null"]
    # full size: the luma plane as it is (8-bit YUV input: equal to the frame server's
    # grey); reduced: any grey will do
    vf.append(f"scale={size[0]}:{size[1]}:flags=area,format=gray" if size != src_size else "extractplanes=y")
    # showinfo last: it checksums every picture it passes (a third of the window's CPU
    # on full-size 1080p frames, next to nothing on the grey copies)
    vf.append("showinfo")
    return [*ffpipe.decoder_head(path, "-nostats", "-skip_frame", skip, "-noaccurate_seek",
                                 "-ss", f"{w.start + t0:.6f}", "-t", f"{(w.hi + 1 - w.lo) / w.fps + 1.0:.6f}",
                                 "-copyts", loglevel="info"),
            "-map", "0:v:0", "-an", "-sn", "-dn", "-fps_mode", "passthrough", "-vf", ",".join(vf),
            "-f", "rawvideo", "-pix_fmt", "gray", "-"]


def _pts_times(proc: subprocess.Popen) -> tuple[queue.Queue, threading.Thread]:
    """Each picture's time from showinfo's lines on stderr, in order; ``None`` at the end."""
    pts: queue.Queue = queue.Queue()

    def errs() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            m = _PTS.search(line)
            if m:
                pts.put(float(m.group(1)))
        pts.put(None)

    th = threading.Thread(target=errs, daemon=True)
    th.start()
    return pts, th


def _collect(proc: subprocess.Popen, pts: queue.Queue, w: _Window) -> dict[int, np.ndarray] | None:
    """The window's pictures by frame number; ``None`` when they are not numbered by
    constant-rate timestamps or the pipe ends early."""
    out: dict[int, np.ndarray] = {}
    last = -1
    assert proc.stdout is not None
    while True:
        t = pts.get(timeout=60)
        if t is None:
            return out
        n = int(round((t - w.start) * w.fps))
        buf = ffpipe.read_exact(proc.stdout, w.shape[0] * w.shape[1])
        if buf is None:
            return None
        if n <= last or abs((t - w.start) * w.fps - n) > 0.25:  # not CFR-numbered: give up
            return None
        last = n
        if n > w.hi:
            return out
        if n >= w.lo and (w.want is None or n in w.want):
            out[n] = np.frombuffer(buf, np.uint8).reshape(w.shape)
        if w.want is not None and all(i in out for i in w.want):
            return out


def window_frames(path: str | vs.VideoNode, lo: int, hi: int, fps: float, size: tuple[int, int], *,
                  src_size: tuple[int, int] | None = None, want: set[int] | None = None, every: int = 1,
                  start: float | None = None, skip: str = "bidir") -> dict[int, np.ndarray] | None:
    """Grey (luma) frames of ``path`` numbered ``lo..hi`` from one sequential ffmpeg decode:
    a keyframe seek to ``lo``, then B-frames skipped (``-skip_frame bidir``: a random
    read through a long GOP decodes every frame up to its target; here only I/P frames are
    decoded). So the result holds the *reference* frames of the window (every frame for
    codecs without B-frames), or only ``want`` of them, every ``every``-th at most
    (``skip="nokey"``: only the keyframes),
    at ``size`` (not scaled when it is ``src_size``). Frame numbers come from the timestamps (CFR input);
    ``None`` when they cannot be had (the caller reads through the frame server).
    ``path`` may be a caller's VideoNode (no file behind it): read through the frame server."""
    if not isinstance(path, str):
        from ..nodes import node_window

        return node_window(path, lo, hi, size, want=want, every=every, skip=skip)
    if start is None:
        start = _start_time(path)
    if start is None or fps <= 0:
        return None
    w = _Window(lo, hi, fps, start, (size[1], size[0]), want)
    try:
        proc = ffpipe.spawn(_window_command(path, w, size, src_size, every, skip))
    except OSError:
        return None
    pts, th = _pts_times(proc)
    try:
        out = _collect(proc, pts, w)
    except (queue.Empty, ValueError, OSError):
        out = None
    finally:
        proc.kill()
        proc.wait()
        th.join(timeout=5)
    return out or None


class FrameClock:
    """Wall and CPU seconds of one clip-level call, decoding kept apart (benchmark)."""

    def __init__(self) -> None:
        self.t0, self.c0 = time.perf_counter(), time.process_time()
        self.dec = self.dec_cpu = 0.0
        self.misses = 0

    @contextlib.contextmanager
    def decoding(self) -> Iterator[None]:
        """Time spent inside counts as decoding."""
        t, c = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.dec += time.perf_counter() - t
            self.dec_cpu += time.process_time() - c

    def frames(self, clip: vs.VideoNode, idx: list[int], have: Mapping[int, np.ndarray] | None = None,
               **kw: int) -> list[np.ndarray]:
        """Grey frames ``idx`` of ``clip``: from ``have`` (full-size pictures already
        decoded elsewhere) where present, the rest read from the clip in frame order."""
        from ..sources import frame_arrays

        with self.decoding():
            have = have if have is not None and not kw else {}
            miss = sorted({int(i) for i in idx if int(i) not in have})
            got = dict(zip(miss, frame_arrays(clip, miss, gray=True, **kw), strict=False)) if miss else {}
            self.misses += len(miss)
            return [have[int(i)] if int(i) in have else got[int(i)] for i in idx]

    def stats(self, **extra: float) -> dict[str, float]:
        """decode_s, reads (frames read through the frame server), compute_s and
        compute_cpu_s so far, and ``extra``."""
        return dict(decode_s=self.dec, reads=float(self.misses),
                    compute_s=time.perf_counter() - self.t0 - self.dec,
                    compute_cpu_s=time.process_time() - self.c0 - self.dec_cpu, **extra)
