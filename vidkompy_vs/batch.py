"""``vidkompy-vs batch``: align and render many pairs, resumably, here or on a Dask cluster.

Each pair goes through the same code as ``vidkompy-vs comp`` (its options are ``comp``'s)
and leaves ``DIR/<name>.<ext>`` plus the alignment it used, ``DIR/<name>.align.json``.
A pair whose output and alignment file are both there (and newer than its inputs) is
done: a re-run skips it. Outputs are renamed into place only when complete, so an error
or Ctrl-C leaves finished pairs and nothing half-written. The pairs run one after the
other, side by side in processes (``--jobs``), or as tasks on a Dask cluster; every run
ends with ``DIR/summary.csv`` and ``DIR/summary.json``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import shlex
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from . import stops
from .errors import VidkompyError
from .fsutil import atomic_write_text, check_output, same_file

log = logging.getLogger(__name__)

COLUMNS = ("bg", "fg", "out", "options")
ALIGN_SHARE = 0.3  # of a pair's bar taken by aligning; the render fills the rest
STOP_WAIT_S = 60  # after Ctrl-C, how long Dask workers get to stop their pairs


class Stopped(Exception):
    """A pair told to stop (Ctrl-C at the client of a Dask run)."""


@dataclass(frozen=True)
class Pair:
    """One row of PAIRS.csv, its paths made absolute."""

    index: int
    name: str
    bg: str
    fg: str
    out: str
    align: str
    options: tuple[str, ...] = ()
    base: str = ""  # the CSV's folder: relative paths in options start there too


@dataclass
class PairResult:
    """One row of the summary."""

    pair: str
    status: str  # done | skipped | error | interrupted
    message: str = ""
    bg: str = ""
    fg: str = ""
    output: str = ""
    align_file: str = ""
    offset_s: float | None = None
    rate: float | None = None
    x: float | None = None
    y: float | None = None
    scale: float | None = None
    spatial_confidence: float | None = None
    temporal_confidence: float | None = None
    frames: int | None = None
    align_s: float = 0.0
    render_s: float = 0.0
    total_s: float = 0.0

    def take(self, al: Any) -> None:
        """Fill the alignment's figures in."""
        self.offset_s, self.rate = al.temporal.offset_s, al.temporal.rate
        self.x, self.y, self.scale = al.spatial.x, al.spatial.y, al.spatial.scale
        self.spatial_confidence, self.temporal_confidence = al.spatial.confidence, al.temporal.confidence
        self.frames = al.fg.frames


