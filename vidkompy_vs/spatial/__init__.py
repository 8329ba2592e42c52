"""Spatial alignment: where FG (scaled by ``scale``) sits inside BG, to a fraction of a pixel.

- :mod:`.pair`: one frame pair (NCC on a pyramid, ORB features, ECC to sub-pixel):
  :func:`estimate`;
- :mod:`.coarse`: the search before the temporal map (FG's middle frames against BG's
  window around the proportional time): :func:`coarse_from_clips`, :func:`scan_window`;
- :mod:`.refine`: after the map, estimates on matched pairs combined robustly, or a
  per-frame track when BG's framing drifts: :func:`refine_from_clips`;
- :mod:`.reads`: BG windows by one sequential in-process decode (:func:`window_frames`);
- :mod:`.common`: the pyramid image, exact resizes, the scale grid, the combination.

Convention: pixel *corners* (zimg/OpenCV ``resize``): FG scaled by ``scale`` has its
top-left corner at (``x``, ``y``) in BG pixels.
"""

from __future__ import annotations

from ..alignment import Placement
from .coarse import Coarse, Scan, coarse_from_clips, coarse_samples, scan_window
from .pair import estimate
from .reads import window_frames
from .refine import refine_from_clips, refine_samples

__all__ = ["Placement", "estimate", "coarse_from_clips", "Coarse", "refine_from_clips", "refine_samples",
           "coarse_samples", "scan_window", "Scan", "window_frames"]
