"""Audio offset and rate by GCC-PHAT.

Both tracks are decoded once, in-process (PyAV), to mono float at a low rate (8 kHz by
default: the phase transform needs only a few kHz of bandwidth for millisecond lags)
and cached. The whole FG track against the whole BG track gives the offset; windows
along FG, each searched near where the first estimate puts it, give local offsets whose
line is the rate (BG seconds per FG second): an fps change or drift shows up there.

Convention (as in :class:`alignment.Temporal`): BG time = offset_s + rate * FG time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .cache import cache_dir, file_key
from .decode import audio as decode_audio
from .fsutil import atomic_save_npy
from .numeric import next_fast

AUDIO_VERSION = 3  # 2: sample 0 is at the first video frame; 3: decoded in-process (PyAV)


@dataclass
class AudioMatch:
    offset_s: float
    rate: float
    confidence: float  # 0..1: 1 - second peak / first peak (global), scaled by window agreement
    windows: int  # windows that agreed with the fitted line
    residual_ms: float


def load_audio(path: str | os.PathLike[str], rate: int = 8000, *, cache: bool = True) -> np.ndarray:
    """First audio stream of ``path`` as mono float32 at ``rate`` Hz (cached), sample 0
    at the time of the first video frame (streams may start at different times: Matroska
    with AAC, a clip whose sound starts late): padded with silence or cut."""
    path = str(path)
    key = file_key(path, "audio", AUDIO_VERSION, rate)
    cfile = cache_dir("audio") / f"{key}.npy"
    if cache and cfile.exists():
        try:
            return np.load(cfile, allow_pickle=False)
        except (OSError, ValueError):
            pass
    a = decode_audio(path, rate)
    from .sources import audio_lead

    lead = int(round(audio_lead(path) * rate))
    if lead > 0:
        a = np.concatenate([np.zeros(lead, np.float32), a])
    elif lead < 0:
        a = a[-lead:]
    if cache:
        atomic_save_npy(cfile, a)
    return a


def gcc_phat(bg: np.ndarray, fg: np.ndarray, *, lag_min: int | None = None,
             lag_max: int | None = None, exclude: int = 40) -> tuple[int, float, float]:
    """Lag ``k`` (samples) maximising sum_t bg[t+k] fg[t] under the phase transform.

    Returns (lag, peak, confidence), confidence = 1 - second peak / peak, the second peak
    taken ``exclude`` samples or more away. ``lag_min``/``lag_max`` bound the search.
    """
    from numpy.fft import irfft, rfft

    n = next_fast(len(bg) + len(fg))
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


def match_audio(bg: np.ndarray, fg: np.ndarray, rate: int = 8000, *, windows: int = 12,
                window_s: float = 1.5) -> AudioMatch:
    """Offset and rate of FG audio inside BG audio."""
    if len(fg) < rate // 4 or len(bg) < rate // 4:
        return AudioMatch(0.0, 1.0, 0.0, 0, 0.0)
    lag0, _, conf0 = gcc_phat(bg, fg)
    off0 = lag0 / rate
    # windows along FG, each searched within a margin around the global estimate
    # short windows: a rate difference smears a long window's peak (2 % over 4 s = 80 ms)
    wl = int(min(window_s * rate, len(fg) // 2))
    pts_t, pts_o, pts_c = [], [], []
    if wl >= rate // 2 and windows >= 2:
        starts = np.linspace(0, len(fg) - wl, windows).astype(int)
        for s in starts:
            seg = fg[s:s + wl]
            if np.std(seg) < 1e-5:
                continue  # silence says nothing
            t = s / rate
            # a rate difference also smears the global peak: then search all of BG
            margin = int((1.0 + 0.1 * t) * rate) if conf0 >= 0.2 else len(bg)
            centre = lag0 + s
            b0 = max(0, centre - margin)
            b1 = min(len(bg), centre + wl + margin)
            if b1 - b0 < wl // 2:
                continue
            lag, _, c = gcc_phat(bg[b0:b1], seg, lag_min=-wl // 2, lag_max=b1 - b0)
            pts_t.append(t + wl / 2 / rate)
            pts_o.append((b0 + lag - s) / rate)  # BG time - FG time at this window
            pts_c.append(c)
    if conf0 < 0.2:
        # A rate difference decorrelates the phase of everything but the lowest
        # frequencies, which is all PHAT listens to: fall back to the loudness envelope.
        e = _envelope_match(bg, fg, rate, windows)
        if e is not None:
            return e
    rate_est, off, agree, resid = 1.0, off0, 0, 0.0
    if len(pts_t) >= 3:
        t, o, c = np.array(pts_t), np.array(pts_o), np.array(pts_c)
        good = c > 0.1
        if good.sum() >= 3:
            # robust line through window offsets: drop those more than 20 ms off, refit
            for _ in range(3):
                A = np.vstack([np.ones(good.sum()), t[good]]).T
                (a, b), *_ = np.linalg.lstsq(A, o[good], rcond=None)
                r = np.abs(o - (a + b * t))
                new = (c > 0.1) & (r < 0.02)
                if new.sum() < 3 or (new == good).all():
                    break
                good = new
            if good.sum() >= 3:
                # o = (BG t - FG t) = a + b * FG t  ->  BG t = a + (1 + b) * FG t
                off, rate_est = float(a), float(1.0 + b)
                agree = int(good.sum())
                resid = float(np.sqrt(np.mean(r[good] ** 2)) * 1000)
    frac = agree / max(1, len(pts_t)) if pts_t else 1.0
    wconf = float(np.median(np.array(pts_c)[good])) if agree else 0.0
    # windows that agree on one line are evidence even when the global peak is smeared
    conf = float(max(conf0, wconf) * (0.5 + 0.5 * frac)) if pts_t else conf0
    return AudioMatch(off, rate_est, conf, agree, resid)


def _envelope(x: np.ndarray, hop: int) -> np.ndarray:
    n = len(x) // hop
    e = np.abs(x[: n * hop]).reshape(n, hop).mean(axis=1)
    return np.log1p(e / (np.median(e) + 1e-9))


def _envelope_match(bg: np.ndarray, fg: np.ndarray, rate: int, windows: int) -> AudioMatch | None:
    """Offset and rate from loudness envelopes (200 Hz) in windows along FG: survives rate changes."""
    from scipy.signal import correlate

    hop = max(1, rate // 200)
    er = rate / hop
    eb, ef = _envelope(bg, hop), _envelope(fg, hop)
    wl = int(min(3.0 * er, len(ef) // 2))
    if wl < er or len(eb) < wl:
        return None
    t, o, c = [], [], []
    for s in np.linspace(0, len(ef) - wl, max(3, windows)).astype(int):
        w = ef[s:s + wl] - ef[s:s + wl].mean()
        if w.std() < 1e-6:
            continue
        cc = correlate(eb - eb.mean(), w, mode="valid", method="fft")
        # local normalisation so loud passages do not win by loudness alone
        b2 = np.convolve((eb - eb.mean()) ** 2, np.ones(wl), mode="valid")
        ncc = cc / np.sqrt(np.maximum(b2, 1e-9) * (w * w).sum())
        k = int(np.argmax(ncc))
        # sub-sample peak
        if 0 < k < len(ncc) - 1:
            a, b_, d = ncc[k - 1], ncc[k], ncc[k + 1]
            den = a - 2 * b_ + d
            frac = 0.5 * (a - d) / den if abs(den) > 1e-12 else 0.0
        else:
            frac = 0.0
        t.append((s + wl / 2) / er)
        o.append((k + frac - s) / er)
        c.append(float(ncc[k]))
    if len(t) < 3:
        return None
    t_, o_, c_ = np.array(t), np.array(o), np.array(c)
    good = c_ > 0.3
    a = b = 0.0
    for _ in range(3):
        if good.sum() < 3:
            return None
        A = np.vstack([np.ones(good.sum()), t_[good]]).T
        (a, b), *_ = np.linalg.lstsq(A, o_[good], rcond=None)
        r = np.abs(o_ - (a + b * t_))
        new = (c_ > 0.3) & (r < 0.03)
        if (new == good).all():
            break
        good = new
    if good.sum() < 3:
        return None
    frac = good.sum() / len(t)
    conf = float(np.median(c_[good]) * frac)
    return AudioMatch(float(a), float(1.0 + b), conf, int(good.sum()), float(np.sqrt(np.mean(r[good] ** 2)) * 1000))
