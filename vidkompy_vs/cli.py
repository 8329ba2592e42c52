"""``vidkompy-vs align|comp|script|report|export|batch``: a thin command line over the library.

Every failure the user can cause ends in one line on stderr and a non-zero exit:
2 for bad input, 130 for Ctrl-C, 1 for anything unexpected (``--debug`` shows the trace).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import shlex
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from . import __version__, stops
from .errors import VidkompyError
from .ffpipe import FFMPEG_ENV, ffmpeg_binary

console = Console(stderr=True, highlight=False, soft_wrap=True)
FFMPEG_HELP = ("the ffmpeg binary to run (a path, or a name on PATH; default: $VIDKOMPY_VS_FFMPEG, else the one "
               "the imageio-ffmpeg wheel ships)")


def _add_inputs(p: argparse.ArgumentParser) -> None:
    p.add_argument("bg", metavar="BG", help="background video (retimed and placed under FG)")
    p.add_argument("fg", metavar="FG", help="foreground video (the master: every frame kept, untouched)")


def _add_align_opts(p: argparse.ArgumentParser, preset_flag: str) -> None:
    g = p.add_argument_group("alignment")
    g.add_argument(preset_flag, dest="align_preset", default="default", metavar="NAME|FILE",
                   help="alignment preset: fast, default, precise, robust, or a JSON file (see presets/)")
    g.add_argument("--method", default="auto", choices=["auto", "audio", "visual"],
                   help="temporal method (default: auto = audio as a prior, checked visually)")
    g.add_argument("--x", type=float, help="FG's left edge in BG pixels (skip the spatial search)")
    g.add_argument("--y", type=float, help="FG's top edge in BG pixels (skip the spatial search)")
    g.add_argument("--scale", type=float, help="FG scale factor in BG (default: found, or 1)")
    g.add_argument("--no-cache", dest="cache", action="store_false",
                   help="align afresh, even when the same inputs and settings were aligned before")


def _add_render_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--keep-bars", action="store_true",
                   help="lay FG's bars (letterbox/pillarbox baked into FG) over BG too; by default BG shows there")
    p.add_argument("--uncovered", default="hold", choices=["hold", "black", "blur"],
                   help="under FG frames BG lacks: BG held at the nearest covered frame (default), black, "
                        "or the held frame blurred")


def _feather(text: str) -> float:
    v = float(text)
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(text)  # (argparse says "invalid <__name__ below> value: ...")
    return v


def _crf(text: str) -> float:
    v = float(text)
    if not (v == -1 or 0 <= v <= 63):  # (x264/x265 take 0-51, libvpx and SVT-AV1 0-63)
        raise ValueError(text)
    return v


_feather.__name__ = "feather (a number of pixels >= 0)"
_crf.__name__ = "crf (0 to 63, or -1)"


def _shared() -> argparse.ArgumentParser:
    """Options taken before or after the sub-command (``vidkompy-vs -q comp`` or ``comp -q``).

    SUPPRESS as the default keeps a sub-command that does not see the option from
    resetting what the main parser read.
    """
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show tracebacks on unexpected errors")
    p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bars")
    p.add_argument("--ffmpeg", metavar="PATH", default=argparse.SUPPRESS, help=FFMPEG_HELP)
    return p


def _error(msg: str) -> None:
    # (the message is text: a path or a value in [brackets] is not markup)
    console.print(f"[red]vidkompy-vs: error:[/] {escape(msg)}", markup=True, highlight=False, soft_wrap=True)


class _OneLineParser(argparse.ArgumentParser):
    """A usage error as one line, as every other error (not the usage block above it)."""

    def error(self, message: str):  # type: ignore[override]
        _error(f"{message} (see {self.prog} --help)")
        sys.exit(2)


class _RaisingParser(argparse.ArgumentParser):
    """A parser whose errors are VidkompyErrors (options given inside a batch file), where
    ``--help`` is one too (it would print to stdout and end the whole batch)."""

    def error(self, message: str):  # type: ignore[override]
        raise VidkompyError(message)

    def print_help(self, file: Any = None) -> None:
        raise VidkompyError("-h/--help is not an option a pair can take")


def _parser(cls: type[argparse.ArgumentParser] = argparse.ArgumentParser) -> argparse.ArgumentParser:
    ap = cls(prog="vidkompy-vs", description=(
        "Lay a foreground video onto a background video with automatic spatial and temporal alignment."))
    ap.add_argument("--version", action="version", version=f"vidkompy-vs {__version__}")
    ap.add_argument("--debug", action="store_true", help="show tracebacks on unexpected errors")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    ap.add_argument("--ffmpeg", metavar="PATH", help=FFMPEG_HELP)
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    shared = [_shared()]

    a = sub.add_parser("align", help="find the alignment and write it as JSON", parents=shared)
    _add_inputs(a)
    a.add_argument("-o", "--output", required=True, help="alignment file to write (.json)")
    a.add_argument("-y", "--overwrite", action="store_true", help="replace OUTPUT if it exists")
    a.add_argument("--report", metavar="FILE", help="also write the alignment report (HTML) to FILE")
    _add_align_opts(a, "--preset")

    c = sub.add_parser("comp", help="align (or load an alignment) and render the composite with sound",
                       parents=shared)
    _add_inputs(c)
    c.add_argument("-o", "--output", required=True, help="video file to write (e.g. out.mp4, out.mkv)")
    c.add_argument("-y", "--overwrite", action="store_true", help="replace OUTPUT if it exists")
    c.add_argument("--align", dest="align_file", metavar="ALIGN.json", help="use this alignment instead of aligning")
    c.add_argument("--audio", default="auto", choices=["auto", "fg", "bg", "none"],
                   help="sound: FG's (auto when FG has sound), BG's retimed to FG (auto otherwise), or none")
    c.add_argument("--canvas", default="bg", choices=["bg", "fg"],
                   help="bg: BG's size (FG scaled); fg: FG's pixels 1:1, BG scaled around it")
    c.add_argument("--feather", type=_feather, default=0.0, help="soft FG edge, in FG pixels (default 0)")
    _add_render_opts(c)
    c.add_argument("--match-color", action="store_true",
                   help="match BG's colours to FG's where they overlap (per shot), so FG's edge shows no seam")
    e = c.add_argument_group("encoder")
    e.add_argument("--codec", default="libx264", help="ffmpeg video encoder (default libx264)")
    e.add_argument("--crf", type=_crf, default=18, help="quality (default 18; lower is better; -1: do not pass -crf)")
    e.add_argument("--preset", default="medium", help="encoder preset (default medium)")
    e.add_argument("--audio-codec", default="auto",
                   help="ffmpeg audio encoder (default: aac in .mp4/.mov, libopus otherwise)")
    _add_align_opts(c, "--align-preset")

    s = sub.add_parser("script", help="write a .vpy for vspipe/vspreview (aligning first unless --align)",
                       parents=shared)
    _add_inputs(s)
    s.add_argument("-o", "--output", required=True, help="script to write (.vpy)")
    s.add_argument("-y", "--overwrite", action="store_true", help="replace OUTPUT if it exists")
    s.add_argument("--align", dest="align_file", metavar="ALIGN.json",
                   help="use this alignment (else one is made and saved as OUTPUT's name + .align.json)")
    s.add_argument("--canvas", default="bg", choices=["bg", "fg"])
    s.add_argument("--feather", type=_feather, default=0.0)
    _add_render_opts(s)
    s.add_argument("--match-color", action="store_true", help="match BG's colours to FG's (as comp --match-color)")
    s.add_argument("--overlay", action="store_true",
                   help="draw FG's outline and a text block per frame (FG/BG frame, similarity, placement, shot)")
    s.add_argument("--diff", action="store_true",
                   help="also set output 2: |FG - the BG under it|, amplified (black where they agree)")
    _add_align_opts(s, "--align-preset")

    r = sub.add_parser("report", help="write an HTML report of an alignment file (plots, frames)",
                       parents=shared)
    r.add_argument("align_file", metavar="ALIGN.json", help="alignment file (from align, or script's .align.json)")
    r.add_argument("-o", "--output", required=True, help="report to write (.html)")
    r.add_argument("-y", "--overwrite", action="store_true", help="replace OUTPUT if it exists")
    r.add_argument("--bg", help="BG video, when it is no longer where the alignment file says")
    r.add_argument("--fg", help="FG video, when it is no longer where the alignment file says")
    _add_export(sub, shared)
    _add_batch(sub, shared)
    return ap


def _add_export(sub, shared: list[argparse.ArgumentParser]) -> None:
    x = sub.add_parser("export", parents=shared, help="write an alignment as OTIO, CSV, CMX 3600 EDL or FCP XML",
                       description="Hand an alignment on: an OpenTimelineIO timeline (BG retimed on the lower "
                       "track, FG above with its placement, FG's sound), a CSV table (one row per FG frame), "
                       "or an EDL / FCP 7 XML through the OTIO adapters (pip install 'vidkompy-vs[export]').")
    x.add_argument("align_file", metavar="ALIGN.json", help="alignment file (from `vidkompy-vs align`)")
    x.add_argument("--to", choices=["otio", "csv", "edl", "fcpxml"],
                   help="format (default: from OUTPUT's suffix: .otio, .csv, .edl, .xml/.fcpxml)")
    x.add_argument("-o", "--output", required=True, help="file to write")
    x.add_argument("-y", "--overwrite", action="store_true", help="replace OUTPUT if it exists")


def _add_batch(sub, shared: list[argparse.ArgumentParser]) -> None:
    b = sub.add_parser("batch", parents=shared, help="align and render many pairs listed in a CSV file",
                       description="Align and render every pair in PAIRS.csv (columns bg,fg[,out][,options]; "
                       "relative paths are relative to the CSV's folder; options are `comp` options for that "
                       "pair, e.g. \"--crf 20 --x 10\"). Writes DIR/<name>.mp4, DIR/<name>.align.json and "
                       "DIR/summary.csv + summary.json. A re-run skips the pairs already done.")
    b.add_argument("pairs", metavar="PAIRS.csv", help="the pairs: a CSV file with a header row")
    b.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the outputs and the summary")
    b.add_argument("-j", "--jobs", type=int, default=1,
                   help="pairs run side by side (default 1; local: processes, dask: LocalCluster workers)")
    b.add_argument("--executor", choices=["local", "dask"], default="local",
                   help="local: this machine; dask: a Dask cluster (pip install 'vidkompy-vs[dask]'). The "
                   "workers must see the inputs and DIR at the same paths as here (a shared file system)")
    b.add_argument("--scheduler", metavar="ADDRESS",
                   help="Dask scheduler, e.g. tcp://host:8786 (default: a LocalCluster with --jobs workers)")
    b.add_argument("-y", "--overwrite", action="store_true", help="redo every pair, even those already done")


# -- commands ---------------------------------------------------------------------
def read_files(args: argparse.Namespace) -> list[str]:
    """The files a command reads besides BG and FG, which its outputs must not replace:
    ``--align``'s, a preset file, the ffmpeg binary (a wrapper script is a file too)."""
    got = [args.align_file] if getattr(args, "align_file", None) else []
    preset = getattr(args, "align_preset", None)
    if preset and Path(preset).is_file():
        got.append(preset)
    ff = os.environ.get(FFMPEG_ENV) or getattr(args, "ffmpeg", None)
    if ff and Path(ff).is_file():
        got.append(ff)
    return got


