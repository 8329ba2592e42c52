"""End to end through the command line: real renders, real decodes, and every bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import decode_audio, decode_gray, decode_rgb, ffmpeg, psnr, xcorr_lag

from vidkompy_vs.alignment import Alignment
from vidkompy_vs.sources import probe

VENV_BIN = Path(sys.executable).parent


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vidkompy_vs", "-q", *map(str, args)], capture_output=True, text=True)


def true_alignment(pair, path: Path) -> Path:
    bg, fg = probe(pair.bg), probe(pair.fg)
    al = Alignment.simple(bg, fg, x=pair.x, y=pair.y)
    al.temporal.frame_map = [min(bg.frames - 1, i + round(pair.offset_s * pair.fps)) for i in range(fg.frames)]
    al.temporal.offset_s = pair.offset_s
    al.save(path)
    return path


@pytest.fixture(scope="module")
def rendered(pair, tmp_path_factory):
    d = tmp_path_factory.mktemp("comp")
    align = true_alignment(pair, d / "true.json")
    out = d / "out.mp4"
    r = run("comp", pair.bg, pair.fg, "-o", out, "--align", align)
    assert r.returncode == 0, r.stderr
    return out, r


def test_comp_output_is_fg_timed(pair, rendered):
    out, _ = rendered
    o, f = probe(out), probe(pair.fg)
    assert (o.width, o.height) == (640, 360)
    assert (o.frames, o.fps_num, o.fps_den) == (f.frames, f.fps_num, f.fps_den)
    with av.open(str(out)) as c:
        assert c.streams.audio, "FG's audio is missing"
        a = c.streams.audio[0]
        assert abs(float(a.duration * a.time_base) - f.duration) < 0.05


def test_comp_fg_region_matches_ffmpeg_yuv444_overlay(pair, rendered, tmp_path):
    """Same alignment, same encoder settings: our FG region is as good as ffmpeg's exact
    (format=yuv444) overlay, and far better than its default 4:2:0 one, which rounds the
    odd offset down to even."""
    out, _ = rendered
    f = decode_rgb(pair.fg, 320, 180)
    fy = decode_gray(pair.fg, 320, 180)
    region = (slice(None), slice(pair.y, pair.y + 180), slice(pair.x, pair.x + 320))
    ours = decode_rgb(out, 640, 360)
    assert len(ours) == len(f)

    def ff(fmt: str) -> Path:
        ref = tmp_path / f"ff-{fmt}.mp4"
        ffmpeg("-i", str(pair.bg), "-i", str(pair.fg), "-filter_complex",
               f"[0:v]trim=start_frame=25,setpts=PTS-STARTPTS[b];"
               f"[b][1:v]overlay={pair.x}:{pair.y}:format={fmt}:shortest=1,format=yuv420p",
               "-an", "-c:v", "libx264", "-crf", "18", "-preset", "medium", str(ref))
        return ref

    exact, rounded = ff("yuv444"), ff("yuv420")
    p_ours = psnr(ours[region], f)
    p_exact = psnr(decode_rgb(exact, 640, 360)[region], f)
    p_rounded = psnr(decode_rgb(rounded, 640, 360)[region], f)
    assert p_ours >= p_exact - 1.0, (p_ours, p_exact)
    assert p_ours > p_rounded + 1.0, (p_ours, p_rounded)
    assert psnr(decode_gray(out, 640, 360)[region], fy) >= 38  # luma: only the encoder's loss
    # FG was cut from BG 25 frames later, so the whole output is BG shifted in time
    b = decode_rgb(pair.bg, 640, 360)
    assert psnr(ours, b[25:25 + len(ours)]) >= 28


def test_comp_lossless_fg_untouched(pair_lossless, tmp_path):
    """On a lossless path FG's luma comes out bit-identical at the odd offset."""
    align = true_alignment(pair_lossless, tmp_path / "true.json")
    out = tmp_path / "out.mkv"
    r = run("comp", pair_lossless.bg, pair_lossless.fg, "-o", out, "--align", align, "--codec", "ffv1",
            "--crf", "-1", "--preset", "", "--audio", "none")
    assert r.returncode == 0, r.stderr
    from vidkompy_vs.sources import open_video
    o, f = open_video(out), open_video(pair_lossless.fg)
    assert o.num_frames == f.num_frames
    for n in (0, 100, f.num_frames - 1):
        y, x = pair_lossless.y, pair_lossless.x
        got = np.asarray(o.get_frame(n)[0])[y:y + 180, x:x + 320]
        assert np.array_equal(got, np.asarray(f.get_frame(n)[0]))


