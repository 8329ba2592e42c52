"""The prepass: find where FG sits in BG and which BG frame goes under each FG frame.

Pipeline: coarse spatial (FG footprint in BG) -> fingerprints of FG and of BG cropped to
that footprint (one decode pass each, in parallel) -> audio offset/rate (when both have
audio) as the prior -> visual DTW frame map -> spatial refinement on matched pairs.
Inputs that do not match fall back to the start-aligned map with a warning.
"""

from __future__ import annotations

import contextvars
import functools
import json
import math
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from . import fingerprint as fpm
from .alignment import Alignment, MediaInfo, Spatial, Temporal, realtime_map
from .errors import VidkompyError
from .sources import Probe, open_video, probe
from .temporal import TemporalParams, TemporalResult, align_visual

METHODS = ("auto", "audio", "visual")
PRESET_DIR = Path(__file__).resolve().parent / "presets"  # package data (any install)

_DEFAULTS: dict[str, Any] = {
    "fingerprint": {"size": [64, 36], "decoder": "ffmpeg"},
    "audio": {"rate": 8000, "windows": 12, "window_s": 1.5, "min_confidence": 0.3},
    "temporal": {},
    "spatial": {"refine": True},
}


def load_preset(name_or_path: str | os.PathLike[str] = "default") -> dict:
    """A preset by name (``presets/<name>.json``) or path, merged over the built-in defaults."""
    p = Path(name_or_path)
    if not (p.suffix == ".json" or os.sep in str(name_or_path)) or not p.exists():
        cand = PRESET_DIR / f"{name_or_path}.json"
        if cand.exists():
            p = cand
        elif not p.exists():
            names = sorted(f.stem for f in PRESET_DIR.glob("*.json")) if PRESET_DIR.is_dir() else []
            raise VidkompyError(f"unknown preset {str(name_or_path)!r}; choose one of {', '.join(names) or '(none)'}"
                                " or give a path to a JSON file")
    try:
        d = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise VidkompyError(f"{p}: not a readable JSON preset ({e})") from None
    if not isinstance(d, dict):
        raise VidkompyError(f"{p}: a preset must be a JSON object")
    out = {k: dict(v) for k, v in _DEFAULTS.items()}
    for k, v in d.items():
        if k in out and isinstance(v, dict):
            out[k].update(v)
        else:
            out[k] = v
    unknown = set(out["temporal"]) - set(TemporalParams.__dataclass_fields__)
    if unknown:
        raise VidkompyError(f"{p}: unknown temporal setting(s): {', '.join(sorted(unknown))}")
    return out


# -- spatial --------------------------------------------------------------------------
def _template_placement(bg_clip: Any, fg_clip: Any, bp: Probe, fp: Probe, scale: float,
                        line: tuple[float, float] | None = None) -> Spatial:
    """Fallback footprint: the middle FG frame against a few BG frames, cv2.matchTemplate."""
    import cv2

    from .sources import frame_arrays

    fw, fh = max(1, round(fp.width * scale)), max(1, round(fp.height * scale))
    k = max(1.0, max(bp.width, bp.height) / 480)  # search at ~480 px
    sw, sh = max(8, round(fw / k)), max(8, round(fh / k))
    bw, bh = max(round(bp.width / k), sw), max(round(bp.height / k), sh)
    fmid = fp.frames // 2
    tpl = frame_arrays(fg_clip, [fmid], gray=True, width=sw, height=sh)[0]
    # BG may start anywhere relative to FG: the proportional time plus a spread of others
    cands = sorted({min(bp.frames - 1, int(q * bp.frames)) for q in np.linspace(0.05, 0.95, 9)}
                   | {min(bp.frames - 1, round(fmid * bp.frames / max(1, fp.frames)))})
    if line is not None:  # the audio line says exactly where FG's middle frame is in BG
        t = line[0] + line[1] * fmid / float(fp.fps)
        cands = sorted(set(cands) | {int(min(bp.frames - 1, max(0, round(t * float(bp.fps)))))})
    best = (-2.0, 0, 0, 0)
    for n, img in zip(cands, frame_arrays(bg_clip, cands, gray=True, width=bw, height=bh)):
        r = cv2.matchTemplate(img, tpl, cv2.TM_CCOEFF_NORMED)
        _, v, _, loc = cv2.minMaxLoc(r)
        if v > best[0]:
            best = (v, loc[0], loc[1], n)
    x = min(max(0.0, best[1] * bp.width / bw), bp.width - fw)
    y = min(max(0.0, best[2] * bp.height / bh), bp.height - fh)
    if k > 1.0 and scale == 1.0:
        # full resolution around the coarse peak, on the best frame, with a sub-pixel peak
        full = frame_arrays(bg_clip, [best[3]], gray=True)[0]
        ftpl = frame_arrays(fg_clip, [fmid], gray=True)[0]
        rad = int(math.ceil(k)) + 2
        x0, y0 = max(0, int(x) - rad), max(0, int(y) - rad)
        x1, y1 = min(bp.width, int(x) + rad + fw + 1), min(bp.height, int(y) + rad + fh + 1)
        if x1 - x0 >= fw and y1 - y0 >= fh:
            from .spatial import _peak  # maximum with a parabolic sub-pixel fit

            v, px, py = _peak(cv2.matchTemplate(full[y0:y1, x0:x1], ftpl, cv2.TM_CCOEFF_NORMED))
            x, y = x0 + px, y0 + py
            best = (v, *best[1:])
    return Spatial(x=float(x), y=float(y), scale=scale, confidence=float(max(best[0], 0.0)), method="template")


