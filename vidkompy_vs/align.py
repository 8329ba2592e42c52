"""The prepass: find where FG sits in BG and which BG frame goes under each FG frame.

Pipeline: coarse spatial (FG footprint in BG) -> temporal (frame map on BG cropped to the
footprint) -> spatial refinement on matched frame pairs. Until the engines land this
returns the simplest alignment (FG centred, both start together).
"""

from __future__ import annotations

import os

from rich.console import Console

from .alignment import Alignment
from .errors import VidkompyError
from .sources import probe

METHODS = ("auto", "audio", "visual")


def align(bg: str | os.PathLike[str], fg: str | os.PathLike[str], *, preset: str = "default",
          method: str = "auto", x: float | None = None, y: float | None = None,
          scale: float | None = None, console: Console | None = None) -> Alignment:
    """Align ``fg`` to ``bg`` and return the :class:`Alignment`.

    ``x``/``y``/``scale`` override the spatial search by hand. Messages and progress go
    to ``console`` (stderr by default).
    """
    console = console or Console(stderr=True)
    if method not in METHODS:
        raise VidkompyError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    bp, fp = probe(bg), probe(fg)
    s = 1.0 if scale is None else scale
    if fp.width * s > bp.width + 1e-6 or fp.height * s > bp.height + 1e-6:
        raise VidkompyError(
            f"FG ({fp.width}x{fp.height}) is larger than BG ({bp.width}x{bp.height}); pass --scale to shrink it")
    console.print("[yellow]note:[/] alignment engines not available yet: FG centred, both start together")
    return Alignment.simple(bp, fp, x=x, y=y, scale=s)
