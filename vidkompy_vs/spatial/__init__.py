"""Spatial alignment: where FG (scaled by ``scale``) sits inside BG, to a fraction of a pixel.

- :mod:`.pair`: one frame pair (NCC on a pyramid, ORB features, ECC to sub-pixel):
  :func:`estimate`;
- :mod:`.coarse`: the search before the temporal map (FG's middle frames against BG's
  window around the proportional time): :func:`coarse_from_clips`, :func:`scan_window`;
- :mod:`.refine`: after the map, estimates on matched pairs combined robustly, or a
  per-frame track when BG's framing drifts: :func:`refine_from_clips`;
- :mod:`.reads`: BG windows by one sequential in-process decode (:func:`window_frames`);
- :mod:`.fast`: keypoints for scale and position before any scale grid;
- :mod:`.common`: the pyramid image, exact resizes, the scale grid, the combination;
- :mod:`.samples`: which frames the searches look at.

Convention: pixel *corners* (zimg/OpenCV ``resize``): FG scaled by ``scale`` has its
top-left corner at (``x``, ``y``) in BG pixels.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ..alignment import Placement
from .samples import coarse_samples, refine_samples

if TYPE_CHECKING:
    from .coarse import Coarse, Scan, coarse_from_clips, scan_window
    from .pair import estimate
    from .reads import window_frames
    from .refine import refine_from_clips

# The engine's modules import OpenCV (a few tenths of a second): loaded on first use, so
# that ``import vidkompy_vs.align`` stays light and the import runs beside the probes
_LAZY = {"Coarse": "coarse", "Scan": "coarse", "coarse_from_clips": "coarse", "scan_window": "coarse",
         "estimate": "pair", "window_frames": "reads", "refine_from_clips": "refine"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Placement", "estimate", "coarse_from_clips", "Coarse", "refine_from_clips", "refine_samples",
           "coarse_samples", "scan_window", "Scan", "window_frames"]