def _coarse_spatial(bg_clip: Any, fg_clip: Any, bp: Probe, fp: Probe, scale: float | None,
                    console: Console) -> tuple[Spatial, Any]:
    """(placement, spatial.Placement-or-None for the refinement prior)."""
    if scale in (None, 1.0) and (fp.width, fp.height) == (bp.width, bp.height):
        return Spatial(x=0.0, y=0.0, scale=1.0, confidence=1.0, method="same-size"), None
    try:
        from . import spatial as sp

        pl = sp.coarse_from_clips(bg_clip, fg_clip, scale=scale, bg_path=bp.path)
        return Spatial.of(pl), pl
    except VidkompyError:
        raise
    except Exception as e:  # the spatial engine is optional here: never block the map on it
        _fell_back(console, f"spatial engine unavailable ({type(e).__name__}: {e}); using template match")
        return _template_placement(bg_clip, fg_clip, bp, fp, 1.0 if scale is None else scale), None


def _audio_spatial(bg_clip: Any, fg_clip: Any, bp: Probe, fp: Probe, scale: float | None,
                   line: tuple[float, float], keep: dict[int, np.ndarray] | None = None,
                   fg_mid: Any = None) -> tuple[Spatial, Any] | None:
    """Footprint from one frame pair the audio line puts together (FG's middle frame and the
    BG frame under it): one random-access read of each instead of a search through BG."""
    from . import spatial as sp
    from .sources import frame_arrays

    fmid = fp.frames // 2
    t = line[0] + line[1] * (fmid + 0.5) / float(fp.fps)
    j = int(round(t * float(bp.fps) - 0.5))
    if not 0 <= j < bp.frames:
        return None
    # FG's middle frame does not depend on the audio line: the caller may have read it
    # (``fg_mid``, a job) while the audio was being matched
    fimg = fg_mid.get() if fg_mid is not None else frame_arrays(fg_clip, [fmid], gray=True)[0]
    bimg = frame_arrays(bg_clip, [j], gray=True)[0]
    if keep is not None:
        keep[j] = bimg
    pl = sp.estimate(fimg, bimg, scale=scale)
    if pl.confidence < 0.6:
        return None
    return Spatial.of(pl), pl


def _footprint(sp: Spatial, bp: Probe, fp: Probe) -> tuple[fpm.Crop | None, fpm.Crop | None]:
    """Matching crops of BG (the FG footprint, clipped to BG) and of FG (the part inside BG)."""
    s = sp.scale
    x0, y0 = max(0.0, sp.x), max(0.0, sp.y)
    x1, y1 = min(float(bp.width), sp.x + fp.width * s), min(float(bp.height), sp.y + fp.height * s)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None, None
    bcrop = (int(round(x0)), int(round(y0)), max(8, int(round(x1 - x0))), max(8, int(round(y1 - y0))))
    bcrop = (min(bcrop[0], bp.width - bcrop[2]), min(bcrop[1], bp.height - bcrop[3]), bcrop[2], bcrop[3])
    fx0, fy0 = (x0 - sp.x) / s, (y0 - sp.y) / s
    fx1, fy1 = (x1 - sp.x) / s, (y1 - sp.y) / s
    fcrop = (int(round(fx0)), int(round(fy0)), int(round(fx1 - fx0)), int(round(fy1 - fy0)))
    fcrop = (min(fcrop[0], fp.width - 8), min(fcrop[1], fp.height - 8),
             max(8, min(fcrop[2], fp.width - fcrop[0])), max(8, min(fcrop[3], fp.height - fcrop[1])))
    if bcrop == (0, 0, bp.width, bp.height):
        bcrop = None
    if fcrop == (0, 0, fp.width, fp.height):
        fcrop = None
    return bcrop, fcrop


# -- background work with a progress bar ------------------------------------------------
class _Job(threading.Thread):
    """Run ``fn`` beside the main thread; ``get()`` joins and re-raises its error here."""

    def __init__(self, fn: Any, *args: Any, **kw: Any) -> None:
        super().__init__(daemon=True)
        self._fn, self._args, self._kw = fn, args, kw
        self._res: Any = None
        self._err: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self._res = self._fn(*self._args, **self._kw)
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            self._err = e

    def get(self) -> Any:
        self.join()
        if self._err is not None:
            raise self._err
        return self._res


def _fingerprints(p: Probe, crop: fpm.Crop | None, cfg: dict, prog: Progress, task: Any,
                  grab: list[int] | None = None, size: tuple[int, int] | None = None,
                  nice: int = 0, watch: _Watch | None = None) -> fpm.Fingerprints:
    g = fpm.Grab(grab, p.width, p.height, p.pix_fmt, on_frame=watch.on_frame if watch else None) if grab else None
    return fpm.fingerprints(p.path, frames=p.frames, fps=float(p.fps), crop=crop,
                            size=tuple(cfg["size"]) if size is None else size,
                            # a VFR input is read at a constant rate by the frame server only: ffmpeg's
                            # frames could number the same and still be other frames
                            decoder="vs" if p.vfr else cfg.get("decoder", "ffmpeg"),
                            progress=lambda k: prog.advance(task, k),
                            grab=g, nice=nice, live=watch.live if watch else None)


class _Watch:
    """A fingerprint pass as it goes: the pictures it keeps, as they arrive, and the
    planes decoded so far (``live``)."""

    def __init__(self) -> None:
        self.live = fpm.Live()
        self.frames: dict[int, np.ndarray] = {}

    def on_frame(self, i: int, img: np.ndarray) -> None:
        self.frames[i] = img

    def wait(self, ids: list[int], job: _Job) -> bool:
        """Until the pictures ``ids`` are in (True) or the pass has ended (False if not)."""
        import time

        while not all(i in self.frames for i in ids):
            if not job.is_alive():
                return all(i in self.frames for i in ids)
            time.sleep(0.01)
        return True


# Full-size BG pictures kept from the BG fingerprint pass for the spatial refinement (the
# partners of its FG samples, predicted before the map exists): at most this many bytes.
GRAB_BYTES = 96 << 20


