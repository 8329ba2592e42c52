"""The coarse search before the temporal map: FG's middle frames against BG frames
around the proportional time, at reduced size, then full-resolution estimates on the
frame pairs found (:func:`coarse_from_clips`); or only the reduced search on BG's window,
for a caller that pairs the frames itself (:func:`scan_window`)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import cv2
import numpy as np

from .. import threads
from ..alignment import Placement
from ..numeric import peak
from .common import (
    FEATURE_BELOW,
    PREFER_ONE,
    Pyramid,
    best_method,
    check_fit,
    combine,
    fits,
    grad,
    grey,
    ncc_map,
    picture,
    reduced,
    resize,
    scale_grid,
)
from .fast import FastEstimate, Keypoints, confirmed, keypoints, similarity
from .pair import estimate_prior
from .reads import FrameClock, window_frames
from .samples import (
    COARSE_AT,
    WINDOW_MAX,
    MidSize,
    mid_size,
    scan_spec,
    window_plan,
)

if TYPE_CHECKING:
    import vapoursynth as vs

log = logging.getLogger(__name__)

# Keyframe pass of the coarse search (:func:`coarse_from_clips`): used with at least
# KEY_MIN keyframes in the window and an NCC peak of KEY_NCC1 there; the search on the
# stretch of reference frames it points to is kept with an NCC peak of KEY_NCC.
KEY_MIN = 4
KEY_PIXELS = 150_000_000  # (window frames x BG pixels; a smaller window decodes cheaply: no keyframe pass)
KEY_NCC1 = 0.3
KEY_NCC = 0.6


class Coarse(NamedTuple):
    """What :func:`coarse_from_clips` found."""

    placement: Placement  # in full BG pixels
    fg_samples: list[int]  # the FG frames matched (:func:`coarse_samples`)
    bg_picks: list[int]  # each FG sample's BG partner
    stats: dict[str, float]  # decode_s, reads, compute_s, compute_cpu_s (and key_frames, key_ncc, stretch)


class CoreResult(NamedTuple):
    """The reduced search on a set of BG candidates."""

    placement: Placement  # in mid-size pixels
    picks: list[int]  # each FG sample's partner among the candidates
    scale: float  # the search scale chosen
    score: float  # its NCC peak on the small copies


def small_factor(sw: int, sh: int, fg_mid: np.ndarray) -> float:
    """Mid size -> the small copies of the exhaustive search: long side ~160, FG's
    footprint (``fg_mid``, FG at mid size) at least 20 px."""
    return min(1.0, max(160 / max(sw, sh), 20 / min(fg_mid.shape)))


def thin(cand: list[int]) -> list[int]:
    """At most ~160 candidates: a codec without B-frames hands over every frame of the
    window, not only its reference frames."""
    return cand[::math.ceil(len(cand) / 160)] if len(cand) > 240 else cand


# -- the reduced search -----------------------------------------------------------------
def pc_spectra(crops: np.ndarray) -> np.ndarray:
    """Windowed, zero-mean spectra of ``crops`` (N, h, w) for :func:`pc_peaks`."""
    n, h, w = crops.shape
    win = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
    b = (crops - crops.mean(axis=(1, 2), keepdims=True, dtype=np.float32)) * win
    return np.fft.rfft2(b.astype(np.float32), axes=(1, 2))


def pc_peaks(tpl: np.ndarray, spectra: np.ndarray) -> np.ndarray:
    """Phase-correlation peak height of ``tpl`` against each crop behind ``spectra``."""
    h, w = tpl.shape
    win = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
    fa = np.fft.rfft2(((tpl - tpl.mean()) * win).astype(np.float32))
    r = spectra * np.conj(fa)
    r /= np.abs(r) + 1e-6
    c = np.fft.irfft2(r, s=(h, w), axes=(1, 2))
    # A sub-pixel shift splits the peak over its neighbours: sum the 3x3 around the
    # maximum, so that the height does not depend on the shift's fractional part.
    n = len(spectra)
    top = c.reshape(n, -1).argmax(axis=1)
    py, px = np.divmod(top, w)
    d = np.arange(-1, 2)
    yy = (py[:, None, None] + d[None, :, None]) % h
    xx = (px[:, None, None] + d[None, None, :]) % w
    return c[np.arange(n)[:, None, None], yy, xx].sum(axis=(1, 2))


@dataclass
class ReducedSearch:
    """FG's samples at BG's mid size and what the reduced search on BG candidates needs."""

    fgm: list[np.ndarray]  # FG samples resized to the mid copies' pixel size
    ft: float  # mid size -> small copies (:func:`small_factor`)
    scale: float | None  # fixed scale, or None (free)
    fw: int
    fh: int
    bw: int
    bh: int

    @property
    def mid_i(self) -> int:
        return len(self.fgm) // 2

    def run(self, cand: list[int], mids: list[np.ndarray], force: bool = False,
            partners: bool = True) -> CoreResult | None:
        """:func:`coarse_core` on BG candidates ``cand`` (their mid-size grey copies ``mids``)."""
        return coarse_core(self, cand, mids, force=force, partners=partners)


def _small_searcher(search: ReducedSearch, mids: list[np.ndarray]
                    ) -> Callable[[np.ndarray, float, list[int]], list[tuple[float, float, float]]]:
    """A search of one FG image at a scale over chosen small BG copies."""
    ft = search.ft
    smalls = reduced(mids, ft)
    small_d = [(a, grad(a)) for a in smalls]
    th_, tw_ = smalls[0].shape

    def srch(img: np.ndarray, s: float, frames: list[int]) -> list[tuple[float, float, float]]:
        """(score, x, y) of FG image ``img`` scaled by ``s`` per small frame, x/y in mid px."""
        tg = resize(img, s * ft)
        if tg.shape[1] > tw_ or tg.shape[0] > th_ or min(tg.shape) < 4:
            return [(-1.0, 0.0, 0.0)] * len(frames)
        tpl = (tg, grad(tg))
        out = []
        for j in frames:
            sc, x, y = peak(ncc_map(small_d[j], tpl))
            out.append((sc, x / ft, y / ft))
        return out

    return srch


def _scales(search: ReducedSearch, srch: Callable, n_cand: int) -> list[float]:
    """Scales worth searching on every candidate: the full grid on a few BG frames
    spread over the window; the best few distinct scales plus 1.0."""
    if search.scale is not None:
        return [search.scale]
    grid = scale_grid(search.fw, search.fh, search.bw, search.bh, step=1.05)
    probe = sorted(set(np.linspace(0, n_cand - 1, min(5, n_cand)).round().astype(int).tolist()))
    per_s = [max(r[0] for r in srch(search.fgm[search.mid_i], s, probe)) for s in grid]
    scales: list[float] = []
    for i in np.argsort(per_s)[::-1]:
        if all(abs(math.log(grid[i] / t)) > 0.08 for t in scales):
            scales.append(grid[i])
        if len(scales) == 3:
            break
    if 1.0 in grid and 1.0 not in scales:
        scales.append(1.0)
    return scales


def _feature_scale(search: ReducedSearch, mids: list[np.ndarray]) -> float | None:
    """FG's scale from keypoints (:mod:`.fast`): FG's middle sample against the window's
    middle candidate, then, only when that one is not confirmed, against its first and
    last (the best confirmed one); ``None`` when none is. One detection per picture
    instead of the grid's NCC maps at every scale. (The scale is rough, and searched
    around afterwards: the three confirmed ones of the speed pairs agreed within 0.1 %,
    so the middle one, confirmed, settles it: 40 % of the work of all three.)"""
    try:
        fimg = search.fgm[search.mid_i]
        fp = Pyramid(fimg)

        def one(fk: Keypoints, j: int, bk: Keypoints | None = None) -> FastEstimate | None:
            sim = similarity(fk, keypoints(mids[j]) if bk is None else bk)
            return None if sim is None else confirmed(fp, Pyramid(picture(mids[j])), sim)

        js = sorted(set(np.linspace(0, len(mids) - 1, min(3, len(mids))).round().astype(int).tolist()))
        mid = js[len(js) // 2]
        # (side by side: OpenCV lets go of the interpreter, and the search has a core to
        # itself by now; FG's keypoints beside the middle candidate's)
        with ThreadPoolExecutor(max_workers=2) as pool:
            fk_job = pool.submit(keypoints, fimg)
            bk_mid = keypoints(mids[mid])
            fk = fk_job.result()
            best = one(fk, mid, bk_mid)
            if best is None:
                for got in pool.map(lambda j: one(fk, j), [j for j in js if j != mid]):
                    if got is not None and (best is None or got.ncc > best.ncc):
                        best = got
    except (cv2.error, ValueError) as e:  # the grid stands in
        log.warning("keypoint scale skipped: %s", str(e).strip().splitlines()[-1])
        return None
    return None if best is None else best.placement.scale


def _partners(search: ReducedSearch, cand: list[int], mids: list[np.ndarray], pm: Placement) -> list[int]:
    """Each FG sample's partner: the sharpest phase-correlation peak of FG against the
    same footprint of every candidate. The peak height barely depends on a small shift,
    so a moving camera (neighbouring frames match almost as well, shifted) does not fool
    it the way NCC at a fixed position does."""
    sh, sw = mids[0].shape
    x_m, y_m = int(round(pm.x)), int(round(pm.y))
    th, tw = resize(search.fgm[0], pm.scale).shape
    th, tw = min(th, sh - y_m), min(tw, sw - x_m)
    # at most 128 px a side: the centre of the footprint is enough to tell frames apart
    ch, cw = min(th, 128), min(tw, 128)
    v0, u0 = (th - ch) // 2, (tw - cw) // 2
    spectra = pc_spectra(np.stack([grey(m[y_m + v0:y_m + v0 + ch, x_m + u0:x_m + u0 + cw]) for m in mids]))
    picks = []
    for g in search.fgm:
        t = resize(g, pm.scale)[v0:v0 + ch, u0:u0 + cw]
        picks.append(cand[int(np.argmax(pc_peaks(t, spectra)))])
    return picks


def coarse_core(search: ReducedSearch, cand: list[int], mids: list[np.ndarray], *,
                force: bool = False, partners: bool = True) -> CoreResult | None:
    """The reduced search on BG candidates ``cand`` (their mid-size grey copies ``mids``):
    1) the scale: from keypoints on a few candidates (:func:`_feature_scale`), else a grid
    of scales on small copies of every few candidates; the rough position at it, on small
    copies of every few candidates; 2) scale and position on the
    mid copy of the best one (affine ECC when the scale is free); 3) each FG sample's
    partner (:func:`_partners`). ``None`` when nothing fits (unless ``force``)."""
    srch = _small_searcher(search, mids)
    quick = _feature_scale(search, mids) if search.scale is None else None
    # (scale 1 beside a keypoint scale near it: the preference for 1 below decides)
    scales = _scales(search, srch, len(cand)) if quick is None else \
        [quick] + ([1.0] if abs(quick - 1) < 0.03 and fits(search.fw, search.fh, search.bw, search.bh, 1.0) else [])
    # (every few frames: this only has to find the scale and the rough position)
    allj = list(range(0, len(cand), max(1, len(cand) // 40)))
    res = {s: srch(search.fgm[search.mid_i], s, allj) for s in scales}
    if quick is not None and max(r[0] for v in res.values() for r in v) < FEATURE_BELOW:
        # the keypoints' scale does not hold on the window: the grid after all
        res.update({s: srch(search.fgm[search.mid_i], s, allj) for s in _scales(search, srch, len(cand))
                    if s not in res})
        scales = list(res)
    best_s = max(scales, key=lambda s: max(r[0] for r in res[s]))
    if 1.0 in res and max(r[0] for r in res[1.0]) >= max(r[0] for r in res[best_s]) - PREFER_ONE:
        best_s = 1.0
    j0 = int(np.argmax([v[0] for v in res[best_s]]))
    sc0, x0, y0 = res[best_s][j0]
    if sc0 <= -1.0 and not force:
        return None
    j0 = allj[j0]
    pm = estimate_prior(Pyramid(search.fgm[search.mid_i]), Pyramid(picture(mids[j0])), Placement(x0, y0, best_s, sc0),
                        search.scale, 2 / search.ft + 2, rough_scale=search.scale is None)
    # (``partners=False``: a caller that pairs the frames itself, from fingerprints)
    return CoreResult(pm, _partners(search, cand, mids, pm) if partners else [], float(best_s), float(sc0))


# -- BG's window ------------------------------------------------------------------------
@dataclass
class Scan:
    """BG frames around FG's middle at mid size, and FG's rough footprint among them."""

    frames: dict[int, np.ndarray]  # BG frame number -> grey picture at mid size
    fx: float  # mid size / full size, across and down
    fy: float
    placement: Placement  # in full BG pixels; good to a few pixels


def _fps(clip: vs.VideoNode) -> float:
    return float(clip.fps) if clip.fps.numerator else 25.0


def scan_window(bg: vs.VideoNode, fg: vs.VideoNode, fg_imgs: Callable[[], list[np.ndarray] | None], *,
                bg_path: str | vs.VideoNode, scale: float | None = None,
                at: tuple[float, ...] = COARSE_AT,
                held: Callable[[int, int, float, tuple[int, int], bool], dict[int, np.ndarray] | None] | None = None
                ) -> Scan | None:
    """The first half of :func:`coarse_from_clips`, for a caller that then finds the
    frame pairs itself (from FG's fingerprints): BG's window around FG's middle read by
    one sequential decode at mid size (only the keyframes when the window is large and has
    at least :data:`KEY_MIN` of them; only the reference frames otherwise), and the search
    of FG's middle frames on them (:func:`coarse_core`). ``fg_imgs()`` gives those
    (full-size grey pictures of :func:`coarse_samples` ``at``, or ``None``); it is called
    once BG's window is in, so it may wait for a decode that runs meanwhile. ``held``
    (lo, hi, fps, size, keys): the same keyframes (``keys``) or reference frames as the
    sequential decode gives them, from a decode of BG that runs anyway
    (:meth:`fingerprint.LateCrop.window`), or ``None``.

    ``None`` when the window cannot be read that way (not numbered by constant
    rate timestamps) or no footprint stands out.
    """
    bw, bh, fw, fh = bg.width, bg.height, fg.width, fg.height
    check_fit(fw, fh, bw, bh, scale)
    fps = _fps(bg)
    spec = scan_spec(bg.num_frames, fg.num_frames, fps, (bw, bh), (fw, fh), at, key_pixels=KEY_PIXELS)
    fg_samples, lo, hi, mid = spec.fg_samples, spec.lo, spec.hi, spec.mid
    got = None
    if spec.large:
        # (the keyframes: from the pass that decodes BG anyway, else a decode of them)
        got = held(lo, hi, fps, mid[:2], True) if held is not None else None
        if got is None:
            got = window_frames(bg_path, lo, hi, fps, mid[:2], src_size=(bw, bh), skip="nokey")
        if not got:
            return None
        if len(got) < KEY_MIN:
            # a short large-frame clip has one or two keyframes (a GOP of 250 is 10 s):
            # its reference frames then, as the coarse search would read them anyway
            got = None
    if got is None:
        every = spec.every
        if held is not None and every == 1:
            got = held(lo, hi, fps, mid[:2], False)
        if got is None:
            got = window_frames(bg_path, lo, hi, fps, mid[:2], src_size=(bw, bh), every=every)
        if not got or len(got) < 3:
            return None
    cand = thin(sorted(got))
    imgs = fg_imgs()
    if not imgs or len(imgs) != len(fg_samples):
        return None
    fgm = [resize(grey(g), mid.fx, mid.fy) for g in imgs]
    search = ReducedSearch(fgm, small_factor(mid.width, mid.height, fgm[0]), scale, fw, fh, bw, bh)
    r = search.run(cand, [got[j] for j in cand], partners=False)
    if r is None or r.score < KEY_NCC1:
        return None
    pm = r.placement
    return Scan({j: got[j] for j in cand}, mid.fx, mid.fy,
                Placement(pm.x / mid.fx, pm.y / mid.fy, pm.scale, pm.confidence, "scan"))


# -- coarse_from_clips ------------------------------------------------------------------
@dataclass
class _WindowReader:
    """Mid-size reads of BG's window by sequential decodes, timed as decoding."""

    path: str | vs.VideoNode  # BG's file, or BG itself when it is a caller's node (no file)
    fps: float
    mid: MidSize
    src_size: tuple[int, int]
    clock: FrameClock

    def read(self, a: int, b: int, skip: str = "bidir") -> dict[int, np.ndarray] | None:
        with self.clock.decoding():
            return window_frames(self.path, a, b, self.fps, self.mid[:2], src_size=self.src_size, skip=skip,
                                 every=1 if skip == "nokey" else max(1, math.ceil((b - a + 1) / 640)))


class _KeyPass(NamedTuple):
    """What the keyframe pass leaves: a search result, or the whole window, or neither."""

    result: CoreResult | None
    window: dict[int, np.ndarray] | None
    stats: dict[str, float]


def _stretches(picks: list[int], kc: list[int], lo: int, hi: int) -> list[list[int]]:
    """Around each partner found among keyframes ``kc``: from the keyframe before to the
    keyframe after (a partner lies between its keyframe's neighbours; decoding starts at
    the keyframe before anyway), merged where they overlap."""
    ivs: list[list[int]] = []
    for pk in sorted(set(picks)):
        a = max(lo, max([k for k in kc if k < pk], default=lo))
        b = min(hi, min([k for k in kc if k > pk], default=hi))
        if ivs and a <= ivs[-1][1]:
            ivs[-1][1] = max(ivs[-1][1], b)
        else:
            ivs.append([a, b])
    return ivs


def _chunks(ivs: list[list[int]], kc: list[int]) -> list[tuple[int, int]]:
    """The stretches as decodes run at once (a reference-frames-only decode is a serial
    chain, one core each): a long stretch in two at its middle keyframe (each part from
    a keyframe)."""
    chunks: list[tuple[int, int]] = []
    for a, b in ivs:
        inner = [k for k in kc if a < k < b]
        if inner and len(ivs) < 3:
            m = min(inner, key=lambda k: abs(k - (a + b) / 2))
            chunks += [(a, m), (m, b)]
        else:
            chunks.append((a, b))
    return chunks


def _keyframe_pass(search: ReducedSearch, keyframes: dict[int, np.ndarray], reader: _WindowReader,
                   pool: ThreadPoolExecutor, lo: int, hi: int) -> _KeyPass:
    """The search on BG's keyframes gives rough partners; the reference frames of only
    the stretches around them are then decoded and searched. Any doubt (a weak match, a
    partner at a stretch's edge): no result."""
    key_idx = sorted(keyframes)
    if float(np.median(np.diff(key_idx))) <= 2:  # intra-only: that was the whole window
        return _KeyPass(None, keyframes, {})
    r1 = search.run(key_idx, [keyframes[j] for j in key_idx])
    if r1 is None or r1.score < KEY_NCC1:
        return _KeyPass(None, None, {})
    ivs = _stretches(r1.picks, key_idx, lo, hi)
    parts = list(pool.map(lambda ab: reader.read(*ab), _chunks(ivs, key_idx)))
    g2 = {j: img for part in parts for j, img in part.items()} if all(parts) else {}
    if len(g2) < 3:
        return _KeyPass(None, None, {})
    c2 = sorted(g2)
    # the stretches' own first and last frames (not the cuts between parts)
    edges = {j for a, b in ivs for j in (min(k for k in c2 if k >= a), max(k for k in c2 if k <= b))} - {lo, hi}
    c2 = thin(c2)
    r2 = search.run(c2, [g2[j] for j in c2])
    # a partner on a stretch's edge may really lie beyond it
    if r2 is not None and r2.score >= max(KEY_NCC, r1.score - 0.05) and not edges & set(r2.picks):
        return _KeyPass(r2, None, {"key_frames": float(len(key_idx)), "key_ncc": r1.score,
                                   "stretch": float(sum(b - a + 1 for a, b in ivs))})
    return _KeyPass(None, None, {})


def coarse_from_clips(bg: vs.VideoNode, fg: vs.VideoNode, *, scale: float | None = None,
                      bg_path: str | vs.VideoNode | None = None) -> Coarse:
    """Placement before the temporal map exists.

    FG's middle frames are matched against BG frames around the proportional time, in a
    window of several seconds either side (BG may start earlier or later, its camera may
    move). BG's window is read once at a reduced size: a multi-scale NCC search on small
    copies finds the scale and rough position, refined on the mid-size copy; each FG
    frame's BG partner is the candidate with the highest phase-correlation peak over the
    footprint (a moving camera makes neighbouring frames match almost as well, shifted,
    which fools NCC at a fixed position); full-resolution estimates on those pairs are
    combined by the median. With a moving camera the partners can be a frame or two off,
    so expect a pixel or two of error here; :func:`refine_from_clips` removes it.

    ``bg_path`` (BG's file): the window is read by one sequential in-process decode of its
    reference frames (:func:`window_frames`) instead of random reads through the frame
    server, which decode every frame up to each target on long-GOP inputs. Its keyframes
    are read first (``skip="nokey"``, a small fraction of the decode): the search on
    them gives rough partners, and the reference frames are then decoded only from the
    keyframe before the earliest to the keyframe after the latest (windows of at least
    :data:`KEY_PIXELS` only). Few keyframes (fewer than :data:`KEY_MIN`), a weak match
    there or on that stretch, or a partner at the stretch's edge: the whole window is
    decoded as before. ``bg_path`` may be BG's node itself (a caller's, with no file):
    its window is then read through the frame server (:func:`window_frames`).
    """
    clock = FrameClock()
    bw, bh, fw, fh = bg.width, bg.height, fg.width, fg.height
    check_fit(fw, fh, bw, bh, scale)
    fps = _fps(bg)
    fg_samples, lo, hi = window_plan(fg.num_frames, bg.num_frames, fps)
    mid = mid_size(bw, bh, fw, fh)
    seq = bg_path is not None and hi - lo + 1 <= WINDOW_MAX
    reader = _WindowReader(bg_path if bg_path is not None else "", fps, mid, (bw, bh), clock)
    # FG's samples are random reads: beside BG's keyframe pass rather than before it
    pool = ThreadPoolExecutor(max_workers=4, initializer=threads.enter, initargs=(threads.environment(),))
    fg_read = pool.submit(clock.frames, fg, fg_samples)
    keyframes = reader.read(lo, hi, "nokey") if seq and (hi - lo + 1) * bw * bh >= KEY_PIXELS else None
    fgs = [grey(a) for a in fg_read.result()]
    # FG at the mid copies' pixel size, so that scales there are scales in full pixels
    fgm = [resize(g, mid.fx, mid.fy) for g in fgs]
    search = ReducedSearch(fgm, small_factor(mid.width, mid.height, fgm[0]), scale, fw, fh, bw, bh)
    key = _KeyPass(None, None, {})
    if seq:
        if keyframes and len(keyframes) >= KEY_MIN:
            key = _keyframe_pass(search, keyframes, reader, pool, lo, hi)
        del keyframes
        if key.result is None and key.window is None:
            key = key._replace(window=reader.read(lo, hi))
    pool.shutdown(wait=False)
    res = key.result or _whole_window(search, bg, clock, key.window, lo, hi, mid)
    pm, picks = res.placement, res.picks
    # three random reads (cheaper here than a second pass through the window)
    bg_partners = clock.frames(bg, picks)
    prior = Placement(pm.x / mid.fx, pm.y / mid.fy, pm.scale, pm.confidence, "ncc")
    radius = 3 / min(mid.fx, mid.fy) + 4
    ests = [estimate_prior(Pyramid(g), Pyramid(picture(b)), prior, scale, radius)
            for g, b in zip(fgs, bg_partners, strict=False)]
    p, _, spread = combine(ests)
    p.method = best_method(ests)
    # a moving camera leaves the picked partners a frame or two off: a few px of spread
    p.confidence = float(p.confidence * math.exp(-spread / 10.0))
    return Coarse(p, fg_samples, picks, clock.stats(**key.stats))


def _whole_window(search: ReducedSearch, bg: vs.VideoNode, clock: FrameClock, got: dict[int, np.ndarray] | None,
                  lo: int, hi: int, mid: MidSize) -> CoreResult:
    """The reduced search on the whole window: its decoded frames, or (not decoded)
    every few frames read through the frame server."""
    if got:
        cand = thin(sorted(got))
        mids = [got[j] for j in cand]
        del got
    else:
        cand = list(range(lo, hi + 1, max(1, math.ceil((hi - lo + 1) / 160))))
        mids = clock.frames(bg, cand, width=mid.width, height=mid.height)
    res = search.run(cand, mids, force=True)
    assert res is not None  # (forced)
    return res
