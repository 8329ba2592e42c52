"""The structure benchmark's case generator (benchmarks/structure.py): its truth is exact.

Not the engine's accuracy: one tiny case (a synthetic clip, three shots of 6 frames,
BG reordered and missing half a shot, FG a pan-and-scan window per shot downscaled x0.75
with bars) is written losslessly and its files are checked against the truth; the named
cases' truth is checked without writing them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import FFMPEG

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import structure as st  # noqa: E402

W, H = 256, 144
FG = (144, 108)  # a 192x144 (4:3) window of BG, x0.75
ACTIVE = (0, 12, 144, 84)  # bars above and below: BG rows 16..128 of the window
XS = (16.0, 48.0, 0.0)  # the window's x per shot


def _decode(path: Path, w: int, h: int) -> np.ndarray:
    raw = subprocess.run([FFMPEG, "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "bgr24", "-"],
                         capture_output=True, check=True).stdout
    return np.stack([_y(f) for f in np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)])


def _y(img: np.ndarray) -> np.ndarray:
    """Luma as int (lossless 4:2:0 keeps it; chroma is subsampled)."""
    return cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_BGR2GRAY).astype(int)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("structure")
    clip = d / "src.mkv"
    subprocess.run([FFMPEG, "-v", "error", "-f", "lavfi", "-i", f"testsrc2=size={W}x{H}:rate=25", "-frames:v", "30",
                    "-c:v", "ffv1", str(clip)], check=True)
    reel = st.Reel([st.Shot(str(clip), 0, 6, "setsar=1"), st.Shot(str(clip), 10, 6, "hflip,setsar=1"),
                    st.Shot(str(clip), 20, 6, "vflip,setsar=1")], (W, H), cache=d)
    s0, s1, s2 = (reel.frames(i) for i in range(3))
    f = s0[1:] + s1 + s2[:-1]
    case = st.Case("tiny", "reordered, half a shot missing, pan-and-scan with bars", reel,
                   s2 + s0 + s1[:3], f, [[XS[int(reel.shot_of(k))], 0.0, 4 / 3] for k in f], FG,
                   active=ACTIVE)
    bg, fg = st.build(case, crf=None, cache=d)
    return case, bg, fg


def test_truth_sets(tiny):
    case, bg, _ = tiny
    sets = st.master_sets(case)
    unc = [i for i, s in enumerate(sets) if s is None]
    assert unc == [8, 9, 10]  # s1[3:], which BG lacks
    for i, s in enumerate(sets):
        assert s is None or (s and all(case.b[j] == case.f[i] for j in s))
    for s, t in zip(sets, st.truth(case, bg)):
        assert (s is None) == (t is None) and (s is None or s <= t)
    assert case.fg_shots() == [(0, 5), (5, 11), (11, 16)]


def test_written_frames_match_truth(tiny):
    case, bgp, fgp = tiny
    fg, bg = _decode(fgp, *FG), _decode(bgp, W, H)
    assert len(fg) == len(case.f) and len(bg) == len(case.b)
    ax, ay, aw, ah = ACTIVE
    sets = st.master_sets(case)
    for i, k in enumerate(case.f):
        # FG frame i is the master frame the truth names, cut at the true place (nearest of all masters)
        x, y, s = case.place[i]
        d = [np.abs(fg[i] - _y(st.fg_frame(case.reel.frame(m), x, y, s, FG, ACTIVE))).mean()
             for m in range(len(case.reel))]
        assert int(np.argmin(d)) == k and d[k] < 1.5 and sorted(d)[1] > 2 * d[k]
        assert fg[i, :ay].max() < 4 and fg[i, ay + ah:].max() < 4  # the bars are black
        if sets[i] is None:
            continue
        # ... and the BG frames the truth accepts show that picture at (x, y, scale)
        for j in sets[i]:
            cut = bg[j, int(y + s * ay):int(y + s * (ay + ah)), int(x + s * ax):int(x + s * (ax + aw))]
            pic = cv2.resize(cut.astype(np.float32), (aw, ah), interpolation=cv2.INTER_AREA)
            assert np.abs(pic - fg[i, ay:ay + ah, ax:ax + aw]).mean() < 1


def test_named_cases_truth():
    got = {c.name: c for c in st.cases()}  # nothing is rendered or written
    assert set(got) >= {"insert", "missing", "reorder", "panscan", "letterbox", "pan", "r6_fg60_bg24", "r6_ramp"}
    unc = {n: sum(s is None for s in st.master_sets(c)) for n, c in got.items()}
    assert unc == dict.fromkeys(got, 0) | {"missing": 30}  # 1.2 s at 25 fps
    assert len(got["insert"].b) - len(set(got["insert"].b.tolist()) & set(got["insert"].f.tolist())) >= 60
    assert [len(got[n].fg_shots()) for n in ("insert", "reorder", "panscan", "letterbox", "pan")] == [4, 4, 3, 2, 1]
    ps = got["panscan"]
    assert sorted({tuple(p) for p in ps.place}) == [(24.0, 0.0, 4 / 3), (96.0, 0.0, 4 / 3), (160.0, 0.0, 4 / 3)]
    pan = got["pan"].place[:, 0]
    assert pan.max() - pan.min() == pytest.approx(36) and np.all(np.diff(pan) >= 0)
    # rule 6: an FG frame BG lacks goes to the nearest master frame of its shot
    r6 = got["r6_fg60_bg24"]
    for i, s in enumerate(st.master_sets(r6)):
        shown = {int(r6.b[j]) for j in s}  # one master frame, of the same shot (its end: 2 away)
        m = shown.pop()
        assert not shown and abs(m - r6.f[i]) <= 2 and r6.reel.shot_of(m) == r6.reel.shot_of(int(r6.f[i]))
