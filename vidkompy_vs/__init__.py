"""vidkompy-vs: lay a foreground video onto a background video, aligned in space and time,
as VapourSynth filters.

Library entry points: :func:`vidkompy_vs.align.align` (the prepass, a package of stages),
:func:`vidkompy_vs.filters.composite` / ``remap`` / ``overlay`` (the frame-server half),
:class:`vidkompy_vs.alignment.Alignment` (the JSON file between them).
"""

import logging

__version__ = "0.1.0"

# a library logs and leaves the handlers to the application (the CLI's --debug shows them)
logging.getLogger("vidkompy_vs").addHandler(logging.NullHandler())
