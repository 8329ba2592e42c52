"""Colour matching (``composite(match_color=True)``, ``comp --match-color``) on a small
generated pair whose BG was colour-shifted: BG moves toward the clean source, the step
across FG's edge shrinks, and a BG with no shift is left as it is."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from conftest import decode_rgb, ffmpeg

from vidkompy_vs import color, filters, sources
from vidkompy_vs.alignment import Alignment, Shot
from vidkompy_vs.cli import main

_spec = importlib.util.spec_from_file_location("bench_color", Path(__file__).parents[1] / "benchmarks" / "color.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)  # the benchmark's own measures: PSNR outside FG, edge jumps

X, Y, FW, FH = 171, 63, 320, 180
FRAMES = [3, 60, 120]


@pytest.fixture(scope="module")
def shifted(pair_lossless) -> dict[str, Path]:
    """BG with no shift, and with a contrast+gamma+saturation shift (lossless, made once)."""
    out = {"none": pair_lossless.bg}
    bg = pair_lossless.bg.with_name("bg-shifted.mkv")
    if not bg.exists():
        tmp = bg.with_name(".bg-shifted.tmp.mkv")
        ffmpeg("-i", str(pair_lossless.bg), "-vf", "eq=contrast=1.25:gamma=1.3:saturation=0.7", "-c:v", "ffv1",
               "-an", str(tmp))
        tmp.replace(bg)
    out["shifted"] = bg
    return out


def alignment(pair_lossless, bg: Path) -> Alignment:
    al = Alignment.simple(sources.probe(bg), sources.probe(pair_lossless.fg), x=X, y=Y)
    al.temporal.frame_map = [i + 25 for i in range(al.fg.frames)]
    return al


def measure(pair_lossless, bg_path: Path, match: bool) -> tuple[float, float]:
    bg, fg, clean = (sources.open_video(p) for p in (bg_path, pair_lossless.fg, pair_lossless.bg))
    al = alignment(pair_lossless, bg_path)
    comp = filters.composite(bg, fg, al, match_color=match)
    got = sources.frame_arrays(comp, FRAMES)
    ref = sources.frame_arrays(clean, [al.temporal.frame_map[n] for n in FRAMES])
    psnr = np.mean([bench.psnr_outside(g, r, X, Y, FW, FH) for g, r in zip(got, ref, strict=True)])
    seam = np.mean([np.abs(bench.edge_bands(g, X, Y, FW, FH) - bench.edge_bands(r, X, Y, FW, FH)).mean()
                    for g, r in zip(got, ref, strict=True)])
    return float(psnr), float(seam)


def test_shifted_bg_moves_to_the_clean_source(pair_lossless, shifted):
    p0, s0 = measure(pair_lossless, shifted["shifted"], False)
    p1, s1 = measure(pair_lossless, shifted["shifted"], True)
    assert p1 - p0 >= 3.0, (p0, p1)
    assert s1 <= s0 / 2, (s0, s1)


def test_no_shift_changes_nothing_measurable(pair_lossless, shifted, monkeypatch):
    p0, s0 = measure(pair_lossless, shifted["none"], False)
    p1, s1 = measure(pair_lossless, shifted["none"], True)
    assert abs(p1 - p0) <= 0.2 and abs(s1 - s0) <= 0.2, (p0, p1, s0, s1)
    # and not only thanks to the "already matches" shortcut: the fitted curves themselves
    # stay within a code value or two of the identity
    monkeypatch.setattr(color, "_IDENTITY_TOL", 0.0)
    fg = sources.open_video(pair_lossless.fg)
    al = alignment(pair_lossless, shifted["none"])
    rbg = filters.remap(sources.open_video(shifted["none"]), al.temporal.frame_map, fg)
    for c in color.fit_curves(rbg, fg, al)[0]:
        assert np.abs(c - np.arange(256))[16:236].max() <= 2


def test_curves_per_shot(pair_lossless, shifted):
    """Two shots, BG shifted only under the second: its curves move, the first's do not."""
    bg0, bg1 = sources.open_video(shifted["none"]), sources.open_video(shifted["shifted"])
    fg = sources.open_video(pair_lossless.fg)
    al = alignment(pair_lossless, shifted["none"])
    n = al.fg.frames
    al.shots = [Shot(0, 80, 25, 105, X, Y), Shot(80, n, 105, n + 25, X, Y)]
    rbg = filters.remap(core_splice(bg0, bg1, 105), al.temporal.frame_map, fg)
    curves = color.fit_curves(rbg, fg, al)
    assert len(curves) == 2 and len(curves[0]) == 3
    assert all(np.array_equal(c, np.arange(256)) for c in curves[0])
    assert np.abs(curves[1][0] - np.arange(256))[40:200].max() > 10  # luma: contrast and gamma
    out = color.apply_curves(rbg, curves, al.shot_index())
    a, b = np.asarray(out.get_frame(10)[0]), np.asarray(rbg.get_frame(10)[0])
    assert np.array_equal(a, b)  # shot 0 untouched
    assert not np.array_equal(np.asarray(out.get_frame(100)[0]), np.asarray(rbg.get_frame(100)[0]))


def core_splice(a, b, at: int):
    return a[:at] + b[at:]


def test_curve_is_monotone_and_clamped():
    rng = np.random.default_rng(1)
    x = rng.uniform(30, 220, 20000)
    y = np.clip(1.4 * (x - 128) + 128 + rng.normal(0, 2, x.size), 0, 255)
    lut = color._curve(x, y, 256)
    assert lut.min() >= 0 and lut.max() <= 255 and np.all(np.diff(lut) >= 0)
    assert abs(lut[128] - 128) <= 2 and abs(lut[160] - (1.4 * 32 + 128)) <= 3
    assert lut[0] == 0 and lut[255] == 255  # beyond the sample: on with the slope, clamped


def test_comp_match_color(pair_lossless, shifted, tmp_path):
    """The command line: one render with --match-color; its BG area is the clean source's."""
    js = tmp_path / "a.json"
    alignment(pair_lossless, shifted["shifted"]).save(js)
    out = tmp_path / "out.mkv"
    assert main(["-q", "comp", str(shifted["shifted"]), str(pair_lossless.fg), "-o", str(out), "--align", str(js),
                 "--match-color", "--audio", "none", "--crf", "10", "--preset", "ultrafast"]) == 0
    got = decode_rgb(out, 640, 360)[FRAMES]
    clean = decode_rgb(pair_lossless.bg, 640, 360)[[n + 25 for n in FRAMES]]
    shifted_rgb = decode_rgb(shifted["shifted"], 640, 360)[[n + 25 for n in FRAMES]]
    after = np.mean([bench.psnr_outside(g, c, X, Y, FW, FH) for g, c in zip(got, clean, strict=True)])
    before = np.mean([bench.psnr_outside(s, c, X, Y, FW, FH) for s, c in zip(shifted_rgb, clean, strict=True)])
    assert after - before >= 3.0, (before, after)


def test_float_formats_are_refused(pair_lossless):
    import vapoursynth as vs

    from vidkompy_vs.errors import VidkompyError

    fg = vs.core.resize.Point(sources.open_video(pair_lossless.fg), format=vs.YUV444PS)
    al = alignment(pair_lossless, pair_lossless.bg)
    with pytest.raises(VidkompyError, match="integer"):
        filters.match_color(fg, fg, al)

