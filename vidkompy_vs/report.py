"""The alignment report: one self-contained HTML page to check an alignment by looking.

Plots (matplotlib, Agg) of the frame map, the per-frame similarity and the placement,
the summary figures exactly as the alignment file has them, and a strip of frame
triplets (FG, the BG frame under it, the composite) for the least similar frames and a
few evenly spaced ones. Pictures are PNGs inlined as base64: the page fetches nothing.
When the videos cannot be opened the page still comes out, with the plots, and says so.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .alignment import Alignment
from .errors import VidkompyError
from .fsutil import atomic_write_text

log = logging.getLogger(__name__)

# Frames shown as triplets: this many of the least similar, and this many evenly spaced.
N_LOW = 4
N_EVEN = 4
THUMB_W = 240


@dataclass(frozen=True)
class Report:
    """What :func:`write_report` wrote."""

    path: Path
    frames_shown: bool
    missing: str | None  # why the frames are not in the report


def write_report(alignment: Alignment, out: str | os.PathLike[str], *, bg: str | os.PathLike[str] | None = None,
                 fg: str | os.PathLike[str] | None = None, base: str | os.PathLike[str] | None = None,
                 title: str | None = None) -> Report:
    """Write the report for ``alignment`` to ``out`` (atomically) and say what it holds.

    ``bg``/``fg`` override the video paths the alignment names (when the files moved);
    relative paths in the alignment are tried as given, then from ``base`` (the folder
    of the alignment file).
    """
    al = alignment
    low, even = pick_frames(al)
    try:
        triplets = _triplets(al, _video_path(bg, al.bg.path, base, "BG"), _video_path(fg, al.fg.path, base, "FG"),
                             sorted(set(low) | set(even)))
        missing = None
    except VidkompyError as e:
        triplets, missing = [], str(e)
        log.warning("report: frames missing: %s; the report has the plots only", missing)
    page = _page(al, title or Path(out).stem, triplets, set(low), missing)
    path = atomic_write_text(out, page)
    return Report(path, not missing, missing)


def pick_frames(al: Alignment, n_low: int = N_LOW, n_even: int = N_EVEN) -> tuple[list[int], list[int]]:
    """The FG frames the report shows: the ``n_low`` least similar (one per stretch of
    neighbours, so a bad second does not fill the strip) and ``n_even`` evenly spaced."""
    sim = np.asarray(al.temporal.similarity, dtype=np.float64)
    n = sim.size
    gap = max(1, n // (4 * max(n_low, 1)))
    low: list[int] = []
    for i in np.argsort(sim, kind="stable"):
        if len(low) >= n_low:
            break
        if all(abs(int(i) - j) >= gap for j in low):
            low.append(int(i))
    even = sorted({int(round(v)) for v in np.linspace(0, n - 1, n_even + 2)[1:-1]}) if n_even else []
    return sorted(low), even


# -- frames -----------------------------------------------------------------------
def _video_path(override, named: str, base, what: str) -> Path:
    if override is not None:
        p = Path(override)
        if not p.is_file():
            raise VidkompyError(f"cannot open {what} video {str(p)!r}: "
                                f"{'not a regular file' if os.path.lexists(p) else 'no such file'}")
        return p
    p = Path(named)
    if not p.is_file() and base is not None and not p.is_absolute() and (Path(base) / p).is_file():
        p = Path(base) / p
    if not p.is_file():
        raise VidkompyError(f"cannot open {what} video {named!r} named in the alignment: no such file "
                            f"(pass --bg/--fg when the videos moved)")
    return p


def _triplets(al: Alignment, bg_path: Path, fg_path: Path, frames: list[int]) -> list[tuple[int, str, str, str]]:
    """(FG frame, FG, BG under it, composite) as base64 PNG thumbnails."""
    import vapoursynth as vs

    from . import filters, sources

    bgp, fgp = sources.probe(bg_path), sources.probe(fg_path)
    al.check_inputs(bgp, fgp)
    try:
        bgc, fgc = sources.open_video(bg_path), sources.open_video(fg_path)
        comp = filters.composite(bgc, fgc, al)
        fw = min(THUMB_W, fgc.width)
        fh = max(2, round(fgc.height * fw / fgc.width))
        cw = min(THUMB_W, comp.width)
        ch = max(2, round(comp.height * cw / comp.width))
        fgs = sources.frame_arrays(fgc, frames, width=fw, height=fh)
        bgs = sources.frame_arrays(bgc, [al.temporal.frame_map[n] for n in frames], width=cw, height=ch)
        comps = sources.frame_arrays(comp, frames, width=cw, height=ch)
    except vs.Error as e:
        raise VidkompyError(f"cannot read frames: {str(e).splitlines()[0]}") from None
    return [(n, _png(f), _png(b), _png(c)) for n, f, b, c in zip(frames, fgs, bgs, comps, strict=True)]


def _png(img: np.ndarray) -> str:
    import cv2

    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise VidkompyError("could not encode a thumbnail as PNG")
    return base64.b64encode(buf.tobytes()).decode("ascii")


# -- plots ------------------------------------------------------------------------
def _figure(w: float, h: float):
    # A bare Figure draws with Agg and touches no pyplot state: no display, no backend
    # switch for a caller that has one, nothing kept alive after the PNG is made.
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h))


def _fig_png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _runs(idx: list[int]) -> list[tuple[int, int]]:
    """Consecutive runs in a sorted list of frame numbers, as (first, last)."""
    out: list[tuple[int, int]] = []
    for i in sorted(idx):
        if out and i == out[-1][1] + 1:
            out[-1] = (out[-1][0], i)
        else:
            out.append((i, i))
    return out


def _mark_shots_and_gaps(ax, al: Alignment) -> None:
    for k, sh in enumerate(al.shots):
        if sh.fg_start > 0:
            ax.axvline(sh.fg_start, color="tab:purple", ls="--", lw=1, label="shot boundary" if k == 1 else None)
    for j, (a, b) in enumerate(_runs(al.temporal.uncovered)):
        ax.axvspan(a - 0.5, b + 0.5, color="tab:red", alpha=0.15, lw=0, label="uncovered" if j == 0 else None)


def _legend(ax) -> None:
    # beside the axes, where it cannot hide a low point or an uncovered span
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0)


def _plot_map(al: Alignment) -> str:
    t = al.temporal
    n = np.arange(al.fg.frames)
    line = (t.offset_s + t.rate * n * al.fg.fps_den / al.fg.fps_num) * al.bg.fps_num / al.bg.fps_den
    fig = _figure(10, 3.6)
    ax = fig.subplots()
    ax.plot(n, t.frame_map, ".", ms=2.5, color="tab:blue", label="BG frame under FG frame")
    ax.plot(n, line, "-", lw=1, color="tab:orange", label=f"fitted line: offset {t.offset_s:+.3f} s, rate {t.rate:.5f}")
    return _finish(fig, ax, al, "BG frame", "Frame map")


def _finish(fig, ax, al: Alignment, ylabel: str, title: str) -> str:
    """A plot over FG frames with the shots and uncovered spans marked, as an inline PNG."""
    _mark_shots_and_gaps(ax, al)
    ax.set_xlabel("FG frame")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    _legend(ax)
    return _fig_png(fig)


def _plot_similarity(al: Alignment, low: list[int]) -> str:
    sim = np.asarray(al.temporal.similarity)
    fig = _figure(10, 2.8)
    ax = fig.subplots()
    ax.plot(np.arange(sim.size), sim, "-", lw=1, color="tab:green", label="similarity")
    if low:
        ax.plot(low, sim[low], "o", color="tab:red", ms=6, label="least similar (shown below)")
        for i in low:
            ax.annotate(str(i), (i, sim[i]), textcoords="offset points", xytext=(3, -11), fontsize=7, color="tab:red")
    return _finish(fig, ax, al, "similarity", "Per-frame similarity")


def _plot_placement(al: Alignment) -> str:
    rows = np.array([al.spatial.at(i) for i in range(al.fg.frames)]) if al.spatial.track else \
        np.tile([al.spatial.x, al.spatial.y, al.spatial.scale], (al.fg.frames, 1))
    n = np.arange(al.fg.frames)
    fig = _figure(10, 3.6)
    a1, a2 = fig.subplots(2, 1, sharex=True)
    a1.plot(n, rows[:, 0], lw=1, label="x")
    a1.plot(n, rows[:, 1], lw=1, label="y")
    a1.set_ylabel("BG px")
    _legend(a1)
    a1.set_title("Placement (FG's top-left in BG, and scale)")
    a2.plot(n, rows[:, 2], lw=1, color="tab:gray", label="scale")
    a2.set_ylabel("scale")
    a2.set_xlabel("FG frame")
    for a in (a1, a2):
        _mark_shots_and_gaps(a, al)
        a.grid(alpha=0.3)
    return _fig_png(fig)


# -- page -------------------------------------------------------------------------
def summary(al: Alignment) -> list[tuple[str, str, object]]:
    """(key, label, value) for the summary table; the values are the alignment file's own."""
    t, s = al.temporal, al.spatial
    return [
        ("temporal.offset_s", "offset (s)", t.offset_s),
        ("temporal.rate", "rate (BG s per FG s)", t.rate),
        ("temporal.confidence", "temporal confidence", t.confidence),
        ("temporal.method", "temporal method", t.method),
        ("uncovered", "uncovered FG frames", len(t.uncovered)),
        ("spatial.x", "x (BG px)", s.x),
        ("spatial.y", "y (BG px)", s.y),
        ("spatial.scale", "scale", s.scale),
        ("spatial.confidence", "spatial confidence", s.confidence),
        ("spatial.method", "spatial method", s.method),
        ("spatial.track", "moving track", "yes" if s.track else "no"),
        ("shots", "shots", len(al.shots)),
        ("fg.frames", "FG frames", al.fg.frames),
        ("bg.frames", "BG frames", al.bg.frames),
    ]


