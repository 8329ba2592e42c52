"""Write a ready-to-run ``.vpy`` for an aligned pair.

The script imports this package, opens both inputs, loads the alignment JSON (kept beside
the script, or the one given) and sets video output 0 and, when FG has sound, audio
output 1 (FG's audio, cut/padded to the video's length). vspipe, vspreview and vsedit
open it as is. With ``overlay`` the composite carries FG's outline and a text block per
frame (``filters.annotate``); with ``diff`` video output 2 is the difference view
(``filters.difference``, annotated likewise).
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
                         uncovered={uncovered!r}, match_color={match_color!r})
{overlay}clip.set_output(0)
{diff}
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

_OVERLAY = '''\
# FG's outline and what was matched, per frame (read from the frame props)
clip = filters.annotate(clip, alignment)
'''

_DIFF = '''\
# Output 2: |FG - the BG under it|, amplified (black where they agree):  vspipe -o 2 ...
diff = filters.difference(bg, fg, alignment, canvas={canvas!r}, match_color={match_color!r})
filters.annotate(diff, alignment).set_output(2)
'''


def write_script(out: str | os.PathLike[str], bg: str | os.PathLike[str], fg: str | os.PathLike[str],
                 align_path: str | os.PathLike[str], *, canvas: str = "bg", feather: float = 0.0,
                 keep_bars: bool = False, uncovered: str = "hold", match_color: bool = False, overlay: bool = False,
                 diff: bool = False) -> Path:
    """Write the ``.vpy`` atomically; paths inside are absolute so it runs from anywhere.
    ``canvas``, ``feather``, ``keep_bars``, ``uncovered`` and ``match_color`` are passed to
    :func:`vidkompy_vs.filters.composite`; ``overlay`` annotates output 0, ``diff`` adds
    the difference view as output 2."""
    from .filters import check_options  # (the script would fail on them only when run)

    check_options(canvas, uncovered, feather)
    out = Path(out)
    text = _TEMPLATE.format(
        name=_comment(out.name), bg=str(Path(bg).resolve()), fg=str(Path(fg).resolve()),
        fg_q=_comment(_shell_quote(str(Path(fg).resolve()))), align=str(Path(align_path).resolve()),
        canvas=canvas, feather=float(feather), keep_bars=bool(keep_bars), uncovered=str(uncovered),
        match_color=bool(match_color), overlay=_OVERLAY if overlay else "",
        diff=_DIFF.format(canvas=canvas, match_color=bool(match_color)) if diff else "")
    atomic_write_text(out, text)
    return out


def _comment(s: str) -> str:
    """``s`` fit for a comment line: a file name may hold a line break, and what follows it
    would be code."""
    return "".join(c if c.isprintable() else "?" for c in s)


def _shell_quote(s: str) -> str:
    import shlex

    return shlex.quote(s)