def test_comp_bars_and_uncovered(pair_lossless, tmp_path):
    """FG's bars (spatial.active) show BG; --keep-bars lays them; --uncovered black fills BG's gaps."""
    from vidkompy_vs.sources import open_video

    align = true_alignment(pair_lossless, tmp_path / "true.json")
    al = Alignment.load(align)
    al.spatial.active = [0, 20, 320, 140]
    al.temporal.uncovered = [0, 1, 2]
    al.save(align)
    x, y = pair_lossless.x, pair_lossless.y
    b, f = open_video(pair_lossless.bg), open_video(pair_lossless.fg)
    for extra in ([], ["--keep-bars"]):
        out = tmp_path / f"out{len(extra)}.mkv"
        r = run("comp", pair_lossless.bg, pair_lossless.fg, "-o", out, "--align", align, "--codec", "ffv1",
                "--crf", "-1", "--preset", "", "--audio", "none", "--uncovered", "black", *extra)
        assert r.returncode == 0, r.stderr
        o = open_video(out)
        got = np.asarray(o.get_frame(50)[0])
        bar = got[y:y + 20, x:x + 320]
        want = np.asarray((f if extra else b).get_frame(50 if extra else al.temporal.frame_map[50])[0])
        assert np.array_equal(bar, want[:20] if extra else want[y:y + 20, x:x + 320])
        assert np.array_equal(got[y + 20:y + 160, x:x + 320], np.asarray(f.get_frame(50)[0])[20:160])
        assert (np.asarray(o.get_frame(1)[0])[:y] == 16).all()  # an uncovered frame: black BG


def test_script_passes_bars_and_uncovered(pair, tmp_path):
    align = true_alignment(pair, tmp_path / "true.json")
    vpy = tmp_path / "comp.vpy"
    r = run("script", pair.bg, pair.fg, "-o", vpy, "--align", align, "--keep-bars", "--uncovered", "blur")
    assert r.returncode == 0, r.stderr
    assert "keep_bars=True" in vpy.read_text() and "uncovered='blur'" in vpy.read_text()
    info = subprocess.run([str(VENV_BIN / "vspipe"), "--info", str(vpy)], capture_output=True, text=True)
    assert info.returncode == 0, info.stderr


def test_comp_audio_is_fg_in_sync(pair, rendered):
    out, _ = rendered
    a, b = decode_audio(pair.fg), decode_audio(out)
    lag = xcorr_lag(a, b)
    assert abs(lag) <= 8  # 1 ms at 8 kHz
    assert np.corrcoef(a[:len(b)][:40000], b[:40000])[0, 1] > 0.9


def test_comp_bg_audio_retimed(pair, tmp_path):
    """FG without sound: BG's sound, cut at the offset, is laid under FG's time."""
    silent = tmp_path / "fg_silent.mp4"
    ffmpeg("-i", str(pair.fg), "-an", "-c", "copy", str(silent))
    align = tmp_path / "a.json"
    bg, fg = probe(pair.bg), probe(silent)
    al = Alignment.simple(bg, fg, x=pair.x, y=pair.y)
    al.temporal.frame_map = [i + 25 for i in range(fg.frames)]
    al.temporal.offset_s = 1.0
    al.save(align)
    out = tmp_path / "out.mkv"
    r = run("comp", pair.bg, silent, "-o", out, "--align", align, "--preset", "ultrafast")
    assert r.returncode == 0, r.stderr
    a, o = decode_audio(pair.fg), decode_audio(out)
    assert abs(xcorr_lag(a, o)) <= 8


def test_script_runs_in_vspipe(pair, tmp_path):
    align = true_alignment(pair, tmp_path / "true.json")
    vpy = tmp_path / "comp.vpy"
    r = run("script", pair.bg, pair.fg, "-o", vpy, "--align", align)
    assert r.returncode == 0, r.stderr
    vspipe = VENV_BIN / "vspipe"
    info = subprocess.run([str(vspipe), "--info", str(vpy)], capture_output=True, text=True)
    assert info.returncode == 0, info.stderr
    assert "Frames: 175" in info.stdout
    y4m = subprocess.run([str(vspipe), "-c", "y4m", str(vpy), "-"], capture_output=True)
    assert y4m.returncode == 0
    assert y4m.stdout.count(b"FRAME") == 175
    wav = subprocess.run([str(vspipe), "-o", "1", "-c", "wav", str(vpy), "-"], capture_output=True)
    assert wav.returncode == 0 and len(wav.stdout) > 7 * 48000 * 4


