"""Structure benchmark (issue 10): shots, edits in the time map, bars and moving framing.

Every case is made from real footage (``footage.py``) with exact truth by construction.
A *reel* is a list of shots, each a run of frames of one sample clip through its own
crop/flip/scale/pad (so no two shots share a picture); its frames, numbered through the
shots, are the *master* frames. A case says which master frame each BG frame shows
(``b``) and each FG frame shows (``f``), in any order, and where FG sits in BG on every
FG frame (``place``: FG scaled by ``scale`` has its top-left at (x, y) in BG pixels) and
FG's picture area (``active``, FG pixels, when FG has bars). FG is cut from the master
frame at that place (an exact slice, area-downscaled, or Lanczos-resampled at a
sub-pixel place); BG is the master frame (with a "regenerated look" where asked).

Truth per FG frame: the BG frames showing the same master frame, plus every BG frame
whose decoded picture is pixel-identical to one of those (``temporal.truth_sets``);
FG frames whose master frame BG lacks are *uncovered*, except in the rule-6 cases
(issue 10, item 6: a 60 fps FG over a 24 fps BG, a BG ramp that skips frames), where
such a frame is acceptable on the BG frame of the same scene showing the nearest master
frame (nearest content), on a tie the one nearest in time. Content is counted in master
frames, a frame the clip repeats (differing by encoder noise only) being the same content,
and a scene is a shot split at cuts inside its clip (see ``SAME_PICTURE``, ``CUT_STEP``).

Cases: ``insert`` (2.4 s of another shot inserted in BG), ``missing`` (BG lacks 1.2 s
of a shot), ``reorder`` (BG shows the shots in another order), ``panscan`` (a 4:3
window that jumps at each shot change, downscaled x0.75), ``letterbox`` (a 2.39:1
picture with bars baked into a 1280x720 FG over a 1080p open-matte BG with a regenerated
look), ``pan`` (a window panning 36 px across bikes, easing in and out between still
ends), ``pan_edge`` (panning from FG's first frame to its last), ``r6_fg60_bg24`` and ``r6_ramp``.
The fps-change and ramp cases of ``temporal.py`` (``fg60_bg24`` ...) are measured there:
their FG repeats master frames that BG has (every FG frame's source frame is in BG), so
rule 6 never applies to them; the ``r6_*`` cases here are the ones where it does.

Columns: exact % of covered FG frames on an acceptable BG frame, max frame error (to
the nearest acceptable BG frame), placement error per covered FG frame (the worst of
FG's four footprint corners, BG px: max and median), uncovered FG frames flagged
correctly / true / falsely flagged, shots found / true (and true shot boundaries found
within 1 frame), active-area error (FG px, worst edge, any frame), align wall time, the
time ``ffmpeg -i X -f null -`` takes to decode both inputs (same run) and their ratio,
peak memory of the align process tree. Every align runs in a subprocess with a fresh
cache; a crash or fallback is printed, never fatal. For ``letterbox`` and ``panscan``
the composite (``filters.composite``, read through VapourSynth) is measured too, with
the found and with the true alignment (luma PSNR; see :func:`composite_figures`).

``--nodes``: every case a second time with its files opened as VapourSynth nodes (as
``temporal.py --nodes``), a second table, and whether map and placement equal the file path's.

    .venv/bin/python benchmarks/structure.py [--cases a,b] [--timeout S] [--list] [--nodes]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import temporal  # noqa: E402
from ff import FFMPEG  # noqa: E402
from footage import footage  # noqa: E402
from spatial import _degrade, _Writer  # noqa: E402

CACHE = ROOT / ".cache" / "bench-structure"
VERSION = 2  # bump when case construction changes (cached files are rebuilt)


# -- reels -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Shot:
    """``n`` frames of ``clip`` (a footage name or a path) from frame ``start``, through
    the ffmpeg filter ``vf``, which must give the reel's size."""

    clip: str
    start: int
    n: int
    vf: str


# Rule 6's "nearest content" is counted in master frames, with two facts of the footage:
# some clips repeat a frame (the next differs by its encoder's noise only, well under a
# grey level on average): one picture, so the same content; and some clips hold a cut
# (the next frame differs by tens of grey levels, as much as between two shots), across
# which no frame is near content of another.
SAME_PICTURE = 0.1  # mean |difference| to the next master frame below which it repeats it
CUT_STEP = 40.0  # ... above which there is a cut between them


