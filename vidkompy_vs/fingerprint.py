"""Frame fingerprints: every frame of an input as a small grey plane, read in one pass.

Per frame we keep the plane itself (uint8, ``size`` = 64x36 by default), from which the
matcher derives zero-mean/unit-norm vectors (correlation = one dot product), a 64-bit
perceptual hash (DCT of a 32x32 reduction, bits = above the median) and the
frame-difference energy (mean absolute change from the previous frame: the motion signal).

Decoding: a direct ffmpeg rawvideo pipe (crop + area scale + grey inside ffmpeg, so only
``w*h`` bytes per frame cross the pipe) is the default; it is checked against the frame
count LWLibav reports (the renderer's frame numbers) and, on any mismatch (VFR, edit
lists), redone through VapourSynth/LWLibav, which is frame-exact by construction.
Planes are cached per file (content key + crop + size + decoder) in
``cache_dir("fingerprints")``.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .cache import cache_dir, file_key
from .errors import VidkompyError

FP_VERSION = 1
DEFAULT_SIZE = (64, 36)

Crop = tuple[int, int, int, int]  # x, y, w, h in source pixels


@dataclass
class Fingerprints:
    """Small grey planes of every frame plus derived per-frame signals."""

    planes: np.ndarray  # (N, h, w) uint8
    phash: np.ndarray  # (N,) uint64
    energy: np.ndarray  # (N,) float32, mean |frame - previous| in grey levels (0 for frame 0)
    fps: float

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
    from scipy.fft import dctn

    small = area_reduce(planes, (32, 32))
    d = dctn(small, type=2, axes=(1, 2), norm="ortho")[:, :8, :8].reshape(len(planes), 64)
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
    return Fingerprints(planes=planes, phash=phash64(planes) if len(planes) else np.zeros(0, np.uint64),
                        energy=_energy(planes), fps=fps)


# -- decoding -------------------------------------------------------------------------
Progress = Callable[[int], None]


def _decode_ffmpeg(path: str, crop: Crop | None, size: tuple[int, int], expect: int,
                   progress: Progress | None) -> np.ndarray | None:
    """All frames through one ffmpeg pipe; ``None`` when its frame count differs from ``expect``."""
    w, h = size
    vf = []
    if crop is not None:
        cx, cy, cw, ch = crop
        vf.append(f"crop={cw}:{ch}:{cx}:{cy}:exact=1")
    # area scaling averages every source pixel: no aliasing from fine texture or noise
    vf.append(f"scale={w}:{h}:flags=area,format=gray")
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", path, "-map", "0:v:0", "-an", "-sn", "-dn",
           "-fps_mode", "passthrough", "-vf", ",".join(vf), "-f", "rawvideo", "-pix_fmt", "gray", "-"]
    fsize = w * h
    # Room for a few extra frames so a count mismatch is detected rather than truncated.
    buf = np.empty((expect + 16) * fsize, np.uint8)
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    except FileNotFoundError:
        return None
    err: list[bytes] = []
    t = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)
    t.start()
    got = 0
    view = memoryview(buf)
    overflow = False
    assert proc.stdout is not None
    while True:
        if got >= len(buf):
            overflow = bool(proc.stdout.read(1))
            break
        k = proc.stdout.readinto(view[got:got + (1 << 20)])
        if not k:
            break
        before = got // fsize
        got += k
        if progress is not None and got // fsize > before:
            progress(got // fsize - before)
    if overflow:
        proc.kill()
    proc.wait()
    t.join()
    if overflow or proc.returncode != 0 or got % fsize or got // fsize != expect:
        return None
    return buf[:got].reshape(expect, h, w)


def _decode_vs(path: str, crop: Crop | None, size: tuple[int, int], progress: Progress | None) -> np.ndarray:
    """All frames through VapourSynth/LWLibav (the renderer's own frame numbering)."""
    import vapoursynth as vs

    from .sources import open_video

    clip = open_video(path)
    kw: dict = {"matrix_in_s": "709"} if clip.format.color_family == vs.YUV else {}
    if crop is not None:
        cx, cy, cw, ch = crop
        kw.update(src_left=cx, src_top=cy, src_width=cw, src_height=ch)
    # zimg widens its kernel when shrinking, so this is anti-aliased like ffmpeg's 'area'
    node = vs.core.resize.Bilinear(clip, width=size[0], height=size[1], format=vs.GRAY8, **kw)
    out = np.empty((node.num_frames, size[1], size[0]), np.uint8)
    for n, f in enumerate(node.frames(close=True)):
        out[n] = np.asarray(f[0])
        if progress is not None:
            progress(1)
    return out


def fingerprints(path: str | os.PathLike[str], *, frames: int, fps: float, crop: Crop | None = None,
                 size: tuple[int, int] = DEFAULT_SIZE, decoder: str = "ffmpeg",
                 progress: Progress | None = None, cache: bool = True) -> Fingerprints:
    """Fingerprints of every frame of ``path`` (optionally cropped first), from the cache if present.

    ``frames`` is the LWLibav frame count the result must have (the map indexes those).
    """
    path = str(path)
    size = (int(size[0]), int(size[1]))
    key = file_key(path, "fp", FP_VERSION, crop, size, frames)
    cfile = cache_dir("fingerprints") / f"{key}.npy"
    planes = None
    if cache and cfile.exists():
        try:
            planes = np.load(cfile, allow_pickle=False)
            if planes.shape != (frames, size[1], size[0]):
                planes = None
            elif progress is not None:
                progress(frames)
        except (OSError, ValueError):
            planes = None
    if planes is None:
        if decoder == "ffmpeg":
            planes = _decode_ffmpeg(path, crop, size, frames, progress)
        if planes is None:
            planes = _decode_vs(path, crop, size, progress)
        if planes.shape[0] != frames:
            raise VidkompyError(f"{path}: decoded {planes.shape[0]} frames, expected {frames}")
        if cache:
            tmp = cfile.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, planes, allow_pickle=False)
            os.replace(tmp, cfile)
    return from_planes(planes, fps)


def clear_cache() -> None:
    for f in Path(cache_dir("fingerprints")).glob("*.npy"):
        f.unlink(missing_ok=True)
