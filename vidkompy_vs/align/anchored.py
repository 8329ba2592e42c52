"""The footprint without sound, from FG's own fingerprints (the anchored finder).

BG's window around FG's middle, read at mid size (keyframes of a large one), gives a rough
footprint (:func:`spatial.scan_window`); those BG frames, cut there, are found among all of
FG's fingerprints (:func:`temporal.anchor_line`), and the best frame pair gives the exact
footprint, as the audio line's pair does. The line also says which BG frames to keep for
the refinement.

FG's pass is still running meanwhile: the anchors are first sought in the part decoded so
far, so that BG's pass can start before FG's ends; only when they are unclear there does
this wait for all of FG.
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from .. import fingerprint as fpm
from ..alignment import Placement, Spatial
from ..fingerprint import normalise
from ..sources import Probe, frame_arrays
from ..temporal import anchor_line, frame_anchors, line_through
from .footprint import AnchorLine, Context, Footprint
from .plan import ANCHOR_AT, anchor_samples

# at most this many BG frames of the scanned window are anchored (one dot product each
# against every FG fingerprint)
ANCHOR_FRAMES = 40


class Pair(NamedTuple):
    """FG frame ``fg`` (its grey picture ``img``) over a BG frame, placed at ``placement``."""

    fg: int
    img: np.ndarray
    placement: Placement


def anchored_search(ctx: Context) -> Footprint | None:
    """``None``: no clear anchors (the coarse search decides)."""
    return _Search(ctx).run()


class _Search:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.fg_probe, self.bg_probe = ctx.fg.probe, ctx.bg.probe
        self.watch, self.fg_pass = ctx.passes.watch, ctx.passes.fg_pass
        self.size = ctx.settings.fingerprint.size
        self.bfps, self.ffps = float(self.bg_probe.fps), float(self.fg_probe.fps)
        self.scale = ctx.req.scale
        self.samples = anchor_samples(self.fg_probe.frames)

    # -- pictures ---------------------------------------------------------------------
    def fg_samples(self) -> list[np.ndarray]:
        # (no pictures come from an FG whose grey the pass cannot make as the frame server
        # does; the pass then ends without them, and they are read here)
        kept = (fpm.grabs_exact(self.fg_probe.pix_fmt) or self.fg_probe.vfr) \
            and self.watch.wait(self.samples, self.fg_pass)
        if not kept and not self.fg_pass.is_alive():
            self.fg_pass.get()  # its error, if it failed; else none kept (fingerprints from the cache)
        return [self.read_fg(i) for i in self.samples]

    def read_fg(self, f: int) -> np.ndarray:
        got = self.watch.picture(f)
        return got if got is not None else frame_arrays(self.ctx.fg.clip, [f], gray=True)[0]

    def read_bg(self, k: int) -> np.ndarray:
        """BG frame ``k`` at full size (grey). It is one of the window's reference frames:
        a sequential decode of the reference frames up to it (``window_frames``) costs a
        fraction of a random read, which decodes every frame from the keyframe before it."""
        from ..spatial import window_frames

        size = self.bg_probe.width, self.bg_probe.height
        got = window_frames(self.ctx.bg.reads, k, k, self.bfps, size, src_size=size, want={k})
        if got is not None and k in got:
            return got[k]
        return frame_arrays(self.ctx.bg.clip, [k], gray=True)[0]

    def crop(self, img: np.ndarray, pl: Placement, fx: float, fy: float) -> np.ndarray | None:
        """FG's footprint ``pl`` cut from ``img`` (a BG picture at fx, fy of full size),
        at fingerprint size."""
        x0, y0 = pl.x * fx, pl.y * fy
        x1, y1 = x0 + self.fg_probe.width * pl.scale * fx, y0 + self.fg_probe.height * pl.scale * fy
        # (a rough footprint of an FG that fills BG lands a little past BG's edge: up to a
        # hundredth of the footprint is its error, less than a fingerprint pixel)
        tol = max(1.0, 0.01 * max(x1 - x0, y1 - y0))
        if x0 < -tol or y0 < -tol or x1 > img.shape[1] + tol or y1 > img.shape[0] + tol:
            return None  # FG sticks out of BG: its fingerprints are not the footprint's
        c = img[max(0, int(round(y0))):int(round(y1)), max(0, int(round(x0))):int(round(x1))]
        return cv2.resize(c, self.size, interpolation=cv2.INTER_AREA) if min(c.shape) >= 4 else None

    def planes_at(self, pl: Placement) -> np.ndarray | None:
        out = [self.crop(self.scan.frames[k], pl, self.scan.fx, self.scan.fy) for k in self.window]
        return None if any(c is None for c in out) else np.stack(out)

    def fg_at(self, k: int, off: float, rate: float) -> int:
        return int(round(((k + 0.5) / self.bfps - off) / rate * self.ffps - 0.5))

    def bg_at(self, f: int, off: float, rate: float) -> int:
        return int(round((off + rate * (f + 0.5) / self.ffps) * self.bfps - 0.5))

    def at_hand(self, k: int, f: int, line: AnchorLine) -> tuple[int, int, np.ndarray | None]:
        """BG frame ``k`` and FG frame ``f`` on ``line``, or, when FG's pass did not keep
        ``f``'s picture, the nearest pair on the line a few frames away whose pictures
        both passes hold (a read of ``f`` decodes FG from the keyframe before it: 0.33 s
        for a 720p FG 190 frames past one), with that BG picture."""
        late = self.ctx.passes.bg_pass
        if late is None or self.watch.picture(f) is not None:
            return k, f, None
        reach = max(2, int(round(0.25 * self.ffps)))
        for d in sorted(range(-reach, reach + 1), key=lambda d: (abs(d), d)):
            f2 = f + d
            if d == 0 or not 0 <= f2 < self.fg_probe.frames or self.watch.picture(f2) is None:
                continue
            k2 = self.bg_at(f2, line.offset_s, line.rate)
            bimg = late.picture(k2) if 0 <= k2 < self.bg_probe.frames else None
            if bimg is not None:
                return k2, f2, bimg
        return k, f, None

    def other_pair(self, f2: int, pair: Pair, bimg: np.ndarray, ties: bool) -> Pair:
        """FG frame ``f2`` over the same BG frame instead, when its placement fits better
        (or as well, with ``ties``)."""
        from ..spatial import estimate

        if f2 == pair.fg or not 0 <= f2 < self.fg_probe.frames:
            return pair
        fimg2 = self.read_fg(f2)
        pl2 = estimate(fimg2, bimg, scale=self.scale, prior=pair.placement)
        c, c0 = pl2.confidence, pair.placement.confidence
        return Pair(f2, fimg2, pl2) if (c >= c0 if ties else c > c0) else pair

    # -- the search ---------------------------------------------------------------------
    def run(self) -> Footprint | None:
        from ..spatial import scan_window

        late = self.ctx.passes.bg_pass
        self.scan = scan_window(self.ctx.bg.clip, self.ctx.fg.clip, self.fg_samples, bg_path=self.ctx.bg.reads,
                                scale=self.scale, at=ANCHOR_AT, held=late.window if late is not None else None)
        if self.scan is None:
            self.ctx.run.trace("anchored: no rough footprint in BG's window")
            return None
        self.ctx.run.trace(f"anchored: rough footprint on {len(self.scan.frames)} BG frames")
        ks = sorted(self.scan.frames)
        self.window = [ks[int(round(q))] for q in np.linspace(0, len(ks) - 1, min(len(ks), ANCHOR_FRAMES))]
        rough = self.planes_at(_within(self.scan.placement, self.bg_probe, self.fg_probe))
        if rough is None:
            self.ctx.run.trace("anchored: the rough footprint sticks out of BG")
            return None
        got = self.rough_line(rough)
        if got is None:
            return None
        off, rate, anchors = got
        line = AnchorLine(off, rate, float(np.median([f for _, f, _ in anchors])))
        for k, _, _ in anchors[:2]:
            found = self.confirm(k, line, len(anchors))
            if found is not None:
                return found
        return None

    def rough_line(self, rough: np.ndarray) -> tuple[float, float, list[tuple[int, int, float]]] | None:
        """The line through the window's frames (cut at the rough footprint) among FG's
        fingerprints: FG's decoded prefix first, all of FG when that is unclear."""
        got = None
        self.complete = not self.fg_pass.is_alive()
        if not self.complete:
            self.ffg = fpm.Fingerprints(self.watch.live.prefix(), self.ffps)
            got = anchor_line(rough, self.window, self.bfps, self.ffg, complete=False) \
                if self.ffg.n > 2 * self.ffps else None
            self.ctx.run.trace(f"anchors on FG's first {self.ffg.n} frames: {'none' if got is None else len(got[2])}")
        if got is None:
            self.ffg, self.complete = self.fg_pass.get(), True
            got = anchor_line(rough, self.window, self.bfps, self.ffg)
        return got

    def pair_at(self, k: int, f: int, bimg: np.ndarray | None = None) -> tuple[Pair, np.ndarray] | None:
        """FG frame ``f`` over BG frame ``k`` (``bimg``: its picture, if at hand), placed
        (with BG's picture), if it fits."""
        from ..spatial import estimate

        late = self.ctx.passes.bg_pass
        if bimg is None and late is not None:
            bimg = late.picture(k)
        if bimg is None:
            bimg = self.read_bg(k)
        fimg = self.read_fg(f)
        pl = estimate(fimg, bimg, scale=self.scale, prior=self.scan.placement)
        if pl.confidence >= 0.6 and (pl.confidence < 0.9 or (self.scale is None and abs(pl.scale - 1.0) > 0.005)):
            # a middling fit, or a scale other than 1 (a search around a prior can slide
            # into one; below 0.6 the estimate searched everything itself): the whole
            # search decides, as on the audio line's pair (a blurry pair settled 10 px off
            # at 4.7 % scale, confidence 0.994; the whole search found the truth within
            # 0.13 px at scale 1, 0.998)
            full = estimate(fimg, bimg, scale=self.scale)
            if full.confidence > pl.confidence:
                pl = full
        return None if pl.confidence < 0.6 else (Pair(f, fimg, pl), bimg)

    def confirm(self, k: int, line: AnchorLine, n_rough: int) -> Footprint | None:
        """The footprint from BG frame ``k`` and the FG frame the line puts there, if the
        window's frames then match FG's exactly."""
        # the FG frame the line (a median of many anchors) puts there: a single rough
        # anchor may land a few frames off, and a pair apart in time biases the estimate
        f = self.fg_at(k, line.offset_s, line.rate)
        if not 0 <= f < self.fg_probe.frames:
            return None
        k, f, bimg = self.at_hand(k, f, line)
        got = self.pair_at(k, f, bimg)
        if got is None:
            return None
        pair, bimg = got
        # The footprint is good to a pixel or two now: which FG frame BG's frame k shows,
        # exactly (its full-size picture cut there against FG's fingerprints nearby) ...
        c = self.crop(bimg, pair.placement, 1.0, 1.0)
        if c is not None and f + 9 <= self.ffg.n:
            lo, hi = max(0, f - 8), f + 9
            near = normalise(self.ffg.planes[lo:hi].reshape(hi - lo, -1)) @ normalise(c.reshape(1, -1))[0]
            pair = self.other_pair(lo + int(np.argmax(near)), pair, bimg, ties=True)
        # ... and the line again from all the window's frames cut there, at full
        # fingerprint size: the BG frames kept for the refinement follow it
        fine_planes = self.planes_at(pair.placement)
        exact = frame_anchors(fine_planes, self.window, self.ffg, rough=False, complete=self.complete) \
            if fine_planes is not None else []
        fine = line_through(exact, self.bfps, self.ffps, rough=False)
        if not _confirmed(exact, fine, n_rough):
            self.ctx.run.trace(f"anchored footprint rejected: {len(exact)} exact anchors, "
                               f"{0 if fine is None else len(fine[2])} on a line, {n_rough} rough")
            return None
        if fine is not None:
            line = AnchorLine(fine[0], fine[1], float(np.median([f for _, f, _ in fine[2]])))
            # A pair a frame apart on a pan fits almost as well, a pixel or so off, and
            # the crop cut there then favours it: the line, made from every anchor,
            # has the last word when its pair fits better (measured: 1.35 px -> 0.00)
            pair = self.other_pair(self.fg_at(k, line.offset_s, line.rate), pair, bimg, ties=False)
        if self.watch.live.failed:
            return None  # FG's first decode was thrown away: what it showed may be misnumbered
        self.ctx.passes.have_bg[k], self.ctx.passes.have_fg[pair.fg] = bimg, pair.img
        return Footprint(Spatial.of(pair.placement), pair.placement, line=line)