def _cell(v: object) -> str:
    # repr of a float is its shortest exact form: the same digits as in the JSON file
    return html.escape(repr(v) if isinstance(v, float) else str(v))


_CSS = """
body{font-family:sans-serif;margin:1.5em;color:#222;max-width:1200px}
h1{font-size:1.4em} h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.9em} td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
td.v{font-family:monospace}
.missing{background:#fff3cd;border:2px solid #d39e00;padding:.8em;margin:1em 0;font-weight:bold}
.plot img{max-width:100%}
.strip{display:flex;flex-wrap:wrap;gap:1em}
.trip{border:1px solid #ccc;padding:.4em}
.trip.low{border-color:#d62728;border-width:2px}
.trip img{display:block;margin:.2em 0}
.trip .cap{font-size:.8em} .trip .lbl{font-size:.7em;color:#666}
"""


def _page(al: Alignment, title: str, triplets: list[tuple[int, str, str, str]], low: set[int],
          missing: str | None) -> str:
    e = html.escape
    rows = "\n".join(f'<tr><th>{e(label)}</th><td class="v" data-key="{e(key)}">{_cell(v)}</td></tr>'
                     for key, label, v in summary(al))
    shots = ""
    if al.shots:
        body = "\n".join(
            f"<tr><td>{k}</td><td>{sh.fg_start}-{sh.fg_end}</td><td>{sh.bg_start}-{sh.bg_end}</td>"
            f"<td>{_cell(sh.x)}</td><td>{_cell(sh.y)}</td><td>{_cell(sh.scale)}</td><td>{_cell(sh.confidence)}</td>"
            f"<td>{e(str(sh.active) if sh.active else 'whole frame')}</td></tr>" for k, sh in enumerate(al.shots))
        shots = ("<h2>Shots</h2><table><tr><th>#</th><th>FG frames</th><th>BG frames</th><th>x</th><th>y</th>"
                 f"<th>scale</th><th>confidence</th><th>active area</th></tr>{body}</table>")
    plots = "\n".join(f'<div class="plot" id="{pid}"><img alt="{e(alt)}" src="data:image/png;base64,{b64}"></div>'
                      for pid, alt, b64 in (("plot-map", "frame map", _plot_map(al)),
                                            ("plot-similarity", "similarity", _plot_similarity(al, sorted(low))),
                                            ("plot-placement", "placement", _plot_placement(al))))
    if missing:
        frames = (f'<div class="missing" id="frames-missing">Frames missing: {e(missing)}. '
                  "The plots and figures above come from the alignment file alone.</div>")
    else:
        sim = al.temporal.similarity
        cards = "\n".join(
            f'<div class="trip{" low" if n in low else ""}"><div class="cap">FG {n} / BG {al.temporal.frame_map[n]}'
            f' &middot; similarity {sim[n]:.4f}{" &middot; least similar" if n in low else ""}</div>'
            f'<div class="lbl">FG</div><img alt="FG {n}" src="data:image/png;base64,{f}">'
            f'<div class="lbl">BG under it</div>'
            f'<img alt="BG {al.temporal.frame_map[n]}" src="data:image/png;base64,{b}">'
            f'<div class="lbl">composite</div><img alt="composite {n}" src="data:image/png;base64,{c}"></div>'
            for n, f, b, c in triplets)
        frames = ('<p>Each column: FG frame, the BG frame under it, the composite; red: among the least similar.'
                  f'</p><div class="strip" id="triplets">{cards}</div>')
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>vidkompy-vs alignment: {e(title)}</title>
<style>{_CSS}</style></head><body>
<h1>vidkompy-vs alignment report: {e(title)}</h1>
<p>BG <code>{e(al.bg.path)}</code> ({al.bg.width}x{al.bg.height}, {al.bg.fps_num}/{al.bg.fps_den} fps,
{al.bg.frames} frames)<br>FG <code>{e(al.fg.path)}</code> ({al.fg.width}x{al.fg.height},
{al.fg.fps_num}/{al.fg.fps_den} fps, {al.fg.frames} frames)</p>
<h2>Summary</h2><table id="summary">{rows}</table>
{shots}
<h2>Plots</h2>
{plots}
<h2>Frames</h2>
{frames}
</body></html>
"""