class Reel:
    """Shots joined into one master sequence; frame ``k`` as BGR uint8 (rendered once per
    shot into a raw file under ``cache`` and read back through a memory map)."""

    def __init__(self, shots: list[Shot], size: tuple[int, int], cache: Path = CACHE):
        self.shots, self.size, self.cache = list(shots), size, cache
        self.starts = np.cumsum([0] + [s.n for s in self.shots])
        self._maps: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return int(self.starts[-1])

    def shot_of(self, k: np.ndarray | int) -> np.ndarray:
        return np.searchsorted(self.starts, k, side="right") - 1

    def frames(self, i: int) -> list[int]:
        """Master frame numbers of shot ``i``."""
        return list(range(int(self.starts[i]), int(self.starts[i + 1])))

    def steps(self) -> np.ndarray:
        """(len - 1,) mean absolute difference (0-255, BGR) from each master frame to the next."""
        if not hasattr(self, "_steps"):
            self._steps = np.array([np.abs(self.frame(k).astype(np.int16) - self.frame(k + 1)).mean()
                                    for k in range(len(self) - 1)])
        return self._steps

    def content(self, k: np.ndarray | int) -> np.ndarray:
        """Content number of master frame ``k``: master frames that repeat the one before
        (:data:`SAME_PICTURE`) share one; otherwise it counts up by one per frame."""
        return np.concatenate([[0], np.cumsum(self.steps() >= SAME_PICTURE)])[k]

    def scene_of(self, k: np.ndarray | int) -> np.ndarray:
        """Scene of master frame ``k``: its shot, split further at cuts inside a clip
        (:data:`CUT_STEP`): across a cut no frame is "near content" of another."""
        new = (self.steps() > CUT_STEP) | np.isin(np.arange(1, len(self)), self.starts[1:-1])
        return np.concatenate([[0], np.cumsum(new)])[k]

    def frame(self, k: int) -> np.ndarray:
        i = int(self.shot_of(k))
        if i not in self._maps:
            self._maps[i] = self._render(self.shots[i])
        return self._maps[i][k - int(self.starts[i])]

    def _render(self, s: Shot) -> np.ndarray:
        w, h = self.size
        src = Path(s.clip) if os.sep in s.clip else footage(s.clip)
        key = hashlib.sha1(repr((VERSION, str(src), s, self.size)).encode()).hexdigest()[:12]
        out = self.cache / "shots" / f"{Path(s.clip).stem}-{key}.bgr"
        if not out.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            vf = f"trim=start_frame={s.start}:end_frame={s.start + s.n},setpts=PTS-STARTPTS,{s.vf},format=bgr24"
            raw = subprocess.run([FFMPEG, "-v", "error", "-i", str(src), "-vf", vf, "-f", "rawvideo", "-"],
                                 capture_output=True, check=True).stdout
            if len(raw) != s.n * w * h * 3:
                raise RuntimeError(f"{s}: got {len(raw) / (w * h * 3):.2f} frames of {w}x{h}, wanted {s.n}")
            tmp = out.with_suffix(".tmp")
            tmp.write_bytes(raw)
            tmp.rename(out)
        return np.memmap(out, np.uint8, "r", shape=(s.n, h, w, 3))


# -- cases -------------------------------------------------------------------------------
@dataclass
class Case:
    name: str
    what: str
    reel: Reel
    b: np.ndarray  # master frame per BG frame
    f: np.ndarray  # master frame per FG frame
    place: np.ndarray  # per FG frame [x, y, scale]: FG scaled by scale has its top-left at (x, y) in BG px
    fg_size: tuple[int, int]
    active: tuple[int, int, int, int] | None = None  # FG's picture area [x, y, w, h] (FG px); None: all
    bg_fps: int = 25
    fg_fps: int = 25
    bg_look: bool = False  # a regenerated look on BG (colour, gamma, blur, noise; CRF 23)
    rule6: bool = False  # FG frames BG lacks are acceptable on the nearest content (issue 10, item 6)
    bpos: np.ndarray | None = None  # continuous master position per BG frame (rule-6 ties)
    fpos: np.ndarray | None = None  # ... per FG frame
    composite: str = ""  # "whole" (letterbox) or "region" (panscan): measure the composite
    extra: dict = field(default_factory=dict)  # temporal.truth_sets reads it

    def __post_init__(self) -> None:
        self.b, self.f = np.asarray(self.b, np.int64), np.asarray(self.f, np.int64)
        self.place = np.asarray(self.place, np.float64).reshape(-1, 3)
        if len(self.place) == 1:
            self.place = np.repeat(self.place, len(self.f), axis=0)
        assert len(self.place) == len(self.f), (self.name, len(self.place), len(self.f))
        assert self.b.max() < len(self.reel) and self.f.max() < len(self.reel), self.name

    def fg_shots(self) -> list[tuple[int, int]]:
        """The true FG shots: (start, end) FG frame runs from one reel shot, in order."""
        sid = self.reel.shot_of(self.f)
        cuts = [0] + [i for i in range(1, len(sid)) if sid[i] != sid[i - 1] or self.f[i] < self.f[i - 1]]
        return list(zip(cuts, cuts[1:] + [len(sid)]))

    def key(self, crf: int | None) -> str:
        facts = (VERSION, self.name, self.reel.shots, self.reel.size, self.b.tolist(), self.f.tolist(),
                 self.place.round(6).tolist(), self.fg_size, self.active, self.bg_fps, self.fg_fps, self.bg_look, crf)
        return hashlib.sha1(repr(facts).encode()).hexdigest()[:10]


