"""The in-process reads (PyAV) against the frame server and against what ffprobe said.

Clips are real H.264 made once with ffmpeg (cached in pytest's cache folder): B-frames
with AAC, 10-bit, full range, a variable frame rate, an edit list (a stream copy cut
between keyframes), a display rotation flag, an anamorphic Matroska whose video starts
after its sound, and a late audio stream. The probe expectations were recorded with
ffprobe 5.1 on these clips as the package's ffmpeg (the imageio-ffmpeg wheel's 9.0.2)
makes them (ffprobe is not needed to run them).
"""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
import vapoursynth as vs
from conftest import ffmpeg

from vidkompy_vs import decode
from vidkompy_vs import fingerprint as fpm
from vidkompy_vs.errors import VidkompyError
from vidkompy_vs.sources import frame_arrays, open_video, probe

VERSION = 2  # 2: made with the package's ffmpeg (the wheel's), not a system one
SRC = "testsrc2=s=320x240:r=25,format=yuv420p"
AUD = "sine=f=440:r=48000"
X264 = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18"]
core = vs.core


@pytest.fixture(scope="module")
def clips(request: pytest.FixtureRequest) -> dict[str, Path]:
    d = Path(request.config.cache.mkdir(f"vidkompy-decode-clips-v{VERSION}"))
    names = ("bframes.mp4", "ten.mp4", "full.mp4", "vfr.mp4", "gop.mp4", "cut.mp4", "rot.mov", "sar.mkv", "late.mp4")
    out = {n.split(".")[0]: d / n for n in names}
    if all(p.exists() for p in out.values()):
        return out
    gop3 = ["-bf", "3", "-g", "30"]
    ffmpeg("-f", "lavfi", "-i", SRC, "-f", "lavfi", "-i", AUD, "-t", "3", *X264, *gop3, "-c:a", "aac", "-ac", "2",
           str(out["bframes"]))
    for name, fmt in (("ten", "yuv420p10le"), ("full", "yuvj420p")):
        ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x240:r=25", "-t", "3", *X264, *gop3, "-pix_fmt", fmt, str(out[name]))
    # every 7th frame missing, timestamps kept (a phone's variable rate)
    ffmpeg("-i", str(out["bframes"]), "-vf", "select='not(eq(mod(n\\,7)\\,3))'", "-fps_mode", "vfr", "-an", *X264,
           str(out["vfr"]))
    # a stream copy cut between keyframes: the frames from the keyframe on are kept and an
    # edit list hides the first 13
    ffmpeg("-i", str(out["bframes"]), *X264, "-g", "250", "-sc_threshold", "0", "-c:a", "copy", str(out["gop"]))
    ffmpeg("-ss", "0.52", "-i", str(out["gop"]), "-c", "copy", str(out["cut"]))
    try:
        ffmpeg("-display_rotation", "90", "-i", str(out["bframes"]), "-c", "copy", str(out["rot"]))
    except subprocess.CalledProcessError:  # ffmpeg before 6 (6 on ignores this metadata)
        ffmpeg("-i", str(out["bframes"]), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(out["rot"]))
    ffmpeg("-i", str(out["bframes"]), "-vf", "setsar=4/3", *X264, "-c:a", "copy", str(out["sar"]))
    ffmpeg("-f", "lavfi", "-i", SRC, "-f", "lavfi", "-i", AUD, "-t", "3", "-filter_complex",
           "[1:a]atrim=start=0.2,asetpts=PTS-STARTPTS+0.2/TB[a]", "-map", "0:v", "-map", "[a]", *X264, "-c:a", "aac",
           str(out["late"]))
    return out


