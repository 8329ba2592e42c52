"""Remap benchmark: which VapourSynth construction serves "output frame n = BG frame map[n]"
(with per-frame props) fastest while staying exact.

Constructions (all but ``FrameEval, no props`` carry ``VkBgFrame``, ``VkSimilarity`` and
``_DurationNum``/``_DurationDen`` of the output rate, like ``vidkompy_vs.filters.remap``):

- ``decode alone``: ``bg[lo:hi+1]`` read sequentially (the floor; no map);
- ``filters.remap``: the current implementation, ``std.FrameEval`` returning
  ``bg[m].std.SetFrameProps(...)``;
- ``FrameEval, no props``: ``std.FrameEval`` returning ``bg[m]`` (reference: props missing);
- ``FrameEval + ModifyFrame``: the same, then one ``std.ModifyFrame`` that only sets props;
- ``Splice runs + ModifyFrame``: ``std.Splice`` of the map's runs (consecutive +1 runs as
  slices, repeats as ``bg[m] * k``), then ``AssumeFPS`` and ``ModifyFrame`` for props;
- ``Splice 1-frame + ModifyFrame``: ``std.Splice`` of one single-frame trim per output frame;
- ``SelectEvery + ModifyFrame``: ``std.SelectEvery`` with one cycle of offsets, for maps
  that are exactly periodic (``map[n + P] = map[n] + Q``); real alignment maps are not.

Maps over a 1920x1080 25 fps BG (264 frames of Big Buck Bunny, H.264 with B-frames,
decoded by ``lsmas.LWLibavSource``): FG 60 fps over BG 25 (each BG frame 2-3x), FG 24 over
BG 30 (every 5th BG frame skipped), plain offset (+12).

Timing: every output frame served through ``clip.frames()`` as a frame server does
(one frame in flight per thread), rounds interleaved; this process's CPU time (all
threads: VapourSynth's and the decoder's), which a shared, noisy machine moves far less
than wall time; ratio of the mean to the mean of decoding the BG frames the map covers
alone, in the same run. A check round first (not timed) verifies every output frame's
props and the plane md5 of a 48-frame sample against ``bg[map[n]]``. On bikes.mp4
(640x272, B-frames) with the same maps, every frame's md5 and props are checked.

Graph build: for an hour-long map (216000 entries, FG 60 over BG 25), each construction
built alone in a fresh process (build time, RSS added), then its CPU per served frame on
a BlankClip BG at the start and at the end of the map (a ``Splice`` finds its part by a
linear scan, so the end is slower), with BG alone as the baseline.

The recommendation is the exact construction that works on any map (SelectEvery needs a
periodic one) with the least estimated CPU for an hour-long 60-over-25 job: the hour's
BG decode x its mean serving ratio + its graph build + its per-frame growth along the map.

    .venv/bin/python benchmarks/remap.py [--rounds 4] [--time-limit 230]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import vapoursynth as vs

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from footage import footage  # noqa: E402

CACHE = ROOT / ".cache" / "bench"
core = vs.core


# -- maps ---------------------------------------------------------------------------------
def make_map(kind: str, n_bg: int, n_out: int | None = None) -> tuple[list[int], int]:
    """(map, output fps) for ``kind``; as long as BG allows unless ``n_out`` is given."""
    if kind == "60/25":
        f = lambda n: n * 25 // 60  # noqa: E731  FG frame n at n/60 s shows BG frame floor(n/60*25)
        fps = 60
    elif kind == "24/30":
        f = lambda n: round(n * 30 / 24)  # noqa: E731
        fps = 24
    elif kind == "offset":
        f = lambda n: n + 12  # noqa: E731
        fps = 25
    else:
        raise ValueError(kind)
    out = []
    n = 0
    while (n_out is None or n < n_out) and f(n) < n_bg:
        out.append(f(n))
        n += 1
    return out, fps


def sims_for(fmap: list[int]) -> list[float]:
    rng = random.Random(len(fmap))
    return [round(rng.uniform(0.8, 1.0), 6) for _ in fmap]


def runs(fmap: list[int]) -> list[tuple[int, int, int]]:
    """(start, length, repeat): ``length`` consecutive frames from ``start`` (repeat 1), or
    frame ``start`` ``repeat`` times (length 1)."""
    out: list[list[int]] = []
    for m in fmap:
        if out:
            s, ln, rep = out[-1]
            if ln == 1 and m == s:
                out[-1][2] += 1
                continue
            if rep == 1 and m == s + ln:
                out[-1][1] += 1
                continue
        out.append([m, 1, 1])
    return [tuple(r) for r in out]  # type: ignore[misc]


def period(fmap: list[int], max_p: int = 64) -> tuple[int, int] | None:
    """(P, Q) with ``map[n + P] == map[n] + Q`` for all n and one cycle's offsets in [0, Q)."""
    for p in range(1, min(max_p, len(fmap) - 1) + 1):
        q = fmap[p] - fmap[0]
        if q <= 0 or any(fmap[n + p] - fmap[n] != q for n in range(len(fmap) - p)):
            continue
        if all(0 <= fmap[i] - fmap[0] < q for i in range(p)):
            return p, q
    return None


