"""Bars baked into FG: found on real frames with bars pasted in (exact truth), on encoded
clips (codec noise and ringing at the edge), and from fingerprint planes + a few frames."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import FFMPEG, decode_gray, ffmpeg

from vidkompy_vs import bars, fingerprint

W, H = 640, 360


@pytest.fixture(scope="module")
def scene(pair_lossless) -> np.ndarray:
    """200 real grey frames, 640x360 (the sample pair's BG: moving patterns over texture)."""
    return decode_gray(pair_lossless.bg, W, H)


@pytest.fixture(scope="module")
def bunny(clip_dir: Path) -> np.ndarray:
    """Big Buck Bunny (the benchmarks' footage), grey at 640x360; skipped when it cannot be fetched."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    try:
        from benchmarks.footage import footage

        # (in the clips' folder: the project's own .cache/footage would change which
        # source other test modules pick)
        src = footage("bigbuckbunny.mp4", clip_dir / "footage")
    except Exception as e:  # noqa: BLE001 - offline: the synthetic cases still run
        pytest.skip(f"footage not available: {e}")
    out = clip_dir / "bunny360.mkv"
    if not out.exists():
        ffmpeg("-i", str(src), "-vf", f"scale={W}:{H}", "-c:v", "ffv1", str(out))
    return decode_gray(out, W, H)


def luma(path: Path) -> np.ndarray:
    """The luma plane as stored (what the prepass grabs), not range-converted grey."""
    raw = subprocess.run([FFMPEG, "-nostdin", "-loglevel", "error", "-i", str(path), "-vf", "extractplanes=y",
                          "-f", "rawvideo", "-pix_fmt", "gray", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, H, W)


def boxed(frames: np.ndarray, top=0, bottom=0, left=0, right=0, level=16, noise=0.0) -> np.ndarray:
    out = frames.copy()
    rng = np.random.default_rng(1)
    mask = np.zeros(frames.shape[1:], bool)
    mask[:top] = True
    mask[frames.shape[1] - bottom:] = True
    mask[:, :left] = True
    mask[:, frames.shape[2] - right:] = True
    vals = level + rng.normal(0, noise, (len(frames), int(mask.sum()))) if noise else level
    out[:, mask] = np.clip(np.round(vals), 0, 255).astype(np.uint8)
    return out


def dark(frames: np.ndarray, gain: float = 0.08) -> np.ndarray:
    """A dim, low-contrast version: a night scene, near black everywhere."""
    return (16 + (frames.astype(np.float32) - 16).clip(0) * gain).round().astype(np.uint8)


def ramp(frames: np.ndarray, rows: int, start: int = 0) -> np.ndarray:
    """The top ``rows`` (after ``start`` black ones) fade to exact black: a dark sky / vignette, not a bar."""
    g = np.clip((np.arange(H, dtype=np.float32) - start) / rows, 0, 1)[None, :, None]
    return (16 + (frames.astype(np.float32) - 16) * g).round().astype(np.uint8)


def vignette(frames: np.ndarray, strength: float) -> np.ndarray:
    """A heavy vignette: the corners and edges crushed to black in every frame, not a bar."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    d = np.sqrt(((xx - W / 2) / (W / 2)) ** 2 + ((yy - H / 2) / (H / 2)) ** 2)
    gain = np.clip(strength * (1.1 - d), 0, 1)
    return (16 + (frames.astype(np.float32) - 16).clip(0) * gain).round().astype(np.uint8)


CASES = {
    "letterbox0": ({"top": 46, "bottom": 46, "level": 0}, [0, 46, 640, 268]),
    "letterbox16": ({"top": 46, "bottom": 46, "level": 16}, [0, 46, 640, 268]),
    "odd-rounded-inward": ({"top": 45, "bottom": 45, "level": 16}, [0, 46, 640, 268]),
    "pillarbox": ({"left": 80, "right": 80, "level": 16}, [80, 0, 480, 360]),
    "windowbox": ({"top": 36, "bottom": 36, "left": 64, "right": 64, "level": 16}, [64, 36, 512, 288]),
    "grey-noisy": ({"top": 40, "bottom": 40, "level": 128, "noise": 0.6}, [0, 40, 640, 280]),
    "one-sided": ({"top": 30, "level": 16}, [0, 30, 640, 330]),
    "thin": ({"top": 8, "bottom": 8, "level": 16}, [0, 8, 640, 344]),
}


@pytest.mark.parametrize("case", CASES)
def test_detect_active_synthetic(scene, case):
    kw, want = CASES[case]
    frames = boxed(scene[::5], **kw)
    assert bars.detect_active(frames) == want


def test_detect_active_mod1_and_list_input(scene):
    frames = boxed(scene[::5], top=45, bottom=45, level=16)
    assert bars.detect_active(list(frames[:12]), mod=1) == [0, 45, 640, 270]


@pytest.mark.parametrize("make", [lambda f: f, dark, lambda f: ramp(f, 120), lambda f: ramp(f, 30),
                                  lambda f: vignette(f, 2), lambda f: vignette(f, 3)],
                         ids=["plain", "dark", "dark-sky-120", "dark-sky-30", "vignette-2", "vignette-3"])
def test_no_bars_is_none(scene, make):
    assert bars.detect_active(make(scene[::5])) is None


def test_dark_scene_with_bars_is_found(scene):
    assert bars.detect_active(boxed(dark(scene[::5]), top=46, bottom=46, level=16)) == [0, 46, 640, 268]


def test_per_shot_keeps_shared_bars_in_a_dark_shot(scene):
    """A shot whose picture fades into the bar has no sharp edge of its own; the bars the
    whole clip shares still hold there."""
    frames = boxed(np.concatenate([scene[:100], ramp(scene[100:], 150, start=70)]), top=46, bottom=46)
    assert bars.detect_active(frames[100:])[1] == 0  # on its own: a gradient at the top, no top bar
    want = [[0, 46, 640, 268]] * 2
    assert bars.detect_active_per_shot(frames, [(0, 100), (100, 200)]) == want
    few = {i: frames[i] for i in (5, 50, 95, 105, 150, 195)}
    assert bars.active_per_shot_from_prints(planes_of(frames), (W, H), [(0, 100), (100, 200)], few) == want


def test_per_shot(scene):
    frames = np.concatenate([boxed(scene[:40], top=46, bottom=46), boxed(scene[40:80], left=80, right=80),
                             scene[80:120], boxed(scene[120:122], top=46, bottom=46)])
    got = bars.detect_active_per_shot(frames, [(0, 40), (40, 80), (80, 120), (120, 122)])
    # the two-frame shot gets what all frames share: nothing here
    assert got == [[0, 46, 640, 268], [80, 0, 480, 360], None, None]


# -- fingerprint planes + a few full frames -------------------------------------------
def planes_of(frames: np.ndarray) -> np.ndarray:
    """What the prepass keeps: every frame area-reduced to 64x36 grey."""
    return fingerprint.area_reduce(frames, (64, 36)).round().astype(np.uint8)


@pytest.mark.parametrize("case", ["letterbox0", "letterbox16", "odd-rounded-inward", "pillarbox", "windowbox",
                                  "grey-noisy", "thin"])
def test_prints_coarse_then_refined(scene, case):
    kw, want = CASES[case]
    frames = boxed(scene, **kw)
    coarse = bars.coarse_active(planes_of(frames), (W, H))
    few = {i: frames[i] for i in (10, 60, 110, 160, 190)}
    assert bars.refine_active(coarse, list(few.values())) == want
    assert bars.active_from_prints(planes_of(frames), (W, H), few) == want
    if case != "thin":  # thinner than a cell: only the full frames see it
        # coarse alone (no full frames, e.g. a 10-bit FG): inside the truth, by at most 4 px a side
        inside(coarse.active(), want)
        assert bars.active_from_prints(planes_of(frames), (W, H)) == coarse.active()


@pytest.mark.parametrize("make", [lambda f: f, dark, lambda f: ramp(f, 120), lambda f: vignette(f, 3)],
                         ids=["plain", "dark", "dark-sky", "vignette"])
def test_prints_no_bars_is_none(scene, make):
    frames = make(scene)
    planes = planes_of(frames)
    assert bars.active_from_prints(planes, (W, H), {i: frames[i] for i in (0, 50, 100, 150)}) is None
    assert bars.active_from_prints(planes, (W, H)) is None


def test_prints_per_shot(scene):
    frames = np.concatenate([boxed(scene[:100], top=46, bottom=46), boxed(scene[100:], left=80, right=80)])
    few = {i: frames[i] for i in (5, 50, 95, 105, 150, 195)}
    got = bars.active_per_shot_from_prints(planes_of(frames), (W, H), [(0, 100), (100, 200)], few)
    assert got == [[0, 46, 640, 268], [80, 0, 480, 360]]


# -- encoded clips: codec noise, ringing at the edge ---------------------------------
ENCODED = {
    "letterbox": (f"scale={W}:268,pad={W}:{H}:0:46:black", [0, 46, 640, 268]),
    "pillarbox": (f"scale=480:{H},pad={W}:{H}:80:0:black", [80, 0, 480, 360]),
    "windowbox": (f"scale=512:288,pad={W}:{H}:64:36:black", [64, 36, 512, 288]),
    # 1.85:1-like, thinner than a fingerprint cell (10 px): only the full frames see it
    "thin": (f"scale={W}:346,pad={W}:{H}:0:6:black", [0, 6, 640, 346]),
    "none": ("null", None),
    "dark": ("eq=brightness=-0.3:contrast=0.35", None),
}


@pytest.mark.parametrize("case", ENCODED)
@pytest.mark.parametrize("source", ["scene", "bunny"])
def test_encoded(request, clip_dir, case, source):
    vf, want = ENCODED[case]
    src = request.getfixturevalue("pair_lossless").bg if source == "scene" else clip_dir / "bunny360.mkv"
    if source == "bunny":
        request.getfixturevalue("bunny")
    out = clip_dir / f"bars-{source}-{case}.mp4"
    if not out.exists():
        ffmpeg("-i", str(src), "-vf", f"{vf},format=yuv420p", "-c:v", "libx264", "-crf", "23", "-preset", "veryfast",
               "-an", str(out))
    frames = luma(out)
    fp = fingerprint.fingerprints(out, frames=len(frames), fps=25, cache=False)
    idx = np.linspace(0, len(frames) - 1, 5).round().astype(int)
    assert bars.active_from_prints(fp.planes, (W, H), {int(i): frames[i] for i in idx}) == want
    assert bars.detect_active(frames) == want
    coarse = bars.active_from_prints(fp.planes, (W, H))
    if want is None or case == "thin":
        assert coarse is None
    else:
        inside(coarse, want)


def inside(got: list[int], want: list[int], slack: int = 4) -> None:
    """``got`` lies inside ``want``, each edge at most ``slack`` px in."""
    (x, y, w, h), (tx, ty, tw, th) = got, want
    assert 0 <= x - tx <= slack and 0 <= y - ty <= slack
    assert 0 <= (tx + tw) - (x + w) <= slack and 0 <= (ty + th) - (y + h) <= slack
