"""Export: OTIO, CSV, EDL and FCP XML carry the frame map frame for frame, and read back."""

from __future__ import annotations

import csv
import json
import logging
import random
import subprocess
import sys
from pathlib import Path

import opentimelineio as otio
import pytest
from conftest import ffmpeg

from vidkompy_vs import export as ex
from vidkompy_vs.alignment import Alignment, MediaInfo, Shot, Spatial, Temporal


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vidkompy_vs", *map(str, args)], capture_output=True, text=True)


def made(n: int, bgn: int, fps: tuple[int, int], bg_fps: tuple[int, int] | None = None, *, seed: int = 0,
         lead: int = 4, tail: int = 6, jumps: float = 0.05, shots: bool = True, track: bool = False) -> Alignment:
    """An alignment with cuts (jumps forward and back), held frames, and FG frames before,
    inside and after BG (uncovered: the nearest covered frame's BG frame, as the aligner
    makes them)."""
    rnd = random.Random(seed)
    fmap, b = [], 5
    for _ in range(n):
        r = rnd.random()
        b = b + rnd.randint(-40, 60) if r < jumps else b if r < 2 * jumps else b + 1
        b = min(max(b, 0), bgn - 1)
        fmap.append(b)
    mid = list(range(n // 2, n // 2 + 9)) if lead else []  # BG lacks a span: 4 frames held before, 5 after
    unc = list(range(lead)) + mid + list(range(n - tail, n))
    for i in unc[:lead]:
        fmap[i] = fmap[lead]
    for i in mid:
        fmap[i] = fmap[mid[0] - 1] if i - mid[0] < mid[-1] + 1 - i else fmap[mid[-1] + 1]
    for i in unc[lead + len(mid):]:
        fmap[i] = fmap[n - tail - 1]
    bf = bg_fps or fps
    bg = MediaInfo("/media/bg.mov", 1920, 1080, bf[0], bf[1], bgn)
    fg = MediaInfo("/media/fg.mov", 960, 540, fps[0], fps[1], n)
    sp = Spatial(311.5, 97.25, 1.0, 0.9, "ncc+ecc")
    if track:
        sp.track = [[300 + i * 0.1, 90 + i * 0.05, 1.0 + i * 1e-4] for i in range(n)]
    sh = [Shot(0, n // 3, 0, bgn // 3, 310, 96, 1.0, 0.8), Shot(n // 2, n, bgn // 2, bgn, 312, 98, 0.98, 0.7,
                                                           active=[0, 60, 960, 420])] if shots else []
    return Alignment(bg, fg, sp, Temporal(fmap, [round(rnd.random(), 4) for _ in range(n)], 0.8, "visual", 0.2, 1.0,
                                          unc), shots=sh)


CASES = {
    "23.976": made(600, 900, (24000, 1001)),
    "29.97": made(600, 900, (30000, 1001), seed=1),
    "25-over-50": made(300, 1000, (25, 1), (50, 1), seed=2, shots=False),
    "tracked": made(200, 400, (25, 1), seed=3, track=True, lead=0, tail=0),
}


def covered_runs(al: Alignment) -> int:
    """Runs of FG frames over consecutive BG frames, counted independently of the exporter."""
    unc, m = set(al.temporal.uncovered), al.temporal.frame_map
    return sum(1 for i in range(len(m)) if i not in unc and (i == 0 or i - 1 in unc or m[i] != m[i - 1] + 1))


@pytest.mark.parametrize("name", CASES)
def test_otio_timeline_and_round_trip(name, tmp_path):
    al = CASES[name]
    src = tmp_path / "a.json"
    al.save(src)
    out = ex.export(src, tmp_path / "a.otio")
    tl = otio.adapters.read_from_file(str(out))
    vids, auds = list(tl.video_tracks()), list(tl.audio_tracks())
    assert [t.name for t in vids] == ["BG", "FG"] and len(auds) == 1  # FG's file is not here: its sound is kept
    fr = al.fg.fps
    for t in vids + auds:
        assert t.duration().value_rescaled_to(fr) == pytest.approx(al.fg.frames)
    bg_clips = [c for c in vids[0] if isinstance(c, otio.schema.Clip)]
    assert len(bg_clips) == covered_runs(al)
    assert all(c.media_reference.target_url == "/media/bg.mov" for c in bg_clips)
    gaps = [g for g in vids[0] if isinstance(g, otio.schema.Gap)]
    assert sum(round(g.duration().value) for g in gaps) == len(al.temporal.uncovered)
    # FG: one clip per shot and between shots, the placement in its metadata
    fg_clips = list(vids[1])
    assert sum(round(c.duration().value) for c in fg_clips) == al.fg.frames
    for c in fg_clips:
        meta = c.metadata["vidkompy"]
        k = meta["shot"]
        want = al.shots[k] if k is not None else al.spatial
        assert (meta["x"], meta["y"], meta["scale"]) == (want.x, want.y, want.scale)
        assert c.effects[0].effect_name == "Transform"
    if al.spatial.track:
        got = [v for c in fg_clips for row in c.metadata["vidkompy"]["track"] for v in row]
        assert got == pytest.approx([v for row in al.spatial.track for v in row], rel=1e-12)  # JSON: ~15 digits
    assert ex.frame_map_from_otio(out) == (al.temporal.frame_map, al.temporal.uncovered)
    # and from a timeline in memory, without the gaps' kept entries: still the map where BG covers FG
    tl2 = ex.to_timeline(al, fg_audio=False)
    for g in tl2.video_tracks()[0]:
        if isinstance(g, otio.schema.Gap):
            del g.metadata["vidkompy"]
    fmap, unc = ex.frame_map_from_otio(tl2)
    assert (fmap, unc) == (al.temporal.frame_map, al.temporal.uncovered)
    assert len(list(tl2.audio_tracks())) == 0


@pytest.mark.parametrize("name", CASES)
def test_csv_equals_map(name, tmp_path):
    al = CASES[name]
    src = tmp_path / "a.json"
    al.save(src)
    rows = list(csv.DictReader((ex.export(src, tmp_path / "a.csv")).open()))
    assert list(rows[0]) == ["fg_frame", "bg_frame", "similarity", "x", "y", "scale", "shot", "uncovered"]
    assert [int(r["fg_frame"]) for r in rows] == list(range(al.fg.frames))
    assert [int(r["bg_frame"]) for r in rows] == al.temporal.frame_map
    assert [float(r["similarity"]) for r in rows] == al.temporal.similarity
    assert [(float(r["x"]), float(r["y"]), float(r["scale"])) for r in rows] == [al.spatial.at(n)
                                                                               for n in range(al.fg.frames)]
    assert [int(r["shot"]) for r in rows] == al.shot_index()
    assert [i for i, r in enumerate(rows) if r["uncovered"] == "1"] == al.temporal.uncovered


@pytest.mark.parametrize("fps", [(24000, 1001), (30000, 1001)], ids=["23.976", "29.97"])
@pytest.mark.parametrize("fmt", ["edl", "fcpxml"])
def test_edl_fcpxml_frame_exact(fps, fmt, tmp_path):
    """Over half an hour at NTSC rates (drop-frame timecode at 29.97): every frame kept."""
    al = made(50_000, 60_000, fps, seed=7, jumps=0.001)
    src = tmp_path / "a.json"
    al.save(src)
    out = ex.export(src, tmp_path / f"a.{'edl' if fmt == 'edl' else 'xml'}", to=fmt)
    text = out.read_text()
    if fmt == "edl":
        events = [ln.split() for ln in text.splitlines() if ln[:3].isdigit()]
        assert len(events) == covered_runs(al)
        assert (";" in events[-1][-1]) == (fps == (30000, 1001))  # drop-frame timecode at 29.97
        last = otio.opentime.to_timecode(otio.opentime.RationalTime(al.fg.frames - 6, fps[0] / fps[1]),
                                         fps[0] / fps[1])
        assert events[-1][-1] == last  # record out of the last event, 6 uncovered frames before FG's end
    fmap, unc = ex.frame_map_from_otio(out, rate=fps[0] / fps[1], frames=al.fg.frames)
    assert fmap == al.temporal.frame_map
    assert unc == al.temporal.uncovered


def test_edl_other_bg_rate_keeps_frame_numbers(tmp_path, caplog):
    al = CASES["25-over-50"]
    src = tmp_path / "a.json"
    al.save(src)
    with caplog.at_level(logging.WARNING, logger="vidkompy_vs.export"):
        out = ex.export(src, tmp_path / "a.edl")
    assert "counts BG's frames at FG's rate" in caplog.text
    assert ex.frame_map_from_otio(out, rate=25, frames=al.fg.frames) == (
        al.temporal.frame_map, al.temporal.uncovered)


@pytest.fixture(scope="module")
def real_alignments(pair, clip_dir, tmp_path_factory) -> list[Path]:
    """From `align` on the test clips: FG inside BG, and FG running 2 s past a shortened BG."""
    d = tmp_path_factory.mktemp("real")
    short = clip_dir / "bg-6s.mp4"
    if not short.exists():
        ffmpeg("-i", str(pair.bg), "-vf", "select=lt(n\\,150)", "-af", "atrim=end=6", "-c:v", "libx264", "-crf", "16",
               "-preset", "veryfast", str(short))
    out = []
    for name, bg in (("full", pair.bg), ("short", short)):
        a = d / f"{name}.json"
        r = run("-q", "align", bg, pair.fg, "-o", a)
        assert r.returncode == 0, r.stderr
        out.append(a)
    return out


def test_real_alignments_round_trip(real_alignments, pair, tmp_path):
    for k, src in enumerate(real_alignments):
        al = Alignment.load(src)
        if k == 1:
            assert al.temporal.uncovered, "the shortened BG should leave FG frames uncovered"
        for fmt, suffix in (("otio", ".otio"), ("edl", ".edl"), ("fcpxml", ".xml"), ("csv", ".csv")):
            out = tmp_path / f"{k}{suffix}"
            r = run("export", src, "-o", out, "--to", fmt, "-q")
            assert r.returncode == 0, r.stderr
            if fmt == "csv":
                assert [int(row["bg_frame"]) for row in csv.DictReader(out.open())] == al.temporal.frame_map
                continue
            got = ex.frame_map_from_otio(out, rate=al.fg.fps, frames=al.fg.frames)
            assert got == (al.temporal.frame_map, al.temporal.uncovered), fmt
            if fmt == "otio":
                tl = otio.adapters.read_from_file(str(out))
                assert len(list(tl.audio_tracks())) == 1  # FG has sound
                ref = tl.video_tracks()[0].find_clips()[0].media_reference.target_url
                assert ref == Path(pair.bg).resolve().as_uri() if k == 0 else ref.endswith("bg-6s.mp4")


def test_export_bad_input(tmp_path):
    al = CASES["tracked"]
    src = tmp_path / "a.json"
    al.save(src)

    def bad(args, needle):
        r = run(*args)
        assert r.returncode == 2, r.stderr
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and needle in r.stderr and "Traceback" not in r.stderr, r.stderr

    bad(["export", src, "-o", tmp_path / "a.txt"], "cannot tell the format")
    bad(["export", src, "-o", src, "--to", "csv"], "overwrite an input")
    bad(["export", tmp_path / "none.json", "-o", tmp_path / "a.csv"], "no such alignment file")
    (tmp_path / "b.json").write_text(json.dumps({**al.to_dict(), "schema": "x"}))
    bad(["export", tmp_path / "b.json", "-o", tmp_path / "a.csv"], "unknown schema")
    (tmp_path / "a.csv").write_text("keep")
    bad(["export", src, "-o", tmp_path / "a.csv"], "already exists")
    assert (tmp_path / "a.csv").read_text() == "keep"
    assert run("export", src, "-o", tmp_path / "a.csv", "-y").returncode == 0
    assert (tmp_path / "a.csv").read_text().startswith("fg_frame,")
