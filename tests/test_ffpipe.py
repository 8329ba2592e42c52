"""ffpipe's pipe reads, which ffmpeg it runs, and numeric's peak, on inputs small enough to
check by hand."""

from __future__ import annotations

import os
import sys
import threading

import numpy as np
import pytest

from vidkompy_vs import ffpipe
from vidkompy_vs.errors import VidkompyError
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


# -- which ffmpeg runs ---------------------------------------------------------------
def test_ffmpeg_binary_defaults_to_the_wheels(monkeypatch) -> None:
    import imageio_ffmpeg

    monkeypatch.delenv(ffpipe.FFMPEG_ENV, raising=False)
    assert ffpipe.ffmpeg_binary() == imageio_ffmpeg.get_ffmpeg_exe()
    assert os.access(ffpipe.ffmpeg_binary(), os.X_OK)


def test_ffmpeg_binary_takes_the_users_choice_first(monkeypatch, tmp_path) -> None:
    exe = tmp_path / "my-ffmpeg"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    other = tmp_path / "other-ffmpeg"
    other.write_text("#!/bin/sh\n")
    other.chmod(0o755)
    monkeypatch.setenv(ffpipe.FFMPEG_ENV, str(exe))
    assert ffpipe.ffmpeg_binary() == str(exe)
    assert ffpipe.ffmpeg_binary(other) == str(other)  # --ffmpeg over the environment
    assert ffpipe.ffmpeg_head(binary=other)[0] == str(other)
    # a bare name is looked up on PATH
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert ffpipe.ffmpeg_binary("other-ffmpeg") == str(other)


def test_ffmpeg_binary_named_but_missing_is_one_line(monkeypatch, tmp_path) -> None:
    plain = tmp_path / "not-executable"
    plain.write_text("")
    monkeypatch.setenv(ffpipe.FFMPEG_ENV, str(tmp_path / "nope"))
    with pytest.raises(VidkompyError, match=r"^VIDKOMPY_VS_FFMPEG=.*nope: no such executable$"):
        ffpipe.ffmpeg_binary()
    with pytest.raises(VidkompyError, match=r"^--ffmpeg .*not-executable: no such executable$"):
        ffpipe.ffmpeg_binary(plain)


def test_ffmpeg_binary_none_anywhere(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv(ffpipe.FFMPEG_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # (an import of it fails)
    monkeypatch.setenv("PATH", str(tmp_path))
    ffpipe._resolve.cache_clear()
    try:
        with pytest.raises(VidkompyError, match="ffmpeg not found: pip install imageio-ffmpeg"):
            ffpipe.ffmpeg_binary()
    finally:
        ffpipe._resolve.cache_clear()
