import os
import subprocess
import time

import numpy as np
import pytest
from conftest import FFMPEG, decode_gray

from vidkompy_vs import sources
from vidkompy_vs.errors import VidkompyError


def test_probe(pair):
    p = sources.probe(pair.bg)
    assert (p.width, p.height, p.fps_num, p.fps_den, p.frames) == (640, 360, 25, 1, 200)
    assert p.has_audio and p.audio_rate == 48000 and p.audio_channels == 1
    assert p.pix_fmt == "yuv420p" and p.bits == 8
    assert p.duration == pytest.approx(8.0)


def test_frames_match_ffmpeg_random_access(pair):
    """Random access through the source plugin gives the frames a linear ffmpeg decode gives."""
    ref = decode_gray(pair.bg, 640, 360)
    clip = sources.open_video(pair.bg)
    assert clip.num_frames == len(ref)
    rng = np.random.default_rng(0)
    for n in rng.permutation(len(ref))[:25]:
        # ffmpeg's gray is full-range; compare with the raw limited-range plane mapped the same way
        raw = np.asarray(clip.get_frame(int(n))[0]).astype(np.float64)
        full = np.clip(np.round((raw - 16) * 255 / 219), 0, 255)
        assert np.abs(full - ref[n]).max() <= 1, n


def test_index_in_cache_not_beside_input(pair, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("VIDKOMPY_VS_CACHE", raising=False)
    before = set(os.listdir(pair.bg.parent))
    sources.open_video(pair.bg)
    assert set(os.listdir(pair.bg.parent)) == before
    (index,) = (tmp_path / "xdg" / "vidkompy-vs" / "lwi").glob("*.lwi")
    stamp = index.stat().st_mtime_ns
    t0 = time.perf_counter()
    sources.open_video(pair.bg)
    assert time.perf_counter() - t0 < 0.5
    assert index.stat().st_mtime_ns == stamp  # reused, not rebuilt


def test_audio_node(pair):
    a = sources.open_audio(pair.fg)
    assert a is not None and a.sample_rate == 48000
    assert abs(a.num_samples / 48000 - 7.0) < 0.05


def test_bad_inputs(tmp_path):
    with pytest.raises(VidkompyError, match="no such file"):
        sources.probe(tmp_path / "missing.mp4")
    txt = tmp_path / "notes.mp4"
    txt.write_text("hello")
    with pytest.raises(VidkompyError, match="not a media file"):
        sources.probe(txt)
    wav = tmp_path / "tone.wav"
    subprocess.run([FFMPEG, "-loglevel", "error", "-f", "lavfi", "-i", "sine=d=1", str(wav)], check=True)
    with pytest.raises(VidkompyError, match="no video stream"):
        sources.probe(wav)