# What ffprobe 5.1 printed for these clips (stream entries; the discarded count from
# `-show_entries packet=flags` over the first 30 packets): width, height, pix_fmt,
# r_frame_rate, avg_frame_rate, duration, nb_frames, start_time, sample_aspect_ratio,
# display matrix rotation, discarded; audio sample_rate, channels, start_time.
FFPROBE = {
    "bframes": ((320, 240, "yuv420p", "25/1", "25/1", 3.0, 75, 0.0, "1:1", 0, 0), (48000, 2, 0.0)),
    "ten": ((320, 240, "yuv420p10le", "25/1", "25/1", 3.0, 75, 0.0, "1:1", 0, 0), None),
    "full": ((320, 240, "yuvj420p", "25/1", "25/1", 3.0, 75, 0.0, "1:1", 0, 0), None),
    "vfr": ((320, 240, "yuv420p", "25/1", "800/37", 2.96, 64, 0.0, "1:1", 0, 0), None),
    "cut": ((320, 240, "yuv420p", "25/1", "25/1", 2.48, 75, 0.0, "1:1", 0, 13), (48000, 2, 0.0)),
    "rot": ((320, 240, "yuv420p", "25/1", "25/1", 3.0, 75, 0.0, "1:1", 90, 0), (48000, 2, 0.0)),
    # (the sound: ffprobe 5.1 says -0.021, the AAC encoder's 1024 priming samples, which the
    # Matroska CodecDelay of the libavformat in PyAV's wheel takes off: its first sample is at 0)
    "sar": ((320, 240, "yuv420p", "25/1", "25/1", None, 0, 0.0, "4:3", 0, 0), (48000, 2, 0.0)),
    "late": ((320, 240, "yuv420p", "25/1", "25/1", 3.0, 75, 0.0, "1:1", 0, 0), (48000, 1, 0.178667)),
}


@pytest.mark.parametrize("name", sorted(FFPROBE))
def test_tracks_say_what_ffprobe_said(clips: dict[str, Path], name: str) -> None:
    t = decode.tracks(clips[name])
    v, a = t.video, t.audio
    assert v is not None
    w, h, fmt, r, avg, dur, stored, start, sar, rot, discarded = FFPROBE[name][0]
    assert (v.width, v.height, v.pix_fmt, v.codec) == (w, h, fmt, "h264")
    assert (v.rate, v.avg_rate) == (Fraction(r), Fraction(avg))
    assert v.duration == (None if dur is None else pytest.approx(dur, abs=1e-6))
    assert (v.stored, v.sar, v.rotation) == (stored, Fraction(sar.replace(":", "/")), rot)
    assert v.start == pytest.approx(start, abs=1e-6)
    assert decode.discarded_packets(clips[name], 30) == discarded
    if FFPROBE[name][1] is None:
        assert a is None
    else:
        rate, channels, astart = FFPROBE[name][1]
        assert a is not None and (a.rate, a.channels) == (rate, channels)
        assert a.start == pytest.approx(astart, abs=1e-6)


def test_probe_facts_come_from_the_tracks(clips: dict[str, Path]) -> None:
    p = probe(clips["rot"])
    assert (p.rotation, p.has_audio, p.audio_rate, p.audio_channels, p.vfr) == (90, True, 48000, 2, False)
    assert probe(clips["sar"]).sar == Fraction(4, 3)
    assert probe(clips["ten"]).bits == 10 and probe(clips["ten"]).pix_fmt == "yuv420p10le"
    v = probe(clips["vfr"])
    assert v.vfr and v.fps == 25 and v.frames > 64  # read at a constant 25 fps: gaps filled
    assert probe(clips["cut"]).frames == 75 - 13  # the edit list's hidden frames are not shown


def _every_frame(path: Path) -> list[tuple[np.ndarray, np.ndarray | None]]:
    with decode.open_input(path) as c:
        index = decode.tracks(path).video.index
        return [(decode.luma(f).copy(), decode.gray8(f)) for f in decode.frames(c, index)]


@pytest.mark.parametrize("name", ["bframes", "ten", "full", "cut", "rot", "sar"])
def test_decoded_pictures_are_the_frame_servers(clips: dict[str, Path], name: str) -> None:
    """Every frame, in order: the luma plane equal to the frame server's (at its own bit
    depth) and the grey picture equal to ``frame_arrays(gray=True)``."""
    got = _every_frame(clips[name])
    clip = open_video(clips[name])
    assert len(got) == clip.num_frames
    ref = frame_arrays(clip, range(clip.num_frames), gray=True)
    for n, ((y, g), r) in enumerate(zip(got, ref)):
        assert np.array_equal(y, np.asarray(clip.get_frame(n)[0])), (name, n)
        assert g is not None and np.array_equal(g, r), (name, n)


def test_variable_rate_frames_are_the_frame_servers_before_its_constant_rate(clips: dict[str, Path]) -> None:
    """A VFR stream decodes to the frames LWLibav reads without a constant rate; the
    constant-rate numbering (what renders) is left to the frame server."""
    got = _every_frame(clips["vfr"])
    raw = core.lsmas.LWLibavSource(str(clips["vfr"]), cache=0)
    assert len(got) == raw.num_frames == 64
    for n, (y, _) in enumerate(got):
        assert np.array_equal(y, np.asarray(raw.get_frame(n)[0])), n


