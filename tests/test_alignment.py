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
