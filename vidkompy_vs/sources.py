"""Open and probe inputs: VapourSynth video/audio nodes plus plain facts about a file.

Video comes from L-SMASH Works (``lsmas.LWLibavSource``): it indexes by demuxing only
(hundredths of a second where BestSource decodes the whole file first) and is
frame-exact under random access (see ``benchmarks/sources.py``). Audio comes from
BestSource (``bs.AudioSource``): sample-exact, where LWLibav adds samples at the end.
Index files go to the cache folder, never beside the user's files.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import vapoursynth as vs

from .cache import cache_dir, file_key
from .decode import AudioTrack, VideoTrack, discarded_packets, tracks
from .errors import VidkompyError

core = vs.core


@dataclass(frozen=True)
class Probe:
    """What we know about one input file."""

    path: str
    width: int
    height: int
    fps_num: int
    fps_den: int
    frames: int
    pix_fmt: str
    bits: int
    has_audio: bool
    audio_rate: int = 0
    audio_channels: int = 0
    rotation: int = 0  # display rotation flag (degrees); the frame server ignores it
    vfr: bool = False  # variable frame rate, read at the constant rate ``fps``
    sar: Fraction = Fraction(1)  # sample (pixel) aspect ratio

    @property
    def fps(self) -> Fraction:
        return Fraction(self.fps_num, self.fps_den)

    @property
    def duration(self) -> float:
        """Seconds, from frame count and frame rate (what the frame server plays)."""
        return self.frames * self.fps_den / self.fps_num


_quiet_lock = threading.Lock()
_open_lock = threading.Lock()  # LWLibavSource calls, one at a time (see open_video)
_quiet_depth = 0
_saved_fd: int | None = None


@contextlib.contextmanager
def _quiet_stderr():
    """Silence C-level writes to stderr (fd 2) for the duration.

    fd 2 is process-wide and inputs are opened from several threads at once, so the
    first caller in redirects and the last one out restores (a plain save/restore per
    call would let overlapping calls leave stderr pointing at /dev/null for good).
    """
    global _quiet_depth, _saved_fd
    with _quiet_lock:
        if _quiet_depth == 0:
            try:
                _saved_fd = os.dup(2)
                with open(os.devnull, "wb") as null:
                    os.dup2(null.fileno(), 2)
            except OSError:
                _saved_fd = None
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0 and _saved_fd is not None:
                os.dup2(_saved_fd, 2)
                os.close(_saved_fd)
                _saved_fd = None


def _check_file(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if not p.exists():
        raise VidkompyError(f"{p}: no such file")
    if not p.is_file():
        raise VidkompyError(f"{p}: not a file")
    return p


def _streams(path: Path) -> tuple[VideoTrack | None, AudioTrack | None]:
    t = tracks(path)
    return t.video, t.audio


def _check_subsampling(p: Path, video: VideoTrack) -> None:
    """An odd width or height under 4:2:0/4:2:2 chroma makes VapourSynth abort the whole
    process (no exception to catch): refuse it with a message first."""
    fmt = video.pix_fmt
    w, h = video.width, video.height
    sx = 2 if any(t in fmt for t in ("420", "422", "411", "410", "nv12", "nv21", "nv16", "yuyv", "uyvy",
                                      "p010", "p016")) else 1
    sx = 4 if ("411" in fmt or "410" in fmt) else sx
    sy = 4 if "410" in fmt else 2 if any(t in fmt for t in ("420", "nv12", "nv21", "p010", "p016")) else 1
    if (w % sx) or (h % sy):
        raise VidkompyError(f"{p}: {w}x{h} {fmt} has an odd size for its chroma subsampling, which the "
                            f"frame server cannot open; re-encode it to an even size first (e.g. ffmpeg -i IN "
                            f"-vf crop=trunc(iw/{sx})*{sx}:trunc(ih/{sy})*{sy} OUT)")


_STANDARD_RATES = [(24000, 1001), (24, 1), (25, 1), (30000, 1001), (30, 1), (48, 1), (50, 1), (60000, 1001),
                   (60, 1), (100, 1), (120, 1)]


def cfr_rate(video: VideoTrack) -> tuple[int, int] | None:
    """The constant rate a variable-frame-rate stream is read at, ``None`` for CFR.

    Phones record at a variable rate: frames come when they come. Read as they are, the
    frame server would play them at a nominal rate, too fast, and FG (the master) would
    drift away from its own sound. Such a stream (average rate off its nominal rate by
    more than 0.5 %) is read at a constant rate instead, frames repeated or dropped by
    their timestamps: its nominal rate when the average is up to 10 % below it (dropped
    frames), else the nearest standard rate to its average (within 3 %), else nominal.
    """
    r, avg = video.rate, video.avg_rate
    if r is None or avg is None or abs(float(avg / r) - 1.0) <= 0.005:
        return None
    if float(r) <= 240 and 0.9 <= float(avg / r) <= 1.0:
        # a nominal rate a little above the average: frames dropped here and there
        return r.numerator, r.denominator
    best = min(_STANDARD_RATES, key=lambda q: abs(q[0] / q[1] / float(avg) - 1.0))
    if abs(best[0] / best[1] / float(avg) - 1.0) <= 0.03:
        return best
    return (r.numerator, r.denominator) if float(r) <= 240 else None


def open_video(path: str | os.PathLike[str]) -> vs.VideoNode:
    """Open the first video stream of ``path`` as a frame-exact VapourSynth clip
    (variable frame rate streams at a constant rate: see :func:`cfr_rate`)."""
    p = _check_file(path)
    video, _ = _streams(p)
    if video is None:
        raise VidkompyError(f"{p}: has no video stream")
    _check_subsampling(p, video)
    index = cache_dir("lwi") / f"{file_key(p)}.lwi"
    cfr = cfr_rate(video)
    kw = {"fpsnum": cfr[0], "fpsden": cfr[1]} if cfr else {}
    try:
        # LWLibav prints "Creating lwi index file NN%" on every new file. One open at a
        # time: two LWLibavSource calls at the same instant (BG's and FG's probes, once
        # nothing staggered them) took the process down with a segfault inside LWLibav in
        # the suite; an index build is a demux only, so little is lost.
        with _open_lock, _quiet_stderr():
            clip = core.lsmas.LWLibavSource(str(p), cachefile=str(index), ff_loglevel=-8, **kw)
    except vs.Error as e:
        raise VidkompyError(f"{p}: cannot decode video ({str(e).splitlines()[0]})") from None
    if clip.num_frames < 1:
        raise VidkompyError(f"{p}: video stream has no frames")
    if clip.format.color_family == vs.RGB:
        # (an RGB stream: a GIF, PNGs, libx264rgb, a screen capture) as 4:4:4 YUV at its
        # own depth, BT.709, as every other input is: the analysis reads luma, and y4m,
        # the render's pipe, carries only YUV and grey
        clip = core.resize.Point(clip, format=clip.format.replace(color_family=vs.YUV, subsampling_w=0,
                                                                  subsampling_h=0), matrix_s="709")
    key = (str(p), p.stat().st_mtime_ns)
    if key not in _HIDDEN:
        _HIDDEN[key] = _hidden_frames(clip, video, str(p))
    hidden = _HIDDEN[key]
    return clip[hidden:] if hidden else clip


_HIDDEN: dict[tuple[str, int], int] = {}


def _hidden_frames(clip: vs.VideoNode, video: VideoTrack, path: str) -> int:
    """Frames an MP4/MOV edit list hides at the start, which LWLibav shows anyway.

    A stream copied from a cut between keyframes keeps the frames from the keyframe on
    and an edit list that hides them: players and ffmpeg start at the cut, LWLibav shows
    the hidden slots as repeats of the first visible frame. They are dropped when the
    container's timeline is that many frames shorter than the clip, the demuxer flags
    that many packets as discarded (the edit list itself), and the clip's first frames
    are indeed one picture repeated.
    """
    dur, stored = video.duration or 0.0, video.stored
    # the container holds exactly the frames the clip shows (not a constant-rate reading
    # of a variable one), and its timeline is shorter: an edit list cut them
    if dur <= 0 or stored != clip.num_frames:
        return 0
    hidden = clip.num_frames - int(round(dur * float(clip.fps)))
    if hidden < 2 or hidden >= min(clip.num_frames, HIDDEN_MAX):
        return 0
    # the edit list itself: the demuxer flags the packets it hides as discarded
    if discarded_packets(path, hidden + 8) != hidden:
        return 0
    import numpy as np

    first = frame_arrays(clip, [0], gray=True)[0]
    for i in range(1, hidden + 1):
        if not np.array_equal(first, frame_arrays(clip, [i], gray=True)[0]):
            return 0
    return hidden


HIDDEN_MAX = 300  # frames an edit list may hide at the start for us to drop them


def has_audio(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` has an audio stream (False for anything FFmpeg cannot read)."""
    try:
        return _streams(_check_file(path))[1] is not None
    except VidkompyError:
        return False