def _zimg_pattern(fmt: int, full: bool) -> tuple[np.ndarray, np.ndarray]:
    """Every code value of ``fmt`` through the frame server's grey conversion."""
    bits = core.get_video_format(fmt).bits_per_sample
    vals = np.arange(1 << bits, dtype=np.uint16 if bits > 8 else np.uint8)
    w = len(vals)
    clip = core.std.BlankClip(width=w, height=2, format=fmt, length=1)

    def put(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        f = f.copy()
        np.copyto(np.asarray(f[0]), np.tile(vals, (2, 1)))
        f.props["_Range"] = vs.RANGE_FULL if full else vs.RANGE_LIMITED
        return f

    clip = core.std.ModifyFrame(clip, clip, put)
    return vals, frame_arrays(clip, [0], gray=True)[0][0]


@pytest.mark.parametrize("fmt", [vs.YUV420P8, vs.YUV420P10, vs.YUV444P12, vs.YUV422P16])
@pytest.mark.parametrize("full", [False, True])
def test_gray8_is_zimgs_conversion_for_every_code_value(fmt: int, full: bool) -> None:
    vals, ref = _zimg_pattern(fmt, full)
    bits = int(np.log2(len(vals)))
    assert np.array_equal(decode.to_gray8(vals, bits, full), ref)


@pytest.mark.parametrize("name", ["bframes", "ten", "full", "cut"])
def test_fingerprint_pass_keeps_the_frame_servers_pictures(clips: dict[str, Path], name: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-process pass (the frame server never asked: its fallback would fail)
    numbers frames as the frame server and keeps its pictures, all of them."""
    p = probe(clips[name])
    want = list(range(p.frames))
    ref = frame_arrays(open_video(p.path), want, gray=True)
    monkeypatch.setattr(fpm, "_decode_vs", lambda *a, **k: pytest.fail("fell back to the frame server"))
    seen: list[int] = []
    g = fpm.Grab(want, p.width, p.height, p.pix_fmt, on_frame=lambda i, _: seen.append(i))
    f = fpm.fingerprints(p.path, frames=p.frames, fps=float(p.fps), crop=(10, 20, 160, 120), size=(32, 18),
                         cache=False, grab=g)
    assert f.planes.shape == (p.frames, 18, 32) and seen == want
    for j, r in zip(want, ref):
        assert np.array_equal(f.frames[j], r), (name, j)
    # the planes: the crop area-averaged in full-range grey (ffmpeg's `format=gray`)
    full = np.clip(np.rint((np.arange(256) - 16) * 255 / 219), 0, 255)
    for j in (0, p.frames // 2, p.frames - 1):
        small = cv2.resize(ref[j][20:140, 10:170], (32, 18), interpolation=cv2.INTER_AREA)
        assert np.abs(f.planes[j] - full[small]).mean() < 2.0, (name, j)


def test_fingerprint_pass_keeps_spare_pictures_within_their_budget(clips: dict[str, Path]) -> None:
    """The pictures a search may pair, beyond the ones asked for: those of the range given,
    as the frame server's grey, until their bytes would pass the budget."""
    p = probe(clips["bframes"])
    bytes_each = p.width * p.height
    spare: dict[int, np.ndarray] = {}
    g = fpm.Grab([2], p.width, p.height, p.pix_fmt, spare=(5, 40), spare_bytes=10 * bytes_each,
                 on_spare=spare.__setitem__)
    f = fpm.fingerprints(p.path, frames=p.frames, fps=float(p.fps), size=(32, 18), cache=False, grab=g)
    assert sorted(f.frames) == [2] and sorted(spare) == list(range(5, 15))
    for j, r in zip(sorted(spare), frame_arrays(open_video(p.path), sorted(spare), gray=True)):
        assert np.array_equal(spare[j], r), j


def test_fingerprint_pass_falls_back_when_frames_number_otherwise(clips: dict[str, Path]) -> None:
    """VFR read at a constant rate: the in-process pass cannot number its frames as the
    frame server does, says so (None), and fingerprints() redoes it through the frame server."""
    p = probe(clips["vfr"])
    assert fpm._decode_av(p.path, None, (32, 18), p.frames, None) is None
    live = fpm.Live()
    f = fpm.fingerprints(p.path, frames=p.frames, fps=float(p.fps), size=(32, 18), cache=False, live=live)
    assert f.n == p.frames and live.failed


@pytest.mark.parametrize("name", ["bframes", "ten", "sar"])
def test_window_reads_are_the_frame_servers_pictures(clips: dict[str, Path], name: str) -> None:
    p = probe(clips[name])
    clip = open_video(p.path)
    start = decode.tracks(p.path).video.start
    got = decode.window(p.path, 20, 60, float(p.fps), start, (p.width, p.height), src_size=(p.width, p.height))
    assert got is not None and min(got) >= 20 and max(got) <= 60
    assert len(got) < 41  # B-frames skipped
    for n, img in got.items():
        assert np.array_equal(img, frame_arrays(clip, [n], gray=True)[0]), (name, n)
    keys = decode.window(p.path, 0, 74, float(p.fps), start, (80, 60), src_size=(p.width, p.height), skip="NONKEY")
    # (the Matroska copy was re-encoded with x264's default GOP: one keyframe)
    assert keys is not None and sorted(keys) == ([0] if name == "sar" else [0, 30, 60])
    assert all(k.shape == (60, 80) for k in keys.values())


def test_window_of_a_variable_rate_stream_is_refused(clips: dict[str, Path]) -> None:
    # frames missing from the 25 fps grid are fine; one off the grid is not
    odd = clips["vfr"].with_name("odd.mp4")
    if not odd.exists():
        # (-enc_time_base: ffmpeg 7 and later time an encoder's output by the frame rate, which
        # would round the shift away)
        ffmpeg("-i", str(clips["bframes"]), "-vf", "setpts=PTS+0.4*gt(N\\,20)/TB/25", "-fps_mode", "vfr", "-an",
               "-enc_time_base", "1:1000", *X264, str(odd))
    assert decode.window(odd, 10, 40, 25.0, 0.0, (320, 240), src_size=(320, 240)) is None


def test_audio_is_ffmpegs_mono_float(clips: dict[str, Path]) -> None:
    """At the track's own rate the sound is the decoder's samples, downmixed (BestSource,
    sample-exact to ffmpeg, says what they are); at 8 kHz, the same sound resampled."""
    path = clips["late"]  # mono AAC: no downmix, no resampling at 48 kHz
    a48 = decode.audio(path, 48000)
    node = core.bs.AudioSource(str(path), cachemode=0)
    ref = np.concatenate([np.asarray(f[0]) for f in node.frames()])
    # (BestSource puts silence before a stream that starts late: time 0 is its sample 0)
    lead = len(ref) - len(a48)
    assert lead == round(FFPROBE["late"][1][2] * 48000) and not ref[:lead].any()
    ref = ref[lead:]
    assert np.array_equal(a48, ref.astype(np.float32))
    a8 = decode.audio(path, 8000)
    assert abs(len(a8) - len(ref) / 6) <= 2
    from scipy.signal import resample_poly

    ours = resample_poly(ref, 1, 6)[: len(a8)]
    assert np.corrcoef(ours[400:-400], a8[400:-400])[0, 1] > 0.999
    stereo = decode.audio(clips["bframes"], 8000)
    assert abs(len(stereo) - 3 * 8000) <= 8 and 0.1 < np.abs(stereo).max() <= 1.0


def test_bad_inputs_are_one_line_errors(clips: dict[str, Path], tmp_path: Path) -> None:
    txt = tmp_path / "notes.mp4"
    txt.write_text("hello")
    with pytest.raises(VidkompyError, match="not a media file"):
        decode.tracks(txt)
    with pytest.raises(VidkompyError, match="no such file"):
        decode.tracks(tmp_path / "missing.mp4")
    with pytest.raises(VidkompyError, match="no audio stream"):
        decode.audio(clips["ten"], 8000)
    assert decode.discarded_packets(txt, 5) == -1
    assert decode.window(txt, 0, 5, 25.0, 0.0, (32, 18)) is None


def test_align_starts_no_process(pair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Probing, fingerprints, window reads and audio all run in-process: align() with
    every way to start a program taken away still aligns exactly."""
    import os

    from rich.console import Console

    from vidkompy_vs.align import align

    bg, fg = probe(pair.bg), probe(pair.fg)  # (the clips made before the doors close)

    def no(*a: object, **k: object) -> None:
        raise AssertionError("a process was started")

    monkeypatch.setenv("VIDKOMPY_VS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(subprocess, "Popen", no)
    monkeypatch.setattr(os, "posix_spawn", no)
    monkeypatch.setattr(os, "fork", no)
    with open(os.devnull, "w") as null:
        a = align(pair.bg, pair.fg, console=Console(file=null))
    start = round(pair.offset_s * pair.fps)
    assert a.temporal.frame_map == [min(bg.frames - 1, i + start) for i in range(fg.frames)]
    assert (round(a.spatial.x), round(a.spatial.y)) == (pair.x, pair.y)
    assert a.temporal.method.startswith("audio")


def _late(p, **kw) -> fpm.LateCrop:
    return fpm.LateCrop(p.path, frames=p.frames, src=(p.width, p.height), size=(32, 18),
                        **{"hold_bytes": 64 << 20, **kw})


def _frame_bytes(p) -> int:
    """What the early pass holds of one frame (its luma plane, or the whole frame)."""
    f = next(decode.frames_ahead(p.path, decode.tracks(p.path).video.index))
    return _late(p)._held_item(f)[1]


@pytest.mark.parametrize("name", ["bframes", "ten", "full", "cut"])
@pytest.mark.parametrize("when", ["before", "midway", "after", "spilled"])
def test_late_crop_planes_are_the_direct_ones(clips: dict[str, Path], name: str, when: str) -> None:
    """BG's early pass, its crop given before it starts, midway, or after it has decoded
    everything (``spilled``: most of it held in the spill file, memory holding 10
    frames): the planes are the direct pass's, bit for bit (the cache keeps them as
    such); the pictures wanted are the frame server's."""
    import threading
    import time

    p = probe(clips[name])
    crop = (37, 21, 201, 151)
    direct = fpm.fingerprints(p.path, frames=p.frames, fps=float(p.fps), crop=crop, size=(32, 18), cache=False)
    # (midway: the budget holds 20 frames, so the decode waits there for the crop)
    late = _late(p, hold_bytes=20 * _frame_bytes(p) if when == "midway" else 64 << 20)
    if when == "spilled":
        late = _late(p, hold_bytes=10 * _frame_bytes(p), spill_bytes=64 << 20)
    want = [3, 30, p.frames // 2, p.frames - 1]
    held_pic = spilled_pic = None
    if when == "before":
        late.settle(crop, want)
    out: list = []
    t = threading.Thread(target=lambda: out.append(late.run()), daemon=True)
    t.start()
    if when != "before":
        deadline = time.monotonic() + 30
        stop_at = 20 if when == "midway" else p.frames
        while late.decoded < stop_at and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        assert late.decoded == stop_at and t.is_alive()  # (waiting for the crop)
        # a held frame at full size, as the frame server's grey (the anchored pair's BG)
        held_pic = late.picture(3)
        spilled_pic = late.picture(p.frames // 2)
        late.settle(crop, want)
        assert late.picture(3) is None  # (cut: no longer held)
        assert held_pic is not None
    t.join()
    assert out[0] is not None and np.array_equal(out[0], direct.planes)
    assert late.settled_at == {"before": 0, "midway": 20, "after": p.frames, "spilled": p.frames}[when]
    assert sorted(late.kept) == want
    for j, r in zip(want, frame_arrays(open_video(p.path), want, gray=True)):
        assert np.array_equal(late.kept[j], r), (name, j)
    if when != "before":
        assert np.array_equal(held_pic, late.kept[3]), name
    if when == "spilled" and late._spill.used:  # (a format whose frames are held whole: none spilled)
        assert spilled_pic is not None and np.array_equal(spilled_pic, late.kept[p.frames // 2]), name
    assert late._spill._file is None  # (the spill file is gone once the planes are cut)


@pytest.mark.parametrize("tmp", ["memory", "folder", "unwritable"])
def test_late_crop_spill_is_bounded(clips: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp: str) -> None:
    """Memory and the spill file both full: the decode waits for the crop there, and the
    planes are still the direct pass's, in an anonymous memory file or (none to be had)
    the temporary folder. No memory file and a temporary folder that cannot be written:
    the decode waits where memory is full, as without a spill file."""
    import os
    import tempfile
    import threading
    import time

    if tmp == "memory" and not (hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd")):
        pytest.skip("no anonymous memory files here")
    if tmp != "memory":
        def no_memfd(*_a: object) -> int:
            raise OSError("no memory files here")

        monkeypatch.setattr(os, "memfd_create", no_memfd, raising=False)
    if tmp == "unwritable":
        monkeypatch.setattr(tempfile, "tempdir", "/nonexistent/vidkompy-vs-test")
    p = probe(clips["bframes"])
    crop = (37, 21, 201, 151)
    fb = _frame_bytes(p)
    late = _late(p, hold_bytes=10 * fb, spill_bytes=12 * fb)
    t = threading.Thread(target=late.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 30
    last = -1
    while late.decoded != last and time.monotonic() < deadline:
        last = late.decoded
        time.sleep(0.3)
    if tmp != "unwritable":
        assert 10 < late.decoded < min(23, p.frames) and t.is_alive() and late._spill.used > 0
        where = os.readlink(f"/proc/self/fd/{late._spill._file.fileno()}")
        assert where.startswith("/memfd:") == (tmp == "memory"), where
    else:
        assert late.decoded == 10 and t.is_alive() and late._spill.used == 0
    late.settle(crop, [])
    t.join(30)
    direct = fpm.fingerprints(p.path, frames=p.frames, fps=float(p.fps), crop=crop, size=(32, 18), cache=False)
    assert late.planes is not None and np.array_equal(late.planes[:p.frames], direct.planes)


def test_late_crop_stopped_or_miscounted_gives_nothing(clips: dict[str, Path]) -> None:
    """Stopped (the prepass ended another way), the pass ends at once with no result; on
    a VFR stream read at a constant rate its count is not the frame server's, and it says
    so (its caller then runs the frame server's pass)."""
    import threading

    p = probe(clips["bframes"])
    stopped = _late(p, hold_bytes=0)
    out: list = []
    t = threading.Thread(target=lambda: out.append(stopped.run()))
    t.start()
    stopped.stop()
    t.join(30)
    assert not t.is_alive() and out == [None] and not stopped.miscounted
    v = probe(clips["vfr"])
    late = _late(v)
    late.settle(None, [])
    assert late.run() is None and late.miscounted


@pytest.mark.parametrize("name", ["bframes", "ten", "full", "gop", "cut"])
def test_late_crop_window_is_the_sequential_reads(clips: dict[str, Path], name: str) -> None:
    """BG's window for the footprint search, taken from the early pass's held frames: the
    reference frames the sequential BIDIR read gives, bit for bit (or nothing, the read
    then made as before); nothing when the window would not fit the hold budget."""
    import threading

    from vidkompy_vs.sources import video_start
    from vidkompy_vs.spatial.reads import window_frames

    p = probe(clips[name])
    fps, start, size = float(p.fps), video_start(p.path), (p.width // 3, p.height // 3)
    for lo, hi in ((0, p.frames - 1), (17, 50)):
        late = _late(p, window=fpm.WindowKeep(lo, hi, size, fps, start))
        t = threading.Thread(target=late.run, daemon=True)
        t.start()
        try:
            assert late.window(lo + 1, hi, fps, start, size) is None  # (not the window kept)
            for keys, skip in ((False, "bidir"), (True, "nokey")):
                got = late.window(lo, hi, fps, start, size, keys=keys)
                ref = window_frames(p.path, lo, hi, fps, size, src_size=(p.width, p.height), skip=skip)
                if name != "cut":  # (an edit list: its timestamps may number the frames otherwise)
                    assert got is not None or (keys and ref is None)
                if got is not None:
                    assert ref is not None and sorted(got) == sorted(ref), (name, lo, skip)
                    assert all(np.array_equal(got[k], ref[k]) for k in got), (name, lo, skip)
        finally:
            late.stop()
            t.join(30)
    # the hold fills before the window's end: the decode waits for the footprint, and
    # the window is not waited for
    small = _late(p, hold_bytes=10 * _frame_bytes(p), window=fpm.WindowKeep(0, p.frames - 1, size, fps, start))
    t = threading.Thread(target=small.run, daemon=True)
    t.start()
    try:
        assert small.window(0, p.frames - 1, fps, start, size) is None
    finally:
        small.stop()
        t.join(30)
