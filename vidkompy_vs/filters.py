"""VapourSynth filters: retime BG to FG's clock and lay FG on top. The docstrings are the manual.

Everything here is lazy: functions take and return ``vs.VideoNode``; nothing is rendered
until a frame is requested (vspipe, vspreview, ``clip.output``). Use them in any ``.vpy``::

    import vapoursynth as vs
    from vidkompy_vs import filters, sources
    from vidkompy_vs.alignment import Alignment

    bg = sources.open_video("bg.mp4")
    fg = sources.open_video("fg.mp4")
    clip = filters.composite(bg, fg, Alignment.load("align.json"))
    clip.set_output(0)

Per-frame facts travel as frame props: ``VkBgFrame`` (the BG frame under this frame),
``VkSimilarity`` (how well it matched), ``VkX``/``VkY``/``VkScale`` (FG placement),
``VkShot`` (FG's shot) and ``VkUncovered`` (1 where BG has no frame for this FG frame).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from fractions import Fraction

import vapoursynth as vs

from .alignment import Alignment
from .errors import VidkompyError

core = vs.core

__all__ = ["remap", "overlay", "composite", "held_map", "annotate", "difference", "match_color"]

# Props describing colour and timing that the output should take from FG, the master.
_FG_PROPS = ["_Matrix", "_Primaries", "_Transfer", "_ColorRange", "_ChromaLocation", "_FieldBased",
             "_SARNum", "_SARDen"]


def remap(bg: vs.VideoNode, frame_map: Sequence[int], fps: Fraction | tuple[int, int] | vs.VideoNode | None = None,
          similarity: Sequence[float] | None = None, *,
          props: Mapping[str, Sequence[int | float]] | None = None) -> vs.VideoNode:
    """BG retimed: output frame ``i`` is BG frame ``frame_map[i]``.

    ``fps`` is the output frame rate (a ``Fraction``, ``(num, den)``, or a clip whose rate to
    take: normally FG); BG's own rate when omitted. The output has ``len(frame_map)``
    frames. Each carries ``VkBgFrame`` (int) and, when ``similarity`` is given,
    ``VkSimilarity`` (float). ``props`` adds more per-frame props: name -> one value per
    output frame (``composite`` passes ``VkShot`` and ``VkUncovered``).

    Implementation, chosen by ``benchmarks/remap.py`` (CPU time against decoding BG
    alone, 1080p): when the map breaks into few runs (plain offsets, drift, mild fps
    changes) BG is cut into those runs with ``std.Splice`` (consecutive frames as
    slices, repeats as loops) and a props-only ``std.ModifyFrame`` tags each frame:
    0.84-1.03x decode, and the frames are requested in order. Dense maps (e.g. 60 fps
    over 25, an hour long: ~90 000 runs) would make that graph slow to build (4.5 s,
    135 MB) and to search, so they use one ``std.FrameEval`` that picks a one-frame slice
    of BG per output frame (0.93-1.07x on that map, constant build cost).
    """
    fmap = [int(v) for v in frame_map]
    if not fmap:
        raise VidkompyError("frame_map is empty")
    lo, hi = min(fmap), max(fmap)
    if lo < 0 or hi >= bg.num_frames:
        raise VidkompyError(f"frame_map refers to BG frame {lo if lo < 0 else hi}; BG has {bg.num_frames} frames")
    if similarity is not None and len(similarity) != len(fmap):
        raise VidkompyError(f"similarity has {len(similarity)} entries; frame_map has {len(fmap)}")
    num, den = _fps(fps, bg)
    sims = [float(s) for s in similarity] if similarity is not None else None
    extra = {k: list(v) for k, v in (props or {}).items()}
    for k, v in extra.items():
        if len(v) != len(fmap):
            raise VidkompyError(f"prop {k} has {len(v)} entries; frame_map has {len(fmap)}")

    pieces = _runs(fmap)
    if len(pieces) <= _MAX_SPLICE:
        parts = [bg[a:a + k] if step else bg[a] * k for a, k, step in pieces]
        pix = parts[0] if len(parts) == 1 else core.std.Splice(parts)
        pix = pix.std.AssumeFPS(fpsnum=num, fpsden=den)

        def tag(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
            out = f.copy()
            out.props["VkBgFrame"] = fmap[n]
            if sims is not None:
                out.props["VkSimilarity"] = sims[n]
            for k, v in extra.items():
                out.props[k] = v[n]
            return out

        return core.std.ModifyFrame(pix, pix, tag)

    base = core.std.BlankClip(bg, length=len(fmap), fpsnum=num, fpsden=den, keep=True)

    def pick(n: int) -> vs.VideoNode:
        m = fmap[n]
        props = {"VkBgFrame": m, "_DurationNum": den, "_DurationDen": num}
        if sims is not None:
            props["VkSimilarity"] = sims[n]
        for k, v in extra.items():
            props[k] = v[n]
        return bg[m].std.SetFrameProps(**props)

    return core.std.FrameEval(base, pick)


# Above this many runs a Splice graph costs more to build and search than FrameEval.
_MAX_SPLICE = 4096


def _runs(fmap: list[int]) -> list[tuple[int, int, bool]]:
    """The map as ``(first BG frame, length, consecutive?)`` pieces: a piece is either
    consecutive BG frames (a slice) or one BG frame repeated (a loop)."""
    pieces: list[tuple[int, int, bool]] = []
    i, n = 0, len(fmap)
    while i < n:
        a = fmap[i]
        j = i + 1
        if j < n and fmap[j] == a + 1:
            while j < n and fmap[j] == fmap[j - 1] + 1:
                j += 1
            pieces.append((a, j - i, True))
        else:
            while j < n and fmap[j] == a:
                j += 1
            pieces.append((a, j - i, False))
        i = j
    return pieces


def overlay(bg: vs.VideoNode, fg: vs.VideoNode, x: float, y: float, scale: float = 1.0, *,
            feather: float = 0.0, track: Sequence[Sequence[float]] | None = None,
            kernel: str = "spline36", active: Sequence[int] | None = None,
            active_track: Sequence[Sequence[int] | None] | None = None) -> vs.VideoNode:
    """Lay ``fg`` onto ``bg`` with its top-left at (``x``, ``y``) BG pixels, scaled by ``scale``.

    - Sub-pixel ``x``/``y`` and any ``scale`` are done by one zimg resample of FG
      (``src_left``/``src_top``), not by integer crops: odd offsets on 4:2:0 land exactly,
      chroma is resampled at its true position (no half-pixel chroma shift).
    - With integer ``x``/``y`` and ``scale == 1`` the FG pixels come out bit-identical
      (luma always; chroma too when the offset is a multiple of the subsampling), except
      inside a feathered edge.
    - ``feather`` (px, in FG pixels) ramps FG's edge into BG linearly.
    - ``track``: one ``[x, y, scale]`` per frame; the placement then follows it frame by
      frame (``x``/``y``/``scale`` are ignored).
    - The output has BG's size and FG's format (BG is converted when they differ), BG's
      frame props plus ``VkX``/``VkY``/``VkScale``.
    - ``kernel``: zimg kernel for FG resampling (``spline36``, ``bicubic``, ``lanczos``, ...).
    - ``active``: FG's picture area ``[ax, ay, aw, ah]`` in FG pixels when FG has bars
      baked in (see :mod:`vidkompy_vs.bars`): only that crop is laid on BG, at
      (``x + ax * scale``, ``y + ay * scale``), resampled as above, so BG shows where FG
      has bars (a feathered edge ramps at the crop's edge). An area not aligned to FG's
      chroma subsampling is rounded inward to it. ``active_track``: one area (or None:
      the whole frame) per frame, for bars that change from shot to shot; it overrides
      ``active``. ``VkX``/``VkY`` stay FG's own top-left.

    ``bg`` and ``fg`` must have the same number of frames (retime BG first with
    :func:`remap`).
    """
    if bg.num_frames != fg.num_frames:
        raise VidkompyError(f"overlay needs equal lengths: BG has {bg.num_frames} frames, FG {fg.num_frames}")
    if fg.format is None or bg.format is None or fg.width == 0 or bg.width == 0:
        raise VidkompyError("overlay needs clips with a constant format and size")
    bgc = _same_siting(_convert(bg, fg.format), fg)
    resizer = _resizer(kernel)

    if active_track is not None and len(active_track) != fg.num_frames:
        raise VidkompyError(f"active_track has {len(active_track)} entries; FG has {fg.num_frames} frames")
    if track is not None or active_track is not None:
        if track is not None and len(track) != fg.num_frames:
            raise VidkompyError(f"track has {len(track)} entries; FG has {fg.num_frames} frames")
        rows = ([(float(t[0]), float(t[1]), float(t[2])) for t in track] if track is not None
                else [(float(x), float(y), float(scale))] * fg.num_frames)
        areas = ([_area(fg, a) for a in active_track] if active_track is not None
                 else [_area(fg, active)] * fg.num_frames)
        return _overlay_track(bgc, fg, rows, areas, feather, resizer)

    _check_scale(scale)
    area = _area(fg, active)
    ax, ay = area[:2] if area else (0, 0)
    placed = _placed(_crop(fg, area), bgc.width, bgc.height, float(x) + ax * scale, float(y) + ay * scale,
                     float(scale), feather, resizer)
    if placed is None:
        raise VidkompyError(f"FG placed at ({x}, {y}) x{scale} lies entirely outside BG")
    layer, mask, first_plane = placed
    out = core.std.MaskedMerge(bgc, layer, mask, first_plane=first_plane)
    return out.std.SetFrameProps(VkX=float(x), VkY=float(y), VkScale=float(scale))


def composite(bg: vs.VideoNode, fg: vs.VideoNode, alignment: Alignment | None = None, *, canvas: str = "bg",
              feather: float = 0.0, kernel: str = "spline36", keep_bars: bool = False,
              uncovered: str = "hold", match_color: bool = False) -> vs.VideoNode:
    """BG retimed by ``alignment.temporal`` with FG laid on it at ``alignment.spatial``.

    Without ``alignment``, ``bg`` and ``fg`` are aligned here, as they are, when this is
    called (not per frame): :func:`vidkompy_vs.align.align` on the nodes, visual only
    (call it yourself for sound, a preset or a placement by hand). That reads every
    frame of both through the frame server once, like the file path's decode; the
    result is cached by the nodes' content, so loading the script again costs a few
    frame reads of each.

    The result has FG's frame count, frame rate and duration, FG's format and colour
    props, and every FG frame once at its own time.

    ``canvas="bg"`` (default): BG's size; FG is scaled by ``spatial.scale``.
    ``canvas="fg"``: FG keeps its pixels 1:1 and BG is scaled by ``1/scale`` around it
    (useful when FG was made smaller than BG's picture).

    Bars: only FG's picture area (``spatial.active``, or a shot's own ``active`` for its
    frames: :meth:`Alignment.active_at`) is laid over BG, so BG shows where FG has bars;
    ``keep_bars=True`` lays all of FG.

    ``uncovered``: what is under the FG frames BG has no frame for
    (``temporal.uncovered``): ``"hold"`` (default) BG's frame under the nearest covered FG
    frame (:func:`held_map`), ``"black"`` a black frame, ``"blur"`` the held frame heavily
    blurred.

    ``match_color``: BG's colours matched to FG's first (see :func:`match_color`).
    """
    if alignment is None:
        from .align import align

        check_options(canvas, uncovered, feather)  # a typo should not cost a whole alignment first
        alignment = align(bg, fg)
    return _composite(bg, fg, alignment, canvas, feather, kernel, match_color, keep_bars, uncovered)[0]


def _composite(bg: vs.VideoNode, fg: vs.VideoNode, alignment: Alignment, canvas: str, feather: float, kernel: str,
               match: bool, keep_bars: bool = False, uncovered: str = "hold") -> tuple[vs.VideoNode, vs.VideoNode]:
    """The composite and the BG layer under it (same canvas, format and frames)."""
    check_options(canvas, uncovered, feather)
    t, s = alignment.temporal, alignment.spatial
    if len(t.frame_map) != fg.num_frames:
        raise VidkompyError(f"alignment has {len(t.frame_map)} frames in its map; FG has {fg.num_frames}")
    if (bg.width, bg.height) != (alignment.bg.width, alignment.bg.height):
        raise VidkompyError(f"alignment is for a {alignment.bg.width}x{alignment.bg.height} BG; "
                            f"this BG is {bg.width}x{bg.height}")
    fmap = held_map(t.frame_map, t.uncovered)
    if max(fmap) >= bg.num_frames:
        raise VidkompyError(f"alignment refers to BG frame {max(fmap)}; BG has {bg.num_frames} frames")
    unc = set(t.uncovered)
    rbg = remap(bg, fmap, fg, t.similarity,
                props={"VkShot": alignment.shot_index(), "VkUncovered": [int(i in unc) for i in range(fg.num_frames)]})
    rbg = _convert(_fill(rbg, t.uncovered, uncovered), fg.format)
    if match:
        rbg = match_color(rbg, fg, alignment)
    active, active_track = (None, None) if keep_bars else _actives(alignment, fg.num_frames)

    if canvas == "fg":
        if s.track:
            raise VidkompyError("canvas='fg' does not support a moving track; use canvas='bg'")
        k = 1.0 / s.scale
        w, h = fg_canvas((bg.width, bg.height), s.scale, (1 << fg.format.subsampling_w, 1 << fg.format.subsampling_h))
        # Exact geometry: output pixel j samples BG at j * scale (src_width = w * scale).
        rbg = _resizer(kernel)(rbg, width=w, height=h, src_width=w * s.scale, src_height=h * s.scale)
        out = overlay(rbg, fg, s.x * k, s.y * k, 1.0, feather=feather, kernel=kernel, active=active,
                      active_track=active_track)
    else:
        out = overlay(rbg, fg, s.x, s.y, s.scale, feather=feather, kernel=kernel, track=s.track, active=active,
                      active_track=active_track)
    return _fg_props(out, fg), _fg_props(rbg, fg)


UNCOVERED = ("hold", "black", "blur")
MAX_CANVAS = 16384  # pixels a side of canvas='fg' (16K; encoders stop about there)


def fg_canvas(bg_size: tuple[int, int], scale: float, sub: tuple[int, int] = (2, 2)) -> tuple[int, int]:
    """``canvas="fg"``'s size: BG's scaled by ``1/scale`` on FG's chroma grid ``sub``;
    refused past :data:`MAX_CANVAS` (a tiny FG scale makes it absurd, and the render then
    runs out of memory instead of failing)."""
    w = max(sub[0], int(round(bg_size[0] / scale / sub[0])) * sub[0])
    h = max(sub[1], int(round(bg_size[1] / scale / sub[1])) * sub[1])
    if max(w, h) > MAX_CANVAS:
        raise VidkompyError(f"canvas='fg' would be {w}x{h} (BG scaled by 1/{scale:g} around FG's pixels; "
                            f"at most {MAX_CANVAS} a side); use canvas='bg'")
    return w, h


def check_options(canvas: str, uncovered: str, feather: float = 0.0) -> None:
    """:func:`composite`'s options checked (a script writes them out before any runs)."""
    if not (isinstance(feather, (int, float)) and math.isfinite(feather) and feather >= 0):
        raise VidkompyError(f"feather must be a number of pixels >= 0, not {feather!r}")
    if canvas not in ("bg", "fg"):
        raise VidkompyError(f"canvas must be 'bg' or 'fg', not {canvas!r}")
    if uncovered not in UNCOVERED:
        raise VidkompyError(f"uncovered must be one of {', '.join(UNCOVERED)}, not {uncovered!r}")


def held_map(frame_map: Sequence[int], uncovered: Sequence[int]) -> list[int]:
    """``frame_map`` with each uncovered FG frame's entry replaced by the BG frame under the
    nearest covered FG frame (the earlier one on a tie): BG holds still across a span BG
    lacks instead of showing whatever the map was clamped to. Unchanged when nothing (or
    everything) is uncovered."""
    import numpy as np

    fmap = np.asarray(frame_map, dtype=np.int64)
    if fmap.size == 0:
        return []
    bad = np.zeros(fmap.size, bool)
    unc = np.asarray(list(uncovered), dtype=np.int64)
    bad[unc[(unc >= 0) & (unc < fmap.size)]] = True
    if not bad.any() or bad.all():
        return fmap.tolist()
    idx = np.arange(fmap.size)
    good = np.flatnonzero(~bad)
    # nearest covered frame on each side; ties go to the earlier one
    after = good[np.minimum(np.searchsorted(good, idx), good.size - 1)]
    before = good[np.maximum(np.searchsorted(good, idx, side="right") - 1, 0)]
    d_before = np.where(before <= idx, idx - before, np.iinfo(np.int64).max)
    d_after = np.where(after >= idx, after - idx, np.iinfo(np.int64).max)
    src = np.where(d_before <= d_after, before, after)
    return np.where(bad, fmap[src], fmap).tolist()


# -- internals --------------------------------------------------------------------
def match_color(rbg: vs.VideoNode, fg: vs.VideoNode, alignment: Alignment, *, pairs: int = 6) -> vs.VideoNode:
    """BG's colours matched to FG's, so the composite shows no colour step at FG's edge.

    ``rbg`` is BG on FG's clock (the output of :func:`remap`) in FG's format. Per shot,
    ``pairs`` FG frames and the BG area under them are read small (a fraction of a
    second), one curve per plane is fitted that takes BG's values onto FG's on that area
    (quantile mapping on blurred samples: robust to FG being sharper), and the curves are
    applied to the whole BG frame with ``std.Lut``. A BG that already matches is left
    untouched. Integer formats (8-16 bit).
    """
    from . import color

    rbg = _convert(rbg, fg.format)
    curves = color.fit_curves(rbg, fg, alignment, pairs=pairs)
    return color.apply_curves(rbg, curves, alignment.shot_index())


def difference(bg: vs.VideoNode, fg: vs.VideoNode, alignment: Alignment, *, canvas: str = "bg", gain: float = 4.0,
               match_color: bool = False) -> vs.VideoNode:
    """What FG and the BG under it disagree on: ``|composite - BG| * gain`` in luma, grey
    chroma. Black outside FG's footprint (the two are the same there) and, inside it,
    dark where the alignment is right. Same frames and props as :func:`composite`."""
    out, base = _composite(bg, fg, alignment, canvas, 0.0, "spline36", match_color)
    fmt = out.format
    if fmt.sample_type == vs.FLOAT:
        luma, mid = f"x y - abs {gain} * 1 min", "0"
    else:
        peak = (1 << fmt.bits_per_sample) - 1
        luma, mid = f"x y - abs {gain} * {peak} min", str(1 << (fmt.bits_per_sample - 1))
    exprs = [luma] if fmt.num_planes == 1 else [luma, luma, luma] if fmt.color_family == vs.RGB else [luma, mid, mid]
    return core.std.Expr([out, base], exprs)


def annotate(clip: vs.VideoNode, alignment: Alignment | None = None, *, fg_size: tuple[int, int] | None = None,
             outline: bool = True, text: bool = True) -> vs.VideoNode:
    """``clip`` (a :func:`composite` or :func:`difference`) with what was matched drawn on
    it, for vspreview/vsedit: FG's outline, following the per-frame placement, and a text
    block per frame (FG frame, BG frame, similarity, x/y/scale, shot, uncovered).

    Everything comes from the frame props (``VkX``/``VkY``/``VkScale``, ``VkBgFrame``,
    ``VkSimilarity``, ``VkShot``, ``VkUncovered``); FG's size from ``alignment.fg`` or
    ``fg_size`` (needed for the outline only).
    """
    if outline:
        if fg_size is None:
            if alignment is None:
                raise VidkompyError("annotate needs the alignment or fg_size to draw FG's outline")
            fg_size = (alignment.fg.width, alignment.fg.height)
        clip = _draw_outline(clip, *fg_size)
    if not text:
        return clip
    tscale = 2 if clip.height >= 720 else 1
    base = clip

    def label(n: int, f: vs.VideoFrame) -> vs.VideoNode:
        return base.text.Text(_label(n, f.props), alignment=7, scale=tscale)

    return core.std.FrameEval(clip, label, prop_src=clip)


def _label(n: int, p) -> str:
    get = p.get

    lines = [f"FG {n}   BG {get('VkBgFrame', '?')}"]
    sim = get("VkSimilarity")
    lines.append(f"similarity {sim:.3f}" if sim is not None else "similarity -")
    if "VkX" in p:
        lines.append(f"x {p['VkX']:.2f}  y {p['VkY']:.2f}  scale {p['VkScale']:.4f}")
    lines.append(f"shot {get('VkShot', 0)}")
    if get("VkUncovered", 0):
        lines.append("UNCOVERED: BG has no frame here")
    return "\n".join(lines)


def _outline_values(fmt: vs.VideoFormat) -> list[float]:
    """Bright yellow in ``fmt``'s planes (BT.709, limited range for integer YUV)."""
    r, g, b = 1.0, 0.9, 0.0
    if fmt.color_family == vs.YUV:
        yy = 0.2126 * r + 0.7152 * g + 0.0722 * b
        vals = [yy, (b - yy) / 1.8556, (r - yy) / 1.5748]
        if fmt.sample_type == vs.INTEGER:
            k = 1 << (fmt.bits_per_sample - 8)
            vals = [round((16 + 219 * vals[0]) * k), round((128 + 224 * vals[1]) * k), round((128 + 224 * vals[2]) * k)]
        return vals
    vals = [r, g, b] if fmt.color_family == vs.RGB else [1.0]
    if fmt.sample_type == vs.INTEGER:
        vals = [round(v * ((1 << fmt.bits_per_sample) - 1)) for v in vals]
    return vals


def _draw_outline(clip: vs.VideoNode, fw: int, fh: int, width: int = 2) -> vs.VideoNode:
    """A ``width``-px frame drawn just inside FG's footprint, read per frame from the props."""
    import numpy as np

    fmt = clip.format
    vals = _outline_values(fmt)

    def draw(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        p = f.props
        if "VkX" not in p:
            return f
        x, y, s = float(p["VkX"]), float(p["VkY"]), float(p["VkScale"])
        out = f.copy()
        for i in range(fmt.num_planes):
            sx = fmt.subsampling_w if i else 0
            sy = fmt.subsampling_h if i else 0
            a = np.asarray(out[i])
            h, w = a.shape
            x0, y0 = round(x) >> sx, round(y) >> sy
            x1, y1 = (round(x + fw * s) >> sx) - 1, (round(y + fh * s) >> sy) - 1
            t = max(1, width >> max(sx, sy))
            for ys, xs in ((slice(y0, y0 + t), slice(x0, x1 + 1)), (slice(y1 - t + 1, y1 + 1), slice(x0, x1 + 1)),
                           (slice(y0, y1 + 1), slice(x0, x0 + t)), (slice(y0, y1 + 1), slice(x1 - t + 1, x1 + 1))):
                ys = slice(min(max(ys.start, 0), h), min(max(ys.stop, 0), h))
                xs = slice(min(max(xs.start, 0), w), min(max(xs.stop, 0), w))
                a[ys, xs] = vals[i]
        return out

    return core.std.ModifyFrame(clip, clip, draw)


# -- internals --------------------------------------------------------------------


def _fps(fps: Fraction | tuple[int, int] | vs.VideoNode | None, bg: vs.VideoNode) -> tuple[int, int]:
    if fps is None:
        f = bg.fps
    elif isinstance(fps, vs.VideoNode):
        f = fps.fps
    elif isinstance(fps, tuple):
        f = Fraction(*fps)
    else:
        f = Fraction(fps)
    if f <= 0:
        raise VidkompyError("remap needs a constant, positive frame rate")
    return f.numerator, f.denominator


Area = tuple[int, int, int, int] | None  # FG's picture area (x, y, w, h); None: all of FG


def _area(fg: vs.VideoNode, active: Sequence[int] | None) -> Area:
    """``active`` checked against FG and rounded inward to its chroma subsampling (so the
    crop is exact in every plane); None when it is the whole frame."""
    if active is None:
        return None
    if len(active) != 4:
        raise VidkompyError(f"active must be [x, y, w, h], got {list(active)!r}")
    ax, ay, aw, ah = (int(v) for v in active)
    if ax < 0 or ay < 0 or aw <= 0 or ah <= 0 or ax + aw > fg.width or ay + ah > fg.height:
        raise VidkompyError(f"active area {[ax, ay, aw, ah]} is not inside FG ({fg.width}x{fg.height})")
    sw, sh = 1 << fg.format.subsampling_w, 1 << fg.format.subsampling_h
    x0, y0 = -(-ax // sw) * sw, -(-ay // sh) * sh
    x1, y1 = (ax + aw) // sw * sw, (ay + ah) // sh * sh
    if x1 <= x0 or y1 <= y0:
        raise VidkompyError(f"active area {[ax, ay, aw, ah]} is empty after rounding to FG's chroma subsampling")
    if (x0, y0, x1, y1) == (0, 0, fg.width, fg.height):
        return None
    return x0, y0, x1 - x0, y1 - y0


def _crop(fg: vs.VideoNode, area: Area) -> vs.VideoNode:
    if area is None:
        return fg
    ax, ay, aw, ah = area
    return core.std.Crop(fg, left=ax, right=fg.width - ax - aw, top=ay, bottom=fg.height - ay - ah)


def _actives(al: Alignment, n: int) -> tuple[list[int] | None, list[list[int] | None] | None]:
    """The picture area as overlay takes it: one for all frames, or one per frame when
    shots carry their own."""
    if not any(sh.active is not None for sh in al.shots):
        return al.spatial.active, None
    # what Alignment.active_at gives, shot by shot rather than frame by frame (an hour has
    # ~10^5 frames and hundreds of shots)
    per = [al.spatial.active] * n
    for sh in al.shots:
        if sh.active is not None:
            lo, hi = max(0, sh.fg_start), min(n, sh.fg_end)
            per[lo:hi] = [sh.active] * max(0, hi - lo)
    return (per[0], None) if all(a == per[0] for a in per) else (None, per)


def _fill(rbg: vs.VideoNode, uncovered: Sequence[int], mode: str) -> vs.VideoNode:
    """Retimed BG with the uncovered frames' pictures replaced by ``mode``'s fill (``hold``:
    as they are, already held). Spliced in runs, so frames are still requested in order."""
    unc = {int(i) for i in uncovered if 0 <= int(i) < rbg.num_frames}
    if mode == "hold" or not unc:
        return rbg
    fill = _blurred(rbg) if mode == "blur" else _black(rbg)
    parts, i, n = [], 0, rbg.num_frames
    while i < n:
        j, gap = i, i in unc
        while j < n and (j in unc) == gap:
            j += 1
        parts.append((fill if gap else rbg)[i:j])
        i = j
    if len(parts) > _MAX_SPLICE:
        def pick(n: int) -> vs.VideoNode:
            return fill if n in unc else rbg

        return core.std.FrameEval(rbg, pick)
    return parts[0] if len(parts) == 1 else core.std.Splice(parts)


def _black(clip: vs.VideoNode) -> vs.VideoNode:
    """Black in ``clip``'s format and range (limited unless its first frame says full),
    keeping each frame's props (VkBgFrame: the held frame)."""
    fmt = clip.format
    if fmt.sample_type == vs.FLOAT:
        color = [0.0] * fmt.num_planes
    elif fmt.color_family == vs.RGB:
        color = [0] * 3
    else:
        # VapourSynth's newer _Range counts the other way round (RANGE_FULL = 1) from the
        # _ColorRange it replaced (0 = full), and R81 reads _ColorRange as _Range's raw value:
        # ask by the name that goes with this VapourSynth's RANGE_FULL
        name = "_Range" if hasattr(vs, "Range") else "_ColorRange"
        full = clip.get_frame(0).props.get(name) == vs.RANGE_FULL
        depth = fmt.bits_per_sample - 8
        color = [0 if full else 16 << depth] + [128 << depth] * (fmt.num_planes - 1)
    black = core.std.BlankClip(clip, color=color, keep=True)
    return core.std.CopyFrameProps(black, clip)


def _blurred(clip: vs.VideoNode) -> vs.VideoNode:
    """A heavy blur: down to 1/32 (area-like bilinear) and back up with a smooth B-spline."""
    mw, mh = 1 << clip.format.subsampling_w, 1 << clip.format.subsampling_h
    w = max(2 * mw, clip.width // 32 // mw * mw)
    h = max(2 * mh, clip.height // 32 // mh * mh)
    small = core.resize.Bilinear(clip, width=w, height=h)
    return core.resize.Bicubic(small, width=clip.width, height=clip.height, filter_param_a=1, filter_param_b=0)


def _check_scale(scale: float) -> None:
    if not (math.isfinite(scale) and scale > 0):
        raise VidkompyError(f"scale must be > 0, got {scale}")


def _resizer(kernel: str):
    name = {"spline36": "Spline36", "spline16": "Spline16", "spline64": "Spline64", "bicubic": "Bicubic",
            "bilinear": "Bilinear", "lanczos": "Lanczos", "point": "Point"}.get(kernel.lower())
    if name is None:
        raise VidkompyError(f"unknown kernel {kernel!r}")
    return getattr(core.resize, name)


def _convert(clip: vs.VideoNode, fmt: vs.VideoFormat) -> vs.VideoNode:
    if clip.format.id == fmt.id:
        return clip
    kw: dict = {"format": fmt.id}
    src, dst = clip.format.color_family, fmt.color_family
    if src == vs.YUV and dst in (vs.RGB, vs.GRAY) and dst != vs.GRAY:
        kw["matrix_in_s"] = "709"
    if src in (vs.RGB, vs.GRAY) and dst == vs.YUV:
        kw["matrix_s"] = "709"
    return core.resize.Bicubic(clip, **kw)


def _same_siting(bg: vs.VideoNode, fg: vs.VideoNode) -> vs.VideoNode:
    """BG's chroma resampled to FG's siting when the two differ (MJPEG's centred chroma
    against H.264's left-sited): MaskedMerge refuses to mix them, and FG is the master.
    The sitings are read off the first frames (one decode each, while the graph is built)."""
    fmt = fg.format
    if fmt.color_family != vs.YUV or (fmt.subsampling_w == 0 and fmt.subsampling_h == 0):
        return bg
    lb = bg.get_frame(0).props.get("_ChromaLocation")
    lf = fg.get_frame(0).props.get("_ChromaLocation")
    if lb is None or lf is None or lb == lf:
        return bg
    return core.resize.Spline36(bg, chromaloc_in=int(lb), chromaloc=int(lf))


def _fg_props(out: vs.VideoNode, fg: vs.VideoNode) -> vs.VideoNode:
    """Colour props from FG (the master); frame durations from FG's rate."""
    out = core.std.CopyFrameProps(out, fg, props=_FG_PROPS)
    return out.std.AssumeFPS(fpsnum=fg.fps.numerator, fpsden=fg.fps.denominator)


def _ones_mask(fg: vs.VideoNode, w: int, h: int, feather: float, pad: int) -> vs.VideoNode:
    """A ``w``x``h`` mask (1 inside, linear ramp over ``feather`` px at the edges) with a zero
    border ``pad`` px wide, so resampling sees hard zeros outside FG instead of clamped
    edge pixels. One frame; GRAY in FG's sample type and depth."""
    fmt = fg.format
    gray = core.query_video_format(vs.GRAY, fmt.sample_type, fmt.bits_per_sample, 0, 0)
    peak = 1.0 if fmt.sample_type == vs.FLOAT else (1 << fmt.bits_per_sample) - 1
    f = int(math.ceil(feather)) if feather > 0 else 0
    f = min(f, w // 2, h // 2)

    def blank(width: int, height: int, value: float) -> vs.VideoNode:
        v = value if fmt.sample_type == vs.FLOAT else int(round(value))
        return core.std.BlankClip(width=width, height=height, format=gray.id, length=1, color=[v])

    if f == 0:
        m = blank(w, h, peak)
    else:
        ramp = [peak * (i + 0.5) / feather if i + 0.5 < feather else peak for i in range(f)]
        parts_c = [blank(1, h, v) for v in ramp] + ([blank(w - 2 * f, h, peak)] if w > 2 * f else [])
        parts_r = [blank(w, 1, v) for v in ramp] + ([blank(w, h - 2 * f, peak)] if h > 2 * f else [])
        cols = core.std.StackHorizontal(parts_c + [blank(1, h, v) for v in reversed(ramp)])
        rows = core.std.StackVertical(parts_r + [blank(w, 1, v) for v in reversed(ramp)])
        expr = "x y *" if fmt.sample_type == vs.FLOAT else f"x y * {peak} /"
        m = core.std.Expr([cols, rows], expr)
    return core.std.AddBorders(m, pad, pad, pad, pad, color=[0])


_PAD = 8


def _mask_bases(fg: vs.VideoNode, feather: float) -> tuple[vs.VideoNode, vs.VideoNode | None]:
    """Padded FG-footprint masks: one at luma size and, for subsampled formats, one at
    chroma size (MaskedMerge's own first_plane chroma mask averages across FG's edge and
    would blend the outermost chroma row/column with BG)."""
    luma = _ones_mask(fg, fg.width, fg.height, feather, _PAD)
    sw, sh = fg.format.subsampling_w, fg.format.subsampling_h
    if sw == 0 and sh == 0:
        return luma, None
    chroma = _ones_mask(fg, fg.width >> sw, fg.height >> sh, feather / max(1 << sw, 1 << sh), _PAD)
    return luma, chroma


def _placed(fg: vs.VideoNode, bw: int, bh: int, x: float, y: float, s: float, feather: float, resizer,
            bases: tuple[vs.VideoNode, vs.VideoNode | None] | None = None
            ) -> tuple[vs.VideoNode, vs.VideoNode, bool] | None:
    """FG resampled into its footprint on a BG-sized canvas, the matching mask, and
    whether that mask is a luma-only (first_plane) mask. ``None`` when FG is off-canvas.

    Only the footprint (plus a margin, aligned to the chroma subsampling) is resampled;
    the rest of the canvas is a cheap border, so the cost follows FG's size, not BG's.
    """
    ssw, ssh = fg.format.subsampling_w, fg.format.subsampling_h
    sw, sh = 1 << ssw, 1 << ssh
    margin = 2
    x0 = max(0, (math.floor(x) - margin) // sw * sw)
    y0 = max(0, (math.floor(y) - margin) // sh * sh)
    x1 = min(bw, -(-(math.ceil(x + fg.width * s) + margin) // sw) * sw)
    y1 = min(bh, -(-(math.ceil(y + fg.height * s) + margin) // sh) * sh)
    if x1 <= x0 or y1 <= y0:
        return None
    w, h = x1 - x0, y1 - y0
    # zimg: output pixel j samples the source at src_left + (j + 0.5) * src_width / w - 0.5,
    # so BG pixel x0 + j sees FG coordinate (x0 + j - x) / s.
    geo = {"width": w, "height": h, "src_left": (x0 - x) / s, "src_top": (y0 - y) / s, "src_width": w / s,
           "src_height": h / s}
    layer = resizer(fg, **geo)
    lbase, cbase = bases if bases is not None else _mask_bases(fg, feather)
    mask = core.resize.Bilinear(lbase, **dict(geo, src_left=geo["src_left"] + _PAD, src_top=geo["src_top"] + _PAD))
    first_plane = cbase is None
    if cbase is not None:
        # The same placement in chroma units (exact for scale 1 with left/centre siting;
        # within a chroma pixel's edge otherwise).
        cgeo = {"width": w >> ssw, "height": h >> ssh, "src_left": (x0 - x) / (sw * s) + _PAD,
                    "src_top": (y0 - y) / (sh * s) + _PAD, "src_width": (w >> ssw) / s, "src_height": (h >> ssh) / s}
        cmask = core.resize.Bilinear(cbase, **cgeo)
        mask = core.std.ShufflePlanes([mask, cmask, cmask], [0, 0, 0], vs.YUV)
    mask = mask.std.Loop(fg.num_frames)
    borders = {"left": x0, "right": bw - x1, "top": y0, "bottom": bh - y1}
    if any(borders.values()):
        layer = core.std.AddBorders(layer, **borders)
        mask = core.std.AddBorders(mask, **borders, color=[0] * mask.format.num_planes)
    return layer, mask, first_plane


def _overlay_track(bgc: vs.VideoNode, fg: vs.VideoNode, rows: list[tuple[float, float, float]],
                   areas: list[Area], feather: float, resizer) -> vs.VideoNode:
    for r in rows:
        _check_scale(r[2])
    # one crop (and its masks) per distinct picture area: a handful, one per shot's bars
    crops = {a: _crop(fg, a) for a in set(areas)}
    bases = {a: _mask_bases(c, feather) for a, c in crops.items()}
    cache: dict[tuple[tuple[float, float, float], Area], tuple[vs.VideoNode, vs.VideoNode, bool] | None] = {}

    def at(n: int) -> vs.VideoNode:
        key = (rows[n], areas[n])
        x, y, s = rows[n]
        if key not in cache:
            # Placements repeat on a still track; build each distinct one once.
            if len(cache) > 256:
                cache.clear()
            area = areas[n]
            ax, ay = area[:2] if area else (0, 0)
            cache[key] = _placed(crops[area], bgc.width, bgc.height, x + ax * s, y + ay * s, s, feather, resizer,
                                 bases=bases[area])
        placed = cache[key]
        if placed is None:
            out = bgc
        else:
            layer, mask, first_plane = placed
            out = core.std.MaskedMerge(bgc, layer, mask, first_plane=first_plane)
        return out.std.SetFrameProps(VkX=x, VkY=y, VkScale=s)

    return core.std.FrameEval(bgc, at)
