"""Robustness sweep: the aligner on inputs shaped like the footage users bring.

One plain baseline pair and, per case, one thing changed from it: container/codec
(WebM/VP9+Opus, HEVC/mkv, MPEG-2/TS, ProRes/mov, MJPEG/avi), bit depth (10-bit),
range (yuvj420p), letterboxed BG, colour grading, scale, audio rate/layout, FG running
past BG's end, odd sizes, SAR/anamorphic and rotation flags, a stream-copy trim with an
edit list, audio starting later than video, and a variable frame rate.

Truth is exact by construction. A master sequence (Big Buck Bunny then bikes, 640x360,
25 fps, 382 distinct frames; synthetic speech-like stereo audio at 48 kHz, lossless) is
cut frame-exactly (``trim=start_frame/end_frame``, ``atrim`` by sample): BG is master
frames ``[60, 240)`` (7.2 s), FG is master frames ``[97, 207)`` (4.4 s, 37 frames =
1.48 s later) cropped to 448x252 at (97, 53) of the BG picture. So FG frame ``i``'s
true BG frame is ``37 + i`` and FG's true top-left is (97, 53) at scale 1, unless the
case says otherwise. A frame counts as correct when the map gives the true BG frame
or one whose decoded picture is identical (ffmpeg framemd5) to it. Where the aligner
sees FG differently from a player (an edit list's hidden frames shown as repeats, VFR
read at another constant rate) the truth follows what it sees: the master frame the
picture shows, or any master frame whose time slot overlaps the FG frame's (see
``editlist_pics``/``vfr_pics``); the ``fgN`` column gives frames seen / frames a
player shows (or, for VFR, the nominal-rate count). Clips are cached under
``.cache/robustness``.

Each case runs ``vidkompy_vs.align.align`` in a fresh subprocess with a cold
``VIDKOMPY_VS_CACHE``; any exception is caught and reported. The table gives: exit
status or exception (first line), exact-match % of covered FG frames, max frame error,
spatial error (x, y in BG px, and scale where the case scales FG), uncovered frames
found/true, wall time of ``align()``, and the notes/warnings it printed. Then the CLI
``comp`` renders four cases (baseline, webm BG, 10-bit FG, edit-list FG) and the
output is checked for the frame count and duration a player shows for FG (ffprobe
``-count_frames``; ``--no-comp`` skips it). About 2.5 minutes in all on 2 cores.
``--hide-ffmpeg``: the align processes get a PATH without ``ffmpeg`` and ``ffprobe``
(building the cases, the truth and ``comp`` use the package's ffmpeg, ``ff.FFMPEG``,
and PyAV, so the whole run also works under ``scripts/without-ffmpeg.sh``).
``--nodes``: every case a second time with its files opened as VapourSynth nodes
(``sources.open_video``, sound through ``open_audio``) and ``align(bg_node, fg_node)``;
a second table compares map and placement with the file path's.

    .venv/bin/python benchmarks/robustness.py [--cases a,b] [--no-comp] [--comp-cases a,b] [--list] [--hide-ffmpeg]
                                              [--nodes]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from ff import FFMPEG, count_frames, streams  # noqa: E402
from footage import footage, path_without_ffmpeg  # noqa: E402
from temporal import score  # noqa: E402  (exact fraction, max frame error)

CACHE = ROOT / ".cache" / "robustness"
GEN_VERSION = 2
W, H, FPS, AR = 640, 360, 25, 48000
BG0, BGN = 60, 180  # BG: master frames [60, 240)
FG0, FGN = 97, 110  # FG: master frames [97, 207)
CROP = (448, 252, 97, 53)  # w, h, x, y of FG in the BG picture
X264 = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "16", "-pix_fmt", "yuv420p"]
AAC = ["-c:a", "aac", "-b:a", "128k"]
CASE_TIMEOUT = 240


# -- master ------------------------------------------------------------------------------
def _ff(*args: str) -> None:
    subprocess.run([FFMPEG, "-hide_banner", "-nostdin", "-v", "error", "-y", *args], check=True)


def master() -> tuple[Path, Path, int]:
    """(master video, master audio, frames): bbb (132) then bikes (250), 640x360 25 fps, lossless."""
    CACHE.mkdir(parents=True, exist_ok=True)
    vid, wav = CACHE / f"master{GEN_VERSION}.mkv", CACHE / f"master{GEN_VERSION}.wav"
    if not vid.exists():
        tmp = vid.with_suffix(".tmp.mkv")
        graph = (f"[0:v]scale={W}:{H}:flags=bicubic,setsar=1,fps={FPS}[a];"
                 f"[1:v]scale=-2:{H}:flags=bicubic,crop={W}:{H},setsar=1,fps={FPS}[b];"
                 f"[a][b]concat=n=2:v=1:a=0,setpts=N/{FPS}/TB,format=yuv420p[v]")
        _ff("-i", str(footage("bigbuckbunny.mp4")), "-i", str(footage("bikes.mp4")), "-filter_complex", graph,
            "-map", "[v]", "-c:v", "ffv1", "-g", "1", str(tmp))
        tmp.rename(vid)
    n = _count(vid)
    if not wav.exists():
        # speech-like: noise bursts with a gliding tone, left and right not identical
        rng = np.random.default_rng(11)
        total = int((n / FPS + 2) * AR)
        env = np.repeat(rng.uniform(0.03, 1.0, total // 2400 + 1).astype(np.float32), 2400)[:total]
        t = np.arange(total) / AR
        tone = 0.3 * np.sin(2 * np.pi * (300 + 200 * np.sin(2 * np.pi * 0.3 * t)) * t)
        left = 0.25 * rng.standard_normal(total) * env + tone * env
        right = 0.8 * left + 0.05 * rng.standard_normal(total)
        a = np.clip(np.stack([left, right], 1), -1, 1).astype(np.float32)
        tmp = wav.with_suffix(".tmp.wav")
        subprocess.run([FFMPEG, "-v", "error", "-y", "-f", "f32le", "-ar", str(AR), "-ac", "2", "-i", "-",
                        "-c:a", "pcm_s16le", str(tmp)], input=a.tobytes(), check=True)
        tmp.rename(wav)
    return vid, wav, n


def _count(path: Path) -> int:
    """Frames ffmpeg decodes (what a player shows: edit lists applied)."""
    return count_frames(path)


# -- cases -------------------------------------------------------------------------------
@dataclass
class Side:
    """How one input is cut from the master and encoded."""

    start: int
    n: int
    ext: str = "mp4"
    vf: str = ""  # after the frame-exact cut (crop, grading, padding ...)
    venc: list[str] = field(default_factory=lambda: list(X264))
    aenc: list[str] | None = field(default_factory=lambda: list(AAC))  # None: no audio
    af: str = ""  # after the sample-exact cut
    audio_lead_s: float = 0.0  # audio stream starts this late (content shifted to stay in sync)
    out: list[str] = field(default_factory=list)  # extra output options
    drop: tuple[int, ...] = ()  # VFR: these frames left out (timestamps kept), the rest jittered +-4 ms
    post: list[str] | None = None  # a second ffmpeg pass: these input options, then stream copy
    post_meta: list[str] = field(default_factory=list)  # output options of the copy pass

    def key(self) -> str:
        return hashlib.sha1(repr((GEN_VERSION, self.start, self.n, self.ext, self.vf, self.venc, self.aenc, self.af,
                                  self.audio_lead_s, self.out, self.drop, self.post,
                                  self.post_meta)).encode()).hexdigest()[:10]


def exact_crop(w: int, h: int, x: int, y: int) -> str:
    """A crop at odd x/y: ffmpeg's crop rounds x/y down to the chroma grid on 4:2:0 (it
    would land at (96, 52)); cropping a 4:4:4 picture is exact, the encoder subsamples."""
    return f"format=yuv444p,crop={w}:{h}:{x}:{y}"


def fg_side(**kw) -> Side:
    cw, ch, cx, cy = CROP
    vf = kw.pop("vf", "")
    return Side(FG0, kw.pop("n", FGN), vf=",".join(v for v in (exact_crop(cw, ch, cx, cy), vf) if v), **kw)


def bg_side(**kw) -> Side:
    return Side(BG0, kw.pop("n", BGN), **kw)


@dataclass
class Case:
    name: str
    what: str
    bg: Side = field(default_factory=bg_side)
    fg: Side = field(default_factory=fg_side)
    x: float = CROP[2]
    y: float = CROP[3]
    scale: float | None = None  # true scale, reported when set
    # master frames each FG frame may show, given how many FG frames the aligner saw
    # (default: FG frame i shows master frame fg.start + i)
    # and at what frame rate
    pics: Callable[[int, float], list[set[int]]] | None = None
    expect_frames: int | None = None  # FG frames a player shows (default fg.n)

    def master_sets(self, n_seen: int, fps_seen: float) -> list[set[int]]:
        if self.pics is not None:
            return self.pics(n_seen, fps_seen)
        return [{self.fg.start + i} for i in range(n_seen)]


EL_HIDDEN = 13  # frames an edit list hides after a stream-copy trim at 0.52 s
VFR_DROP = (20, 47, 80)


def editlist_pics(n: int, fps: float) -> list[set[int]]:
    """Players start at the 14th frame (97 frames). A reader that shows the hidden frames'
    time slots (110 frames) shows the first visible frame in each of them."""
    if n == FGN:
        return [{FG0 + max(i, EL_HIDDEN)} for i in range(n)]
    return [{FG0 + EL_HIDDEN + i} for i in range(n)]


def vfr_pics(n: int, fps: float) -> list[set[int]]:
    """FG read at ``fps``: frame k (time k/fps) is matched by any master frame whose
    25 fps slot overlaps it (one at 25 fps, one or two at other rates); a dropped frame's
    slot repeats a neighbour, so either neighbour is fine there too."""
    out = []
    for k in range(n):
        t = k / fps
        near = {i for i in range(int(t * FPS) - 2, int(t * FPS) + 3) if abs(i / FPS - t) < 0.5 / fps + 0.5 / FPS - 1e-9}
        near |= {i + d for i in near if i in VFR_DROP for d in (-1, 1)}
        out.append({FG0 + i for i in near})
    return out


GRADE = "eq=contrast=1.25:saturation=1.5:gamma=0.8:brightness=0.03"


def cases() -> list[Case]:
    cw, ch, cx, cy = CROP
    return [
        Case("baseline", "H.264/AAC mp4 both, 48 kHz stereo"),
        Case("bg_webm", "BG VP9+Opus in WebM",
             bg=bg_side(ext="webm", venc=["-c:v", "libvpx-vp9", "-b:v", "0", "-crf", "30", "-deadline", "realtime",
                                         "-cpu-used", "8", "-row-mt", "1", "-pix_fmt", "yuv420p"],
                        aenc=["-c:a", "libopus", "-b:a", "96k"])),
        Case("fg_noaudio", "FG without audio (visual path only)", fg=fg_side(aenc=None)),
        Case("fg_h264_mkv", "FG H.264 + AAC in mkv (ffmpeg: video start_time 0.021 s)", fg=fg_side(ext="mkv")),
        Case("fg_hevc_mkv", "FG HEVC (x265) + AAC in mkv",
             fg=fg_side(ext="mkv", venc=["-c:v", "libx265", "-preset", "ultrafast", "-crf", "20",
                                         "-pix_fmt", "yuv420p", "-x265-params", "log-level=error"])),
        Case("fg_10bit", "FG H.264 High10 yuv420p10le",
             fg=fg_side(venc=["-c:v", "libx264", "-preset", "veryfast", "-crf", "16", "-pix_fmt", "yuv420p10le",
                              "-profile:v", "high10"])),
        Case("fg_mpeg2_ts", "FG MPEG-2 + MP2 in MPEG-TS, start_time ~11.4 s",
             fg=fg_side(ext="ts", venc=["-c:v", "mpeg2video", "-q:v", "2", "-bf", "2", "-pix_fmt", "yuv420p"],
                        aenc=["-c:a", "mp2", "-b:a", "192k"], out=["-output_ts_offset", "10", "-f", "mpegts"])),
        Case("bg_letterbox", "BG padded to 640x480 (bars 60 px top/bottom); FG from the picture",
             bg=bg_side(vf="pad=640:480:0:60:black"), y=cy + 60),
        Case("fg_graded", f"FG colour-graded ({GRADE})", fg=fg_side(vf=GRADE)),
        Case("fg_scaled075", "FG 448x256 footprint scaled to 0.75 (336x192); true scale 1.3333",
             fg=Side(FG0, FGN, vf=exact_crop(448, 256, cx, cy) + ",scale=336:192:flags=bicubic"), scale=1 / 0.75),
        Case("audio_rates", "FG AAC 44.1 kHz stereo, BG AAC 48 kHz mono",
             bg=bg_side(af="pan=mono|c0=0.5*c0+0.5*c1"), fg=fg_side(af="aresample=44100")),
        Case("fg_past_bg_end", "BG ends 27 frames before FG does (BG master [60, 180))",
             bg=bg_side(n=120)),
        Case("fg_odd_444", "FG 447x251 (odd) yuv444p H.264",
             fg=Side(FG0, FGN, vf=exact_crop(447, 251, cx, cy),
                     venc=["-c:v", "libx264", "-preset", "veryfast", "-crf", "16", "-pix_fmt", "yuv444p"])),
        Case("fg_odd_420", "FG 447x251 (odd) yuv420p in FFV1/mkv (x264 refuses odd 4:2:0)",
             fg=Side(FG0, FGN, ext="mkv", vf=exact_crop(447, 251, cx, cy),
                     venc=["-c:v", "ffv1", "-pix_fmt", "yuv420p"])),
        Case("fg_sar_flag", "FG pixels unchanged, SAR flagged 4:3", fg=fg_side(vf="setsar=4/3")),
        Case("fg_anamorphic", "FG squeezed to 336x252 with SAR 4:3 (displays 448x252): true scale x 1.3333, y 1",
             fg=fg_side(vf="scale=336:252:flags=bicubic,setsar=4/3"), scale=1 / 0.75),
        Case("bg_prores_mov", "BG ProRes 422 HQ (yuv422p10le) + PCM in mov",
             bg=bg_side(ext="mov", venc=["-c:v", "prores_ks", "-profile:v", "3", "-pix_fmt", "yuv422p10le"],
                        aenc=["-c:a", "pcm_s16le"])),
        Case("bg_ffv1_mkv", "BG FFV1 + FLAC in mkv",
             bg=bg_side(ext="mkv", venc=["-c:v", "ffv1", "-pix_fmt", "yuv420p"], aenc=["-c:a", "flac"])),
        Case("fg_yuvj_mjpeg", "FG MJPEG yuvj420p (full range) + PCM in avi",
             fg=fg_side(ext="avi", venc=["-c:v", "mjpeg", "-q:v", "2", "-pix_fmt", "yuvj420p"],
                        aenc=["-c:a", "pcm_s16le"])),
        Case("fg_yuvj_h264", "FG H.264 yuvj420p (full range, phone-like)",
             fg=fg_side(venc=["-c:v", "libx264", "-preset", "veryfast", "-crf", "16", "-pix_fmt", "yuvj420p"])),
        Case("fg_editlist", "FG stream-copy trimmed at 0.52 s (mp4 edit list; 13 frames hidden)",
             fg=fg_side(venc=X264 + ["-g", "250", "-sc_threshold", "0"], post=["-ss", "0.52"]),
             pics=editlist_pics, expect_frames=FGN - EL_HIDDEN),
        Case("fg_audio_late", "FG audio stream starts 0.2 s after its video (in sync)",
             fg=fg_side(audio_lead_s=0.2)),
        Case("fg_vfr", "FG variable frame rate: 3 frames dropped, timestamps jittered +-4 ms (mp4)",
             fg=fg_side(drop=VFR_DROP), pics=vfr_pics),
        Case("fg_rotate", "FG flagged rotate=90 (stored picture unchanged)",
             fg=fg_side(post=[], post_meta=["-metadata:s:v:0", "rotate=90"])),
    ]


# -- building ----------------------------------------------------------------------------
def build_side(s: Side, vid: Path, wav: Path, role: str) -> Path:
    d = CACHE / "clips"
    d.mkdir(parents=True, exist_ok=True)
    dst = d / f"{role}-{s.key()}.{s.ext}"
    if dst.exists():
        return dst
    tmp = d / f"{role}-{s.key()}.tmp.{s.ext}"
    chain = [f"trim=start_frame={s.start}:end_frame={s.start + s.n}", "setpts=PTS-STARTPTS"]
    if s.drop:
        chain += [f"setpts=(N/{FPS}+(random(0)-0.5)*0.008)/TB",
                  "select='not(" + "+".join(f"eq(n,{i})" for i in s.drop) + ")'"]
    chain += [s.vf] if s.vf else []
    graph = f"[0:v]{','.join(chain)}[v]"
    maps = ["-map", "[v]"]
    if s.aenc is not None:
        a0 = int(round((s.start / FPS + s.audio_lead_s) * AR))
        a1 = int(round((s.start + s.n) / FPS * AR))
        apts = "asetpts=PTS-STARTPTS" + (f"+{s.audio_lead_s}/TB" if s.audio_lead_s else "")
        achain = [f"atrim=start_sample={a0}:end_sample={a1}", apts] + ([s.af] if s.af else [])
        graph += f";[1:a]{','.join(achain)}[a]"
        maps += ["-map", "[a]"]
    fpsm = ["-fps_mode", "passthrough", "-video_track_timescale", "1000"] if s.drop else ["-r", str(FPS)]
    first = tmp if s.post is None else d / f"{role}-{s.key()}.pre.{s.ext}"
    _ff("-i", str(vid), "-i", str(wav), "-filter_complex", graph, *maps, *s.venc, *fpsm,
        *(s.aenc or []), *s.out, str(first))
    if s.post is not None:
        _ff(*s.post, "-i", str(first), "-map", "0", "-c", "copy", *s.post_meta, str(tmp))
        first.unlink()
    tmp.rename(dst)
    return dst


def bg_md5(bg: Path) -> list[str]:
    out = subprocess.run([FFMPEG, "-v", "error", "-i", str(bg), "-map", "0:v:0", "-f", "framemd5", "-"],
                         capture_output=True, text=True, check=True).stdout
    return [ln.split(",")[-1].strip() for ln in out.splitlines() if ln and not ln.startswith("#")]


def truth_sets(c: Case, md5: list[str], fg_frames: int, fg_fps: float) -> list[set[int] | None]:
    """Per FG frame (as many as the aligner saw) the BG frames that count as correct
    (None: BG has none, the frame is uncovered)."""
    by_md5: dict[str, set[int]] = {}
    for j, h in enumerate(md5):
        by_md5.setdefault(h, set()).add(j)
    out: list[set[int] | None] = []
    nb = min(c.bg.n, len(md5))
    for ms in c.master_sets(fg_frames, fg_fps):
        js = {m - c.bg.start for m in ms if 0 <= m - c.bg.start < nb}
        if not js:
            out.append(None)
            continue
        for j in list(js):
            js |= by_md5.get(md5[j], set())
        out.append(js)
    return out


# -- running -----------------------------------------------------------------------------
RUNNER = r"""
import io, json, sys, time, traceback
out = {"error": None}
try:
    from rich.console import Console
    from vidkompy_vs.align import align
    buf = io.StringIO()
    con = Console(file=buf, width=240, force_terminal=False, highlight=False)
    t0 = time.perf_counter()
    try:
        if len(sys.argv) > 4 and sys.argv[4] == "nodes":
            # as a script would: each file opened as a node (its index built inside the
            # timed run, as the file path builds it), sound as AudioNodes where there is some
            from vidkompy_vs.sources import open_audio, open_video
            a = align(open_video(sys.argv[1]), open_video(sys.argv[2]), console=con,
                      bg_audio=open_audio(sys.argv[1]), fg_audio=open_audio(sys.argv[2]))
        else:
            a = align(sys.argv[1], sys.argv[2], console=con)
        out.update(seconds=time.perf_counter() - t0, map=a.temporal.frame_map, uncovered=a.temporal.uncovered,
                   tconf=a.temporal.confidence, tmethod=a.temporal.method, offset=a.temporal.offset_s,
                   rate=a.temporal.rate, x=a.spatial.x, y=a.spatial.y, scale=a.spatial.scale,
                   sconf=a.spatial.confidence, smethod=a.spatial.method, track=a.spatial.track is not None,
                   fg=[a.fg.width, a.fg.height, a.fg.frames, a.fg.fps_num, a.fg.fps_den],
                   bg=[a.bg.width, a.bg.height, a.bg.frames, a.bg.fps_num, a.bg.fps_den])
    except BaseException as e:
        out.update(seconds=time.perf_counter() - t0, error=f"{type(e).__name__}: {e}",
                   trace=traceback.format_exc())
    out["console"] = buf.getvalue()
