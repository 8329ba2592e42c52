"""Rule 6 (issue 10): FG frames BG lacks go to the BG frame showing the nearest content."""

import numpy as np

from vidkompy_vs.fingerprint import Fingerprints, normalise
from vidkompy_vs.nearest import nearest_content


def _reel(n: int, seed: int = 1) -> np.ndarray:
    """n planes of a texture panning one pixel per frame: content distance grows with |k - k'|."""
    rng = np.random.default_rng(seed)
    tex = rng.integers(0, 256, (36, 64 + n + 8)).astype(np.float32)
    tex = (tex + np.roll(tex, 1, 1) + np.roll(tex, 1, 0)) / 3  # some spatial correlation
    return np.stack([tex[:, k:k + 64] for k in range(n)]).astype(np.uint8)


def _fp(planes: np.ndarray, fps: float) -> Fingerprints:
    return Fingerprints(planes, fps)


def test_fps_ratio_moves_to_nearest_content_and_earlier_on_a_tie():
    master = _reel(200)
    b = np.floor(2.5 * np.arange(80)).astype(int)  # BG at 24 fps shows every 2.5th of FG's 60
    fg, bg = _fp(master[:200], 60), _fp(master[b], 24)
    truth = []
    for k in range(200):
        d = np.abs(b - k)
        cand = np.flatnonzero(d == d.min())
        truth.append(int(cand.min()))  # a tie: the earlier (its time lies nearer: sample and hold)
    # a map that puts every frame BG lacks on the later neighbour (what a correlation may do)
    bad = np.array([int(np.searchsorted(b, k)) if k not in b else int(np.flatnonzero(b == k)[0])
                    for k in range(200)])
    bad = np.minimum(bad, len(b) - 1)
    got = nearest_content(fg, bg, bad, np.ones(200, bool), [(0, 200)], np.zeros(200, np.float32))
    inner = slice(3, 195)  # (the ends have a neighbour on one side only)
    assert got.moved > 50
    assert np.array_equal(got.frame_map[inner], np.array(truth)[inner])
    # the moved frames' similarity is the new pair's
    i = int(np.flatnonzero(got.frame_map != bad)[0])
    v = normalise(np.stack([fg.planes[i], bg.planes[got.frame_map[i]]]).reshape(2, -1))
    assert abs(float(got.similarity[i]) - float(v[0] @ v[1])) < 1e-5


def test_one_to_one_map_is_left_alone_even_when_noisy():
    master = _reel(120, seed=2)
    rng = np.random.default_rng(3)
    noisy = np.clip(master.astype(np.int16) + rng.integers(-12, 13, master.shape), 0, 255).astype(np.uint8)
    fmap = np.arange(120)
    got = nearest_content(_fp(master, 25), _fp(noisy, 25), fmap, np.ones(120, bool), [(0, 120)],
                          np.zeros(120, np.float32))
    assert got.moved == 0 and np.array_equal(got.frame_map, fmap)


def test_shots_bound_the_move_and_a_backward_map_is_skipped():
    master = _reel(100, seed=4)
    b = np.floor(2.5 * np.arange(40)).astype(int)
    fg, bg = _fp(master, 60), _fp(master[b], 24)
    fmap = np.array([int(np.searchsorted(b, k)) for k in range(100)]).clip(0, 39)
    back = fmap.copy()
    back[10:20] = back[10:20][::-1]  # runs backward inside the shot: no timeline to count on
    got = nearest_content(fg, bg, back, np.ones(100, bool), [(0, 100)], np.zeros(100, np.float32))
    assert got.moved == 0
    # uncovered frames are never moved
    cov = np.zeros(100, bool)
    got = nearest_content(fg, bg, fmap, cov, [(0, 100)], np.zeros(100, np.float32))
    assert got.moved == 0


