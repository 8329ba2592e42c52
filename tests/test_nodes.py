"""align() on VapourSynth nodes: a script's own clips, read only through the frame server.

The pair is the shared sample pair's BG (640x360, 25 fps, with sound); FG clips are made
from it in VapourSynth, so the BG frame under every FG frame is known exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
import vapoursynth as vs
from conftest import quiet_console

from vidkompy_vs import nodes as nd
from vidkompy_vs.align import align
from vidkompy_vs.errors import VidkompyError
from vidkompy_vs.sample import SamplePair
from vidkompy_vs.sources import open_audio, open_video

core = vs.core
X, Y, W, H = 172, 64, 320, 180  # FG's crop of BG (even: 4:2:0 crops)
START, N = 40, 100  # FG shows BG frames START .. START + N - 1


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDKOMPY_VS_CACHE", str(tmp_path_factory.getbasetemp() / "vkcache-nodes"))


def _crop(c: vs.VideoNode) -> vs.VideoNode:
    return core.std.CropAbs(c, width=W, height=H, left=X, top=Y)


def _fg_source(pair: SamplePair) -> vs.VideoNode:
    """BG's file opened again for FG: a decoder of its own, as another file would have
    (one decoder serving both would seek back and forth between their frames)."""
    return open_video(pair.bg)


def telecine(film: vs.VideoNode) -> vs.VideoNode:
    """3:2 pulldown, top field first: film frames A B C D as AA BB BC CD DD (5 frames)."""
    fields = core.std.SeparateFields(film, tff=True)
    fields = core.std.SelectEvery(fields, 8, [0, 1, 2, 3, 2, 5, 4, 7, 6, 7])
    return core.std.AssumeFPS(core.std.DoubleWeave(fields, tff=True)[::2], fpsnum=30000, fpsden=1001)


def inverse_telecine(tc: vs.VideoNode) -> vs.VideoNode:
    """The pattern undone: C's top field from the 4th frame, its bottom one from the 3rd."""
    fields = core.std.SeparateFields(tc, tff=True)
    fields = core.std.SelectEvery(fields, 10, [0, 1, 2, 3, 6, 5, 8, 9])
    return core.std.AssumeFPS(core.std.DoubleWeave(fields, tff=True)[::2], fpsnum=24000, fpsden=1001)


def test_inverse_telecined_fg_aligns_exactly(pair: SamplePair) -> None:
    bg = open_video(pair.bg)
    # a 24p film cut from BG's footage, telecined to 30i-like frames (as a DVD would have
    # it: 125 frames, 2 in 5 combed) and inverse-telecined in the script
    film = core.std.AssumeFPS(_crop(_fg_source(pair)[START:START + N]), fpsnum=24000, fpsden=1001)
    tc = telecine(film)
    assert tc.num_frames == N * 5 // 4
    fg = inverse_telecine(tc)
    assert fg.num_frames == N
    for i in (0, 2, 3, N - 1):  # the script's IVTC is lossless: the film's own frames
        assert np.array_equal(np.asarray(fg.get_frame(i)[0]), np.asarray(film.get_frame(i)[0]))
    con, _ = quiet_console()
    a = align(bg, fg, console=con)
    assert a.temporal.frame_map == list(range(START, START + N))
    assert a.temporal.uncovered == []
    assert abs(a.spatial.x - X) < 0.05 and abs(a.spatial.y - Y) < 0.05 and a.spatial.scale == pytest.approx(1.0)
    assert (a.fg.frames, a.fg.fps_num, a.fg.fps_den) == (N, 24000, 1001)
    assert a.fg.path == nd.NODE_PATH


def test_nodes_match_the_file_path(pair: SamplePair) -> None:
    """The same files opened as nodes: the same map and placement."""
    con, _ = quiet_console()
    a = align(pair.bg, pair.fg, method="visual", console=con, cache=False)
    b = align(open_video(pair.bg), open_video(pair.fg), console=con, cache=False)
    assert b.temporal.frame_map == a.temporal.frame_map
    assert abs(b.spatial.x - a.spatial.x) < 0.05 and abs(b.spatial.y - a.spatial.y) < 0.05
    assert (b.bg.width, b.bg.frames, b.fg.fps_num) == (a.bg.width, a.bg.frames, a.fg.fps_num)


