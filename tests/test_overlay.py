"""``script --overlay`` / ``filters.annotate``: rendered through vspipe, the overlay differs
from the plain script exactly where the text and FG's outline are, and the outline follows
the per-frame placement. ``--diff`` adds the difference view as output 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs

from vidkompy_vs import filters, sources
from vidkompy_vs.alignment import Alignment
from vidkompy_vs.cli import main

VSPIPE = Path(sys.executable).with_name("vspipe")
FW, FH = 320, 180


def track_x(n: int) -> int:
    return 163 + (n // 25) * 4  # FG's true place, 171, on frames 50-74


@pytest.fixture(scope="module")
def scripts(pair_lossless, tmp_path_factory) -> tuple[Path, Path, Alignment]:
    folder = tmp_path_factory.mktemp("overlay")
    al = Alignment.simple(sources.probe(pair_lossless.bg), sources.probe(pair_lossless.fg), x=171, y=63)
    n = al.fg.frames
    al.temporal.frame_map = [min(i + 25, al.bg.frames - 1) for i in range(n)]
    al.temporal.uncovered = [n - 1]
    al.spatial.track = [[track_x(i), 63, 1.0] for i in range(n)]  # moves 4 px a second
    js = folder / "align.json"
    al.save(js)
    plain, over = folder / "plain.vpy", folder / "over.vpy"
    base = ["-q", "script", str(pair_lossless.bg), str(pair_lossless.fg), "--align", str(js)]
    assert main([*base, "-o", str(plain)]) == 0
    assert main([*base, "-o", str(over), "--overlay", "--diff"]) == 0
    return plain, over, al


def vspipe_luma(script: Path, first: int, last: int, output: int = 0) -> np.ndarray:
    """Frames ``first..last`` of ``script``'s output as (N, H, W) luma, via vspipe's y4m."""
    data = subprocess.run([str(VSPIPE), "-c", "y4m", "-o", str(output), "-s", str(first), "-e", str(last),
                           str(script), "-"], capture_output=True, check=True, timeout=120).stdout
    header, rest = data.split(b"\n", 1)
    fields = {t[:1]: t[1:] for t in header.split()[1:]}
    w, h = int(fields[b"W"]), int(fields[b"H"])
    assert b"420" in fields[b"C"]
    size = w * h * 3 // 2
    frames = []
    while rest.startswith(b"FRAME"):
        rest = rest.split(b"\n", 1)[1]
        frames.append(np.frombuffer(rest[:w * h], np.uint8).reshape(h, w))
        rest = rest[size:]
    assert len(frames) == last - first + 1
    return np.stack(frames)


def outline_band(shape, x: int, y: int, pad: int = 3) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[y - pad:y + FH + pad, x - pad:x + FW + pad] = True
    m[y + pad:y + FH - pad, x + pad:x + FW - pad] = False
    return m


TEXT = (slice(0, 110), slice(0, 320))  # the text block's corner (top-left, scale 1)


@pytest.mark.parametrize("n", [0, 60])
def test_overlay_differs_only_at_text_and_outline(scripts, n):
    plain, over, al = scripts
    a = vspipe_luma(plain, n, n)[0].astype(int)
    b = vspipe_luma(over, n, n)[0].astype(int)
    x = track_x(n)
    changed = a != b
    band = outline_band(a.shape, x, 63)
    # the outline: FG's edge, 2 px wide, drawn where FG is on this frame
    yellow = filters._outline_values(vs.core.get_video_format(vs.YUV420P8))[0]
    assert (b[63:65, TEXT[1].stop:x + FW] == yellow).mean() > 0.95  # (the text block lies over its left part)
    assert (b[63:63 + FH, x + FW - 2:x + FW] == yellow).mean() > 0.95
    # the text: many pixels in the corner
    assert changed[TEXT].sum() > 800
    # everything else is the plain script's picture, exactly
    rest = ~band
    rest[TEXT] = False
    assert not changed[rest].any()
    # the other frame's right edge (8 px away) is not drawn on this one: the outline moves
    other = track_x(60 if n == 0 else 0)
    assert (b[66:63 + FH - 3, other + FW - 2] == yellow).mean() < 0.2


def test_overlay_text_comes_from_the_props(scripts):
    """The uncovered frame's block has one more line (from VkUncovered), so it is taller."""
    plain, over, al = scripts
    last = al.fg.frames - 1
    rows = []
    for n in (last - 1, last):
        d = vspipe_luma(plain, n, n)[0] != vspipe_luma(over, n, n)[0]
        rows.append(np.flatnonzero(d[TEXT[0], :150].any(axis=1)).max())  # left of FG's outline
    assert rows[1] >= rows[0] + 8


def test_diff_output(scripts, pair_lossless):
    _, over, al = scripts
    d = vspipe_luma(over, 60, 60, output=2)[0].astype(float)
    x = track_x(60)
    inner = d[63 + 4:63 + FH - 4, x + 4:x + FW - 4]
    outside = d.copy()
    outside[TEXT] = 0
    outside[outline_band(d.shape, x, 63, 4) | _inside(d.shape, x, 63)] = 0
    assert outside.max() == 0  # BG is the same on both sides outside FG
    assert inner.mean() < 20  # right alignment: dark
    # a wrong one lights up
    wrong = Alignment.from_dict(al.to_dict())
    wrong.spatial.track = None
    wrong.spatial.x = x + 6
    bg, fg = sources.open_video(pair_lossless.bg), sources.open_video(pair_lossless.fg)
    w = np.asarray(filters.difference(bg, fg, wrong).get_frame(60)[0]).astype(float)
    assert w[63 + 4:63 + FH - 4, x + 10:x + FW - 4].mean() > 2 * inner.mean() + 10


def _inside(shape, x, y):
    m = np.zeros(shape, bool)
    m[y:y + FH, x:x + FW] = True
    return m