def get_alignment(args: argparse.Namespace, bgp, fgp, con: Console | None = None):
    """The alignment ``args`` ask for: loaded (``--align``, with ``--x/--y/--scale`` laid over
    it) or found by aligning; a placement given by hand is range-checked like a file's."""
    from .alignment import Alignment, check_placement

    con = con or console
    manual = args.x is not None or args.y is not None or args.scale is not None
    if getattr(args, "align_file", None):
        al = Alignment.load(args.align_file)
        al.check_inputs(bgp, fgp)
        if manual:
            sp = al.spatial
            sp.x = sp.x if args.x is None else args.x
            sp.y = sp.y if args.y is None else args.y
            sp.scale = sp.scale if args.scale is None else args.scale
            sp.track, sp.method = None, "manual"
            check_placement(sp.x, sp.y, sp.scale, bgp, fgp, "--")
        return al
    if manual:
        check_placement(args.x or 0.0, args.y or 0.0, 1.0 if args.scale is None else args.scale, bgp, fgp, "--")
    from .align import align  # the engines pull in OpenCV/SciPy: only when aligning

    t0 = time.perf_counter()
    al = align(args.bg, args.fg, preset=args.align_preset, method=args.method, x=args.x, y=args.y,
               scale=args.scale, console=con, cache=args.cache)
    _summary(al, time.perf_counter() - t0, con)
    return al