def test_audio_nodes_give_the_audio_line(pair: SamplePair) -> None:
    con, _ = quiet_console()
    bg, fg = open_video(pair.bg), open_video(pair.fg)
    a = align(bg, fg, bg_audio=open_audio(pair.bg), fg_audio=open_audio(pair.fg), method="audio", console=con)
    assert a.temporal.method == "audio"
    assert a.temporal.offset_s == pytest.approx(pair.offset_s, abs=0.005)
    with pytest.raises(VidkompyError, match="fg_audio="):
        align(bg, fg, bg_audio=open_audio(pair.bg), method="audio", console=con)


def test_node_audio_resamples_in_blocks_like_one_resample(tmp_path) -> None:
    from scipy.io import wavfile
    from scipy.signal import resample_poly

    rng = np.random.default_rng(5)
    x = (rng.standard_normal((200_003, 2)) * 6000).astype(np.int16)  # several blocks, and a ragged end
    wavfile.write(tmp_path / "a.wav", 44100, x)
    got = nd.node_audio(core.bs.AudioSource(str(tmp_path / "a.wav")), 8000)
    ref = resample_poly(x.astype(np.float32).mean(axis=1), 80, 441)
    assert len(got) == len(ref) and np.abs(got - ref).max() < 1e-3


def test_result_cache_keys_on_content(pair: SamplePair) -> None:
    bg, src = open_video(pair.bg), _fg_source(pair)
    con, buf = quiet_console()
    a = align(bg, _crop(src[START:START + N]), console=con)
    b = align(bg, _crop(src[START:START + N]), console=con)  # another node, the same frames
    assert "from the cache" in buf.getvalue() and b.to_dict() == a.to_dict()
    # a trim one frame later, and a decimation pattern changed in one place of each five:
    # other content, another result
    con, buf = quiet_console()
    c = align(bg, _crop(src[START + 1:START + N + 1]), console=con)
    assert "from the cache" not in buf.getvalue() and c.temporal.frame_map == list(range(START + 1, START + N + 1))
    sel = [core.std.SelectEvery(_crop(src[START:START + 125]), 5, p) for p in ([0, 1, 2, 4], [0, 1, 3, 4])]
    assert nd.content_key(sel[0]) != nd.content_key(sel[1])


def test_composite_without_alignment_aligns_the_nodes(pair: SamplePair) -> None:
    from vidkompy_vs.filters import composite

    bg = open_video(pair.bg)
    fg = _crop(_fg_source(pair)[START:START + N])
    out = composite(bg, fg)
    assert (out.num_frames, out.width, out.height) == (N, bg.width, bg.height)
    # FG laid on BG frame START + i at its own place: the composite is BG's frame there
    i = 50
    got, want = np.asarray(out.get_frame(i)[0]), np.asarray(bg.get_frame(START + i)[0])
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 2


def test_bad_nodes_are_one_line_errors(pair: SamplePair) -> None:
    bg = open_video(pair.bg)
    fg = _crop(bg[START:START + N])
    con, _ = quiet_console()
    blank = core.std.BlankClip(width=64, height=36, length=10, format=vs.YUV420P8)
    cases = [
        (open_audio(pair.bg), fg, "AudioNode"),
        (bg, fg[0], "1 frame"),
        (bg, core.std.Splice([blank, blank.resize.Point(format=vs.YUV444P8)], mismatch=True), "format varies"),
        (bg, core.std.Splice([blank, blank.std.AddBorders(right=8)], mismatch=True), "size varies"),
        (bg, core.std.Splice([fg, core.std.AssumeFPS(fg, fpsnum=30)], mismatch=True), "variable frame rate"),
        (bg, 42, "expected a file path or a vapoursynth.VideoNode"),
        (fg, bg, "larger than BG"),
    ]
    def fail_at_40(n: int) -> vs.VideoNode:
        if n == 40:
            raise ValueError("no frame 40 here")
        return fg

    cases.append((bg, core.std.FrameEval(fg, fail_at_40), "FG: the node failed to make a frame.*no frame 40 here"))
    for b, f, msg in cases:
        with pytest.raises(VidkompyError, match=msg) as e:
            # (uncached: frame 40 is not one the content key reads, and the same frames
            # but that one were aligned and kept by another test)
            align(b, f, console=con, cache=False)
        assert "\n" not in str(e.value)


