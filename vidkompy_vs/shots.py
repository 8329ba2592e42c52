"""Shot boundaries from the fingerprints the prepass already has (no extra decode).

A cut is a frame whose change from the previous frame stands out against the changes
around it (in the spirit of PySceneDetect's adaptive detector): the plain change would
flag fast motion, a fixed threshold would miss cuts between similar shots.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .fingerprint import area_reduce, normalise

__all__ = ["Cuts", "CutSettings", "find_cuts", "shot_ranges"]

# Small planes: a cut changes the whole picture, motion and noise mostly the detail.
CUT_SIZE = (16, 9)


class CutSettings(NamedTuple):
    min_change: float = 0.25  # 1 - correlation with the previous frame at least this ...
    ratio: float = 4.0  # ... and this many times the median change of the frames around
    window: int = 6  # frames each side the median is taken over
    min_shot: int = 4  # frames: a shorter shot is a flash, not a shot


class Cuts(NamedTuple):
    starts: list[int]  # the first frame of each shot after the first (sorted)
    change: np.ndarray  # (N,) per-frame change from the previous frame (0 for frame 0)


def frame_change(planes: np.ndarray) -> np.ndarray:
    """1 - correlation of each frame's small plane with the previous one's (0 for frame 0)."""
    n = len(planes)
    out = np.zeros(n, np.float32)
    if n < 2:
        return out
    v = np.empty((n, CUT_SIZE[0] * CUT_SIZE[1]), np.float32)
    for lo in range(0, n, 4096):
        hi = min(n, lo + 4096)
        v[lo:hi] = normalise(area_reduce(planes[lo:hi], CUT_SIZE).reshape(hi - lo, -1))
    out[1:] = 1.0 - np.einsum("ij,ij->i", v[1:], v[:-1])
    # (a flat frame, a fade's black, normalises to zeros: a change of 1 from anything; the
    # clip only keeps rounding inside 1 - correlation's range)
    return np.clip(out, 0.0, 2.0)


DEFAULT_CUTS = CutSettings()


def find_cuts(planes: np.ndarray, cfg: CutSettings = DEFAULT_CUTS) -> Cuts:
    """Where new shots start in ``planes`` ((N, h, w) uint8 fingerprints)."""
    d = frame_change(planes)
    n = len(d)
    if n < 2:
        return Cuts([], d)
    w = cfg.window
    pad = np.pad(d, w, mode="edge")
    # the neighbours' typical change, the frame itself excluded: a high quantile, since
    # an input at a higher rate than its source repeats frames (changes of 0 between them)
    win = np.lib.stride_tricks.sliding_window_view(pad, 2 * w + 1)
    neigh = np.quantile(np.delete(win, w, axis=1), 0.75, axis=1)
    both = d >= cfg.ratio * np.maximum(neigh, 0.01)
    # A cut into (or out of) fast motion: the frames on that side change a lot too, so the
    # change stands out against the calm side only; it must still top the window and be
    # twice the busy side's typical change (motion that starts builds up, it does not jump).
    before, after = win[:, :w], win[:, w + 1:]
    top = d >= win.max(axis=1)
    one = top & (((d >= cfg.ratio * np.maximum(np.quantile(before, 0.75, axis=1), 0.01))
                  & (d >= 0.5 * cfg.ratio * np.median(after, axis=1)))
                 | ((d >= cfg.ratio * np.maximum(np.quantile(after, 0.75, axis=1), 0.01))
                    & (d >= 0.5 * cfg.ratio * np.median(before, axis=1))))
    cand = np.flatnonzero((d >= cfg.min_change) & (both | one))
    starts: list[int] = []
    for i in cand.tolist():
        if i < 1:
            continue
        if starts and i - starts[-1] < cfg.min_shot:
            # two changes close together: a flash or a dissolve's steps: keep the stronger
            if d[i] > d[starts[-1]]:
                starts[-1] = i
            continue
        starts.append(i)
    if starts and n - starts[-1] < cfg.min_shot:
        starts.pop()
    return Cuts(starts, d)


def shot_ranges(starts: list[int], n: int) -> list[tuple[int, int]]:
    """Shots as (first frame, end) half-open ranges covering 0..n."""
    bounds = [0, *[s for s in starts if 0 < s < n], n]
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
