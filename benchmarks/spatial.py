"""Spatial alignment benchmark: placement error, scale error and time on real footage.

Every case is made from real decoded footage (``footage.py``) with an exactly known
placement: FG is a crop of a master, BG the master itself or a resampled copy; half-pixel
offsets come from a 2x (3x for 1080p) upscaled master that both sides area-downscale from
offsets of different parity, so both go through the same kernel. FG starts ``OFF`` frames
into BG (the coarse pass does not know this) and the refinement gets the true frame map.

    .venv/bin/python benchmarks/spatial.py [--no-vidkompy] [--only NAME ...] [--nodes]

``--nodes``: a second table, the whole prepass (``align``, which finds the map too) on
each case's files and on the same files opened as VapourSynth nodes, side by side.

Columns: error of the combined placement in BG px (the pan case: median over frames), the
coarse pass's error, scale error in %, wall time of the spatial step (coarse + refine,
decoding excluded; ``total`` includes it) and its CPU time (the machines are shared: CPU
time is the steadier figure; OpenCV may use both cores, so wall can be below it), FG-region PSNR
(FG against BG resampled at the found and at the true placement; and the FG region of
the project's own composite, ``filters.overlay``, against BG), for the pan case the
worst per-frame track error (worst FG corner, every frame; scale error is then the
worst per frame), and vidkompy 1.2.5's placement error on the same pair.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from ff import FFMPEG  # noqa: E402
from footage import footage  # noqa: E402

from vidkompy_vs import spatial  # noqa: E402
from vidkompy_vs.alignment import Spatial  # noqa: E402
from vidkompy_vs.sources import frame_arrays, open_video  # noqa: E402

CASES = ROOT / ".cache" / "spatial-cases"
VERSION = 2  # bump when case construction changes (cached files are rebuilt)
OFF = 20  # FG frame i is BG frame i + OFF


@dataclass
class Case:
    name: str
    bg: Path
    fg: Path
    x: float
    y: float
    scale: float
    n_fg: int
    off: int = OFF
    track: np.ndarray | None = None  # per FG frame [x, y, scale] when the placement moves
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def frame_map(self) -> list[int]:
        return [i + self.off for i in range(self.n_fg)]

    def truth(self, i: int) -> tuple[float, float, float]:
        if self.track is not None:
            return tuple(float(v) for v in self.track[i])  # type: ignore[return-value]
        return self.x, self.y, self.scale


# -- writing videos ---------------------------------------------------------------------
class _Writer:
    """Stream BGR frames into ffmpeg (H.264 4:2:0; lossless unless ``crf`` is given, then at x264 ``preset``)."""

    def __init__(self, path: Path, w: int, h: int, fps: int = 25, crf: int | None = None, preset: str = "medium"):
        q = ["-qp", "0", "-preset", "ultrafast"] if crf is None else ["-crf", str(crf), "-preset", preset]
        self.p = subprocess.Popen(
            [FFMPEG, "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{w}x{h}",
             "-r", str(fps), "-i", "-", "-c:v", "libx264", *q, "-pix_fmt", "yuv420p", str(path)],
            stdin=subprocess.PIPE)
        self.size = (w, h)

    def write(self, img: np.ndarray) -> None:
        assert (img.shape[1], img.shape[0]) == self.size, (img.shape, self.size)
        self.p.stdin.write(np.ascontiguousarray(img, dtype=np.uint8).tobytes())

    def close(self) -> None:
        self.p.stdin.close()
        if self.p.wait() != 0:
            raise RuntimeError("ffmpeg failed")


def _source(path: Path, n: int) -> list[np.ndarray]:
    clip = open_video(path)
    return frame_arrays(clip, range(min(n, clip.num_frames)))


def _down(img: np.ndarray, f: float) -> np.ndarray:
    return cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)


def _up(img: np.ndarray, f: float) -> np.ndarray:
    return cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC)


def _degrade(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Colour shift (per-channel gain, gamma), blur and noise: a 'regenerated' BG."""
    f = img.astype(np.float32) / 255
    f = np.power(f, 0.85) * np.float32([0.92, 1.05, 1.12]) + np.float32([0.02, -0.01, 0.03])
    f = cv2.GaussianBlur(f, (0, 0), 0.8)
    f += rng.normal(0, 3 / 255, f.shape).astype(np.float32)
    return np.clip(f * 255 + 0.5, 0, 255).astype(np.uint8)


