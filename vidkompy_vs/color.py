"""Match BG's colours to FG's: per shot, one curve per plane, fitted where they overlap.

A regenerated or re-encoded BG often differs from FG in brightness, contrast, saturation
or gamma; laid under FG, that shows as a hard seam along FG's edge even when every pixel
is placed right. FG is the master, so BG moves: for each shot a handful of matched frame
pairs are read small (FG and the BG area under it, both resampled to the same size and
blurred, so FG being sharper or BG softer changes little), each plane's values are
quantile-mapped (BG's distribution onto FG's: monotone, and symmetric in the two, so
noise does not flatten the curve as a least-squares fit of one on the other would), and
the curve is applied to the whole BG frame as a ``std.Lut``.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import vapoursynth as vs

from .alignment import Alignment
from .errors import VidkompyError

core = vs.core
log = logging.getLogger(__name__)

# Quantiles the curve passes through; the ends are left out so a few clipped or
# mismatched pixels do not bend it.
_QUANTILES = np.linspace(1.0, 99.0, 41)
# The overlap is read this many pixels wide (at most) and trimmed by this share at each
# edge, where misplacement by a pixel or resampling ringing would mix the two pictures.
_SAMPLE_W = 160
_INSET = 0.04
# A curve that stays within this many code values (8-bit scale) of the identity is taken
# as "no shift": fitting noise between two encodes of the same picture should change
# nothing.
_IDENTITY_TOL = 1.0


def fit_curves(rbg: vs.VideoNode, fg: vs.VideoNode, alignment: Alignment, *, pairs: int = 6) -> list[list[np.ndarray]]:
    """Per shot, per plane of ``rbg``: a lookup table (``2**bits`` entries) taking BG's
    values to FG's. ``rbg`` is BG on FG's clock (:func:`filters.remap`) in FG's format.

    Fitted on up to ``pairs`` FG frames per shot (evenly spaced, uncovered frames skipped).
    A shot with nothing to fit on (all uncovered, or FG off BG) keeps the identity.
    """
    fmt = rbg.format
    if fmt is None or fmt.sample_type != vs.INTEGER:
        raise VidkompyError("colour matching needs a clip with integer samples (8-16 bit)")
    if rbg.num_frames != fg.num_frames:
        raise VidkompyError(f"colour matching needs BG on FG's clock: BG has {rbg.num_frames} frames, "
                            f"FG {fg.num_frames}")
    n_codes = 1 << fmt.bits_per_sample
    shots = _shot_ranges(alignment)
    uncovered = set(alignment.temporal.uncovered)
    out: list[list[np.ndarray]] = []
    for k, (a, b) in enumerate(shots):
        frames = [n for n in range(a, b) if n not in uncovered]
        if len(frames) > pairs:
            frames = [frames[int(i)] for i in np.linspace(0, len(frames) - 1, pairs).round()]
        samples = [s for s in (_sample(rbg, fg, alignment, n) for n in frames) if s is not None]
        if not samples:
            log.info("shot %d: nothing to fit colours on; BG left as it is", k)
            out.append([np.arange(n_codes) for _ in range(fmt.num_planes)])
            continue
        bgv = np.concatenate([s[0] for s in samples], axis=1)
        fgv = np.concatenate([s[1] for s in samples], axis=1)
        out.append([_curve(bgv[p], fgv[p], n_codes) for p in range(fmt.num_planes)])
    return out


def apply_curves(rbg: vs.VideoNode, curves: list[list[np.ndarray]], shot_of_frame: list[int]) -> vs.VideoNode:
    """``rbg`` with each frame's planes passed through its shot's curves."""
    if rbg.num_frames != len(shot_of_frame):
        raise VidkompyError(f"shot list has {len(shot_of_frame)} entries; the clip has {rbg.num_frames} frames")
    fixed = [_lut(rbg, c) for c in curves]
    if len(fixed) == 1:
        return fixed[0]
    return core.std.FrameEval(rbg, lambda n: fixed[shot_of_frame[n]])


def _lut(clip: vs.VideoNode, curves: list[np.ndarray]) -> vs.VideoNode:
    for p, c in enumerate(curves):
        if np.array_equal(c, np.arange(len(c))):
            continue  # the identity: no filter at all
        clip = core.std.Lut(clip, planes=[p], lut=c.astype(np.int64).tolist())
    return clip


def _shot_ranges(al: Alignment) -> list[tuple[int, int]]:
    """FG frame ranges per shot index (frames outside every shot belong to shot 0, as in
    ``Alignment.shot_index``)."""
    if not al.shots:
        return [(0, al.fg.frames)]
    idx = np.asarray(al.shot_index())
    out = []
    for k in range(len(al.shots)):
        hit = np.flatnonzero(idx == k)
        out.append((int(hit[0]), int(hit[-1]) + 1) if hit.size else (0, 0))
    return out


def _sample(rbg: vs.VideoNode, fg: vs.VideoNode, al: Alignment, n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """FG frame ``n`` and the BG area under it, each as (planes, pixels) at one small size.

    Both are read through zimg (a proper low-pass when shrinking) in a non-subsampled
    format, then blurred, so the pairs compare the same picture at the same sharpness.
    """
    x, y, s = al.spatial.at(n)
    # only FG's picture area: bars baked into FG would pair with BG's picture under them
    ax, ay, aw, ah = al.active_at(n) or (0, 0, fg.width, fg.height)
    # the active area in BG pixels, cut to BG, trimmed at its edges
    bx0, by0 = max(0.0, x + ax * s), max(0.0, y + ay * s)
    bx1, by1 = min(float(rbg.width), x + (ax + aw) * s), min(float(rbg.height), y + (ay + ah) * s)
    ix, iy = (bx1 - bx0) * _INSET, (by1 - by0) * _INSET
    bx0, bx1, by0, by1 = bx0 + ix, bx1 - ix, by0 + iy, by1 - iy
    if bx1 - bx0 < 8 or by1 - by0 < 8:
        return None
    tw = int(min(_SAMPLE_W, bx1 - bx0))
    th = max(4, int(round(tw * (by1 - by0) / (bx1 - bx0))))
    fmt = rbg.format
    full = core.query_video_format(fmt.color_family, fmt.sample_type, fmt.bits_per_sample, 0, 0)
    geo = {"width": tw, "height": th, "format": full.id}
    b = core.resize.Bilinear(rbg[n], src_left=bx0, src_top=by0, src_width=bx1 - bx0, src_height=by1 - by0, **geo)
    f = core.resize.Bilinear(fg[n], src_left=(bx0 - x) / s, src_top=(by0 - y) / s, src_width=(bx1 - bx0) / s,
                             src_height=(by1 - by0) / s, **geo)
    return _planes(b.get_frame(0)), _planes(f.get_frame(0))


def _planes(frame: vs.VideoFrame) -> np.ndarray:
    import cv2

    return np.stack([cv2.GaussianBlur(np.asarray(frame[p], dtype=np.float32), (0, 0), 1.0).ravel()
                     for p in range(frame.format.num_planes)])


def _curve(bgv: np.ndarray, fgv: np.ndarray, n_codes: int) -> np.ndarray:
    """A monotone lookup table taking BG's value distribution onto FG's.

    Between the outer quantiles it follows them; beyond, it goes on straight with the
    slope between the 10th and 90th percentiles, so values the sample never showed still
    map sensibly; the result is clamped to the code range.
    """
    xs = np.percentile(bgv, _QUANTILES)
    ys = np.percentile(fgv, _QUANTILES)
    # flat stretches of BG's distribution (posterised or clipped areas) give repeated
    # x; keep one point per x so the interpolation is a function
    xs, first = np.unique(xs, return_index=True)
    ys = np.maximum.accumulate(ys)[first]
    codes = np.arange(n_codes, dtype=np.float64)
    if xs.size < 2:
        lut = codes + (ys[0] - xs[0])  # a single level: only an offset can be read off it
    else:
        lo, hi = np.percentile(bgv, [10, 90]), np.percentile(fgv, [10, 90])
        slope = (hi[1] - hi[0]) / (lo[1] - lo[0]) if lo[1] > lo[0] else 1.0
        slope = float(np.clip(slope, 0.25, 4.0))
        lut = np.interp(codes, xs, ys)
        below, above = codes < xs[0], codes > xs[-1]
        lut[below] = ys[0] + (codes[below] - xs[0]) * slope
        lut[above] = ys[-1] + (codes[above] - xs[-1]) * slope
    lut = np.clip(np.rint(lut), 0, n_codes - 1).astype(np.int64)
    tol = _IDENTITY_TOL * (n_codes / 256)
    if np.abs(lut - codes)[int(math.floor(xs[0])):int(math.ceil(xs[-1])) + 1].max(initial=0) <= tol:
        return np.arange(n_codes)
    return lut
