"""The frame-server half on real decoded frames: remap props, exact placement, sub-pixel, track."""

import numpy as np
import pytest
import vapoursynth as vs

from vidkompy_vs import filters, sources
from vidkompy_vs.alignment import Alignment
from vidkompy_vs.errors import VidkompyError

core = vs.core


@pytest.fixture(scope="module")
def clips(pair_lossless):
    bg = sources.open_video(pair_lossless.bg)
    fg = sources.open_video(pair_lossless.fg)
    return bg, fg


def planes(frame) -> list[np.ndarray]:
    return [np.asarray(frame[i]) for i in range(frame.format.num_planes)]


@pytest.mark.parametrize("max_splice", [4096, 0], ids=["splice", "frameeval"])
def test_remap_props_and_pixels(clips, monkeypatch, max_splice):
    monkeypatch.setattr(filters, "_MAX_SPLICE", max_splice)
    bg, fg = clips
    # a map with repeats, skips and a jump back is still served exactly
    fmap = [min(199, 25 + i + (i // 10)) for i in range(fg.num_frames)]
    fmap[40] = 3
    sims = [i / 1000 for i in range(fg.num_frames)]
    r = filters.remap(bg, fmap, fg, sims)
    assert r.num_frames == fg.num_frames and r.fps == fg.fps
    for n, f in enumerate(r.frames()):
        assert f.props["VkBgFrame"] == fmap[n]
        assert f.props["VkSimilarity"] == pytest.approx(sims[n])
    for n in (0, 9, 10, 11, 40, 41, 99, fg.num_frames - 1):
        f = r.get_frame(n)
        assert np.array_equal(np.asarray(f[0]), np.asarray(bg.get_frame(fmap[n])[0]))
        assert (f.props["_DurationNum"], f.props["_DurationDen"]) == (1, 25)


def test_remap_runs():
    assert filters._runs([5, 6, 7, 7, 7, 2, 9, 10]) == [(5, 3, True), (7, 2, False), (2, 1, False), (9, 2, True)]


def test_remap_rejects_bad_map(clips):
    bg, fg = clips
    with pytest.raises(VidkompyError, match="BG has 200 frames"):
        filters.remap(bg, [0, 200], fg)


@pytest.mark.parametrize("x, y", [(171, 63), (310, 96), (0, 0), (320, 180), (1, 1)])
def test_integer_offsets_exact_in_420(clips, x, y):
    bg, fg = clips
    bgn = bg[:fg.num_frames]
    out = filters.overlay(bgn, fg, x, y)
    assert out.format.id == fg.format.id
    for n in (0, 57):
        o, g, b = planes(out.get_frame(n)), planes(fg.get_frame(n)), planes(bgn.get_frame(n))
        assert np.array_equal(o[0][y:y + 180, x:x + 320], g[0])  # luma bit-identical at any offset
        if x % 2 == 0 and y % 2 == 0:
            assert np.array_equal(o[1][y // 2:y // 2 + 90, x // 2:x // 2 + 160], g[1])
            assert np.array_equal(o[2][y // 2:y // 2 + 90, x // 2:x // 2 + 160], g[2])
        outside = np.ones(o[0].shape, bool)
        outside[y:y + 180, x:x + 320] = False
        assert np.array_equal(o[0][outside], b[0][outside])


def test_odd_offset_chroma_not_shifted(clips):
    """At odd x/y chroma is resampled at its true position: compare with FG's chroma
    resampled by half a chroma pixel (not rounded to the even neighbour)."""
    bg, fg = clips
    x, y = 311, 97
    out = filters.overlay(bg[:fg.num_frames], fg, x, y)
    o = planes(out.get_frame(10))[1].astype(float)[49:49 + 88, 156:156 + 158]
    ref = np.asarray(core.resize.Spline36(fg, src_left=-1, src_top=-1).get_frame(10)[1]).astype(float)
    # FG chroma shifted by (x, y) = (311, 97) in luma px -> (155.5, 48.5) chroma px; our crop starts at 156/49
    exact = ref[1:89, 1:159]
    rounded = np.asarray(fg.get_frame(10)[1]).astype(float)[1:89, 1:159]
    err_exact = np.abs(o - exact).mean()
    err_rounded = np.abs(o - rounded).mean()
    assert err_exact < 0.5 and err_exact < err_rounded / 3


def test_subpixel_between_neighbours(clips):
    bg, fg = clips
    b = bg[:fg.num_frames]
    a = planes(filters.overlay(b, fg, 100, 50).get_frame(5))[0].astype(float)
    c = planes(filters.overlay(b, fg, 101, 50).get_frame(5))[0].astype(float)
    h = planes(filters.overlay(b, fg, 100.5, 50).get_frame(5))[0].astype(float)
    inner = (slice(60, 220), slice(110, 410))
    # the half-pixel placement sits between the two integer ones, not on either
    d_mid = np.abs(h[inner] - (a[inner] + c[inner]) / 2).mean()
    assert d_mid < 0.25 * np.abs(a[inner] - c[inner]).mean()


@pytest.mark.parametrize("fmt", [vs.YUV420P10, vs.YUV444P16, vs.RGB24])
def test_other_formats_exact(clips, fmt):
    bg, fg = clips
    kw = {"matrix_in_s": "709"} if fmt == vs.RGB24 else {}
    bgf = core.resize.Point(bg[:fg.num_frames], format=fmt, **kw)
    fgf = core.resize.Point(fg, format=fmt, **kw)
    out = filters.overlay(bgf, fgf, 33, 17)
    o, g = planes(out.get_frame(3)), planes(fgf.get_frame(3))
    assert np.array_equal(o[0][17:197, 33:353], g[0])


def test_feather_keeps_interior(clips):
    bg, fg = clips
    b = bg[:fg.num_frames]
    out = filters.overlay(b, fg, 100, 60, feather=8)
    o, g, bb = (planes(c.get_frame(0))[0].astype(int) for c in (out, fg, b))
    assert np.array_equal(o[60 + 8:60 + 172, 100 + 8:100 + 312], g[8:172, 8:312])
    edge_o, edge_g, edge_b = o[60 + 50:60 + 130, 100], g[50:130, 0], bb[60 + 50:60 + 130, 100]
    # the outermost column is mostly BG
    assert np.abs(edge_o - edge_b).mean() < np.abs(edge_o - edge_g).mean()


def test_scale_and_track(clips):
    bg, fg = clips
    b = bg[:fg.num_frames]
    out = filters.overlay(b, fg, 50.25, 40.75, 0.5)
    assert out.width == 640 and out.get_frame(0).props["VkScale"] == 0.5
    track = [[100 + (n // 20) * 2, 60 + (n // 20), 1.0] for n in range(fg.num_frames)]
    moving = filters.overlay(b, fg, 0, 0, track=track)
    for n in (0, 45, 170):
        x, y, _ = track[n]
        f = moving.get_frame(n)
        assert (f.props["VkX"], f.props["VkY"]) == (x, y)
        assert np.array_equal(planes(f)[0][y:y + 180, x:x + 320], planes(fg.get_frame(n))[0])


def test_composite_length_fps_and_canvas(clips, pair_lossless):
    bg, fg = clips
    al = Alignment.simple(sources.probe(pair_lossless.bg), sources.probe(pair_lossless.fg), x=171, y=63)
    al.temporal.frame_map = [i + 25 for i in range(fg.num_frames)]
    out = filters.composite(bg, fg, al)
    assert (out.num_frames, out.fps, out.width, out.height) == (fg.num_frames, fg.fps, 640, 360)
    f = out.get_frame(30)
    assert f.props["VkBgFrame"] == 55
    assert (f.props["_DurationNum"], f.props["_DurationDen"]) == (1, 25)
    o, b, g = planes(f)[0], planes(bg.get_frame(55))[0], planes(fg.get_frame(30))[0]
    assert np.array_equal(o[63:243, 171:491], g)
    outside = np.ones(o.shape, bool)
    outside[63:243, 171:491] = False
    assert np.array_equal(o[outside], b[outside])
    al.spatial.scale = 0.5
    al.spatial.x, al.spatial.y = 85.5, 31.5
    big = filters.composite(bg, fg, al, canvas="fg")
    assert (big.width, big.height) == (1280, 720)
    assert np.array_equal(planes(big.get_frame(3))[0][63:243, 171:491], planes(fg.get_frame(3))[0])


# -- bars: only FG's picture area goes over BG ------------------------------------------
def letterboxed(fg: vs.VideoNode, bar: int) -> vs.VideoNode:
    """FG with ``bar`` rows of limited-range black baked in at the top and bottom."""
    inner = core.std.Crop(fg, top=bar, bottom=bar)
    return core.std.AddBorders(inner, top=bar, bottom=bar, color=[16, 128, 128])


def aligned(pair_lossless, fg: vs.VideoNode, x: float, y: float, **spatial) -> Alignment:
    al = Alignment.simple(sources.probe(pair_lossless.bg), sources.probe(pair_lossless.fg), x=x, y=y)
    al.temporal.frame_map = [i + 25 for i in range(fg.num_frames)]
    for k, v in spatial.items():
        setattr(al.spatial, k, v)
    return al


def test_composite_letterboxed_fg_keeps_bg_in_bars(clips, pair_lossless):
    bg, fg = clips
    lb = letterboxed(fg, 20)
    al = aligned(pair_lossless, fg, 171, 63, active=[0, 20, 320, 140])
    out = filters.composite(bg, lb, al)
    kept = filters.composite(bg, lb, al, keep_bars=True)
    for n in (0, 30, 174):
        o, b, g = planes(out.get_frame(n)), planes(bg.get_frame(n + 25)), planes(lb.get_frame(n))
        # bar rows: BG's pixels exactly, in every plane; picture rows: FG's, as before
        assert np.array_equal(o[0][63:83, 171:491], b[0][63:83, 171:491])
        assert np.array_equal(o[0][223:243, 171:491], b[0][223:243, 171:491])
        assert np.array_equal(o[1][63 // 2:83 // 2, 171 // 2:491 // 2], b[1][63 // 2:83 // 2, 171 // 2:491 // 2])
        assert np.array_equal(o[0][83:223, 171:491], g[0][20:160])
        outside = np.ones(o[0].shape, bool)
        outside[83:223, 171:491] = False
        assert np.array_equal(o[0][outside], b[0][outside])
        k = planes(kept.get_frame(n))[0]
        assert (k[63:83, 171:491] == 16).all() and np.array_equal(k[83:223, 171:491], g[0][20:160])


def test_active_rounded_inward_and_scaled(clips, pair_lossless):
    bg, fg = clips
    b = bg[:fg.num_frames]
    # odd edges on 4:2:0 are rounded inward to even: x 1 -> 2, y 21 -> 22, right 318 -> 318, bottom 159 -> 158
    out = filters.overlay(b, fg, 100, 50, active=[1, 21, 317, 138])
    o, g, bb = planes(out.get_frame(4))[0], planes(fg.get_frame(4))[0], planes(b.get_frame(4))[0]
    assert np.array_equal(o[72:208, 102:418], g[22:158, 2:318])
    for rows, cols in ((slice(50, 72), slice(100, 420)), (slice(208, 230), slice(100, 420)),
                       (slice(50, 230), slice(100, 102)), (slice(50, 230), slice(418, 420))):
        assert np.array_equal(o[rows, cols], bb[rows, cols])
    assert out.get_frame(4).props["VkX"] == 100
    # scaled: the crop lands at x + ax * scale
    half = filters.overlay(b, fg, 100, 50, 0.5, active=[0, 20, 320, 140])
    h = planes(half.get_frame(4))[0].astype(int)
    # FG's bar rows: BG (the last one, at the crop's resampled edge, is part blended as any FG edge is)
    assert np.array_equal(h[50:59, 100:260], bb[50:59, 100:260].astype(int))
    ref = planes(filters.overlay(b, fg, 100, 50, 0.5).get_frame(4))[0].astype(int)
    assert np.abs(h[63:127, 103:257] - ref[63:127, 103:257]).mean() < 0.5  # picture as before


def test_active_per_shot(clips, pair_lossless):
    bg, fg = clips
    from vidkompy_vs.alignment import Shot

    al = aligned(pair_lossless, fg, 171, 63, active=[0, 20, 320, 140])
    al.shots = [Shot(0, 100, 25, 125, 171, 63), Shot(100, fg.num_frames, 125, 25 + fg.num_frames, 171, 63,
                                                       active=[40, 0, 240, 180])]
    out = filters.composite(bg, fg, al)
    for n, (rows, cols) in ((10, (slice(63, 83), slice(171, 491))), (150, (slice(63, 243), slice(171, 211)))):
        o, b = planes(out.get_frame(n))[0], planes(bg.get_frame(n + 25))[0]
        assert np.array_equal(o[rows, cols], b[rows, cols])
    o, g = planes(out.get_frame(150))[0], planes(fg.get_frame(150))[0]
    assert np.array_equal(o[63:243, 211:451], g[:, 40:280])


def test_active_canvas_fg_and_track(clips, pair_lossless):
    bg, fg = clips
    al = aligned(pair_lossless, fg, 85.5, 31.5, scale=0.5, active=[0, 20, 320, 140])
    big = filters.composite(bg, fg, al, canvas="fg")
    o = planes(big.get_frame(3))[0]
    assert np.array_equal(o[83:223, 171:491], planes(fg.get_frame(3))[0][20:160])
    track = [[100 + n // 50, 60, 1.0] for n in range(fg.num_frames)]
    moving = filters.overlay(bg[:fg.num_frames], fg, 0, 0, track=track, active=[0, 20, 320, 140])
    f = planes(moving.get_frame(120))[0]
    assert np.array_equal(f[80:220, 102:422], planes(fg.get_frame(120))[0][20:160])
    assert np.array_equal(f[60:80, 102:422], planes(bg.get_frame(120))[0][60:80, 102:422])


def test_active_rejects_bad_area(clips):
    bg, fg = clips
    with pytest.raises(VidkompyError, match="not inside FG"):
        filters.overlay(bg[:fg.num_frames], fg, 0, 0, active=[0, 0, 321, 180])
    with pytest.raises(VidkompyError, match="active_track has 3 entries"):
        filters.overlay(bg[:fg.num_frames], fg, 0, 0, active_track=[None] * 3)


# -- uncovered FG frames -------------------------------------------------------------
def test_held_map():
    fmap = [0, 0, 0, 10, 11, 12, 13, 13, 13, 13, 20, 21, 21]
    assert filters.held_map(fmap, [0, 1, 2, 6, 7, 8, 9, 12]) == [10, 10, 10, 10, 11, 12, 12, 12, 20, 20, 20, 21, 21]
    assert filters.held_map(fmap, []) == fmap
    assert filters.held_map(fmap, range(13)) == fmap


@pytest.mark.parametrize("mode", ["hold", "black", "blur"])
def test_uncovered_fill(clips, pair_lossless, mode):
    bg, fg = clips
    al = aligned(pair_lossless, fg, 171, 63)
    # FG 0-4 before BG starts (clamped to 0), 80-89 a span BG lacks (map clamped oddly)
    fmap = [0] * 5 + [i + 25 for i in range(5, fg.num_frames)]
    fmap[80:90] = [199] * 10
    al.temporal.frame_map, al.temporal.uncovered = fmap, [*range(5), *range(80, 90)]
    out = filters.composite(bg, fg, al, uncovered=mode)
    rows = np.r_[0:63, 243:360]
    for n, held in ((0, 30), (4, 30), (80, 104), (84, 104), (85, 115), (89, 115), (5, 30), (90, 115)):
        f = out.get_frame(n)
        o = planes(f)
        assert np.array_equal(o[0][63:243, 171:491], planes(fg.get_frame(n))[0])  # FG untouched
        b = planes(bg.get_frame(held))
        assert f.props["VkBgFrame"] == held
        if mode == "hold" or n in (5, 90):
            assert np.array_equal(o[0][rows], b[0][rows])
        elif mode == "black":
            assert (o[0][rows] == 16).all() and (o[1][np.r_[0:31, 122:180]] == 128).all()
        else:
            d = o[0][rows].astype(float)
            assert abs(d.mean() - b[0][rows].mean()) < 6  # the same picture, blurred
            assert np.abs(np.diff(d, axis=1)).mean() < 0.25 * np.abs(np.diff(b[0][rows].astype(float), axis=1)).mean()


def test_uncovered_rejects_unknown_mode(clips, pair_lossless):
    bg, fg = clips
    with pytest.raises(VidkompyError, match="uncovered must be one of"):
        filters.composite(bg, fg, aligned(pair_lossless, fg, 171, 63), uncovered="grey")
def test_fg_with_other_chroma_siting(clips):
    """FG with centred chroma (MJPEG) over a left-sited BG: BG's chroma is resampled to
    FG's siting (MaskedMerge refuses to mix them); FG's pixels stay exact."""
    bg, fg = clips
    fgc = fg.std.SetFrameProps(_ChromaLocation=1)
    out = filters.overlay(bg[:fg.num_frames], fgc, 170, 62)
    f = out.get_frame(4)
    assert f.props["_ChromaLocation"] == 1
    assert np.array_equal(planes(f)[0][62:242, 170:490], planes(fg.get_frame(4))[0])
    assert np.array_equal(planes(f)[1][31:121, 85:245], planes(fg.get_frame(4))[1])


def test_black_follows_the_range_prop():
    """Black is 16 in limited range (and when untagged), 0 in full; VapourSynth R81's _Range
    counts the other way round from the _ColorRange it replaced."""
    grey = vs.core.std.BlankClip(format=vs.YUV420P8, width=64, height=36, color=[100, 100, 100])
    for rng, y in ((None, 16), (vs.RANGE_LIMITED, 16), (vs.RANGE_FULL, 0)):
        clip = grey if rng is None else vs.core.std.SetFrameProps(grey, _Range=rng)
        o = planes(filters._black(clip).get_frame(0))
        assert (o[0] == y).all() and (o[1] == 128).all(), rng
