"""vidkompy-vs: lay a foreground video onto a background video, aligned in space and time,
as VapourSynth filters.

Library entry points: :func:`vidkompy_vs.align.align` (the prepass),
:func:`vidkompy_vs.filters.composite` / ``remap`` / ``overlay`` (the frame-server half),
:class:`vidkompy_vs.alignment.Alignment` (the JSON file between them).
"""

__version__ = "0.1.0"