def _summary(al, seconds: float, con: Console) -> None:
    t, s = al.temporal, al.spatial
    track = f", moving ({len(s.track)} positions)" if s.track else ""
    con.print(f"[bold]spatial[/]  FG at x={s.x:.2f} y={s.y:.2f} scale={s.scale:.4f}{track} "
              f"(method {s.method}, confidence {s.confidence:.2f})")
    spans = al.uncovered_spans()
    unc = (f"{len(t.uncovered)} FG frames in {len(spans)} span(s) not covered by BG" if t.uncovered
           else "all FG frames covered")
    con.print(f"[bold]temporal[/] offset {t.offset_s:+.3f} s, rate {t.rate:.5f}, {unc} "
              f"(method {t.method}, confidence {t.confidence:.2f})")
    con.print(f"[bold]shots[/]    {max(1, len(al.shots))} in FG, {al.jumps()} jump(s) in the map")
    con.print(f"aligned in {seconds:.1f} s")


def _check_fits(al, fgp) -> None:
    from .alignment import check_fits

    if al.spatial.track is None:
        check_fits((fgp.width, fgp.height), (al.bg.width, al.bg.height), al.spatial.scale, slack=0.5,
                   hint="pass --scale to shrink it or --canvas fg")


def cmd_align(args: argparse.Namespace) -> int:
    from .fsutil import check_output
    from .sources import probe

    reads = [args.bg, args.fg, *read_files(args)]
    out = check_output(args.output, reads, overwrite=args.overwrite)
    report = check_output(args.report, [*reads, out], overwrite=args.overwrite) if args.report else None
    bgp, fgp = probe(args.bg), probe(args.fg)
    al = get_alignment(args, bgp, fgp)
    al.save(out)
    console.print(f"wrote {out}")
    if report is not None:
        _write_report(al, report, args.bg, args.fg, out.parent)
    return 0


