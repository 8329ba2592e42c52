"""Analysis reads, before and after they moved in-process: the ffmpeg/ffprobe processes the
prepass used to start against the PyAV reads that replaced them (``vidkompy_vs.decode``),
on the same files in one run, interleaved, best of ``--rounds``.

Clips (made once with ffmpeg from the sample footage, kept in ``.cache/bench-analysis``):
BG is Big Buck Bunny looped to 528 frames (21 s at 25 fps) at 1920x1080 with its sound
(x264 veryfast, 3 B-frames, keyint 250, AAC); FG is BG's 1280x720 crop at (320, 180)
from 2 s on, 15 s long, with its sound.

Passes, as ``align`` runs them:

- ``probe``: the facts about both files (ffprobe's JSON and its packet flags before; one
  demux-level open after);
- ``FG pass``: every FG frame at 64x36 grey plus 9 full-size grabs;
- ``BG pass``: every BG frame cropped to FG's footprint at 64x36, plus 30 grabs;
- ``window nokey`` / ``window bidir``: BG's window around FG's middle at 480x270 (only
  keyframes over 300 frames; reference frames over 100 frames, as the footprint scan);
- ``audio``: both tracks as mono float at 8 kHz.

"before" runs the exact commands the old code built (``ffmpeg`` 5.1 from PATH; with none
there, the same commands through the package's ffmpeg, the wheel's, and no probe), "after"
the package's own functions; the ratio is after / before, in wall time and in CPU time
(ffmpeg's as children of this process). The last columns check the results agree: grabs
must be equal; planes differ by the scaler version (max |diff|). ``after md5``: a digest of
the after side's result, the same whether or not an ffmpeg is on PATH. A window read before
could stop short of its last frame (``-t`` counted from the keyframe the seek landed on,
not from the window's start): then after reads more frames, all of before's among them.

    .venv/bin/python benchmarks/analysis.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from ff import FFMPEG  # noqa: E402
from footage import footage  # noqa: E402

from vidkompy_vs import decode  # noqa: E402
from vidkompy_vs import fingerprint as fpm  # noqa: E402
from vidkompy_vs.sources import probe  # noqa: E402

CACHE = ROOT / ".cache" / "bench-analysis"
FG_CROP = (320, 180, 1280, 720)  # x, y, w, h of FG in BG
FG_START = 50  # BG frame of FG's first
SIZE = (64, 36)
MID = (480, 270)


def _ff(*args: str) -> None:
    subprocess.run([FFMPEG, "-v", "error", "-y", *args], check=True)


def clips() -> tuple[Path, Path]:
    CACHE.mkdir(parents=True, exist_ok=True)
    bg, fg = CACHE / "bg1080.mp4", CACHE / "fg720.mp4"
    if not bg.exists():
        tmp = bg.with_suffix(".part.mp4")
        # setpts: frames back to back at 25 fps (ffmpeg 9's -stream_loop leaves a one-frame gap
        # in the timestamps at each loop of a file with sound: a VFR BG, and a VFR FG cut from it)
        _ff("-stream_loop", "3", "-i", str(footage("bigbuckbunny.mp4")), "-vf",
            "scale=1920:1080:flags=bicubic,setsar=1,setpts=N/25/TB", "-c:v", "libx264", "-preset", "veryfast",
            "-bf", "3",
            "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", str(tmp))
        tmp.rename(bg)
    if not fg.exists():
        tmp = fg.with_suffix(".part.mp4")
        x, y, w, h = FG_CROP
        _ff("-ss", str(FG_START / 25), "-i", str(bg), "-t", "15", "-vf", f"crop={w}:{h}:{x}:{y}", "-c:v", "libx264",
            "-preset", "veryfast", "-bf", "3", "-c:a", "aac", "-b:a", "128k", str(tmp))
        tmp.rename(fg)
    return bg, fg


# -- before: the commands the prepass ran until it read in-process ----------------------------
# the old code ran the ffmpeg on PATH; with none there, the package's (the wheel's) runs
# the same commands, so the results can still be compared (ffprobe has no stand-in)
OLD_FFMPEG = shutil.which("ffmpeg") or FFMPEG
HEAD = [OLD_FFMPEG, "-nostdin", "-v", "error", "-noautorotate"]


def old_probe(path: Path) -> tuple[dict, int]:
    info = json.loads(subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_streams",
                                      "-show_format", str(path)], capture_output=True, text=True).stdout)
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-read_intervals", "%+#20",
                          "-show_entries", "packet=flags", "-of", "csv=p=0", str(path)], capture_output=True,
                         text=True).stdout
    return info, sum("D" in ln for ln in out.splitlines())


def _read(stream, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        k = stream.read(n - len(buf))
        if not k:
            return None
        buf += k
    return bytes(buf)


def old_pass(path: Path, crop: tuple[int, int, int, int] | None, frames: int, grab: list[int],
             wh: tuple[int, int]) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """The fingerprint pass's ffmpeg: planes on stdout, the grabs on a second pipe (a select
    of runs, each one frame longer so that ffmpeg lets its last picture out)."""
    w, h = SIZE
    vf = [f"crop={crop[2]}:{crop[3]}:{crop[0]}:{crop[1]}:exact=1"] if crop else []
    vf.append(f"scale={w}:{h}:flags=area,format=gray")
    runs: list[tuple[int, int]] = []
    for i in sorted(grab):
        if runs and i == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    runs = [(a, min(b + 1, frames - 1)) for a, b in runs]
    sel = "+".join(f"eq(n,{a})" if a == b else f"between(n,{a},{b})" for a, b in runs)
    order = [i for a, b in runs for i in range(a, b + 1)]
    rfd, wfd = os.pipe()
    graph = f"[0:v:0]split=2[fp][gb];[fp]{','.join(vf)}[o1];[gb]select='{sel}',extractplanes=y[o2]"
    cmd = [*HEAD, "-i", str(path), "-filter_complex", graph,
           "-map", "[o1]", "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "gray", "pipe:1",
           "-map", "[o2]", "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "gray", f"pipe:{wfd}"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0, pass_fds=(wfd,))
    os.close(wfd)
    got: dict[int, np.ndarray] = {}
    keep = set(grab)

    def grabs() -> None:
        with os.fdopen(rfd, "rb", buffering=0) as s:
            for i in order:
                b = _read(s, wh[0] * wh[1])
                if b is None:
                    break
                if i in keep:
                    got[i] = np.frombuffer(b, np.uint8).reshape(wh[1], wh[0])
            while s.read(1 << 16):
                pass

    t = threading.Thread(target=grabs)
    t.start()
    raw = p.stdout.read()
    p.wait()
    t.join()
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w), got


_PTS = re.compile(rb"Parsed_showinfo.*? n: *\d+ .*?pts_time:(-?[0-9.e+-]+)")


def old_window(path: Path, lo: int, hi: int, fps: float, skip: str, every: int) -> dict[int, np.ndarray]:
    t0 = max(0.0, (lo + 0.25) / fps)
    vf = ["select='not(mod(n," + str(every) + "))'" if every > 1 else "null",
          f"scale={MID[0]}:{MID[1]}:flags=area,format=gray", "showinfo"]
    cmd = [OLD_FFMPEG, "-nostdin", "-v", "info", "-noautorotate", "-nostats", "-skip_frame", skip, "-noaccurate_seek",
           "-ss", f"{t0:.6f}", "-t", f"{(hi + 1 - lo) / fps + 1.0:.6f}", "-copyts", "-i", str(path),
           "-map", "0:v:0", "-an", "-sn", "-dn", "-fps_mode", "passthrough", "-vf", ",".join(vf),
           "-f", "rawvideo", "-pix_fmt", "gray", "-"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    times: list[float] = []
    t = threading.Thread(target=lambda: times.extend(float(m.group(1)) for m in map(_PTS.search, p.stderr) if m))
    t.start()
    raw = p.stdout.read()
    p.wait()
    t.join()
    fs = MID[0] * MID[1]
    out = {}
    for k, ts in enumerate(times):
        n = int(round(ts * fps))
        if lo <= n <= hi and (k + 1) * fs <= len(raw):
            out[n] = np.frombuffer(raw[k * fs:(k + 1) * fs], np.uint8).reshape(MID[1], MID[0])
    return out


def old_audio(path: Path) -> np.ndarray:
    out = subprocess.run([OLD_FFMPEG, "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0", "-vn", "-sn", "-dn",
                          "-ac", "1", "-ar", "8000", "-f", "f32le", "-acodec", "pcm_f32le", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(out, np.float32)


# -- after: the package ---------------------------------------------------------------------
def new_pass(path: Path, crop, frames: int, grab: list[int], wh: tuple[int, int]):
    g = fpm.Grab(grab, wh[0], wh[1], "yuv420p")
    f = fpm.fingerprints(path, frames=frames, fps=25.0, crop=crop, size=SIZE, cache=False, grab=g)
    return f.planes, f.frames


def new_probe(path: Path) -> tuple[decode.Tracks, int]:
    decode._tracks.cache_clear()  # (the first look at a file, not a remembered one)
    return decode.tracks(path), decode.discarded_packets(path, 20)


def _version(exe: str) -> str:
    out = subprocess.run([exe, "-version"], capture_output=True, text=True).stdout.split()
    return " ".join(out[:3]) if out else "?"


def digest(obj) -> str:
    """md5 of a pass's result (arrays by shape and bytes, dicts by sorted key), 12 hex digits:
    the "after" column must be the same with and without an ffmpeg on PATH."""
    h = hashlib.md5()

    def feed(o) -> None:
        if isinstance(o, np.ndarray):
            h.update(repr((o.dtype.str, o.shape)).encode())
            h.update(np.ascontiguousarray(o).tobytes())
        elif isinstance(o, dict):
            for k in sorted(o):
                h.update(repr(k).encode())
                feed(o[k])
        elif isinstance(o, (list, tuple)):
            h.update(f"[{len(o)}".encode())
            for x in o:
                feed(x)
        else:
            h.update(repr(o).encode())

    feed(obj)
    return h.hexdigest()[:12]


# -- timing ---------------------------------------------------------------------------------
def _cpu() -> float:
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def timed(fn, *args):
    c, t = _cpu(), time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t, _cpu() - c, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    bg, fg = clips()
    bp, fp = probe(bg), probe(fg)
    have_probe = shutil.which("ffprobe") is not None
    x, y, w, h = FG_CROP
    fg_grab = [int(round(q)) for q in np.linspace(0, fp.frames - 1, 9)]
    bg_grab = sorted({FG_START + i + d for i in fg_grab for d in (-1, 0, 1) if 0 <= FG_START + i + d < bp.frames})[:30]
    mid = FG_START + fp.frames // 2
    passes = {
        "probe": (lambda: [old_probe(bg), old_probe(fg)], lambda: [new_probe(bg), new_probe(fg)]),
        "FG pass": (lambda: old_pass(fg, None, fp.frames, fg_grab, (fp.width, fp.height)),
                    lambda: new_pass(fg, None, fp.frames, fg_grab, (fp.width, fp.height))),
        "BG pass": (lambda: old_pass(bg, (x, y, w, h), bp.frames, bg_grab, (bp.width, bp.height)),
                    lambda: new_pass(bg, (x, y, w, h), bp.frames, bg_grab, (bp.width, bp.height))),
        "window nokey": (lambda: old_window(bg, mid - 150, mid + 150, 25.0, "nokey", 1),
                         lambda: decode.window(bg, mid - 150, mid + 150, 25.0, 0.0, MID, src_size=(1920, 1080),
                                               skip="NONKEY")),
        "window bidir": (lambda: old_window(bg, mid - 50, mid + 50, 25.0, "bidir", 1),
                         lambda: decode.window(bg, mid - 50, mid + 50, 25.0, 0.0, MID, src_size=(1920, 1080))),
        "audio": (lambda: [old_audio(bg), old_audio(fg)], lambda: [decode.audio(bg, 8000), decode.audio(fg, 8000)]),
    }
    best: dict[tuple[str, str], tuple[float, float]] = {}
    outs: dict[tuple[str, str], object] = {}
    print(f"BG {bp.width}x{bp.height} {bp.frames} frames, FG {fp.width}x{fp.height} {fp.frames} frames; "
          f"{args.rounds} rounds; before: {OLD_FFMPEG} ({_version(OLD_FFMPEG)})"
          f"{'' if have_probe else ', no ffprobe on PATH: probe after only'}", flush=True)
    for r in range(args.rounds):
        for name, (old, new) in passes.items():
            for side, fn in (("before", old), ("after", new)):
                if side == "before" and name == "probe" and not have_probe:
                    continue
                wall, cpu, out = timed(fn)
                k = (name, side)
                best[k] = (min(wall, best.get(k, (wall, cpu))[0]), min(cpu, best.get(k, (wall, cpu))[1]))
                outs[k] = out
        print(f"  round {r + 1} done", flush=True)

    def agree(name: str) -> str:
        if (name, "before") not in outs:
            return "-"
        a, b = outs[(name, "before")], outs[(name, "after")]
        if name.startswith("window"):
            rel = "same" if sorted(a) == sorted(b) else "after has all of before's" if set(a) <= set(b) else "DIFFER"
            d = max((int(np.abs(a[k].astype(int) - b[k].astype(int)).max()) for k in a if k in b), default=0)
            return f"frames {len(a)} / {len(b)} ({rel}), planes max|d| {d}"
        if name.endswith("pass"):
            pa, ga = a
            pb, gb = b
            d = int(np.abs(pa.astype(int) - pb.astype(int)).max()) if pa.shape == pb.shape else -1
            eq = sorted(ga) == sorted(gb) and all(np.array_equal(ga[i], gb[i]) for i in ga)
            return f"planes max|d| {d}, grabs {'equal' if eq else 'DIFFER'} ({len(gb)})"
        if name == "audio":
            return ", ".join(f"{len(x)} vs {len(y)} samples, max|d| {np.abs(x[:len(y)] - y[:len(x)]).max():.4f}"
                             for x, y in zip(a, b))
        return "-"

    print(f"\n{'pass':<14} {'before s':>9} {'after s':>8} {'ratio':>6} {'CPU before':>11} {'CPU after':>10} "
          f"{'ratio':>6} {'after md5':>12}  results")
    tb = ta = cb = ca = 0.0
    for name in passes:
        a = best[(name, "after")]
        b = best.get((name, "before"))
        ta, ca = ta + a[0], ca + a[1]
        if b is None:
            print(f"{name:<14} {'-':>9} {a[0]:8.2f} {'-':>6} {'-':>11} {a[1]:10.2f} {'-':>6} "
                  f"{digest(outs[(name, 'after')]):>12}")
            continue
        tb, cb = tb + b[0], cb + b[1]
        print(f"{name:<14} {b[0]:9.2f} {a[0]:8.2f} {a[0] / b[0]:5.2f}x {b[1]:11.2f} {a[1]:10.2f} {a[1] / b[1]:5.2f}x "
              f"{digest(outs[(name, 'after')]):>12}  {agree(name)}")
    if tb:
        print(f"{'all':<14} {tb:9.2f} {ta:8.2f} {ta / tb:5.2f}x {cb:11.2f} {ca:10.2f} {ca / cb:5.2f}x")


if __name__ == "__main__":
    main()
