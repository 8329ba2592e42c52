"""align() end to end on small ffmpeg-made clips with known truth.

The source is lavfi's Game of Life blended with testsrc2 (moving, textured, every frame
distinct) plus band-limited noise audio; FG clips are crops/cuts/retimes of it made with
frame-exact filters (trim by frame, atrim by sample), so the BG frame under every FG
frame is known. Clips are cached in pytest's cache folder between runs.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import FFMPEG, quiet_console

from vidkompy_vs.align import align, load_preset
from vidkompy_vs.errors import VidkompyError

VERSION = 1
SRC = ("life=s=320x240:mold=10:r=25:ratio=0.15:seed=7:death_color=#3050a0:life_color=#f0e040,format=yuv420p[l];"
       "testsrc2=s=320x240:r=25[t];[l][t]blend=all_mode=average,format=yuv420p")
AUD = "anoisesrc=c=pink:r=16000:a=0.4:seed=3,volume='0.2+0.8*gt(sin(7*t)+sin(2.3*t),0)':eval=frame"


def _ff(*args: str) -> None:
    subprocess.run([FFMPEG, "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="session")
def clips(request: pytest.FixtureRequest) -> dict[str, Path]:
    d = Path(request.config.cache.mkdir(f"vidkompy-align-clips-v{VERSION}"))
    out = {k: d / f"{k}.mp4" for k in ("bg", "fg_off", "fg50", "bg_long", "fg_mid", "other", "silent_fg")}
    if all(p.exists() for p in out.values()):
        return out
    enc = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "16", "-g", "50"]
    aac = ["-c:a", "aac", "-b:a", "96k"]
    # BG: 8 s with audio; 'bg_long': 24 s
    _ff("-f", "lavfi", "-i", SRC, "-f", "lavfi", "-i", AUD, "-t", "24", *enc, *aac, str(out["bg_long"]))
    _ff("-i", str(out["bg_long"]), "-vf", "trim=start_frame=0:end_frame=200,setpts=PTS-STARTPTS",
        "-af", "atrim=start_sample=0:end_sample=128000,asetpts=PTS-STARTPTS", *enc, *aac, str(out["bg"]))
    # FG: crop 160x120 at (60, 40), from BG frame 30 (1.2 s), 100 frames, audio cut to match
    crop = "crop=160:120:60:40"
    _ff("-i", str(out["bg"]), "-vf", f"trim=start_frame=30:end_frame=130,setpts=PTS-STARTPTS,{crop}",
        "-af", "atrim=start_sample=19200:end_sample=35200,asetpts=PTS-STARTPTS", *enc, *aac, str(out["fg_off"]))
    # FG at 50 fps: every BG frame twice, from BG frame 20
    _ff("-i", str(out["bg"]), "-vf", f"trim=start_frame=20:end_frame=120,setpts=PTS-STARTPTS,{crop},fps=50",
        "-an", *enc, str(out["fg50"]))
    # FG from the middle of the long BG: frames 300..399
    _ff("-i", str(out["bg_long"]), "-vf", f"trim=start_frame=300:end_frame=400,setpts=PTS-STARTPTS,{crop}",
        "-af", "atrim=start_sample=192000:end_sample=256000,asetpts=PTS-STARTPTS", *enc, *aac,
        str(out["fg_mid"]))
    # unrelated: a different picture source and different noise
    _ff("-f", "lavfi", "-i", "mandelbrot=s=160x120:r=25", "-f", "lavfi", "-i",
        "anoisesrc=c=white:r=16000:a=0.3:seed=11", "-t", "3", *enc, *aac, str(out["other"]))
    # no audio at all
    _ff("-i", str(out["fg_off"]), "-an", "-c:v", "copy", str(out["silent_fg"]))
    return out


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDKOMPY_VS_CACHE", str(tmp_path_factory.getbasetemp() / "vkcache"))


def test_offset_with_crop_visual(clips: dict[str, Path]) -> None:
    con, _ = quiet_console()
    a = align(clips["bg"], clips["silent_fg"], console=con)
    assert a.temporal.frame_map == list(range(30, 130))
    assert a.temporal.method == "visual"
    assert a.temporal.offset_s == pytest.approx(1.2, abs=0.02)
    assert (round(a.spatial.x), round(a.spatial.y)) == (60, 40)
    assert a.temporal.uncovered == []


def test_fps_change_50_vs_25(clips: dict[str, Path]) -> None:
    con, _ = quiet_console()
    a = align(clips["bg"], clips["fg50"], console=con)
    want = (20 + np.arange(200) // 2).tolist()
    assert a.temporal.frame_map == want
    assert a.temporal.rate == pytest.approx(1.0, abs=0.01)


def test_bg_longer(clips: dict[str, Path]) -> None:
    con, _ = quiet_console()
    a = align(clips["bg_long"], clips["fg_mid"], method="visual", console=con)
    assert a.temporal.frame_map == list(range(300, 400))


def test_audio_offset(clips: dict[str, Path]) -> None:
    con, _ = quiet_console()
    a = align(clips["bg"], clips["fg_off"], method="audio", console=con)
    assert a.temporal.method == "audio"
    assert a.temporal.offset_s == pytest.approx(1.2, abs=0.005)
    assert a.temporal.frame_map == list(range(30, 130))
    # auto uses audio as the prior and still checks every frame visually
    b = align(clips["bg"], clips["fg_off"], console=con)
    assert b.temporal.method == "audio+visual"
    assert b.temporal.frame_map == list(range(30, 130))


def test_unrelated_inputs_warn_and_fall_back(clips: dict[str, Path]) -> None:
    con, buf = quiet_console()
    a = align(clips["bg"], clips["other"], console=con)
    assert "warning" in buf.getvalue().lower()
    assert a.temporal.method == "start"
    assert a.temporal.confidence < 0.35
    assert a.temporal.frame_map == list(range(75))
    # the fallback centres FG at scale 1, whatever the failed search proposed
    assert a.spatial.method == "center" and a.spatial.scale == 1.0
    assert a.spatial.x == (a.bg.width - a.fg.width) / 2 and a.spatial.y == (a.bg.height - a.fg.height) / 2


def test_method_audio_without_audio_is_an_error(clips: dict[str, Path]) -> None:
    con, _ = quiet_console()
    with pytest.raises(VidkompyError, match="audio"):
        align(clips["bg"], clips["silent_fg"], method="audio", console=con)


def test_fg_larger_than_bg_is_an_error(clips: dict[str, Path]) -> None:
    con, _ = quiet_console()
    with pytest.raises(VidkompyError, match="larger"):
        align(clips["fg_off"], clips["bg"], console=con)


def test_presets_load(tmp_path: Path) -> None:
    sizes = {}
    for name in ("fast", "default", "precise", "robust"):
        p = load_preset(name)
        assert p.description and p.temporal.coarse_cells > 0
        sizes[name] = p.fingerprint.size
    assert sizes == {"fast": (32, 18), "default": (64, 36), "precise": (96, 54), "robust": (32, 18)}
    custom = tmp_path / "mine.json"
    custom.write_text('{"temporal": {"tie": 0.02}}')
    mine = load_preset(str(custom))
    # a key not given takes its one default
    assert mine.temporal.tie == 0.02 and mine.audio.windows == 12 and mine.fingerprint.size == (64, 36)
    with pytest.raises(VidkompyError):
        load_preset("no-such-preset")
    for bad, what in (('{"temporal": {"bogus": 1}}', "bogus"), ('{"audio": {"rate": "fast"}}', "audio.rate"),
                      ('{"spatial": {"refine": 1}}', "spatial.refine"), ('{"fingerprint": {"size": [64]}}', "size"),
                      ('{"fingerprint": {"decoder": "gpu"}}', "decoder"), ('{"extra": {}}', "extra"),
                      ('{"audio": 3}', "audio must be an object"), ('[1]', "JSON object"),
                      # values the prepass would loop on for ever, divide by or allocate terabytes for
                      ('{"temporal": {"min_bin_frames": 0}}', "min_bin_frames must be a number from 1 to"),
                      ('{"temporal": {"level_factor": 1}}', "level_factor must be a whole number from 2 to 64"),
                      ('{"temporal": {"coarse_cells": 0}}', "coarse_cells"), ('{"temporal": {"chunk": 0}}', "chunk"),
                      ('{"temporal": {"tie": 1e308}}', "tie must"), ('{"temporal": {"band_bins": NaN}}', "band_bins"),
                      ('{"audio": {"rate": 0}}', "audio.rate"),
                      ('{"fingerprint": {"size": [100000, 100000]}}', r"whole numbers from 4 to 256")):
        custom.write_text(bad)
        with pytest.raises(VidkompyError, match=what):
            load_preset(str(custom))
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "fifo.json"
        os.mkfifo(fifo)
        with pytest.raises(VidkompyError, match="not a file"):  # not a read that blocks for ever
            load_preset(str(fifo))


def test_fingerprint_pass_grabs_exact_full_frames(clips: dict[str, Path]) -> None:
    """Full-size frames kept from the fingerprint pass equal the frame server's pictures,
    through the in-process decode and through the VapourSynth fallback alike."""
    from vidkompy_vs import fingerprint as fpm
    from vidkompy_vs.sources import frame_arrays, open_video, probe

    p = probe(clips["bg"])
    want = [0, 7, 49, 50, 51, 123, p.frames - 1]
    ref = frame_arrays(open_video(p.path), want, gray=True)
    seen: list[int] = []
    for dec in ("av", "vs"):
        g = fpm.Grab(want + [p.frames + 5], p.width, p.height, p.pix_fmt, on_frame=lambda i, _: seen.append(i))
        f = fpm.fingerprints(p.path, frames=p.frames, fps=float(p.fps), crop=(10, 20, 160, 120), decoder=dec,
                             cache=False, grab=g)
        plain = fpm.fingerprints(p.path, frames=p.frames, fps=float(p.fps), crop=(10, 20, 160, 120),
                                 decoder=dec, cache=False)
        assert sorted(f.frames) == want
        assert np.array_equal(f.planes, plain.planes)
        for j, r in zip(want, ref, strict=False):
            assert np.array_equal(f.frames[j], r), (dec, j)
    assert sorted(seen) == sorted(want * 2)


def test_fingerprint_planes_alike_from_both_decoders(clips: dict[str, Path]) -> None:
    """The frame server's planes (a VFR input, or the fallback) are made as the in-process
    decode makes them: the other side may come from either, and the cache keeps one under
    the same key. Before, they were limited-range and bilinear straight to the plane size
    (7 grey levels off on average), which moved three frames of the robustness benchmark's
    VFR FG (file path against the same files as nodes)."""
    from vidkompy_vs import fingerprint as fpm
    from vidkompy_vs.sources import probe

    p = probe(clips["bg"])
    for crop in (None, (10, 20, 160, 120)):
        a, b = (fpm.fingerprints(p.path, frames=p.frames, fps=float(p.fps), crop=crop, decoder=dec,
                                 cache=False).planes.astype(int) for dec in ("av", "vs"))
        d = np.abs(a - b)
        # zimg has no area kernel (see nodes.AREA_K): a few levels apart, as the node path's
        # planes are (here max 6 and 12, mean 0.45 and 0.73; before: max 38 and 41, mean 7.4 and 7.1)
        assert a.shape == b.shape and d.max() <= 16 and d.mean() < 1.0, (crop, d.max(), d.mean())


def test_refine_uses_given_frames(clips: dict[str, Path]) -> None:
    """refine_from_clips with the pictures handed in reads nothing and finds the same."""
    from vidkompy_vs import spatial as sp
    from vidkompy_vs.sources import frame_arrays, open_video

    bg, fg = open_video(clips["bg"]), open_video(clips["fg_off"])
    fmap = list(range(30, 130))
    prior = sp.Placement(61.0, 39.0, 1.0, 0.9, "test")
    stats: dict[str, float] = {}
    a = sp.refine_from_clips(bg, fg, fmap, prior=prior, stats=stats)
    assert stats["reads"] > 0
    ids = sp.refine_samples(fg.num_frames)
    frames = {"fg": dict(zip(ids, frame_arrays(fg, ids, gray=True), strict=False)),
              "bg": dict(zip([fmap[i] for i in ids], frame_arrays(bg, [fmap[i] for i in ids], gray=True),
                             strict=False))}
    b = sp.refine_from_clips(bg, fg, fmap, prior=prior, frames=frames, stats=stats)
    assert stats["reads"] == 0
    assert (b.x, b.y, b.scale) == (a.x, a.y, a.scale)
    assert (round(b.x), round(b.y)) == (60, 40)


def test_display_rotation_is_ignored_like_the_frame_server(clips: dict[str, Path], tmp_path: Path) -> None:
    """A phone clip flagged 'rotate 90' (display matrix): ffmpeg would turn its pictures,
    LWLibav (what renders) does not. Fingerprints, grabs and the map must follow LWLibav."""
    from vidkompy_vs import fingerprint as fpm
    from vidkompy_vs.decode import tracks
    from vidkompy_vs.sources import frame_arrays, open_video, probe

    rot = tmp_path / "bg_rot.mov"
    try:
        _ff("-display_rotation", "90", "-i", str(clips["bg"]), "-c", "copy", str(rot))
    except subprocess.CalledProcessError:
        # ffmpeg before 6 has no -display_rotation (and 6 on no longer takes this metadata)
        _ff("-i", str(clips["bg"]), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(rot))
    assert tracks(rot).video.rotation != 0  # the flag is there (ffmpeg would turn the picture)
    p = probe(rot)
    want = [3, 77]
    g = fpm.Grab(want, p.width, p.height, p.pix_fmt)
    f = fpm.fingerprints(p.path, frames=p.frames, fps=float(p.fps), crop=(10, 20, 160, 120), cache=False, grab=g)
    vsf = fpm.fingerprints(p.path, frames=p.frames, fps=float(p.fps), crop=(10, 20, 160, 120), decoder="vs",
                           cache=False)
    assert sorted(f.frames) == want
    for j, r in zip(want, frame_arrays(open_video(p.path), want, gray=True), strict=False):
        assert np.array_equal(f.frames[j], r)
    corr = np.einsum("nd,nd->n", f.vectors(), vsf.vectors())
    assert corr.min() > 0.97
    assert p.rotation in (90, 270)
    con, buf = quiet_console()
    a = align(rot, clips["silent_fg"], console=con)
    assert a.temporal.frame_map == list(range(30, 130))
    assert (round(a.spatial.x), round(a.spatial.y)) == (60, 40)
    assert "rotated" in buf.getvalue()


def test_variable_frame_rate_fg_is_read_at_a_constant_rate(clips: dict[str, Path], tmp_path: Path) -> None:
    """A phone-style VFR FG (every 7th frame missing, timestamps kept): read at a constant
    rate (missing slots repeat the frame before), so it plays at its real speed, and
    every FG frame still lands on the BG frame it shows."""
    from vidkompy_vs.sources import frame_arrays, open_video, probe

    vfr = tmp_path / "fg_vfr.mp4"
    _ff("-i", str(clips["bg"]), "-vf", "trim=start_frame=30:end_frame=130,setpts=PTS-STARTPTS,crop=160:120:60:40,"
        "select='not(eq(mod(n\\,7)\\,3))'", "-fps_mode", "vfr", "-an", "-c:v", "libx264", "-crf", "16",
        str(vfr))
    p = probe(vfr)
    assert p.vfr and p.fps == 25 and p.frames == 100  # 4 s at 25 fps, not 86 frames played too fast
    con, buf = quiet_console()
    a = align(clips["bg"], vfr, console=con)
    assert "variable frame rate" in buf.getvalue()
    fg = np.stack(frame_arrays(open_video(vfr), range(p.frames), gray=True)).astype(np.float32)
    bg = np.stack(frame_arrays(open_video(clips["bg"]), range(20, 140), gray=True))[:, 40:160, 60:220]
    # truth: the BG frame each (constant-rate) FG frame shows, by picture
    err = np.abs(fg[:, None] - bg[None].astype(np.float32)).mean(axis=(2, 3))
    truth = 20 + err.argmin(axis=1)
    assert err.min(axis=1).max() < 4.0
    assert (np.array(a.temporal.frame_map) == truth).mean() >= 0.99


def test_audio_stream_starting_after_video_keeps_sync(clips: dict[str, Path], tmp_path: Path) -> None:
    """FG's sound starts 0.2 s after its first frame (in sync: the first 0.2 s are cut and
    the stream's start time says so). Time 0 is FG's first frame, so the audio offset is
    still exactly BG's 1.2 s lead."""
    from vidkompy_vs.audio import load_audio
    from vidkompy_vs.sources import audio_lead

    late = tmp_path / "fg_late.mp4"
    # FG = BG frames 30..129 (1.2 s in); its audio = BG samples from 1.4 s, stamped at 0.2 s
    _ff("-i", str(clips["bg"]), "-filter_complex",
        "[0:v]trim=start_frame=30:end_frame=130,setpts=PTS-STARTPTS,crop=160:120:60:40[v];"
        "[0:a]atrim=start_sample=22400:end_sample=35200,asetpts=PTS-STARTPTS+0.2/TB[a]",
        "-map", "[v]", "-map", "[a]", "-c:v", "libx264", "-crf", "16", "-c:a", "aac", str(late))
    # (the stream starts with the encoder's 1024 priming samples, 64 ms before 0.2 s)
    assert 0.1 < audio_lead(late) <= 0.2
    a = load_audio(late, 8000, cache=False)
    assert np.abs(a[:1400]).max() < 0.02 < np.abs(a[1800:2400]).max()  # (near) silence until 0.2 s
    con, _ = quiet_console()
    al = align(clips["bg"], late, method="audio", console=con)
    assert al.temporal.offset_s == pytest.approx(1.2, abs=0.01)


