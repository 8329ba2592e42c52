"""Where index and fingerprint caches live: never next to the user's files."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

_CHUNK = 1 << 20


def cache_dir(kind: str) -> Path:
    """Return (and create) ``<cache root>/<kind>``.

    The root is ``$VIDKOMPY_VS_CACHE`` if set, else ``$XDG_CACHE_HOME/vidkompy-vs``,
    else ``~/.cache/vidkompy-vs``.
    """
    root = os.environ.get("VIDKOMPY_VS_CACHE")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(xdg, "vidkompy-vs")
    path = Path(root) / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


def file_key(path: str | os.PathLike[str], *params: object) -> str:
    """A cache key for a file's content plus parameters.

    Hashes the size and the first and last MiB rather than the whole file: cheap on
    gigabyte inputs, unchanged by a rename or copy, and changed by any re-encode
    (container headers and the tail index differ).
    """
    p = Path(path)
    size = p.stat().st_size
    h = hashlib.sha1(str(size).encode())
    with open(p, "rb") as f:
        h.update(f.read(_CHUNK))
        if size > 2 * _CHUNK:
            f.seek(size - _CHUNK)
            h.update(f.read(_CHUNK))
    for param in params:
        h.update(b"|" + repr(param).encode())
    return h.hexdigest()[:20]
