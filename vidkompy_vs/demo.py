"""``make demo``: generate a BG/FG pair with a known placement and offset, align, render.

Runs the real command line (``align --report``, ``comp --align``, ``script --overlay
--diff``) on the generated pair, compares what it found with the truth, and saves one
frame of the overlay view as a PNG (the README's screenshot comes from here).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from rich.console import Console

from .cli import main as cli_main
from .sample import make_pair


def main(argv: list[str] | None = None) -> int:
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    folder = Path(argv[0] if argv else "out/demo")
    console.print(f"[bold]1. sample[/]: generating a BG/FG pair in {folder}/")
    pair = make_pair(folder, bg_size=(960, 540), fg_size=(480, 270), x=311, y=97, fps=25, seconds=12.0,
                     offset_s=2.0)
    console.print(f"   BG {pair.bg}: 960x540, 12 s; FG {pair.fg}: its 480x270 crop at "
                  f"x={pair.x} y={pair.y}, starting {pair.offset_s:g} s in")
    align = folder / "align.json"
    report = folder / "report.html"
    out = folder / "comp.mp4"
    console.print("[bold]2. align[/] (with the report)")
    t0 = time.perf_counter()
    rc = cli_main(["align", str(pair.bg), str(pair.fg), "-o", str(align), "-y", "--report", str(report)])
    if rc:
        return rc
    console.print(f"[bold]3. comp[/] (took {time.perf_counter() - t0:.1f} s to align)")
    rc = cli_main(["comp", str(pair.bg), str(pair.fg), "-o", str(out), "--align", str(align), "-y"])
    if rc:
        return rc
    vpy = folder / "overlay.vpy"
    rc = cli_main(["script", str(pair.bg), str(pair.fg), "-o", str(vpy), "--align", str(align), "-y", "--overlay",
                   "--diff"])
    if rc:
        return rc
    shot = overlay_png(pair.bg, pair.fg, align, folder / "overlay.png")
    d = json.loads(align.read_text())
    fmap = d["temporal"]["frame_map"]
    shift = round(pair.offset_s * pair.fps)
    exact = sum(1 for i, m in enumerate(fmap) if m == i + shift)
    sp = d["spatial"]
    err = ((sp["x"] - pair.x) ** 2 + (sp["y"] - pair.y) ** 2) ** 0.5
    console.print("[bold]result[/]")
    console.print(f"   placement found x={sp['x']:.2f} y={sp['y']:.2f} scale={sp['scale']:.4f} "
                  f"(truth {pair.x}, {pair.y}, 1; error {err:.2f} px)")
    console.print(f"   offset found {d['temporal']['offset_s']:+.3f} s (truth {pair.offset_s:+.3f} s); "
                  f"{exact}/{len(fmap)} FG frames on exactly the true BG frame")
    console.print(f"   composite: [bold]{out}[/]   alignment: {align}")
    console.print(f"   report (open in a browser): [bold]{report}[/]")
    console.print(f"   overlay for vspreview: {vpy} (output 0: annotated composite, 2: difference view); "
                  f"one frame of it: {shot}")
    return 0


def overlay_png(bg: Path, fg: Path, align: Path, out: Path, frame: int | None = None) -> Path:
    """One frame of ``script --overlay`` (the annotated composite) as a PNG, in 128 colours
    (a third of the size, and the README keeps a copy)."""
    from PIL import Image  # comes with matplotlib

    from . import filters, sources
    from .alignment import Alignment

    al = Alignment.load(align)
    clip = filters.annotate(filters.composite(sources.open_video(bg), sources.open_video(fg), al), al)
    n = clip.num_frames // 2 if frame is None else frame
    bgr = sources.frame_arrays(clip, [n])[0]
    Image.fromarray(bgr[:, :, ::-1].copy()).quantize(colors=128).save(out, optimize=True)
    return out


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