except BaseException as e:
    out["error"] = f"{type(e).__name__}: {e}"
    out["trace"] = traceback.format_exc()
json.dump(out, open(sys.argv[3], "w"))
"""


def run_align(bg: Path, fg: Path, path: str | None = None, inputs: str = "files") -> dict:
    """``path``: the PATH the align process gets (``--hide-ffmpeg``); ``inputs``: ``files``
    (paths) or ``nodes`` (the files opened as VapourSynth nodes first, ``--nodes``)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, VIDKOMPY_VS_CACHE=str(Path(tmp) / "cache"))
        if path is not None:
            env["PATH"] = path
        res = Path(tmp) / "r.json"
        t0 = time.perf_counter()
        try:
            p = subprocess.run([sys.executable, "-c", RUNNER, str(bg), str(fg), str(res), inputs], env=env, cwd=ROOT,
                               capture_output=True, text=True, timeout=CASE_TIMEOUT)
        except subprocess.TimeoutExpired:
            return {"rc": "timeout", "error": f"timeout after {CASE_TIMEOUT} s", "seconds": CASE_TIMEOUT}
        r = json.loads(res.read_text()) if res.exists() else {}
        r["rc"] = p.returncode
        r.setdefault("seconds", time.perf_counter() - t0)
        if not res.exists():
            tail = (p.stderr or "").strip().splitlines()
            how = f"killed by {signal.Signals(-p.returncode).name}" if p.returncode < 0 else f"exit {p.returncode}"
            r["error"] = f"process {how}: {tail[-1] if tail else '(no message on stderr)'}"
        r["stderr"] = (p.stderr or "")[-2000:]
        return r


