"""Whole results, cached.

Fingerprints and audio are cached per file, but the spatial refinement reads full-size
pictures (random access: most of a re-run's time). The result itself is cached under the
inputs' contents, every setting and the code that made it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
from pathlib import Path

from ..alignment import Alignment
from ..cache import cache_dir, file_key
from ..errors import VidkompyError
from ..settings import Settings
from .inputs import Request

PACKAGE = Path(__file__).resolve().parent.parent


@functools.lru_cache(maxsize=1)
def code_key() -> str:
    """A hash of the package's code (a change anywhere may change a result)."""
    h = hashlib.sha1()
    for f in sorted(PACKAGE.rglob("*.py")):
        h.update(str(f.relative_to(PACKAGE)).encode() + b"|" + f.read_bytes())
    return h.hexdigest()[:16]


def result_key(bg: str | os.PathLike[str], fg: str | os.PathLike[str], settings: Settings,
               req: Request) -> str | None:
    try:
        return file_key(bg, "result", file_key(fg), code_key(), json.dumps(settings.to_dict(), sort_keys=True),
                        req.method, req.x, req.y, req.scale)
    except (OSError, TypeError, ValueError):
        return None  # not a readable file: the probe says so


def cached_result(key: str | None) -> Alignment | None:
    if key is None:
        return None
    try:
        return Alignment.from_dict(json.loads((cache_dir("results") / f"{key}.json").read_text()))
    except (OSError, ValueError, RecursionError, VidkompyError):
        return None  # none, unreadable or unwritable cache: the run makes its own


def keep_result(key: str, al: Alignment) -> None:
    # a cache that cannot be written only costs the next run its time
    with contextlib.suppress(OSError):
        al.save(cache_dir("results") / f"{key}.json")
