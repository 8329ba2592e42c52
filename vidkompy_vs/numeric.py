"""Small numeric helpers shared by the engines: a sub-pixel peak, and numpy stand-ins for
the few scipy functions the hot path needs.

scipy's import costs about a third of a CPU second on every run, and the prepass would
pay it for a 1-D gaussian, a running median, a bilinear shift and an FFT length; each
helper here equals its scipy counterpart (``tests/test_temporal.py`` compares them).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Peak", "peak", "gauss1d", "median_nearest", "shift_planes", "next_fast"]


class Peak(NamedTuple):
    """The maximum of a 2-D map: its value and sub-pixel position (map pixels)."""

    value: float
    x: float
    y: float


def peak(m: np.ndarray) -> Peak:
    """The maximum of ``m`` with a parabolic sub-pixel fit along each axis."""
    import cv2

    _, score, _, (px, py) = cv2.minMaxLoc(m)
    dx = dy = 0.0
    if 0 < px < m.shape[1] - 1:
        a, b, c = m[py, px - 1], m[py, px], m[py, px + 1]
        den = a - 2 * b + c
        if den < 0:
            dx = float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))
    if 0 < py < m.shape[0] - 1:
        a, b, c = m[py - 1, px], m[py, px], m[py + 1, px]
        den = a - 2 * b + c
        if den < 0:
            dy = float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))
    return Peak(float(score), px + dx, py + dy)


def gauss1d(a: np.ndarray, sigma: float) -> np.ndarray:
    """scipy.ndimage.gaussian_filter1d(a, sigma, mode="constant") (same kernel, radius
    4 sigma)."""
    r = int(4.0 * sigma + 0.5)
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    if len(k) <= 1024 or len(a) <= 1024:
        return np.convolve(a, k)[r:r + len(a)]
    # a wide kernel on a long input (an hour of frames): by FFT, not n*k products
    n = len(a) + len(k) - 1
    m = 1 << (n - 1).bit_length()
    full = np.fft.irfft(np.fft.rfft(a, m) * np.fft.rfft(k, m), m)[:n]
    return full[r:r + len(a)]


def median_nearest(a: np.ndarray, k: int) -> np.ndarray:
    """Running median of ``k`` along axis 0, edges repeated: scipy.ndimage.median_filter
    with mode="nearest" over axis 0 only."""
    r = k // 2
    pad = np.concatenate([np.repeat(a[:1], r, axis=0), a, np.repeat(a[-1:], r, axis=0)])
    return np.median(np.lib.stride_tricks.sliding_window_view(pad, k, axis=0), axis=-1)


def shift_planes(p: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Planes (N, h, w) moved by (dx, dy), out(x) = p(x - d): bilinear, edges repeated
    (scipy.ndimage.shift(order=1, mode="nearest")). float32."""

    def axis(m: int, d: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        src = np.clip(np.arange(m) - d, 0, m - 1)
        i0 = np.floor(src).astype(np.int64)
        return i0, np.minimum(i0 + 1, m - 1), (src - i0).astype(np.float32)

    y0, y1, fy = axis(p.shape[1], dy)
    x0, x1, fx = axis(p.shape[2], dx)
    p = p.astype(np.float32, copy=False)
    rows = p[:, y0] * (1 - fy)[None, :, None] + p[:, y1] * fy[None, :, None]
    return rows[:, :, x0] * (1 - fx) + rows[:, :, x1] * fx


def next_fast(n: int) -> int:
    """The smallest 2-3-5-smooth size >= n (a fast FFT length): scipy.fft.next_fast_len(n, real=True)."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35 * (1 << max(0, (-(-n // p35) - 1).bit_length()))  # times the power of 2 reaching n
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best
