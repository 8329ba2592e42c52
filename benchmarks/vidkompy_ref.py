"""Reference runs of vidkompy 1.2.5 (PyPI), the CLI that vidkompy-vs grows from.

The benchmarks compare vidkompy-vs against the original tool, so this module installs
that exact release in a venv of its own and runs it on a BG/FG pair.

API
---
``ensure_venv() -> Path``
    Creates, on first use, ``.cache/vidkompy-venv`` under the project root (``.cache/`` is
    gitignored) with ``pip install vidkompy==1.2.5`` and returns the path of its Python.
    vidkompy 1.2.5 says ``Requires-Python >=3.10`` (classifiers 3.10-3.12); its dependencies
    are ffmpeg-python, fire, loguru, numba>=0.58, numpy, opencv-contrib-python, rich,
    scikit-image, scipy, soundfile, all plain wheels from PyPI, plus the ``ffmpeg``/``ffprobe``
    binaries on PATH (ffprobe for metadata, ffmpeg to mux the audio). The interpreter is the
    first that works of: pyenv's 3.12.1, 3.11.7, 3.10.13 (``/root/.pyenv/versions``), any
    other pyenv 3.12/3.11/3.10, ``python3.12``/``python3.11``/``python3.10`` on PATH, and
    this interpreter. A marker file records a successful install plus an import check; a
    half-built venv is deleted and rebuilt. A file lock keeps parallel callers from racing.

``run_vidkompy(bg, fg, out, timeout=900, *, engine="full", window=10) -> dict``
    Runs vidkompy's composite of ``fg`` over ``bg`` into ``out`` and returns::

        {"seconds": float,       # wall time of the whole vidkompy process (start-up,
                                 #   imports, probing, both alignments, composing, audio mux)
         "ok": bool,             # exit 0, no exception, frames written, ``out`` non-empty
         "x": int, "y": int,     # top-left of FG on BG that vidkompy composited with
         "scale": float,         # FG scale factor (1.0 unless FG is larger than BG)
         "frame_map": list[int] | None,   # BG frame index used for output frame i
         "error": str | None,
         # extras:
         "fg_map": list[int] | None,      # FG frame index used for output frame i
         "alignment_map": list[int] | None,  # bg_frame_idx of vidkompy's FrameAlignment list
         "offset_seconds": float | None,  # vidkompy's own temporal offset (first pair)
         "spatial_confidence": float | None,   # TM_CCOEFF_NORMED peak
         "temporal_confidence": float | None,  # fwd/bwd agreement score of its tunnel aligner
         "method": str | None,            # temporal engine used ("full"/"mask")
         "frames_written": int | None,
         "seconds_in_main": float | None, # time inside vidkompy.vidkompy.main() alone
         "log_tail": str}                 # last lines of vidkompy's stderr (loguru)

How the values are extracted
----------------------------
vidkompy itself is not modified. A small driver script (``DRIVER`` below) is run with the
venv's Python. It imports vidkompy and, before calling ``vidkompy.vidkompy.main`` (the
function ``python -m vidkompy`` hands to ``fire``) with the CLI's own defaults, wraps three
methods of ``vidkompy.core.alignment_engine.AlignmentEngine`` in memory:

* ``_compose_video(bg_info, fg_info, output_path, spatial, temporal, ...)``: records the
  ``SpatialAlignment`` (``x_offset``, ``y_offset``, ``scale_factor``, ``confidence``) and the
  ``TemporalAlignment`` (``frame_alignments``, ``offset_seconds``, ``confidence``,
  ``method_used``) that the composition is given. These are exactly what vidkompy renders
  with; the same offset is logged by vidkompy as "Spatial alignment result: offset=(x, y)".
* ``_frame_generator(path)``: passes every ``(index, frame)`` through unchanged, remembering
  the index of the frame last decoded from each file.
* ``_overlay_frames(bg, fg, ...)``: before each composite frame is made, records the
  (current FG index, current BG index) of the two generators.

So ``frame_map[i]`` is the BG frame (0-based, in OpenCV decode order, which is presentation
order for these files) really drawn under output frame ``i``, and ``fg_map[i]`` the FG frame
drawn over it. It equals ``alignment_map`` except where vidkompy's sequential reader runs out
of BG frames (it then reuses the last one). vidkompy writes one output frame per FG frame
(at FG fps), so for a FG cut from BG at a fixed offset the truth is
``frame_map[i] == i + offset_frames``. The driver writes its JSON to a file (vidkompy's rich
progress bars use stdout); loguru messages go to stderr, whose tail is kept. Wrapping costs a
dict update per frame, nothing measurable next to vidkompy's work.

What vidkompy 1.2.5 does, and the settings used
-----------------------------------------------
The defaults of ``vidkompy.vidkompy.main`` (the real CLI; the help text in its README, with
``--engine fast|precise|tunnel_*``, is stale: 1.2.5 accepts only ``full`` or ``mask``):
``engine="full"``, ``window=10``, ``drift_interval=10`` (stored, unused by either engine),
``margin=8`` (only for ``--smooth`` edge blending here), ``smooth=False``, ``gpu=False``
(a no-op). Time mode is hard-wired to PRECISE, spatial method to template matching. We use
exactly these defaults: ``engine="full"`` is the documented default and recommended engine
for normal footage, ``mask`` is for letterboxed content.

* Spatial: one frame from the middle of each video (``frame_count // 2`` of each, so when FG
  starts later these are *different* moments), grayscale ``cv2.matchTemplate`` with
  ``TM_CCOEFF_NORMED``, integer pixel offset of the peak; FG is scaled down only if larger
  than BG (no scale search).
* Temporal ("tunnel" engines): decodes every frame of both videos into RAM at 25 % size,
  downsamples again by 0.5 (so 1/8 linear), and for each FG frame searches the BG crop at the
  (scaled) offset for the lowest mean absolute difference within a window of ``window`` BG
  frames forward from the previous match (forward pass) and backward from the end (backward
  pass); the two are merged (0.5/0.5, or 0.7/0.3 favouring forward if they differ by >=5
  frames), forced increasing, and truncated to int. The forward pass starts at BG frame 0 and
  can advance at most ``window - 1`` frames per FG frame, so a large start offset is caught
  up over the first few FG frames. Bug in 1.2.5, kept as is: the spatial offset is scaled by
  0.25 for the 25 % frames but not again for the extra 0.5 downsampling, so every temporal
  comparison looks at the wrong BG region (at about twice the offset). Its temporal map is
  therefore poor whenever the FG is not at (0, 0); this is what the tool really outputs.
  (On the sample pair below, its map is exact for 3/107 frames; calling its tunnel aligner
  by hand with the true 1/8-scale offset would give 45/107, mean error 1.9 frames, but with
  its own (309, 93) correctly scaled still only 4/107: both faults matter.)
* Audio is not used for alignment and not needed. Output audio is FG's if it has any, else
  BG's shifted by the offset, else none; the video is written by OpenCV (``mp4v``) to a temp
  file and muxed with ffmpeg (``-c copy -acodec aac -shortest``).
* Spatial alignment is computed twice (once by the engine, once inside the temporal aligner);
  both use the same frames, so they agree. ``seconds`` includes both, as the CLI does.

Caveats: the output video is MPEG-4 part 2 (OpenCV ``mp4v``) at FG fps and BG size, with
FG audio, whatever the inputs are. ``seconds`` includes interpreter start-up and imports (about 1-2 s), as running the
CLI would; ``seconds_in_main`` excludes them. vidkompy keeps all frames of both videos in
memory (at 1/16 area), so very long clips cost RAM. TMPDIR of the child is pointed at a
scratch folder next to ``out`` so that vidkompy's final ``Path.rename`` of its temp file
cannot fail across file systems.

Run ``python benchmarks/vidkompy_ref.py`` to build a sample pair from real footage (BG = the
1280x720 25 fps Big Buck Bunny clip from ``footage.py``, FG = its 640x360 crop at x=311, y=97
starting 1 s = 25 frames later) and print the dict with the error against that truth.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache"
VENV = CACHE / "vidkompy-venv"
VERSION = "1.2.5"
MARKER = VENV / f".vidkompy-{VERSION}-ok"

PYENV = Path("/root/.pyenv/versions")
PREFERRED = ("3.12.1", "3.11.7", "3.10.13")

DRIVER = r'''
import json, sys, time, traceback
bg, fg, out, result_path, engine, window = sys.argv[1:7]
res = {"ok": False, "error": None}
try:
    from vidkompy.core import alignment_engine as ae
    from vidkompy.vidkompy import main

    cap = {"last": {}, "pairs": []}
    Engine = ae.AlignmentEngine
    orig_compose, orig_gen, orig_overlay = (
        Engine._compose_video, Engine._frame_generator, Engine._overlay_frames)

    def _compose_video(self, bg_info, fg_info, output_path, spatial, temporal, *a, **k):
        cap["spatial"], cap["temporal"] = spatial, temporal
        cap["bg_path"], cap["fg_path"] = bg_info.path, fg_info.path
        return orig_compose(self, bg_info, fg_info, output_path, spatial, temporal, *a, **k)

    def _frame_generator(self, video_path):
        for idx, frame in orig_gen(self, video_path):
            cap["last"][video_path] = idx
            yield idx, frame

    def _overlay_frames(self, bg_frame, fg_frame, *a, **k):
        cap["pairs"].append((cap["last"].get(cap.get("fg_path"), -1),
                             cap["last"].get(cap.get("bg_path"), -1)))
        return orig_overlay(self, bg_frame, fg_frame, *a, **k)

    Engine._compose_video = _compose_video
    Engine._frame_generator = _frame_generator
    Engine._overlay_frames = _overlay_frames

    t0 = time.perf_counter()
    main(bg, fg, output=out, engine=engine, window=int(window))
    res["seconds_in_main"] = time.perf_counter() - t0

    sp, tm = cap.get("spatial"), cap.get("temporal")
    if sp is not None:
        res.update(x=int(sp.x_offset), y=int(sp.y_offset), scale=float(sp.scale_factor),
                   spatial_confidence=float(sp.confidence))
    if tm is not None:
        res.update(alignment_map=[int(a.bg_frame_idx) for a in tm.frame_alignments],
                   offset_seconds=float(tm.offset_seconds),
                   temporal_confidence=float(tm.confidence), method=tm.method_used)
    pairs = cap["pairs"]
    res["frames_written"] = len(pairs)
    res["fg_map"] = [p[0] for p in pairs] if pairs else None
    res["frame_map"] = [p[1] for p in pairs] if pairs else None
    if sp is None or tm is None:
        res["error"] = "vidkompy returned before composing (see log_tail)"
    elif not pairs:
        res["error"] = "vidkompy wrote no frames (see log_tail)"
    else:
        res["ok"] = True
except BaseException as e:
    res["error"] = f"{type(e).__name__}: {e}"
    traceback.print_exc()
with open(result_path, "w") as f:
    json.dump(res, f)
'''


def _candidates() -> list[str]:
    """Interpreters to try for the venv, best first."""
    cands = [PYENV / v / "bin" / f"python{v.rsplit('.', 1)[0]}" for v in PREFERRED]
    for minor in ("3.12", "3.11", "3.10"):
        cands += sorted(PYENV.glob(f"{minor}.*/bin/python{minor}"), reverse=True)
    out = [str(p) for p in cands if p.is_file() and os.access(p, os.X_OK)]
    out += [w for m in ("3.12", "3.11", "3.10") if (w := shutil.which(f"python{m}"))]
    out.append(sys.executable)
    return list(dict.fromkeys(out))


def _venv_python() -> Path:
    return VENV / "bin" / "python"


def _works(py: Path) -> bool:
    check = (f"import importlib.metadata as m, vidkompy.vidkompy, cv2, numba; "
             f"assert m.version('vidkompy') == '{VERSION}'")
    return subprocess.run([str(py), "-c", check], capture_output=True).returncode == 0


def ensure_venv() -> Path:
    """Venv with vidkompy 1.2.5, built on first use; returns the path of its Python."""
    py = _venv_python()
    if MARKER.exists() and py.exists():
        return py
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "vidkompy-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if MARKER.exists() and py.exists():
            return py
        errors = []
        for interp in _candidates():
            shutil.rmtree(VENV, ignore_errors=True)
            steps = ([interp, "-m", "venv", str(VENV)],
                     [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                      f"vidkompy=={VERSION}"])
            for cmd in steps:
                r = subprocess.run(cmd, capture_output=True, text=True)
                if r.returncode:
                    errors.append(f"{interp}: {' '.join(cmd[-2:])}: {r.stderr.strip()[-500:]}")
                    break
            else:
                if _works(py):
                    MARKER.write_text(f"{interp}\n")
                    return py
                errors.append(f"{interp}: installed but `import vidkompy` failed")
        shutil.rmtree(VENV, ignore_errors=True)
        raise RuntimeError("could not install vidkompy=={}:\n{}".format(VERSION, "\n".join(errors)))


def run_vidkompy(bg: Path, fg: Path, out: Path, timeout: float = 900, *,
                 engine: str = "full", window: int = 10) -> dict:
    """Composite ``fg`` over ``bg`` into ``out`` with vidkompy 1.2.5; see the module doc."""
    bg, fg, out = Path(bg).resolve(), Path(fg).resolve(), Path(out).resolve()
    res: dict = {"seconds": 0.0, "ok": False, "x": None, "y": None, "scale": None,
                 "frame_map": None, "error": None}
    try:
        py = ensure_venv()
    except Exception as e:  # noqa: BLE001 - reported, not raised
        res["error"] = f"venv: {e}"
        return res
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        out.unlink()
    scratch = Path(tempfile.mkdtemp(prefix=".vidkompy-", dir=out.parent))
    result_path = scratch / "result.json"
    env = dict(os.environ, TMPDIR=str(scratch), PYTHONUNBUFFERED="1", NO_COLOR="1",
               TERM="dumb", COLUMNS="120")
    cmd = [str(py), "-c", DRIVER, str(bg), str(fg), str(out), str(result_path),
           engine, str(window)]
    t0 = time.perf_counter()
    # own session, so that a timeout also ends the ffmpeg/ffprobe children
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         errors="replace", env=env, cwd=scratch, start_new_session=True)
    try:
        _, stderr = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        _, stderr = p.communicate()
        rc = None
    res["seconds"] = time.perf_counter() - t0
    res["log_tail"] = "\n".join(stderr.strip().splitlines()[-25:])
    try:
        if result_path.exists():
            res.update(json.loads(result_path.read_text()))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if rc is None:
        res["ok"], res["error"] = False, f"timed out after {timeout:g} s"
    elif rc != 0 and not res.get("error"):
        res["ok"], res["error"] = False, f"exit status {rc}"
    if res["ok"] and not (out.exists() and out.stat().st_size > 0):
        res["ok"], res["error"] = False, "no output file"
    return res


def sample_pair(x: int = 311, y: int = 97, w: int = 640, h: int = 360,
                start: float = 1.0) -> tuple[Path, Path]:
    """(BG, FG): the Big Buck Bunny clip and its w x h crop at (x, y) from ``start`` s on.

    The crop is taken in 4:4:4 so that it is exact at odd x/y (ffmpeg's crop filter rounds
    offsets to the chroma grid of 4:2:0), then brought back to 4:2:0 H.264; audio is kept.
    """
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from ff import FFMPEG
    from footage import footage

    bg = footage("bigbuckbunny.mp4")
    fg = CACHE / "vidkompy-ref" / f"bbb_crop{w}x{h}_{x}_{y}_from{start:g}s.mp4"
    if not fg.exists():
        fg.parent.mkdir(parents=True, exist_ok=True)
        tmp = fg.with_suffix(".tmp.mp4")
        subprocess.run([FFMPEG, "-v", "error", "-y", "-ss", f"{start}", "-i", str(bg),
                        "-vf", f"format=yuv444p,crop={w}:{h}:{x}:{y},format=yuv420p",
                        "-c:v", "libx264", "-crf", "16", "-preset", "fast",
                        "-c:a", "aac", str(tmp)], check=True)
        tmp.rename(fg)
    return bg, fg


if __name__ == "__main__":
    X, Y, START, FPS = 311, 97, 1.0, 25
    bg, fg = sample_pair(X, Y, start=START)
    out = CACHE / "vidkompy-ref" / "vidkompy_out.mp4"
    print(f"BG {bg}\nFG {fg}\nvenv python {ensure_venv()}", flush=True)
    r = run_vidkompy(bg, fg, out)
    short = {k: (v if not isinstance(v, list) or len(v) < 12 else f"[{len(v)} items] {v[:40]}")
             for k, v in r.items() if k != "log_tail"}
    print(json.dumps(short, indent=1))
    print("log tail:\n" + r.get("log_tail", ""))
    off = round(START * FPS)
    if r["frame_map"]:
        errs = [b - (f + off) for f, b in zip(r["fg_map"], r["frame_map"])]
        exact = sum(e == 0 for e in errs)
        print(f"truth: x={X} y={Y} offset={off} frames; found x={r['x']} y={r['y']} "
              f"offset_seconds={r.get('offset_seconds')}")
        print(f"frame_map - truth: exact {exact}/{len(errs)}, "
              f"mean |err| {sum(map(abs, errs)) / len(errs):.2f}, max |err| {max(map(abs, errs))}")
        print("errors per output frame:", errs)