def test_repeats_stay_on_a_bg_frame_whose_content_is_not_known():
    # FG 30 fps over a 25 fps BG of the same footage: FG repeats every 5th picture, and
    # the map puts both copies on the BG frame showing it. One such BG frame matches
    # worse than the shot's exact level (noise, a burnt-in counter): its content position
    # is not known, which is no ground to move FG's frames off it (a 10-minute pair lost
    # 18 exact frames so, max error 2).
    master = _reel(130, seed=5)
    f = np.floor(np.arange(150) * 25 / 30 + 1e-9).astype(int)  # FG frame -> picture
    rng = np.random.default_rng(6)
    bgp = master[:130].astype(np.int16)
    for j in range(130):
        bgp[j] += rng.integers(-2, 3, bgp[j].shape)
    dup = int(f[np.flatnonzero(np.diff(f) == 0)[6]])  # a picture FG shows twice
    bgp[dup] += rng.integers(-40, 41, bgp[dup].shape)
    bg = _fp(np.clip(bgp, 0, 255).astype(np.uint8), 25)
    fg = _fp(master[f], 30)
    got = nearest_content(fg, bg, f.copy(), np.ones(150, bool), [(0, 150)], np.zeros(150, np.float32))
    assert got.moved == 0 and np.array_equal(got.frame_map, f)


def _slowing_pan(n: int, seed: int, fast: float = 2.0, slow: float = 0.1) -> np.ndarray:
    """n planes of a smooth texture panning ``fast`` px per frame, then (second half)
    ``slow``: near-still, consecutive pictures apart by less than the noise tells."""
    rng = np.random.default_rng(seed)
    tex = rng.normal(0, 1, (36, 64 + 16 + int(fast * n)))
    for _ in range(3):
        tex = (tex + np.roll(tex, 1, 1) + np.roll(tex, -1, 1) + np.roll(tex, 1, 0) + np.roll(tex, -1, 0)) / 5
    tex = 128 + 60 * tex / tex.std()
    x = np.concatenate([[0.0], np.cumsum(np.where(np.arange(n) < n // 2, fast, slow))[:-1]])
    i0, fr = np.floor(x).astype(int), x - np.floor(x)
    cols = np.arange(64)
    return np.stack([(1 - f) * tex[:, i + cols] + f * tex[:, i + cols + 1] for i, f in zip(i0, fr)])


def _noisy(planes: np.ndarray, rng: np.random.Generator, sd: float = 4.0) -> np.ndarray:
    return np.clip(planes + rng.normal(0, sd, planes.shape), 0, 255).astype(np.uint8)


def test_near_still_frames_bg_lacks_go_to_the_earlier_neighbour():
    # BG skips every third of FG's pictures (a fast ramp's end) over a shot that ends
    # near-still: there each FG frame matches both neighbouring BG frames within the
    # fingerprints' noise, so "some BG frame shows it within noise" held for every one
    # and the map's later neighbour stood (24 of 150 frames off). FG's own frames show
    # no repeats where it moves: every FG frame is a picture of its own, each BG frame
    # shows the one at its sample-and-hold position, and a frame BG lacks goes to the
    # nearest of those (a tie: the earlier).
    n = 150
    master = _slowing_pan(n, seed=7)
    rng = np.random.default_rng(8)
    b = np.floor(1.5 * np.arange(100)).astype(int)
    fg, bg = _fp(_noisy(master, rng), 25), _fp(_noisy(master[b], rng), 25)
    truth = np.array([int(np.flatnonzero(np.abs(b - k) == np.abs(b - k).min())[0]) for k in range(n)])
    later = np.array([int(np.searchsorted(b, k)) for k in range(n)]).clip(0, len(b) - 1)
    got = nearest_content(fg, bg, later, np.ones(n, bool), [(0, n)], np.zeros(n, np.float32))
    assert np.array_equal(got.frame_map[3:-3], truth[3:-3])


def test_fg_repeats_over_a_bg_with_every_picture_stay_in_near_still_content():
    # The same shot as FG 60 fps over a 25 fps BG with every picture (FG repeats each
    # 2 or 3 times): FG's repeats show where it moves, so its frames are not distinct
    # pictures, and the map (every copy on the BG frame showing its picture) stands in
    # the near-still half, where a copy and a distinct picture look alike (counted as
    # distinct, a copy may lie nearer the next BG frame's position).
    m = _slowing_pan(60, seed=9)
    rng = np.random.default_rng(10)
    n = 144
    truth = np.floor(np.arange(n) * 25 / 60 + 1e-9).astype(int)
    fg, bg = _fp(_noisy(m[truth], rng), 60), _fp(_noisy(m, rng), 25)
    got = nearest_content(fg, bg, truth, np.ones(n, bool), [(0, n)], np.zeros(n, np.float32))
    assert got.moved == 0 and np.array_equal(got.frame_map, truth)
