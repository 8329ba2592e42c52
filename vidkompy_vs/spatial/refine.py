"""The refinement after the temporal map: estimates on matched frame pairs spread over
FG, combined robustly (median, outlier rejection); a consistent drift of the per-sample
positions (BG framing pans or zooms relative to FG) becomes a per-frame track."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from ..alignment import Placement, Spatial
from ..errors import VidkompyError
from ..numeric import median_nearest
from .common import Pyramid, best_method, check_fit, combine, picture
from .pair import estimate_full, estimate_prior, score_at
from .reads import FrameClock
from .samples import refine_samples

if TYPE_CHECKING:
    import vapoursynth as vs

# estimates for FG frames ``ids``, each around its prior, within a radius (BG px)
Estimator = Callable[[list[int], list[Placement], float], list[Placement]]


def _sample_ids(nf: int, unc: set[int]) -> list[int]:
    """:func:`refine_samples` without the uncovered frames (spread over the covered
    part instead when most of FG lies outside BG)."""
    idx = [i for i in refine_samples(nf) if i not in unc]
    if len(idx) < 3 and len(unc) < nf:
        cov = np.array([i for i in range(nf) if i not in unc])
        idx = sorted({int(cov[int(round(q * (len(cov) - 1)))]) for q in np.linspace(0.04, 0.96, 9)})
    return idx or refine_samples(nf)


class _PairEstimates:
    """Estimates on matched pairs (FG frame i over BG frame ``frame_map[i]``), keeping
    the grey pictures read (``pairs``) for the static fit."""

    def __init__(self, bg: vs.VideoNode, fg: vs.VideoNode, frame_map: list[int], clock: FrameClock,
                 frames: Mapping[str, Mapping[int, np.ndarray]] | None, prior: Placement,
                 scale: float | None) -> None:
        self.bg, self.fg, self.frame_map, self.clock = bg, fg, frame_map, clock
        self.have_fg = dict((frames or {}).get("fg") or {})
        self.have_bg = dict((frames or {}).get("bg") or {})
        self.prior, self.scale = prior, scale
        self.pairs: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # grey FG sample, its BG partner

    def _read(self, ids: list[int]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        fgs = self.clock.frames(self.fg, ids, self.have_fg)
        bgs = self.clock.frames(self.bg, [self.frame_map[i] for i in ids], self.have_bg)
        self.pairs.update(zip(ids, zip(fgs, bgs, strict=False), strict=False))
        return fgs, bgs

    def around(self, ids: list[int], priors: list[Placement], rad: float) -> list[Placement]:
        """Estimates for FG frames ``ids``, each around its own prior."""
        fgs, bgs = self._read(ids)
        return [estimate_prior(Pyramid(picture(a)), Pyramid(picture(b)), pr, self.scale, rad, fallback=False)
                for a, b, pr in zip(fgs, bgs, priors, strict=False)]

    def outward(self, ids: list[int], rad: float) -> list[Placement]:
        """Estimates for FG frames ``ids`` from the middle sample outwards, each around
        its confident neighbour's result (follows a wide pan)."""
        fgs, bgs = self._read(ids)
        scale, prior = self.scale, self.prior
        out: list[Placement | None] = [None] * len(ids)
        m = len(ids) // 2
        fm, bm = Pyramid(picture(fgs[m])), Pyramid(picture(bgs[m]))
        out[m] = mid = estimate_prior(fm, bm, prior, scale, rad)
        if mid.confidence < 0.8:
            # a doubtful prior (the coarse pass can be fooled, e.g. by zooming content
            # that matches itself at another time and scale): on this matched pair, a
            # search without it decides
            full = estimate_full(fm, bm, scale)
            if full.confidence > mid.confidence:
                out[m] = mid = full

        def side(order: range) -> None:
            last = mid
            for i in order:
                pr = last if last.confidence >= 0.5 else prior
                # no full-frame fallback here: one slow search per sample on a clip where
                # FG is not in BG would cost seconds; a weak sample is simply outvoted
                out[i] = e = estimate_prior(Pyramid(picture(fgs[i])), Pyramid(picture(bgs[i])), pr, scale, rad,
                                            fallback=False)
                if e.confidence >= 0.5:
                    last = e

        # the two sides are independent chains, and OpenCV lets go of the interpreter: side
        # by side on two cores (the decodes have ended by now)
        with ThreadPoolExecutor(max_workers=1) as pool:
            later = pool.submit(side, range(m + 1, len(ids)))
            side(range(m - 1, -1, -1))
            later.result()  # (its error, if any, raised here)
        return out  # type: ignore[return-value]