S = "scale=640:360:flags=bicubic,setsar=1"
SHOTS = [  # the 640x360 reel: six shots of 60 frames (2.4 s), then the shot the insert case inserts
    Shot("bigbuckbunny.mp4", 0, 60, S),
    Shot("bikes.mp4", 0, 60, f"crop=484:272:78:0,{S}"),
    Shot("bigbuckbunny.mp4", 66, 60, f"crop=640:360:640:360,hflip,{S}"),
    Shot("bikes.mp4", 100, 60, f"hflip,crop=484:272:0:0,{S}"),
    Shot("bigbuckbunny.mp4", 30, 60, f"crop=640:360:640:0,hflip,{S}"),
    Shot("bikes.mp4", 180, 60, f"crop=320:180:160:46,{S}"),
    Shot("carphone_pristine.mp4", 0, 60, "scale=440:360:flags=bicubic,pad=640:360:100:0,setsar=1"),  # pillarboxed
]
HD = "scale=1920:1080:flags=bicubic,setsar=1"
SHOTS_1080 = [Shot("bigbuckbunny.mp4", 0, 60, HD), Shot("bigbuckbunny.mp4", 66, 60, f"hflip,{HD}")]
SHOTS_PAN = [Shot("bikes.mp4", 0, 180, "setsar=1")]  # 640x272, textured
CROP = (96, 54, 1.0)  # FG = the 448x252 window at (96, 54) of the 640x360 reel (as temporal.py's cases)
FG_CROP = (448, 252)


def cases() -> list[Case]:
    reel = Reel(SHOTS, (640, 360))
    s0, s1, s2, s3, s4, s5, ins = (reel.frames(i) for i in range(7))
    fg = s0[20:] + s1 + s2 + s3[:-20]  # 200 FG frames over four shots
    out = [
        Case("insert", "BG = 4 shots with 2.4 s of another shot inserted in the middle", reel,
             s0 + s1 + ins + s2 + s3, fg, [CROP], FG_CROP),
        Case("missing", "BG lacks the last 1.2 s of FG's 2nd shot (30 frames uncovered)", reel,
             s0 + s1[:30] + s2 + s3, fg, [CROP], FG_CROP),
        Case("reorder", "BG shows the 4 shots as 3 1 4 2", reel, s2 + s0 + s3 + s1, fg, [CROP], FG_CROP),
    ]
    # pan-and-scan: a 480x360 (4:3) window of the three-shot BG, at another x per shot, downscaled x0.75
    xs = {0: 24.0, 1: 160.0, 2: 96.0}
    bg = s0 + s1 + s2
    f = bg[10:-10]
    out.append(Case("panscan", "4:3 window jumping per shot, x0.75, over a 3-shot 16:9 BG", reel, bg, f,
                    [[xs[int(reel.shot_of(k))], 0.0, 1 / 0.75] for k in f], (360, 270), composite="region"))
    # letterbox: the 2.39:1 picture (BG rows 138..942) in 1280x536, bars above and below in 1280x720
    hd = Reel(SHOTS_1080, (1920, 1080))
    bg = hd.frames(0) + hd.frames(1)
    out.append(Case("letterbox", "2.39:1 with bars in 1280x720 over 1080p open matte, regenerated BG", hd,
                    bg, bg[10:110], [[0.0, 0.0, 1.5]], (1280, 720), active=(0, 92, 1280, 536), bg_look=True,
                    composite="whole"))
    # pan: a 480x240 window of bikes, still 25 frames, 36 px to the right with an ease in/out over 100,
    # still 25; Lanczos-resampled at the sub-pixel place
    pr = Reel(SHOTS_PAN, (640, 272))
    t = np.clip((np.arange(150) - 25) / 99, 0, 1)
    px = 60 + 36 * (1 - np.cos(np.pi * t)) / 2
    out.append(Case("pan", "480x240 window panning 36 px across bikes (ease in/out)", pr, pr.frames(0),
                    pr.frames(0)[15:165], np.stack([px, np.full(150, 16.0), np.ones(150)], 1), (480, 240)))
    # the same, moving from FG's first frame to its last: 36 px right and 6 px down, at constant speed
    t = np.arange(120) / 119
    out.append(Case("pan_edge", "480x240 window panning 36 px across bikes, moving from first to last frame", pr,
                    pr.frames(0), pr.frames(0)[40:160], np.stack([70 + 36 * t, 10 + 6 * t, np.ones(120)], 1),
                    (480, 240)))
    # rule 6: FG 60 fps of distinct frames over BG 24 fps showing every 2.5th; a BG speed ramp that skips
    bpos = 2.5 * np.arange(int((len(reel) - len(ins)) / 2.5))
    f = np.arange(25, 325)
    out.append(Case("r6_fg60_bg24", "FG 60 fps (all frames), BG 24 fps (every 2.5th): rule 6", reel,
                    np.floor(bpos), f, [CROP], FG_CROP, bg_fps=24, fg_fps=60, rule6=True, bpos=bpos, fpos=f))
    rate = np.linspace(0.6, 1.6, 320)
    bpos = np.cumsum(rate) - rate[0]
    f = np.arange(20, 300)
    out.append(Case("r6_ramp", "BG a 0.6x -> 1.6x speed ramp (repeats, then skips): rule 6", reel,
                    np.floor(bpos), f, [CROP], FG_CROP, rule6=True, bpos=bpos, fpos=f))
    return out


