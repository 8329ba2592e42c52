"""Which frames the spatial searches look at: plain arithmetic, no OpenCV, so that the plan
can name them before the engine is imported (it loads beside the probes)."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

COARSE_AT = (0.4, 0.5, 0.6)
# Longest BG window (frames) read sequentially; beyond it random reads touch fewer frames.
WINDOW_MAX = 3000


def coarse_samples(nf: int, at: tuple[float, ...] = COARSE_AT) -> list[int]:
    """FG frames the coarse search matches (at these fractions of FG): by default FG's
    middle, the part most likely inside BG."""
    return sorted({int(round(q * (nf - 1))) for q in at})


def refine_samples(nf: int) -> list[int]:
    """The FG frames :func:`refine_from_clips` estimates on (spread over the clip), so
    that a caller decoding the inputs anyway can keep those pictures for it."""
    n = min(nf, 9)
    return sorted({int(round(v)) for v in np.linspace(0.04 * (nf - 1), 0.96 * (nf - 1), n)})


class WindowPlan(NamedTuple):
    """FG samples and the BG window searched for them (first and last frame)."""

    fg_samples: list[int]
    lo: int
    hi: int


class MidSize(NamedTuple):
    """BG's mid-size copies: their size and factors from full size."""

    width: int
    height: int
    fx: float
    fy: float


def window_plan(nf: int, nb: int, fps: float, at: tuple[float, ...] = COARSE_AT) -> WindowPlan:
    """FG samples and the BG window searched for them: several seconds either side of
    the proportional time (BG may start earlier or later)."""
    fidx = coarse_samples(nf, at)
    centres = [int(round(i * nb / nf)) for i in fidx]
    half = max(8, int(round(4.0 * fps)))
    return WindowPlan(fidx, max(0, min(centres) - half), min(nb - 1, max(centres) + half))


class ScanSpec(NamedTuple):
    """What :func:`scan_window` reads of BG: its window ``lo..hi`` at ``mid`` size; only
    the keyframes first when it is ``large``; every ``every``-th reference frame."""

    fg_samples: list[int]
    lo: int
    hi: int
    mid: MidSize
    large: bool
    every: int


def scan_spec(nb: int, nf: int, fps: float, bg_size: tuple[int, int], fg_size: tuple[int, int],
              at: tuple[float, ...] = COARSE_AT, key_pixels: int = 150_000_000) -> ScanSpec:
    """The window :func:`scan_window` reads (known from the probes alone: a pass that decodes
    BG anyway can keep those frames as it goes)."""
    (bw, bh), (fw, fh) = bg_size, fg_size
    fg_samples, lo, hi = window_plan(nf, nb, fps, at)
    if hi - lo + 1 > WINDOW_MAX:  # (long inputs) the middle of it: its keyframes are read
        lo = max(0, (lo + hi) // 2 - WINDOW_MAX // 2)
        hi = min(nb - 1, lo + WINDOW_MAX - 1)
    return ScanSpec(fg_samples, lo, hi, mid_size(bw, bh, fw, fh), (hi - lo + 1) * bw * bh >= key_pixels,
                    max(1, math.ceil((hi - lo + 1) / 640)))


def mid_size(bw: int, bh: int, fw: int, fh: int) -> MidSize:
    """Mid-size BG copies (zimg, or FFmpeg's scaler while decoding): long side ~480, FG's
    footprint at scale 1 at least 48 px on its short side."""
    fm = min(1.0, max(480 / max(bw, bh), 48 / min(fw, fh)))
    sw, sh = max(16, int(round(bw * fm))), max(16, int(round(bh * fm)))
    return MidSize(sw, sh, sw / bw, sh / bh)
