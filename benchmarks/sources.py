"""Source-plugin benchmark: BestSource (``bs.VideoSource``) against L-SMASH Works
(``lsmas.LWLibavSource``) on real footage with B-frames.

Clips (made once from the sample footage, kept in ``.cache/bench``):

- ``bbb1080-open``: Big Buck Bunny looped to 264 frames (10.6 s at 25 fps), upscaled to
  1920x1080, x264 ``-bf 3``, open GOP, keyint 50 (preset veryfast);
- ``bbb1080-default``: the same picture with x264's defaults (preset medium, keyint 250,
  3 B-frames, b-pyramid, closed GOP);
- ``bikes``: ``bikes.mp4`` as it is (640x272, H.264 High with B-frames).

Per clip and plugin, all in one run so the ratios share the machine's load:

- first open (index build into an empty temp cache dir) and its ratio to a plain
  ``ffmpeg -f null`` decode of the same file (best of two, taken around the opens), in
  wall time and in CPU time (ours in-process, ffmpeg's as a child: steadier on a busy
  machine);
- second open (index read back from the cache);
- a linear read of every frame (``clip.frames()``, md5 of each), its time over the same
  work done by ffmpeg (raw decode piped to this process, md5 of each);
- exactness: md5 of each frame's planes against a linear ``ffmpeg -f rawvideo -pix_fmt
  yuv420p`` decode, for the linear read and for frames fetched in a random order from a
  fresh instance. The random order puts the frames around every keyframe (where open GOP
  leading pictures and B-frame reordering bite) first, then the rest shuffled; it stops
  after ``--random-budget`` seconds per plugin and clip (1080p random access costs a
  decode from the previous keyframe per fetch) and says how many frames it checked.

    .venv/bin/python benchmarks/sources.py [--random-budget 20]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import vapoursynth as vs

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from ff import FFMPEG, packets  # noqa: E402
from footage import footage  # noqa: E402

CACHE = ROOT / ".cache" / "bench"
core = vs.core


# -- clips --------------------------------------------------------------------------------
def bbb1080(kind: str) -> Path:
    """Big Buck Bunny, 264 frames at 1920x1080 25 fps; ``kind`` is ``open`` or ``default``."""
    out = CACHE / f"bbb1080-{kind}.mp4"
    if out.exists():
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    enc = {
        "open": ["-preset", "veryfast", "-bf", "3", "-x264-params", "open-gop=1:keyint=50"],
        "default": [],
    }[kind]
    tmp = out.with_suffix(".part.mp4")
    subprocess.run([FFMPEG, "-v", "error", "-y", "-stream_loop", "1", "-i", str(footage("bigbuckbunny.mp4")),
                    "-an", "-vf", "scale=1920:1080:flags=bicubic,setsar=1", "-c:v", "libx264", *enc,
                    "-pix_fmt", "yuv420p", str(tmp)], check=True)
    tmp.rename(out)
    return out


# -- helpers ------------------------------------------------------------------------------
@contextlib.contextmanager
def quiet_stderr():
    """LWLibav prints "Creating lwi index file NN%" to fd 2; silence it."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def ffmpeg_null(path: Path) -> tuple[float, float]:
    """(wall s, CPU s) of a plain decode."""
    t, c = time.perf_counter(), _children_cpu()
    subprocess.run([FFMPEG, "-v", "error", "-i", str(path), "-map", "0:v:0", "-f", "null", "-"], check=True)
    return time.perf_counter() - t, _children_cpu() - c