# -- writing -----------------------------------------------------------------------------
def fg_frame(img: np.ndarray, x: float, y: float, s: float, size: tuple[int, int],
             active: tuple[int, int, int, int] | None) -> np.ndarray:
    """FG's picture cut from BG picture ``img`` at placement (x, y, s); bars (black) outside ``active``."""
    fw, fh = size
    ax, ay, aw, ah = active or (0, 0, fw, fh)
    bx, by, bw, bh = x + s * ax, y + s * ay, s * aw, s * ah
    if all(abs(v - round(v)) < 1e-9 for v in (bx, by, bw, bh)):
        bx, by, bw, bh = (int(round(v)) for v in (bx, by, bw, bh))
        pic = np.asarray(img[by:by + bh, bx:bx + bw])
        if (bw, bh) != (aw, ah):
            pic = cv2.resize(pic, (aw, ah), interpolation=cv2.INTER_AREA)
    else:  # FG pixel centre u -> BG bx + s*(u + 0.5) - 0.5
        m = np.float32([[s, 0, bx + 0.5 * s - 0.5], [0, s, by + 0.5 * s - 0.5]])
        pic = cv2.warpAffine(np.asarray(img), m, (aw, ah), flags=cv2.INTER_LANCZOS4 | cv2.WARP_INVERSE_MAP)
    if active is None:
        return np.ascontiguousarray(pic)
    out = np.zeros((fh, fw, 3), np.uint8)
    out[ay:ay + ah, ax:ax + aw] = pic
    return out


def build(case: Case, crf: int | None = 16, cache: Path = CACHE) -> tuple[Path, Path]:
    """Write BG and FG for ``case`` (cached). ``crf`` None: lossless (x264 qp 0)."""
    d = cache / f"{case.name}-{case.key(crf)}"
    bgp, fgp = d / "bg.mp4", d / "fg.mp4"
    if bgp.exists() and fgp.exists():
        return bgp, fgp
    d.mkdir(parents=True, exist_ok=True)
    w, h = case.reel.size
    tb, tf = d / "bg.tmp.mp4", d / "fg.tmp.mp4"
    rng = np.random.default_rng(7)
    bw = _Writer(tb, w, h, fps=case.bg_fps, crf=23 if case.bg_look and crf is not None else crf, preset="veryfast")
    for k in case.b:
        img = case.reel.frame(int(k))
        bw.write(_degrade(np.asarray(img), rng) if case.bg_look else img)
    bw.close()
    fw = _Writer(tf, *case.fg_size, fps=case.fg_fps, crf=crf, preset="veryfast")
    for k, (x, y, s) in zip(case.f, case.place):
        fw.write(fg_frame(case.reel.frame(int(k)), x, y, s, case.fg_size, case.active))
    fw.close()
    tb.rename(bgp)
    tf.rename(fgp)
    return bgp, fgp


# -- truth -------------------------------------------------------------------------------
def master_sets(case: Case) -> list[set[int] | None]:
    """Per FG frame the BG frames showing the acceptable master frame(s); None: uncovered.

    Rule 6 (``case.rule6``): an FG frame is acceptable on the BG frames of its scene
    (:meth:`Reel.scene_of`) showing the nearest content (:meth:`Reel.content`: its own
    where BG has it, a repeat of it counting as it); where two are as near, the one shown
    nearest in time (``bpos``/``fpos``).
    """
    by_master: dict[int, set[int]] = {}
    for j, k in enumerate(case.b):
        by_master.setdefault(int(k), set()).add(j)
    out: list[set[int] | None] = []
    if not case.rule6:
        return [None if by_master.get(int(k)) is None else set(by_master[int(k)]) for k in case.f]
    reel = case.reel
    bcont, bscene = reel.content(case.b), reel.scene_of(case.b)
    for i, k in enumerate(case.f):
        same = np.flatnonzero(bscene == reel.scene_of(int(k)))
        if not len(same):
            out.append(by_master.get(int(k)))
            continue
        d = np.abs(bcont[same] - reel.content(int(k)))
        cand = same[d == d.min()]
        if d.min() > 0 and len(set(case.b[cand].tolist())) > 1:
            dt = np.abs(case.bpos[cand] - case.fpos[i])
            cand = cand[dt <= dt.min() + 1e-9]
        s = set().union(*(by_master[int(m)] for m in set(case.b[cand].tolist())))
        out.append(set(s))
    return out


