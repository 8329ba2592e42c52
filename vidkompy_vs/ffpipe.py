"""Which ffmpeg binary the renderer (and the sample pair) pipes into; the analysis reads
its inputs in-process (:mod:`decode`), with no ffmpeg or ffprobe process.

The ffmpeg binary is, in this order: the one the user names (``--ffmpeg PATH``, or the
``VIDKOMPY_VS_FFMPEG`` environment variable), else the one the ``imageio-ffmpeg`` wheel
ships (a dependency: so ``pip install vidkompy-vs`` needs no system ffmpeg, on any OS),
else an ``ffmpeg`` on PATH (a platform the wheel has no binary for).
"""

from __future__ import annotations

import os
import shutil
from functools import lru_cache

from .errors import VidkompyError

__all__ = ["FFMPEG_ENV", "ffmpeg_binary", "ffmpeg_head"]


FFMPEG_ENV = "VIDKOMPY_VS_FFMPEG"


def ffmpeg_binary(explicit: str | os.PathLike[str] | None = None) -> str:
    """The ffmpeg executable to run: ``explicit`` (``--ffmpeg``), else ``$VIDKOMPY_VS_FFMPEG``,
    else the imageio-ffmpeg wheel's, else ``ffmpeg`` on PATH. Raises a one-line
    VidkompyError when the one asked for, or any at all, cannot be found."""
    env = os.environ.get(FFMPEG_ENV) or None
    return _resolve(None if explicit is None else os.fspath(explicit), env)


@lru_cache(maxsize=16)
def _resolve(explicit: str | None, env: str | None) -> str:
    for asked, how in ((explicit, "--ffmpeg "), (env, f"{FFMPEG_ENV}=")):
        if asked:
            # a bare name is looked up on PATH like a shell would; a path must be executable
            found = shutil.which(asked)
            if found is None:
                raise VidkompyError(f"{how}{asked}: no such executable")
            return found
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        pass
    found = shutil.which("ffmpeg")
    if found is None:
        raise VidkompyError(f"ffmpeg not found: pip install imageio-ffmpeg, or name one with --ffmpeg PATH "
                            f"or {FFMPEG_ENV}")
    return found


def ffmpeg_head(loglevel: str = "error", binary: str | os.PathLike[str] | None = None) -> list[str]:
    """:func:`ffmpeg_binary` (or ``binary``) that never reads the terminal and prints only
    ``loglevel`` messages."""
    return [ffmpeg_binary(binary), "-nostdin", "-v", loglevel]