def first_line(s: str | None) -> str:
    return (s or "").strip().splitlines()[0] if (s or "").strip() else ""


def notes_of(console: str) -> list[str]:
    out, cur = [], None
    for ln in (console or "").splitlines():
        if ln.startswith(("note:", "warning:")):
            cur = ln.strip()
            out.append(cur)
        elif cur is not None and ln.strip() and out:
            out[-1] += " " + ln.strip()
    return out


def ffprobe_json(path: Path) -> dict:
    return streams(path, frames=True)


def run_comp(c: Case, bg: Path, fg: Path) -> dict:
    exe = Path(sys.executable).parent / "vidkompy-vs"
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, VIDKOMPY_VS_CACHE=str(Path(tmp) / "cache"))
        out = Path(tmp) / "out.mp4"
        t0 = time.perf_counter()
        p = subprocess.run([str(exe), "-q", "comp", str(bg), str(fg), "-o", str(out), "--preset", "ultrafast"],
                           env=env, capture_output=True, text=True, cwd=ROOT, timeout=CASE_TIMEOUT)
        r = {"rc": p.returncode, "seconds": time.perf_counter() - t0,
             "err": [ln for ln in p.stderr.splitlines() if "error" in ln.lower()]}
        want = ffprobe_json(fg)
        fv = next(s for s in want["streams"] if s["codec_type"] == "video")
        r["want_frames"] = _count(fg)
        r["want_dur"] = float(want["format"]["duration"])
        r["want_vdur"] = r["want_frames"] / FPS
        if out.exists():
            got = ffprobe_json(out)
            v = next(s for s in got["streams"] if s["codec_type"] == "video")
            a = next((s for s in got["streams"] if s["codec_type"] == "audio"), None)
            r["frames"] = int(v.get("nb_read_frames", 0))
            r["vdur"] = float(v.get("duration", "nan"))
            r["adur"] = float(a["duration"]) if a else None
            r["dur"] = float(got["format"]["duration"])
            r["size"] = f"{v['width']}x{v['height']}"
        r["fg_start"] = float(fv.get("start_time", 0) or 0)
        return r