def truth(case: Case, bg: Path) -> list[set[int] | None]:
    """:func:`master_sets` plus BG frames pixel-identical to an acceptable one (framemd5)."""
    sets, md5 = temporal.truth_sets(case, bg)
    by_md5: dict[str, set[int]] = {}
    for j, h in enumerate(md5):
        by_md5.setdefault(h, set()).add(j)
    out = []
    for s, m in zip(sets, master_sets(case)):
        if m is not None and case.rule6:  # the nearest content (the same, where BG has it)
            s = set(m) | (s or set())
            for j in m:
                s |= by_md5[md5[j]]
        out.append(s)
    return out


def true_alignment(case: Case, sets: list[set[int] | None], bgp: Path, fgp: Path):
    """The alignment the engine should find: a BG frame per FG frame (uncovered: the nearest
    covered frame's), the true track, active area and shots."""
    from vidkompy_vs.alignment import Alignment, MediaInfo, Spatial, Temporal
    from vidkompy_vs.alignment import Shot as AShot
    from vidkompy_vs.sources import probe

    cov = [i for i, s in enumerate(sets) if s is not None]
    fmap = [min(s) if s is not None else min(sets[min(cov, key=lambda c, i=i: abs(c - i))])
            for i, s in enumerate(sets)]
    act = list(case.active) if case.active else None
    moving = bool(np.ptp(case.place, axis=0).max() > 0)
    x, y, s = case.place[0]
    sp = Spatial(x=x, y=y, scale=s, confidence=1.0, method="truth", active=act,
                 track=case.place.tolist() if moving else None)
    shots = [AShot(a, e, min(fmap[a:e]), max(fmap[a:e]) + 1, *case.place[a], confidence=1.0, active=act)
             for a, e in case.fg_shots()]
    n = len(case.f)
    return Alignment(bg=MediaInfo.from_probe(probe(bgp)), fg=MediaInfo.from_probe(probe(fgp)), spatial=sp,
                     temporal=Temporal(frame_map=fmap, similarity=[1.0] * n, confidence=1.0, method="truth",
                                       uncovered=[i for i, s in enumerate(sets) if s is None]), shots=shots)


# -- running the engine ------------------------------------------------------------------
# temporal.py's runner (peak memory of the process tree, time after imports), with its
# messages on stderr (kept: notes, warnings, fallbacks) and the whole alignment saved
RUNNER = ("import logging\nlogging.basicConfig(level=logging.WARNING, format='%(levelname)s %(name)s: %(message)s')\n"
          + temporal.RUNNER.replace("quiet=True", "quiet=False")
          + "\na.save(sys.argv[4] + '.alignment.json')\n")
assert "quiet=False" in RUNNER


def run_align(bg: Path, fg: Path, timeout: float, inputs: str = "files") -> dict:
    """One align in a subprocess with a fresh cache: {seconds, rss_kb, al | None, notes, error};
    ``inputs``: ``files`` (paths) or ``nodes`` (the files opened as VapourSynth nodes first,
    as temporal.py's ``--nodes``)."""
    from vidkompy_vs.alignment import Alignment

    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, VIDKOMPY_VS_CACHE=str(Path(tmp) / "cache"), COLUMNS="1000")  # notes unwrapped
        res = Path(tmp) / "r.json"
        t0 = time.perf_counter()
        # Through a shell that forks it: a process started straight from this one inherits this
        # one's peak RSS at exec in its ru_maxrss (see temporal.py), and this one holds frames.
        cmd = ["sh", "-c", '"$@"; exit $?', "sh", sys.executable, "-c", RUNNER, str(bg), str(fg), "default", str(res),
               inputs]
        p = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
        try:
            _, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)  # its own session: the shell and the runner
            p.communicate()
            return {"seconds": time.perf_counter() - t0, "rss_kb": 0, "al": None, "notes": [],
                    "error": f"timed out after {timeout:.0f} s"}
        lines = [ln.strip() for ln in err.splitlines() if ln.strip()]
        notes = [ln for ln in lines if any(w in ln.lower() for w in ("warning", "note:", "fallback", "error"))]
        if p.returncode != 0 or not res.exists():
            return {"seconds": time.perf_counter() - t0, "rss_kb": 0, "al": None, "notes": notes,
                    "error": f"align exited {p.returncode}: {lines[-1] if lines else ''}"}
        r = json.loads(res.read_text())
        return {"seconds": r["seconds"], "rss_kb": r["rss_kb"], "notes": notes, "error": "",
                "al": Alignment.load(str(res) + ".alignment.json")}


# -- measuring ---------------------------------------------------------------------------
def corner_errors(case: Case, al, ids: list[int]) -> np.ndarray:
    """Per FG frame in ``ids``: the worst of FG's four footprint corners, found vs true (BG px)."""
    fw, fh = case.fg_size
    out = np.full(len(ids), np.inf)
    for n, i in enumerate(ids):
        try:
            x, y, s = al.spatial.at(i)
        except (IndexError, TypeError, ValueError):
            continue
        tx, ty, ts = case.place[i]
        out[n] = max(math.hypot(x + s * u - tx - ts * u, y + s * v - ty - ts * v) for u in (0, fw) for v in (0, fh))
    return out


