"""Event-wise recall and detection delay: which labelled events were caught, and how late.

An event (a run of labelled points) is detected when a point inside it is predicted; its delay
is the distance from its first point to its first predicted point, in points, or in the units
of ``times`` when given (seconds for timestamps).

>>> y_true = [0, 1, 1, 1, 0, 0, 1, 1, 0, 0]
>>> y_pred = [0, 0, 0, 1, 0, 1, 0, 0, 0, 0]
>>> event_recall(y_true, y_pred)   # the first event caught at its third point, the second missed
0.5
>>> detection_delays(y_true, y_pred).tolist()
[2.0, nan]
>>> detection_delays(y_true, y_pred, times=[0, 60, 120, 180, 240, 300, 360, 420, 480, 540]).tolist()
[120.0, nan]
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from evaluation._pate_weights import Events
from evaluation._validate import as_binary, as_series, labels_and, same_length


def detection_delays(y_true: ArrayLike, y_pred: ArrayLike, *, times: ArrayLike | None = None) -> np.ndarray:
    """Per labelled event, the delay of its first detection (NaN where missed)."""
    labels, predicted = labels_and(y_true, y_pred, "y_pred", as_binary)
    axis = np.arange(labels.size, dtype=np.float64) if times is None else as_series(times, "times")
    same_length(labels, axis, "y_true and times")
    events = Events.from_labels(labels)
    hits = np.flatnonzero(predicted)
    first = np.searchsorted(hits, events.starts)  # the first prediction at or after each start
    found = first < hits.size
    found[found] = hits[first[found]] <= events.ends[found]
    delays = np.full(events.starts.size, np.nan)
    delays[found] = axis[hits[first[found]]] - axis[events.starts[found]]
    return delays


def event_recall(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """The share of labelled events detected (NaN without a labelled event)."""
    delays = detection_delays(y_true, y_pred)
    return float(np.mean(~np.isnan(delays))) if delays.size else float("nan")


def mean_detection_delay(y_true: ArrayLike, y_pred: ArrayLike, *, times: ArrayLike | None = None) -> float:
    """The mean delay over the detected events (NaN if none is detected)."""
    delays = detection_delays(y_true, y_pred, times=times)
    return float(np.nanmean(delays)) if np.any(~np.isnan(delays)) else float("nan")
