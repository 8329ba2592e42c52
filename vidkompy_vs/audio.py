"""Audio offset and rate by GCC-PHAT.

Both tracks are decoded once through an ffmpeg pipe to mono float at a low rate (8 kHz by
default: the phase transform needs only a few kHz of bandwidth for millisecond lags)
and cached. The whole FG track against the whole BG track gives the offset; windows
along FG, each searched near where the first estimate puts it, give local offsets whose
line is the rate (BG seconds per FG second): an fps change or drift shows up there.

Convention (as in :class:`alignment.Temporal`): BG time = offset_s + rate * FG time.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

import numpy as np

from .cache import cache_dir, file_key
from .errors import VidkompyError

AUDIO_VERSION = 1


@dataclass
class AudioMatch:
    offset_s: float
    rate: float
    confidence: float  # 0..1: 1 - second peak / first peak (global), scaled by window agreement
    windows: int  # windows that agreed with the fitted line
    residual_ms: float


def load_audio(path: str | os.PathLike[str], rate: int = 8000, *, cache: bool = True) -> np.ndarray:
    """First audio stream of ``path`` as mono float32 at ``rate`` Hz (cached)."""
    path = str(path)
    key = file_key(path, "audio", AUDIO_VERSION, rate)
    cfile = cache_dir("audio") / f"{key}.npy"
    if cache and cfile.exists():
        try:
            return np.load(cfile, allow_pickle=False)
        except (OSError, ValueError):
            pass
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", path, "-map", "0:a:0", "-vn", "-sn", "-dn",
           "-ac", "1", "-ar", str(rate), "-f", "f32le", "-acodec", "pcm_f32le", "-"]
    try:
        out = subprocess.run(cmd, capture_output=True, check=False)
    except FileNotFoundError:
        raise VidkompyError("ffmpeg not found: install ffmpeg (e.g. `apt-get install ffmpeg`)") from None
    if out.returncode != 0:
        msg = out.stderr.decode(errors="replace").strip().splitlines()
        raise VidkompyError(f"{path}: cannot decode audio ({msg[-1] if msg else 'ffmpeg failed'})")
    a = np.frombuffer(out.stdout, np.float32).copy()
    if cache:
        tmp = cfile.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, a, allow_pickle=False)
        os.replace(tmp, cfile)
    return a


def _next_fast(n: int) -> int:
    from scipy.fft import next_fast_len

    return int(next_fast_len(n, real=True))


def gcc_phat(bg: np.ndarray, fg: np.ndarray, *, lag_min: int | None = None,
             lag_max: int | None = None, exclude: int = 40) -> tuple[int, float, float]:
    """Lag ``k`` (samples) maximising sum_t bg[t+k] fg[t] under the phase transform.

    Returns (lag, peak, confidence), confidence = 1 - second peak / peak, the second peak
    taken ``exclude`` samples or more away. ``lag_min``/``lag_max`` bound the search.
    """
    from scipy.fft import irfft, rfft

    n = _next_fast(len(bg) + len(fg))
    B = rfft(bg, n)
    F = rfft(fg, n)
    R = B * np.conj(F)
    mag = np.abs(R)
    # PHAT: whiten so every frequency votes equally (sharp peaks, robust to EQ/reverb);
    # the floor keeps silent bins from turning into noise
    R /= np.maximum(mag, 1e-3 * (mag.mean() + 1e-20))
    cc = irfft(R, n)
    lags = np.concatenate([np.arange(0, n - len(fg) + 1), np.arange(-len(fg) + 1, 0)])
    vals = np.concatenate([cc[: n - len(fg) + 1], cc[n - len(fg) + 1:]])
    ok = np.ones(len(lags), bool)
    if lag_min is not None:
        ok &= lags >= lag_min
    if lag_max is not None:
        ok &= lags <= lag_max
    ok &= lags <= len(bg) - 1
    if not ok.any():
        return 0, 0.0, 0.0
    lags, vals = lags[ok], vals[ok]
    i = int(np.argmax(vals))
    peak = float(vals[i])
    far = np.abs(lags - lags[i]) > exclude
    second = float(vals[far].max()) if far.any() else 0.0
    conf = 0.0 if peak <= 0 else float(np.clip(1.0 - max(second, 0.0) / peak, 0.0, 1.0))
    return int(lags[i]), peak, conf


def match_audio(bg: np.ndarray, fg: np.ndarray, rate: int = 8000, *, windows: int = 8,
                window_s: float = 4.0) -> AudioMatch:
    """Offset and rate of FG audio inside BG audio."""
    if len(fg) < rate // 4 or len(bg) < rate // 4:
        return AudioMatch(0.0, 1.0, 0.0, 0, 0.0)
    lag0, _, conf0 = gcc_phat(bg, fg)
    off0 = lag0 / rate
    # windows along FG, each searched within a margin around the global estimate
    wl = int(min(window_s * rate, len(fg) // 2))
    pts_t, pts_o, pts_c = [], [], []
    if wl >= rate // 2 and windows >= 2:
        starts = np.linspace(0, len(fg) - wl, windows).astype(int)
        for s in starts:
            seg = fg[s:s + wl]
            if np.std(seg) < 1e-5:
                continue  # silence says nothing
            t = s / rate
            margin = int((1.0 + 0.1 * t) * rate)
            centre = lag0 + s
            b0 = max(0, centre - margin)
            b1 = min(len(bg), centre + wl + margin)
            if b1 - b0 < wl // 2:
                continue
            lag, _, c = gcc_phat(bg[b0:b1], seg, lag_min=-wl // 2, lag_max=b1 - b0)
            pts_t.append(t + wl / 2 / rate)
            pts_o.append((b0 + lag - s) / rate)  # BG time - FG time at this window
            pts_c.append(c)
    rate_est, off, agree, resid = 1.0, off0, 0, 0.0
    if len(pts_t) >= 3:
        t, o, c = np.array(pts_t), np.array(pts_o), np.array(pts_c)
        good = c > 0.2
        if good.sum() >= 3:
            # robust line through window offsets: drop those more than 20 ms off, refit
            for _ in range(3):
                A = np.vstack([np.ones(good.sum()), t[good]]).T
                (a, b), *_ = np.linalg.lstsq(A, o[good], rcond=None)
                r = np.abs(o - (a + b * t))
                new = (c > 0.2) & (r < 0.02)
                if new.sum() < 3 or (new == good).all():
                    break
                good = new
            if good.sum() >= 3:
                # o = (BG t - FG t) = a + b * FG t  ->  BG t = a + (1 + b) * FG t
                off, rate_est = float(a), float(1.0 + b)
                agree = int(good.sum())
                resid = float(np.sqrt(np.mean(r[good] ** 2)) * 1000)
    frac = agree / max(1, len(pts_t)) if pts_t else 1.0
    conf = float(conf0 * (0.5 + 0.5 * frac)) if pts_t else conf0
    return AudioMatch(off, rate_est, conf, agree, resid)
