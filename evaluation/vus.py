"""VUS-ROC and VUS-PR, the volumes under range-based ROC and PR surfaces (Paparrizos et al., VLDB 2022).

Each labelled event gets soft borders: a point ``d`` steps outside an event of a window of size
``w`` counts as ``sqrt(1 - d / w)`` of a label, up to ``w // 2`` steps on each side. For each
``w`` from 0 to ``window`` a range-aware ROC and PR curve is traced over ``num_thresholds``
thresholds, and the areas are averaged over the windows. The numbers equal TSB-AD's
``generate_curve(..., version="opt")`` (``RangeAUC_volume_opt``) to rounding; tests compare
them with fixtures made by TSB-AD's own code (``tests/fixtures/vus``).

The reference loops over windows, thresholds and events with a full pass over the series each
time; here each threshold's counts come from one sort and cumulative sums, so a window costs
O(n) (plus its soft-border points) instead of O(n * num_thresholds).

>>> y_true = [0, 0, 0, 1, 1, 0, 0, 0, 0, 0]
>>> result = vus(y_true, [0, 0.1, 0.2, 0.9, 0.8, 0.3, 0.1, 0, 0, 0], window=2, num_thresholds=10)
>>> round(result.roc, 6), round(result.pr, 6)
(1.0, 1.0)
>>> round(vus_pr(y_true, [0.9, 0.1, 0.2, 0.3, 0.2, 0.3, 0.1, 0, 0, 0.5], window=2, num_thresholds=10), 6)
0.349728
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from evaluation._pate_weights import Events
from evaluation._validate import labels_and, non_negative_int, positive_int


class VUS(NamedTuple):
    """Both volumes of one call."""

    roc: float
    pr: float


def vus(y_true: ArrayLike, y_score: ArrayLike, *, window: int = 100, num_thresholds: int = 250) -> VUS:
    """VUS-ROC and VUS-PR of continuous scores against 0/1 labels (NaN for both without a labelled point).

    ``window`` is TSB-AD's ``slidingWindow`` (the largest border window; 0 gives the plain
    range-based curves), ``num_thresholds`` its ``thre``: the thresholds are the scores at
    ``num_thresholds`` evenly spaced ranks of the scores sorted from the highest down.
    """
    labels, scores = labels_and(y_true, y_score, "y_score")
    window = non_negative_int(window, "window")
    num_thresholds = positive_int(num_thresholds, "num_thresholds")
    events = Events.from_labels(labels)
    if events.starts.size == 0:
        return VUS(float("nan"), float("nan"))
    n = scores.size
    ascending = np.sort(scores)
    thresholds = ascending[::-1][np.linspace(0, n - 1, num_thresholds).astype(int)]
    predicted = (n - np.searchsorted(ascending, thresholds, side="left")).astype(np.float64)
    labelled = np.sort(scores[labels])
    hits_in_events = labelled.size - np.searchsorted(labelled, thresholds, side="left")
    border = _BorderPoints(labels, scores, events, window)
    positives = float(labels.sum())
    roc = np.empty(window + 1)
    pr = np.empty(window + 1)
    for w in range(window + 1):
        soft_hits = border.soft_hits(w, thresholds)
        true_pos = hits_in_events + soft_hits
        half_positives = (positives + positives + soft_hits) / 2
        found = _detected_ranges(scores, events, w, thresholds)
        tpr = np.minimum(true_pos / half_positives, 1.0) * found
        fpr = (predicted - true_pos) / (n - half_positives)
        tpr_curve = np.concatenate(([0.0], tpr, [1.0]))
        fpr_curve = np.concatenate(([0.0], fpr, [1.0]))
        roc[w] = np.dot(np.diff(fpr_curve), (tpr_curve[1:] + tpr_curve[:-1]) / 2)
        pr[w] = np.dot(np.diff(tpr_curve[:-1]), true_pos / predicted)
    return VUS(float(roc.mean()), float(pr.mean()))


def vus_roc(y_true: ArrayLike, y_score: ArrayLike, *, window: int = 100, num_thresholds: int = 250) -> float:
    """VUS-ROC (see :func:`vus`)."""
    return vus(y_true, y_score, window=window, num_thresholds=num_thresholds).roc


def vus_pr(y_true: ArrayLike, y_score: ArrayLike, *, window: int = 100, num_thresholds: int = 250) -> float:
    """VUS-PR (see :func:`vus`)."""
    return vus(y_true, y_score, window=window, num_thresholds=num_thresholds).pr


class _BorderPoints:
    """The unlabelled points within ``window // 2`` of an event, ordered by score from the highest down."""

    def __init__(self, labels: np.ndarray, scores: np.ndarray, events: Events, window: int):
        near = np.zeros(labels.size, dtype=bool)
        reach = window // 2
        for start, end in zip(events.starts, events.ends):
            near[max(start - reach, 0):end + reach + 1] = True
        near &= ~labels
        points = np.flatnonzero(near)
        self.order = points[np.argsort(-scores[points], kind="stable")]
        self.ascending_scores = np.sort(scores[points])
        self.events = events
        self.size = labels.size
        self.labels = labels

    def soft_hits(self, window: int, thresholds: np.ndarray) -> np.ndarray:
        """Per threshold, the summed soft label of the border points scoring at or above it."""
        if self.order.size == 0 or window < 2:
            return np.zeros(thresholds.size)
        soft = np.zeros(self.size)
        reach = window // 2
        where, value = [], []
        for start, end in zip(self.events.starts, self.events.ends):
            after = np.arange(end + 1, min(end + reach + 1, self.size))
            before = np.arange(max(start - reach, 0), start)
            where += [after, before]
            value += [np.sqrt(1 - (after - end) / window), np.sqrt(1 - (start - before) / window)]
        np.add.at(soft, np.concatenate(where), np.concatenate(value))
        running = np.concatenate(([0.0], np.cumsum(np.minimum(soft[self.order], 1.0))))
        count = self.ascending_scores.size - np.searchsorted(self.ascending_scores, thresholds, side="left")
        return running[count]


def _detected_ranges(scores: np.ndarray, events: Events, window: int, thresholds: np.ndarray) -> np.ndarray:
    """Per threshold, the share of the merged soft-bordered event ranges holding a point at or above it."""
    reach = window // 2
    starts = np.maximum(events.starts - reach, 0)
    ends = np.minimum(events.ends + reach, scores.size - 1)
    separate = events.ends[:-1] + reach < events.starts[1:] - reach
    first = np.concatenate(([True], separate))
    last = np.concatenate((separate, [True]))
    starts, ends = starts[first], ends[last]
    bounds = np.stack([starts, ends + 1], axis=1).ravel()
    peaks = np.maximum.reduceat(np.append(scores, -np.inf), bounds)[::2]
    return (peaks[None, :] >= thresholds[:, None]).sum(axis=1) / peaks.size