def active_error(case: Case, al) -> int:
    """Worst edge error of FG's picture area over FG frames (FG px; None = the whole frame)."""
    fw, fh = case.fg_size

    def edges(a):
        ax, ay, aw, ah = a or (0, 0, fw, fh)
        return np.array([ax, ay, ax + aw, ay + ah])

    want = edges(case.active)
    return int(max(np.abs(edges(al.active_at(i)) - want).max() for i in range(len(case.f))))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    d = a.astype(np.float32) - b.astype(np.float32)
    mse = float(np.mean(d * d))
    return 99.0 if mse <= 1e-10 else 10 * math.log10(255 ** 2 / mse)


def composite_figures(case: Case, bgp: Path, fgp: Path, al, true_al, n: int = 12) -> dict:
    """Luma PSNR of ``filters.composite`` (worst of ``n`` frames spread over FG).

    ``whole`` (letterbox): the whole frame against the TRUE composite (BG under the true
    map with only FG's picture area laid at the true place: BG's picture shows where FG
    has bars), made with the found alignment (``found``) and with the true one passed
    to the compositor (``true_al``): the second isolates the compositor's bar handling.
    ``region`` (panscan): inside the true FG footprint (3 px in), the composite made with
    the found alignment against the one made with the true alignment (``found``), and
    each against BG under the true map (FG is a copy of BG's picture there), with the
    difference ``delta`` = true - found (dB).
    """
    from vidkompy_vs import filters
    from vidkompy_vs.sources import frame_arrays, open_video

    bg, fg = open_video(bgp), open_video(fgp)
    ids = sorted({int(round(v)) for v in np.linspace(0, len(case.f) - 1, n)})
    out: dict = {}

    def comp(a):
        try:
            return frame_arrays(filters.composite(bg, fg, a), ids, gray=True), ""
        except Exception as e:  # noqa: BLE001 - reported in the row
            return None, f"{type(e).__name__}: {e}"[:120]

    got, err = comp(al) if al is not None else (None, "no alignment")
    ideal, err_t = comp(true_al)
    out["error"] = "; ".join(x for x in (err and f"found: {err}", err_t and f"true: {err_t}") if x)
    rbg = filters.remap(bg, true_al.temporal.frame_map, fg)
    if case.composite == "whole":
        ax, ay, aw, ah = case.active
        fw, fh = case.fg_size
        pic = fg.std.Crop(left=ax, top=ay, right=fw - ax - aw, bottom=fh - ay - ah)
        rows = [[x + s * ax, y + s * ay, s] for x, y, s in case.place]
        ref = frame_arrays(filters.overlay(rbg, pic, *rows[0], track=rows), ids, gray=True)
        out["found"] = min(_psnr(a, b) for a, b in zip(got, ref)) if got else float("nan")
        out["true_al"] = min(_psnr(a, b) for a, b in zip(ideal, ref)) if ideal else float("nan")
        return out
    ref = frame_arrays(rbg, ids, gray=True)
    fw, fh = case.fg_size

    def region(img, i):
        x, y, s = case.place[i]
        return img[int(math.ceil(y)) + 3:int(y + s * fh) - 3, int(math.ceil(x)) + 3:int(x + s * fw) - 3]

    def worst(xs, ys):
        return min(_psnr(region(a, i), region(b, i)) for a, b, i in zip(xs, ys, ids)) if xs and ys else float("nan")

    out["found"] = worst(got, ideal)
    out["found_bg"], out["true_bg"] = worst(got, ref), worst(ideal, ref)
    out["delta"] = out["true_bg"] - out["found_bg"]
    return out


def footprints(case: Case, al) -> np.ndarray:
    """FG's four footprint corners in BG px on every FG frame (NaN where there is none)."""
    fw, fh = case.fg_size
    out = np.full((len(case.f), 4, 2), np.nan)
    for i in range(len(case.f)):
        try:
            x, y, s = al.spatial.at(i)
        except (IndexError, TypeError, ValueError):
            continue
        out[i] = [(x + s * u, y + s * v) for u in (0, fw) for v in (0, fh)]
    return out


