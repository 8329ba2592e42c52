"""Generate a BG/FG pair with a known placement and time offset (for the demo and tests).

The master scene is synthetic but busy: moving test patterns over a drifting
cellular texture that evolves in place (no global scroll, which would
let a shift in space pass for a shift in time), with a tone plus noise bursts on the audio (a pure tone
alone would correlate at every period). BG is the master, FG is a crop of it starting
``offset_s`` later.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from .errors import VidkompyError
from .ffpipe import ffmpeg_head


@dataclass(frozen=True)
class SamplePair:
    bg: Path
    fg: Path
    x: int
    y: int
    offset_s: float
    fps: int


def _ffmpeg(args: list[str]) -> None:
    cmd = [*ffmpeg_head(), "-hide_banner", "-y", *args]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        raise VidkompyError(f"{cmd[0]}: cannot run ({e.strerror or e})") from None
    if r.returncode != 0:
        raise VidkompyError(f"ffmpeg failed: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}")


def master_filter(w: int, h: int, fps: int, seconds: float, seed: int = 1) -> tuple[str, str]:
    """lavfi video and audio graphs for a textured, moving scene of ``seconds``."""
    video = (
        f"testsrc2=s={w}x{h}:r={fps}:d={seconds}[a];"
        f"life=s={w // 4}x{h // 4}:r={fps}:ratio=0.2:seed={seed}:mold=4:life_color=#ffffff:mold_color=#200000,"
        f"scale={w}:{h}:flags=neighbor[b];"
        f"[b]format=yuv420p,boxblur=1[bb];"
        f"[a][bb]blend=all_mode=average:shortest=1,format=yuv420p"
    )
    audio = (
        f"sine=f=440:r=48000:d={seconds}[s];"
        f"anoisesrc=r=48000:d={seconds}:c=pink:a=0.3:seed={seed}[n];"
        f"[n]volume='0.3+0.7*gt(sin(7*t)+sin(2.3*t),0.5)':eval=frame[nb];"
        f"[s][nb]amix=inputs=2:normalize=0"
    )
    return video, audio


def make_pair(folder: str | Path, *, bg_size: tuple[int, int] = (640, 360), fg_size: tuple[int, int] = (320, 180),
              x: int = 171, y: int = 63, fps: int = 25, seconds: float = 8.0, offset_s: float = 1.0,
              crf: int = 16) -> SamplePair:
    """Write ``bg.mp4`` (``seconds`` long) and ``fg.mp4`` (the crop at (x, y), from
    ``offset_s`` to the end) into ``folder``; reuse them when already there."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    bg, fg = folder / "bg.mp4", folder / "fg.mp4"
    pair = SamplePair(bg, fg, x, y, offset_s, fps)
    if bg.exists() and fg.exists():
        return pair
    w, h = bg_size
    fw, fh = fg_size
    video, audio = master_filter(w, h, fps, seconds)
    tmp_bg = folder / ".bg.tmp.mp4"
    _ffmpeg(["-f", "lavfi", "-i", video, "-f", "lavfi", "-i", audio, "-map", "0:v", "-map", "1:a",
             "-c:v", "libx264", "-crf", str(crf), "-preset", "veryfast", "-g", "50", "-bf", "2", "-c:a", "aac",
             "-b:a", "160k", "-t", f"{seconds}", str(tmp_bg)])
    start = int(round(offset_s * fps))
    tmp_fg = folder / ".fg.tmp.mp4"
    # Cut by frame index (select) and by sample (atrim) so the truth is exact; crop in 4:4:4
    # because ffmpeg's crop rounds odd x/y down to even in 4:2:0.
    _ffmpeg(["-i", str(tmp_bg), "-filter_complex",
             f"[0:v]select=gte(n\\,{start}),setpts=PTS-STARTPTS,format=yuv444p,crop={fw}:{fh}:{x}:{y},format=yuv420p[v];"
             f"[0:a]atrim=start={start / fps},asetpts=PTS-STARTPTS[a]",
             "-map", "[v]", "-map", "[a]", "-c:v", "libx264", "-crf", str(crf), "-preset", "veryfast",
             "-c:a", "aac", "-b:a", "160k", str(tmp_fg)])
    tmp_bg.replace(bg)
    tmp_fg.replace(fg)
    return pair
