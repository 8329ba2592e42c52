"""Where outputs go: checked before any work (:func:`check_output`), and written
atomically (a temporary file beside the target, then a rename)."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from .errors import VidkompyError

NAME_MAX = 255  # bytes in one file name (ext4, XFS, btrfs, APFS, NTFS in UTF-16 units)


def _clip_name(name: str, room: int) -> str:
    """``name`` cut to at most ``room`` bytes (UTF-8, whole characters)."""
    b = name.encode("utf-8", "surrogateescape")
    return name if len(b) <= room else b[:room].decode("utf-8", "ignore") or "out"


def temp_beside(path: Path, tail: str) -> Path:
    """A hidden name beside ``path`` ending in ``tail``, within :data:`NAME_MAX` however
    long ``path``'s own name is (a legal name plus a suffix could be one too long)."""
    return path.with_name("." + _clip_name(path.stem, NAME_MAX - 1 - len(os.fsencode(tail))) + tail)


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """One file (a hard link too), or one path once links are followed (also for a file
    not there yet; realpath, unlike resolve(), takes a symlink loop without raising)."""
    pa, pb = Path(a), Path(b)
    try:
        if pa.exists() and pb.exists() and os.path.samefile(pa, pb):
            return True
    except OSError:
        pass
    return os.path.realpath(pa) == os.path.realpath(pb)


def check_output(out: str | os.PathLike[str], inputs: list[str | os.PathLike[str]], *, overwrite: bool) -> Path:
    """Refuse, before any work, to write over an input, over something that is not a
    regular file (a device, a pipe: the rename would replace it), into a missing or
    unwritable folder, under a name the system cannot hold, or over an existing file
    unless ``overwrite``."""
    raw = os.fspath(out)
    o = Path(out)
    if raw.endswith((os.sep, os.altsep or os.sep)):
        raise VidkompyError(f"{raw}: names a folder; give a file name")
    for i in inputs:
        if same_file(o, i):
            raise VidkompyError(f"{o}: output would overwrite an input; choose another name")
    if not o.parent.is_dir():
        raise VidkompyError(f"{o.parent}: folder does not exist")
    if len(os.fsencode(o.name)) > NAME_MAX:
        raise VidkompyError(f"{o.name[:40]}...: file name too long ({len(os.fsencode(o.name))} bytes; "
                            f"at most {NAME_MAX})")
    if o.is_dir():
        raise VidkompyError(f"{o}: is a folder")
    if o.exists() and not stat.S_ISREG(o.stat().st_mode):
        raise VidkompyError(f"{o}: is not a regular file (a device or a pipe); write to a file")
    if os.path.lexists(o) and not overwrite:  # (a dangling or looping link too: the rename replaces it)
        raise VidkompyError(f"{o}: already exists; pass -y to overwrite")
    try:  # (what the write at the end will do: better told now than after the work)
        fd, probe = tempfile.mkstemp(prefix=".vidkompy-", suffix=".tmp", dir=o.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise VidkompyError(f"{o.parent}: cannot write there ({e.strerror or e})") from None
    return o


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` so that readers see the old file or the whole new one."""
    path = Path(path)
    # (mkstemp adds 8 characters between them)
    fd, tmp = tempfile.mkstemp(prefix=f".{_clip_name(path.name, NAME_MAX - 14)}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_save_npy(path: str | os.PathLike[str], array) -> Path:
    """Save a numpy array (no pickle) so a concurrent reader never sees half a file."""
    import numpy as np

    path = Path(path)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
    try:
        np.save(tmp, array, allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