def test_rgb_and_high_bit_depth_nodes_align(pair: SamplePair) -> None:
    bg = open_video(pair.bg)
    fg = _crop(_fg_source(pair)[START:START + N])
    con, _ = quiet_console()
    a = align(core.resize.Bicubic(bg, format=vs.YUV420P10), core.resize.Bicubic(fg, format=vs.RGB24, matrix_in_s="709"),
              console=con, cache=False)
    assert a.temporal.frame_map == list(range(START, START + N))
    assert abs(a.spatial.x - X) < 0.3 and abs(a.spatial.y - Y) < 0.3


def test_bars_and_reordered_shots_in_nodes(pair: SamplePair) -> None:
    """The stages that read a part of a node (FG's picture area inside bars; BG's shots
    matched one by one) read the right part."""
    bg, src = open_video(pair.bg), _fg_source(pair)
    fg = _crop(src[START:START + N])
    # bars baked in: FG's top and bottom 24 rows black
    boxed = core.std.Crop(fg, top=24, bottom=24).std.AddBorders(top=24, bottom=24, color=[16, 128, 128])
    con, _ = quiet_console()
    a = align(bg, boxed, console=con, cache=False)
    x, y, w, h = a.spatial.active
    assert (x, w) == (0, W) and 24 <= y <= 28 and H - 28 <= y + h <= H - 24
    assert abs(a.spatial.x - X) < 0.1 and abs(a.spatial.y - Y) < 0.1
    assert a.temporal.frame_map == list(range(START, START + N))
    # BG's second half first: FG (BG's frames 25..199) jumps once, at the cut
    b = align(bg[100:200] + bg[0:100], _crop(src[25:200]), console=con, cache=False, method="visual")
    assert b.temporal.frame_map == [k + 100 if k < 100 else k - 100 for k in range(25, 200)]
    assert b.jumps() == 1


VPY = """
import dataclasses
import vapoursynth as vs
from vidkompy_vs import filters, sources
from vidkompy_vs.align import align, load_preset

core = vs.core
bg, src = sources.open_video({bg!r}), sources.open_video({bg!r})
fg = core.std.CropAbs(src[{start}:{end}], width={w}, height={h}, left={x}, top={y})
# the coarse search too (its worker threads), not only the anchored one
s = load_preset("default")
s = dataclasses.replace(s, spatial=dataclasses.replace(s.spatial, anchors=False))
al = align(bg, fg, preset=s)
assert al.temporal.frame_map == list(range({start}, {end})), al.temporal.frame_map[:5]
assert abs(al.spatial.x - {x}) < 0.1 and abs(al.spatial.y - {y}) < 0.1, (al.spatial.x, al.spatial.y)
filters.composite(bg, fg).set_output()
"""


def test_align_and_composite_inside_vspipe(pair: SamplePair, tmp_path) -> None:
    """vspipe gives the script an environment of its own: threads that read frames must
    select it (every call fails in one that has not)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "nodes.vpy"
    script.write_text(VPY.format(bg=str(pair.bg), start=START, end=START + N, w=W, h=H, x=X, y=Y))
    vspipe = Path(sys.executable).with_name("vspipe")
    env = dict(os.environ, PATH=f"{vspipe.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    r = subprocess.run([str(vspipe), "-s", "0", "-e", "1", "-c", "y4m", str(script), "-"], capture_output=True,
                       env=env, timeout=600)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
    assert r.stdout.startswith(b"YUV4MPEG2")
