"""The prepass on pairs with structure: an FG with bars baked in over an open-matte BG, a
BG with a shot FG never shows inserted, and shots in another order (small real clips)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from conftest import ffmpeg
from rich.console import Console

from vidkompy_vs.align import align

BAR = 24  # rows of black baked into FG at the top and at the bottom


def _quiet() -> Console:
    return Console(file=io.StringIO())


@pytest.fixture(scope="module")
def letterboxed(pair_lossless, clip_dir: Path) -> Path:
    """The lossless pair's FG (320x180 at (171, 63), BG frame = FG frame + 25) with black
    bars drawn over its top and bottom rows: BG shows picture there."""
    out = clip_dir / "fg-letterboxed.mkv"
    if not out.exists():
        ffmpeg("-i", str(pair_lossless.fg), "-vf",
               f"drawbox=x=0:y=0:w=iw:h={BAR}:color=black:t=fill,drawbox=x=0:y=ih-{BAR}:w=iw:h={BAR}:color=black:t=fill",
               "-c:v", "ffv1", "-an", str(out))
    return out


def test_bars_are_left_out_of_the_match_and_recorded(pair_lossless, letterboxed: Path) -> None:
    a = align(pair_lossless.bg, letterboxed, console=_quiet(), cache=False)
    # the picture area, rounded inward (a codec's ringing next to a bar counts as bar)
    x, y, w, h = a.spatial.active
    assert (x, w) == (0, 320) and BAR <= y <= BAR + 4 and 180 - BAR - 4 <= y + h <= 180 - BAR
    # the placement is for the whole FG frame, as without bars
    assert abs(a.spatial.x - 171) < 0.5 and abs(a.spatial.y - 63) < 0.5 and abs(a.spatial.scale - 1) < 0.005
    assert a.temporal.frame_map == [i + 25 for i in range(a.fg.frames)]
    assert (a.fg.width, a.fg.height) == (320, 180)


EDITS = {  # BG rearranged from pieces of the sample BG; FG shows its frames 25..199
    "insert": [(0, 100), (0, 25), (100, 200)],  # 25 frames FG never shows, inside BG
    "missing": [(0, 100), (130, 200)],  # FG's frames 75..104 are not in BG
    "reorder": [(100, 200), (0, 100)],  # the second part first
}


@pytest.fixture(scope="module")
def edited(pair_lossless, clip_dir: Path) -> dict[str, Path]:
    out = {}
    for name, parts in EDITS.items():
        p = clip_dir / f"bg-{name}.mkv"
        if not p.exists():
            chains = ";".join(f"[0:v]trim=start_frame={a}:end_frame={b},setpts=PTS-STARTPTS[v{k}]"
                              for k, (a, b) in enumerate(parts))
            cat = "".join(f"[v{k}]" for k in range(len(parts)))
            ffmpeg("-i", str(pair_lossless.bg), "-filter_complex", f"{chains};{cat}concat=n={len(parts)}:v=1:a=0[o]",
                   "-map", "[o]", "-c:v", "ffv1", str(p))
        out[name] = p
    return out


def _truth(parts: list[tuple[int, int]], n_fg: int) -> list[int | None]:
    """The rearranged BG's frame showing the sample BG's frame 25 + i (the last such, for
    content BG shows twice), or None."""
    where: dict[int, int] = {}
    j = 0
    for a, b in parts:
        for k in range(a, b):
            where[k] = j
            j += 1
    return [where.get(25 + i) for i in range(n_fg)]


@pytest.mark.parametrize("name", list(EDITS))
def test_edited_bg_is_matched_shot_by_shot(pair_lossless, edited: dict[str, Path], name: str) -> None:
    a = align(edited[name], pair_lossless.fg, console=_quiet(), cache=False, method="visual")
    truth = _truth(EDITS[name], a.fg.frames)
    covered = [i for i, t in enumerate(truth) if t is not None]
    exact = sum(a.temporal.frame_map[i] == truth[i] for i in covered) / len(covered)
    assert exact >= 0.995
    assert set(a.temporal.uncovered) == {i for i, t in enumerate(truth) if t is None}
    if name == "reorder":
        assert a.jumps() >= 1 and any(b < p for p, b in zip(a.temporal.frame_map, a.temporal.frame_map[1:]))