def measure(case: Case, timeout: float, inputs: str = "files", dec: float | None = None) -> dict:
    """One case's row; ``inputs="nodes"``: the files opened as nodes; ``dec``: the decode time
    when already measured (the node run reuses the file run's)."""
    bgp, fgp = build(case)
    sets = truth(case, bgp)
    dec = temporal.decode_time(bgp, fgp) if dec is None else dec
    r = run_align(bgp, fgp, timeout, inputs)
    al = r["al"]
    covered = [i for i, s in enumerate(sets) if s is not None]
    unc_true = {i for i, s in enumerate(sets) if s is None}
    true_shots = case.fg_shots()
    row = {"case": case.name, "fg": len(case.f), "bg": len(case.b), "seconds": r["seconds"], "dec": dec,
           "mb": r["rss_kb"] / 1024, "error": r["error"], "notes": r["notes"], "unc_true": len(unc_true),
           "shots_true": len(true_shots), "exact": float("nan"), "maxerr": -1}
    if al is not None:
        fmap = al.temporal.frame_map
        row["_map"], row["_corners"] = list(fmap), footprints(case, al)
        row["exact"], row["maxerr"] = temporal.score(fmap, sets)
        e = corner_errors(case, al, covered)
        row["place_max"], row["place_med"] = float(e.max()), float(np.median(e))
        flagged = set(al.temporal.uncovered)
        row["unc_found"], row["unc_false"] = len(flagged & unc_true), len(flagged - unc_true)
        row["shots_found"] = len(al.shots)
        found_cuts = [sh.fg_start for sh in al.shots[1:]]
        row["cuts_hit"] = sum(any(abs(c - a) <= 1 for c in found_cuts) for a, _ in true_shots[1:])
        row["active_err"] = active_error(case, al)
        row["method"] = f"{al.temporal.method}/{al.spatial.method}"
        if case.rule6:  # the frames rule 6 is about, apart
            shown = set(case.b.tolist())
            r6 = [i for i, k in enumerate(case.f) if int(k) not in shown and sets[i] is not None]
            row["r6"] = (sum(fmap[i] in sets[i] for i in r6), len(r6))
    if case.composite:
        try:
            row["comp"] = composite_figures(case, bgp, fgp, al, true_alignment(case, sets, bgp, fgp))
        except Exception as e:  # noqa: BLE001 - the row says what happened
            row["comp"] = {"error": f"{type(e).__name__}: {e}"[:160]}
    row["fails"] = done_when(row)
    return row


def done_when(r: dict) -> list[str]:
    """Issue 10's "Done when" criteria this row misses: ``map`` (>= 99.5 % of covered FG
    frames on an acceptable BG frame, max error 1), ``place`` (<= 0.5 BG px on every covered
    frame), ``unc`` (>= 95 % of uncovered frames flagged, no covered frame flagged), ``comp``
    (letterbox: whole-frame PSNR >= 35 dB; panscan: FG region within 0.5 dB of the true
    placements' composite); ``failed`` when there is no alignment at all."""
    if "place_max" not in r:
        return ["failed"]
    out = []
    if not (r["exact"] >= 0.995 and 0 <= r["maxerr"] <= 1):
        out.append("map")
    if not r["place_max"] <= 0.5:
        out.append("place")
    if r["unc_false"] or r["unc_found"] < 0.95 * r["unc_true"]:
        out.append("unc")
    c = r.get("comp")
    if c is not None:
        ok = c.get("delta", 99) <= 0.5 if "true_bg" in c else c.get("found", 0) >= 35  # NaN fails
        if not ok:
            out.append("comp")
    return out


def _f(v, fmt: str, width: int) -> str:
    return f"{'-':>{width}s}" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:{width}{fmt}}"


def print_row(r: dict) -> None:
    unc = f"{r.get('unc_found', '-')}/{r['unc_true']}/{r.get('unc_false', '-')}"
    shots = f"{r.get('shots_found', '-')}/{r['shots_true']} ({r.get('cuts_hit', '-')})"
    print(f"{r['case']:13s} {r['fg']:4d} {r['bg']:4d} {_f(100 * r['exact'], '.2f', 7)} {r['maxerr']:6d} "
          f"{_f(r.get('place_max'), '.2f', 8)} {_f(r.get('place_med'), '.2f', 8)} {unc:>10s} {shots:>10s} "
          f"{_f(r.get('active_err'), 'd', 6)} {_f(r['seconds'], '.1f', 7)} {_f(r['dec'], '.2f', 6)} "
          f"{_f(r['seconds'] / r['dec'], '.2f', 6)} "
          f"{_f(r['mb'] or None, '.0f', 5)}  {','.join(r['fails']) or 'yes':15s} {r.get('method', '-')}", flush=True)


HEADER = (f"{'case':13s} {'FG':>4s} {'BG':>4s} {'exact%':>7s} {'maxerr':>6s} {'place mx':>8s} {'place md':>8s} "
          f"{'unc f/t/x':>10s} {'shots(cut)':>10s} {'act px':>6s} {'align s':>7s} {'dec s':>6s} {'ratio':>6s} "
          f"{'MB':>5s}  {'done? (misses)':15s} method (temporal/spatial)")