# -- bad input: one line, non-zero exit, no output ----------------------------------
def _bad(args, out: Path, needle: str):
    r = run(*args)
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert needle in r.stderr, r.stderr
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.stem}*")), "a temporary file was left behind"


def test_bad_inputs(pair, tmp_path):
    out = tmp_path / "out.mp4"
    _bad(["comp", tmp_path / "nope.mp4", pair.fg, "-o", out], out, "no such file")
    txt = tmp_path / "text.mp4"
    txt.write_text("not a video")
    _bad(["comp", txt, pair.fg, "-o", out], out, "not a media file")
    wav = tmp_path / "tone.wav"
    ffmpeg("-f", "lavfi", "-i", "sine=d=1", str(wav))
    _bad(["comp", pair.bg, wav, "-o", out], out, "no video stream")
    # FG larger than BG (inputs swapped) without --scale
    _bad(["comp", pair.fg, pair.bg, "-o", out, "--x", "0", "--y", "0"], out, "larger than BG")
    # an alignment made for other inputs
    other = tmp_path / "other.json"
    al = Alignment.simple(probe(pair.bg), probe(pair.bg))
    al.save(other)
    _bad(["comp", pair.bg, pair.fg, "-o", out, "--align", other], out, "does not fit the inputs")
    # output = an input, refused before anything is touched
    size = pair.fg.stat().st_size
    r = run("comp", pair.bg, pair.fg, "-o", pair.fg, "-y")
    assert r.returncode != 0 and "overwrite an input" in r.stderr and pair.fg.stat().st_size == size
    # an existing output is kept unless -y
    out.write_bytes(b"keep")
    r = run("align", pair.bg, pair.fg, "-o", out)
    assert r.returncode != 0 and "already exists" in r.stderr and out.read_bytes() == b"keep"


