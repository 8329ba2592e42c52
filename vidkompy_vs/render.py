"""Render a VapourSynth clip to a file through ffmpeg, with sound, atomically.

The clip is served in-process (``VideoNode.output`` as y4m into ffmpeg's stdin), so there
is no second interpreter and the progress bar sees every frame. Audio comes straight from
a source file via ffmpeg, cut, shifted and stretched onto FG's timeline with sample-exact
filters (``atrim``/``adelay``/``atempo``/``apad``), never with ``-itsoffset`` (AAC priming
makes that land ~20 ms early).

The ffmpeg is :func:`ffpipe.ffmpeg_binary`'s: the imageio-ffmpeg wheel's unless the user
names one. Encoding in-process with PyAV instead wrote the same bitstream for the same CPU
time within noise (``benchmarks/render_backends.py``), so the pipe stays: it keeps
ffmpeg's audio filters and takes any encoder option.

The output is written to a hidden temporary file beside the target and renamed at the
end: an error or Ctrl-C leaves no half-written file.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import vapoursynth as vs
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from . import ffpipe, stops
from .errors import VidkompyError
from .fsutil import temp_beside


@dataclass(frozen=True)
class AudioPlan:
    """Which file's first audio stream to use and how it lines up with the output.

    Output time ``t`` plays source audio at ``offset_s + rate * t``; the track is cut or
    padded with silence to ``duration`` seconds.
    """

    path: str
    duration: float
    offset_s: float = 0.0
    rate: float = 1.0
    lead: float = 0.0  # source's first audio sample after its first video frame (s)

    def filter(self) -> str:
        # source time is counted from its first video frame (the maps' time 0); the track
        # starts ``lead`` after it
        off = self.offset_s - self.lead
        f = ["asetpts=PTS-STARTPTS"]
        if off > 0:
            f += [f"atrim=start={off:.6f}", "asetpts=PTS-STARTPTS"]
        if abs(self.rate - 1.0) > 1e-9:
            f.extend(_atempo_chain(self.rate))
        if off < 0:
            # Silence until the source starts; the delay is in output time (after stretching).
            f.append(f"adelay=delays={-off / self.rate * 1000:.3f}:all=1")
        f.append("apad")
        f.append(f"atrim=end={self.duration:.6f}")
        return ",".join(f)


def _atempo_chain(rate: float) -> list[str]:
    # atempo accepts 0.5..100 per instance; chain for slower rates.
    out = []
    r = rate
    while r < 0.5:
        out.append("atempo=0.5")
        r /= 0.5
    out.append(f"atempo={r:.9f}")
    return out


def default_audio_codec(out: Path) -> str:
    """AAC in MP4/MOV (edit lists hide its encoder delay); Opus elsewhere: AAC in Matroska
    plays its 1024 priming samples and lands ~21 ms late, Opus' pre-skip is honoured."""
    return "aac" if out.suffix.lower() in (".mp4", ".mov", ".m4v", ".m4a") else "libopus"


@dataclass(frozen=True)
class Encoding:
    """How the output is encoded (see :func:`render`)."""

    codec: str = "libx264"
    crf: float | None = 18
    preset: str | None = "medium"
    audio_codec: str = "auto"
    audio_bitrate: str = "192k"
    extra: tuple[str, ...] = ()
    ffmpeg: str | None = None  # the binary (None: ffpipe.ffmpeg_binary's choice)


def _command(out: Path, tmp: Path, audio: AudioPlan | None, enc: Encoding) -> list[str]:
    """ffmpeg reading y4m on stdin (and ``audio``'s file), writing ``tmp``."""
    cmd = [*ffpipe.ffmpeg_head(binary=enc.ffmpeg), "-hide_banner", "-y", "-f", "yuv4mpegpipe", "-i", "pipe:0"]
    if audio is not None:
        cmd += ["-i", audio.path]
    cmd += ["-map", "0:v:0"]
    if audio is not None:
        audio_codec = default_audio_codec(out) if enc.audio_codec == "auto" else enc.audio_codec
        cmd += ["-map", "1:a:0", "-af", audio.filter(), "-c:a", audio_codec]
        if enc.audio_bitrate:
            cmd += ["-b:a", enc.audio_bitrate]
    cmd += ["-c:v", enc.codec]
    if enc.crf is not None:
        cmd += ["-crf", f"{enc.crf:g}"]
    if enc.preset:
        cmd += ["-preset", enc.preset]
    if out.suffix.lower() in (".mp4", ".mov", ".m4v"):
        cmd += ["-movflags", "+faststart"]
    return [*cmd, *enc.extra, str(tmp)]


