"""The ffmpeg command head the renderer pipes into (analysis reads its inputs in-process:
see :mod:`decode`)."""

from __future__ import annotations

__all__ = ["ffmpeg_head"]


def ffmpeg_head(loglevel: str = "error") -> list[str]:
    """``ffmpeg`` that never reads the terminal and prints only ``loglevel`` messages."""
    return ["ffmpeg", "-nostdin", "-v", loglevel]