def test_edit_list_hidden_frames_are_not_shown(clips: dict[str, Path], tmp_path: Path) -> None:
    """A stream copy cut between keyframes: the MP4 keeps frames from the keyframe before
    the cut and an edit list hiding them. Players and ffmpeg start at the cut; so must the
    frame server (LWLibav alone shows the hidden slots as repeats of the first picture)."""
    from conftest import decode_gray

    from vidkompy_vs.sources import frame_arrays, open_video, probe

    gop = tmp_path / "gop.mp4"
    _ff("-i", str(clips["fg_off"]), "-c:v", "libx264", "-crf", "16", "-g", "250", "-sc_threshold", "0",
        "-c:a", "copy", str(gop))
    cut = tmp_path / "cut.mp4"
    _ff("-ss", "0.52", "-i", str(gop), "-c", "copy", str(cut))
    ref = decode_gray(cut, 160, 120)  # what ffmpeg (and a player) shows
    p = probe(cut)
    assert p.frames == len(ref) == 100 - 13
    got = frame_arrays(open_video(cut), [0, 1, p.frames - 1], gray=True)

    def unit(a: np.ndarray) -> np.ndarray:  # (ffmpeg's grey is full range: compare shapes)
        a = a.reshape(len(a), -1).astype(np.float64)
        a -= a.mean(axis=1, keepdims=True)
        return a / np.linalg.norm(a, axis=1, keepdims=True)

    best = (unit(np.stack(got)) @ unit(ref).T).argmax(axis=1)
    assert best.tolist() == [0, 1, p.frames - 1]
    con, _ = quiet_console()
    a = align(clips["bg"], cut, console=con)
    assert a.temporal.frame_map == list(range(43, 130))