class _Encoder:
    """The ffmpeg process, with the tail of what it printed (its last line is the error)."""

    def __init__(self, cmd: list[str]) -> None:
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as e:
            # (resolved a moment ago, so only a binary that vanished or lost its exec bit)
            raise VidkompyError(f"{cmd[0]}: cannot run ({e.strerror or e})") from None
        self.err_tail: deque[bytes] = deque(maxlen=20)
        self.reader = threading.Thread(target=lambda: self.err_tail.extend(self.proc.stderr), daemon=True)
        self.reader.start()

    def error(self) -> str:
        lines = [ln.decode(errors="replace").strip() for ln in self.err_tail if ln.strip()]
        return lines[-1] if lines else f"ffmpeg exited with code {self.proc.returncode}"

    def wait(self) -> int:
        self.proc.wait()
        self.reader.join(timeout=5)
        return self.proc.returncode

    def stop(self) -> None:
        """Interrupt a running ffmpeg (it cleans up), killing it when it does not stop."""
        if self.proc.poll() is None:
            if os.name == "nt":  # (no SIGINT for one child there: send_signal raises)
                self.proc.terminate()
            else:
                self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class _Interrupts:
    """Ctrl-C (and :data:`stops.STOP_SIGNALS`) taken at points of our choosing, from construction
    to :meth:`restore`: Python's own KeyboardInterrupt can land in a weakref or __del__
    callback, where it is printed and dropped, and the render then finished as if nothing
    had happened (seen once in ~10 runs of the Ctrl-C test)."""

    def __init__(self) -> None:
        self.seen: list[int] = []
        self.old = stops.install(stops.STOP_SIGNALS, lambda sig, _f: self.seen.append(sig))

    def restore(self) -> None:
        stops.restore(self.old)

    def check(self) -> None:
        if self.seen:
            raise KeyboardInterrupt


def _feed(clip: vs.VideoNode, enc: _Encoder, ints: _Interrupts, console: Console, progress: bool,
          on_progress: Callable[[int, int], None] | None = None) -> None:
    """Serve ``clip`` as y4m into ffmpeg's stdin, with a progress bar (and ``on_progress``)."""
    bar = Progress(TextColumn("[bold]rendering"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[fps]:>6.1f} fps"), TimeElapsedColumn(), TextColumn("ETA"),
                   TimeRemainingColumn(), console=console, disable=not progress, transient=False)
    t0 = time.perf_counter()
    with bar:
        task = bar.add_task("render", total=clip.num_frames, fps=0.0)

        def update(done: int, _total: int) -> None:
            ints.check()
            el = time.perf_counter() - t0
            bar.update(task, completed=done, fps=done / el if el > 0 else 0.0)
            if on_progress is not None:
                on_progress(done, _total)

        try:
            clip.output(enc.proc.stdin, y4m=True, progress_update=update)
            enc.proc.stdin.close()
        except (BrokenPipeError, OSError, vs.Error) as e:
            # (ffmpeg's input closed first: with it open, ffmpeg waits for more y4m and we
            # for ffmpeg, for ever)
            with contextlib.suppress(OSError):
                enc.proc.stdin.close()
            rc = enc.wait()
            ints.check()  # (a Ctrl-C at the terminal stops ffmpeg too: it is no failure)
            if rc not in (0, None):
                raise VidkompyError(f"ffmpeg failed: {enc.error()}") from None
            raise VidkompyError(f"rendering failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}") \
                from None


def render(clip: vs.VideoNode, out: str | os.PathLike[str], *, audio: AudioPlan | None = None,
           codec: str = "libx264", crf: float | None = 18, preset: str | None = "medium",
           audio_codec: str = "auto", audio_bitrate: str = "192k", extra: list[str] | None = None,
           console: Console | None = None, progress: bool = True,
           on_progress: Callable[[int, int], None] | None = None, ffmpeg: str | os.PathLike[str] | None = None) -> Path:
    """Encode ``clip`` (and ``audio``) to ``out`` with ffmpeg; returns the final path.

    ``on_progress(done, total)`` is called as frames go out (a caller's own progress bar).
    ``ffmpeg``: the binary to use (default: :func:`ffpipe.ffmpeg_binary`'s choice).

    Writes ``.<name>.part-<pid><ext>`` beside ``out`` and renames it when ffmpeg has
    finished cleanly; removes it on any error or interrupt.
    """
    console = console or Console(stderr=True)
    out = Path(out)
    tmp = temp_beside(out, f".part-{os.getpid()}{out.suffix}")
    enc = _Encoder(_command(out, tmp, audio, Encoding(codec, crf, preset, audio_codec, audio_bitrate,
                                                      tuple(extra or ()), None if ffmpeg is None else str(ffmpeg))))
    ok = False
    ints = _Interrupts()
    try:
        _feed(clip, enc, ints, console, progress, on_progress)
        ints.check()
        rc = enc.wait()
        ints.check()
        if rc != 0:
            raise VidkompyError(f"ffmpeg failed: {enc.error()}")
        if not tmp.exists() or tmp.stat().st_size == 0:
            raise VidkompyError("ffmpeg wrote no output")
        os.replace(tmp, out)
        ok = True
        return out
    finally:
        ints.restore()
        if not ok:
            enc.stop()
            tmp.unlink(missing_ok=True)
