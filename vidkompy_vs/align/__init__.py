"""The prepass: where FG sits in BG and which BG frame goes under each FG frame.

:func:`align` runs the stages of :mod:`.pipeline`; one module per stage:
:mod:`.inputs` (the request, both inputs probed), :mod:`.plan` (what runs),
:mod:`.passes` (the decode passes and the audio line, started early),
:mod:`.footprint` (the chain of footprint finders; :mod:`.anchored` is one),
:mod:`.prints` (fingerprints on the footprint), :mod:`.matching` (the map, re-matches and
the refinement), :mod:`.results` (the result cache), :mod:`.run` (one call's record).
"""

from ..settings import Settings, load_preset
from .inputs import METHODS
from .pipeline import align

__all__ = ["align", "load_preset", "Settings", "METHODS"]