def node_table(rows: list[dict], node_rows: list[dict]) -> None:
    """The cases again with their files opened as VapourSynth nodes (``sources.open_video``,
    sound through ``open_audio``): the same columns, then whether the frame map equals the
    file path's and the largest distance between the two runs' footprint corners (BG px,
    any FG frame), and the node run's time over the file run's."""
    print("\nthe same cases, files opened as VapourSynth nodes (align(bg_node, fg_node, bg_audio=, fg_audio=))")
    print(HEADER)
    print("-" * len(HEADER))
    for r in node_rows:
        print_row(r)
    print(f"\n{'case':13s} {'same map':>8s} {'corners n-f px':>14s} {'node s':>7s} {'file s':>7s} {'node/file':>9s}")
    tn = tf = 0.0
    for f, n in zip(rows, node_rows, strict=True):
        if "_map" not in f or "_map" not in n:
            print(f"{n['case']:13s} {'-':>8s} (no alignment: files {f['error'] or 'ok'}, nodes {n['error'] or 'ok'})")
            continue
        d = np.abs(n["_corners"] - f["_corners"])
        both = ~np.isnan(d).any(axis=(1, 2))
        gap = float(d[both].max()) if both.any() else float("nan")
        tn, tf = tn + n["seconds"], tf + f["seconds"]
        print(f"{n['case']:13s} {'yes' if n['_map'] == f['_map'] else 'no':>8s} {gap:14.4f} {n['seconds']:7.1f} "
              f"{f['seconds']:7.1f} {n['seconds'] / f['seconds']:9.2f}", flush=True)
    if tf:
        print(f"all cases: nodes {tn:.1f} s, files {tf:.1f} s, node/file {tn / tf:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    ap.add_argument("--timeout", type=float, default=300, help="seconds one align may take")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--nodes", action="store_true",
                    help="also run every case with its files opened as VapourSynth nodes (a second table)")
    args = ap.parse_args()
    every = cases()
    if args.list:
        for c in every:
            print(f"{c.name:13s} {c.what}")
        return
    want = [c for c in args.cases.split(",") if c]
    unknown = set(want) - {c.name for c in every}
    if unknown:
        ap.error(f"unknown case(s) {', '.join(sorted(unknown))}; cases: {', '.join(c.name for c in every)}")
    todo = [c for c in every if not want or c.name in want]
    t0 = time.perf_counter()
    print(HEADER)
    print("-" * len(HEADER))
    rows, node_rows = [], []

    def one(c: Case, inputs: str, dec: float | None = None) -> dict:
        try:
            return measure(c, args.timeout, inputs, dec)
        except Exception as e:  # noqa: BLE001 - a broken case is a row, not the end of the table
            return {"case": c.name, "fg": len(c.f), "bg": len(c.b), "seconds": float("nan"),
                    "dec": float("nan"), "mb": 0, "notes": [], "unc_true": 0, "shots_true": 0,
                    "exact": float("nan"), "maxerr": -1, "fails": ["failed"],
                    "error": f"benchmark: {type(e).__name__}: {e}"[:300]}

    for c in todo:
        rows.append(one(c, "files"))
        print_row(rows[-1])
        if args.nodes:
            node_rows.append(dict(one(c, "nodes", rows[-1]["dec"]), inputs="nodes"))
    if node_rows:
        node_table(rows, node_rows)
    print("\nunc f/t/x: true uncovered FG frames flagged / true uncovered / covered frames flagged. shots(cut): "
          "FG shots found / true (true cuts found within 1 frame). place: worst footprint corner per covered FG "
          "frame, BG px, max and median. act px: worst edge of FG's picture area, FG px. done?: issue 10's "
          "'Done when' criteria missed (map: exact >= 99.5 % and max error <= 1; place: <= 0.5 px; unc: >= 95 % "
          "flagged, none falsely; comp: the composite criterion).")
    def label(r: dict) -> str:
        return r["case"] + (" (nodes)" if r.get("inputs") == "nodes" else "")

    for r in rows + node_rows:
        if "r6" in r:
            ok, n = r["r6"]
            print(f"rule 6, {label(r)}: {ok} of {n} FG frames whose own frame BG lacks are on the nearest content")
    comps = [r for r in rows + node_rows if "comp" in r]
    if comps:
        print("\ncomposite (filters.composite, luma PSNR dB, worst of 12 frames):")
        for r in comps:
            c = r["comp"]
            if "true_bg" in c:
                print(f"  {label(r)}: FG region, found vs true-alignment composite {_f(c.get('found'), '.2f', 6)}; "
                      f"vs BG: found {_f(c.get('found_bg'), '.2f', 6)}, true {_f(c.get('true_bg'), '.2f', 6)}, "
                      f"difference {_f(c.get('delta'), '.2f', 6)}")
            elif "found" in c:
                print(f"  {label(r)}: whole frame vs the true composite: found alignment "
                      f"{_f(c.get('found'), '.2f', 6)}, true alignment {_f(c.get('true_al'), '.2f', 6)}")
            if c.get("error"):
                print(f"  {label(r)}: {c['error']}")
    print("\nwhat happened:")
    for r in rows + node_rows:
        said = ([f"ERROR {r['error']}"] if r["error"] else []) + r["notes"]
        print(f"  {label(r)}: " + (" | ".join(dict.fromkeys(said))[:600] if said else "ok"))
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    CACHE.mkdir(parents=True, exist_ok=True)
    out = CACHE / "last-results.json"
    keep = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows + node_rows]
    out.write_text(json.dumps(keep, indent=1, default=str))
    print(f"(results in {out})")


if __name__ == "__main__":
    main()