def _within(pl: Placement, bg: Probe, fg: Probe, slack: float = 0.05) -> Placement:
    """A rough footprint that sticks out of BG by up to ``slack`` of its size, moved (and
    shrunk) inside: an FG that fills BG, placed from frames of another moment (a keyframe
    pass), lands a few percent past its edge (measured: 24 px of 1080 at scale 1.5), which
    is the search's error, not FG sticking out. Anything further is left as it is."""
    w, h = fg.width * pl.scale, fg.height * pl.scale
    over = max(-pl.x, -pl.y, pl.x + w - bg.width, pl.y + h - bg.height)
    if over <= 0 or over > slack * max(w, h):
        return pl
    s = min(pl.scale, bg.width / fg.width, bg.height / fg.height)
    x = min(max(pl.x + (pl.scale - s) * fg.width / 2, 0.0), bg.width - fg.width * s)
    y = min(max(pl.y + (pl.scale - s) * fg.height / 2, 0.0), bg.height - fg.height * s)
    return Placement(x, y, s, pl.confidence, pl.method)


def _confirmed(exact: list[tuple[int, int, float]], fine: tuple | None, n_rough: int) -> bool:
    """On the right footprint the window's frames match FG's exactly, more of them than
    roughly, and in order: on one line, or (a speed ramp) at least rising together.

    A wrong pair whose estimate only fit leaves few (measured: a smooth, blurry shot placed
    20 px off at confidence 0.999, 2 exact anchors against 5 rough ones); a shot that
    recurs leaves them out of order. Then the coarse search decides."""
    need = max(3, (n_rough + 1) // 2)
    ordered = sorted(exact)
    rising = all(b[1] > a[1] for a, b in zip(ordered, ordered[1:], strict=False))
    return (fine is not None and len(fine[2]) >= need) or (fine is None and len(exact) >= need and rising)