def _write_report(al, out: Path, bg, fg, base) -> None:
    from .report import write_report

    r = write_report(al, out, bg=bg, fg=fg, base=base)
    console.print(f"wrote {r.path}" + ("" if r.frames_shown else " (plots only: frames missing)"))


def cmd_report(args: argparse.Namespace) -> int:
    from .alignment import Alignment
    from .fsutil import check_output

    al = Alignment.load(args.align_file)
    base = Path(args.align_file).parent
    # (the videos the report reads: those given, or those the alignment names, as given
    # or beside it)
    named = [q for p in (al.bg.path, al.fg.path) for q in (p, base / p)]
    out = check_output(args.output, [*named, *(p for p in (args.bg, args.fg) if p), *read_files(args)],
                       overwrite=args.overwrite)
    _write_report(al, out, args.bg, args.fg, base)
    return 0


def audio_choice(args: argparse.Namespace, bgp, fgp) -> str:
    """Whose sound ``comp`` lays under the composite: ``fg``, ``bg`` or ``none``."""
    choice = args.audio
    if choice == "fg" and not fgp.has_audio:
        raise VidkompyError(f"{args.fg}: has no audio (use --audio bg or none)")
    if choice == "bg" and not bgp.has_audio:
        raise VidkompyError(f"{args.bg}: has no audio (use --audio fg or none)")
    if choice == "auto":
        choice = "fg" if fgp.has_audio else "bg" if bgp.has_audio else "none"
    return choice