# -- constructions ------------------------------------------------------------------------
def _props_setter(fmap: list[int], sims: list[float], num: int, den: int):
    def setp(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        g = f.copy()
        g.props.update(VkBgFrame=fmap[n], VkSimilarity=sims[n], _DurationNum=den, _DurationDen=num)
        return g
    return setp


def _with_props(node: vs.VideoNode, fmap, sims, num, den) -> vs.VideoNode:
    node = core.std.AssumeFPS(node, fpsnum=num, fpsden=den)
    return core.std.ModifyFrame(node, node, _props_setter(fmap, sims, num, den))


def c_remap(bg, fmap, sims, num, den):
    from vidkompy_vs.filters import remap
    return remap(bg, fmap, Fraction(num, den), sims)


def _fe(bg, fmap, num, den):
    base = core.std.BlankClip(bg, length=len(fmap), fpsnum=num, fpsden=den, keep=True)
    return core.std.FrameEval(base, lambda n: bg[fmap[n]])


def c_fe_noprops(bg, fmap, sims, num, den):
    return _fe(bg, fmap, num, den)


def c_fe_mf(bg, fmap, sims, num, den):
    return _with_props(_fe(bg, fmap, num, den), fmap, sims, num, den)


def c_splice_runs(bg, fmap, sims, num, den):
    parts = [bg[s:s + ln] if rep == 1 else bg[s] * rep for s, ln, rep in runs(fmap)]
    node = parts[0] if len(parts) == 1 else core.std.Splice(parts)
    return _with_props(node, fmap, sims, num, den)


def c_splice_single(bg, fmap, sims, num, den):
    node = core.std.Splice([bg[m] for m in fmap]) if len(fmap) > 1 else bg[fmap[0]]
    return _with_props(node, fmap, sims, num, den)


def c_selectevery(bg, fmap, sims, num, den):
    pq = period(fmap)
    if pq is None:
        return None
    p, q = pq
    if q < 2 and 2 * p < len(fmap):  # SelectEvery wants cycle > 1: take two periods
        p, q = 2 * p, 2 * q
    node = core.std.SelectEvery(bg[fmap[0]:], cycle=q, offsets=[fmap[i] - fmap[0] for i in range(p)])
    return _with_props(node[:len(fmap)], fmap, sims, num, den)


CONSTRUCTIONS = {
    "filters.remap (FrameEval+SetFrameProps)": (c_remap, True),
    "FrameEval, no props": (c_fe_noprops, False),
    "FrameEval + ModifyFrame": (c_fe_mf, True),
    "Splice runs + ModifyFrame": (c_splice_runs, True),
    "Splice 1-frame + ModifyFrame": (c_splice_single, True),
    "SelectEvery + ModifyFrame": (c_selectevery, True),
}
MAPS = ("60/25", "24/30", "offset")


# -- checks -------------------------------------------------------------------------------
def md5(f: vs.VideoFrame) -> str:
    h = hashlib.md5()
    for i in range(f.format.num_planes):
        h.update(np.ascontiguousarray(np.asarray(f[i])).data)
    return h.hexdigest()


def serve(node: vs.VideoNode, sample: set[int] | None = None, prefetch: int | None = None
          ) -> tuple[float, float, dict[int, str], list[dict]]:
    """Serve every frame: (CPU s, wall s, md5 of the frames in ``sample``, checked props per frame).

    CPU time is this process's, all threads (VapourSynth's and the decoder's): on a shared,
    noisy machine it moves far less than wall time."""
    got: dict[int, str] = {}
    props: list[dict] = []
    c, t = time.process_time(), time.perf_counter()
    for n, f in enumerate(node.frames(prefetch=prefetch)):
        if sample is not None:
            p = f.props
            props.append({k: p.get(k) for k in ("VkBgFrame", "VkSimilarity", "_DurationNum", "_DurationDen")})
            if n in sample:
                got[n] = md5(f)
    return time.process_time() - c, time.perf_counter() - t, got, props


def verdict(node, fmap, sims, num, den, has_props, got, props, ref) -> str:
    """'' when exact; else what is wrong."""
    bad = []
    if node.num_frames != len(fmap):
        bad.append(f"{node.num_frames} frames, want {len(fmap)}")
    if (node.fps.numerator, node.fps.denominator) != (num, den):
        bad.append(f"fps {node.fps}")
    pix = sum(got[n] != ref[fmap[n]] for n in got)
    if pix:
        bad.append(f"{pix}/{len(got)} wrong pictures")
    if has_props:
        wrong = sum(p != {"VkBgFrame": fmap[n], "VkSimilarity": sims[n], "_DurationNum": den, "_DurationDen": num}
                    for n, p in enumerate(props))
        if wrong:
            bad.append(f"{wrong} frames with wrong props")
    return "; ".join(bad)


# -- hour-long map, in a child process ------------------------------------------------------
def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


BASELINE = "BG alone (no remap)"


def hour_child(name: str, kind: str, k: int = 1000, reps: int = 3) -> None:
    n = 216000
    fmap, num = make_map(kind, 10**9, n)
    sims = sims_for(fmap)
    bg = core.std.BlankClip(width=1920, height=1080, format=vs.YUV420P8, length=max(fmap) + 1, fpsnum=25, keep=True)
    bg.get_frame(0)
    rss0 = _rss_mb()
    c, t = time.process_time(), time.perf_counter()
    node = bg.std.Loop(times=-(-n // bg.num_frames))[:n] if name == BASELINE \
        else CONSTRUCTIONS[name][0](bg, fmap, sims, num, 1)
    out = {"build": time.process_time() - c, "build_wall": time.perf_counter() - t, "rss_added_mb": _rss_mb() - rss0}
    if node is None:
        print(json.dumps(None))
        return
    for _ in range(reps):  # head and tail alternately, best of ``reps``
        for label, start in (("head", 0), ("tail", n - k)):
            c = time.process_time()
            for _f in node[start:start + k].frames():
                pass
            us = (time.process_time() - c) / k * 1e6
            out[label] = min(out.get(label, us), us)
    print(json.dumps(out))


def hour_rows(kinds: tuple[str, ...], timeout: float) -> dict[tuple[str, str], dict | None | str]:
    res: dict[tuple[str, str], dict | None | str] = {}
    for kind in kinds:
        for name in (BASELINE, *CONSTRUCTIONS):
            try:
                p = subprocess.run([sys.executable, __file__, "--hour-child", name, kind], capture_output=True,
                                   text=True, timeout=timeout)
                res[(name, kind)] = json.loads(p.stdout.strip().splitlines()[-1]) if p.returncode == 0 \
                    else f"failed: {p.stderr.strip().splitlines()[-1:]}"
            except subprocess.TimeoutExpired:
                res[(name, kind)] = f">{timeout:.0f} s"
        print(f"  hour-long {kind} map done", flush=True)
    return res


# -- main -----------------------------------------------------------------------------------
def open_bg(path: Path) -> vs.VideoNode:
    from sources import quiet_stderr
    with quiet_stderr():
        return core.lsmas.LWLibavSource(str(path), cachefile=str(CACHE / f"{path.stem}.lwi"), ff_loglevel=-8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=4, help="timed rounds on 1080p after the check round (default 4)")
    ap.add_argument("--time-limit", type=float, default=230.0,
                    help="no further timed round starts after this many seconds (at least 2 run; default 230)")
    ap.add_argument("--hour-timeout", type=float, default=90.0)
    ap.add_argument("--hour-child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.hour_child:
        hour_child(*args.hour_child)
        return
    from sources import bbb1080

    t0 = time.perf_counter()
    CACHE.mkdir(parents=True, exist_ok=True)
    bg = open_bg(bbb1080("open"))
    small = open_bg(footage("bikes.mp4"))
    print(f"BG {bg.width}x{bg.height} {bg.num_frames} frames; ready in {time.perf_counter() - t0:.1f} s", flush=True)

    # exactness on bikes: every frame
    ref_small = [md5(f) for f in small.frames()]
    small_bad: dict[tuple[str, str], str] = {}
    for kind in MAPS:
        fmap, num = make_map(kind, small.num_frames)
        sims = sims_for(fmap)
        for name, (fn, has_props) in CONSTRUCTIONS.items():
            node = fn(small, fmap, sims, num, 1)
            if node is None:
                small_bad[(name, kind)] = "n/a"
                continue
            _, _, got, props = serve(node, set(range(len(fmap))))
            small_bad[(name, kind)] = verdict(node, fmap, sims, num, 1, has_props, got, props, ref_small)
    print(f"bikes checked ({time.perf_counter() - t0:.0f} s)", flush=True)

    # 1080p. Round 0 checks (not timed): md5 of a sample and every frame's props. Then timed
    # rounds, served as a frame server does: one frame in flight per thread.
    rng = random.Random(7)
    times: dict[tuple[str, str], list[float]] = {}
    big_bad: dict[tuple[str, str], str] = {}
    setup = {}
    for kind in MAPS:
        fmap, num = make_map(kind, bg.num_frames)
        sample = set(rng.sample(range(len(fmap)), 46)) | {0, len(fmap) - 1}
        setup[kind] = (fmap, num, sims_for(fmap), sample)
    for r in range(args.rounds + 1):
        check = r == 0
        for kind in MAPS:
            fmap, num, sims, sample = setup[kind]
            lo, hi = min(fmap), max(fmap)
            for name in ("decode alone", *CONSTRUCTIONS):
                if name == "decode alone":
                    node, has_props = bg[lo:hi + 1], False
                else:
                    fn, has_props = CONSTRUCTIONS[name]
                    node = fn(bg, fmap, sims, num, 1)
                if node is None:
                    big_bad[(name, kind)] = "n/a"
                    continue
                if not check:
                    times.setdefault((name, kind), []).append(serve(node)[0])
                elif name == "decode alone":
                    _, _, got, _ = serve(node, {fmap[n] - lo for n in sample})
                    ref = {m + lo: h for m, h in got.items()}
                else:
                    _, _, got, props = serve(node, sample)
                    big_bad[(name, kind)] = verdict(node, fmap, sims, num, 1, has_props, got, props, ref)
        print(f"1080p {'check round' if check else f'timed round {r}/{args.rounds}'} done "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
        rounds_done = r
        if r >= 2 and time.perf_counter() - t0 > args.time_limit:
            print(f"  stopping after {r} timed rounds: past --time-limit {args.time_limit:.0f} s", flush=True)
            break

    kinds_h = ("60/25",)
    hour = hour_rows(kinds_h, args.hour_timeout)

    from rich.console import Console
    from rich.table import Table

    def mean(name: str, kind: str) -> float | None:
        ts = times.get((name, kind))
        return sum(ts) / len(ts) if ts else None

    def ratio(name: str, kind: str) -> float | None:
        m = mean(name, kind)
        return None if m is None else m / mean("decode alone", kind)  # type: ignore[operator]

    con = Console(width=230)
    tb = Table(title=f"Serving every frame of a 1080p BG (LWLibav) through clip.frames(): process CPU s (all threads), "
                     f"min-max of {rounds_done} rounds, ratio of means to decode alone")
    tb.add_column("construction")
    for kind in MAPS:
        fmap = setup[kind][0]
        tb.add_column(f"{kind} ({len(fmap)} out) CPU s", justify="right")
        tb.add_column("ratio", justify="right")
    tb.add_column("mean ratio", justify="right")
    tb.add_column("exact (1080p: 48 md5 + all props; bikes: all)")
    for name in ("decode alone", *CONSTRUCTIONS):
        cells = []
        verd = []
        rs = []
        for kind in MAPS:
            ts = times.get((name, kind))
            if not ts:
                cells += ["n/a", ""]
            else:
                rs.append(ratio(name, kind))
                cells += [f"{min(ts):.2f}-{max(ts):.2f}", f"{rs[-1]:.2f}x"]
            if name != "decode alone":
                b1, b2 = big_bad.get((name, kind), ""), small_bad.get((name, kind), "")
                if b1 == "n/a":
                    continue
                if b1 or b2:
                    verd.append(f"{kind}: " + "; ".join(x for x in (b1 and f"1080p {b1}", b2 and f"bikes {b2}") if x))
        cells.append(f"{sum(rs) / len(rs):.2f}x" if len(rs) == len(MAPS) else "")
        if name == "decode alone":
            exact = "-"
        elif name.startswith("SelectEvery"):
            exact = ("yes" if not verd else " | ".join(verd)) + " (periodic maps only)"
        elif not CONSTRUCTIONS[name][1]:
            exact = ("pictures yes" if not verd else " | ".join(verd)) + ", no props"
        else:
            exact = "yes" if not verd else " | ".join(verd)
        tb.add_row(name, *cells, exact)
    con.print(tb)

    th = Table(title="Hour-long 60-over-25 map (216000 entries), BlankClip 1080p BG, fresh process per row: graph "
                     "build, RSS it adds, CPU per served frame at the map's head and tail (best of 3 x 1000 frames)")
    th.add_column("construction")
    for c in ("build CPU s", "build wall s", "+RSS MB", "µs/frame head", "µs/frame tail"):
        th.add_column(c, justify="right")
    for name in (BASELINE, *CONSTRUCTIONS):
        h = hour[(name, "60/25")]
        if h is None:
            cells = ["n/a"] * 5
        elif isinstance(h, str):
            cells = [h, "", "", "", ""]
        else:
            cells = [f"{h['build']:.3f}", f"{h['build_wall']:.3f}", f"{h['rss_added_mb']:.0f}", f"{h['head']:.0f}",
                     f"{h['tail']:.0f}"]
        th.add_row(name, *cells)
    con.print(th)

    # Recommendation: among exact constructions that work on any map (SelectEvery needs a
    # periodic one), the least estimated CPU for an hour-long 60-over-25 job: decoding its
    # 90000 BG frames (decode-alone CPU per frame, measured here) x the construction's mean
    # serving ratio over the three maps (its own per-frame cost and any extra decoding it
    # causes), + its graph build, + what its per-frame cost grows by along the map.
    per_bg = sum(mean("decode alone", k) / (max(setup[k][0]) - min(setup[k][0]) + 1)  # type: ignore[operator]
                 for k in MAPS) / len(MAPS)
    decode_hour = per_bg * 90000

    def serve_ratio(name: str) -> float:
        return sum(ratio(name, k) for k in MAPS) / len(MAPS)  # type: ignore[misc]

    def estimate(name: str) -> float:
        h = hour[(name, "60/25")]
        growth = max(0.0, (h["tail"] - h["head"]) / 2) * 216000 / 1e6  # type: ignore[index]
        return decode_hour * serve_ratio(name) + h["build"] + growth  # type: ignore[index]

    general = [n for n, (_, hp) in CONSTRUCTIONS.items()
               if hp and not n.startswith("SelectEvery")
               and all(not big_bad.get((n, k)) and not small_bad.get((n, k)) for k in MAPS)
               and isinstance(hour[(n, "60/25")], dict)]
    print(f"Estimated CPU for an hour-long 1080p job (216000 output frames over 90000 BG frames; decode alone "
          f"~{decode_hour:.0f} s; serving ratio = mean over the three maps; build and growth of the 60-over-25 map):")
    for n in general:
        h = hour[(n, "60/25")]
        print(f"  {n}: ~{estimate(n):.0f} s (serving {serve_ratio(n):.2f}x: "
              + ", ".join(f"{k} {ratio(n, k):.2f}x" for k in MAPS)
              + f"; build {h['build']:.2f} s, +{h['rss_added_mb']:.0f} MB)")  # type: ignore[index]
    if general:
        rec = min(general, key=estimate)
        cur = "filters.remap (FrameEval+SetFrameProps)"
        h = hour[(rec, "60/25")]
        same = (" (the current implementation)" if rec == cur
                else f" (filters.remap: {serve_ratio(cur):.2f}x, ~{estimate(cur):.0f} s)")
        print(f"Recommendation: {rec}{same}: exact on every map, serves 1080p at {serve_ratio(rec):.2f}x decode alone, "
              f"hour-long map: build {h['build']:.2f} s, ~{estimate(rec):.0f} s CPU.")  # type: ignore[index]
    else:
        print("Recommendation: none (no general construction was exact, or the hour-long runs failed)")
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
