"""Frame reads for the clip-level searches: BG windows by one sequential in-process decode,
single frames through the frame server, and the clock that keeps decoding time apart
from compute time (the benchmark reports both)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import numpy as np

from .. import decode
from ..errors import VidkompyError

if TYPE_CHECKING:
    import vapoursynth as vs

# the ffmpeg option values the callers name, as libavcodec's skip_frame levels
_SKIP = {"bidir": "BIDIR", "nokey": "NONKEY"}


def start_time(path: str) -> float | None:
    """Start time of ``path``'s video stream (:func:`sources.video_start`), ``None`` when
    it gives none or the file cannot be read."""
    from ..sources import video_start

    try:
        return video_start(path)
    except VidkompyError:
        return None


def window_frames(path: str | vs.VideoNode, lo: int, hi: int, fps: float, size: tuple[int, int], *,
                  src_size: tuple[int, int] | None = None, want: set[int] | None = None, every: int = 1,
                  start: float | None = None, skip: str = "bidir") -> dict[int, np.ndarray] | None:
    """Grey (luma) frames of ``path`` numbered ``lo..hi`` from one sequential decode:
    a keyframe seek to ``lo``, then B-frames skipped (``skip="bidir"``: a random
    read through a long GOP decodes every frame up to its target; here only I/P frames are
    decoded). So the result holds the *reference* frames of the window (every frame for
    codecs without B-frames), or only ``want`` of them, every ``every``-th at most
    (``skip="nokey"``: only the keyframes),
    at ``size`` (not scaled when it is ``src_size``: then the frame server's grey). Frame
    numbers come from the timestamps (CFR input); ``None`` when they cannot be had (the
    caller reads through the frame server). ``path`` may be a caller's VideoNode (no file
    behind it): read through the frame server."""
    if not isinstance(path, str):
        from ..nodes import node_window

        return node_window(path, lo, hi, size, want=want, every=every, skip=skip)
    if start is None:
        start = start_time(path)
    if start is None or fps <= 0:
        return None
    return decode.window(path, lo, hi, fps, start, size, src_size=src_size, want=want, every=every,
                         skip=_SKIP.get(skip, skip))


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