def judge(c: Case, r: dict, md5: list[str]) -> dict:
    """One align result scored against the case's truth (the frames the aligner saw)."""
    nfg = len(r["map"]) if r.get("map") else 0
    fps_seen = r["fg"][3] / r["fg"][4] if r.get("fg") else float(FPS)
    sets = truth_sets(c, md5, nfg, fps_seen) if nfg else []
    exact, worst = score(r.get("map"), sets)
    ncov = sum(1 for i, t in enumerate(sets) if t is not None and i < len(r.get("map") or []))
    unc_true = sum(s is None for s in sets) if nfg else (c.fg.n - max(0, c.bg.start + c.bg.n - c.fg.start))
    out = {"exact": exact, "maxerr": worst, "covered": ncov, "unc": f"{len(r.get('uncovered') or [])}/{unc_true}",
           "fg_frames": nfg, "fg_expected": c.expect_frames or c.fg.n, "seconds": r.get("seconds"),
           "status": "ok" if not r.get("error") else first_line(r["error"]), "dx": None, "dy": None, "scale": None}
    if not r.get("error"):
        out.update(dx=r["x"] - c.x, dy=r["y"] - c.y, scale=r["scale"])
    return out


def _node_table(rows: list[dict]) -> None:
    """The cases again with their files opened as nodes, beside the file path's figures
    (``same map``: the node run's frame map equals the file run's; ``dxy n-f``: the
    largest difference of the two placements, BG px)."""
    print("\nthe same cases, files opened as VapourSynth nodes (align(bg_node, fg_node, bg_audio=, fg_audio=))")
    hdr = (f"{'case':16s} {'status':30s} {'exact%':>7s} {'maxerr':>6s} {'dx':>7s} {'dy':>7s} {'scale':>8s} "
           f"{'unc':>7s} {'fgN':>7s} {'same map':>8s} {'dxy n-f':>8s} {'node s':>6s} {'file s':>6s}")
    print(hdr)
    print("-" * len(hdr))
    tn = tf = 0.0
    for row in rows:
        n, f = row.get("nodes"), row.get("files")
        if n is None or f is None:
            continue
        tn, tf = tn + (n["seconds"] or 0), tf + (f["seconds"] or 0)
        if n["dx"] is None:
            print(f"{row['case']:16s} {n['status'][:30]:30s} {'-':>7s}   (files: {f['status'][:30]})", flush=True)
            continue
        same = "yes" if row["nodes_map"] == row["files_map"] else "no"
        dxy = (f"{max(abs(n['dx'] - f['dx']), abs(n['dy'] - f['dy'])):8.4f}" if f["dx"] is not None else f"{'-':>8s}")
        print(f"{row['case']:16s} {n['status'][:30]:30s} {100 * n['exact']:7.2f} {n['maxerr']:6d} {n['dx']:+7.2f} "
              f"{n['dy']:+7.2f} {n['scale']:8.4f} {n['unc']:>7s} {n['fg_frames']:>3d}/{n['fg_expected']:<3d} "
              f"{same:>8s} {dxy} {n['seconds']:6.1f} {f['seconds']:6.1f}", flush=True)
    if tf:
        print(f"all cases: nodes {tn:.1f} s, files {tf:.1f} s, node/file {tn / tf:.2f}")


