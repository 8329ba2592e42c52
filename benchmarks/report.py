"""Report benchmark: ``align --report`` on every robustness case, each page checked in a browser.

For each case of ``benchmarks/robustness.py`` (the same clips, cached under
``.cache/robustness``): ``vidkompy-vs align BG FG -o case.json --report case.html``
through the command line, then

- the summary figures in the page equal the JSON file's (exactly);
- every picture is inline (``data:image/png``), nothing is referenced that a browser
  would fetch;
- headless Chromium (Debian's ``chromium``) takes a screenshot: not blank, the three
  plots' line colours are there, and the frame strip (or the "frames missing" note).

The page checks are also what ``tests/test_report.py`` uses. Pages and screenshots go
to ``.cache/report-bench``.

    .venv/bin/python benchmarks/report.py [--cases a,b]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

OUT = ROOT / ".cache" / "report-bench"
SHOT_SIZE = (1200, 2200)  # w, h of the screenshot
# matplotlib's default line colours the plots use (BGR): frame map, fitted line, similarity
PLOT_COLOURS = {"blue": (180, 119, 31), "orange": (14, 127, 255), "green": (44, 160, 44)}


class Page(HTMLParser):
    """A report page read back: summary cells (data-key -> text), element ids, <img>
    sources and every src/href."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.cells: dict[str, str] = {}
        self.imgs: list[str] = []
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.text = text
        self._key: str | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if "data-key" in a:
            self._key = a["data-key"]
            self.cells[self._key] = ""
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        self.links += [v for k, v in attrs if k in ("src", "href") and v]

    def handle_endtag(self, tag):
        if tag == "td":
            self._key = None

    def handle_data(self, data):
        if self._key is not None:
            self.cells[self._key] += data


def number_faults(page: Page, d: dict) -> list[str]:
    """Where the page's summary differs from the alignment file ``d`` (parsed JSON)."""
    t, s = d["temporal"], d["spatial"]
    want = {"temporal.offset_s": t["offset_s"], "temporal.rate": t["rate"], "temporal.confidence": t["confidence"],
            "spatial.x": s["x"], "spatial.y": s["y"], "spatial.scale": s["scale"],
            "spatial.confidence": s["confidence"], "uncovered": len(t["uncovered"]),
            "shots": len(d.get("shots", [])), "fg.frames": d["fg"]["frames"], "bg.frames": d["bg"]["frames"],
            "temporal.method": t["method"], "spatial.method": s["method"]}
    out = []
    for key, v in want.items():
        got = page.cells.get(key)
        same = got == v if isinstance(v, str) else got is not None and float(got) == v
        if not same:
            out.append(f"{key}: page {got!r}, file {v!r}")
    return out


def link_faults(page: Page) -> list[str]:
    out = [f"not inline: {u[:60]}" for u in page.links if not u.startswith("data:image/png;base64,")]
    if re.search(r"https?://", page.text):
        out.append("an http(s) address in the page")
    return out


def chromium() -> str | None:
    return next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)


def screenshot(html: Path, png: Path, exe: str) -> None:
    w, h = SHOT_SIZE
    subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--window-size={w},{h}",
                    f"--screenshot={png}", html.resolve().as_uri()], capture_output=True, timeout=120, check=True)


def screenshot_faults(png: Path, frames: bool) -> list[str]:
    """What is wrong with a report's screenshot: blank, plots not drawn, frames not shown."""
    import cv2

    img = cv2.imread(str(png), cv2.IMREAD_COLOR)
    if img is None:
        return ["no screenshot"]
    out = []
    if img.std() <= 10:  # a blank page is ~0; the plots alone give ~25, with frames ~60
        out.append(f"nearly blank (std {img.std():.1f})")
    nonwhite = float((img < 240).any(axis=2).mean())
    if not 0.05 < nonwhite < 0.95:
        out.append(f"{100 * nonwhite:.0f}% of the page is not white")
    for name, bgr in PLOT_COLOURS.items():
        near = int((np.abs(img.astype(int) - bgr).max(axis=2) < 40).sum())
        if near <= 200:
            out.append(f"plot lines in {name}: {near} px")
    if frames:
        # pictures in the lower part: many distinct colours, not flat boxes
        n = len(np.unique(img[img.shape[0] * 2 // 3:].reshape(-1, 3) // 16, axis=0))
        if n <= 100:
            out.append(f"frame strip: {n} colours")
    return out


def check(json_path: Path, html: Path, exe: str | None) -> list[str]:
    page = Page(html.read_text())
    faults = number_faults(page, json.loads(json_path.read_text())) + link_faults(page)
    frames = "triplets" in page.ids
    if not frames and "frames-missing" not in page.ids:
        faults.append("neither frames nor the 'frames missing' note")
    if exe:
        png = html.with_suffix(".png")
        screenshot(html, png, exe)
        faults += screenshot_faults(png, frames)
    return faults


def main(argv: list[str] | None = None) -> int:
    import robustness

    from vidkompy_vs.cli import main as cli

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="", help="comma-separated robustness case names (default: all)")
    args = ap.parse_args(argv)
    exe = chromium()
    if exe is None:
        print("no chromium on PATH: pages are checked without screenshots (apt-get install chromium)")
    OUT.mkdir(parents=True, exist_ok=True)
    want = {s for s in args.cases.split(",") if s}
    vid, wav, _ = robustness.master()
    print(f"{'case':16s} {'align+report s':>14s} {'check s':>7s} {'KB':>6s} {'frames':>7s}  verdict")
    bad = 0
    for c in robustness.cases():
        if want and c.name not in want:
            continue
        bg, fg = robustness.build_side(c.bg, vid, wav, "bg"), robustness.build_side(c.fg, vid, wav, "fg")
        js, html = OUT / f"{c.name}.json", OUT / f"{c.name}.html"
        t0 = time.perf_counter()
        said = io.StringIO()
        with contextlib.redirect_stderr(said):  # the command's own summary lines: shown on failure only
            rc = cli(["-q", "align", str(bg), str(fg), "-o", str(js), "-y", "--report", str(html), "--no-cache"])
        took = time.perf_counter() - t0
        if rc != 0:
            # an input the aligner refuses with its one-line error (exit 2) has no alignment to
            # report on: not the report's failure; anything else is
            lines = said.getvalue().strip().splitlines()
            refused = rc == 2 and len(lines) == 1 and "error:" in lines[0]
            bad += not refused
            print(f"{c.name:16s} exit {rc}  {'refused (no alignment)' if refused else 'FAIL'}\n    "
                  + "\n    ".join(lines))
            continue
        t1 = time.perf_counter()
        faults = check(js, html, exe)
        page = Page(html.read_text())
        bad += bool(faults)
        print(f"{c.name:16s} {took:14.1f} {time.perf_counter() - t1:7.1f} {html.stat().st_size // 1024:6d} "
              f"{'yes' if 'triplets' in page.ids else 'MISSING':>7s}  {'ok' if not faults else 'FAIL'}", flush=True)
        for f in faults:
            print(f"    {f}")
    print(f"(pages and screenshots in {OUT}; check s: the page checks, the screenshot included)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