def _bg_partners(samples: list[int], bp: Probe, fp: Probe, line: tuple[float, float] | None,
                 picks: tuple[list[int], list[int]] | None, spread: float = 0.0,
                 pivot: float | None = None) -> list[int]:
    """BG frames likely to lie under FG frames ``samples`` once the map exists: around the
    audio line (±1 frame; with a rate known only to ``spread``, a window that widens
    with the distance from FG's middle), or around the coarse pass's picks at the nominal
    rate (a window that widens with the distance from them, for drift); ``pivot``: the FG
    frame the line's rate is exact at (default FG's middle); bounded by
    :data:`GRAB_BYTES`."""
    if not samples:
        return []
    r0 = float(bp.fps) / float(fp.fps)
    if line is not None:
        off, rate = line
        centre = {i: (off + rate * (i + 0.5) / float(fp.fps)) * float(bp.fps) - 0.5 for i in samples}
        mid = (fp.frames - 1) / 2 if pivot is None else pivot
        half = {i: 1 + (1 + int(math.ceil(spread * r0 * abs(i - mid))) if spread else 0) for i in samples}
    elif picks is not None and picks[0]:
        fidx, bpk = picks
        o = float(np.median([b + 0.5 - r0 * (f + 0.5) for f, b in zip(fidx, bpk)]))
        mid = float(np.median(fidx))
        centre = {i: o + r0 * (i + 0.5) - 0.5 for i in samples}
        half = {i: 2 + int(math.ceil(0.03 * r0 * abs(i - mid))) for i in samples}
    else:
        return []
    budget = max(len(samples), GRAB_BYTES // max(1, bp.width * bp.height))
    total = sum(2 * h + 1 for h in half.values())
    if total > budget:
        f = budget / total
        half = {i: max(1 if line is not None else 0, int(h * f)) for i, h in half.items()}
    out: set[int] = set()
    for i in samples:
        c = int(round(centre[i]))
        out.update(j for j in range(c - half[i], c + half[i] + 1) if 0 <= j < bp.frames)
    return sorted(out)


# FG's frames the anchored footprint search starts from: a little before FG's middle, so
# that FG's pass (which they come from) reaches them sooner
ANCHOR_AT = (0.3, 0.4, 0.5)


def _anchor_samples(nf: int) -> list[int]:
    from .spatial import coarse_samples

    return coarse_samples(nf, ANCHOR_AT)


# at most this many BG frames of the scanned window are anchored (one dot product each
# against every FG fingerprint)
ANCHOR_FRAMES = 40


def _anchored_spatial(bg_clip: Any, fg_clip: Any, bp: Probe, fp: Probe, scale: float | None, fg_job: _Job,
                      watch: _Watch, cfg: dict, have_bg: dict[int, np.ndarray], have_fg: dict[int, np.ndarray]
                      ) -> tuple[Spatial, Any, tuple[float, float, float]] | None:
    """Footprint without sound: BG's window around FG's middle at mid size (keyframes of
    a large one) gives a rough footprint (:func:`spatial.scan_window`); those BG frames,
    cropped to it, are then found among all of FG's fingerprints (:func:`temporal.anchor_line`),
    and the best frame pair gives the exact footprint, as the audio line's pair does.
    The line also says which BG frames to keep for the refinement. ``None``: no clear
    anchors (the coarse search decides).

    FG's pass (``fg_job``, seen through ``watch``) is still running: the anchors are
    first sought in the part decoded so far, so that BG's pass can start before FG's
    ends; only when they are unclear there does this wait for all of FG."""
    import cv2

    from . import spatial as sp
    from .fingerprint import normalise
    from .sources import frame_arrays
    from .temporal import anchor_line, frame_anchors, line_through

    idx = _anchor_samples(fp.frames)

    def fg_imgs() -> list[np.ndarray]:
        # (no pictures come from an FG that ffmpeg cannot hand over as they are; the pass
        # then ends without them, and they are read here)
        if not (fpm.grabs_exact(fp.pix_fmt) or fp.vfr) or not watch.wait(idx, fg_job):
            if not fg_job.is_alive():
                fg_job.get()  # its error, if it failed; else none kept (fingerprints from the cache)
        return [read_fg(i) for i in idx]

    def read_fg(f: int) -> np.ndarray:
        if f in watch.frames and not watch.live.failed:
            return watch.frames[f]
        return frame_arrays(fg_clip, [f], gray=True)[0]

    scan = sp.scan_window(bg_clip, fg_clip, fg_imgs, bg_path=bp.path, scale=scale, at=ANCHOR_AT)
    if scan is None:
        return None
    w, h = tuple(cfg["fingerprint"]["size"])
    ks = sorted(scan.frames)
    ks = [ks[int(round(q))] for q in np.linspace(0, len(ks) - 1, min(len(ks), ANCHOR_FRAMES))]
    bfps, ffps = float(bp.fps), float(fp.fps)

    def crop(img: np.ndarray, pl: Any, fx: float, fy: float) -> np.ndarray | None:
        """FG's footprint ``pl`` cut from ``img`` (a BG picture at fx, fy of full size),
        at fingerprint size."""
        x0, y0 = pl.x * fx, pl.y * fy
        x1, y1 = x0 + fp.width * pl.scale * fx, y0 + fp.height * pl.scale * fy
        if x0 < -1 or y0 < -1 or x1 > img.shape[1] + 1 or y1 > img.shape[0] + 1:
            return None  # FG sticks out of BG: its fingerprints are not the footprint's
        c = img[max(0, int(round(y0))):int(round(y1)), max(0, int(round(x0))):int(round(x1))]
        return cv2.resize(c, (w, h), interpolation=cv2.INTER_AREA) if min(c.shape) >= 4 else None

    def planes_at(pl: Any) -> np.ndarray | None:
        out = [crop(scan.frames[k], pl, scan.fx, scan.fy) for k in ks]
        return None if any(c is None for c in out) else np.stack(out)

    def fg_at(k: int, off: float, rate: float) -> int:
        return int(round(((k + 0.5) / bfps - off) / rate * ffps - 0.5))

    def other_pair(f2: int, f: int, fimg: np.ndarray, pl: Any, bimg: np.ndarray, ties: bool) -> tuple:
        """(FG frame, its picture, placement): FG frame ``f2`` over the same BG frame
        instead, when its placement fits better (or as well, with ``ties``)."""
        if f2 == f or not 0 <= f2 < fp.frames:
            return f, fimg, pl
        fimg2 = read_fg(f2)
        pl2 = sp.estimate(fimg2, bimg, scale=scale, prior=pl)
        better = pl2.confidence >= pl.confidence if ties else pl2.confidence > pl.confidence
        return (f2, fimg2, pl2) if better else (f, fimg, pl)

    rough = planes_at(scan.placement)
    if rough is None:
        return None
    got = None
    complete = not fg_job.is_alive()
    if not complete:
        ffg = fpm.Fingerprints(planes=watch.live.prefix(), phash=np.zeros(0, np.uint64),
                               energy=np.zeros(0, np.float32), fps=ffps)
        got = anchor_line(rough, ks, bfps, ffg, complete=False) if ffg.n > 2 * ffps else None
        _trace(f"anchors on FG's first {ffg.n} frames: {'none' if got is None else len(got[2])}")
    if got is None:
        ffg, complete = fg_job.get(), True
        got = anchor_line(rough, ks, bfps, ffg)
    if got is None:
        return None
    off, rate, anchors = got
    pivot = float(np.median([f for _, f, _ in anchors]))
    for k, _, _ in anchors[:2]:
        # the FG frame the line (a median of many anchors) puts there: a single rough
        # anchor may land a few frames off, and a pair apart in time biases the estimate
        f = fg_at(k, off, rate)
        if not 0 <= f < fp.frames:
            continue
        bimg = frame_arrays(bg_clip, [k], gray=True)[0]
        fimg = read_fg(f)
        pl = sp.estimate(fimg, bimg, scale=scale, prior=scan.placement)
        if pl.confidence >= 0.6 and (pl.confidence < 0.9 or (scale is None and abs(pl.scale - 1.0) > 0.005)):
            # a middling fit, or a scale other than 1 (a search around a prior can slide
            # into one; below 0.6 the estimate searched everything itself): the whole
            # search decides, as on the audio line's pair (a blurry pair
            # settled 10 px off at 4.7 % scale, confidence 0.994; the whole search found
            # the truth within 0.13 px at scale 1, 0.998)
            full = sp.estimate(fimg, bimg, scale=scale)
            if full.confidence > pl.confidence:
                pl = full
        if pl.confidence < 0.6:
            continue
        # The footprint is good to a pixel or two now: which FG frame BG's frame k shows,
        # exactly (its full-size picture cut there against FG's fingerprints nearby) ...
        c = crop(bimg, pl, 1.0, 1.0)
        if c is not None and f + 9 <= ffg.n:
            lo_, hi_ = max(0, f - 8), f + 9
            near = normalise(ffg.planes[lo_:hi_].reshape(hi_ - lo_, -1)) @ normalise(c.reshape(1, -1))[0]
            f, fimg, pl = other_pair(lo_ + int(np.argmax(near)), f, fimg, pl, bimg, ties=True)
        # ... and the line again from all the window's frames cut there, at full
        # fingerprint size: the BG frames kept for the refinement follow it
        fine_planes = planes_at(pl)
        exact = frame_anchors(fine_planes, ks, ffg, rough=False, complete=complete) \
            if fine_planes is not None else []
        fine = line_through(exact, bfps, ffps, rough=False)
        need = max(3, (len(anchors) + 1) // 2)
        # On the right footprint the window's frames match FG's exactly, more of them than
        # roughly, and in order: on one line, or (a speed ramp) at least rising together.
        # A wrong pair whose estimate only fit leaves few (measured: a smooth, blurry shot
        # placed 20 px off at confidence 0.999, 2 exact anchors against 5 rough ones); a
        # shot that recurs leaves them out of order. Then the coarse search decides.
        ordered = sorted(exact)
        rising = all(b[1] > a[1] for a, b in zip(ordered, ordered[1:]))
        if not ((fine is not None and len(fine[2]) >= need) or (fine is None and len(exact) >= need and rising)):
            _trace(f"anchored footprint rejected: {len(exact)} exact anchors, "
                   f"{0 if fine is None else len(fine[2])} on a line, {len(anchors)} rough")
            continue
        if fine is not None:
            off, rate = fine[0], fine[1]
            pivot = float(np.median([f for _, f, _ in fine[2]]))
            # A pair a frame apart on a pan fits almost as well, a pixel or so off, and
            # the crop cut there then favours it: the line, made from every anchor,
            # has the last word when its pair fits better (measured: 1.35 px -> 0.00)
            f, fimg, pl = other_pair(fg_at(k, off, rate), f, fimg, pl, bimg, ties=False)
        if watch.live.failed:
            return None  # FG's first decode was thrown away: what it showed may be misnumbered
        have_bg[k], have_fg[f] = bimg, fimg
        return Spatial.of(pl), pl, (off, rate, pivot)
    return None


# The refined footprint is fingerprinted again (a second BG decode) when it moved by more
# than this many fingerprint pixels from the coarse one.
REMATCH_FP_PX = 0.1


# -- helpers ---------------------------------------------------------------------------
def _snap(offset: float, rate: float, bp: Probe, fp: Probe) -> tuple[float, float]:
    """Snap an audio line to whole BG frames / the exact fps ratio when it is within noise."""
    f = offset * float(bp.fps)
    if abs(f - round(f)) < 0.15:
        offset = round(f) / float(bp.fps)
    if abs(rate - 1.0) < 2e-4:
        rate = 1.0
    return offset, rate


def _audio_match(bg: str, fg: str, cfg: dict):
    from .audio import load_audio, match_audio
    from .sources import has_audio

    # (started before the probes: one ffprobe each first, so that a track that cannot be
    # used is not decoded beside the work without sound)
    for name, path in (("BG", bg), ("FG", fg)):
        if not has_audio(path):
            raise VidkompyError(f"{name} has no audio")
    r = int(cfg.get("rate", 8000))
    bg_job = _Job(load_audio, bg, r)  # two ffmpeg decodes at once
    a_fg = load_audio(fg, r)
    a_bg = bg_job.get()
    return match_audio(a_bg, a_fg, r, windows=int(cfg.get("windows", 8)), window_s=float(cfg.get("window_s", 4.0)))


_T0 = [0.0]
# Fallbacks taken in this align() call (an engine failed and a simpler path stood in): a
# result made that way is not cached, so fixing the cause fixes the next run.
_FALLBACKS: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("vk_fallbacks", default=None)


def _fell_back(console: Console, msg: str) -> None:
    console.print(f"[yellow]note:[/] {msg}")
    got = _FALLBACKS.get()
    if got is not None:
        got.append(msg)


def _trace(what: str) -> None:
    """Stage times on stderr with VIDKOMPY_VS_TRACE=1 (where the time goes)."""
    if os.environ.get("VIDKOMPY_VS_TRACE"):
        import sys
        import time

        print(f"[trace] {time.perf_counter() - _T0[0]:6.2f} s  {what}", file=sys.stderr)


def _warm_imports() -> None:
    import importlib

    # (what every run uses; nothing of scipy's is on the common path any more)
    for m in ("cv2", "vidkompy_vs.spatial"):
        try:
            importlib.import_module(m)
        except Exception:  # noqa: BLE001 - the real import, where it is used, reports it
            return


def _start_map(bp: Probe, fp: Probe) -> tuple[list[int], list[int]]:
    return realtime_map(fp.frames, fp.fps_num, fp.fps_den, bp.frames, bp.fps_num, bp.fps_den)


# -- the entry point ----------------------------------------------------------------------
def align(bg: str | os.PathLike[str], fg: str | os.PathLike[str], *, preset: str = "default",
          method: str = "auto", x: float | None = None, y: float | None = None,
          scale: float | None = None, console: Console | None = None, cache: bool = True) -> Alignment:
    """Align ``fg`` to ``bg`` and return the :class:`Alignment`.

    ``x``/``y``/``scale`` override the spatial search by hand. Messages and progress go
    to ``console`` (stderr by default). ``cache``: reuse (and keep) the result for the
    same input contents, settings and code (a re-run only probes the inputs).
    """
    import time

    _T0[0] = time.perf_counter()
    _FALLBACKS.set([])
    console = console or Console(stderr=True)
    if method not in METHODS:
        raise VidkompyError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if scale is not None and (not math.isfinite(scale) or scale <= 0):
        raise VidkompyError(f"--scale must be a positive number, got {scale}")
    cfg = load_preset(preset)
    audio_min = float(cfg["audio"].get("min_confidence", 0.3))
    rkey = _result_key(bg, fg, cfg, method, x, y, scale) if cache else None
    hit = _cached_result(rkey) if rkey else None
    cached = hit is not None
    # OpenCV and the spatial engine take a while to import: load them while the inputs are
    # probed (ffprobe and index builds leave a core idle) rather than on the first use
    warm = None if cached else threading.Thread(target=_warm_imports, daemon=True)
    if warm is not None:
        warm.start()
    # the sound needs no probe (without one, ffmpeg fails at once and the job says so;
    # it is used only when both inputs turn out to have audio): start it first
    early_audio = _Job(_audio_match, os.fspath(bg), os.fspath(fg), cfg["audio"]) \
        if method in ("auto", "audio") and not cached else None
    try:
        return _align(bg, fg, method, x, y, scale, console, cfg, audio_min, rkey, hit, early_audio)
    finally:
        # nothing started before the probes outlives the call, however it ends (an error
        # in a probe, FG larger than BG): a daemon thread still decoding or importing
        # when the interpreter exits can take the process down with it
        for t in (warm, early_audio):
            if t is not None:
                t.join()


def _align(bg: str | os.PathLike[str], fg: str | os.PathLike[str], method: str, x: float | None,
           y: float | None, scale: float | None, console: Console, cfg: dict, audio_min: float,
           rkey: str | None, hit: Alignment | None, early_audio: _Job | None) -> Alignment:
    """:func:`align` after its settings are checked and its early jobs started."""
    # probing builds each input's index (a demux pass): both at once
    bp_job = _Job(probe, bg)
    fp = probe(fg)
    bp = bp_job.get()
    s = 1.0 if scale is None else float(scale)
    if fp.width * s > bp.width + 1e-6 or fp.height * s > bp.height + 1e-6:
        raise VidkompyError(
            f"FG ({fp.width}x{fp.height}) is larger than BG ({bp.width}x{bp.height}); pass --scale to shrink it")
    if method == "audio":
        missing = [n for n, p in (("BG", bp), ("FG", fp)) if not p.has_audio]
        if missing:
            raise VidkompyError(f"--method audio needs audio in both inputs; {' and '.join(missing)} has none")

    for name, p_ in (("BG", bp), ("FG", fp)):
        if p_.vfr:
            console.print(f"[yellow]note:[/] {name} has a variable frame rate; read at a constant "
                          f"{float(p_.fps):.3f} fps (frames repeated or dropped by their timestamps)")
        if p_.rotation:
            console.print(f"[yellow]note:[/] {name} is flagged to be shown rotated by {p_.rotation} degrees; "
                          "vidkompy-vs works on the stored picture (rotate it first to composite it upright)")
    if bp.sar != fp.sar:
        console.print(f"[yellow]note:[/] FG's pixels are {fp.sar.numerator}:{fp.sar.denominator} and BG's "
                      f"{bp.sar.numerator}:{bp.sar.denominator} (non-square pixels): vidkompy-vs matches "
                      "stored pixels with one scale for both axes; resample FG to BG's pixel shape first "
                      "if the placement is off")
    _trace("probed")
    if hit is not None:
        # the same contents may live at other paths now
        hit.bg, hit.fg = MediaInfo.from_probe(bp), MediaInfo.from_probe(fp)
        console.print("[dim]note: same inputs and settings as an earlier run: its alignment, from the cache[/]")
        _report(hit.spatial, hit.temporal, console, audio_min)
        return hit
    bg_clip, fg_clip = open_video(bp.path), open_video(fp.path)
    prog = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=console, transient=True, disable=not console.is_terminal)
    with prog:
        # FG's fingerprints and both audio tracks decode while the spatial search runs:
        # none of them needs the footprint (FG is cropped only when it sticks out of BG)
        visual = method != "audio"
        # the refinement's FG samples at full size come from FG's fingerprint pass, their
        # BG partners from BG's: no random access into long-GOP inputs afterwards
        may_refine = (visual and x is None and y is None and cfg["spatial"].get("refine", True)
                      and not (scale in (None, 1.0) and (fp.width, fp.height) == (bp.width, bp.height)))
        samples: list[int] = []
        if may_refine:
            from .spatial import refine_samples

            samples = refine_samples(fp.frames)
        # at a lower priority: the footprint search beside it is a chain of short steps
        # that BG's decode waits for; FG's pass fills the idle core around them
        searching = x is None and y is None and (fp.width, fp.height) != (bp.width, bp.height)
        use_audio = method in ("auto", "audio") and bp.has_audio and fp.has_audio
        # Without sound, FG's own fingerprints say which FG frame a few BG frames show
        # (anchors): FG's pass goes first, at full speed, while BG's window is read, and
        # keeps FG's middle frames for the footprint search
        anchored = visual and searching and not use_audio and cfg["spatial"].get("anchors", True)
        fg_grab = sorted(set(samples) | (set(_anchor_samples(fp.frames)) if anchored else set()))
        _trace("FG pass starts")
        fg_watch = _Watch()
        fg_job = _Job(_fingerprints, fp, None, cfg["fingerprint"], prog,
                      prog.add_task("decoding FG", total=fp.frames), fg_grab,
                      nice=10 if searching and not anchored else 0, watch=fg_watch) if visual else None
        have_bg: dict[int, np.ndarray] = {}
        have_fg: dict[int, np.ndarray] = {}
        audio_job = early_audio if use_audio else None

        # 1) coarse spatial: the footprint the temporal fingerprints are taken in
        prior_pl = None
        fg_mid = None
        if audio_job is not None and x is None and y is None and (fp.width, fp.height) != (bp.width, bp.height):
            from .sources import frame_arrays

            fg_mid = _Job(lambda: frame_arrays(fg_clip, [fp.frames // 2], gray=True)[0])
        if x is not None or y is not None:
            fw, fh = fp.width * s, fp.height * s
            spatial = Spatial(x=float((bp.width - fw) / 2 if x is None else x),
                              y=float((bp.height - fh) / 2 if y is None else y),
                              scale=s, confidence=1.0, method="manual")
        else:
            got = None
            if audio_job is not None and (fp.width, fp.height) != (bp.width, bp.height):
                # the audio line (about a second of work) says which BG frame lies under
                # FG's middle frame: one pair gives the footprint, no search through BG
                try:
                    am0 = audio_job.get()
                    if am0.confidence >= float(cfg["audio"].get("min_confidence", 0.3)):
                        got = _audio_spatial(bg_clip, fg_clip, bp, fp, scale, (am0.offset_s, am0.rate), have_bg,
                                             fg_mid)
                except VidkompyError:
                    got = None
                except Exception as e:  # noqa: BLE001 - the search below is the fallback
                    _fell_back(console, f"audio-guided footprint skipped ({type(e).__name__}: {e})")
                    got = None
            picks = None
            anchored_line = None
            if got is None and anchored:
                try:
                    found = _anchored_spatial(bg_clip, fg_clip, bp, fp, scale, fg_job, fg_watch, cfg, have_bg,
                                              have_fg)
                except VidkompyError:
                    raise
                except Exception as e:  # noqa: BLE001 - the search below is the fallback
                    _fell_back(console, f"anchored footprint skipped ({type(e).__name__}: {e})")
                    found = None
                if found is not None:
                    got, anchored_line = found[:2], found[2]
            if got is None:
                from . import spatial as sp_mod

                sp_mod.last_stats.clear()
                spatial, prior_pl = _coarse_spatial(bg_clip, fg_clip, bp, fp, scale, console)
                if "bg_picks" in sp_mod.last_stats:
                    picks = (list(sp_mod.last_stats.get("fg_samples", [])),  # type: ignore[arg-type]
                             list(sp_mod.last_stats["bg_picks"]))  # type: ignore[arg-type]
            else:
                spatial, prior_pl = got

        fbg = ffg = None
        fcrop = None
        use_view = False
        if visual:
            bcrop, fcrop = _footprint(spatial, bp, fp)
            line = None
            if audio_job is not None and samples and prior_pl is not None:
                try:
                    am0 = audio_job.get()
                    if am0.confidence >= float(cfg["audio"].get("min_confidence", 0.3)):
                        line = (am0.offset_s, am0.rate)
                except Exception:  # noqa: BLE001 - reported below
                    line = None
            spread, pivot = 0.0, None
            if line is None and anchored_line is not None:
                # a line from anchors in a window of FG: its rate is known to a few tenths
                # of a percent, so the partners far from them get wider windows
                line, spread, pivot = anchored_line[:2], 0.004, anchored_line[2]
            grab_bg = _bg_partners(samples, bp, fp, line, picks if line is None else None, spread, pivot) \
                if samples and prior_pl is not None else []
            grab_bg = [j for j in grab_bg if j not in have_bg]
            use_view = may_refine and prior_pl is not None and bcrop is not None
            _trace(f"footprint found ({spatial.method}); BG pass starts")
            fbg = _fingerprints(bp, bcrop, cfg["fingerprint"], prog, prog.add_task("decoding BG", total=bp.frames),
                                grab_bg)
            _trace("BG pass done")
            have_bg.update(fbg.frames)
            fbg.frames = {}
            ffg = fg_job.get()
            have_fg.update(ffg.frames)
            ffg.frames = {}
            if fcrop is not None:
                ffg = _fingerprints(fp, fcrop, cfg["fingerprint"], prog,
                                    prog.add_task("decoding FG (cropped)", total=fp.frames))

        # 2) audio prior
        am = None
        if audio_job is not None:
            try:
                am = audio_job.get()
            except VidkompyError as e:
                if method == "audio":
                    raise
                _fell_back(console, f"audio skipped: {e}")
    audio_ok = am is not None and am.confidence >= audio_min

    n = fp.frames
    refined_done = False
    if method == "audio":
        off, rate = _snap(am.offset_s, am.rate, bp, fp)
        fmap, unc = realtime_map(n, fp.fps_num, fp.fps_den, bp.frames, bp.fps_num, bp.fps_den, off, rate)
        temporal = Temporal(frame_map=fmap, similarity=[0.0] * n, confidence=float(am.confidence), method="audio",
                            offset_s=float(off), rate=float(rate), uncovered=unc)
        tr = None
    else:
        # 3) visual map on the footprint
        params = TemporalParams.from_dict(cfg["temporal"])
        prior = (am.offset_s, am.rate) if audio_ok else None
        _trace("matching")
        tr = align_visual(ffg, fbg, prior=prior, params=params)
        _trace("matched")
        spatial0 = spatial

        def rematch(bcrop_new, fcrop_new, why: str):
            """Fingerprint BG (and FG, when its crop changed) on another footprint; match again."""
            with prog:
                fbg_new = _fingerprints(bp, bcrop_new, cfg["fingerprint"], prog,
                                        prog.add_task(f"decoding BG ({why})", total=bp.frames))
                ffg_new = ffg if fcrop_new == fcrop else _fingerprints(
                    fp, fcrop_new, cfg["fingerprint"], prog, prog.add_task("decoding FG", total=fp.frames))
            return align_visual(ffg_new, fbg_new, prior=prior, params=params)

        if prior is not None and not tr.related:
            # a wrong audio prior must not sink a visual match that exists: search freely
            tr2 = align_visual(ffg, fbg, prior=None, params=params)
            if tr2.confidence > tr.confidence:
                tr = tr2
        if not tr.related and spatial.method not in ("manual", "same-size"):
            # a wrong footprint looks exactly like unrelated inputs: try a second opinion
            alt = _template_placement(bg_clip, fg_clip, bp, fp, 1.0 if scale is None else s,
                                      (am.offset_s, am.rate) if audio_ok else None)
            if abs(alt.x - spatial.x) + abs(alt.y - spatial.y) > 2:
                tr2 = rematch(*_footprint(alt, bp, fp), "second footprint")
                if tr2.confidence > tr.confidence:
                    console.print(f"[yellow]note:[/] spatial estimate ({spatial.x:.0f}, {spatial.y:.0f}) did not "
                                  f"match in time; using template match ({alt.x:.0f}, {alt.y:.0f})")
                    tr, spatial, prior_pl = tr2, alt, None
        if use_view and tr.related and prior_pl is not None:
            # The coarse footprint is good to a pixel or two when the camera moves, and
            # the BG fingerprints were cropped with it: refine it on the matched pairs and,
            # when it moved, fingerprint BG once more on the refined footprint and match
            # again (the first map is right almost everywhere, so the refinement is exact).
            refined = _refine(bg_clip, fg_clip, [int(v) for v in tr.frame_map], prior_pl, scale, have_fg, have_bg,
                              console, tr.uncovered)
            if refined is not None:
                spatial, refined_done = refined, True
                # in fingerprint pixels: a move well inside one is what the sub-pixel
                # re-registration of the planes absorbs; more shifts content across the crop
                moved = max(abs(refined.x - spatial0.x), abs(refined.y - spatial0.y),
                            abs(refined.scale - spatial0.scale) * max(fp.width, fp.height))
                moved_fp = moved * float(cfg["fingerprint"]["size"][0]) / max(1.0, fp.width * refined.scale)
                bcrop1, fcrop1 = _footprint(refined, bp, fp)
                if moved_fp > REMATCH_FP_PX and bcrop1 is not None and (bcrop1, fcrop1) != (bcrop, fcrop):
                    if refined.confidence >= 0.3:
                        tr1 = rematch(bcrop1, fcrop1, "refined footprint")
                        if tr1.related:
                            tr1.notes.append(f"re-matched on the refined footprint (moved {moved:.2f} px)")
                            tr = tr1
                            # the refinement saw the first map's pairs, a frame off here and
                            # there (a drift it reports may be theirs): once more on the new map
                            refined_done = False
                            prior_pl = refined  # a Spatial is a Placement: the prior as it is
                    else:
                        # Unsure on the matched pairs and elsewhere than the crop: the
                        # crop may be what is wrong (zooming content: a neighbouring frame
                        # fits a slightly shifted, scaled footprint, and the map follows
                        # it, a frame or two off). Match again on the refined footprint;
                        # keep that if the pairs it gives confirm a placement clearly.
                        tr1 = rematch(bcrop1, fcrop1, "second footprint")
                        r2 = _refine(bg_clip, fg_clip, [int(v) for v in tr1.frame_map], prior_pl, scale, have_fg,
                                     have_bg, console, tr1.uncovered) if tr1.related else None
                        if r2 is not None and r2.confidence >= max(0.3, refined.confidence + 0.2):
                            tr1.notes.append(f"re-matched on the refined footprint (moved {moved:.2f} px, "
                                             f"spatial confidence {refined.confidence:.2f} -> {r2.confidence:.2f})")
                            tr, spatial = tr1, r2
        temporal = _temporal_from(tr, bp, fp, "audio+visual" if prior is not None else "visual")
        if not tr.related:
            fmap, unc = _start_map(bp, fp)
            temporal = Temporal(frame_map=fmap, similarity=[0.0] * n, confidence=round(float(tr.confidence), 4),
                                method="start", offset_s=0.0, rate=1.0, uncovered=unc)

    # 4) spatial refinement on the matched pairs
    if spatial.method != "manual" and spatial.method != "same-size" and cfg["spatial"].get("refine", True) \
            and temporal.method != "start" and prior_pl is not None and not refined_done:
        got_r = _refine(bg_clip, fg_clip, temporal.frame_map, prior_pl, scale, have_fg, have_bg, console,
                        temporal.uncovered)
        if got_r is not None:
            spatial = got_r
    if temporal.method == "start" and spatial.confidence < 0.8 and x is None and y is None:
        # Without a time match nothing confirms the spatial search (an unrelated clip
        # still finds some best-correlating spot): FG at its own size (or the user's
        # --scale), centred, shrunk only when it does not fit
        s_c = s if scale is not None else 1.0
        s_c = min(s_c, bp.width / fp.width, bp.height / fp.height)
        fw, fh = fp.width * s_c, fp.height * s_c
        spatial = Spatial(x=(bp.width - fw) / 2, y=(bp.height - fh) / 2, scale=float(s_c), confidence=0.0,
                          method="center")

    _report(spatial, temporal, console, audio_min)
    _trace("refined")
    result = Alignment(bg=MediaInfo.from_probe(bp), fg=MediaInfo.from_probe(fp), spatial=spatial, temporal=temporal)
    if rkey and not _FALLBACKS.get():
        _keep_result(rkey, result)
    return result


def _report(spatial: Spatial, temporal: Temporal, console: Console, audio_min: float) -> None:
    """The warnings a result calls for (the same for a fresh and a cached one)."""
    if temporal.method == "audio" and temporal.confidence < audio_min:
        console.print(f"[yellow]warning:[/] audio match is weak (confidence {temporal.confidence:.2f}); "
                      "the inputs may not share a soundtrack")
    if temporal.method == "start":
        console.print(f"[yellow]warning:[/] FG does not match BG (confidence {temporal.confidence:.2f}): "
                      "are these the same footage? falling back to a start-aligned map")
    if temporal.method not in ("start", "audio") and spatial.method not in ("manual", "same-size", "center") \
            and spatial.confidence < 0.3:
        console.print(f"[yellow]warning:[/] FG's position is uncertain on the matched frames (spatial confidence "
                      f"{spatial.confidence:.2f}): check the result, or give --x/--y/--scale")
    if temporal.uncovered:
        console.print(f"[yellow]note:[/] {len(temporal.uncovered)} FG frame(s) lie outside BG; "
                      "their BG frame is clamped to BG's first/last frame")


# -- whole results, cached --------------------------------------------------------------
# Fingerprints and audio are cached per file, but the spatial refinement reads full-size
# pictures (random access: most of a re-run's time). The result itself is cached under
# the inputs' contents, every setting and the code that made it.
@functools.lru_cache(maxsize=1)
def _code_key() -> str:
    import hashlib

    h = hashlib.sha1()
    for f in sorted(Path(__file__).resolve().parent.glob("*.py")):
        h.update(f.name.encode() + b"|" + f.read_bytes())
    return h.hexdigest()[:16]


def _results_dir() -> Path:
    from .cache import cache_dir

    return cache_dir("results")


def _result_key(bg: str | os.PathLike[str], fg: str | os.PathLike[str], cfg: dict, method: str,
                x: float | None, y: float | None, scale: float | None) -> str | None:
    from .cache import file_key

    try:
        return file_key(bg, "result", file_key(fg), _code_key(), json.dumps(cfg, sort_keys=True), method, x, y, scale)
    except (OSError, TypeError, ValueError):
        return None  # not a readable file: the probe says so


def _cached_result(key: str) -> Alignment | None:
    try:
        return Alignment.from_dict(json.loads((_results_dir() / f"{key}.json").read_text()))
    except (OSError, ValueError, VidkompyError):
        return None  # none, unreadable or unwritable cache: the run makes its own


def _keep_result(key: str, al: Alignment) -> None:
    try:
        al.save(_results_dir() / f"{key}.json")
    except OSError:
        pass  # a cache that cannot be written only costs the next run its time


def _refine(bg_clip: Any, fg_clip: Any, fmap: list[int], prior_pl: Any, scale: float | None,
            have_fg: dict[int, np.ndarray], have_bg: dict[int, np.ndarray], console: Console,
            uncovered: Any = None) -> Spatial | None:
    """Spatial refinement on matched pairs; ``None`` (with a note) when it fails."""
    try:
        from . import spatial as sp

        return sp.refine_from_clips(bg_clip, fg_clip, fmap, prior=prior_pl, scale=scale,
                                    frames={"fg": have_fg, "bg": have_bg},
                                    uncovered=None if uncovered is None else [int(v) for v in uncovered])
    except VidkompyError:
        raise
    except Exception as e:  # noqa: BLE001 - the coarse placement stands
        _fell_back(console, f"spatial refinement skipped ({type(e).__name__}: {e})")
        return None


def _temporal_from(tr: TemporalResult, bp: Probe, fp: Probe, method: str) -> Temporal:
    return Temporal(frame_map=[int(v) for v in tr.frame_map],
                    similarity=[round(float(v), 4) for v in tr.similarity],
                    confidence=round(float(tr.confidence), 4), method=method,
                    offset_s=float(tr.offset_s), rate=float(tr.rate),
                    uncovered=[int(v) for v in tr.uncovered])