# -- main --------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    ap.add_argument("--no-comp", action="store_true", help="skip the CLI comp checks")
    ap.add_argument("--comp-cases", default="baseline,bg_webm,fg_10bit,fg_editlist")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("-v", "--verbose", action="store_true", help="print tracebacks and all notes")
    ap.add_argument("--nodes", action="store_true",
                    help="also align every case with its files opened as VapourSynth nodes (a second table)")
    ap.add_argument("--hide-ffmpeg", action="store_true",
                    help="align with no ffmpeg/ffprobe on PATH (cases, truth and comp use the package's ffmpeg)")
    args = ap.parse_args()
    align_path = path_without_ffmpeg(CACHE / "no-ffmpeg-bin") if args.hide_ffmpeg else None

    all_cases = cases()
    if args.list:
        for c in all_cases:
            print(f"{c.name:16s} {c.what}")
        return
    want = [s for s in args.cases.split(",") if s]
    unknown = set(want) - {c.name for c in all_cases}
    if unknown:
        sys.exit(f"unknown case(s): {', '.join(sorted(unknown))}")
    todo = [c for c in all_cases if not want or c.name in want]
    t_all = time.perf_counter()
    vid, wav, n_master = master()

    hdr = (f"{'case':16s} {'status':30s} {'exact%':>7s} {'maxerr':>6s} {'dx':>7s} {'dy':>7s} {'scale':>13s} "
           f"{'unc':>7s} {'fgN':>7s} {'method':>12s} {'sec':>6s}")
    print(hdr)
    print("-" * len(hdr))
    rows = []
    built: dict[str, tuple[Path, Path]] = {}
    for c in todo:
        row: dict = {"case": c.name, "what": c.what}
        try:
            bg, fg = build_side(c.bg, vid, wav, "bg"), build_side(c.fg, vid, wav, "fg")
        except subprocess.CalledProcessError as e:
            row.update(status=f"BUILD FAILED: {e}")
            rows.append(row)
            print(f"{c.name:16s} {row['status'][:80]}", flush=True)
            continue
        built[c.name] = (bg, fg)
        md5 = bg_md5(bg)
        r = run_align(bg, fg, align_path)
        row["result"] = {k: v for k, v in r.items() if k != "map"}
        j = judge(c, r, md5)
        status, exact, worst, nfg, want_n = j["status"], j["exact"], j["maxerr"], j["fg_frames"], j["fg_expected"]
        notes = notes_of(r.get("console", ""))
        row.update(status=status, exact=exact, maxerr=worst, covered=j["covered"], unc=j["unc"], fg_frames=nfg,
                   fg_expected=want_n, notes=notes, seconds=r.get("seconds"))
        if args.nodes:
            rn = run_align(bg, fg, align_path, "nodes")
            row.update(files=j, files_map=r.get("map"), nodes=judge(c, rn, md5), nodes_map=rn.get("map"))
            if rn.get("error") and args.verbose and rn.get("trace"):
                print("    nodes: " + rn["trace"].replace("\n", "\n    "))
        if r.get("error"):
            row.update(dx=None, dy=None)
            print(f"{c.name:16s} {status[:30]:30s} {'-':>7s} {'-':>6s} {'-':>7s} {'-':>7s} {'-':>13s} {'-':>7s} "
                  f"{'-':>7s} {'-':>12s} {r.get('seconds', 0):6.1f}", flush=True)
            print(f"    error: {r['error'].strip().splitlines()[0][:300]}")
            if args.verbose and r.get("trace"):
                print("    " + r["trace"].replace("\n", "\n    "))
        else:
            dx, dy = r["x"] - c.x, r["y"] - c.y
            row.update(dx=dx, dy=dy, scale=r["scale"])
            sc = f"{r['scale']:.4f}/{c.scale:.4f}" if c.scale else f"{r['scale']:.4f}"
            print(f"{c.name:16s} {status[:30]:30s} {100 * exact:7.2f} {worst:6d} {dx:+7.2f} {dy:+7.2f} {sc:>13s} "
                  f"{row['unc']:>7s} {nfg:>3d}/{want_n:<3d} {r['tmethod'][:12]:>12s} {r['seconds']:6.1f}",
                  flush=True)
            extra = f"    spatial {r['smethod']} conf {r['sconf']:.2f}; temporal conf {r['tconf']:.2f}, " \
                    f"offset {r['offset']:+.3f} s rate {r['rate']:.4f}; FG {r['fg'][0]}x{r['fg'][1]} " \
                    f"{r['fg'][2]} fr @{r['fg'][3]}/{r['fg'][4]}"
            print(extra)
            row["detail"] = extra.strip()
        for n in notes:
            print(f"    {n[:300]}")
        rows.append(row)

    if args.nodes:
        _node_table(rows)

    comps = []
    if not args.no_comp:
        cc = [s for s in args.comp_cases.split(",") if s]
        print("\nCLI comp (-q comp BG FG -o out.mp4 --preset ultrafast): want FG's frame count and duration")
        h2 = (f"{'case':16s} {'rc':>4s} {'frames':>9s} {'video s':>13s} {'audio s':>7s} {'format s':>8s} "
              f"{'size':>9s} {'sec':>6s}")
        print(h2)
        print("-" * len(h2))
        for name in cc:
            c = next((c for c in all_cases if c.name == name), None)
            if c is None:
                continue
            if name not in built:
                built[name] = (build_side(c.bg, vid, wav, "bg"), build_side(c.fg, vid, wav, "fg"))
            r = run_comp(c, *built[name])
            r["case"] = name
            comps.append(r)
            fr = f"{r.get('frames', '-')}/{r['want_frames']}"
            vd = f"{r.get('vdur', float('nan')):.3f}/{r['want_vdur']:.3f}"
            ad = f"{r['adur']:.3f}" if r.get("adur") is not None else "-"
            fd = f"{r['dur']:.3f}" if r.get("dur") is not None else "-"
            ok = r["rc"] == 0 and r.get("frames") == r["want_frames"] and abs(r.get("vdur", 0) - r["want_vdur"]) < 0.021
            print(f"{name:16s} {r['rc']:>4d} {fr:>9s} {vd:>13s} {ad:>7s} {fd:>8s} {r.get('size', '-'):>9s} "
                  f"{r['seconds']:6.1f} {'OK' if ok else 'FAIL'}", flush=True)
            for e in r["err"]:
                print(f"    {e[:300]}")

    out = CACHE / "last-results.json"
    keep = [{k: v for k, v in r.items() if not k.endswith("_map")} for r in rows]
    out.write_text(json.dumps({"rows": keep, "comp": comps}, indent=1, default=str))
    print(f"\n(total {time.perf_counter() - t_all:.0f} s; results in {out})")


if __name__ == "__main__":
    main()
