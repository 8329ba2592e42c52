"""The alignment report: numbers equal the file's, pictures embedded, frames or a clear
note that they are missing, and the page renders in a real browser (headless Chromium)."""

from __future__ import annotations

import base64
import importlib.util
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from vidkompy_vs.alignment import Alignment, Shot
from vidkompy_vs.cli import main
from vidkompy_vs.report import N_EVEN, N_LOW, pick_frames

_spec = importlib.util.spec_from_file_location("bench_report", Path(__file__).parents[1] / "benchmarks" / "report.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)  # the page checks the report benchmark runs on every case


def parse(path: Path):
    return bench.Page(path.read_text())


@pytest.fixture(scope="module")
def aligned(pair, tmp_path_factory) -> Path:
    """A real alignment of the sample pair, with two shots and a few uncovered frames
    added so every mark on the plots has something to show."""
    folder = tmp_path_factory.mktemp("report")
    out = folder / "align.json"
    assert main(["-q", "align", str(pair.bg), str(pair.fg), "-o", str(out)]) == 0
    al = Alignment.load(out)
    n = al.fg.frames
    al.shots = [Shot(0, 90, al.temporal.frame_map[0], al.temporal.frame_map[89] + 1, al.spatial.x, al.spatial.y,
                     confidence=0.9),
                Shot(90, n, al.temporal.frame_map[90], al.temporal.frame_map[n - 1] + 1, al.spatial.x, al.spatial.y,
                     confidence=0.8, active=[0, 0, al.fg.width, al.fg.height - 10])]
    al.temporal.uncovered = [n - 3, n - 2, n - 1]
    al.save(out)
    return out


def test_numbers_equal_the_file_and_nothing_is_fetched(aligned, tmp_path, capsys):
    html = tmp_path / "r.html"
    assert main(["report", str(aligned), "-o", str(html)]) == 0
    page = parse(html)
    assert bench.number_faults(page, json.loads(aligned.read_text())) == []
    assert float(page.cells["temporal.offset_s"]) == json.loads(aligned.read_text())["temporal"]["offset_s"]
    # pictures are inline PNGs; no address anywhere that a browser would fetch
    assert page.links and bench.link_faults(page) == []
    assert {"plot-map", "plot-similarity", "plot-placement", "triplets"} <= page.ids
    assert "frames-missing" not in page.ids
    al = Alignment.load(aligned)
    low, even = pick_frames(al)
    assert len(low) == N_LOW and len(even) == N_EVEN
    assert len(page.imgs) == 3 + 3 * len(set(low) | set(even))  # 3 plots + a triplet per frame
    # the least similar frames are the ones marked
    sim = np.asarray(al.temporal.similarity)
    assert sim[low].max() <= np.sort(sim)[len(sim) // 4]
    assert "wrote" in capsys.readouterr().err


def test_triplet_shows_the_composite(aligned, tmp_path):
    """The composite thumbnail of a triplet is FG where FG sits and BG elsewhere."""
    html = tmp_path / "r.html"
    assert main(["report", str(aligned), "-o", str(html)]) == 0
    imgs = [cv2.imdecode(np.frombuffer(base64.b64decode(u.split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
            for u in parse(html).imgs[3:6]]
    fg, bg, comp = (i.astype(float) for i in imgs)
    al = Alignment.load(aligned)
    k = comp.shape[1] / al.bg.width
    x0, y0 = int(al.spatial.x * k) + 3, int(al.spatial.y * k) + 3
    inner = comp[y0:y0 + int(al.fg.height * k) - 6, x0:x0 + int(al.fg.width * k) - 6]
    fg_small = cv2.resize(fg, (int(al.fg.width * k), int(al.fg.height * k)), interpolation=cv2.INTER_AREA)[3:-3, 3:-3]
    h, w = min(inner.shape[0], fg_small.shape[0]), min(inner.shape[1], fg_small.shape[1])
    assert np.abs(inner[:h, :w] - fg_small[:h, :w]).mean() < 12
    assert np.abs(comp[:y0 - 6] - bg[:y0 - 6]).mean() < 3  # above FG: the BG frame itself


def test_missing_videos_still_give_the_plots(aligned, tmp_path, capsys):
    d = json.loads(aligned.read_text())
    d["bg"]["path"] = str(tmp_path / "moved" / "bg.mp4")
    moved = tmp_path / "moved.json"
    moved.write_text(json.dumps(d))
    html = tmp_path / "r.html"
    assert main(["report", str(moved), "-o", str(html)]) == 0
    page = parse(html)
    assert "frames-missing" in page.ids and "triplets" not in page.ids
    assert len(page.imgs) == 3
    assert "moved/bg.mp4" in html.read_text() and "Frames missing" in html.read_text()
    err = [ln for ln in capsys.readouterr().err.splitlines() if "warning" in ln]
    assert len(err) == 1 and "frames missing" in err[0] and "bg.mp4" in err[0]
    # --bg naming a folder: plots only, and the warning says why (it said "no such file")
    assert main(["report", str(moved), "-o", str(html), "-y", "--bg", str(tmp_path)]) == 0
    err = [ln for ln in capsys.readouterr().err.splitlines() if "warning" in ln]
    assert len(err) == 1 and "not a regular file" in err[0], err
    # --bg puts them back
    assert main(["report", str(moved), "-o", str(html), "-y", "--bg", str(Path(json.loads(aligned.read_text())
                                                                              ["bg"]["path"]))]) == 0
    assert "triplets" in parse(html).ids


def test_inputs_that_do_not_fit_are_reported_not_raised(aligned, tmp_path, pair, capsys):
    html = tmp_path / "r.html"
    # FG given as BG: the sizes do not fit the alignment
    assert main(["report", str(aligned), "-o", str(html), "--bg", str(pair.fg)]) == 0
    assert "frames-missing" in parse(html).ids
    assert "does not fit" in capsys.readouterr().err


def test_report_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert main(["report", str(bad), "-o", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "schema" in err[0]
    assert not (tmp_path / "r.html").exists()


def test_align_writes_the_report(pair, tmp_path):
    out, html = tmp_path / "a.json", tmp_path / "a.html"
    assert main(["-q", "align", str(pair.bg), str(pair.fg), "-o", str(out), "--report", str(html)]) == 0
    page = parse(html)
    assert float(page.cells["temporal.offset_s"]) == json.loads(out.read_text())["temporal"]["offset_s"]
    assert "triplets" in page.ids


@pytest.mark.skipif(bench.chromium() is None, reason="no chromium on PATH (Debian: apt-get install chromium)")
def test_renders_in_headless_chromium(aligned, tmp_path):
    html = tmp_path / "r.html"
    assert main(["report", str(aligned), "-o", str(html)]) == 0
    shot = tmp_path / "shot.png"
    bench.screenshot(html, shot, bench.chromium())
    assert cv2.imread(str(shot)).shape[:2] == bench.SHOT_SIZE[::-1]
    assert bench.screenshot_faults(shot, frames=True) == []
    # the check itself: a page with the pictures taken out fails it
    bare = tmp_path / "bare.html"
    bare.write_text(re.sub(r'src="data:image/png;base64,[^"]*"', 'src=""', html.read_text()))
    bench.screenshot(bare, shot, bench.chromium())
    faults = bench.screenshot_faults(shot, frames=True)
    assert any("plot lines" in f for f in faults) and any("frame strip" in f for f in faults)


def test_pick_frames_spreads_the_lowest():
    al = Alignment.from_dict({
        "schema": "vidkompy-vs/alignment@1",
        "bg": {"path": "b", "width": 64, "height": 36, "fps_num": 25, "fps_den": 1, "frames": 100},
        "fg": {"path": "f", "width": 32, "height": 18, "fps_num": 25, "fps_den": 1, "frames": 100},
        "spatial": {"x": 0, "y": 0},
        "temporal": {"frame_map": list(range(100)),
                     "similarity": [0.1 if 40 <= i < 50 else 0.5 if i == 90 else 0.9 for i in range(100)]}})
    low, even = pick_frames(al, 2, 3)
    # one from the bad stretch, then the next bad place, not its neighbour
    assert low == [40, 90] and even == [25, 50, 74]