def _drifting(ests: list[Placement], fw: int, fh: int) -> np.ndarray | None:
    """Indices of the samples that show a drift, or ``None`` when they do not drift.

    Drift: the samples move by more than half a pixel (footprint corners), and
    smoothly: far more than their noise, estimated from second differences (which a
    slow, smooth motion barely has). A lone outlier is removed first against a running
    median (exact for a steady pan). Only from good matches: positions found on content
    that is not FG can look like a drift.
    """
    conf = np.array([e.confidence for e in ests])
    conf_ok = conf >= 0.5 * max(e.confidence for e in ests)
    if conf_ok.sum() < 5 or np.median(conf) < 0.6:
        return None
    a = np.array([[e.x, e.y, e.scale] for e in ests])
    av = a[conf_ok] * np.array([1.0, 1.0, float(max(fw, fh))])
    dev = np.abs(av - median_nearest(av, 3)).max(axis=1)
    ok = dev <= max(0.75, 4 * 1.4826 * float(np.median(dev)))
    if ok.sum() < 5:
        return None
    av = av[ok]
    # span of the 3-median: one odd sample (a scale that did not snap, a window on a
    # moving object) is no drift; a real one moves several samples
    sm = median_nearest(av, 3)
    span = sm.max(axis=0) - sm.min(axis=0)
    d2 = av[2:] - 2 * av[1:-1] + av[:-2]
    noise = 1.4826 * np.median(np.abs(d2), axis=0) / math.sqrt(6)
    if not np.any((span > 0.5) & (span > 6 * np.maximum(noise, 0.02))):
        return None
    return np.flatnonzero(conf_ok)[ok]


def refine_from_clips(bg: vs.VideoNode, fg: vs.VideoNode, frame_map: list[int], *, prior: Placement,
                      scale: float | None = None,
                      frames: Mapping[str, Mapping[int, np.ndarray]] | None = None,
                      uncovered: Iterable[int] | None = None,
                      stats: dict[str, float] | None = None) -> Spatial:
    """Placement from temporally matched pairs (FG frame i over BG frame ``frame_map[i]``).

    Several FG frames spread over the clip (:func:`refine_samples`) are estimated around
    ``prior`` and combined by the median after outlier rejection. When the per-sample
    positions drift consistently by more than ~0.5 px, FG frames are sampled densely and
    ``track`` gets one ``[x, y, scale]`` per FG frame, smoothly interpolated between samples.

    ``frames`` = ``{"fg": {i: grey}, "bg": {j: grey}}``: full-size grey (luma) pictures
    already decoded (e.g. kept from a sequential fingerprint pass); frames not there are
    read from the clips (random access: slow on long-GOP inputs).

    ``uncovered``: FG frames BG does not cover (their map entry is clamped to BG's first or
    last frame, which does not show them): never sampled, since a position measured on a
    wrong partner could pass for framing drift.

    ``stats``, when given, is filled with decode_s, reads, compute_s, compute_cpu_s,
    spread_px and samples.
    """
    clock = FrameClock()
    nf = fg.num_frames
    if len(frame_map) != nf:
        raise VidkompyError(f"frame map has {len(frame_map)} entries; FG has {nf} frames")
    check_fit(fg.width, fg.height, bg.width, bg.height, scale)
    fh, fw = fg.height, fg.width
    unc = {int(i) for i in uncovered} if uncovered is not None else set()
    idx = _sample_ids(nf, unc)
    matched = _PairEstimates(bg, fg, frame_map, clock, frames, prior, scale)
    ests = matched.outward(idx, max(24.0, 0.08 * min(fw, fh) * prior.scale))
    p, inl, spread = combine(ests)
    track = None
    track_conf = 0.0
    keep = _drifting(ests, fw, fh)
    if keep is not None:
        fixed = static_fit(matched.pairs, [idx[i] for i in keep], [ests[i] for i in keep], p)
        if fixed is not None:  # scattered, not drifting: the placement that fits all
            p = Placement(fixed.x, fixed.y, fixed.scale, p.confidence, fixed.method)
            spread = 0.0
        else:
            track, track_conf = follow(matched.around, [ests[i] for i in keep], [idx[i] for i in keep], nf, scale,
                                       fw, fh, unc)
            inl = np.zeros(len(ests), bool)
            inl[keep] = True
    if stats is not None:
        stats.clear()
        stats.update(clock.stats(spread_px=spread, samples=float(len(idx))))
    if track is not None:
        x, y, s = (float(v) for v in np.median(np.asarray(track), axis=0))
        return Spatial(x=x, y=y, scale=s, confidence=float(track_conf), method="track",
                       track=[[float(v) for v in row] for row in track])
    med_rho = float(np.median([e.confidence for e in np.array(ests, dtype=object)[inl]]))
    med_rho *= float(inl.sum()) / len(ests)  # share of samples that agree
    return Spatial(x=p.x, y=p.y, scale=p.scale, confidence=float(med_rho * math.exp(-spread / 1.0)),
                   method=best_method(ests), track=None)