def test_footprint_from_fg_fingerprints_without_sound(clips: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    # No sound: BG frames around FG's middle are found among FG's own fingerprints, and
    # the exact pair they give places FG; the coarse search through BG never runs.
    from vidkompy_vs.align import footprint as F

    took: list[bool] = []

    def spy(ctx):
        r = F.anchored_footprint(ctx)
        took.append(r is not None)
        return r

    def no_search(ctx):
        raise AssertionError("the coarse search ran")

    finders = {f.__name__: f for f in F.FINDERS} | {"anchored_footprint": spy, "coarse_footprint": no_search}
    monkeypatch.setattr(F, "FINDERS", tuple(finders.values()))
    con, _ = quiet_console()
    a = align(clips["bg"], clips["silent_fg"], console=con, cache=False)
    assert took == [True]
    assert a.temporal.frame_map == list(range(30, 130))
    # (as before this path existed: the centre exact, the scale free and 0.4 % off on this
    # synthetic picture)
    s = a.spatial
    assert abs(s.x + 80 * s.scale - 140) < 0.1 and abs(s.y + 60 * s.scale - 100) < 0.1
    assert s.scale == pytest.approx(1.0, abs=0.005)


@pytest.mark.parametrize("memory", ["enough", "ten frames", "no spare FG pictures"])
def test_anchored_search_reads_nothing_twice(clips: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path, memory: str) -> None:
    # The passes hand the anchored search everything it looks at: BG's window (kept by
    # BG's pass as it went by), the BG frame of the pair (held by that pass), the FG
    # frames (kept by FG's): no second decode of the window, no read through the frame
    # server. With memory for ten of BG's frames, the rest held in the spill file; with
    # FG's samples alone kept, the pair is moved along the line to one of them
    from vidkompy_vs.align import anchored as A
    from vidkompy_vs.align import passes as PS
    from vidkompy_vs.spatial import coarse as C

    if memory == "no spare FG pictures":
        monkeypatch.setattr(PS, "SPARE_BYTES", 0)
    elif memory != "enough":
        from vidkompy_vs.sources import probe

        p = probe(clips["bg"])
        monkeypatch.setattr(PS, "LATE_HOLD_BYTES", 10 * p.width * p.height)

    def no_read(*a, **k):
        raise AssertionError("read again")

    monkeypatch.setattr(A, "frame_arrays", no_read)
    monkeypatch.setattr(C, "window_frames", no_read)
    monkeypatch.setenv("VIDKOMPY_VS_CACHE", str(tmp_path))  # (no planes from an earlier test)
    con, said = quiet_console()
    a = align(clips["bg"], clips["silent_fg"], console=con, cache=False)
    assert "skipped" not in said.getvalue()  # (the anchored finder ran through, no fallback)
    assert a.temporal.frame_map == list(range(30, 130)) and a.spatial.method != "template"
    s = a.spatial
    assert abs(s.x + 80 * s.scale - 140) < 0.1 and abs(s.y + 60 * s.scale - 100) < 0.1


def test_fg_filling_bg_at_scale_2_without_sound(clips: dict[str, Path], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # FG is all of BG at half size (a resolution change, the common 1080p-over-720p case),
    # BG one GOP long (a short camera clip: one keyframe) and its window taken for a large
    # one: the anchored finder reads the window's reference frames instead of giving up
    # (it left such clips to the coarse search's random reads), places FG (a rough
    # footprint a little past BG's edge is moved inside), and FG is decoded once (a
    # sub-pixel overhang cuts nothing)
    import vidkompy_vs.align.prints as P
    from vidkompy_vs.align import footprint as F
    from vidkompy_vs.spatial import coarse as C

    bg, fg = tmp_path / "bg_gop.mp4", tmp_path / "fill.mp4"
    _ff("-i", str(clips["bg"]), "-an", "-c:v", "libx264", "-preset", "veryfast", "-crf", "16", "-g", "250", str(bg))
    _ff("-i", str(clips["bg"]), "-vf", "trim=start_frame=30:end_frame=130,setpts=PTS-STARTPTS,"
        "scale=160:120:flags=area", "-an", "-c:v", "libx264", "-preset", "veryfast", "-crf", "16", str(fg))
    monkeypatch.setattr(C, "KEY_PIXELS", 0)

    def no_search(ctx):
        raise AssertionError("the coarse search ran")

    passes: list[str] = []
    real = P.fingerprint_pass
    monkeypatch.setattr(P, "fingerprint_pass", lambda inp, *a, **k: passes.append(inp.name) or real(inp, *a, **k))
    finders = {f.__name__: f for f in F.FINDERS} | {"coarse_footprint": no_search}
    monkeypatch.setattr(F, "FINDERS", tuple(finders.values()))
    con, _ = quiet_console()
    a = align(bg, fg, console=con, cache=False)
    assert passes == []  # (FG's one pass and BG's early one ran beside the search)
    assert a.temporal.frame_map == list(range(30, 130))
    s = a.spatial
    worst = max(abs(s.x + u * s.scale - 2 * u) + abs(s.y + v * s.scale - 2 * v) for u in (0, 160) for v in (0, 120))
    assert worst < 0.5


def test_bg_pass_runs_beside_the_footprint_search(clips: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    # BG's pass starts with FG's, before the footprint is known: the search here does not
    # answer before BG's pass has decoded frames (it would wait for ever on a pass that
    # starts after it), whose planes are then cut to the footprint; no pass of its own runs
    import logging
    import time

    import vidkompy_vs.align.prints as P
    from vidkompy_vs.align import footprint as F

    seen: list[int] = []

    def waits_for_bg(ctx):
        late = ctx.passes.bg_pass.late
        deadline = time.monotonic() + 60
        while late.decoded < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        seen.append(late.decoded)
        return F.anchored_footprint(ctx)

    finders = {f.__name__: f for f in F.FINDERS} | {"anchored_footprint": waits_for_bg}
    monkeypatch.setattr(F, "FINDERS", tuple(finders.values()))
    passes: list[str] = []
    real = P.fingerprint_pass
    monkeypatch.setattr(P, "fingerprint_pass", lambda inp, *a, **k: passes.append(inp.name) or real(inp, *a, **k))
    caplog.set_level(logging.DEBUG, logger="vidkompy_vs.align")
    monkeypatch.setenv("VIDKOMPY_VS_CACHE", str(tmp_path))  # (no planes from an earlier test)
    con, _ = quiet_console()
    a = align(clips["bg"], clips["silent_fg"], console=con, cache=False)
    assert seen and seen[0] >= 20 and passes == []
    stages = [str(r.args[-1]) for r in caplog.records if r.name == "vidkompy_vs.align" and r.args]
    starts = next(i for i, m in enumerate(stages) if m.startswith("BG pass starts (early"))
    found = next(i for i, m in enumerate(stages) if m.startswith("footprint found"))
    cut = next(i for i, m in enumerate(stages) if m.startswith("BG's early pass cut to the footprint at frame"))
    assert starts < found < cut
    assert a.temporal.frame_map == list(range(30, 130))
    s = a.spatial
    assert abs(s.x + 80 * s.scale - 140) < 0.1 and abs(s.y + 60 * s.scale - 100) < 0.1


def test_crops_and_rough_footprints_of_an_fg_that_fills_bg() -> None:
    # FG (1280x720) filling BG (1920x1080) at scale 1.5: an estimate a fraction of a pixel
    # past BG's edge leaves FG whole (no second FG decode); a real overhang cuts it; a
    # rough footprint a few % past the edge is moved (and shrunk) inside, further is not
    from vidkompy_vs.align.anchored import _within
    from vidkompy_vs.align.footprint import crops
    from vidkompy_vs.alignment import Placement
    from vidkompy_vs.sources import Probe

    bg = Probe("bg", 1920, 1080, 25, 1, 100, "yuv420p", 8, False)
    fg = Probe("fg", 1280, 720, 25, 1, 100, "yuv420p", 8, False)
    assert crops(Placement(-0.6, -0.4, 1.50003), bg, fg) == (None, None)
    assert crops(Placement(-6.0, 0.0, 1.5), bg, fg).fg == (4, 0, 1276, 720)
    w = _within(Placement(-2.3, 23.6, 1.5002), bg, fg)
    assert w.x >= 0 and w.y >= 0 and w.x + 1280 * w.scale <= 1920 + 1e-6 and w.y + 720 * w.scale <= 1080 + 1e-6
    assert abs(w.x) < 1 and abs(w.y) < 1
    far = Placement(-200.0, 0.0, 1.5)
    assert _within(far, bg, fg) is far


def test_rerun_comes_from_the_result_cache(clips: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import vidkompy_vs.fingerprint as fpm

    con, buf = quiet_console()
    a = align(clips["bg"], clips["fg50"], console=con)
    decodes: list[int] = []
    real = fpm.fingerprints
    monkeypatch.setattr(fpm, "fingerprints", lambda *x, **k: decodes.append(1) or real(*x, **k))
    b = align(clips["bg"], clips["fg50"], console=con)
    assert decodes == [] and "from the cache" in buf.getvalue()
    assert b.to_dict() == a.to_dict()
    # another setting is another result
    c = align(clips["bg"], clips["fg50"], method="visual", preset="precise", console=con)
    assert decodes and c.temporal.frame_map == a.temporal.frame_map


def test_result_cache_survives_a_bad_entry_and_keeps_no_fallbacks(clips: dict[str, Path],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import vidkompy_vs.spatial as S
    from vidkompy_vs.align.inputs import Request
    from vidkompy_vs.align.results import result_key
    from vidkompy_vs.cache import cache_dir

    con, buf = quiet_console()
    # an unreadable entry is a miss: the run is made in full, with its sound
    key = result_key(clips["bg"], clips["fg_off"], load_preset("fast"), Request())
    (cache_dir("results") / f"{key}.json").write_text("{not json")
    a = align(clips["bg"], clips["fg_off"], preset="fast", console=con)
    assert a.temporal.method == "audio+visual" and a.temporal.frame_map == list(range(30, 130))
    # a result made while an engine failed (a note says so) is not kept
    def broken(*x, **k):
        raise RuntimeError("broken on purpose")

    monkeypatch.setattr(S, "refine_from_clips", broken)
    align(clips["bg"], clips["fg50"], preset="robust", console=con)
    assert "spatial refinement skipped" in buf.getvalue()
    key2 = result_key(clips["bg"], clips["fg50"], load_preset("robust"), Request())
    assert not (cache_dir("results") / f"{key2}.json").exists()
