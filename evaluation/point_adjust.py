"""Point-adjusted precision, recall and F1 (Xu et al., WWW 2018).

A labelled event with at least one predicted point counts as wholly predicted; then precision,
recall and F1 are taken point-wise. It flatters detectors (one hit anywhere in a long event is
a full event), which is why PATE and the range-based metrics exist; it stays as the figure many
papers report.

TSB-AD's ``_adjust_predicts`` misses the first point of the series when an event starts there
and is detected later (its backward fill stops at index 1); here the whole event is credited.

>>> y_true = [0, 1, 1, 1, 1, 0, 0, 0, 1, 1]
>>> point_adjusted(y_true, [0, 0, 0, 1, 0, 0, 1, 0, 0, 0])   # event 1 hit, 1 FP, event 2 missed
PrecisionRecall(precision=0.8, recall=0.6666666666666666, f1=0.7272727272727272)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from evaluation._pate_weights import Events
from evaluation._validate import as_binary, labels_and


class PrecisionRecall(NamedTuple):
    """Precision, recall and their harmonic mean."""

    precision: float
    recall: float
    f1: float


def adjust_predictions(y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    """The predictions with every touched labelled event filled in.

    >>> adjust_predictions([0, 1, 1, 1, 0], [0, 0, 1, 0, 1]).astype(int).tolist()
    [0, 1, 1, 1, 1]
    """
    labels, predicted = labels_and(y_true, y_pred, "y_pred", as_binary)
    adjusted = predicted.copy()
    events = Events.from_labels(labels)
    hits = np.concatenate(([0], np.cumsum(predicted)))
    for start, end in zip(events.starts, events.ends):
        if hits[end + 1] > hits[start]:
            adjusted[start:end + 1] = True
    return adjusted


def point_adjusted(y_true: ArrayLike, y_pred: ArrayLike) -> PrecisionRecall:
    """Point-wise precision, recall and F1 after :func:`adjust_predictions` (see :func:`pointwise`)."""
    labels = as_binary(y_true, "y_true")
    return pointwise(labels, adjust_predictions(labels, y_pred))


def point_adjusted_f1(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Point-adjusted F1 (see :func:`point_adjusted`)."""
    return point_adjusted(y_true, y_pred).f1


def pointwise(labels: np.ndarray, predicted: np.ndarray) -> PrecisionRecall:
    """Plain point-wise precision, recall and F1 of boolean arrays.

    Precision is 0 without a predicted point; recall (and F1) NaN without a labelled one.
    """
    tp = float(np.sum(labels & predicted))
    precision = tp / predicted.sum() if predicted.any() else 0.0
    recall = tp / labels.sum() if labels.any() else float("nan")
    return PrecisionRecall(float(precision), float(recall), f1_of(precision, recall))


def f1_of(precision: float, recall: float) -> float:
    """Harmonic mean, 0 when both are 0 (NaN if either is NaN)."""
    return 0.0 if precision + recall == 0 else float(2 * precision * recall / (precision + recall))
