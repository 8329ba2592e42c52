"""Write a ready-to-run ``.vpy`` for an aligned pair.

The script imports this package, opens both inputs, loads the alignment JSON (kept beside
the script, or the one given) and sets video output 0 and, when FG has sound, audio
output 1 (FG's audio, cut/padded to the video's length). vspipe, vspreview and vsedit
open it as is.
"""

from __future__ import annotations

import os
from pathlib import Path

from .fsutil import atomic_write_text

_TEMPLATE = '''\
# Made by vidkompy-vs. Render:  vspipe -c y4m {name} - | ffmpeg -i - out.mkv
# With FG's sound:              vspipe -c y4m {name} - | ffmpeg -i - -i {fg_q} -map 0:v -map 1:a? -shortest out.mkv
# Preview:                      vspreview {name}
import vapoursynth as vs

from vidkompy_vs import filters, sources
from vidkompy_vs.alignment import Alignment

BG = {bg!r}
FG = {fg!r}
ALIGN = {align!r}

bg = sources.open_video(BG)
fg = sources.open_video(FG)
alignment = Alignment.load(ALIGN)
clip = filters.composite(bg, fg, alignment, canvas={canvas!r}, feather={feather!r}, keep_bars={keep_bars!r},
                         uncovered={uncovered!r})
clip.set_output(0)

audio = sources.open_audio(FG)
if audio is not None:
    # Exactly as long as the video: cut, or pad with silence.
    need = round(clip.num_frames * clip.fps_den / clip.fps_num * audio.sample_rate)
    if audio.num_samples >= need:
        audio = audio[:need]
    else:
        audio = audio + vs.core.std.BlankAudio(audio, length=need - audio.num_samples)
    audio.set_output(1)
'''


def write_script(out: str | os.PathLike[str], bg: str | os.PathLike[str], fg: str | os.PathLike[str],
                 align_path: str | os.PathLike[str], *, canvas: str = "bg", feather: float = 0.0,
                 keep_bars: bool = False, uncovered: str = "hold") -> Path:
    """Write the ``.vpy`` atomically; paths inside are absolute so it runs from anywhere.
    ``canvas``, ``feather``, ``keep_bars`` and ``uncovered`` are passed to
    :func:`vidkompy_vs.filters.composite`."""
    out = Path(out)
    text = _TEMPLATE.format(
        name=out.name, bg=str(Path(bg).resolve()), fg=str(Path(fg).resolve()),
        fg_q=_shell_quote(str(Path(fg).resolve())), align=str(Path(align_path).resolve()),
        canvas=canvas, feather=float(feather), keep_bars=bool(keep_bars), uncovered=str(uncovered))
    atomic_write_text(out, text)
    return out


def _shell_quote(s: str) -> str:
    import shlex

    return shlex.quote(s)
