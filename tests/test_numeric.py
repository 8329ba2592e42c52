"""numeric's peak, on an input small enough to check by hand."""

from __future__ import annotations

import numpy as np

from vidkompy_vs.numeric import peak


def test_peak_is_subpixel() -> None:
    y, x = np.mgrid[0:9, 0:11]
    m = (-((x - 4.3) ** 2) - (y - 6.0) ** 2).astype(np.float32)  # a parabola: the fit is exact
    v, px, py = peak(m)
    assert abs(px - 4.3) < 1e-4 and abs(py - 6.0) < 1e-4 and v == float(m.max())