def render_comp(args: argparse.Namespace, bgp, fgp, al, out: Path, choice: str, *, con: Console | None = None,
                progress: bool = True, on_progress: Callable[[int, int], None] | None = None) -> str:
    """Build the composite for ``al`` and render it to ``out`` with ``choice``'s sound;
    returns a one-line description of what was written."""
    from . import filters, sources
    from .render import AudioPlan, render

    if args.canvas == "bg":
        _check_fits(al, fgp)
    clip = filters.composite(sources.open_video(args.bg), sources.open_video(args.fg), al,
                             canvas=args.canvas, feather=args.feather, keep_bars=args.keep_bars,
                             uncovered=args.uncovered, match_color=args.match_color)
    audio = None
    if choice == "fg":
        audio = AudioPlan(fgp.path, fgp.duration, lead=sources.audio_lead(fgp.path))
    elif choice == "bg":
        audio = AudioPlan(bgp.path, fgp.duration, al.temporal.offset_s, al.temporal.rate,
                          lead=sources.audio_lead(bgp.path))
    render(clip, out, audio=audio, codec=args.codec, crf=None if args.crf < 0 else args.crf, preset=args.preset or None,
           audio_codec=args.audio_codec, console=con or console, progress=progress, on_progress=on_progress,
           ffmpeg=getattr(args, "ffmpeg", None))
    return (f"{out} ({clip.width}x{clip.height}, {clip.num_frames} frames at "
            f"{clip.fps.numerator}/{clip.fps.denominator} fps, audio: {choice})")


def cmd_comp(args: argparse.Namespace) -> int:
    from . import sources
    from .fsutil import check_output

    out = check_output(args.output, [args.bg, args.fg, *read_files(args)], overwrite=args.overwrite)
    bgp, fgp = sources.probe(args.bg), sources.probe(args.fg)
    choice = audio_choice(args, bgp, fgp)
    if args.canvas == "fg" and args.scale is not None:
        from .filters import fg_canvas

        fg_canvas((bgp.width, bgp.height), args.scale)  # (refused now rather than after aligning)
    al = get_alignment(args, bgp, fgp)
    console.print(f"wrote {render_comp(args, bgp, fgp, al, out, choice, progress=not args.quiet)}")
    return 0


def comp_args(bg: str, fg: str, out: str, options: list[str]) -> argparse.Namespace:
    """``comp``'s arguments for one pair (as if typed on the command line), parse errors
    raised as VidkompyErrors."""
    args = _parser(_RaisingParser).parse_args(["comp", bg, fg, "-o", out, *options])
    if args.output != out:
        raise VidkompyError("-o/--output cannot be given in a batch pair's options (use the out column)")
    return args


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export

    out = export(args.align_file, args.output, to=args.to, overwrite=args.overwrite)
    console.print(f"wrote {out}")
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    from .batch import run_batch

    return run_batch(args.pairs, args.output, jobs=args.jobs, executor=args.executor, scheduler=args.scheduler,
                     redo=args.overwrite, progress=not args.quiet, console=console)


