"""Temporal engine on synthetic fingerprints and audio: exact maps against known truth.

No decoding here (see test_align.py for the end-to-end path): planes are windows of a
smooth random texture moving under a random walk, so every frame is distinct, as in
real footage, and the truth of every constructed FG frame is known exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from vidkompy_vs import audio as au
from vidkompy_vs import fingerprint as fpm
from vidkompy_vs import temporal as tm


def _source(n: int, seed: int = 0) -> np.ndarray:
    """n distinct 64x36 uint8 planes: a textured world seen through a wandering window."""
    rng = np.random.default_rng(seed)
    world = gaussian_filter(rng.normal(size=(400, 1600)), 3.0)
    world = (world - world.min()) / np.ptp(world) * 200 + 25
    pos = np.cumsum(rng.normal(0.0, 1.5, size=(n, 2)), axis=0) + [180, 100]
    pos[:, 1] = np.abs(pos[:, 1] + np.arange(n) * 1.2) % 1400
    pos[:, 0] = np.clip(pos[:, 0], 0, 400 - 37)
    out = np.empty((n, 36, 64), np.uint8)
    for i, (y, x) in enumerate(pos):
        yi, xi = int(y), int(x)
        out[i] = np.clip(world[yi:yi + 36, xi:xi + 64], 0, 255).astype(np.uint8)
    return out


SRC = _source(700)


def _run(m: np.ndarray, *, fg_fps: float = 25.0, bg_fps: float = 25.0, bg: np.ndarray | None = None,
         noise: float = 0.0, seed: int = 1) -> tuple[tm.TemporalResult, np.ndarray]:
    bgp = SRC if bg is None else bg
    cov = (m >= 0) & (m < len(bgp))
    fgp = bgp[np.clip(m, 0, len(bgp) - 1)].copy()
    # uncovered FG frames show something BG never shows
    fgp[~cov] = _source(int((~cov).sum()) + 1, seed=99)[: int((~cov).sum())]
    if noise:
        rng = np.random.default_rng(seed)
        bgp = np.clip(bgp + rng.normal(0, noise, bgp.shape), 0, 255).astype(np.uint8)
    r = tm.align_visual(fpm.from_planes(fgp, fg_fps), fpm.from_planes(bgp, bg_fps))
    return r, cov


def test_dtw_band_follows_cheapest_monotone_path() -> None:
    n, w = 6, 8
    C = np.ones((n, w), np.float32)
    want = [1, 1, 2, 4, 5, 7]  # a repeat and a skip of 2
    for i, j in enumerate(want):
        C[i, j] = 0.0
    path = tm.dtw_band(C, np.zeros(n, np.int64), kmax=2)
    assert path.tolist() == want


def test_offset_exact() -> None:
    m = np.arange(250) + 137
    r, _ = _run(m)
    assert r.frame_map.tolist() == m.tolist()
    assert r.related and r.confidence > 0.8
    assert r.offset_s == pytest.approx(137 / 25, abs=0.02)
    assert r.rate == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("fg_fps,bg_fps", [(50, 25), (60, 24), (30, 25), (25, 30)])
def test_fps_change_exact(fg_fps: int, bg_fps: int) -> None:
    i = np.arange(int(8 * fg_fps))
    m = 40 + np.floor(i * bg_fps / fg_fps + 1e-9).astype(np.int64)
    r, _ = _run(m, fg_fps=fg_fps, bg_fps=bg_fps)
    assert r.frame_map.tolist() == m.tolist()
    assert r.rate == pytest.approx(1.0, abs=0.01)


def test_drift_and_ramp_exact() -> None:
    i = np.arange(300)
    m = np.floor(20 + i * 1.025).astype(np.int64)
    r, _ = _run(m)
    assert (r.frame_map == m).mean() >= 0.995 and np.abs(r.frame_map - m).max() <= 1
    assert r.rate == pytest.approx(1.025, abs=0.005)
    ramp = np.floor(10 + np.cumsum(np.linspace(0.6, 1.6, 300)) - 0.6).astype(np.int64)
    r, _ = _run(ramp)
    assert (r.frame_map == ramp).mean() >= 0.995 and np.abs(r.frame_map - ramp).max() <= 1


def test_bg_much_longer_and_noisy_bg() -> None:
    m = np.arange(120) + 480
    r, _ = _run(m, noise=6.0)
    assert r.frame_map.tolist() == m.tolist()


def test_fg_before_bg_flags_uncovered() -> None:
    m = np.arange(200) - 30
    r, cov = _run(m)
    assert r.uncovered.tolist() == np.flatnonzero(~cov).tolist()
    assert r.frame_map[cov].tolist() == m[cov].tolist()
    assert (r.frame_map[~cov] == 0).all()  # clamped to BG's first frame


def test_static_section_follows_timeline() -> None:
    # BG holds one picture (fresh grain each frame) for 60 frames; FG copies BG frames
    rng = np.random.default_rng(5)
    held = np.repeat(SRC[200:201], 60, axis=0).astype(np.float32) + rng.normal(0, 0.8, (60, 36, 64))
    bg = np.concatenate([SRC[:200], np.clip(held, 0, 255).astype(np.uint8), SRC[200:400]])
    m = np.arange(30, 330)
    r, _ = _run(m, bg=bg)
    assert (r.frame_map == m).mean() >= 0.995
    assert np.abs(r.frame_map - m).max() <= 1


def test_unrelated_is_low_confidence() -> None:
    fg = _source(150, seed=42)
    r = tm.align_visual(fpm.from_planes(fg, 25.0), fpm.from_planes(SRC, 25.0))
    assert not r.related
    assert r.confidence < 0.35


def test_registration_recovers_subpixel_shift() -> None:
    rng = np.random.default_rng(3)
    world = gaussian_filter(rng.normal(size=(80, 3000)), 2.0)
    world = ((world - world.min()) / np.ptp(world) * 200 + 25).astype(np.float32)
    bg = np.stack([world[10:46, 4 * i:4 * i + 64] for i in range(200)]).round().astype(np.uint8)
    fg = np.stack([world[10:46, 4 * i + 1:4 * i + 65] for i in range(200)]).round().astype(np.uint8)
    d = tm.register_shift(fpm.from_planes(fg, 25.0), fpm.from_planes(bg, 25.0), np.arange(200),
                          np.ones(200, bool))
    assert d[0] == pytest.approx(1.0, abs=0.15) and abs(d[1]) < 0.15


def test_phash_and_energy() -> None:
    fp = fpm.from_planes(SRC[:10], 25.0)
    assert fp.phash.dtype == np.uint64 and len(fp.phash) == 10
    assert int(fpm.hamming(fp.phash[0], fp.phash[0])) == 0
    other = fpm.from_planes(_source(1, seed=9), 25.0)
    assert int(fpm.hamming(fp.phash[0], other.phash[0])) > 10
    assert fp.energy[0] == 0 and (fp.energy[1:] > 0).all()
    v = fp.vectors()
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    assert np.allclose(v.mean(axis=1), 0.0, atol=1e-5)


def test_gcc_phat_offset_and_rate() -> None:
    rate = 8000
    rng = np.random.default_rng(11)
    env = np.repeat(rng.uniform(0.1, 1.0, 200), 800)
    bg = (rng.normal(size=len(env)) * env).astype(np.float32)  # 20 s
    off = 3.250
    fg = bg[int(off * rate):int(off * rate) + 10 * rate].copy()
    fg += rng.normal(0, 0.05, len(fg)).astype(np.float32)
    m = au.match_audio(bg, fg, rate)
    assert m.offset_s == pytest.approx(off, abs=0.002)
    assert m.rate == pytest.approx(1.0, abs=0.002)
    assert m.confidence > 0.5
    # FG plays 2 % faster than BG: BG time = off + 1.02 * FG time
    t = np.arange(10 * rate) / rate
    fast = np.interp(off + 1.02 * t, np.arange(len(bg)) / rate, bg).astype(np.float32)
    m = au.match_audio(bg, fast, rate)
    assert m.rate == pytest.approx(1.02, abs=0.003)
    assert m.offset_s == pytest.approx(off, abs=0.01)


def test_gcc_phat_unrelated_low_confidence() -> None:
    rng = np.random.default_rng(2)
    m = au.match_audio(rng.normal(size=80000).astype(np.float32), rng.normal(size=40000).astype(np.float32), 8000)
    assert m.confidence < 0.5


def test_near_duplicates_at_exact_coincidence_take_the_later_frame() -> None:
    # 60 fps FG over 25 fps BG: every 12th FG frame starts together with a BG frame, and
    # shows that (later) one. Make each such BG frame a near-copy of the one before it
    # (a held shot): pictures cannot tell them apart, the anchors' frame cells can.
    rng = np.random.default_rng(7)
    i = np.arange(480)
    m = 40 + np.floor(i * 25 / 60 + 1e-9).astype(np.int64)
    bg = SRC[:300].copy()
    coincide = 40 + (i[i % 12 == 0] * 25) // 60
    for k in coincide:
        bg[k] = np.clip(bg[k - 1] + rng.normal(0, 0.3, bg[k].shape), 0, 255).astype(np.uint8)
    r, _ = _run(m, fg_fps=60, bg_fps=25, bg=bg, noise=0.0)
    ok = np.isin(r.frame_map, [m]) | np.array([np.array_equal(bg[a], bg[b])
                                               for a, b in zip(r.frame_map, m, strict=False)])
    assert ok.mean() >= 0.995 and np.abs(r.frame_map - m).max() <= 1
    rows = i[i % 12 == 0]
    rows = rows[(rows > 40) & (rows < 440)]
    assert (r.frame_map[rows] == m[rows]).all(), "tie at a coincidence went to the earlier frame"


def test_cell_timeline_pins_rows_near_a_boundary() -> None:
    # a constant 60-over-25 line: row 108 starts exactly with BG frame 45 (the later one),
    # and the regression timeline errs 0.1 frame to the earlier side; the anchors' cells
    # pin the line, so the row goes to frame 45.
    i = np.arange(300)
    p = i * 25 / 60  # BG position at each FG start (frames)
    path = np.floor(p + 1e-9).astype(np.int64)
    anchor = np.ones(300, bool)
    anchor[106:113] = False
    tl = p - 0.5
    tl[108] = 44.5 - 0.1
    out = tm._cell_timeline(path, anchor, tl)
    assert out[108] > 44.5 and round(out[108] + 1e-9) == 45
    # a ramp (no line fits: a quadratic through the nearest anchors): a row 0.3 frame
    # from a boundary, regression 0.35 off across it; near-boundary rows come closer
    ramp = np.cumsum(np.linspace(0.6, 1.6, 300)) - 0.6 + 5
    path = np.floor(ramp).astype(np.int64)
    anchor = np.ones(300, bool)
    anchor[150:157] = False
    truth = ramp - 0.5
    tl = truth.copy()
    r = 150 + int(np.argmin(np.abs(np.abs(truth[150:157] - np.round(truth[150:157])) - 0.2)))
    side = np.sign(truth[r] - np.round(truth[r]))  # towards the nearer boundary
    tl[r] = truth[r] + side * 0.35
    out = tm._cell_timeline(path, anchor, tl)
    assert round(out[r]) == round(truth[r]) and abs(out[r] - truth[r]) < abs(tl[r] - truth[r])
    assert np.array_equal(out[anchor], tl[anchor])  # anchors keep their timeline


def test_indistinct_neighbours_give_the_plain_line() -> None:
    # a nearly still shot (the window creeps 0.04 px a frame) seen through heavy noise on
    # FG's side: no frame tells its neighbours apart. The path must not wander after the
    # noise (nor its timeline report a drift): the constant-rate line.
    rng = np.random.default_rng(11)
    world = gaussian_filter(rng.normal(size=(60, 400)), 2.5)
    world = (world - world.min()) / np.ptp(world) * 180 + 40
    from scipy.ndimage import shift as nd_shift

    bg = np.stack([nd_shift(world, (0, -0.04 * i), order=1)[10:46, 20:84] for i in range(300)])
    m = np.arange(40, 240)
    fg = np.clip(bg[m] + rng.normal(0, 22, (len(m), 36, 64)), 0, 255).astype(np.uint8)
    r = tm.align_visual(fpm.from_planes(fg, 25.0), fpm.from_planes(bg.round().astype(np.uint8), 25.0))
    assert r.rate == pytest.approx(1.0, abs=1e-3)
    assert (r.frame_map == m).mean() >= 0.95 and np.abs(r.frame_map - m).max() <= 1


def test_anchor_line_from_a_few_bg_frames() -> None:
    # FG at 50 fps; BG at 25 shows FG frame 2k - 20 at its frame k (BG time = 0.41 s +
    # FG time). A few BG frames found among all of FG give that line, with and without
    # the 4x reduction for a footprint that is only roughly known.
    fg = fpm.from_planes(SRC[:600], 50.0)
    ks = list(range(40, 200, 9))
    planes = SRC[[2 * k - 20 for k in ks]]
    for rough in (True, False):
        got = tm.anchor_line(planes, ks, 25.0, fg, rough=rough)
        assert got is not None
        off, rate, anchors = got
        assert off == pytest.approx(0.41, abs=0.005) and rate == 1.0
        # the partner or a frame with the same picture (the walk stands still at times);
        # reduced 4x, a frame may also land next to it: the line is their median
        assert all(np.array_equal(SRC[f], SRC[2 * k - 20]) or (rough and abs(f - (2 * k - 20)) <= 3)
                   for k, f, _ in anchors)
    # FG still decoding: only its first 200 frames are known; anchors beyond are not made up
    part = fpm.Fingerprints(SRC[:200], 50.0)
    got = tm.anchor_line(planes, ks, 25.0, part, complete=False)
    assert got is not None and got[0] == pytest.approx(0.41, abs=0.005)
    assert all(f < 200 - 25 and np.array_equal(SRC[f], SRC[2 * k - 20]) for k, f, _ in got[2])
    # a drift nobody declared (BG 3 % slower), anchors on an exact footprint: the fitted
    # rate, not the nominal one (rough anchors allow a few frames each, and take the
    # nominal line while it holds them all: the fine pass follows in align)
    ks2 = list(range(10, 300, 12))
    fs = [int(round((k + 0.5) / 1.03 - 0.5)) for k in ks2]
    got = tm.anchor_line(SRC[fs], ks2, 25.0, fpm.from_planes(SRC[:400], 25.0), rough=False)
    assert got is not None and got[1] == pytest.approx(1.03, abs=0.003)
    # a held shot anchors nothing
    held = np.repeat(SRC[:1], 30, axis=0)
    assert tm.anchor_line(held[:10], list(range(10)), 25.0, fpm.from_planes(held, 25.0)) is None


def test_numeric_helpers_equal_scipy() -> None:
    # the hot path avoids scipy's import (a third of a CPU second per run); these stand in
    from scipy.fft import next_fast_len
    from scipy.ndimage import gaussian_filter1d, median_filter, shift

    from vidkompy_vs import numeric

    rng = np.random.default_rng(4)
    a = rng.random(500)
    for sigma in (0.7, 3.0, 40.0, 300.0):
        assert np.allclose(numeric.gauss1d(a, sigma), gaussian_filter1d(a, sigma, mode="constant"), atol=1e-12)
    p = SRC[:5]
    for d in ((0.3, -0.7), (2.6, 1.2)):
        want = shift(p.astype(np.float32), (0, d[1], d[0]), order=1, mode="nearest")
        assert np.allclose(numeric.shift_planes(p, *d), want, atol=1e-3)
    m = rng.random((11, 3))
    assert np.array_equal(numeric.median_nearest(m, 3), median_filter(m, size=(3, 1), mode="nearest"))
    assert np.array_equal(numeric.median_nearest(m[:, 0], 5), median_filter(m[:, 0], size=5, mode="nearest"))
    for n in (1, 7, 97, 48001, 123457):
        assert numeric.next_fast(n) == next_fast_len(n, real=True)


def test_cell_vertices_match_a_linear_program() -> None:
    # the polytope's vertices by brute force equal linprog + qhull's (what it replaced)
    from scipy.optimize import linprog
    from scipy.spatial import HalfspaceIntersection

    rng = np.random.default_rng(2)
    for trial in range(60):
        deg = 1 + trial % 2
        side = 20 if deg == 1 else 8
        rows = np.concatenate([np.sort(rng.choice(np.arange(-60, 0), side, replace=False)),
                               np.sort(rng.choice(np.arange(3, 60), side, replace=False))]).astype(float)
        pos = rng.uniform(0, 1) + rng.uniform(0.3, 2.5) * rows \
            + (rng.uniform(-0.004, 0.004) * rows ** 2 if deg == 2 else 0)
        k = np.round(pos + (rng.normal(0, 0.3, len(rows)) if trial % 7 == 0 else 0))
        got = tm._cell_vertices(rows, k, deg)
        s = float(max(1.0, np.abs(rows).max()))
        A = np.stack([(rows / s) ** e for e in range(deg + 1)], axis=1)
        a_ub, b_ub = np.vstack([A, -A]), np.concatenate([k + 0.5 - 1e-6, -(k - 0.5)])
        c = np.zeros(deg + 2)
        c[-1] = -1.0
        r = linprog(c, A_ub=np.hstack([a_ub, np.linalg.norm(a_ub, axis=1)[:, None]]), b_ub=b_ub,
                    bounds=[(None, None)] * (deg + 1) + [(0, None)], method="highs")
        if r.status != 0 or r.x[-1] <= 1e-9:
            assert got is None
            continue
        want = HalfspaceIntersection(np.hstack([a_ub, -b_ub[:, None]]), r.x[:-1]).intersections
        assert got is not None
        u = np.linspace(-0.2, 0.2, 9)
        val = lambda v, u=u, deg=deg: sum(v[:, e][:, None] * u[None, :] ** e for e in range(deg + 1))  # noqa: E731
        assert np.allclose(val(got[0]).min(0), val(want).min(0), atol=1e-6)
        assert np.allclose(val(got[0]).max(0), val(want).max(0), atol=1e-6)
