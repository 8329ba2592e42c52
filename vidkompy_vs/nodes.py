"""Alignment inputs that are VapourSynth nodes (a caller's own ``.vpy``: after an IVTC,
a crop, a denoise), read only through the frame server.

Everything the file path gets from a probe comes from the node itself (size, fps from
``fps_num``/``fps_den``, frame count, format, bit depth, SAR from the first frame's
props); fingerprints, window reads and full-size pictures are frame requests; sound is
an optional ``AudioNode``. A node has no file to key caches on, so its key is its
content (:func:`content_key`).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import threading
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Any

import numpy as np
import vapoursynth as vs

from . import fingerprint as fpm
from .cache import cache_dir
from .errors import VidkompyError
from .fsutil import atomic_save_npy
from .sources import Probe, frame_arrays

core = vs.core

NODE_FP_VERSION = 1
# the path recorded for a node in an alignment (reports and exports find no file there)
NODE_PATH = "<VideoNode>"


def is_node(x: object) -> bool:
    return isinstance(x, vs.VideoNode)


# -- checks and probe ----------------------------------------------------------------------
def analysis_clip(node: object, name: str) -> vs.VideoNode:
    """``node`` checked, as the clip the analysis reads: every fault a one-line error.

    RGB is read through BT.709 luma (the analysis works on grey pictures, and zimg needs
    a matrix for that); ``_FieldBased`` is dropped, so that a woven (inverse-telecined)
    frame is resized as the one picture it is."""
    if isinstance(node, vs.AudioNode):
        raise VidkompyError(f"{name}: is an AudioNode; pass the video as {name.lower()} and the sound as "
                            f"{name.lower()}_audio=")
    if not isinstance(node, vs.VideoNode):
        raise VidkompyError(f"{name}: expected a file path or a vapoursynth.VideoNode, got {type(node).__name__}")
    fmt = node.format
    if fmt is None or fmt.id == vs.NONE.value:
        raise VidkompyError(f"{name}: the node's format varies from frame to frame; convert it to one format "
                            "first (e.g. core.resize.Bicubic(clip, format=vs.YUV420P8))")
    if node.width == 0 or node.height == 0:
        raise VidkompyError(f"{name}: the node's frame size varies; resize it to one size first")
    if node.num_frames < 2:
        raise VidkompyError(f"{name}: the node has {node.num_frames} frame(s); alignment needs a clip "
                            "(loop a still into one first: clip * 250)")
    if node.fps.numerator == 0:
        # per-frame durations would need a time base for every stage: refuse, plainly
        raise VidkompyError(f"{name}: the node has a variable frame rate (fps 0); give it a constant one "
                            "first (std.AssumeFPS, or VFRToCFR-style frame repeats)")
    if fmt.color_family == vs.RGB:
        node = core.resize.Point(node, format=fmt.replace(color_family=vs.YUV, subsampling_w=0,
                                                          subsampling_h=0).id, matrix_s="709")
    return core.std.RemoveFrameProps(node, props=["_FieldBased", "_Field"])


def audio_checked(anode: object, name: str) -> vs.AudioNode | None:
    if anode is None:
        return None
    if not isinstance(anode, vs.AudioNode):
        raise VidkompyError(f"{name.lower()}_audio: expected a vapoursynth.AudioNode, got {type(anode).__name__}")
    if anode.num_samples < anode.sample_rate // 4:
        raise VidkompyError(f"{name.lower()}_audio: {anode.num_samples} samples is too short to match "
                            "(a quarter of a second at least)")
    return anode


def _sar(node: vs.VideoNode, name: str) -> Fraction:
    with served(name):
        props = node.get_frame(0).props
    try:
        num, den = int(props.get("_SARNum", 1)), int(props.get("_SARDen", 1))
    except (TypeError, ValueError):
        return Fraction(1)
    return Fraction(num, den) if num > 0 and den > 0 else Fraction(1)


def _pix_fmt(fmt: vs.VideoFormat) -> str:
    """FFmpeg's name for the format, where there is one (messages and the probe's field)."""
    if fmt.color_family == vs.GRAY and fmt.sample_type == vs.INTEGER:
        return "gray" if fmt.bits_per_sample == 8 else f"gray{fmt.bits_per_sample}le"
    if fmt.color_family == vs.YUV and fmt.sample_type == vs.INTEGER:
        sub = {(1, 1): "420", (1, 0): "422", (0, 0): "444", (2, 0): "411", (2, 2): "410", (0, 1): "440"}
        s = sub.get((fmt.subsampling_w, fmt.subsampling_h))
        if s is not None:
            return f"yuv{s}p" + ("" if fmt.bits_per_sample == 8 else f"{fmt.bits_per_sample}le")
    return fmt.name.lower()


def node_probe(node: vs.VideoNode, audio: vs.AudioNode | None, fmt: vs.VideoFormat, name: str = "node") -> Probe:
    """The probe a file would have had, from the node (``fmt``: the caller's own format)."""
    return Probe(path=NODE_PATH, width=node.width, height=node.height, fps_num=node.fps.numerator,
                 fps_den=node.fps.denominator, frames=node.num_frames, pix_fmt=_pix_fmt(fmt),
                 bits=fmt.bits_per_sample, has_audio=audio is not None,
                 audio_rate=audio.sample_rate if audio is not None else 0,
                 audio_channels=audio.num_channels if audio is not None else 0, sar=_sar(node, name))


@contextlib.contextmanager
def served(name: str) -> Iterator[None]:
    """A frame the caller's graph fails to make (a filter's error) as one line, naming the side."""
    try:
        yield
    except vs.Error as e:
        # (a Python filter's error comes with its traceback: the last line says what)
        msg = (str(e).strip().splitlines() or ["no message"])[-1]
        raise VidkompyError(f"{name}: the node failed to make a frame ({msg})") from None


# -- content keys --------------------------------------------------------------------------
# The key reads RUNS runs of RUN consecutive frames spread over the clip: consecutive, so
# that a change of a decimation or pulldown pattern (periods up to RUN) shows in each run,
# and spread, so that a trim or a retime moves every sampled frame.
RUNS = 4
RUN = 6


def key_frames(n: int) -> list[int]:
    if n <= RUNS * RUN:
        return list(range(n))
    starts = {int(round(q * (n - RUN))) for q in np.linspace(0.0, 1.0, RUNS)}
    return sorted({s + k for s in starts for k in range(RUN)})


def content_key(node: vs.VideoNode, name: str = "node") -> str:
    """A key for what ``node`` shows: its format, size, rate and frame count, and every
    byte of the frames :func:`key_frames` picks.

    VapourSynth keeps a node's graph (its sources and filters) hidden unless the core was
    made with graph inspection, so the key cannot name the source files. A difference
    confined to frames outside the sampled runs (one frame replaced in the middle)
    goes unseen; any trim, retime, crop, filter or pattern change does not."""
    h = hashlib.blake2b(digest_size=16)
    fmt = node.format
    h.update(repr((fmt.name, node.width, node.height, node.num_frames, node.fps_num, node.fps_den)).encode())
    with served(name):
        for a, b in _runs(key_frames(node.num_frames)):
            # run by run: a request from the next run while one of this run is still
            # being made would send a long-GOP decoder back and forth
            for f in node[a:b + 1].frames(close=True):
                for p in range(fmt.num_planes):
                    h.update(np.ascontiguousarray(np.asarray(f[p])).data)
    return h.hexdigest()


def _runs(idx: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for i in idx:
        if out and i == out[-1][1] + 1:
            out[-1] = (out[-1][0], i)
        else:
            out.append((i, i))
    return out


def audio_key(anode: vs.AudioNode | None, name: str = "audio") -> str:
    if anode is None:
        return "-"
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((anode.sample_type, anode.bits_per_sample, anode.sample_rate, anode.num_channels,
                   anode.num_samples)).encode())
    with served(name):
        for i in key_frames(anode.num_frames):
            f = anode.get_frame(i)
            for c in range(f.num_channels):
                h.update(np.ascontiguousarray(np.asarray(f[c])).data)
    return h.hexdigest()


def _frames_of(node: vs.VideoNode, idx: list[int]) -> Iterator[vs.VideoFrame]:
    """Frames ``idx`` of ``node``, requested ahead (the frame server works on several at once)."""
    sel = node[idx[0]] if len(idx) == 1 else core.std.Splice([node[i] for i in idx])
    yield from sel.frames(close=True)


# -- fingerprints --------------------------------------------------------------------------
# Planes are made at AREA_K times their size by zimg and averaged in AREA_K x AREA_K blocks
# here: ffmpeg's area scale, which the file path's planes come from, averages every source
# pixel; zimg has no area kernel, and its bilinear one straight to 64x36 lands up to 33
# grey levels off (measured on the 1080p benchmark BG). This way: 4 at most, mean 0.3.
AREA_K = 4


def _plane_node(clip: vs.VideoNode, crop: fpm.Crop | None, size: tuple[int, int]) -> vs.VideoNode:
    kw: dict[str, Any] = {}
    if crop is not None:
        cx, cy, cw, ch = crop
        kw.update(src_left=cx, src_top=cy, src_width=cw, src_height=ch)
    # full range, as ffmpeg's grey (the range comes from the frame's _ColorRange)
    return core.resize.Bilinear(clip, width=size[0] * AREA_K, height=size[1] * AREA_K, format=vs.GRAY16,
                                range_s="full", **kw)


def _reduce(big: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    s = big.reshape(h, AREA_K, w, AREA_K).sum(axis=(1, 3), dtype=np.uint32)
    # 16-bit full range to 8 bits, rounded: / (K*K * 257)
    d = AREA_K * AREA_K * 257
    return ((s + d // 2) // d).astype(np.uint8)


def node_fingerprints(clip: vs.VideoNode, *, key: str | None, crop: fpm.Crop | None = None,
                      size: tuple[int, int] = fpm.DEFAULT_SIZE, progress: Callable[[int], None] | None = None,
                      grab: list[int] | tuple[int, ...] | None = None,
                      on_frame: Callable[[int, np.ndarray], None] | None = None,
                      live: fpm.Live | None = None, name: str = "node") -> fpm.Fingerprints:
    """Fingerprints of every frame of ``clip`` (cut to ``crop`` first) through the frame
    server, with the frames ``grab`` at full size (as :func:`sources.frame_arrays` reads
    them; ``on_frame(i, img)`` as each arrives). Cached under ``key`` (the clip's
    :func:`content_key`; ``None``: not cached)."""
    size = (int(size[0]), int(size[1]))
    n = clip.num_frames
    cfile = cache_dir("fingerprints") / f"node-{_hash(key, NODE_FP_VERSION, crop, size, n)}.npy" if key else None
    planes = fpm.cached_planes(cfile, n, size) if cfile else None
    if planes is not None:
        fpm.cached_in_full(planes, progress, live)
        return fpm.Fingerprints(planes, float(clip.fps))
    want = {int(i) for i in grab or () if 0 <= int(i) < n}
    grabbed: dict[int, np.ndarray] = {}
    out = np.empty((n, size[1], size[0]), np.uint8)
    if live is not None:
        live.start(out)
    with served(name):
        for i, f in enumerate(_plane_node(clip, crop, size).frames(close=True)):
            out[i] = _reduce(np.asarray(f[0]), size)
            if i in want:
                # its source frame was just made: at full size it is a cache hit, or nearly
                img = frame_arrays(clip, [i], gray=True)[0]
                grabbed[i] = img
                if on_frame is not None:
                    on_frame(i, img)
            if progress is not None:
                progress(1)
            if live is not None:
                live.count = i + 1
    if cfile is not None:
        atomic_save_npy(cfile, out)
    return fpm.Fingerprints(out, float(clip.fps), grabbed)


def _hash(*parts: object) -> str:
    return hashlib.blake2b(repr(parts).encode(), digest_size=12).hexdigest()


# -- window reads --------------------------------------------------------------------------
# at most this many frames of a window are kept (mid-size grey, ~130 kB each at 480x270)
WINDOW_KEEP = 640
# one window read at a time: reads of one node from several threads at once would send
# its decoder back and forth (on a long GOP each seek decodes from the keyframe before)
_window_lock = threading.Lock()


def node_window(clip: vs.VideoNode, lo: int, hi: int, size: tuple[int, int], *, want: set[int] | None = None,
                every: int = 1, skip: str = "bidir") -> dict[int, np.ndarray] | None:
    """What :func:`spatial.reads.window_frames` reads from a file, from a node: grey
    frames ``lo..hi`` at ``size``, every ``every``-th (only ``want`` of them, when given).

    A node has no keyframes to skip to (the file path's cheap first look at a long
    window, ``skip="nokey"``): every read decodes the window in order, so the first
    look takes the whole window at once (every frame, or every few when it is longer
    than :data:`WINDOW_KEEP` frames), which the searches then use as it is."""
    step = max(1, int(every))
    lo, hi = max(0, lo), min(clip.num_frames - 1, hi)
    if skip == "nokey":
        step = max(step, math.ceil((hi - lo + 1) / WINDOW_KEEP))
    idx = [i for i in range(lo, hi + 1, step) if want is None or i in want]
    if not idx:
        return None
    kw: dict[str, Any] = {"matrix_in_s": "709"} if clip.format.color_family == vs.YUV else {}
    if size != (clip.width, clip.height):
        kw.update(width=size[0], height=size[1])
    small = core.resize.Bilinear(clip, format=vs.GRAY8, **kw)
    with _window_lock, served("BG"):
        frames = small[lo:hi + 1:step].frames(close=True) if want is None else _frames_of(small, idx)
        return {i: np.array(f[0], copy=True) for i, f in zip(idx, frames, strict=True)}


# -- sound ---------------------------------------------------------------------------------
def _mono(anode: vs.AudioNode) -> Iterator[np.ndarray]:
    """``anode`` as mono float32, an audio frame at a time (the scale does not matter:
    GCC-PHAT whitens)."""
    ints = {1: np.int8, 2: np.int16, 4: np.int32}
    # frame by frame: frames() costs about a millisecond a frame in futures (measured:
    # an hour of 48 kHz sound is 56 000 frames), and an audio source decodes in order anyway
    for n in range(anode.num_frames):
        f = anode.get_frame(n)
        chans = []
        for c in range(f.num_channels):
            a = np.asarray(f[c])
            if anode.sample_type == vs.INTEGER:
                a = a.view(ints[anode.bytes_per_sample])
            chans.append(a.astype(np.float32))
        yield np.mean(chans, axis=0, dtype=np.float32) if len(chans) > 1 else chans[0]


def node_audio(anode: vs.AudioNode, rate: int = 8000, name: str = "audio") -> np.ndarray:
    """``anode`` as mono float32 at ``rate`` (sample 0 with the video's frame 0, as
    VapourSynth plays them), resampled in blocks so that an hour of 48 kHz sound is never
    held whole."""
    from scipy.signal import resample_poly

    src = int(anode.sample_rate)
    g = math.gcd(src, int(rate))
    up, down = int(rate) // g, src // g
    chunks = _mono(anode)
    if up == down:
        with served(name):
            return np.concatenate(list(chunks)).astype(np.float32)
    # blocks start on multiples of `down` input samples (output sample k is input sample
    # k * down / up), with a margin beyond resample_poly's filter on either side: each
    # block's middle is then what one resample of the whole track gives
    half = 10 * max(up, down) / up  # the filter's half length, in input samples
    margin = down * (int(math.ceil(half / down)) + 1)
    block = down * max(1, (1 << 16) // down)
    buf = np.zeros(0, np.float32)
    start = 0  # input sample buf[0] is
    done = 0  # input samples resampled
    out: list[np.ndarray] = []

    def emit(final: bool) -> None:
        nonlocal buf, start, done
        while True:
            end = done + block
            total = start + len(buf)
            if not final and end + margin > total:
                return
            end = min(end, total)
            if end <= done:
                return
            a0 = max(0, done - margin)
            seg = buf[a0 - start:min(total, end + margin) - start]
            y = resample_poly(seg, up, down)
            k0 = (done - a0) * up // down
            k1 = k0 + (-(-(end - done) * up // down))
            out.append(y[k0:k1].astype(np.float32))
            done = end
            keep = max(0, done - margin) - start
            buf, start = buf[keep:], start + keep

    with served(name):
        for chunk in chunks:
            buf = np.concatenate([buf, chunk])
            emit(False)
    emit(True)
    return np.concatenate(out) if out else np.zeros(0, np.float32)
