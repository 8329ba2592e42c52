"""Frame fingerprints: every frame of an input as a small grey plane, read in one pass.

Per frame we keep the plane itself (uint8, ``size`` = 64x36 by default), from which the
matcher derives zero-mean/unit-norm vectors (correlation = one dot product), a 64-bit
perceptual hash (DCT of a 32x32 reduction, bits = above the median) and the
frame-difference energy (mean absolute change from the previous frame: the motion signal).

Decoding: in-process through PyAV (crop + area scale + grey by FFmpeg's own filters, see
:class:`decode.Shrink`) is the default; its frame count is checked against the count LWLibav
reports (the renderer's frame numbers) and, on any mismatch, the pass is redone through
VapourSynth/LWLibav, which is frame-exact by construction (variable-frame-rate inputs,
which the frame server reads at a constant rate, go there from the start).
Planes are cached per file (content key + crop + size) in ``cache_dir("fingerprints")``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from . import decode
from .cache import cache_dir, file_key
from .errors import VidkompyError
from .fsutil import atomic_save_npy

FP_VERSION = 4  # 2: decoded without autorotation; 3: decoded in-process (PyAV); 4: the frame server's planes
# made as PyAV's (full range, area-averaged), not limited-range bilinear
DEFAULT_SIZE = (64, 36)

Crop = tuple[int, int, int, int]  # x, y, w, h in source pixels


class Fingerprints:
    """Small grey planes of every frame plus per-frame signals derived from them when
    first asked for (the matcher needs only the planes)."""

    def __init__(self, planes: np.ndarray, fps: float, frames: dict[int, np.ndarray] | None = None, *,
                 phash: np.ndarray | None = None, energy: np.ndarray | None = None) -> None:
        self.planes = planes  # (N, h, w) uint8
        self.fps = fps
        # full-resolution grey (luma) pictures of the frames asked for with ``grab`` (uncropped)
        self.frames: dict[int, np.ndarray] = {} if frames is None else frames
        # (given ones, e.g. a shifted copy's, are kept as they are)
        if phash is not None:
            self.__dict__["phash"] = phash
        if energy is not None:
            self.__dict__["energy"] = energy

    @functools.cached_property
    def phash(self) -> np.ndarray:
        """(N,) uint64 perceptual hashes (:func:`phash64`)."""
        return phash64(self.planes) if len(self.planes) else np.zeros(0, np.uint64)

    @functools.cached_property
    def energy(self) -> np.ndarray:
        """(N,) float32, mean |frame - previous| in grey levels (0 for frame 0)."""
        return _energy(self.planes)

    @property
    def n(self) -> int:
        return int(self.planes.shape[0])

    def vectors(self, lo: int = 0, hi: int | None = None, *, size: tuple[int, int] | None = None) -> np.ndarray:
        """Zero-mean, unit-norm float32 vectors of frames ``lo:hi`` (optionally reduced to ``size``)."""
        p = self.planes[lo:hi]
        if size is not None and size != (p.shape[2], p.shape[1]):
            p = area_reduce(p, size)
        return normalise(p.reshape(p.shape[0], -1))


def normalise(x: np.ndarray) -> np.ndarray:
    """Rows zero-mean and unit-norm (float32). Flat rows stay zero: they correlate with nothing."""
    x = x.astype(np.float32, copy=True)
    x -= x.mean(axis=1, keepdims=True)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    # A flat frame (black, fade) has no structure; a tiny floor avoids 0/0 and leaves it ~0.
    x /= np.maximum(n, 1e-3 * np.sqrt(x.shape[1]))
    return x


def _area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Linear operator (n_out x n_in) that averages input cells into output cells by overlap."""
    m = np.zeros((n_out, n_in), np.float32)
    scale = n_in / n_out
    for o in range(n_out):
        a, b = o * scale, (o + 1) * scale
        for i in range(int(np.floor(a)), min(n_in, int(np.ceil(b)))):
            m[o, i] = max(0.0, min(b, i + 1) - max(a, i))
    return m / m.sum(axis=1, keepdims=True)


