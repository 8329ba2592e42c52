"""The decode passes: each input read once into fingerprints (plus a few full-size frames),
started as early as what they need is known."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field

import numpy as np

from .. import fingerprint as fpm
from ..audio import AudioMatch, load_audio, match_audio
from ..errors import VidkompyError
from ..fsutil import atomic_save_npy
from ..settings import AudioSettings, FingerprintSettings, Settings
from ..sources import Probe, frame_arrays, has_audio
from ..spatial.reads import start_time
from ..spatial.samples import ScanSpec, scan_spec
from .inputs import Input, Probing, Request
from .plan import ANCHOR_AT, Plan
from .run import Job, Run

# Full-size BG pictures kept from the BG fingerprint pass for the spatial refinement (the
# partners of its FG samples, predicted before the map exists): at most this many bytes.
GRAB_BYTES = 96 << 20
# BG's pass begins before the footprint is known: the frames it decodes until then are
# held, up to this many bytes (past that it waits for the footprint)
LATE_HOLD_BYTES = 288 << 20
# ... and past that, when BG's window for the footprint search lies further on, up to this
# many more in a temporary file (the pass then keeps the window as it goes by)
LATE_SPILL_BYTES = 1 << 30
# FG's pass keeps its pictures the anchored footprint search may pair (those across BG's
# window), as they pass, up to this many bytes: a random read of one costs a decode from
# the keyframe before it
SPARE_BYTES = 64 << 20


class Watch:
    """A fingerprint pass as it goes: the pictures it keeps, as they arrive (as the
    input's frames: cut to its picture area), and the planes decoded so far (``live``)."""

    def __init__(self, inp: Input) -> None:
        self.live = fpm.Live()
        self.frames: dict[int, np.ndarray] = {}
        self.spare: dict[int, np.ndarray] = {}  # other pictures kept for the footprint search
        self._cut = inp.cut

    def on_frame(self, i: int, img: np.ndarray) -> None:
        self.frames[i] = self._cut(img)

    def on_spare(self, i: int, img: np.ndarray) -> None:
        self.spare[i] = self._cut(img)

    def picture(self, i: int) -> np.ndarray | None:
        """FG frame ``i`` at full size (grey) if the pass kept it (and numbered it right)."""
        if self.live.failed:
            return None
        return self.frames.get(i, self.spare.get(i))

    def wait(self, ids: list[int], job: Job) -> bool:
        """Until the pictures ``ids`` are in (True) or the pass has ended (False if not)."""
        while not all(i in self.frames for i in ids):
            if not job.is_alive():
                return all(i in self.frames for i in ids)
            time.sleep(0.01)
        return True


def fingerprint_pass(inp: Input, crop: fpm.Crop | None, fs: FingerprintSettings, run: Run, label: str,
                     grab: list[int] | tuple[int, ...] | None = None, nice: int = 0,
                     watch: Watch | None = None, spare: tuple[int, int] | None = None) -> fpm.Fingerprints:
    """One decode of ``inp`` (cropped to ``crop``) into fingerprints, keeping ``grab`` at full
    size (and, for ``watch``, the frames ``spare`` = (first, last) within :data:`SPARE_BYTES`)."""
    p = inp.file
    if inp.node is not None:
        from ..nodes import node_fingerprints

        prints = node_fingerprints(inp.node, key=inp.node_key, crop=inp.file_crop(crop), size=fs.size,
                                   progress=run.task(label, p.frames), grab=grab,
                                   on_frame=watch.on_frame if watch else None, live=watch.live if watch else None,
                                   name=inp.name)
        prints.frames = {i: inp.cut(img) for i, img in prints.frames.items()}
        return prints
    g = fpm.Grab(grab, p.width, p.height, p.pix_fmt, on_frame=watch.on_frame if watch else None,
                 spare=spare if watch else None, spare_bytes=SPARE_BYTES,
                 on_spare=watch.on_spare if watch else None) if grab else None
    prints = fpm.fingerprints(p.path, frames=p.frames, fps=float(p.fps), crop=inp.file_crop(crop), size=fs.size,
                              # a VFR input is read at a constant rate by the frame server only: the
                              # decoder's frames could number the same and still be other frames
                              decoder="vs" if p.vfr else fs.decoder,
                              progress=run.task(label, p.frames), grab=g, nice=nice,
                              live=watch.live if watch else None)
    prints.frames = {i: inp.cut(img) for i, img in prints.frames.items()}
    return prints


def audio_match(bg: str, fg: str, cfg: AudioSettings, probing: Probing | None = None) -> AudioMatch:
    """The audio line (both tracks decoded at once)."""
    # (started with the probes: their answer first, so that a track that cannot be used
    # is not decoded beside the work without sound; without them, a look at each file)
    for i, (name, path) in enumerate((("BG", bg), ("FG", fg))):
        if not (probing.has_audio(i) if probing is not None else has_audio(path)):
            raise VidkompyError(f"{name} has no audio")
    bg_job = Job(load_audio, bg, cfg.rate)
    a_fg = load_audio(fg, cfg.rate)
    a_bg = bg_job.get()
    return match_audio(a_bg, a_fg, cfg.rate, windows=cfg.windows, window_s=cfg.window_s)


@dataclass
class Early:
    """Work started before the probes are in, joined however the call ends: the probes
    themselves (BG's, FG's), the engine's imports, the sound."""

    probing: Probing | None = None
    warm: Job | None = None
    audio: Job | None = None

    def join(self) -> None:
        # a daemon thread still decoding or importing when the interpreter exits can take
        # the process down with it
        if self.probing is not None:
            self.probing.join()
        for t in (self.warm, self.audio):
            if t is not None:
                t.join()


def _warm_imports() -> None:
    import importlib

    # (what every run uses: OpenCV, the spatial engine, the matcher, and the parts of numpy
    # it loads on first use: its masked arrays with the first median (25 ms on the search's
    # serial path), its generators with the keypoints' RANSAC; nothing of scipy's is on the
    # common path)
    for m in ("cv2", "vidkompy_vs.spatial.coarse", "vidkompy_vs.spatial.refine", "vidkompy_vs.align.anchored",
              "vidkompy_vs.bars", "numpy.ma", "numpy.random"):
        try:
            importlib.import_module(m)
        except Exception:  # noqa: BLE001 - the real import, where it is used, reports it
            return


def start_early(bg: str | os.PathLike[str], fg: str | os.PathLike[str], req: Request,
                settings: Settings, probing: Probing) -> Early:
    """OpenCV and the spatial engine take a while to import: load them while the inputs are
    probed (index builds leave a core idle) rather than on first use; and the sound, as
    soon as the probes say both inputs have it (the first thing it waits for)."""
    audio = Job(audio_match, os.fspath(bg), os.fspath(fg), settings.audio, probing) \
        if req.method in ("auto", "audio") else None
    return Early(probing=probing, warm=Job(_warm_imports), audio=audio)


class LatePass:
    """BG's fingerprint pass, begun with FG's before the footprint is known
    (:class:`fingerprint.LateCrop`): BG is decoded once, from the start, its frames held
    until the footprint is found, then cut to it; the partners the refinement wants are
    kept at full size from the same decode."""

    def __init__(self, bg: Input, fs: FingerprintSettings, run: Run, window: fpm.WindowKeep | None = None) -> None:
        p = bg.probe
        self.bg, self.fs, self.run = bg, fs, run
        self.decoder = fs.decoder  # what a pass of its own, if one is needed, decodes with
        self.late = fpm.LateCrop(p.path, frames=p.frames, src=(p.width, p.height), size=fs.size,
                                 hold_bytes=LATE_HOLD_BYTES, progress=run.task("decoding BG", p.frames),
                                 window=window, spill_bytes=_spill_need(p, window.hi) if window is not None else 0)
        # (at the usual priority, unlike FG's beside a search: BG's decode is the longest
        # piece of work the prepass has, and the rest fits around it)
        self.job = Job(self.late.run)

    def window(self, lo: int, hi: int, fps: float, size: tuple[int, int], keys: bool) -> dict[int, np.ndarray] | None:
        """BG's window ``lo..hi`` at ``size`` as the footprint search's sequential read gives
        it (``keys``: its keyframes), kept by this pass as they went by
        (:meth:`fingerprint.LateCrop.window`); ``None``: the search reads it itself."""
        start = start_time(self.bg.probe.path)
        if start is None or fps <= 0:
            return None
        got = self.late.window(lo, hi, fps, start, size, keys=keys)
        if got is not None:
            self.run.trace(f"BG's window {lo}-{hi} ({'keyframes' if keys else 'reference frames'}) "
                           "from the early pass")
        return got

    def picture(self, n: int, wait: bool = False) -> np.ndarray | None:
        """BG frame ``n`` at full size (grey) from the held frames (``wait``: until the pass
        gets there), or ``None``."""
        return self.late.picture(n, wait=wait)

    def prints(self, crop: fpm.Crop | None, grab: list[int]) -> fpm.Fingerprints | None:
        """BG's fingerprints on ``crop`` with the pictures ``grab``; ``None`` when the pass
        cannot give them (a frame count not the frame server's, a file not decodable
        here): a pass of its own then."""
        p, size = self.bg.probe, self.fs.size
        cfile = fpm.cache_file(p.path, crop, size, p.frames)
        planes = fpm.cached_planes(cfile, p.frames, size)
        if planes is not None:
            # (the pictures then come from the refinement's own reads, as after a cached pass)
            self.join()
            self.run.trace("BG's fingerprints on the footprint from the cache")
            return fpm.Fingerprints(planes, float(p.fps))
        self.late.settle(crop, grab)
        self.run.trace(f"BG's early pass cut to the footprint at frame {self.late.settled_at}")
        planes = self.job.get()
        if planes is None:
            # (its frames not numbered as the frame server's: the in-process decode would
            # fail again)
            self.decoder = "vs" if self.late.miscounted else self.decoder
            self.run.trace("BG's early pass failed: a pass of its own")
            return None
        atomic_save_npy(cfile, planes)
        return fpm.Fingerprints(planes, float(p.fps), dict(self.late.kept))

    def join(self) -> None:
        """Stop the pass (if it still runs) and wait for it."""
        self.late.stop()
        self.job.join()


def _spill_need(p: Probe, hi: int) -> int:
    """What BG's pass spills past its memory budget before it gets past frame ``hi`` (the
    end of the window it keeps; beyond that the search is under way and the pass waits
    for it, as without a window), a frame to spare."""
    return max(0, (hi + 3) * fpm.held_bytes(p.width, p.height, p.pix_fmt, p.bits) - LATE_HOLD_BYTES)


def anchor_spec(bg: Input, fg: Input, plan: Plan) -> ScanSpec | None:
    """BG's window the anchored footprint search will read (:func:`spatial.scan_window`),
    or ``None`` (no anchored search)."""
    fps = float(bg.probe.fps)
    if not plan.anchored or fps <= 0 or bg.probe.frames < 1:
        return None
    return scan_spec(bg.probe.frames, fg.probe.frames, fps, bg.size, fg.size, ANCHOR_AT)


def fg_spare(fg: Input, bg: Input, spec: ScanSpec | None) -> tuple[int, int] | None:
    """FG's frames across BG's window ``spec`` (first, last)."""
    if spec is None:
        return None
    nb, nf = bg.probe.frames, fg.probe.frames
    return max(0, math.floor(spec.lo * nf / nb) - 1), min(nf - 1, math.ceil((spec.hi + 1) * nf / nb))


def bg_window(bg: Input, spec: ScanSpec | None) -> fpm.WindowKeep | None:
    """The mid-size frames of BG's window ``spec``, kept by BG's pass as they go by instead
    of a second decode of that stretch."""
    p = bg.probe
    start = start_time(p.path) if spec is not None else None
    if spec is None or start is None:
        return None
    # (a window past what the pass holds, in memory and spilled, before it waits for the
    # footprint never comes from it: the search reads it itself, and nothing is kept for it)
    if _spill_need(p, spec.hi) > LATE_SPILL_BYTES:
        return None
    return fpm.WindowKeep(spec.lo, spec.hi, (spec.mid.width, spec.mid.height), float(p.fps), start, spec.every)


@dataclass
class Passes:
    """What runs beside the footprint search: FG's fingerprint pass (seen through
    ``watch``), the audio line, FG's middle frame; and the full-size pictures kept so far."""

    fg_pass: Job | None
    watch: Watch
    audio: Job | None
    fg_mid: Job | None
    bg_pass: LatePass | None = None
    have_bg: dict[int, np.ndarray] = field(default_factory=dict)
    have_fg: dict[int, np.ndarray] = field(default_factory=dict)

    def join(self) -> None:
        """Wait for the passes however the prepass ended: a daemon thread still decoding
        (or in a frame request) when the interpreter exits can take the process down."""
        if self.bg_pass is not None:
            self.bg_pass.join()
        for job in (self.fg_pass, self.fg_mid, self.audio):
            if job is not None:
                job.join()


def start_passes(bg: Input, fg: Input, req: Request, plan: Plan, settings: Settings, run: Run,
                 early: Early) -> Passes:
    """FG's fingerprints and both audio tracks decode while the spatial search runs: none
    of them needs the footprint (FG is cropped only when it sticks out of BG); and BG's
    fingerprints too, cut to the footprint later (:class:`LatePass`), when it is searched."""
    run.trace("FG pass starts")
    watch = Watch(fg)
    fs = settings.fingerprint
    spec = anchor_spec(bg, fg, plan)
    fg_pass = Job(fingerprint_pass, fg, None, fs, run, "decoding FG", plan.fg_grab,
                  nice=plan.fg_nice, watch=watch, spare=fg_spare(fg, bg, spec)) if plan.visual else None
    bg_pass = None
    # (a caller's node goes through the frame server, a VFR input is read at a constant
    # rate by it alone, and a file the frame server opens cut is none of this: their own pass)
    if plan.visual and plan.searching and bg.node is None and bg.file_probe is None and not bg.probe.vfr \
            and fs.decoder == "av":
        run.trace("BG pass starts (early: cut to the footprint once it is found)")
        bg_pass = LatePass(bg, fs, run, bg_window(bg, spec))
    audio = early.audio if plan.use_audio else None
    fg_mid = None
    if audio is not None and not req.manual and fg.size != bg.size:
        # FG's middle frame does not depend on the audio line: read while it is matched
        fg_mid = Job(lambda: frame_arrays(fg.clip, [fg.probe.frames // 2], gray=True)[0])
    return Passes(fg_pass=fg_pass, watch=watch, audio=audio, fg_mid=fg_mid, bg_pass=bg_pass)


def bg_partners(samples: tuple[int, ...], bg_probe: Probe, fg_probe: Probe, line: tuple[float, float] | None,
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
    r0 = float(bg_probe.fps) / float(fg_probe.fps)
    if line is not None:
        off, rate = line
        centre = {i: (off + rate * (i + 0.5) / float(fg_probe.fps)) * float(bg_probe.fps) - 0.5 for i in samples}
        mid = (fg_probe.frames - 1) / 2 if pivot is None else pivot
        half = {i: 1 + (1 + int(math.ceil(spread * r0 * abs(i - mid))) if spread else 0) for i in samples}
    elif picks is not None and picks[0]:
        fidx, bpk = picks
        o = float(np.median([b + 0.5 - r0 * (f + 0.5) for f, b in zip(fidx, bpk, strict=False)]))
        mid = float(np.median(fidx))
        centre = {i: o + r0 * (i + 0.5) - 0.5 for i in samples}
        half = {i: 2 + int(math.ceil(0.03 * r0 * abs(i - mid))) for i in samples}
    else:
        return []
    budget = max(len(samples), GRAB_BYTES // max(1, bg_probe.width * bg_probe.height))
    total = sum(2 * h + 1 for h in half.values())
    if total > budget:
        f = budget / total
        half = {i: max(1 if line is not None else 0, int(h * f)) for i, h in half.items()}
    out: set[int] = set()
    for i in samples:
        c = int(round(centre[i]))
        out.update(j for j in range(c - half[i], c + half[i] + 1) if 0 <= j < bg_probe.frames)
    return sorted(out)
