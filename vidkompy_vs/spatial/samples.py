"""Which frames the spatial searches look at: plain arithmetic, no OpenCV, so that the plan
can name them before the engine is imported (it loads beside the probes)."""

from __future__ import annotations

import numpy as np

COARSE_AT = (0.4, 0.5, 0.6)


def coarse_samples(nf: int, at: tuple[float, ...] = COARSE_AT) -> list[int]:
    """FG frames the coarse search matches (at these fractions of FG): by default FG's
    middle, the part most likely inside BG."""
    return sorted({int(round(q * (nf - 1))) for q in at})


def refine_samples(nf: int) -> list[int]:
    """The FG frames :func:`refine_from_clips` estimates on (spread over the clip), so
    that a caller decoding the inputs anyway can keep those pictures for it."""
    n = min(nf, 9)
    return sorted({int(round(v)) for v in np.linspace(0.04 * (nf - 1), 0.96 * (nf - 1), n)})
