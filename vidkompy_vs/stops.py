"""What stops a command: Ctrl-C, and the signals taken as it (``kill``, a closed terminal,
a hangup sent to a batch and its workers), each of which would otherwise end the process
where it stands, its partial outputs left behind."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any


def named(*names: str) -> tuple[int, ...]:
    """The signals ``names`` this system has (no SIGHUP on Windows)."""
    return tuple(getattr(signal, n) for n in names if hasattr(signal, n))


KILLS = named("SIGTERM", "SIGHUP")  # taken as Ctrl-C
STOP_SIGNALS = named("SIGINT") + KILLS

Handler = Callable[[int, Any], Any] | int


def install(sigs: Iterable[int], handler: Handler, *, only_default: bool = False) -> dict[int, Any]:
    """``handler`` for ``sigs``, where Python lets it be set (the main thread; with
    ``only_default``, only for signals nobody handles or ignores, e.g. not a hangup under
    nohup); the handlers it replaced, for :func:`restore`."""
    old: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for s in sigs:
            if not only_default or signal.getsignal(s) is signal.SIG_DFL:
                old[s] = signal.signal(s, handler)
    return old


def restore(old: dict[int, Any]) -> None:
    for s, h in old.items():
        signal.signal(s, h)


@contextlib.contextmanager
def ignored(sigs: Iterable[int]) -> Iterator[None]:
    """``sigs`` ignored meanwhile: a process started now ignores them for good."""
    old = install(sigs, signal.SIG_IGN)
    try:
        yield
    finally:
        restore(old)