def ffmpeg_md5s(path: Path, w: int, h: int) -> list[str]:
    """md5 of each frame of a linear ffmpeg decode to yuv420p, in display order."""
    size = w * h + 2 * ((w + 1) // 2) * ((h + 1) // 2)
    p = subprocess.Popen([FFMPEG, "-v", "error", "-i", str(path), "-map", "0:v:0", "-fps_mode", "passthrough",
                          "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"], stdout=subprocess.PIPE)
    out = []
    assert p.stdout is not None
    while True:
        buf = p.stdout.read(size)
        if len(buf) < size:
            break
        out.append(hashlib.md5(buf).hexdigest())
    p.wait()
    return out


def frame_md5(f: vs.VideoFrame) -> str:
    h = hashlib.md5()
    for i in range(f.format.num_planes):
        h.update(np.ascontiguousarray(np.asarray(f[i])).data)
    return h.hexdigest()


def keyframes(path: Path) -> list[int]:
    """Display indices of keyframes, from packet flags (demux only)."""
    ordered = sorted((pts, key) for pts, key in packets(path) if pts is not None)
    return [i for i, (_, k) in enumerate(ordered) if k]


def random_order(n: int, keys: list[int], seed: int = 1) -> list[int]:
    rng = random.Random(seed)
    near = sorted({j for k in keys for j in range(k - 4, k + 5) if 0 <= j < n})
    rest = [j for j in range(n) if j not in set(near)]
    rng.shuffle(near)
    rng.shuffle(rest)
    return near + rest


def open_plugin(name: str, path: Path, cache: Path) -> vs.VideoNode:
    if name == "bs":
        return core.bs.VideoSource(str(path), cachemode=4, cachepath=str(cache / "bs"), showprogress=0)
    with quiet_stderr():
        return core.lsmas.LWLibavSource(str(path), cachefile=str(cache / "index.lwi"), ff_loglevel=-8)


def timed_open(name: str, path: Path, cache: Path) -> tuple[tuple[float, float], vs.VideoNode]:
    """((wall s, CPU s of this process), clip)."""
    t, c = time.perf_counter(), time.process_time()
    clip = open_plugin(name, path, cache)
    return (time.perf_counter() - t, time.process_time() - c), clip


# -- benchmark ----------------------------------------------------------------------------
def bench_clip(label: str, path: Path, budget: float, rows: list[dict]) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="sources-", dir=CACHE))
    try:
        plugins = ("lsmas", "bs")
        caches = {p: tmp / p for p in plugins}
        for c in caches.values():
            c.mkdir()
        null = [ffmpeg_null(path)]
        first = {}
        for p in plugins:
            first[p], clip = timed_open(p, path, caches[p])
            del clip
            gc.collect()
        null.append(ffmpeg_null(path))
        t_null = min(w for w, _ in null)
        c_null = min(c for _, c in null)
        second = {}
        clips = {}
        for p in plugins:
            second[p], clips[p] = timed_open(p, path, caches[p])
        w, h = clips["lsmas"].width, clips["lsmas"].height
        t = time.perf_counter()
        ref = ffmpeg_md5s(path, w, h)
        t_raw = time.perf_counter() - t
        keys = keyframes(path)
        info = {"clip": label, "frames": len(ref), "size": f"{w}x{h}", "null": t_null, "null_cpu": c_null, "raw": t_raw,
                "keys": len(keys)}
        for p in plugins:
            clip = clips[p]
            assert clip.format.id == vs.YUV420P8, clip.format
            # linear read, every frame
            t = time.perf_counter()
            lin = [frame_md5(f) for f in clip.frames()]
            t_lin = time.perf_counter() - t
            lin_bad = sum(a != b for a, b in zip(lin, ref)) + abs(len(lin) - len(ref))
            del clip, clips[p]
            gc.collect()
            # random order, fresh instance (its own index already on disk)
            _, clip = timed_open(p, path, caches[p])
            order = random_order(clip.num_frames, keys)
            bad = done = 0
            t = time.perf_counter()
            for n in order:
                got = frame_md5(clip.get_frame(n))
                bad += n >= len(ref) or got != ref[n]
                done += 1
                if time.perf_counter() - t > budget:
                    break
            t_rnd = time.perf_counter() - t
            del clip
            gc.collect()
            rows.append({"clip": label, "plugin": p, "first": first[p][0], "first_x": first[p][0] / t_null,
                         "first_cx": first[p][1] / c_null, "second": second[p][0],
                         "frames": f"{len(lin)}/{len(ref)}", "lin": t_lin,
                         "lin_x": t_lin / t_raw, "lin_bad": lin_bad, "rnd_done": done, "rnd_total": len(lin),
                         "rnd_bad": bad, "rnd_fps": done / t_rnd})
        return info
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--random-budget", type=float, default=20.0,
                    help="seconds of random-order fetching per plugin and clip (default 20)")
    args = ap.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    clips = [("bbb1080-open", bbb1080("open")), ("bbb1080-default", bbb1080("default")),
             ("bikes", footage("bikes.mp4"))]
    print(f"clips ready in {time.perf_counter() - t0:.1f} s; {core} ", flush=True)
    rows: list[dict] = []
    infos = []
    for label, path in clips:
        infos.append(bench_clip(label, path, args.random_budget, rows))
        print(f"  {label} done ({time.perf_counter() - t0:.0f} s)", flush=True)

    from rich.console import Console
    from rich.table import Table

    con = Console(width=240)
    ti = Table(title="Clips (ffmpeg decode = `ffmpeg -f null`, best of two in this run)")
    for c in ("clip", "size", "frames", "keyframes", "ffmpeg decode s", "ffmpeg decode CPU s", "ffmpeg raw+md5 s"):
        ti.add_column(c, justify="right")
    for i in infos:
        ti.add_row(i["clip"], i["size"], str(i["frames"]), str(i["keys"]), f"{i['null']:.2f}", f"{i['null_cpu']:.2f}",
                   f"{i['raw']:.2f}")
    con.print(ti)
    tb = Table(title="Source plugins: open, linear read and random-access exactness vs a linear ffmpeg decode")
    for c in ("clip", "plugin", "1st open s", "1st open / ffmpeg", "same, CPU", "2nd open s", "frames vs ffmpeg",
              "linear read+md5 s", "/ ffmpeg raw+md5", "linear mismatches", "random checked", "random mismatches",
              "random fps"):
        tb.add_column(c, justify="right")
    for r in rows:
        tb.add_row(r["clip"], r["plugin"], f"{r['first']:.3f}", f"{r['first_x']:.2f}x", f"{r['first_cx']:.2f}x",
                   f"{r['second']:.3f}",
                   r["frames"], f"{r['lin']:.2f}", f"{r['lin_x']:.2f}x", str(r["lin_bad"]),
                   f"{r['rnd_done']}/{r['rnd_total']}", str(r["rnd_bad"]), f"{r['rnd_fps']:.1f}")
    con.print(tb)
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