def audio_lead(path: str | os.PathLike[str]) -> float:
    """Seconds from the first video frame to the first audio sample of ``path`` (its
    streams' start times; negative when the sound starts first). Frame 0 is time 0 of
    every map, so decoded audio is shifted by this much to line up with the frames."""
    p = _check_file(path)
    video, audio = _streams(p)
    if video is None or audio is None:
        return 0.0
    return (audio.start or 0.0) - (video.start or 0.0)


def video_start(path: str | os.PathLike[str]) -> float | None:
    """Start time (s) of ``path``'s video stream in its container's timeline, ``None``
    when the container gives none: frame ``n`` of a constant-rate input is at ``start + n / fps``."""
    video, _ = _streams(_check_file(path))
    return None if video is None else video.start


def open_audio(path: str | os.PathLike[str]) -> vs.AudioNode | None:
    """Open the first audio stream of ``path``, or return ``None`` when it has none."""
    p = _check_file(path)
    _, audio = _streams(p)
    if audio is None:
        return None
    try:
        # cachemode 4 = always write the index at the absolute path prefix given
        prefix = cache_dir("bsindex") / file_key(p)
        return core.bs.AudioSource(str(p), cachemode=4, cachepath=str(prefix))
    except vs.Error as e:
        raise VidkompyError(f"{p}: cannot decode audio ({str(e).splitlines()[0]})") from None


