"""What every spatial step shares: grey pictures and exact resizes, the pyramid image,
the scale grid, the NCC map, the fit check, and the robust combination of estimates.

Convention: pixel *corners* (zimg/OpenCV ``resize``): FG scaled by ``scale`` has its
top-left corner at (``x``, ``y``) in BG pixels, i.e. ``BG(x + scale*u, y + scale*v)``
shows ``FG(u, v)`` for continuous corner coordinates ``u, v``.
"""

from __future__ import annotations

import math
import threading
from typing import NamedTuple

import cv2
import numpy as np

from ..alignment import Placement
from ..errors import VidkompyError

# Coarse pyramid level: the coarsest power-of-two level where BG is at least this wide
# (long side) and the FG footprint at least MIN_FOOT px on its short side.
COARSE_LONG = 200
MIN_FOOT = 28
SCALE_STEP = 1.04  # coarse scale grid ratio
PREFER_ONE = 0.012  # scale 1.0 wins when its NCC is within this of the best
FEATURE_BELOW = 0.6  # try the feature path when the best NCC is below this


def grey(img: np.ndarray) -> np.ndarray:
    """float32 grey; BGR input is converted with OpenCV's luma weights."""
    if img.ndim == 3:
        img = img[:, :, 0] if img.shape[2] == 1 else cv2.cvtColor(img[:, :, :3], cv2.COLOR_BGR2GRAY)
    return np.ascontiguousarray(img, dtype=np.float32)


def picture(img: np.ndarray) -> np.ndarray:
    """What a :class:`Pyramid` is built on: a 2-D uint8 picture as it is (its float copy
    made only where needed), anything else :func:`grey`."""
    return img if img.ndim == 2 and img.dtype == np.uint8 else grey(img)


def resize(img: np.ndarray, fx: float, fy: float | None = None) -> np.ndarray:
    """Resize by exact factors (dsize from fx/fy keeps the mapping exactly fx, fy)."""
    fy = fx if fy is None else fy
    if abs(fx - 1) < 1e-9 and abs(fy - 1) < 1e-9:
        return img
    h, w = img.shape[:2]
    if round(w * fx) == w and round(h * fy) == h:
        # cv2.resize copies the image unchanged when the rounded size does not change,
        # whatever the factor (a 256 px window at scale 1.0016 would be 0.2 px off at its
        # edges): resample explicitly, output pixel i <- input (i + 0.5) / f - 0.5
        m = np.float32([[1 / fx, 0, 0.5 / fx - 0.5], [0, 1 / fy, 0.5 / fy - 0.5]])
        return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REPLICATE)
    interp = cv2.INTER_AREA if fx < 1 and fy < 1 else cv2.INTER_LINEAR
    return cv2.resize(img, None, fx=fx, fy=fy, interpolation=interp)


_local = threading.local()


def _scratch_float(img: np.ndarray) -> np.ndarray:
    """A uint8 picture as float32 in this thread's scratch buffer (overwritten by the next
    call)."""
    buf = getattr(_local, "buf", None)
    if buf is None or buf.shape != img.shape:
        buf = _local.buf = np.empty(img.shape, np.float32)
    np.copyto(buf, img)
    return buf


def resized(img: np.ndarray, f: float) -> np.ndarray:
    """A grey picture (uint8 or float32) resized by ``f``, as :func:`resize` of its
    :func:`grey` gives it, bit for bit. A uint8 one goes through a scratch buffer: a fresh
    full-size float copy of each (60 window frames) cost more than the resizes (first
    touches of fresh memory are dear)."""
    if img.dtype != np.uint8 or img.ndim != 2:
        return resize(grey(img), f)
    src = _scratch_float(img)
    r = resize(src, f)
    return r.copy() if r is src else r


def reduced(imgs: list[np.ndarray], f: float) -> list[np.ndarray]:
    """:func:`resized` of each picture."""
    return [resized(m, f) for m in imgs]


def grad(img: np.ndarray) -> np.ndarray:
    """Gradient magnitude: edges survive colour shifts, gamma and dark grading."""
    gx = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=3)
    return cv2.magnitude(gx, gy)


