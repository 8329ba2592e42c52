"""The environment a timed run gets: the package's modules compiled once, as an installed
package has them (``pip install`` writes their bytecode).

Without it a machine that sets ``PYTHONDONTWRITEBYTECODE`` (this project's sandboxes do)
compiles every module of the package from source in every timed run, imports inside
``align()`` included: tens of milliseconds a user never pays. The bytecode goes where
Python keeps it, ``__pycache__`` beside each module (ignored by git); the libraries'
own bytecode is read from where their installation put it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_done: set[Path] = set()


def installed_env(env: dict[str, str], root: Path) -> dict[str, str]:
    """``env`` that lets Python read and write bytecode, the package under ``root``
    compiled first (once per root and run of the benchmark)."""
    out = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    root = root.resolve()
    if root not in _done:
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(root / "vidkompy_vs")], env=out,
                       check=True, stdout=subprocess.DEVNULL)
        _done.add(root)
    return out
