"""Spatial alignment on real decoded frames with exactly known placements.

Cases come from ``benchmarks/spatial.py`` (cached under ``.cache/spatial-cases``): the
project's real footage when it is already fetched, otherwise a textured lavfi clip made
with ffmpeg (no network needed).
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import FFMPEG

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import spatial as bench  # noqa: E402  (benchmarks/spatial.py: the case builder)

from vidkompy_vs import spatial  # noqa: E402
from vidkompy_vs.errors import VidkompyError  # noqa: E402
from vidkompy_vs.sources import frame_arrays, open_video  # noqa: E402
from vidkompy_vs.spatial import coarse as coarse_mod  # noqa: E402
from vidkompy_vs.spatial.refine import static_fit  # noqa: E402

N_BG, N_FG = 44, 24  # FG frame i is BG frame i + 20


@pytest.fixture(scope="module")
def source() -> Path | None:
    """None = the footage clip (cached); else a generated 1280x720 textured clip."""
    if (ROOT / ".cache" / "footage" / "bigbuckbunny.mp4").exists():
        return None
    out = bench.CASES / "lavfi-mandelbrot-noise.mp4"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        # a still fractal (a zooming one matches itself at other times and scales) with
        # fresh grain every frame, so that frames differ
        subprocess.run([FFMPEG, "-v", "error", "-y", "-f", "lavfi", "-i",
                        "mandelbrot=s=1280x720:r=25:start_scale=0.3:end_scale=0.3:start_x=-0.745:start_y=0.11,"
                        f"noise=alls=12:allf=t,trim=end_frame={N_BG + 20}",
                        "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv420p", str(out)], check=True)
    return out


def _run(case: bench.Case):
    bg, fg = open_video(case.bg), open_video(case.fg)
    coarse = spatial.coarse_from_clips(bg, fg).placement
    fine = spatial.refine_from_clips(bg, fg, case.frame_map, prior=coarse)
    return coarse, fine


def _err(case: bench.Case, sp, i: int | None = None) -> float:
    i = case.n_fg // 2 if i is None else i
    x, y, _ = sp.at(i) if hasattr(sp, "at") else (sp.x, sp.y, sp.scale)
    tx, ty, _ = case.truth(i)
    return math.hypot(x - tx, y - ty)


@pytest.mark.parametrize("name", ["int", "half"])
def test_offsets_subpixel(name: str, source) -> None:
    case = bench.build(name, n_bg=N_BG, n_fg=N_FG, source=source)
    coarse, fine = _run(case)
    assert _err(case, coarse) <= 1.0
    assert _err(case, fine) <= 0.25
    assert fine.scale == 1.0
    assert fine.track is None
    assert fine.confidence > 0.8


def test_scale_bg_upscaled(source) -> None:
    case = bench.build("bg_x1.5", n_bg=N_BG, n_fg=N_FG, source=source)
    _, fine = _run(case)
    assert _err(case, fine) <= 0.25
    assert abs(fine.scale / 1.5 - 1) <= 0.002


def test_recompressed_colour_shift(source) -> None:
    case = bench.build("crf35", n_bg=N_BG, n_fg=N_FG, source=source)
    _, fine = _run(case)
    assert _err(case, fine) <= 0.5
    assert fine.scale == 1.0


def test_pan_returns_track(source) -> None:
    case = bench.build("pan", n_bg=N_BG + 20, n_fg=N_FG + 20, source=source)
    _, fine = _run(case)
    assert fine.track is not None and len(fine.track) == case.n_fg
    tr = np.asarray(fine.track)
    err = np.hypot(tr[:, 0] - case.track[:, 0], tr[:, 1] - case.track[:, 1])
    assert err.max() <= 0.5


def test_fg_larger_than_bg_raises(source) -> None:
    case = bench.build("int", n_bg=N_BG, n_fg=N_FG, source=source)
    bg, fg = open_video(case.bg), open_video(case.fg)
    with pytest.raises(VidkompyError, match="larger than BG"):
        spatial.coarse_from_clips(fg, bg)  # swapped: the 1280x720 "FG" cannot fit
    a, b = frame_arrays(fg, [0])[0], frame_arrays(bg, [20])[0]
    with pytest.raises(VidkompyError):
        spatial.estimate(b, a)
    with pytest.raises(VidkompyError):
        spatial.estimate(a, b, scale=3.0)


def test_estimate_single_pair_paths(source) -> None:
    case = bench.build("half", n_bg=N_BG, n_fg=N_FG, source=source)
    fgc, bgc = open_video(case.fg), open_video(case.bg)
    f, b = frame_arrays(fgc, [5])[0], frame_arrays(bgc, [25])[0]
    for kw in ({}, {"scale": 1.0}, {"prior": spatial.Placement(case.x + 9, case.y - 7)}):
        p = spatial.estimate(f, b, **kw)
        assert math.hypot(p.x - case.x, p.y - case.y) <= 0.25, kw
        assert p.scale == 1.0 and p.confidence > 0.9 and p.method
    # FG half the size: the scale comes out as 2 (free) and stays 2 (fixed)
    small = cv2.resize(f, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    for kw in ({}, {"scale": 2.0}):
        p = spatial.estimate(small, b, **kw)
        assert abs(p.scale / 2 - 1) <= 0.002
        assert math.hypot(p.x - case.x, p.y - case.y) <= 0.5


def test_fast_estimate_crop_at_scale(source) -> None:
    """Keypoints place a crop of BG shown at scale 1.5 within the sub-pixel step's reach
    (a few px, under 1 %), and the finished estimate is exact; a fixed scale gives the
    position alone."""
    from vidkompy_vs.spatial.common import Pyramid, grey
    from vidkompy_vs.spatial.fast import fast_estimate

    case = bench.build("bg_x1.5", n_bg=N_BG, n_fg=N_FG, source=source)
    f = frame_arrays(open_video(case.fg), [5], gray=True)[0]
    b = frame_arrays(open_video(case.bg), [25], gray=True)[0]
    for scale in (None, 1.5):
        got = fast_estimate(Pyramid(grey(f)), Pyramid(grey(b)), scale)
        assert got is not None and got.inliers >= 12 and got.ncc >= 0.7
        p = got.placement
        assert math.hypot(p.x - case.x, p.y - case.y) < 4 and abs(p.scale / 1.5 - 1) < 0.01
    p = spatial.estimate(f, b)
    assert math.hypot(p.x - case.x, p.y - case.y) <= 0.25 and abs(p.scale / 1.5 - 1) <= 0.002


@pytest.mark.parametrize("name", ["bg_x1.5", "fg_x0.5"])
def test_uint8_pictures_estimate_as_their_float_copies(source, name: str) -> None:
    """A Pyramid built on a uint8 picture (its whole float copy made only where needed)
    gives the estimates of one built on its float copy: around a prior, at a fixed scale,
    and without either; its levels and sub-pixel windows are the same values.
    (The estimates are compared to a millionth of a pixel: OpenCV's threaded reductions
    vary in their last bits from one call to the next, on the same float pictures too.)"""
    from vidkompy_vs.spatial.common import Pyramid, grey
    from vidkompy_vs.spatial.pair import estimate_full, estimate_prior

    def same(a: spatial.Placement, b: spatial.Placement) -> bool:
        return abs(a.x - b.x) < 1e-6 and abs(a.y - b.y) < 1e-6 and abs(a.scale - b.scale) < 1e-9 \
            and a.method == b.method

    case = bench.build(name, n_bg=N_BG, n_fg=N_FG, source=source)
    f = frame_arrays(open_video(case.fg), [5], gray=True)[0]
    b = frame_arrays(open_video(case.bg), [25], gray=True)[0]
    assert f.dtype == np.uint8 and b.dtype == np.uint8
    s = case.scale
    prior = spatial.Placement(case.x + 3, case.y - 2, s * 1.01)
    # (fresh pyramids for every estimate: each keeps the levels it built)
    sides = [lambda: (Pyramid(f), Pyramid(b)), lambda: (Pyramid(grey(f)), Pyramid(grey(b)))]
    for scale in (None, s):
        got = [estimate_prior(*pair(), prior, scale, 24.0) for pair in sides]
        assert same(*got), scale
        got = [estimate_full(*pair(), scale) for pair in sides]
        assert same(*got), scale
        assert math.hypot(got[0].x - case.x, got[0].y - case.y) <= 0.5
    u8, fl = Pyramid(b), Pyramid(grey(b))
    for k in range(4):
        # (the gradients to a ten-thousandth: OpenCV's magnitude differs in its last bit
        # from call to call on the same picture, by where its output happens to lie)
        assert np.array_equal(u8.level(k)[0], fl.level(k)[0]) and np.allclose(u8.level(k)[1], fl.level(k)[1],
                                                                              rtol=0, atol=1e-4)
    assert np.array_equal(u8.region(7, 99, 13, 140), fl.full[7:99, 13:140])


def test_fast_estimate_declines_what_it_cannot_confirm(source) -> None:
    """Unrelated content and a flat picture: no keypoint answer (the grid decides); FG with
    bars over an open-matte BG and FG's picture area alone: no answer or the right one, and
    the estimate places the picture area exactly."""
    from vidkompy_vs.spatial.common import Pyramid, grey
    from vidkompy_vs.spatial.fast import fast_estimate

    case = bench.build("bg_x1.5", n_bg=N_BG, n_fg=N_FG, source=source)
    f = frame_arrays(open_video(case.fg), [5], gray=True)[0]
    b = frame_arrays(open_video(case.bg), [25], gray=True)[0]
    bp = Pyramid(grey(b))
    rng = np.random.default_rng(3)
    noise = cv2.GaussianBlur(rng.integers(0, 256, f.shape, dtype=np.uint8), (0, 0), 2)
    flat = np.tile(np.linspace(90, 110, f.shape[1], dtype=np.float32), (f.shape[0], 1))
    assert fast_estimate(Pyramid(grey(noise)), bp) is None
    assert fast_estimate(Pyramid(flat), bp) is None
    # bars: a quarter of FG's height black above and below its picture
    boxed = f.copy()
    bar = f.shape[0] // 4
    boxed[:bar], boxed[-bar:] = 0, 0
    got = fast_estimate(Pyramid(grey(boxed)), bp)
    if got is not None:  # (a confirmed answer must be the right one)
        assert math.hypot(got.placement.x - case.x, got.placement.y - case.y) < 4
    # the picture area: keypoints may place it or leave it to the grid (a thin strip of a
    # fractal keeps 117 ratio-tested matches, too few that agree); either way it lands
    pic = fast_estimate(Pyramid(grey(f[bar:-bar])), bp)
    if pic is not None:
        assert math.hypot(pic.placement.x - case.x, pic.placement.y - 1.5 * bar - case.y) < 4
    p = spatial.estimate(f[bar:-bar], b)
    assert math.hypot(p.x - case.x, p.y - 1.5 * bar - case.y) <= 0.25 and abs(p.scale / 1.5 - 1) <= 0.002


def test_not_found_reports_low_confidence(source) -> None:
    case = bench.build("int", n_bg=N_BG, n_fg=N_FG, source=source)
    b = frame_arrays(open_video(case.bg), [25])[0]
    rng = np.random.default_rng(1)
    noise = cv2.GaussianBlur(rng.integers(0, 256, (180, 320, 3), dtype=np.uint8), (0, 0), 2)
    p = spatial.estimate(noise, b)
    assert p.confidence < 0.5


def test_clips_without_fg_report_low_confidence(source) -> None:
    """FG from another scene: both passes return (no exception) with low confidence."""
    case = bench.build("int", n_bg=N_BG, n_fg=N_FG, source=source)
    other = bench.CASES / "lavfi-life-320x180.mp4"
    if not other.exists():
        subprocess.run([FFMPEG, "-v", "error", "-y", "-f", "lavfi", "-i",
                        f"life=s=320x180:r=25:mold=10:ratio=0.3:death_color=#202020:life_color=#e0e0e0,"
                        f"trim=end_frame={N_FG}", "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv420p",
                        str(other)], check=True)
    bg, fg = open_video(case.bg), open_video(other)
    coarse = spatial.coarse_from_clips(bg, fg).placement
    fine = spatial.refine_from_clips(bg, fg, case.frame_map, prior=coarse)
    assert coarse.confidence < 0.4
    assert fine.confidence < 0.4 and fine.track is None


def test_coarse_keyframe_pass(source, tmp_path, monkeypatch) -> None:
    """With BG's file on a long-GOP encode, keyframes give the scale and the stretch of
    reference frames to search; the placement agrees with the whole window's (the
    fallback when the keyframes are too few)."""
    case = bench.build("int", n_bg=N_BG, n_fg=N_FG, source=source)
    bgp = tmp_path / "bg_gop.mp4"
    subprocess.run([FFMPEG, "-v", "error", "-y", "-i", str(case.bg), "-c:v", "libx264", "-crf", "12",
                    "-x264-params", "keyint=8:min-keyint=8:scenecut=0:bframes=2", "-pix_fmt", "yuv420p",
                    str(bgp)], check=True)
    bg, fg = open_video(bgp), open_video(case.fg)
    monkeypatch.setattr(coarse_mod, "KEY_PIXELS", 0)  # a short window: the pass is on for it here
    got = spatial.coarse_from_clips(bg, fg, bg_path=str(bgp))
    assert got.stats.get("key_frames", 0) >= coarse_mod.KEY_MIN
    assert got.stats["stretch"] < N_BG
    assert got.fg_samples == spatial.coarse_samples(fg.num_frames) and len(got.bg_picks) == len(got.fg_samples)
    key = got.placement
    assert abs(key.scale - 1.0) < 0.01
    monkeypatch.setattr(coarse_mod, "KEY_MIN", 10_000)
    got = spatial.coarse_from_clips(bg, fg, bg_path=str(bgp))
    assert "key_frames" not in got.stats
    whole = got.placement
    assert math.hypot(key.x - whole.x, key.y - whole.y) < 1.0
    # only reference frames are candidates (B-frames are skipped), so on real footage a
    # partner can be a few frames off and the coarse placement a few px: the refinement
    # from it is what must land
    fine = spatial.refine_from_clips(bg, fg, case.frame_map, prior=key)
    assert _err(case, key) < 8.0 and _err(case, fine) < 0.1


def test_scattered_estimates_on_smooth_content_are_no_drift(source) -> None:
    """On a blurry picture a pair correlates at 0.999 a few px off the truth, so per-sample
    positions scatter; one fixed placement fits them all and is no drift. A real pan on
    the same footage is not explained by any fixed placement."""
    case = bench.build("int", n_bg=N_BG, n_fg=N_FG, source=source)
    sharp = frame_arrays(open_video(case.bg), [25], gray=True)[0].astype(np.float32)
    frame = cv2.GaussianBlur(sharp, (0, 0), 6.0)
    fw, fh = 240, 140
    tx, ty = 61.0, 37.0
    pairs, ests = {}, []
    for i, d in enumerate([-2.5, 1.5, 0.0, 2.0, -1.0]):
        bg = frame.copy()
        pairs[i] = (bg[int(ty):int(ty) + fh, int(tx):int(tx) + fw].copy(), bg)
        ests.append(spatial.Placement(tx + d, ty - 0.6 * d, 1.0, 0.999, "ncc+ecc"))
    med = spatial.Placement(tx + 0.3, ty, 1.0, 0.999, "ncc+ecc")
    got = static_fit(pairs, list(range(5)), ests, med)
    assert got is not None and abs(got.x - tx) <= 2.5 and abs(got.y - ty) <= 1.5
    # a pan: FG cut 6 px further right in each sample's BG, on sharp footage
    pairs, ests = {}, []
    for i in range(5):
        x = int(tx) + 6 * i
        pairs[i] = (sharp[int(ty):int(ty) + fh, x:x + fw].copy(), sharp)
        ests.append(spatial.Placement(float(x), ty, 1.0, 0.999, "ncc+ecc"))
    assert static_fit(pairs, list(range(5)), ests, ests[2]) is None
