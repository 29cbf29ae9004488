"""A scorer's NaN ("no opinion yet") made finite, for what takes finite scores only: the metrics
of ``evaluation`` and the score files they read.

The lowest finite score of the series puts each such point with the series' most normal ones,
so it ranks below every alarm and adds no false one.

>>> fill_no_opinion(np.array([np.nan, 2.0, 1.0, np.nan])).tolist()
[1.0, 2.0, 1.0, 1.0]
>>> fill_no_opinion(np.array([np.nan, np.nan])).tolist()
[0.0, 0.0]
"""

from __future__ import annotations

import numpy as np


def fill_no_opinion(scores: np.ndarray) -> np.ndarray:
    """One series' scores with each NaN replaced by its lowest finite score (0.0 if it has none)."""
    scores = np.asarray(scores, dtype=np.float64)
    finite = scores[np.isfinite(scores)]
    return np.where(np.isnan(scores), finite.min() if finite.size else 0.0, scores)
