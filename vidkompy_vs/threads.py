"""Threads that call into VapourSynth.

A script run by vspipe or vspreview has an environment of its own, and VapourSynth finds
it through the calling thread: a thread we start has none selected, and every call it
makes (a filter, a frame request) fails with "No environment is currently activated".
So each thread takes its starter's environment along.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


def environment() -> Any:
    """The calling thread's VapourSynth environment (``None`` without VapourSynth or one)."""
    try:
        import vapoursynth as vs

        return vs.get_current_environment()
    except Exception:  # noqa: BLE001 - no environment here: the thread runs without one
        return None


@contextlib.contextmanager
def using(env: Any) -> Iterator[None]:
    """``env`` selected in this thread for the duration (nothing when ``None``)."""
    if env is None:
        yield
        return
    with env.use():
        yield


def enter(env: Any) -> None:
    """A pool worker's initializer: ``env`` selected for the worker's life."""
    if env is not None:
        env.use().__enter__()