def _dark(img: np.ndarray) -> np.ndarray:
    """Dark, low-contrast, soft: a night grade of the footage."""
    f = cv2.GaussianBlur(img.astype(np.float32), (0, 0), 1.5)
    return np.clip(12 + 0.12 * f, 0, 255).astype(np.uint8)


def build(name: str, *, n_bg: int = 132, n_fg: int = 100, source: Path | None = None) -> Case:
    """Make (or reuse) the files of case ``name`` (``source`` replaces the footage clip)."""
    tag = f"v{VERSION}-{n_bg}-{n_fg}" + (f"-{source.stem}" if source else "")
    d = CASES / f"{name}-{tag}"
    d.mkdir(parents=True, exist_ok=True)
    bgp, fgp = d / "bg.mp4", d / "fg.mp4"
    rng = np.random.default_rng(7)
    W, H = 640, 360  # FG crop size in master pixels (most cases)
    X, Y = 317, 181
    spec: dict = {}
    if name == "int":
        spec = {"x": X, "y": Y, "scale": 1.0}
    elif name in ("half", "crf35", "dark"):
        spec = {"x": X + 0.5, "y": Y + 0.5, "scale": 1.0}
    elif name == "bg_x1.5":
        spec = {"x": 1.5 * 300, "y": 1.5 * 150, "scale": 1.5}
    elif name == "fg_x0.5":
        spec = {"x": 200.0, "y": 100.0, "scale": 2.0}
    elif name in ("pan", "pan_fast", "zoom"):
        spec = {"x": 0.0, "y": 0.0, "scale": 1.0}
    elif name == "1080p":
        spec = {"x": 301.5, "y": 171.5, "scale": 1.0}
    elif name == "bikes":
        spec = {"x": 2 * 101 + 0.5, "y": 2 * 37 + 0.5, "scale": 1.0}
    else:
        raise KeyError(name)
    track = None
    if name == "pan":
        t = np.arange(n_fg, dtype=np.float64)
        # slow pan with an ease: ~0.3 px/frame to the right, 0.12 px/frame down, then back
        px = 250 + 0.3 * t + 4 * np.sin(t / max(n_fg, 1) * 2 * math.pi)
        py = 120 + 0.12 * t
        track = np.stack([px, py, np.ones_like(px)], axis=1)
    elif name == "pan_fast":
        # the FG window sweeps ~400 px across BG (4 px/frame), and bobs vertically
        t = np.arange(n_fg, dtype=np.float64)
        px = 120 + 400 * t / max(n_fg - 1, 1)
        py = 150 + 30 * np.sin(t / max(n_fg, 1) * 2 * math.pi)
        track = np.stack([px, py, np.ones_like(px)], axis=1)
    elif name == "zoom":
        # BG framing zooms: FG's footprint grows 1.00 -> 1.04 about a drifting centre
        t = np.arange(n_fg, dtype=np.float64)
        sc = 1 + 0.04 * t / max(n_fg - 1, 1)
        px = 330 - W * (sc - 1) / 2 + 0.05 * t
        py = 180 - H * (sc - 1) / 2
        track = np.stack([px, py, sc], axis=1)
    case = Case(name, bgp, fgp, n_fg=n_fg, track=track, **spec)
    if bgp.exists() and fgp.exists():
        return case
    src = source or footage("bikes.mp4" if name == "bikes" else "bigbuckbunny.mp4")
    frames = _source(src, n_bg)
    if name == "bikes":
        frames = [_up(f, 2.0) for f in frames]  # 1280x544 master from 640x272
    bw = None
    fw = None
    for i, fr in enumerate(frames):
        j = i - OFF
        if name == "int":
            bg, fg = fr, fr[Y:Y + H, X:X + W]
        elif name in ("half", "crf35", "dark", "bikes"):
            m = _up(fr, 2.0)
            if name == "dark":
                m = _dark(m)
            bx, by = (X, Y) if name != "bikes" else (101, 37)
            bx, by = (2 * 101, 2 * 37) if name == "bikes" else (bx, by)
            bg = _down(m, 0.5)
            fg = _down(m[2 * by + 1:2 * by + 1 + 2 * H, 2 * bx + 1:2 * bx + 1 + 2 * W], 0.5)
            if name == "crf35":
                bg = _degrade(bg, rng)
        elif name == "bg_x1.5":
            bg, fg = _up(fr, 1.5), fr[150:150 + H, 300:300 + W]
        elif name == "fg_x0.5":
            bg, fg = fr, _down(fr[100:100 + H, 200:200 + W], 0.5)
        elif name in ("pan", "pan_fast", "zoom"):
            bg = fr
            if 0 <= j < n_fg:
                # FG = BG window at a sub-pixel position and scale, resampled with Lanczos
                # (FG pixel centre u -> BG x + s*(u + 0.5) - 0.5)
                x_, y_, s_ = track[j]
                m = np.float32([[s_, 0, x_ + 0.5 * s_ - 0.5], [0, s_, y_ + 0.5 * s_ - 0.5]])
                fg = cv2.warpAffine(fr, m, (W, H), flags=cv2.INTER_LANCZOS4 | cv2.WARP_INVERSE_MAP)
            else:
                fg = None
        elif name == "1080p":
            m = _up(fr, 3.0)  # 3840x2160
            bg = _down(m, 0.5)
            fy0, fx0 = int(2 * 171 + 1), int(2 * 301 + 1)
            fg = _down(m[fy0:fy0 + 1440, fx0:fx0 + 2560], 0.5) if 0 <= j < n_fg else None
        if bw is None:
            bw = _Writer(bgp, bg.shape[1], bg.shape[0], crf=35 if name == "crf35" else (23 if name == "dark" else None))
        bw.write(bg)
        if 0 <= j < n_fg and fg is not None:
            if fw is None:
                fw = _Writer(fgp, fg.shape[1], fg.shape[0], crf=23 if name == "dark" else None)
            fw.write(fg)
    bw.close()
    fw.close()
    return case