def static_fit(pairs: Mapping[int, tuple[np.ndarray, np.ndarray]], ids: list[int],
               ests: list[Placement], median: Placement) -> Placement | None:
    """One fixed placement that fits every sample about as well as its own fit, if any.

    On smooth, low-detail content (an upscaled, blurry picture) a pair correlates at 0.999
    a few pixels off the truth, so the per-sample positions scatter and look like drift.
    A real drift makes any fixed placement clearly worse for the samples that moved. The
    candidates are the samples' median (noise averages out), then their own placements,
    best matches first; one that fits each sample within a quarter of what that sample's
    own fit leaves unexplained wins.
    """
    if any(i not in pairs for i in ids):
        return None
    imgs = [tuple(Pyramid(picture(a)) for a in pairs[i]) for i in ids]
    own = [score_at(f, b, e, 0) for (f, b), e in zip(imgs, ests, strict=False)]
    for c in [median] + [ests[k] for k in sorted(range(len(ests)), key=lambda k: -own[k])[:3]]:
        if all(score_at(f, b, c, 0) >= o - max(1e-4, 0.25 * (1.0 - o)) for (f, b), o in zip(imgs, own, strict=False)):
            return c
    return None


def follow(estimator: Estimator, ests: list[Placement], idx: list[int], nf: int, scale: float | None,
           fw: int, fh: int, unc: set[int] | None = None) -> tuple[list[list[float]], float]:
    """A track: dense samples (every few frames) estimated around the sparse ones'
    interpolation, outliers dropped, then interpolated to every frame.

    Returns the track (one ``[x, y, scale]`` per FG frame) and its confidence (median
    sample confidence times the share of samples kept)."""
    from scipy.interpolate import PchipInterpolator

    step = max(1, int(round(nf / 32)))
    dense = sorted((set(range(0, nf, step)) | {nf - 1}) - (unc or set()) | set(idx))
    have = dict(zip(idx, ests, strict=False))
    t_sp = np.array(idx, float)
    a_sp = np.array([[e.x, e.y, e.scale] for e in ests])
    todo = [i for i in dense if i not in have]
    priors = []
    for i in todo:
        v = [float(np.interp(i, t_sp, a_sp[:, j])) for j in range(3)]
        priors.append(Placement(v[0], v[1], v[2], 1.0, "track"))
    # a prior from interpolated neighbours is good to a few px: search tightly
    for i, e in zip(todo, estimator(todo, priors, 8.0), strict=False):
        have[i] = e
    t = np.array(dense, float)
    a = np.array([[have[i].x, have[i].y, have[i].scale] for i in dense])
    c = np.array([have[i].confidence for i in dense])
    # drop outliers against a 5-sample running median before interpolating
    ok = c >= 0.5 * np.median(c)
    for j in range(3):
        ref = median_nearest(a[:, j], 5)
        tol = 1.5 if j < 2 else 1.5 / max(fw, fh)
        ok &= np.abs(a[:, j] - ref) <= tol
    if ok.sum() < 2:
        ok[:] = True
    conf = float(np.median(c[ok])) * float(ok.mean())
    t, a = t[ok], a[ok]
    # No smoothing of the samples: each is good to a few hundredths of a pixel, and a
    # tap filter over unevenly spaced samples would shift them in time (biasing a pan).
    out = np.empty((nf, 3))
    tt = np.arange(nf, dtype=float)
    for j in range(3):
        if len(t) >= 2:
            out[:, j] = PchipInterpolator(t, a[:, j], extrapolate=True)(tt)
        else:
            out[:, j] = a[0, j]
    if scale is not None:
        out[:, 2] = scale
    return out.tolist(), conf
