"""Shared fixtures: small real clips made with ffmpeg once and cached in .pytest_cache.

ffmpeg is the one the package resolves (the imageio-ffmpeg wheel's unless the user names
another), so the suite runs with no ffmpeg on PATH."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from vidkompy_vs.ffpipe import ffmpeg_binary
from vidkompy_vs.sample import SamplePair, make_pair

FFMPEG = ffmpeg_binary()


def quiet_console() -> tuple[Console, io.StringIO]:
    """A console that writes to a buffer (what a call said, for the test to read)."""
    buf = io.StringIO()
    return Console(file=buf, width=200, force_terminal=False), buf


def ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args], check=True)


@pytest.fixture(scope="session")
def clip_dir(request) -> Path:
    return Path(request.config.cache.mkdir("vidkompy-clips"))


@pytest.fixture(scope="session")
def pair(clip_dir: Path) -> SamplePair:
    """BG 640x360 25 fps 8 s with sound; FG = its 320x180 crop at (171, 63) from 1 s on."""
    return make_pair(clip_dir / "pair")


@pytest.fixture(scope="session")
def pair_lossless(clip_dir: Path) -> SamplePair:
    """The same scene, stored losslessly (x264 qp 0 would change nothing; FFV1 in mkv)."""
    folder = clip_dir / "pair-lossless"
    bg, fg = folder / "bg.mkv", folder / "fg.mkv"
    if not (bg.exists() and fg.exists()):
        src = make_pair(clip_dir / "pair")
        folder.mkdir(parents=True, exist_ok=True)
        ffmpeg("-i", str(src.bg), "-c:v", "ffv1", "-c:a", "flac", str(bg))
        ffmpeg("-i", str(src.fg), "-c:v", "ffv1", "-c:a", "flac", str(fg))
    return SamplePair(bg, fg, 171, 63, 1.0, 25)


def decode_audio(path: Path, rate: int = 8000) -> np.ndarray:
    out = subprocess.run([FFMPEG, "-nostdin", "-loglevel", "error", "-i", str(path), "-map", "0:a:0", "-ac", "1",
                          "-ar", str(rate), "-f", "f32le", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(out, dtype=np.float32)


def decode_gray(path: Path, w: int, h: int) -> np.ndarray:
    """All frames' luma as (N, h, w) uint8, decoded by ffmpeg (independent of our sources)."""
    out = subprocess.run([FFMPEG, "-nostdin", "-loglevel", "error", "-i", str(path), "-map", "0:v:0",
                          "-f", "rawvideo", "-pix_fmt", "gray", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(out, dtype=np.uint8).reshape(-1, h, w)


def decode_rgb(path: Path, w: int, h: int) -> np.ndarray:
    out = subprocess.run([FFMPEG, "-nostdin", "-loglevel", "error", "-i", str(path), "-map", "0:v:0",
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(out, dtype=np.uint8).reshape(-1, h, w, 3)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def xcorr_lag(a: np.ndarray, b: np.ndarray) -> int:
    """Lag (samples) at which ``b`` best matches ``a``: positive when b is late."""
    n = len(a) + len(b)
    size = 1 << (n - 1).bit_length()
    c = np.fft.irfft(np.fft.rfft(b, size) * np.conj(np.fft.rfft(a, size)), size)
    k = int(np.argmax(c))
    return k if k < size // 2 else k - size
