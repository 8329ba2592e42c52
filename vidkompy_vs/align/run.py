"""One ``align()`` call's own record: its console, progress, stage times and fallbacks.

Passed along the stages instead of module globals, so two calls in one process never mix
their traces, and a result made through a fallback can be told apart (it is not cached).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ..threads import environment, using

log = logging.getLogger("vidkompy_vs.align")


class Job(threading.Thread):
    """Run ``fn`` beside the main thread; ``get()`` joins and re-raises its error here.
    It runs in its starter's VapourSynth environment (see :mod:`vidkompy_vs.threads`)."""

    def __init__(self, fn: Any, *args: Any, **kw: Any) -> None:
        super().__init__(daemon=True)
        self._fn, self._args, self._kw = fn, args, kw
        self._res: Any = None
        self._err: BaseException | None = None
        self._env = environment()
        self.start()

    def run(self) -> None:
        try:
            with using(self._env):
                self._res = self._fn(*self._args, **self._kw)
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            self._err = e

    def get(self) -> Any:
        self.join()
        if self._err is not None:
            raise self._err
        return self._res


def _cpu() -> float:
    """CPU seconds of this process and of its children that have ended."""
    try:
        import resource
    except ImportError:  # (not on Windows: this process alone)
        return time.process_time()
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


@dataclass
class Run:
    """What one prepass did and when: ``stages`` (name, seconds since the start) and
    ``fallbacks`` (an engine failed and a simpler path stood in)."""

    console: Console
    t0: float = field(default_factory=time.perf_counter)
    cpu0: float = field(default_factory=lambda: _cpu())
    stages: list[tuple[str, float]] = field(default_factory=list)
    fallbacks: list[str] = field(default_factory=list)
    progress: Progress | None = None
    # VIDKOMPY_VS_TRACE=1 prints each stage's time on stderr as it ends
    print_trace: bool = field(default_factory=lambda: bool(os.environ.get("VIDKOMPY_VS_TRACE")))

    def trace(self, what: str) -> None:
        t = time.perf_counter() - self.t0
        self.stages.append((what, t))
        # CPU seconds beside the wall clock: on a shared machine the wall clock says little
        # about the work a stage did (the process's threads and its ffmpeg children so far)
        cpu = _cpu() - self.cpu0
        log.debug("%6.2f s (cpu %.2f s)  %s", t, cpu, what)
        if self.print_trace:
            print(f"[trace] {t:6.2f} s  (cpu {cpu:5.2f} s)  {what}", file=sys.stderr)

    def note(self, msg: str) -> None:
        self.console.print(f"[yellow]note:[/] {msg}")

    def fell_back(self, msg: str) -> None:
        log.warning("fallback: %s", msg)
        self.note(msg)
        self.fallbacks.append(msg)

    def make_progress(self) -> Progress:
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), console=self.console, transient=True,
                                 disable=not self.console.is_terminal)
        return self.progress

    def task(self, description: str, total: int) -> Any:
        """A bar on the run's progress and a callback that advances it."""
        prog = self.progress
        if prog is None:
            return lambda k: None
        tid = prog.add_task(description, total=total)
        return lambda k: prog.advance(tid, k)
