"""The ``preview`` extra: its vspreview imports and starts with our VapourSynth.

``make setup`` (and so CI) installs the extra; elsewhere the test is skipped when
vspreview is absent, except under CI=true, where its absence is a failure.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("vspreview") is None and os.environ.get("CI") != "true",
    reason="vspreview not installed (pip install -e '.[preview]'; make setup does)")

ENV = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}


def test_vspreview_imports_with_our_vapoursynth():
    code = ("import vapoursynth, vspreview, vspreview.main, vstools; "
            "print(vapoursynth.core.version_number())")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert int(r.stdout.strip().splitlines()[-1]) >= 74
    major, minor = (int(v) for v in version("vsjetpack").split(".")[:2])
    assert (major, minor) < (2, 2), "vsjetpack 2.2 breaks vspreview 0.20 (see pyproject's preview extra)"


def test_vspreview_starts_on_a_script(tmp_path: Path):
    """It opens a script and keeps running (a broken install dies within a second or two)."""
    script = tmp_path / "s.vpy"
    script.write_text("import vapoursynth as vs\n"
                      "vs.core.std.BlankClip(width=320, height=240, length=10, format=vs.YUV420P8)"
                      ".std.SetFrameProps(_Matrix=1, _Transfer=1, _Primaries=1).set_output(0)\n")
    exe = Path(sys.executable).with_name("vspreview")
    p = subprocess.Popen([str(exe), str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ENV,
                         cwd=tmp_path)
    try:
        deadline = time.monotonic() + 12
        while time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.5)
        alive = p.poll() is None
    finally:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    out = p.stdout.read().decode(errors="replace")
    assert alive, f"vspreview exited with {p.returncode}: {out[-2000:]}"
    assert "Traceback" not in out, out[-2000:]