def ncc_map(bg: tuple[np.ndarray, np.ndarray], tpl: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Mean of grey and gradient NCC maps (flat templates give NaN: treated as no match)."""
    m = cv2.matchTemplate(bg[0], tpl[0], cv2.TM_CCOEFF_NORMED)
    m += cv2.matchTemplate(bg[1], tpl[1], cv2.TM_CCOEFF_NORMED)
    m *= 0.5
    np.nan_to_num(m, copy=False, nan=-1.0, posinf=-1.0, neginf=-1.0)
    return m


class Pyramid:
    """A grey image with a power-of-two pyramid (level k = exact factor 2**-k), grey and
    gradient per level, built on demand; ``scaled(r)`` resizes from the nearest level.

    Given a uint8 picture, its full-size float copy is made only when asked for
    (:attr:`full`, level 0): the coarser levels come from it through a scratch buffer
    and :meth:`region` converts only the part asked for, the same values bit for bit.
    (A 1080p pair's estimate at scale 1.5 never needs a whole float picture: 12 MB of
    fresh memory spared per frame pair.)"""

    def __init__(self, grey: np.ndarray):
        self._src = grey
        self.h, self.w = grey.shape
        self._g: dict[int, np.ndarray] = {} if grey.dtype == np.uint8 else {0: grey}
        self._d: dict[int, np.ndarray] = {}
        self._s: dict[float, tuple[np.ndarray, np.ndarray]] = {}

    @property
    def source(self) -> np.ndarray:
        """The picture as given (uint8 or float32)."""
        return self._src

    @property
    def full(self) -> np.ndarray:
        """The whole picture, float32."""
        if 0 not in self._g:
            self._g[0] = np.ascontiguousarray(self._src, dtype=np.float32)
        return self._g[0]

    def region(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """``full[y0:y1, x0:x1]`` (float32), without a whole float picture."""
        if 0 in self._g or self._src.dtype != np.uint8:
            return self.full[y0:y1, x0:x1]
        return self._src[y0:y1, x0:x1].astype(np.float32)

    def grey(self, k: int) -> np.ndarray:
        # (no level below a few pixels: a degenerate scale asked for one would otherwise
        # halve an empty image until OpenCV's resize asserts)
        k = min(k, max(0, int(math.log2(max(1, min(self.w, self.h)) / 4))))
        if k == 0:
            return self.full
        if k not in self._g:
            if k == 1 and 0 not in self._g:
                self._g[1] = resized(self._src, 0.5)
            else:
                self._g[k] = resize(self.grey(k - 1), 0.5)
        return self._g[k]

    def level(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(grey, gradient) at level ``k``."""
        g = self.grey(k)
        if k not in self._d:
            self._d[k] = grad(g)
        return g, self._d[k]

    def scaled(self, r: float) -> tuple[np.ndarray, np.ndarray]:
        """(grey, gradient) at exact factor ``r``."""
        key = round(r, 9)
        if not (math.isfinite(r) and min(self.w, self.h) * r >= 2):
            raise ValueError(f"no usable picture at scale {r:g} of {self.w}x{self.h}")
        if key not in self._s:
            j = max(0, int(math.floor(math.log2(1 / r) + 1e-9))) if r < 1 else 0
            g = resize(self.grey(j), r * 2 ** j)
            self._s[key] = (g, grad(g))
        return self._s[key]


def resampled(fg: Pyramid, bg: Pyramid, p: Placement, k: int) -> tuple[np.ndarray, np.ndarray]:
    """FG at placement ``p``'s scale on BG level ``k``, and BG resampled under it there."""
    f = 2.0 ** -k
    tpl = fg.scaled(p.scale * f)[0]
    th, tw = tpl.shape
    m = np.float32([[1, 0, p.x * f], [0, 1, p.y * f]])
    warped = cv2.warpAffine(bg.grey(k), m, (tw, th), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_REPLICATE)
    return tpl, warped


def ncc(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised cross-correlation of two same-shape pictures (0 when either is flat)."""
    a = a - a.mean()
    b = b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else 0.0


def coarse_level(bw: int, bh: int, fw: float, fh: float) -> int:
    """Coarsest level with BG long side >= COARSE_LONG and footprint short side >= MIN_FOOT."""
    k = 0
    while max(bw, bh) / 2 ** (k + 1) >= COARSE_LONG and min(fw, fh) / 2 ** (k + 1) >= MIN_FOOT:
        k += 1
    return k


def fits(fw: int, fh: int, bw: int, bh: int, s: float) -> bool:
    """Whether FG (``fw`` x ``fh``) scaled by ``s`` fits inside BG."""
    return fw * s <= bw + 1e-6 and fh * s <= bh + 1e-6


def check_fit(fw: int, fh: int, bw: int, bh: int, scale: float | None) -> None:
    """Refuse FG larger than BG (at ``scale``, or 1.0 when it is free) with a message."""
    s = 1.0 if scale is None else scale
    if not fits(fw, fh, bw, bh, s):
        what = "" if scale is None else f" scaled by {scale:g}"
        raise VidkompyError(f"FG ({fw}x{fh}){what} is larger than BG ({bw}x{bh}); pass --scale to shrink it")


def scale_grid(fw: int, fh: int, bw: int, bh: int, step: float = SCALE_STEP) -> list[float]:
    """Log-spaced scales (including exactly 1.0) at which FG fits inside BG."""
    s_hi = min(bw / fw, bh / fh)
    s_lo = min(1.0, max(0.5, s_hi / 12))
    k0 = math.ceil(math.log(s_lo) / math.log(step))
    k1 = math.floor(math.log(s_hi) / math.log(step) + 1e-9)
    grid = [step ** k for k in range(k0, k1 + 1)]
    if not grid or s_hi / grid[-1] > 1.005:
        grid.append(s_hi)  # FG filling BG exactly is common (pure resolution change)
    return grid


def confidence(rho: float) -> float:
    """Confidence from a correlation coefficient: 2*rho - 1, clipped to [0, 1].

    True matches correlate at 0.9 and above even through recompression and colour shifts;
    a template dropped on unrelated content still finds ~0.5-0.7 somewhere. The
    stretch puts "not found" near 0 and a clean match near 1.
    """
    return float(min(1.0, max(0.0, 2.0 * rho - 1.0)))


class Combined(NamedTuple):
    """Estimates on several frame pairs, combined."""

    placement: Placement  # the median over the inliers; confidence scaled by their share
    inliers: np.ndarray  # (N,) bool
    spread: float  # RMS distance of the inliers from the median (px)


def combine(ps: list[Placement]) -> Combined:
    """Median placement over inliers (confident estimates near the median)."""
    a = np.array([[p.x, p.y, p.scale] for p in ps], dtype=np.float64)
    c = np.array([p.confidence for p in ps])
    ok = c >= 0.5 * c.max() if c.max() > 0 else np.ones(len(ps), bool)
    med = np.median(a[ok], axis=0)
    d = np.hypot(a[:, 0] - med[0], a[:, 1] - med[1])
    mad = 1.4826 * np.median(d[ok]) if ok.any() else 0.0
    inl = ok & (d <= max(1.0, 4 * mad))
    if not inl.any():
        inl = ok
    med = np.median(a[inl], axis=0)
    spread = float(np.sqrt(np.mean(np.hypot(a[inl, 0] - med[0], a[inl, 1] - med[1]) ** 2)))
    # agreement counts: samples that disagree with the median (FG not there, or a wrong
    # partner frame) scale the confidence down
    conf = float(np.median(c[inl])) * float(inl.sum()) / len(ps)
    return Combined(Placement(float(med[0]), float(med[1]), float(med[2]), conf, ""), inl, spread)


def best_method(ests: list[Placement]) -> str:
    """The method of the most confident estimate (what a combination reports)."""
    return ests[int(np.argmax([e.confidence for e in ests]))].method
