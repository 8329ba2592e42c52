"""Shots and edits in the time map, on fingerprints alone (no decode): a reel of distinct
shots, each a slowly moving smooth picture, cut and rearranged with a known truth."""

from __future__ import annotations

import numpy as np
import pytest

from vidkompy_vs.edits import bg_pieces, edited_map, good_similarity, is_plain, suspicious
from vidkompy_vs.fingerprint import Fingerprints
from vidkompy_vs.settings import TemporalParams
from vidkompy_vs.shots import find_cuts, shot_ranges
from vidkompy_vs.temporal import align_visual

H, W = 36, 64
SHOTS = [70, 55, 90, 60, 80]  # frames per shot of the master reel


def _reel(seed: int = 3) -> np.ndarray:
    """(N, H, W) uint8: each shot a different random smooth field drifting at its own speed."""
    rng = np.random.default_rng(seed)
    out = []
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    for n in SHOTS:
        k = rng.normal(size=(6, 4))
        v = rng.uniform(0.3, 0.8, size=2)
        for t in range(n):
            x, y = xx / W * 6 + v[0] * t / 10, yy / H * 4 + v[1] * t / 10
            f = sum(k[i, 0] * np.sin(x * (i + 1) * 0.7 + k[i, 1]) * np.cos(y * (i + 1) * 0.5 + k[i, 2])
                    for i in range(6))
            f += 0.3 * np.sin(x * 5 + t * 0.9)  # detail that changes every frame
            out.append(np.clip(128 + 40 * f, 0, 255).astype(np.uint8))
    return np.stack(out)


REEL = _reel()
STARTS = np.cumsum([0, *SHOTS])


def _fp(frames: np.ndarray) -> Fingerprints:
    return Fingerprints(REEL[frames], 25.0)


def _edit(fg_idx: np.ndarray, bg_idx: np.ndarray) -> tuple[np.ndarray, list[int], list[int]]:
    """The pair's map through the prepass's steps: the continuous map, the check, and the
    edits when the structure is not plain. Returns the map, uncovered, and FG cuts."""
    fg, bg = _fp(fg_idx), _fp(bg_idx)
    params = TemporalParams()
    tr = align_visual(fg, bg, params=params)
    fg_cuts, bg_cuts = find_cuts(fg.planes).starts, find_cuts(bg.planes).starts
    fmap, unc = np.asarray(tr.frame_map), list(tr.uncovered)
    if suspicious(fmap.tolist(), tr.similarity.tolist(), unc, fg_cuts, bg_cuts, 25.0, 25.0):
        good = good_similarity(tr.similarity, tr.uncovered)
        pieces = bg_pieces(fg, bg, shot_ranges(bg_cuts, bg.n), params, good)
        if not is_plain(pieces, 2):
            ed = edited_map(fg, bg, pieces, params, good)
            fmap, unc = ed.frame_map, ed.uncovered.tolist()
    return fmap, unc, fg_cuts


def _score(fmap: np.ndarray, unc: list[int], fg_idx: np.ndarray, bg_idx: np.ndarray) -> tuple[float, int, int]:
    where = {int(m): j for j, m in enumerate(bg_idx)}
    truth = [where.get(int(m)) for m in fg_idx]
    cov = [i for i, t in enumerate(truth) if t is not None]
    exact = sum(int(fmap[i]) == truth[i] for i in cov) / len(cov)
    true_unc = {i for i, t in enumerate(truth) if t is None}
    return exact, len(true_unc & set(unc)) - len(true_unc), len(set(unc) - true_unc)


def test_cuts_are_the_reels_shot_changes() -> None:
    cuts = find_cuts(REEL).starts
    assert cuts == STARTS[1:-1].tolist()
    assert shot_ranges(cuts, len(REEL))[0] == (0, SHOTS[0])


def test_cut_into_fast_motion_and_motion_that_starts() -> None:
    rng = np.random.default_rng(9)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)

    def field(k: np.ndarray, t: float, speed: float) -> np.ndarray:
        x, y = xx / W * 6 + speed * t, yy / H * 4
        f = sum(k[i, 0] * np.sin(x * (i + 1) * 0.7 + k[i, 1]) * np.cos(y * (i + 1) * 0.5 + k[i, 2]) for i in range(6))
        return np.clip(128 + 40 * f, 0, 255).astype(np.uint8)

    a, b = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    # a still shot, then a cut into a shot that moves fast from its first frame on (every
    # frame changes a lot: the cut stands out against the still side only)
    still = [field(a, 0, 0) for _ in range(30)]
    fast = [field(b, p, 1.0) for p in np.cumsum(0.5 / (1 + np.arange(30) / 4))]  # fast, slowing down
    assert find_cuts(np.stack(still + fast)).starts == [30]
    # the same shot, still, then moving faster and faster: no cut
    onset = [field(a, 0, 0) for _ in range(30)] + [field(a, 0.02 * t * t, 1.0) for t in range(1, 31)]
    assert find_cuts(np.stack(onset)).starts == []


def test_inserted_shot_is_skipped() -> None:
    fg = np.arange(30, STARTS[4])
    # 50 frames of a shot FG never shows (the reel's last) inserted in the middle of BG
    bg = np.concatenate([np.arange(0, 150), np.arange(STARTS[4] + 20, STARTS[4] + 70), np.arange(150, STARTS[4])])
    fmap, unc, _ = _edit(fg, bg)
    assert _score(fmap, unc, fg, bg) == (1.0, 0, 0)


def test_span_missing_from_bg_is_flagged_uncovered() -> None:
    fg = np.arange(20, 300)
    bg = np.concatenate([np.arange(0, 160), np.arange(190, 340)])  # 30 frames cut inside the third shot
    fmap, unc, _ = _edit(fg, bg)
    exact, missed, false = _score(fmap, unc, fg, bg)
    assert exact == 1.0 and missed == 0 and false == 0
    assert unc == list(range(140, 170))


def test_shots_in_another_order_are_matched() -> None:
    fg = np.arange(0, 275)
    # BG shows the second and third shots first
    bg = np.concatenate([np.arange(STARTS[1], STARTS[3]), np.arange(0, STARTS[1]), np.arange(STARTS[3], 340)])
    fmap, unc, fg_cuts = _edit(fg, bg)
    assert _score(fmap, unc, fg, bg) == (1.0, 0, 0)
    # the map jumps back only where a shot starts
    back = [i + 1 for i in np.flatnonzero(np.diff(fmap) < 0)]
    assert back and set(back) <= set(fg_cuts)


@pytest.mark.parametrize("fg_range", [(10, 250), (70, 345)])
def test_plain_pairs_keep_the_continuous_map(fg_range: tuple[int, int]) -> None:
    fg, bg = np.arange(*fg_range), np.arange(0, 345)
    f, b = _fp(fg), _fp(bg)
    tr = align_visual(f, b, params=TemporalParams())
    pieces = bg_pieces(f, b, shot_ranges(find_cuts(b.planes).starts, b.n), TemporalParams(), 0.9)
    assert is_plain(pieces, 2)
    assert _score(np.asarray(tr.frame_map), list(tr.uncovered), fg, bg) == (1.0, 0, 0)