def cmd_script(args: argparse.Namespace) -> int:
    from .fsutil import check_output
    from .script import write_script
    from .sources import probe

    given = read_files(args)
    out = check_output(args.output, [args.bg, args.fg, *given], overwrite=args.overwrite)
    # the alignment the script loads: the one given, unless a placement by hand changes
    # it; else one written beside the script, checked like the script itself
    keep = bool(args.align_file) and args.x is None and args.y is None and args.scale is None
    align_path = Path(args.align_file) if keep else \
        check_output(out.with_name(out.stem + ".align.json"), [args.bg, args.fg, out, *given],
                     overwrite=args.overwrite)
    bgp, fgp = probe(args.bg), probe(args.fg)
    al = get_alignment(args, bgp, fgp)
    if not keep:
        al.save(align_path)
    if args.canvas == "bg":
        _check_fits(al, fgp)
    write_script(out, args.bg, args.fg, align_path, canvas=args.canvas, feather=args.feather,
                 keep_bars=args.keep_bars, uncovered=args.uncovered, match_color=args.match_color,
                 overlay=args.overlay, diff=args.diff)
    console.print(f"wrote {out} (alignment: {align_path})")
    q = shlex.quote
    console.print(f"render: vspipe -c y4m {q(str(out))} - | {q(ffmpeg_binary())} -i - -i {q(args.fg)} -map 0:v "
                  "-map 1:a? -shortest out.mkv")
    return 0


class _StderrHandler(logging.Handler):
    """Library warnings (``logging``) as one line each on stderr, like our own messages.
    Looks up ``sys.stderr`` per message: a stream bound once would outlive a redirect."""

    def emit(self, record: logging.LogRecord) -> None:
        sys.stderr.write(f"vidkompy-vs: {record.levelname.lower()}: {record.getMessage()}\n")


def _log_to_console() -> None:
    # (--debug's root handler shows these and more; then this one stays out)
    pkg = logging.getLogger("vidkompy_vs")
    if not any(isinstance(h, _StderrHandler) for h in pkg.handlers):
        pkg.addHandler(_StderrHandler(logging.WARNING))


def main(argv: list[str] | None = None) -> int:
    args = _parser(_OneLineParser).parse_args(argv)
    if args.debug:
        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
    else:
        _log_to_console()
    env_before = os.environ.get(FFMPEG_ENV)
    # (``kill`` and a closed terminal stop the command as Ctrl-C does: partial outputs
    # removed, a batch's workers told to stop)
    handlers = stops.install(stops.KILLS, signal.default_int_handler, only_default=True)
    try:
        if args.ffmpeg or env_before:
            # checked before any work, and passed on through the environment so that every
            # ffmpeg this command starts is that one: the analysis pipes and a batch's worker
            # processes as well as the render
            os.environ[FFMPEG_ENV] = ffmpeg_binary(args.ffmpeg)
        return {"align": cmd_align, "comp": cmd_comp, "script": cmd_script, "report": cmd_report,
                "export": cmd_export, "batch": cmd_batch}[args.cmd](args)
    except VidkompyError as e:
        _error(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        console.print("vidkompy-vs: interrupted; nothing written")
        return 130
    except OSError as e:
        # (a file or folder the system refused: unreadable, read-only, a name too long)
        if args.debug:
            raise
        _error(f"{e.filename}: {e.strerror}" if e.filename and e.strerror else str(e) or type(e).__name__)
        return 2
    except Exception as e:  # noqa: BLE001 - the one place that turns surprises into one line
        if args.debug:
            raise
        msg = str(e).splitlines()[0] if str(e) else ""
        console.print(f"vidkompy-vs: internal error: {type(e).__name__}: {msg} (run with --debug for details)",
                      markup=False, highlight=False, soft_wrap=True)
        return 1
    finally:
        # (main() also runs in-process: the demo, tests)
        stops.restore(handlers)
        if env_before is None:
            os.environ.pop(FFMPEG_ENV, None)
        else:
            os.environ[FFMPEG_ENV] = env_before


if __name__ == "__main__":
    sys.exit(main())
