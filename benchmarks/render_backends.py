"""Which encoder end ``comp`` should use: PyAV in-process, or a y4m pipe into an ffmpeg binary.

The render benchmark's 1080p60 composite (``benchmarks/render.py`` builds and caches the
pair: run it first, without ``--quick``), video only, x264 crf 18 preset medium with frame threads in both, so
both write the same bitstream (md5 printed). Runs alternate between the encoders
(``--runs`` each) and are timed in wall and in CPU time of the whole process tree: on a
shared machine the CPU time is the steadier of the two.

Result (all 570 frames, 2 runs each, on a 2-core machine shared with other jobs, load
12-17): PyAV and the pipe into the wheel's ffmpeg wrote the same bitstream; median CPU
46.7 s vs 47.9 s (0.975), fastest wall 78.8 s vs 69.9 s; the system's ffmpeg 5.1 46.3 s
CPU. Single runs of one encoder varied by 4 % in CPU, so it is a tie, and ``comp`` keeps
the pipe (its audio filters and any encoder option pass through unchanged).

    .venv/bin/python benchmarks/render_backends.py [--frames N] [--runs R] [--ffmpeg PATH ...]
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import statistics
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from ff import FFMPEG  # noqa: E402
from render import X, Y  # noqa: E402

from vidkompy_vs import filters, sources  # noqa: E402
from vidkompy_vs.alignment import Alignment  # noqa: E402

FOLDER = HERE.parent / ".cache" / "bench" / "render"
BG, FG = FOLDER / "bg_1920x1080_60.mp4", FOLDER / "fg_1920x1080_60.mp4"
CRF, PRESET = "18", "medium"


def composite(frames: int):
    """The true composite (render.py's alignment: FG at (X, Y), 0.5 s into BG)."""
    bp, fp = sources.probe(BG), sources.probe(FG)
    al = Alignment.simple(bp, fp, x=X, y=Y)
    al.temporal.frame_map = [min(bp.frames - 1, i + 30) for i in range(fp.frames)]
    clip = filters.composite(sources.open_video(str(BG)), sources.open_video(str(FG)), al)
    return clip[:frames] if frames else clip


def cpu() -> float:
    """CPU time of this process and its reaped children (s)."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def by_pipe(clip, binary: str, out: Path) -> None:
    p = subprocess.Popen([binary, "-nostdin", "-v", "error", "-y", "-f", "yuv4mpegpipe", "-i", "pipe:0",
                          "-c:v", "libx264", "-crf", CRF, "-preset", PRESET, str(out)], stdin=subprocess.PIPE)
    clip.output(p.stdin, y4m=True)
    p.stdin.close()
    if p.wait():
        raise SystemExit(f"{binary} failed")


def by_pyav(clip, out: Path) -> None:
    tb = Fraction(clip.fps.denominator, clip.fps.numerator)
    with av.open(str(out), "w") as box:
        s = box.add_stream("libx264", rate=Fraction(clip.fps.numerator, clip.fps.denominator))
        s.width, s.height, s.pix_fmt, s.time_base = clip.width, clip.height, "yuv420p", tb
        s.options = {"crf": CRF, "preset": PRESET}
        # ffmpeg's CLI lets x264 pick frame threads; PyAV's default (slices) encodes
        # another, worse-compressed stream
        s.codec_context.thread_type, s.codec_context.thread_count = "FRAME", 0
        for n, f in enumerate(clip.frames(close=True)):
            vf = av.VideoFrame(clip.width, clip.height, "yuv420p")
            for i, plane in enumerate(vf.planes):
                rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
                rows[:, :plane.width] = np.asarray(f[i])
            vf.pts, vf.time_base = n, tb
            box.mux(s.encode(vf))
        box.mux(s.encode(None))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=200, help="frames of the composite (0: all 570)")
    ap.add_argument("--runs", type=int, default=3, help="runs per encoder, alternating")
    ap.add_argument("--ffmpeg", nargs="*", default=[FFMPEG], help="binaries for the pipe (default: the wheel's)")
    args = ap.parse_args()
    if not (BG.exists() and FG.exists()):
        raise SystemExit("run benchmarks/render.py first (it builds the pair)")
    encoders = [("pyav", None), *((f"pipe {Path(b).name}", b) for b in args.ffmpeg)]
    wall: dict[str, list[float]] = {e: [] for e, _ in encoders}
    cpus: dict[str, list[float]] = {e: [] for e, _ in encoders}
    md5: dict[str, str] = {}
    for _ in range(args.runs):
        for name, binary in encoders:
            clip = composite(args.frames)
            out = FOLDER / f"backend-{len(md5)}.mp4"
            t0, c0 = time.perf_counter(), cpu()
            by_pyav(clip, out) if binary is None else by_pipe(clip, binary, out)
            wall[name].append(time.perf_counter() - t0)
            cpus[name].append(cpu() - c0)
            # the video stream's packets: the containers' headers name their muxers
            with av.open(str(out)) as c:
                md5[name] = hashlib.md5(b"".join(bytes(p) for p in c.demux(video=0))).hexdigest()
            out.unlink()
            print(f"{name}: {wall[name][-1]:.1f} s wall, {cpus[name][-1]:.1f} s CPU", flush=True)
    ref = encoders[1][0]
    print(f"\n{args.frames or 'all'} frames of the 1080p60 composite, x264 crf {CRF} preset {PRESET}, "
          f"{args.runs} runs each\n")
    print(f"{'encoder':60} {'min wall':>9} {'median CPU':>10} {'CPU /pipe':>9}  video md5")
    for name, _ in encoders:
        print(f"{name[:60]:60} {min(wall[name]):9.1f} {statistics.median(cpus[name]):10.1f} "
              f"{statistics.median(cpus[name]) / statistics.median(cpus[ref]):9.3f}  {md5[name]}")


if __name__ == "__main__":
    main()
