"""Export benchmark: every temporal and structure benchmark case aligned, exported and read back.

For each case of ``benchmarks/temporal.py`` and ``benchmarks/structure.py`` (same
footage, same builds, cached; the structure cases bring cuts, inserts, missing spans,
reordered shots, per-shot placements and moving framing): align,
export to OTIO, EDL and FCP XML, rebuild the frame map from each file and compare it
with the alignment's (and the CSV's column with it). Prints one row per case: frames,
BG clips (runs), uncovered frames, whether each round trip is exact, the export time, and
an md5 of the frame map (to compare runs, e.g. with and without an ffmpeg on PATH). Each
align runs with a cold cache of its own.

    .venv/bin/python benchmarks/export.py [--cases a,b] [--suite temporal|structure|all]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import structure as sb  # noqa: E402
import temporal as tb  # noqa: E402

from vidkompy_vs import export as ex  # noqa: E402
from vidkompy_vs.alignment import Alignment  # noqa: E402


def check(al: Alignment, src: Path, d: Path) -> dict:
    row: dict = {"frames": al.fg.frames, "runs": sum(b is not None for _, _, b in ex.bg_runs(al)),
                 "uncovered": len(al.temporal.uncovered)}
    want = (al.temporal.frame_map, al.temporal.uncovered)
    t0 = time.perf_counter()
    for fmt, suffix in (("otio", ".otio"), ("edl", ".edl"), ("fcpxml", ".xml")):
        out = ex.export(src, d / f"a{suffix}", to=fmt, overwrite=True)
        got = ex.frame_map_from_otio(out, rate=al.fg.fps, frames=al.fg.frames)
        row[fmt] = got == want
    out = ex.export(src, d / "a.csv", to="csv", overwrite=True)
    row["csv"] = [int(r["bg_frame"]) for r in csv.DictReader(out.open())] == al.temporal.frame_map
    row["seconds"] = time.perf_counter() - t0
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    ap.add_argument("--suite", choices=["temporal", "structure", "all"], default="all")
    args = ap.parse_args()
    builds = []  # (name, rates, a function making BG and FG)
    if args.suite in ("temporal", "all"):
        vid, wav, n_master = tb.master()
        builds += [(c.name, f"{c.fg_fps}/{c.bg_fps}", lambda c=c: tb.build(c, vid, wav)) for c in tb.cases(n_master)]
    if args.suite in ("structure", "all"):
        builds += [(c.name, "", lambda c=c: sb.build(c)) for c in sb.cases()]
    todo = [b for b in builds if not args.cases or b[0] in args.cases.split(",")]
    print(f"{'case':14s} {'fps':>9s} {'FG':>5s} {'runs':>5s} {'unc':>4s} {'otio':>5s} {'edl':>5s} {'fcpxml':>6s} "
          f"{'csv':>5s} {'export s':>8s} {'map md5':>10s}")
    ok = True
    for name, rates, make in todo:
        bg, fg = make()
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            # `vidkompy-vs align` in its own process: a crash there is a row, not the end; with
            # a cold cache of its own, so the map is made in this run (not read back from an
            # earlier run's, e.g. one with another ffmpeg on PATH)
            env = dict(os.environ, VIDKOMPY_VS_CACHE=str(d / "cache"))
            p = subprocess.run([sys.executable, "-m", "vidkompy_vs", "-q", "align", str(bg), str(fg), "-o",
                                str(d / "a.json")], capture_output=True, text=True, cwd=HERE.parent, env=env)
            if p.returncode != 0:
                ok = False
                msg = (p.stderr.strip().splitlines() or [""])[-1][:90]
                print(f"{name:14s} align failed (exit {p.returncode}) {msg}", flush=True)
                continue
            al = Alignment.load(d / "a.json")
            r = check(al, d / "a.json", d)
        rates = rates or f"{al.fg.fps:.5g}/{al.bg.fps:.5g}"
        ok &= all(r[k] for k in ("otio", "edl", "fcpxml", "csv"))
        yes = {True: "ok", False: "FAIL"}
        print(f"{name:14s} {rates:>9s} {r['frames']:5d} {r['runs']:5d} {r['uncovered']:4d} "
              f"{yes[r['otio']]:>5s} {yes[r['edl']]:>5s} {yes[r['fcpxml']]:>6s} {yes[r['csv']]:>5s} "
              f"{r['seconds']:8.2f} {hashlib.md5(repr(list(al.temporal.frame_map)).encode()).hexdigest()[:10]}",
              flush=True)
    print("every round trip exact" if ok else "SOME ROUND TRIPS DIFFER")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