# -- the list of pairs ------------------------------------------------------------------
def read_pairs(csv_path: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> list[Pair]:
    """The pairs in ``csv_path`` (header ``bg,fg[,out][,options]``); bg/fg relative to the
    CSV's folder, out relative to ``out_dir`` (default: FG's name with .mp4)."""
    p, d = Path(csv_path), Path(out_dir).absolute()
    if not p.is_file():
        raise VidkompyError(f"{p}: no such file")
    try:
        rows = list(csv.reader(io.StringIO(p.read_text(encoding="utf-8-sig"))))
    except (UnicodeDecodeError, csv.Error) as e:
        raise VidkompyError(f"{p}: not a CSV file ({e})") from None
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise VidkompyError(f"{p}: empty; expected a header row bg,fg[,out][,options] and one row per pair")
    head = [c.strip().lower() for c in rows[0]]
    unknown = [c for c in head if c not in COLUMNS]
    if unknown or "bg" not in head or "fg" not in head or len(set(head)) != len(head):
        raise VidkompyError(f"{p}: header {','.join(rows[0])!r} must name the columns bg,fg[,out][,options]")
    if len(rows) == 1:
        raise VidkompyError(f"{p}: no pairs below the header")
    base = p.absolute().parent
    pairs: list[Pair] = []
    seen: dict[Path, int] = {}
    for k, row in enumerate(rows[1:], start=2):
        if len(row) > len(head):
            raise VidkompyError(f"{p}: line {k} has {len(row)} fields; the header has {len(head)}")
        v = dict(zip(head, [c.strip() for c in row] + [""] * (len(head) - len(row)), strict=True))
        if not v["bg"] or not v["fg"]:
            raise VidkompyError(f"{p}: line {k}: bg and fg are required")
        bg, fg = base / v["bg"], base / v["fg"]
        out = d / (v.get("out") or f"{Path(v['fg']).stem}.mp4")
        if not out.suffix:
            raise VidkompyError(f"{p}: line {k}: out {v['out']!r} needs a suffix (.mp4, .mkv, ...)")
        # (the alignment file is named after the stem; a folder reached by two names is one)
        key = Path(os.path.realpath(out.parent)) / out.stem
        if key in seen:
            raise VidkompyError(f"{p}: lines {seen[key]} and {k} write the same output name {out.stem}; set out")
        seen[key] = k
        try:
            opts = tuple(shlex.split(v.get("options", "")))
        except ValueError as e:
            raise VidkompyError(f"{p}: line {k}: options: {e}") from None
        pairs.append(Pair(len(pairs), out.stem, str(bg), str(fg), str(out),
                          str(out.with_name(out.stem + ".align.json")), opts, str(base)))
    _check_writes(p, d, pairs)
    return pairs


def _check_writes(csv_path: Path, d: Path, pairs: list[Pair]) -> None:
    """No file the batch writes (a pair's video or alignment, the summary) is one it reads
    (this list, any pair's BG or FG): a row's output would replace a later row's input
    before that row ran."""
    reads = [(csv_path, "the pairs list")] + [(Path(f), f"pair {q.name}'s {w}") for q in pairs
                                                for w, f in (("bg", q.bg), ("fg", q.fg))]
    writes = [(d / "summary.csv", "the summary"), (d / "summary.json", "the summary")] + \
        [(Path(f), f"pair {q.name}'s output") for q in pairs for f in (q.out, q.align)]
    for w, wname in writes:
        for r, rname in reads:
            if same_file(w, r):
                raise VidkompyError(f"{csv_path}: {wname} {w} would overwrite {rname}; choose another out or folder")


# -- one pair (in this process, a worker process or a Dask worker) ------------------------
Report = Callable[[tuple], None]
_REPORT: list[Report | None] = [None]  # a worker process's channel home (set by its initializer)
_IN_JOB = [False, False]  # (a pair is running, Ctrl-C already raised for it)


def finished(pair: Pair) -> Any:
    """The alignment of a pair done before (its output and alignment file both there and
    newer than its inputs), or None."""
    from .alignment import Alignment

    out, al_file = Path(pair.out), Path(pair.align)
    try:
        if not (out.is_file() and al_file.is_file()):
            return None
        made = min(out.stat().st_mtime, al_file.stat().st_mtime)
        if any(Path(f).stat().st_mtime > made for f in (pair.bg, pair.fg)):
            return None  # an input changed since
        al = Alignment.load(al_file)
    except (OSError, VidkompyError):
        return None
    return al if _same(al.bg.path, pair.bg) and _same(al.fg.path, pair.fg) else None


def _same(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a) == Path(b)


def _throttled(report: Report, index: int, every: float = 0.25) -> Callable[[int, int], None]:
    last = [0.0]

    def on_progress(done: int, total: int) -> None:
        now = time.monotonic()
        if done >= total or now - last[0] >= every:
            last[0] = now
            report((index, "render", done, total))

    return on_progress


def run_pair(pair: Pair, redo: bool = False, report: Report | None = None) -> PairResult:
    """Align and render one pair; failures come back as the result's status, not raised
    (Ctrl-C excepted)."""
    from . import cli
    from .sources import probe

    report = report or _REPORT[0] or (lambda _msg: None)
    t0 = time.perf_counter()
    res = PairResult(pair.name, "error", bg=pair.bg, fg=pair.fg, output=pair.out, align_file=pair.align)
    _IN_JOB[:] = [True, False]
    try:
        args = cli.comp_args(pair.bg, pair.fg, pair.out, list(pair.options))
        _rebase(args, pair.base)
        if Path(pair.out).exists() and not (redo or args.overwrite):
            raise VidkompyError(f"{pair.out}: already exists and was not made by this batch; pass -y to replace it")
        inputs = [pair.bg, pair.fg, *cli.read_files(args)]
        out = check_output(pair.out, inputs, overwrite=True)
        check_output(pair.align, inputs, overwrite=True)
        notes = Console(file=io.StringIO(), width=400, no_color=True)  # the pair's notes, kept
        bgp, fgp = probe(pair.bg), probe(pair.fg)
        choice = cli.audio_choice(args, bgp, fgp)
        report((pair.index, "align", 0, fgp.frames))
        al = cli.get_alignment(args, bgp, fgp, notes)
        al.save(pair.align)
        res.take(al)
        t1 = time.perf_counter()
        res.align_s = round(t1 - t0, 3)
        cli.render_comp(args, bgp, fgp, al, out, choice, con=notes, progress=False,
                        on_progress=_throttled(report, pair.index))
        res.render_s = round(time.perf_counter() - t1, 3)
        res.status = "done"
        warn = [ln.strip() for ln in notes.file.getvalue().splitlines() if ln.startswith("warning:")]
        res.message = "; ".join(warn)
    except VidkompyError as e:
        res.message = str(e)
    except Stopped:
        res.status, res.message = "interrupted", "stopped by Ctrl-C or a stop signal"
    except Exception as e:  # noqa: BLE001 - one pair's surprise must not stop the others
        log.debug("pair %s failed", pair.name, exc_info=True)
        first = str(e).splitlines()[0] if str(e) else ""
        res.message = f"internal error: {type(e).__name__}: {first}"
    finally:
        _IN_JOB[0] = False
        res.total_s = round(time.perf_counter() - t0, 3)
    return res


def _rebase(args: Any, base: str) -> None:
    """Files named in a pair's options (``--align``, a preset file) relative to the CSV's folder."""
    if not base:
        return
    if args.align_file and not Path(args.align_file).is_absolute():
        args.align_file = str(Path(base) / args.align_file)
    preset = Path(args.align_preset)
    if preset.suffix.lower() == ".json" and not preset.is_absolute():
        args.align_preset = str(Path(base) / preset)


def _worker_init(queue: Any) -> None:
    """In each worker process: progress goes to ``queue``; a Ctrl-C stops the pair at
    hand (once: the terminal and the parent may both send one) and is ignored between
    pairs, where it would kill the worker with a traceback."""
    _REPORT[0] = queue.put

    def on_sigint(_sig: int, _frame: Any) -> None:
        if _IN_JOB[0] and not _IN_JOB[1]:
            _IN_JOB[1] = True
            raise KeyboardInterrupt

    # (a hangup or kill sent to the whole group reaches the workers too: by default it
    # killed them mid-pair, and the pool, left with dead workers, waited for ever)
    stops.install(stops.STOP_SIGNALS, on_sigint)


# -- the runners ------------------------------------------------------------------------
class _Bar:
    """One bar over all pairs: each pair counts 1, split between aligning and rendering."""

    def __init__(self, pairs: list[Pair], console: Console, enabled: bool) -> None:
        self.n = len(pairs)
        self.frac = [0.0] * self.n
        self.frames = [0] * self.n
        self.ended = 0
        self.progress = Progress(TextColumn("[bold]batch"), BarColumn(), TextColumn("{task.fields[pairs]}"),
                                 TextColumn("{task.fields[frames]} frames"), TimeElapsedColumn(),
                                 console=console, disable=not enabled, transient=False)
        self.task = self.progress.add_task("batch", total=self.n, pairs=f"0/{self.n} pairs", frames=0)

    def __call__(self, msg: tuple) -> None:
        i, stage, done, total = msg
        if stage == "align":
            self.frac[i] = ALIGN_SHARE
        elif total:
            self.frac[i] = ALIGN_SHARE + (1 - ALIGN_SHARE) * done / total
            self.frames[i] = done
        self._show()

    def end(self, i: int, res: PairResult) -> None:
        self.frac[i] = 1.0
        self.ended += 1
        if res.status in ("done", "skipped") and res.frames:
            self.frames[i] = res.frames
        self._show()

    def _show(self) -> None:
        self.progress.update(self.task, completed=sum(self.frac), frames=sum(self.frames),
                             pairs=f"{self.ended}/{self.n} pairs")


def _unreported(p: Pair) -> PairResult:
    """The result of a pair whose own never came (Ctrl-C): done if it finished meanwhile."""
    al = finished(p)
    if al is None:
        return PairResult(p.name, "interrupted", "stopped by Ctrl-C or a stop signal", p.bg, p.fg, p.out, p.align)
    res = PairResult(p.name, "done", "finished as Ctrl-C came", p.bg, p.fg, p.out, p.align)
    res.take(al)
    return res


def _run_serial(pairs: list[Pair], redo: bool, bar: _Bar) -> Iterator[PairResult]:
    for p in pairs:
        yield run_pair(p, redo, bar)


def _run_processes(pairs: list[Pair], redo: bool, jobs: int, bar: _Bar) -> Iterator[PairResult]:
    import multiprocessing as mp
    import queue as queue_mod
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from multiprocessing import resource_tracker

    # (multiprocessing's helper process ignores SIGINT and SIGTERM itself; a hangup sent
    # to the whole group killed it, and its replacement printed tracebacks)
    with stops.ignored(stops.named("SIGHUP")):
        resource_tracker.ensure_running()
    # spawn: a fork would copy this process' threads (the bar's, VapourSynth's) mid-flight
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    ex = ProcessPoolExecutor(min(jobs, len(pairs)), mp_context=ctx, initializer=_worker_init, initargs=(q,))

    def drain() -> None:
        with contextlib.suppress(queue_mod.Empty):
            while True:
                bar(q.get_nowait())

    futs = {ex.submit(run_pair, p, redo): p for p in pairs}
    pending = set(futs)
    try:
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            drain()
            for f in done:
                exc = f.exception()
                if isinstance(exc, KeyboardInterrupt):
                    raise KeyboardInterrupt
                yield f.result() if exc is None else PairResult(
                    futs[f].name, "error", f"worker failed: {type(exc).__name__}: {exc}", futs[f].bg, futs[f].fg,
                    futs[f].out, futs[f].align)
    except KeyboardInterrupt:
        # the running pairs stop at their next frame and remove their partial output
        for proc in list(getattr(ex, "_processes", {}).values()):
            with contextlib.suppress(OSError):
                os.kill(proc.pid, signal.SIGINT)
        ex.shutdown(wait=True, cancel_futures=True)
        for f in pending:
            if f.done() and not f.cancelled() and f.exception() is None:
                yield f.result()
        raise
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


class _DaskReport:
    """Progress from a Dask worker through a distributed Queue, best effort (a lost
    message only costs the bar a step); and the way a Ctrl-C reaches a pair there: no
    signal gets to a worker's thread, so each report asks whether to stop, and a stop
    raised inside the render removes its partial output like a Ctrl-C at home."""

    def __init__(self, queue: str, stop: str) -> None:
        self.queue, self.stop = queue, stop

    def __call__(self, msg: tuple) -> None:
        from distributed import Event, Queue

        with contextlib.suppress(Exception):
            Queue(self.queue).put(list(msg))
        stop = False
        with contextlib.suppress(Exception):
            stop = Event(self.stop).is_set()
        if stop:
            # not KeyboardInterrupt: a worker thread that raises one never reports back
            raise Stopped


def _run_dask(pairs: list[Pair], redo: bool, jobs: int, scheduler: str | None, bar: _Bar) -> Iterator[PairResult]:
    try:
        from distributed import Client, Event, LocalCluster, Queue, wait
    except ImportError:
        raise VidkompyError("--executor dask needs dask.distributed: pip install 'vidkompy-vs[dask]'") from None
    logging.getLogger("distributed").setLevel(logging.ERROR)
    cluster = None
    try:
        if scheduler:
            client = Client(scheduler, timeout="20s")
        else:
            # its processes are this one's children: a Ctrl-C at the terminal reaches them too
            # and kills them mid-task with tracebacks. Spawned while SIGINT is ignored, they
            # ignore it for good; the pairs are stopped through the scheduler instead.
            with stops.ignored(stops.named("SIGINT")):
                cluster = LocalCluster(n_workers=min(jobs, len(pairs)), threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=logging.ERROR)
            client = Client(cluster)
    except Exception as e:  # noqa: BLE001 - whatever answered there is not a scheduler we can use
        # (a port that speaks another protocol: its bytes read as a frame length, a
        # MemoryError of exabytes)
        raise VidkompyError(f"cannot reach the Dask scheduler {scheduler or '(local)'}: "
                            f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    try:
        q, stop = Queue(client=client), Event(client=client)
        futs = {client.submit(run_pair, p, redo, _DaskReport(q.name, stop.name), pure=False,
                              key=f"vidkompy-{p.name}-{os.getpid()}-{time.time_ns()}"): p for p in pairs}
        pending = dict(futs)
        try:
            while pending:
                time.sleep(0.2)
                for msg in q.get(batch=True):
                    bar(tuple(msg))
                for f in [f for f in pending if f.done()]:
                    p = pending.pop(f)
                    yield f.result() if f.status == "finished" else PairResult(
                        p.name, "error", f"worker failed: {f.exception()!r}", p.bg, p.fg, p.out, p.align)
        except KeyboardInterrupt:
            # every pair stops at its next report: a queued one as it starts, a rendering one
            # at its next frame (removing its partial output), an aligning one after that
            stop.set()
            with contextlib.suppress(Exception):
                wait(list(pending), timeout=STOP_WAIT_S)
            for f in pending:
                if f.status == "finished":
                    res = f.result()
                    if res.status == "error":
                        # a terminal's Ctrl-C also stops the workers' ffmpeg, which then
                        # "fails" before the pair hears of the stop
                        res.status, res.message = "interrupted", f"stopped by Ctrl-C or a stop signal ({res.message})"
                    yield res
            raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# -- the summary and the command ----------------------------------------------------------
def write_summary(out_dir: Path, results: list[PairResult]) -> tuple[Path, Path]:
    names = [f.name for f in fields(PairResult)]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=names, lineterminator="\n")
    w.writeheader()
    for r in results:
        w.writerow({k: ("" if v is None else v) for k, v in asdict(r).items()})
    counts = {s: sum(r.status == s for r in results) for s in ("done", "skipped", "error", "interrupted")}
    doc = {"pairs": [asdict(r) for r in results], **counts}
    return (atomic_write_text(out_dir / "summary.csv", buf.getvalue()),
            atomic_write_text(out_dir / "summary.json", json.dumps(doc, indent=1) + "\n"))


def _keep_times(out_dir: Path, results: list[PairResult]) -> None:
    """A skipped pair keeps the times of the run that made it (from the last summary)."""
    try:
        old = {d["output"]: d for d in json.loads((out_dir / "summary.json").read_text())["pairs"]}
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return
    for r in results:
        d = old.get(r.output)
        if r.status == "skipped" and isinstance(d, dict) and d.get("status") in ("done", "skipped"):
            r.align_s, r.render_s = float(d.get("align_s") or 0), float(d.get("render_s") or 0)


def _remove_partials(pairs: list[Pair], results: dict[int, PairResult]) -> None:
    """Temporary outputs of pairs that did not finish (a worker stopped from outside
    cannot remove its own)."""
    for p in pairs:
        if p.index not in results or results[p.index].status not in ("done", "skipped"):
            out = Path(p.out)
            for t in out.parent.glob(f".{out.stem}.part-*{out.suffix}"):
                t.unlink(missing_ok=True)


def _run_all(pairs: list[Pair], redo: bool, jobs: int, executor: str, scheduler: str | None,
             bar: _Bar) -> tuple[dict[int, PairResult], bool]:
    """Every pair's result by index, and whether a Ctrl-C cut the run short."""
    got: dict[int, PairResult] = {}
    index = {p.out: p.index for p in pairs}

    def record(res: PairResult) -> None:
        got[index[res.output]] = res
        bar.end(index[res.output], res)

    todo = []
    for p in pairs:
        prev = None if redo else finished(p)
        if prev is None:
            todo.append(p)
            continue
        res = PairResult(p.name, "skipped", bg=p.bg, fg=p.fg, output=p.out, align_file=p.align)
        res.take(prev)
        record(res)
    if not todo:  # nothing to start: no workers, no cluster
        return got, False
    if executor == "dask":
        stream = _run_dask(todo, redo, jobs, scheduler, bar)
    elif jobs > 1 and len(todo) > 1:
        stream = _run_processes(todo, redo, jobs, bar)
    else:
        stream = _run_serial(todo, redo, bar)
    with bar.progress:
        try:
            for res in stream:
                record(res)
        except KeyboardInterrupt:
            # a Ctrl-C that landed here, not in the runner: let it stop its pairs too
            with contextlib.suppress(KeyboardInterrupt, StopIteration):
                record(stream.throw(KeyboardInterrupt))
                for res in stream:
                    record(res)
            return got, True
    return got, False


def run_batch(pairs_csv: str | os.PathLike[str], out_dir: str | os.PathLike[str], *, jobs: int = 1,
              executor: str = "local", scheduler: str | None = None, redo: bool = False, progress: bool = True,
              console: Console | None = None) -> int:
    """Run every pair of ``pairs_csv`` into ``out_dir``; returns the exit code (0: all done
    or skipped, 130: interrupted); raises VidkompyError when a pair failed (after the summary)."""
    console = console or Console(stderr=True)
    if jobs < 1:
        raise VidkompyError(f"--jobs must be at least 1, got {jobs}")
    if scheduler and executor != "dask":
        raise VidkompyError("--scheduler is for --executor dask")
    d = Path(out_dir)
    if not d.parent.exists():
        raise VidkompyError(f"{d.parent}: folder does not exist")
    if d.exists() and not d.is_dir():
        raise VidkompyError(f"{d}: not a folder")
    pairs = read_pairs(pairs_csv, d)
    made = not d.exists()
    d.mkdir(exist_ok=True)
    for name in ("summary.csv", "summary.json"):  # (written last: refused now, not after every pair)
        check_output(d / name, [], overwrite=True)
    t0 = time.perf_counter()
    try:
        got, interrupted = _run_all(pairs, redo, jobs, executor, scheduler, _Bar(pairs, console, progress))
    except VidkompyError:
        if made:  # (nothing ran: a scheduler out of reach leaves no empty folder behind)
            with contextlib.suppress(OSError):
                d.rmdir()
        raise
    _remove_partials(pairs, got)
    results = [got.get(p.index) or _unreported(p) for p in pairs]
    _keep_times(d, results)
    csv_path, json_path = write_summary(d, results)
    for r in results:
        what = f" (offset {r.offset_s:+.3f} s, x={r.x:.2f} y={r.y:.2f} scale={r.scale:.4f})" \
            if r.offset_s is not None else ""
        console.print(f"{r.pair}: {r.status}{what}" + (f": {r.message}" if r.message else ""),
                      markup=False, highlight=False)
    console.print(f"wrote {csv_path} and {json_path.name} ({len(pairs)} pairs in {time.perf_counter() - t0:.1f} s)",
                  markup=False, highlight=False)
    if interrupted:
        console.print("vidkompy-vs: interrupted; finished outputs kept, no partial ones", markup=False)
        return 130
    failed = [r for r in results if r.status == "error"]
    if failed:
        raise VidkompyError(f"{len(failed)} of {len(pairs)} pairs failed (see {csv_path})")
    return 0
