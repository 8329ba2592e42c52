"""Which ffmpeg the renderer runs (ffpipe)."""

from __future__ import annotations

import os
import sys

import pytest

from vidkompy_vs import ffpipe
from vidkompy_vs.errors import VidkompyError


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