def test_failed_encode_leaves_nothing(pair, tmp_path):
    align = true_alignment(pair, tmp_path / "true.json")
    out = tmp_path / "out.mp4"
    _bad(["comp", pair.bg, pair.fg, "-o", out, "--align", align, "--codec", "no-such-encoder"], out, "ffmpeg failed")


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_ctrl_c_leaves_nothing(pair, tmp_path, sig):
    """Ctrl-C, and ``kill`` (a batch system's timeout, a closed terminal: SIGTERM left the
    part file behind before), stop a render with nothing written."""
    import signal
    import time

    align = true_alignment(pair, tmp_path / "true.json")
    out = tmp_path / "out.mp4"
    p = subprocess.Popen([sys.executable, "-m", "vidkompy_vs", "-q", "comp", str(pair.bg), str(pair.fg), "-o",
                          str(out), "--align", str(align), "--preset", "veryslow"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # wait until the render has begun (its temporary file exists), then interrupt
    deadline = time.time() + 30
    while time.time() < deadline and not list(tmp_path.glob(".out.part-*")):
        time.sleep(0.05)
    assert list(tmp_path.glob(".out.part-*")), "render did not start"
    p.send_signal(getattr(signal, sig))
    _, err = p.communicate(timeout=30)
    assert p.returncode == 130, err
    assert "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_outputs_never_replace_what_is_read(pair, tmp_path):
    """Every command refuses, before any work, an output that is one of the files it reads
    (an alignment's own videos, ``--align``'s file, script's alignment beside it), that is
    not a regular file, or that the system cannot write; all of these were replaced, with
    exit 0, before."""
    import dataclasses
    import shutil

    # (copies: a regression would destroy the clips the other tests share, as it did)
    (tmp_path / "in").mkdir()
    pair = dataclasses.replace(pair, bg=Path(shutil.copy(pair.bg, tmp_path / "in")),
                               fg=Path(shutil.copy(pair.fg, tmp_path / "in")))
    align = true_alignment(pair, tmp_path / "true.json")
    md5 = {p: p.read_bytes() for p in (pair.bg, pair.fg, align)}
    vpy = tmp_path / "s.vpy"
    _bad(["report", align, "-o", pair.bg, "-y"], pair.bg.with_name("x"), "overwrite an input")
    _bad(["script", pair.bg, pair.fg, "-o", align, "-y", "--align", align], tmp_path / "x", "overwrite an input")
    beside = tmp_path / "s.align.json"
    beside.write_text("keep")
    _bad(["script", pair.bg, pair.fg, "-o", vpy], vpy, "s.align.json: already exists")
    assert beside.read_text() == "keep"
    named = tmp_path / "z.align.json"  # a BG whose name is the one script gives its alignment
    named.write_bytes(pair.bg.read_bytes())
    _bad(["script", named, pair.fg, "-o", tmp_path / "z.vpy", "-y"], tmp_path / "z.vpy", "overwrite an input")
    assert named.read_bytes() == pair.bg.read_bytes()
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "fifo.json"
        os.mkfifo(fifo)
        r = run("export", align, "-o", fifo, "--to", "csv", "-y")
        assert r.returncode == 2 and "not a regular file" in r.stderr and fifo.is_fifo(), r.stderr
    _bad(["align", pair.bg, pair.fg, "-o", f"{tmp_path / 'newdir'}{os.sep}"], tmp_path / "newdir", "names a folder")
    _bad(["align", pair.bg, pair.fg, "-o", tmp_path / ("a" * 300 + ".json")], tmp_path / "a", "file name too long")
    if os.name == "posix" and os.geteuid() != 0:  # (root writes anywhere)
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        _bad(["align", pair.bg, pair.fg, "-o", ro / "a.json"], ro / "a.json", "cannot write there")
    # a preset file is read too; a symlink loop as output is refused without -y (it was
    # an internal error)
    preset = tmp_path / "p.json"
    preset.write_text('{"temporal": {"tie": 0.5}}')
    r = run("align", pair.bg, pair.fg, "-o", preset, "-y", "--preset", preset)
    assert r.returncode == 2 and "overwrite an input" in r.stderr and "tie" in preset.read_text(), r.stderr
    (tmp_path / "la.json").symlink_to(tmp_path / "lb.json")
    (tmp_path / "lb.json").symlink_to(tmp_path / "la.json")
    _bad(["align", pair.bg, pair.fg, "-o", tmp_path / "la.json"], tmp_path / "nothing", "already exists")
    # a JSON file nested past Python's recursion limit (it was an internal error)
    deep = tmp_path / "deep.json"
    deep.write_text('{"schema": ' + "[" * 100_000 + "]" * 100_000 + "}")
    _bad(["comp", pair.bg, pair.fg, "-o", tmp_path / "o.mp4", "--align", deep], tmp_path / "o.mp4", "not a JSON")
    _bad(["align", pair.bg, pair.fg, "-o", tmp_path / "o.json", "--preset", deep], tmp_path / "o.json",
         "not a readable JSON preset")
    assert all(p.read_bytes() == b for p, b in md5.items())
    # a legal name as long as the system allows: its temporary name must fit as well
    long = tmp_path / ("b" * 250 + ".mp4")
    r = run("comp", pair.bg, pair.fg, "-o", long, "--align", align, "--preset", "ultrafast")
    assert r.returncode == 0 and long.stat().st_size > 0, r.stderr


def test_bad_render_values_and_rgb_inputs(pair, tmp_path):
    """Values that rendered garbage or hung, refused in one line; an RGB FG (a GIF, a
    screen capture) aligns and renders (it failed inside the frame server before)."""
    align = true_alignment(pair, tmp_path / "true.json")
    out = tmp_path / "out.mp4"
    _bad_timed(["comp", pair.bg, pair.fg, "-o", out, "--align", align, "--feather", "nan"], out, "--feather")
    _bad_timed(["comp", pair.bg, pair.fg, "-o", out, "--align", align, "--crf", "1000"], out, "--crf")
    _bad_timed(["script", pair.bg, pair.fg, "-o", tmp_path / "s.vpy", "--align", align, "--feather", "-1"],
               tmp_path / "s.vpy", "--feather")
    # FG at 1/50 on FG's canvas: BG scaled 50x (it ran out of memory with ffmpeg waiting)
    _bad_timed(["comp", pair.bg, pair.fg, "-o", out, "--canvas", "fg", "--x", "0", "--y", "0", "--scale", "0.02",
                "--method", "visual"], out, "canvas='fg' would be 32000x18000")
    rgb = tmp_path / "fg_rgb.mkv"
    ffmpeg("-i", str(pair.fg), "-c:v", "libx264rgb", "-preset", "ultrafast", "-qp", "0", "-an", str(rgb))
    r = run("align", pair.bg, rgb, "-o", tmp_path / "rgb.json", "--method", "visual")
    assert r.returncode == 0, r.stderr
    got = Alignment.load(tmp_path / "rgb.json").spatial
    assert abs(got.x - pair.x) < 0.1 and abs(got.y - pair.y) < 0.1, got
    r = run("comp", pair.bg, rgb, "-o", out, "--align", tmp_path / "rgb.json", "--preset", "ultrafast")
    assert r.returncode == 0 and probe(out).frames == probe(rgb).frames, r.stderr


def test_render_error_mid_stream_ends(pair, tmp_path):
    """A frame the server cannot make, half way: ffmpeg's input is closed and the error
    reported; it waited on ffmpeg, and ffmpeg on more input, for ever."""
    import threading

    import vapoursynth as vs

    from vidkompy_vs.errors import VidkompyError
    from vidkompy_vs.render import render
    from vidkompy_vs.sources import open_video

    clip = open_video(pair.fg)

    def frame(n, f):
        if n == 10:
            raise RuntimeError("no frame 10")
        return f

    bad = vs.core.std.ModifyFrame(clip, clip, frame)
    got: list[BaseException] = []

    def go():
        try:
            render(bad, tmp_path / "out.mp4", progress=False, preset="ultrafast")
        except BaseException as e:  # noqa: BLE001
            got.append(e)

    t = threading.Thread(target=go, daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "render hung"
    assert got and isinstance(got[0], VidkompyError), got
    assert not list(tmp_path.glob("*out*"))


def test_script_comments_hold_no_code(pair, tmp_path):
    """A file name with a line break: the .vpy's comment lines stay comments (the name
    ended the comment and ran as code before); the paths themselves are literals."""
    from vidkompy_vs.script import write_script

    odd = tmp_path / "fg\nimport os; os.remove('x')\n.mp4"
    odd.write_bytes(pair.fg.read_bytes())
    align = true_alignment(pair, tmp_path / "true.json")
    vpy = write_script(tmp_path / "s.vpy", pair.bg, odd, align)
    text = vpy.read_text()
    compile(text, str(vpy), "exec")
    assert not [ln for ln in text.splitlines() if ln.startswith("import os")]
    assert repr(str(odd.resolve())) in text


def _bad_timed(args, out: Path, needle: str, limit: float = 60):
    """Like _bad, and it must not hang: one line within ``limit`` seconds."""
    import time

    t0 = time.perf_counter()
    try:
        r = subprocess.run([sys.executable, "-m", "vidkompy_vs", "-q", *map(str, args)], capture_output=True,
                           text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        pytest.fail(f"hung: {args}")
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr and needle in r.stderr, r.stderr
    assert not out.exists() and not list(out.parent.glob(f".{out.stem}*"))
    return time.perf_counter() - t0


def test_absurd_alignment_values_fail_fast(pair, tmp_path):
    """`"scale": 1e-9` in a file once made comp hang: every placement is range-checked,
    from the file and from the command line."""
    good = true_alignment(pair, tmp_path / "true.json")
    d = json.loads(good.read_text())
    out = tmp_path / "out.mp4"
    for key, value, needle in (("scale", 1e-9, "spatial.scale = 1e-09 makes FG 3.2e-07x1.8e-07 px"),
                               ("scale", 1e4, "at most 16x BG"), ("x", 1e12, "spatial.x = 1e+12 is out of range")):
        bad = tmp_path / f"bad-{key}.json"
        bad.write_text(json.dumps({**d, "spatial": {**d["spatial"], key: value}}))
        _bad_timed(["comp", pair.bg, pair.fg, "-o", out, "--align", bad], out, needle)
    bad = tmp_path / "bad-rate.json"
    bad.write_text(json.dumps({**d, "temporal": {**d["temporal"], "rate": 1e-9}}))
    _bad_timed(["comp", pair.bg, pair.fg, "-o", out, "--align", bad, "--audio", "bg"], out, "temporal.rate")
    _bad_timed(["comp", pair.bg, pair.fg, "-o", out, "--align", good, "--scale", "1e-9"], out, "--scale = 1e-09 makes")
    _bad_timed(["comp", pair.bg, pair.fg, "-o", out, "--align", good, "--x", "1e12"], out, "--x = 1e+12 is out of")
    _bad_timed(["align", pair.bg, pair.fg, "-o", tmp_path / "a.json", "--scale", "1e-9"], tmp_path / "a.json",
               "--scale = 1e-09 makes")


@pytest.mark.parametrize("kind", ["png", "one-frame"])
def test_still_image_input(pair, tmp_path, kind):
    """A picture or a one-frame clip as BG or FG: one line, exit 2 (it ended in an internal
    error, or hung, before)."""
    img = tmp_path / ("still.png" if kind == "png" else "one.mp4")
    ffmpeg("-i", str(pair.bg), "-frames:v", "1", "-an", str(img))
    needle = "is a still image, not a video" if kind == "png" else "is a single frame, not a video"
    out = tmp_path / "out.mp4"
    _bad_timed(["comp", img, pair.fg, "-o", out], out, needle)
    _bad_timed(["comp", pair.bg, img, "-o", out], out, needle)
    _bad_timed(["align", img, pair.fg, "-o", tmp_path / "a.json"], tmp_path / "a.json", needle)


def test_quiet_after_the_subcommand(pair, tmp_path):
    from vidkompy_vs.cli import _parser

    p = _parser()
    base = ["comp", "b.mp4", "f.mp4", "-o", "o.mp4"]
    assert p.parse_args(["-q", *base]).quiet and p.parse_args([*base[:1], "-q", *base[1:]]).quiet
    assert p.parse_args([*base, "--quiet"]).quiet and not p.parse_args(base).quiet
    assert p.parse_args([*base, "--debug"]).debug and p.parse_args(["--debug", *base]).debug
    align = true_alignment(pair, tmp_path / "true.json")
    seen = {}
    for name, args in (("loud", ["comp"]), ("quiet", ["comp", "-q"])):
        out = tmp_path / f"{name}.mkv"
        r = subprocess.run([sys.executable, "-m", "vidkompy_vs", *args, str(pair.bg), str(pair.fg), "-o", str(out),
                            "--align", str(align), "--preset", "ultrafast", "--audio", "none"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        seen[name] = "rendering" in r.stderr
    assert seen == {"loud": True, "quiet": False}


def test_ffmpeg_the_user_names_is_the_one_that_runs(pair, tmp_path):
    """``--ffmpeg PATH`` (before or after the command) and ``VIDKOMPY_VS_FFMPEG`` pick the
    binary the render runs; a missing one is one line before any work."""
    from vidkompy_vs.cli import _parser
    from vidkompy_vs.ffpipe import FFMPEG_ENV, ffmpeg_binary

    base = ["comp", "b.mp4", "f.mp4", "-o", "o.mp4"]
    assert _parser().parse_args(["--ffmpeg", "x", *base]).ffmpeg == "x"
    assert _parser().parse_args([*base, "--ffmpeg", "x"]).ffmpeg == "x"
    log = tmp_path / "calls.log"
    wrapper = tmp_path / "my ffmpeg"
    wrapper.write_text(f'#!/bin/sh\necho called >> "{log}"\nexec "{ffmpeg_binary()}" "$@"\n')
    wrapper.chmod(0o755)
    align = true_alignment(pair, tmp_path / "true.json")
    common = ["--align", str(align), "--preset", "ultrafast", "-q"]
    out = tmp_path / "flag.mp4"
    r = run("comp", pair.bg, pair.fg, "-o", out, *common, "--ffmpeg", wrapper)
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > 0 and log.read_text().count("called") == 1
    out = tmp_path / "env.mp4"
    env = {**os.environ, FFMPEG_ENV: str(wrapper)}
    r = subprocess.run([sys.executable, "-m", "vidkompy_vs", "comp", str(pair.bg), str(pair.fg), "-o", str(out),
                        *common], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > 0 and log.read_text().count("called") == 2
    out = tmp_path / "missing.mp4"
    _bad(["comp", pair.bg, pair.fg, "-o", out, *common, "--ffmpeg", tmp_path / "nope"], out,
         "no such executable")
