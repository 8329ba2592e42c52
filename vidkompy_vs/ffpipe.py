"""ffmpeg and ffprobe as subprocesses: which ffmpeg binary runs, the command heads the
project uses, reading raw pictures from a pipe, and ffprobe's JSON facts about a file.

The ffmpeg binary is, in this order: the one the user names (``--ffmpeg PATH``, or the
``VIDKOMPY_VS_FFMPEG`` environment variable), else the one the ``imageio-ffmpeg`` wheel
ships (a dependency: so ``pip install vidkompy-vs`` needs no system ffmpeg, on any OS),
else an ``ffmpeg`` on PATH (a platform the wheel has no binary for).

Decoders that read pictures for the map or the placement (fingerprints, BG windows) run
with ``-noautorotate``: the frame server (LWLibav) ignores a display rotation, and frame
coordinates must be its own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from functools import lru_cache
from typing import IO

from .errors import VidkompyError

__all__ = ["FFMPEG_ENV", "ffmpeg_binary", "ffmpeg_head", "decoder_head", "spawn", "fill", "read_exact", "drain",
           "probe_json", "ffprobe_text"]


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


def decoder_head(path: str, *input_options: str, loglevel: str = "error") -> list[str]:
    """:func:`ffmpeg_head` reading ``path`` as the frame server numbers and orients it
    (``input_options`` go before ``-i``)."""
    return [*ffmpeg_head(loglevel), "-noautorotate", *input_options, "-i", path]


def spawn(cmd: list[str], *, pass_fds: tuple[int, ...] = ()) -> subprocess.Popen:
    """``cmd`` with unbuffered stdout and stderr pipes (OSError when it cannot start)."""
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0, pass_fds=pass_fds)


def fill(stream: IO[bytes], view: memoryview, *, chunk: int | None = None,
         on_read: Callable[[int], None] | None = None) -> int:
    """Read into ``view`` until it is full or the stream ends; the bytes read.

    ``chunk`` caps each read (so that ``on_read(total so far)`` reports progress often)."""
    got = 0
    while got < len(view):
        k = stream.readinto(view[got:] if chunk is None else view[got:got + chunk])  # type: ignore[attr-defined]
        if not k:
            break
        got += k
        if on_read is not None:
            on_read(got)
    return got


def read_exact(stream: IO[bytes], n: int) -> bytearray | None:
    """Exactly ``n`` bytes (one raw picture), or ``None`` when the stream ends first."""
    buf = bytearray(n)
    return buf if fill(stream, memoryview(buf)) == n else None


def drain(stream: IO[bytes]) -> None:
    """Read to the end: never leave ffmpeg blocked on a full pipe."""
    while stream.read(1 << 16):
        pass


@lru_cache(maxsize=64)
def probe_json(path: str, _mtime: int) -> dict:
    """ffprobe's streams and format of ``path`` (cached per file version: pass its mtime)."""
    try:
        out = subprocess.run(
            ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", "-show_format", path],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        raise VidkompyError("ffprobe not found: install ffmpeg (e.g. `apt-get install ffmpeg`)") from None
    if out.returncode != 0:
        raise VidkompyError(f"{path}: not a media file ffmpeg can read")
    return json.loads(out.stdout or "{}")


def ffprobe_text(path: str, *options: str, timeout: float = 60) -> str | None:
    """ffprobe's plain output for ``options`` on ``path``; ``None`` when it fails."""
    try:
        r = subprocess.run(["ffprobe", "-v", "error", *options, path], capture_output=True, text=True,
                           timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout if r.returncode == 0 else None