# -- measuring --------------------------------------------------------------------------
def _psnr_at(fg: np.ndarray, bg: np.ndarray, x: float, y: float, s: float) -> float:
    """PSNR of FG against BG resampled on FG's pixel grid at placement (x, y, s)."""
    # FG pixel centre u -> BG pixel centre x + s*(u+0.5) - 0.5
    m = np.float32([[s, 0, x + 0.5 * s - 0.5], [0, s, y + 0.5 * s - 0.5]])
    src = bg
    if s > 1.05:  # BG sharper than FG: band-limit it before sampling on the coarser grid
        src = cv2.GaussianBlur(bg, (0, 0), 0.45 * s)
    w = cv2.warpAffine(src.astype(np.float32), m, (fg.shape[1], fg.shape[0]),
                       flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    b = 4  # skip the border, where resampling reaches outside FG's footprint
    err = (fg.astype(np.float32) - w)[b:-b, b:-b]
    mse = float(np.mean(err * err))
    return 99.0 if mse <= 1e-10 else 10 * math.log10(255 ** 2 / mse)


def _composite_psnr(case: Case, bg, fg, sp: Spatial, ids: list[int]) -> float:
    """FG-region luma PSNR of the project's own composite (``filters.overlay`` on BG
    retimed by the true map, placed at ``sp``) against BG, over frames ``ids``.

    FG is a copy of BG's content, so a right placement makes the composite look like BG;
    a seam or a wrong scale shows as a low figure. The worst frame counts.
    """
    from vidkompy_vs.filters import overlay, remap

    rbg = remap(bg, case.frame_map, fg)
    out = overlay(rbg, fg, sp.x, sp.y, sp.scale, track=sp.track)
    comp = frame_arrays(out, ids, gray=True)
    ref = frame_arrays(rbg, ids, gray=True)
    worst = 99.0
    for i, a, b in zip(ids, comp, ref, strict=False):
        x, y, sc = sp.at(i)
        # the footprint, 3 px inside its edge (the resampling kernel reaches past it)
        x0, y0 = int(math.ceil(x)) + 3, int(math.ceil(y)) + 3
        x1, y1 = int(math.floor(x + sc * fg.width)) - 3, int(math.floor(y + sc * fg.height)) - 3
        d = a[y0:y1, x0:x1].astype(np.float32) - b[y0:y1, x0:x1]
        mse = float(np.mean(d * d))
        worst = min(worst, 99.0 if mse <= 1e-10 else 10 * math.log10(255 ** 2 / mse))
    return worst


def _errors(case: Case, r: Spatial, w: int, h: int) -> dict[str, float]:
    """Placement error in BG px at FG's middle frame (the pan cases: median over frames),
    scale error in % (the pan cases: the worst frame's), and the worst FG corner over
    every frame of a track."""
    mid = case.n_fg // 2
    tx, ty, ts = case.truth(mid)
    rx, ry, rsc = r.at(mid)
    out = {"err": math.hypot(rx - tx, ry - ty), "scale_err": 100 * (rsc / ts - 1), "track_err": float("nan")}
    if case.track is not None:
        if r.track is None:
            out["track_err"] = float("inf")
        else:
            tr, tt = np.asarray(r.track), case.track
            # worst FG corner (a scale error moves the far corners most), every frame
            worst = np.zeros(len(tr))
            for u, v in ((0, 0), (w, 0), (0, h), (w, h)):
                worst = np.maximum(worst, np.hypot(tr[:, 0] + tr[:, 2] * u - tt[:, 0] - tt[:, 2] * u,
                                                   tr[:, 1] + tr[:, 2] * v - tt[:, 1] - tt[:, 2] * v))
            out["track_err"] = float(worst.max())
            out["err"] = float(np.median(np.hypot(tr[:, 0] - tt[:, 0], tr[:, 1] - tt[:, 1])))
            out["scale_err"] = float(100 * np.max(np.abs(tr[:, 2] / tt[:, 2] - 1)))
    return out


def run_align(case: Case, inputs: str) -> dict:
    """The whole prepass (``align``: the map too, not given) on the case's files, or on
    them opened as VapourSynth nodes (``inputs="nodes"``), with a cold cache each."""
    import os
    import tempfile

    from rich.console import Console

    from vidkompy_vs.align import align

    with tempfile.TemporaryDirectory() as tmp:
        old = os.environ.get("VIDKOMPY_VS_CACHE")
        os.environ["VIDKOMPY_VS_CACHE"] = tmp
        try:
            t0 = time.perf_counter()
            bg, fg = (open_video(case.bg), open_video(case.fg)) if inputs == "nodes" else (case.bg, case.fg)
            a = align(bg, fg, console=Console(stderr=True, quiet=True))
            seconds = time.perf_counter() - t0
        finally:
            if old is None:
                os.environ.pop("VIDKOMPY_VS_CACHE", None)
            else:
                os.environ["VIDKOMPY_VS_CACHE"] = old
    fmap = a.temporal.frame_map
    return {"case": case.name, "inputs": inputs, "seconds": seconds, "map_ok": fmap == case.frame_map,
            "map": fmap, "conf": a.spatial.confidence, "method": a.spatial.method,
            **_errors(case, a.spatial, a.fg.width, a.fg.height)}


def _align_table(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="whole prepass (align: map found, not given): files vs the files opened as VapourSynth nodes")
    for c in ("case", "map exact files/nodes", "err px files", "err px nodes", "scale err % files/nodes",
              "track max px files/nodes", "s files", "s nodes", "node/file", "same map"):
        t.add_column(c, justify="left" if c == "case" else "right")
    by = {(r["case"], r["inputs"]): r for r in rows}
    for name in dict.fromkeys(r["case"] for r in rows):
        f, n = by[(name, "files")], by[(name, "nodes")]
        t.add_row(name, f"{'yes' if f['map_ok'] else 'no'}/{'yes' if n['map_ok'] else 'no'}", f"{f['err']:.3f}",
                  f"{n['err']:.3f}", f"{f['scale_err']:+.3f}/{n['scale_err']:+.3f}",
                  f"{f['track_err']:.3f}/{n['track_err']:.3f}", f"{f['seconds']:.2f}", f"{n['seconds']:.2f}",
                  f"{n['seconds'] / f['seconds']:.2f}", "yes" if f["map"] == n["map"] else "no")
    Console(width=200).print(t)


def run_case(case: Case, vidkompy: bool) -> dict:
    bg, fg = open_video(case.bg), open_video(case.fg)
    t0 = time.perf_counter()
    coarse = spatial.coarse_from_clips(bg, fg)
    c, cs = coarse.placement, coarse.stats
    rs: dict[str, float] = {}
    r = spatial.refine_from_clips(bg, fg, case.frame_map, prior=c, stats=rs)
    total = time.perf_counter() - t0
    mid = case.n_fg // 2
    out = {
        "case": case.name,
        "coarse_err": math.hypot(c.x - case.truth(mid)[0], c.y - case.truth(mid)[1]) if case.track is None
        else float("nan"),
        "compute": cs["compute_s"] + rs["compute_s"],
        "cpu": cs["compute_cpu_s"] + rs["compute_cpu_s"],
        "refine_s": rs["compute_s"],
        "coarse_s": cs["compute_s"],
        "total": total,
        "conf": r.confidence,
        "method": r.method,
        **_errors(case, r, fg.width, fg.height),
    }
    tx, ty, ts = case.truth(mid)
    # FG-region PSNR on three frames, found vs true placement
    ids = [case.n_fg // 4, mid, 3 * case.n_fg // 4]
    fgs = frame_arrays(fg, ids, gray=True)
    bgs = frame_arrays(bg, [case.frame_map[i] for i in ids], gray=True)
    out["psnr"] = min(_psnr_at(f, b, *r.at(i)) for f, b, i in zip(fgs, bgs, ids, strict=False))
    out["psnr_true"] = min(_psnr_at(f, b, *case.truth(i)) for f, b, i in zip(fgs, bgs, ids, strict=False))
    try:
        truth = Spatial(x=case.x, y=case.y, scale=case.scale,
                        track=None if case.track is None else case.track.tolist())
        out["comp"] = _composite_psnr(case, bg, fg, r, ids)
        out["comp_true"] = _composite_psnr(case, bg, fg, truth, ids)
    except ImportError:  # filters.py not there: the column stays empty
        out["comp"] = out["comp_true"] = float("nan")
    out["vk_err"] = float("nan")
    if vidkompy:
        try:
            import vidkompy_ref

            # vidkompy's answer does not depend on our code: keep it beside the case
            memo = case.bg.parent / "vidkompy.json"
            if memo.exists():
                res = json.loads(memo.read_text())
            else:
                res = vidkompy_ref.run_vidkompy(case.bg, case.fg, case.bg.parent / "vidkompy-out.mp4", timeout=600)
                keep = {k: res.get(k) for k in ("ok", "x", "y", "scale", "seconds", "error")}
                memo.write_text(json.dumps(keep))
                (case.bg.parent / "vidkompy-out.mp4").unlink(missing_ok=True)
            if res.get("ok"):
                vs_ = float(res.get("scale") or 1.0)
                out["vk_err"] = math.hypot(res["x"] - tx, res["y"] - ty)
                out["vk_scale"] = vs_
            else:
                out["vk_err"] = float("inf")
        except Exception as e:  # the reference is optional: report and go on
            print(f"vidkompy on {case.name}: {e}", file=sys.stderr)
    return out


ALL = ["int", "half", "bg_x1.5", "fg_x0.5", "crf35", "dark", "pan", "pan_fast", "zoom", "bikes", "1080p"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-vidkompy", action="store_true", help="skip the vidkompy 1.2.5 column")
    ap.add_argument("--only", nargs="*", default=None, help="case names")
    ap.add_argument("--nodes", action="store_true",
                    help="also the whole prepass on each case's files and on them opened as nodes (a second table)")
    a = ap.parse_args()
    vk = not a.no_vidkompy and (HERE / "vidkompy_ref.py").exists()
    names = a.only or ALL
    rows: list[dict] = []
    aligned: list[dict] = []
    for n in names:
        case = build(n, n_fg=60 if n == "1080p" else 100, n_bg=90 if n == "1080p" else 132)
        rows.append(run_case(case, vk))
        r = rows[-1]
        print(f"  {n}: err {r['err']:.3f} px, {r['compute']:.2f} s", file=sys.stderr)
        if a.nodes:
            for inputs in ("files", "nodes"):
                aligned.append(run_align(case, inputs))
                q = aligned[-1]
                print(f"  {n} ({inputs}): map {'exact' if q['map_ok'] else 'NOT exact'}, err {q['err']:.3f} px, "
                      f"{q['seconds']:.2f} s", file=sys.stderr)
    try:
        from rich.console import Console
        from rich.table import Table

        t = Table(title="spatial alignment (errors in BG px; time excludes decoding)")
        cols = ["case", "err px", "coarse err", "scale err %", "track max px", "compute s", "coarse s",
                "refine s", "cpu s", "total s", "PSNR found/true", "comp PSNR found/true", "conf",
                "method"] + (["vidkompy err px"] if vk else [])
        for c in cols:
            t.add_column(c, justify="right" if c not in ("case", "method") else "left")
        for r in rows:
            t.add_row(r["case"], f"{r['err']:.3f}", f"{r['coarse_err']:.2f}", f"{r['scale_err']:+.3f}",
                      f"{r['track_err']:.3f}", f"{r['compute']:.3f}", f"{r['coarse_s']:.3f}",
                      f"{r['refine_s']:.3f}", f"{r['cpu']:.3f}",
                      f"{r['total']:.2f}",
                      f"{r['psnr']:.1f}/{r['psnr_true']:.1f}", f"{r['comp']:.1f}/{r['comp_true']:.1f}",
                      f"{r['conf']:.3f}", r["method"],
                      *([f"{r['vk_err']:.2f}"] if vk else []))
        Console(width=200).print(t)
    except ImportError:
        for r in rows:
            print(r)
    if aligned:
        _align_table(aligned)


if __name__ == "__main__":
    main()