def probe(path: str | os.PathLike[str]) -> Probe:
    """Facts about ``path``; raises :class:`VidkompyError` for anything that is not a video."""
    return probe_clip(path)[0]


def probe_clip(path: str | os.PathLike[str]) -> tuple[Probe, vs.VideoNode]:
    """:func:`probe` and the clip :func:`open_video` gives, which it opened to look."""
    p = _check_file(path)
    video, audio = _streams(p)
    if video is None:
        raise VidkompyError(f"{p}: has no video stream")
    clip = open_video(p)
    fmt = clip.format
    if clip.fps.numerator == 0:
        raise VidkompyError(f"{p}: variable frame rate is not supported; convert to constant fps first")
    if clip.num_frames < 2:
        # a picture (PNG, JPEG) or a one-frame clip: nothing to retime and no motion to
        # match; the engines would fail on it in ways that say nothing to the user
        kind = "a still image" if video.codec in _IMAGE_CODECS else "a single frame"
        raise VidkompyError(f"{p}: is {kind}, not a video; make a clip of it first, e.g. "
                            f"ffmpeg -loop 1 -i {p.name} -t 10 -r 25 -pix_fmt yuv420p still.mp4")
    return (Probe(
        path=str(p),
        width=clip.width,
        height=clip.height,
        fps_num=clip.fps.numerator,
        fps_den=clip.fps.denominator,
        frames=clip.num_frames,
        pix_fmt=video.pix_fmt or (fmt.name if fmt else "unknown"),
        bits=fmt.bits_per_sample if fmt else 8,
        has_audio=audio is not None,
        audio_rate=audio.rate if audio else 0,
        audio_channels=audio.channels if audio else 0,
        rotation=video.rotation,
        vfr=cfr_rate(video) is not None,
        sar=video.sar,
    ), clip)


_IMAGE_CODECS = {"png", "mjpeg", "jpegls", "bmp", "tiff", "webp", "gif", "apng", "jpeg2000", "qoi", "ppm", "pgm",
                 "exr", "dpx", "targa", "sgi"}


def frame_arrays(clip: vs.VideoNode, indices: list[int] | range, *, gray: bool = False,
                 width: int | None = None, height: int | None = None) -> list:
    """Frames ``indices`` of ``clip`` as numpy arrays: BGR uint8 (H, W, 3), or grey (H, W).

    Converts with zimg (BT.709 unless the frame says otherwise) and optionally resizes;
    only what is asked for leaves the frame server.
    """
    import numpy as np

    kw: dict = {}
    if width or height:
        kw = {"width": width or clip.width, "height": height or clip.height}
    matrix = "709" if clip.format.color_family == vs.YUV else None
    if gray:
        node = core.resize.Bilinear(clip, format=vs.GRAY8, matrix_in_s=matrix, **kw) \
            if clip.format.color_family != vs.GRAY else core.resize.Bilinear(clip, format=vs.GRAY8, **kw)
    else:
        node = core.resize.Bilinear(clip, format=vs.RGB24, matrix_in_s=matrix, **kw)
    out = []
    for n in indices:
        f = node.get_frame(int(n))
        if gray:
            out.append(np.array(f[0], copy=True))
        else:
            # OpenCV wants BGR, interleaved
            out.append(np.ascontiguousarray(np.stack([np.asarray(f[2]), np.asarray(f[1]), np.asarray(f[0])], axis=-1)))
    return out
