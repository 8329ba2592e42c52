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
