"""``make demo``: generate a BG/FG pair with a known placement and offset, align, render.

Runs the real command line (``align`` then ``comp --align``) on the generated pair and
compares what it found with the truth.
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
    out = folder / "comp.mp4"
    console.print("[bold]2. align[/]")
    t0 = time.perf_counter()
    rc = cli_main(["align", str(pair.bg), str(pair.fg), "-o", str(align), "-y"])
    if rc:
        return rc
    console.print(f"[bold]3. comp[/] (took {time.perf_counter() - t0:.1f} s to align)")
    rc = cli_main(["comp", str(pair.bg), str(pair.fg), "-o", str(out), "--align", str(align), "-y"])
    if rc:
        return rc
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
    console.print(f"   script for vspipe/vspreview: vidkompy-vs script {pair.bg} {pair.fg} -o {folder}/comp.vpy "
                  f"--align {align}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
