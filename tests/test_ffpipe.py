"""ffpipe's pipe reads and numeric's peak, on inputs small enough to check by hand."""

from __future__ import annotations

import os
import threading

import numpy as np

from vidkompy_vs import ffpipe
from vidkompy_vs.numeric import peak


def _pipe_with(chunks: list[bytes]):
    """A read end that receives ``chunks`` one write at a time (short reads happen)."""
    r, w = os.pipe()

    def write() -> None:
        for c in chunks:
            os.write(w, c)
        os.close(w)

    threading.Thread(target=write, daemon=True).start()
    return os.fdopen(r, "rb", buffering=0)


def test_read_exact_joins_short_reads_and_stops_at_the_end() -> None:
    with _pipe_with([b"ab", b"c", b"defg", b"h"]) as s:
        assert ffpipe.read_exact(s, 3) == b"abc"
        assert ffpipe.read_exact(s, 4) == b"defg"
        assert ffpipe.read_exact(s, 2) is None  # one byte left: not a whole picture


def test_fill_reports_progress_per_chunk() -> None:
    seen: list[int] = []
    buf = bytearray(10)
    with _pipe_with([b"0123456789", b"x"]) as s:
        got = ffpipe.fill(s, memoryview(buf), chunk=4, on_read=seen.append)
        assert got == 10 and bytes(buf) == b"0123456789" and seen == [4, 8, 10]
        assert s.read(1) == b"x"  # nothing read past the buffer


def test_peak_is_subpixel() -> None:
    y, x = np.mgrid[0:9, 0:11]
    m = (-((x - 4.3) ** 2) - (y - 6.0) ** 2).astype(np.float32)  # a parabola: the fit is exact
    v, px, py = peak(m)
    assert abs(px - 4.3) < 1e-4 and abs(py - 6.0) < 1e-4 and v == float(m.max())