def area_reduce(planes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-average (N, h, w) planes to (N, size[1], size[0]) float32, as two matrix products."""
    w, h = size
    ry = _area_matrix(planes.shape[1], h)
    rx = _area_matrix(planes.shape[2], w)
    return np.einsum("yh,nhw,xw->nyx", ry, planes.astype(np.float32), rx, optimize=True)


def phash64(planes: np.ndarray) -> np.ndarray:
    """64-bit perceptual hashes: 8x8 lowest DCT terms of a 32x32 reduction vs. their median."""
    small = area_reduce(planes, (32, 32))
    # the 8x8 lowest terms of the orthonormal 2-D DCT-II, as two matrix products
    c = np.cos(np.pi * (2 * np.arange(32) + 1) * np.arange(8)[:, None] / 64) * np.sqrt(2 / 32)
    c[0] /= np.sqrt(2)
    d = np.einsum("uy,nyx,vx->nuv", c.astype(np.float32), small, c.astype(np.float32),
                  optimize=True).reshape(len(planes), 64)
    med = np.median(d[:, 1:], axis=1, keepdims=True)  # DC excluded: brightness only
    bits = (d > med).astype(np.uint64)
    return (bits << np.arange(64, dtype=np.uint64)).sum(axis=1, dtype=np.uint64)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bitwise Hamming distance of uint64 hashes (broadcasting)."""
    x = np.atleast_1d(np.bitwise_xor(np.asarray(a, np.uint64), np.asarray(b, np.uint64)))
    d = np.unpackbits(np.ascontiguousarray(x).view(np.uint8).reshape(*x.shape, 8), axis=-1).sum(axis=-1)
    return d if np.ndim(a) or np.ndim(b) else d[0]


def _energy(planes: np.ndarray) -> np.ndarray:
    e = np.zeros(len(planes), np.float32)
    if len(planes) > 1:
        # chunked so a long input never holds a float copy of every plane
        for lo in range(1, len(planes), 4096):
            hi = min(len(planes), lo + 4096)
            a = planes[lo - 1:hi - 1].astype(np.int16)
            b = planes[lo:hi].astype(np.int16)
            e[lo:hi] = np.abs(b - a).mean(axis=(1, 2))
    return e


def from_planes(planes: np.ndarray, fps: float) -> Fingerprints:
    return Fingerprints(planes, fps)


# -- decoding -------------------------------------------------------------------------
Progress = Callable[[int], None]
Grabbed = Callable[[int, np.ndarray], None]

def grabs_exact(pix_fmt: str) -> bool:
    """Whether the in-process pass can hand over full-size pictures equal to the frame server's."""
    return decode.gray8_exact(pix_fmt)


@dataclass
class Grab:
    """Full-resolution grey frames to keep from a fingerprint pass.

    ``indices`` are frame numbers; ``width``/``height`` the input's size; ``pix_fmt`` its
    FFmpeg pixel format (only YUV/grey inputs are grabbed from the pass, as
    :func:`decode.gray8` makes them, equal to the frame server's pictures); ``on_frame(i,
    img)`` is called as each arrives.
    """

    indices: Iterable[int]
    width: int
    height: int
    pix_fmt: str = "yuv420p"
    on_frame: Grabbed | None = None
    # any other frame of ``spare`` (first, last) goes to ``on_spare`` as well, while they
    # fit ``spare_bytes`` (pictures a search may want, kept as they pass)
    spare: tuple[int, int] | None = None
    spare_bytes: int = 0
    on_spare: Grabbed | None = None

    def wanted(self, frames: int) -> list[int]:
        return sorted({int(i) for i in self.indices if 0 <= int(i) < frames})


@dataclass
class Live:
    """The planes of a pass still under way: ``planes[:count]`` are final (a caller in
    another thread may start on FG's beginning before its end is decoded)."""

    planes: np.ndarray | None = None
    count: int = 0
    # set when a decode attempt was thrown away (its frame count was not the frame
    # server's) and another started: what was seen of it, planes or pictures handed to
    # Grab.on_frame, may be numbered differently
    failed: bool = False

    def start(self, planes: np.ndarray) -> None:
        self.count = 0  # before the new buffer: a reader never pairs an old count with it
        self.planes = planes

    def prefix(self) -> np.ndarray:
        """The final part, as a view (a copy would double an hour-long pass's memory)."""
        planes = self.planes  # before the count (see start)
        return np.zeros((0, 1, 1), np.uint8) if planes is None else planes[:self.count]


def cached_in_full(planes: np.ndarray, progress: Progress | None, live: Live | None) -> None:
    """Planes from the cache: the pass's progress and its live readers see every frame done."""
    if progress is not None:
        progress(len(planes))
    if live is not None:
        live.start(planes)
        live.count = len(planes)


def _lowered(nice: int, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` in a thread of its own at ``nice`` more than now. Linux keeps a nice
    value per thread and the decoder's threads, started from it, inherit it; elsewhere it
    runs at the usual priority. (A thread of its own: an unprivileged thread cannot raise
    its priority back, and the caller's thread must keep its own.)"""
    out: list[Any] = []
    err: list[BaseException] = []

    def run() -> None:
        tid = threading.get_native_id()
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + nice)
        try:
            out.append(fn(*args))
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            err.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join()
    if err:
        raise err[0]
    return out[0]


PROGRESS_EVERY = 16  # frames per progress report (a bar redrawn per frame costs more than it says)


def _decode_av(path: str, crop: Crop | None, size: tuple[int, int], expect: int,
               progress: Progress | None, grab: Grab | None = None,
               grabbed: dict[int, np.ndarray] | None = None, nice: int = 0,
               live: Live | None = None) -> np.ndarray | None:
    """All frames through one in-process decode; ``None`` when its frame count differs
    from ``expect`` or the file cannot be decoded here.

    With ``grab`` the wanted frames are kept from the same decode at full size, as the
    frame server's grey pictures (:func:`decode.gray8`); they land in ``grabbed``.
    """
    if nice:
        return _lowered(nice, _decode_av, path, crop, size, expect, progress, grab, grabbed, 0, live)
    w, h = size
    # one spare row: a frame past ``expect`` says the count is not the frame server's
    buf = np.empty((expect + 1, h, w), np.uint8)
    if live is not None:
        live.start(buf)
    want = set(grab.wanted(expect)) if grab is not None and grabbed is not None else set()
    shape = (grab.height, grab.width) if grab is not None else None
    on_frame = grab.on_frame if grab is not None else None
    spare_left = grab.spare_bytes if grab is not None and grab.spare and grab.on_spare else 0
    s_lo, s_hi = grab.spare if spare_left else (0, -1)
    shrink = decode.Shrink(size, crop)
    n = reported = 0
    try:
        video = decode.tracks(path).video
        if video is None:
            return None
        with contextlib.closing(decode.frames_ahead(path, video.index)) as decoded:
            for f in decoded:
                if n > expect:
                    return None
                buf[n] = shrink(f)
                if n in want and grabbed is not None:
                    img = decode.gray8(f)
                    if img is not None and img.shape == shape:
                        grabbed[n] = img
                        if on_frame is not None:
                            on_frame(n, img)
                elif spare_left > 0 and s_lo <= n <= s_hi:
                    img = decode.gray8(f)
                    if img is not None and img.shape == shape:
                        spare_left -= img.nbytes
                        grab.on_spare(n, img)  # type: ignore[union-attr,misc]
                n += 1
                if live is not None:
                    live.count = min(n, expect)
                if progress is not None and n - reported >= PROGRESS_EVERY:
                    progress(min(n, expect) - reported)
                    reported = min(n, expect)
    except (VidkompyError, decode.DecodeError, ValueError):
        return None
    if n != expect:
        return None
    if progress is not None and n > reported:
        progress(n - reported)
    return buf[:expect]


def _decode_vs(path: str, crop: Crop | None, size: tuple[int, int], progress: Progress | None,
               grab: Grab | None = None, grabbed: dict[int, np.ndarray] | None = None,
               live: Live | None = None) -> np.ndarray:
    """All frames through VapourSynth/LWLibav (the renderer's own frame numbering), the
    planes made as the in-process decode makes them (full-range grey, every source pixel
    averaged: :func:`nodes.node_fingerprints`'s way), so that a side read here and a side
    read by PyAV are compared on the same scale (the cache holds either under one key)."""
    import vapoursynth as vs

    from .nodes import _plane_node, _reduce, analysis_clip
    from .sources import open_video

    clip = open_video(path)
    kw: dict = {"matrix_in_s": "709"} if clip.format.color_family == vs.YUV else {}
    full = vs.core.resize.Bilinear(clip, format=vs.GRAY8, **kw) if grab is not None else None
    node = _plane_node(analysis_clip(clip, "input"), crop, size)
    out = np.empty((node.num_frames, size[1], size[0]), np.uint8)
    want = set(grab.wanted(node.num_frames)) if grab is not None else set()
    if live is not None:
        live.start(out)
    for n, f in enumerate(node.frames(close=True)):
        out[n] = _reduce(np.asarray(f[0]), size)
        if n in want and full is not None and grabbed is not None:
            # the source frame was just decoded: reading it again at full size is cheap
            img = np.array(full.get_frame(n)[0], copy=True)
            grabbed[n] = img
            if grab.on_frame is not None:
                grab.on_frame(n, img)
        if progress is not None:
            progress(1)
        if live is not None:
            live.count = n + 1
    return out


def fingerprints(path: str | os.PathLike[str], *, frames: int, fps: float, crop: Crop | None = None,
                 size: tuple[int, int] = DEFAULT_SIZE, decoder: str = "av",
                 progress: Progress | None = None, cache: bool = True, grab: Grab | None = None,
                 nice: int = 0, live: Live | None = None) -> Fingerprints:
    """Fingerprints of every frame of ``path`` (optionally cropped first), from the cache if present.

    ``frames`` is the LWLibav frame count the result must have (the map indexes those).
    ``decoder``: "av" (in-process, the frame server as the fallback) or "vs" (the frame
    server only).
    ``grab`` asks for some frames at full resolution from the same decode (the result's
    ``frames``); from the cache, or when they cannot be had exactly, there are none and
    the caller reads them itself. ``nice``: run the decoder at that lower CPU priority
    (a pass that has time, beside work that everything else waits for). ``live``: where
    another thread can read the frames decoded so far.
    """
    if decoder not in ("av", "vs"):
        raise VidkompyError(f"fingerprint decoder must be 'av' or 'vs', got {decoder!r}")
    path = str(path)
    size = (int(size[0]), int(size[1]))
    cfile = cache_file(path, crop, size, frames)
    planes = cached_planes(cfile, frames, size) if cache else None
    if planes is not None:
        cached_in_full(planes, progress, live)
    grabbed: dict[int, np.ndarray] = {}
    if planes is None:
        if decoder == "av":
            planes = _decode_av(path, crop, size, frames, progress, grab, grabbed, nice, live)
            if planes is None and live is not None:
                live.failed = True
        if planes is None:
            grabbed.clear()
            planes = _decode_vs(path, crop, size, progress, grab, grabbed, live)
        if planes.shape[0] != frames:
            raise VidkompyError(f"{path}: decoded {planes.shape[0]} frames, expected {frames}")
        if cache:
            atomic_save_npy(cfile, planes)
    return Fingerprints(planes, fps, grabbed)


def cache_file(path: str, crop: Crop | None, size: tuple[int, int], frames: int) -> Path:
    """Where the planes of ``path`` cut to ``crop`` at ``size`` are cached."""
    return cache_dir("fingerprints") / f"{file_key(path, 'fp', FP_VERSION, crop, size, frames)}.npy"


def cached_planes(cfile: Path, frames: int, size: tuple[int, int]) -> np.ndarray | None:
    if not cfile.exists():
        return None
    try:
        planes = np.load(cfile, allow_pickle=False)
    except (OSError, ValueError):
        return None
    return planes if planes.shape == (frames, size[1], size[0]) else None


# AVPictureType's B-frame
_PICT_B = 3
# codecs whose skip_frame=BIDIR decode leaves the other frames as a whole decode gives them
# (no B-frame a later P-frame refers to: checked on H.264; HEVC's B slices are references)
_SAME_REFS = frozenset({"h264"})


class WindowKeep(NamedTuple):
    """BG frames ``lo..hi`` the footprint search will read at ``size`` (grey, area-scaled),
    kept by :class:`LateCrop` as they pass: every reference (non-B) frame with ``every``
    1, else the keyframes only. Frame ``n`` is the one at ``start + n / fps``."""

    lo: int
    hi: int
    size: tuple[int, int]
    fps: float
    start: float
    every: int = 1


class LateCrop:
    """One in-process decode of a whole input into fingerprints whose crop is known only
    later (BG's pass, begun before FG's footprint in it is found).

    Until :meth:`settle` gives the crop, the decoded frames are held, up to ``hold_bytes``
    (past that the decode waits for it); then each goes through the pass's own filters cut
    to the crop (:class:`decode.Shrink`), so the planes are those of a pass begun
    afterwards, bit for bit, however far the decode had got, and the cache keeps them as
    such. A frame whose grey is its luma alone (:func:`decode.gray8_exact`) is held as
    that plane, two thirds of a 4:2:0 frame, and cut from a frame of its own format
    holding it (the grey the filters make reads the luma alone). The full-size grey
    pictures wanted (the refinement's BG partners, known only with the footprint too) are
    kept from the held frames and from the later ones as they pass (the frame server's
    pictures); ``window``: the footprint search's mid-size frames, kept as they pass
    (:meth:`window`). Luma planes past ``hold_bytes`` go to a temporary file, up to
    ``spill_bytes`` (:class:`Spill`), before the decode waits: the pass then gets past a
    window that memory alone cannot hold instead of the search decoding it again.

    (Whole frames reduced to a small size, cut later, were tried first: a reduction that
    does not fall on the crop's pixel grid blurs the planes by a fraction of a pixel,
    enough to move 7 of 360 frames of a 2.5 % drift one frame off.)
    """

    def __init__(self, path: str, *, frames: int, src: tuple[int, int], size: tuple[int, int], hold_bytes: int,
                 progress: Progress | None = None, window: WindowKeep | None = None, spill_bytes: int = 0) -> None:
        self.path, self.frames, self.src, self.size = path, frames, src, size
        self.hold_bytes = hold_bytes
        self._spill = Spill(spill_bytes)
        self.progress = progress
        # one spare row: a frame past ``frames`` says the count is not the frame server's
        self.planes = np.empty((frames + 1, size[1], size[0]), np.uint8)
        self.kept: dict[int, np.ndarray] = {}
        # decoded frames, frame 0 on: an av.VideoFrame, or (luma plane, colour range)
        self._held: list[Any] = []
        self._held_bytes = 0
        self._template: Any = None  # the frame a held luma plane is cut from
        self._crop: tuple[Crop | None] | None = None  # (crop,) once settled
        self._want: set[int] = set()
        self._cv = threading.Condition()
        self._stop = False
        self.decoded = 0  # frames decoded so far
        self.settled_at = -1  # how far the decode had got when the crop came
        self.miscounted = False  # the decode's frames were not the frame server's
        self._full = False  # the held frames fill their budget (the decode waits for the crop)
        self._ended = False  # the decode has ended (or failed)
        self._keep = window
        self._mid: dict[int, np.ndarray] = {}
        self._mid_keys: set[int] = set()
        self._mid_ok = window is not None
        self._mid_shrink = decode.Shrink(window.size) if window is not None else None

    def settle(self, crop: Crop | None, want: Iterable[int]) -> None:
        """The crop the planes are cut to, and the full-size pictures wanted (the decode
        cuts the frames it held before it goes on)."""
        with self._cv:
            self._want = {int(i) for i in want}
            self._crop = (crop,)
            self.settled_at = self.decoded
            self._cv.notify_all()

    def stop(self) -> None:
        """End the decode (its result is not wanted)."""
        with self._cv:
            self._stop = True
            self._cv.notify_all()

    def window(self, lo: int, hi: int, fps: float, start: float, size: tuple[int, int], *,
               keys: bool = False) -> dict[int, np.ndarray] | None:
        """What :func:`decode.window` gives for frames ``lo..hi`` at ``size`` (``keys``:
        ``skip="NONKEY"``, else ``skip="BIDIR"``, every frame, no ``want``), from the frames
        kept as they passed (``window`` at construction) instead of a second decode: the
        keyframes or the reference (non-B) frames, area-scaled grey by the same filters.
        Waits until the decode is past ``hi`` (or has ended); ``None`` when that is not the
        window kept, the decode waits for the crop before ``hi`` (the held frames fill
        their budget), or the frames are not numbered as the timestamps number them (the
        caller then decodes)."""
        k = self._keep
        if k is None or (k.lo, k.hi, k.size) != (lo, hi, size) or abs(k.fps - fps) > 1e-9 \
                or abs(k.start - start) > 1e-9 or (k.every != 1 and not keys):
            return None
        try:
            video = decode.tracks(self.path).video
        except (VidkompyError, decode.DecodeError, ValueError):
            return None
        if video is None or video.codec not in _SAME_REFS:
            return None
        with self._cv:
            while self._mid_ok and not self._stop and not self._ended and self.decoded <= hi:
                if self._full and self._crop is None:
                    return None  # (waiting for the footprint this window is to give)
                self._cv.wait(0.02)
            if not self._mid_ok or self._stop or self.decoded <= hi:
                return None
            out = {n: img for n, img in self._mid.items() if not keys or n in self._mid_keys}
        return out or None

    def picture(self, n: int, *, wait: bool = False) -> np.ndarray | None:
        """Frame ``n`` at full size as the frame server's grey, when it is held as its luma
        plane (before the crop comes): a read through the frame server spared. ``wait``:
        until the decode has got there (or holds all it may, or has ended)."""
        with self._cv:
            while wait and self._crop is None and not self._stop and not self._full and not self._ended \
                    and len(self._held) <= n:
                self._cv.wait(0.02)
            item = self._held[n] if self._crop is None and 0 <= n < len(self._held) else None
            tpl = self._template
        if isinstance(item, Spilled):
            item = self._spill.get(item)
        if not isinstance(item, tuple) or tpl is None:
            return None
        return self._grey(item, tpl)

    @staticmethod
    def _grey(item: tuple[np.ndarray, int], tpl: Any, own: bool = False) -> np.ndarray:
        """A held plane as the frame server's grey; ``own``: the plane is let go of after
        this, so an 8-bit limited-range one is that grey itself, not copied (the BG
        partners kept as the held frames are cut: 2 MB of fresh memory each on 1080p)."""
        y, rng = item
        bits, full = tpl.format.components[0].bits, decode.full_range(rng, tpl.format.name)
        if own and bits == 8 and not full and y.dtype == np.uint8:
            return np.ascontiguousarray(y)
        return decode.to_gray8(y, bits, full)

    def run(self) -> np.ndarray | None:
        """The decode; the planes once it has settled and ended, ``None`` when the frame
        count is not ``frames`` (the frame server's), the file cannot be decoded here, or
        it was stopped."""
        try:
            return self._run()
        finally:
            with self._cv:
                self._ended = True
                self._cv.notify_all()
            if self._crop is not None or self._stop:
                self._spill.close()  # (else a picture may still be read from it)

    def _run(self) -> np.ndarray | None:
        shrink: decode.Shrink | None = None
        n = reported = 0
        try:
            video = decode.tracks(self.path).video
            if video is None:
                return None
            with contextlib.closing(decode.frames_ahead(self.path, video.index)) as decoded:
                for f in decoded:
                    if n > self.frames:
                        self.miscounted = True
                        return None
                    self._keep_mid(n, f)
                    crop = self._hold(f)
                    if self._stop:
                        return None
                    if crop is not None:
                        if shrink is None:
                            shrink = decode.Shrink(self.size, crop[0])
                            self._cut_held(shrink)
                        self._cut(n, f, shrink)
                    n += 1
                    self.decoded = n
                    if self.progress is not None and n - reported >= PROGRESS_EVERY:
                        self.progress(min(n, self.frames) - reported)
                        reported = min(n, self.frames)
            crop = self._hold(None)
            if crop is None:
                return None  # stopped
            if shrink is None:  # (the whole input decoded before the crop came)
                self._cut_held(decode.Shrink(self.size, crop[0]))
        except (VidkompyError, decode.DecodeError, ValueError):
            return None
        if n != self.frames:
            self.miscounted = True
            return None
        if self.progress is not None and n > reported:
            self.progress(n - reported)
        return self.planes[:n]

    def _keep_mid(self, n: int, frame: Any) -> None:
        k = self._keep
        if not self._mid_ok or k is None or not k.lo <= n <= k.hi:
            return
        if frame.pts is None or frame.time_base is None \
                or decode.frame_number(float(frame.pts * frame.time_base), k.start, k.fps) != n:
            self._mid_ok = False  # (not numbered by a constant rate: the search decodes)
            return
        key = bool(frame.key_frame)
        if not key and (k.every != 1 or int(frame.pict_type) == _PICT_B):
            return
        assert self._mid_shrink is not None
        img = self._mid_shrink(frame)
        if img.shape != (k.size[1], k.size[0]):
            self._mid_ok = False
            return
        self._mid[n] = img
        if key:
            self._mid_keys.add(n)

    def _held_item(self, frame: Any) -> tuple[Any, int]:
        """What is held of ``frame`` and its bytes in memory: its luma plane where that is
        all its grey reads (in the spill file once memory holds all it may), else the frame."""
        if decode.gray8_exact(frame.format.name) and (frame.width, frame.height) == self.src:
            tpl = self._template
            if tpl is None or tpl.format.name != frame.format.name:
                tpl = self._template = _blank_like(frame)
            if tpl is not None:
                y = decode.luma(frame)
                if self._held_bytes + y.nbytes > self.hold_bytes:
                    spilled = self._spill.put(frame, int(frame.color_range))
                    if spilled is not None:
                        return spilled, 0
                y = np.array(y, copy=True)
                return (y, int(frame.color_range)), y.nbytes
        return frame, sum(p.buffer_size for p in frame.planes)

    def _hold(self, frame: Any) -> tuple[Crop | None] | None:
        """The crop, once settled; before, ``frame`` is held (waiting while the held
        frames fill their budget); at the end (``frame`` None), wait for the crop."""
        item, size = (None, 0) if frame is None or self._crop is not None else self._held_item(frame)
        with self._cv:
            while self._crop is None and not self._stop \
                    and (frame is None or self._held_bytes + size > self.hold_bytes):
                if frame is not None and not self._full:
                    self._full = True
                    self._cv.notify_all()
                self._cv.wait(0.1)  # memory stays bounded: the rest waits for the footprint
            if self._stop:
                return None
            if self._crop is None:
                self._held.append(item)
                self._held_bytes += size
            return self._crop

    def _cut_held(self, shrink: decode.Shrink) -> None:
        with self._cv:
            held, self._held, self._held_bytes = self._held, [], 0
        for i, item in enumerate(held):
            if isinstance(item, Spilled):
                item = self._spill.get(item)
                if item is None:
                    raise ValueError("a held plane could not be read back")  # (the pass fails: one of its own)
            self._cut(i, item, shrink)
            held[i] = None  # (let each go as soon as it is cut)
        self._spill.close()

    def _cut(self, n: int, item: Any, shrink: decode.Shrink) -> None:
        if isinstance(item, tuple):
            tpl = self._template
            y, rng = item
            _fill_luma(tpl, y)
            tpl.color_range = rng
            self.planes[n] = shrink(tpl)
            if n in self._want:
                self.kept[n] = self._grey(item, tpl, own=True)
            return
        self.planes[n] = shrink(item)
        if n in self._want:
            img = decode.gray8(item)
            if img is not None and img.shape == (self.src[1], self.src[0]):
                self.kept[n] = img


@dataclass(frozen=True, slots=True)
class Spilled:
    """Where :class:`Spill` wrote a luma plane: its buffer as the decoder laid it out (not
    a tuple: a held plane in memory is one)."""

    offset: int
    height: int
    line_size: int  # bytes a line in the buffer
    width: int
    wide: bool  # 16-bit samples
    color_range: int

    @property
    def nbytes(self) -> int:
        return self.line_size * self.height


def spill_file() -> Any:
    """A file for planes held past the memory budget, gone with the process however it
    ends: an anonymous memory file where the system has them (Linux's ``memfd_create``),
    else an unnamed file in the temporary folder. (An ext4 ``/tmp`` took 0.1-0.8 s of
    system time for the 20 s pair's 414 MB, the memory file a steady 0.16-0.2 s: paired
    whole runs 0.95x.)"""
    if hasattr(os, "memfd_create"):
        try:
            return open(os.memfd_create("vidkompy-vs-hold"), "r+b", buffering=0)  # noqa: SIM115
        except OSError:
            pass
    return tempfile.TemporaryFile(prefix="vidkompy-vs-hold-")  # noqa: SIM115


class Spill:
    """Luma planes held past the memory budget, in a file of their own (:func:`spill_file`),
    up to ``limit`` bytes. Written from the decoder's buffer without a copy and read back
    once each."""

    def __init__(self, limit: int) -> None:
        self.limit = limit  # (counted in the planes' own bytes, as memory's budget is)
        self.used = 0  # bytes written (the planes with their line padding)
        self.counted = 0
        self._file: Any = None
        self._lock = threading.Lock()
        # (positional reads and writes are POSIX calls: elsewhere nothing is spilled, and the
        # decode waits where memory is full, as before)
        self._broken = limit <= 0 or not (hasattr(os, "pwrite") and hasattr(os, "preadv"))

    def put(self, frame: Any, color_range: int) -> Spilled | None:
        """``frame``'s luma plane written out, or ``None`` (full, or the file failed)."""
        p = frame.planes[0]
        wide = frame.format.components[0].bits > 8
        nbytes = p.line_size * p.height
        own = p.width * p.height * (2 if wide else 1)
        with self._lock:
            if self._broken or self.counted + own > self.limit:
                return None
            try:
                if self._file is None:
                    self._file = spill_file()  # (open across calls: :meth:`close` closes it)
                mv = memoryview(p).cast("B")[:nbytes]
                if os.pwrite(self._file.fileno(), mv, self.used) != nbytes:
                    raise OSError("short write")
            except (OSError, ValueError, TypeError):
                self._broken = True  # (a full disk: the rest waits in memory as before)
                return None
            out = Spilled(self.used, p.height, p.line_size, p.width, wide, color_range)
            self.used += nbytes
            self.counted += own
        return out

    def get(self, s: Spilled) -> tuple[np.ndarray, int] | None:
        """The plane ``s`` as a held one (plane, colour range), or ``None`` when it cannot
        be read back."""
        buf = np.empty(s.nbytes, np.uint8)
        with self._lock:
            if self._file is None:
                return None
            try:
                got = os.preadv(self._file.fileno(), [buf], s.offset)
            except OSError:
                return None
        if got != s.nbytes:
            return None
        return decode.plane_view(buf, s.height, s.line_size, s.width, s.wide), s.color_range

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
            self._broken = True


def held_bytes(width: int, height: int, pix_fmt: str, bits: int) -> int:
    """About what :class:`LateCrop` holds of one frame of this kind (its luma plane, or,
    for RGB and packed formats, the whole frame)."""
    return width * height * ((2 if bits > 8 else 1) if decode.gray8_exact(pix_fmt) else 4)


def _blank_like(frame: Any) -> Any:
    """A frame of ``frame``'s format and size with buffers of its own (a decoder's frame
    may share its buffers with the frames it refers to), or ``None``."""
    import av

    try:
        tpl = av.VideoFrame(frame.width, frame.height, frame.format.name)
    except (ValueError, TypeError, av.error.FFmpegError):
        return None
    tpl.time_base = frame.time_base
    tpl.pts = 0
    return tpl


def _fill_luma(tpl: Any, y: np.ndarray) -> None:
    p = tpl.planes[0]
    decode.plane_view(memoryview(p), p.height, p.line_size, p.width, y.dtype.itemsize == 2)[...] = y


def clear_cache() -> None:
    for f in Path(cache_dir("fingerprints")).glob("*.npy"):
        f.unlink(missing_ok=True)
