import json
import math

import pytest

from vidkompy_vs.alignment import SCHEMA, Alignment, realtime_map
from vidkompy_vs.errors import VidkompyError
from vidkompy_vs.sources import probe


@pytest.fixture(scope="module")
def al(pair):
    return Alignment.simple(probe(pair.bg), probe(pair.fg), x=171, y=63)


def test_round_trip(al, tmp_path):
    p = tmp_path / "a.json"
    al.spatial.track = [[1.5, 2.5, 1.0]] * al.fg.frames
    al.save(p)
    d = json.loads(p.read_text())
    assert d["schema"] == SCHEMA
    back = Alignment.load(p)
    assert back == al
    al.spatial.track = None


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(schema="other@1"), "unknown schema"),
    (lambda d: d["temporal"]["frame_map"].pop(), "frame_map has"),
    (lambda d: d["temporal"]["frame_map"].__setitem__(3, 10_000), "out of range"),
    (lambda d: d["temporal"]["frame_map"].__setitem__(3, 2.5), "must be an integer"),
    (lambda d: d["spatial"].update(track=[[0, 0, 1]]), "spatial.track has 1 entries"),
    (lambda d: d["spatial"].update(x=math.nan), "finite"),
    (lambda d: d["spatial"].update(scale=0), "> 0"),
    (lambda d: d.pop("bg"), "alignment.bg is missing"),
    # ranges: nothing that could send comp into an endless or absurd resize
    (lambda d: d["spatial"].update(scale=1e-9), "spatial.scale = 1e-09 makes FG"),
    (lambda d: d["spatial"].update(scale=1e6), "at most 16x BG"),
    (lambda d: d["spatial"].update(x=1e12), "spatial.x = 1e+12 is out of range"),
    (lambda d: d["spatial"].update(y=-1e5), "spatial.y = -100000 is out of range"),
    (lambda d: d["spatial"].update(track=[[0, 0, 1e-9]] * d["fg"]["frames"]), "spatial.track[0].scale"),
    (lambda d: d["spatial"].update(track=[[0, math.inf, 1]] * d["fg"]["frames"]), "finite"),
    (lambda d: d["spatial"].update(confidence=7), "spatial.confidence = 7 is out of range"),
    (lambda d: d["spatial"].update(method=["x"]), "spatial.method must be a string"),
    (lambda d: d["temporal"].update(rate=0), "temporal.rate = 0 is out of range"),
    (lambda d: d["temporal"].update(rate=1e9), "temporal.rate"),
    (lambda d: d["temporal"].update(offset_s=1e12), "temporal.offset_s"),
    (lambda d: d["temporal"].update(offset_s=math.nan), "finite"),
    (lambda d: d["temporal"]["similarity"].__setitem__(0, 5.0), "temporal.similarity[0] = 5.0 is out of range"),
    (lambda d: d["temporal"].update(uncovered=[5, 3]), "increasing order"),
    (lambda d: d["temporal"].update(uncovered="all"), "temporal.uncovered must be a list"),
    (lambda d: d["bg"].update(fps_num=0), "bg.fps_num = 0 is out of range"),
    (lambda d: d["bg"].update(fps_num=10**9), "frame rate"),
    (lambda d: d["fg"].update(fps_den=10**6), "frame rate"),
    (lambda d: d["fg"].update(frames=0), "fg.frames = 0 is out of range"),
    (lambda d: d["bg"].update(width=10**9), "bg.width"),
    (lambda d: d["bg"].update(path=5), "bg.path must be a string"),
    (lambda d: d.update(shots=[{"fg_start": 0, "fg_end": 5, "bg_start": 0, "bg_end": 5, "x": 0, "y": 0,
                                 "scale": 1e-9}]), "shots[0].scale = 1e-09 makes FG"),
    (lambda d: d.update(shots=[{"fg_start": 0, "fg_end": 5, "bg_start": 0, "bg_end": 5, "x": 1e9, "y": 0}]),
     "shots[0].x"),
    (lambda d: d.update(shots=[{"fg_start": 0, "fg_end": 5, "bg_start": 0, "bg_end": 5, "x": 0, "y": 0,
                                 "confidence": -3}]), "shots[0].confidence"),
    (lambda d: d.update(shots={}), "shots must be a list"),
])
def test_validation_one_line(al, tmp_path, mutate, message):
    d = al.to_dict()
    mutate(d)
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(d))
    with pytest.raises(VidkompyError) as e:
        Alignment.load(p)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_not_json(tmp_path):
    p = tmp_path / "x.json"
    p.write_text("import os; os.system('echo no')")
    with pytest.raises(VidkompyError, match="not a JSON alignment"):
        Alignment.load(p)


def test_realtime_map_fps_change():
    # 50 fps FG over 25 fps BG starting 1 s in: each BG frame twice
    m, unc = realtime_map(100, 50, 1, 200, 25, 1, offset_s=1.0)
    assert m[:6] == [25, 25, 26, 26, 27, 27]
    assert unc == []
    m, unc = realtime_map(10, 25, 1, 5, 25, 1)
    assert m == [0, 1, 2, 3, 4, 4, 4, 4, 4, 4] and unc == [5, 6, 7, 8, 9]


def test_real_and_limit_values_load(al, tmp_path):
    """What the aligner writes, and placements at the edges of the limits, still load."""
    d = al.to_dict()
    fw, bw = d["fg"]["width"], d["bg"]["width"]
    for sp in ({"x": -4 * bw - fw, "y": 0, "scale": 1.0}, {"x": 0, "y": 0, "scale": 2 / d["fg"]["height"]},
               {"x": 0, "y": 0, "scale": 16 * bw / fw}):
        d["spatial"].update(sp)
        p = tmp_path / "edge.json"
        p.write_text(json.dumps(d))
        assert Alignment.load(p).spatial.scale == sp["scale"]
