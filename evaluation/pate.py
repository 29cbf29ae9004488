"""PATE, the Proximity-Aware Time series anomaly Evaluation (Ghorbani et al., KDD 2024).

Detections shortly before (pre-buffer) or after (post-buffer) a labelled event earn partial
credit that falls with their distance to the event; points of a detected event left undetected
cost less the later they lie. :func:`pate` scores continuous anomaly scores by the area under
this weighted precision-recall curve, :func:`pate_f1` scores binary predictions by the
weighted F1; both average over a grid of buffer sizes.

By default the numbers equal the reference package ``pate`` 0.1.1, defects included
(``docs/pate.md`` lists them); ``variant="corrected"`` repairs those that ``docs/pate.md``
marks as such.

>>> y_true = [0, 0, 1, 1, 0, 0, 0, 0]
>>> round(pate_f1(y_true, [0, 0, 1, 1, 0, 0, 0, 0], early_buffer=2, delay_buffer=2), 6)
1.0
>>> round(pate_f1(y_true, [0, 0, 0, 0, 1, 0, 0, 0], early_buffer=2, delay_buffer=2), 6)  # late, event missed
0.117647
>>> round(pate(y_true, [0.1, 0.2, 0.9, 0.8, 0.3, 0.0, 0.1, 0.2], early_buffer=2, delay_buffer=2), 6)
1.0
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from evaluation._pate_weights import Events, missed_mass, true_positive_mass
from evaluation._validate import as_binary, as_series, non_negative_int, positive_int, same_length

Variant = Literal["reference", "corrected"]
VARIANTS = ("reference", "corrected")


def pate(y_true: ArrayLike, y_score: ArrayLike, *, early_buffer: int = 100, delay_buffer: int = 100,
         num_splits: int = 1, include_zero: bool = True, big_data: bool = True, num_thresholds: int = 250,
         drop_intermediate: bool = True, variant: Variant = "reference") -> float:
    """PATE of continuous scores: the area under the buffer-weighted PR curve, averaged over buffers.

    ``y_true`` holds 0/1 labels, ``y_score`` finite scores (higher = more anomalous), one per
    point. The buffer grid is :func:`buffer_sizes` of ``early_buffer`` times that of
    ``delay_buffer``; the thresholds are :func:`threshold_grid`. The keywords mirror the
    reference's ``e_buffer``, ``d_buffer``, ``num_splits_MaxBuffer``, ``include_zero``,
    ``Big_Data``, ``num_desired_thresholds`` and ``drop_intermediate``.
    """
    labels, scores = _checked(y_true, y_score, "y_score", as_series)
    pairs = _buffer_pairs(early_buffer, delay_buffer, num_splits, include_zero)
    corrected = _is_corrected(variant)
    thresholds = threshold_grid(labels, scores, big_data=big_data,
                                num_thresholds=positive_int(num_thresholds, "num_thresholds"),
                                drop_intermediate=drop_intermediate and not corrected)
    ordered = np.sort(scores)
    entry = scores.size - np.searchsorted(ordered, scores, side="right")  # points scoring higher
    cutoffs = scores.size - np.searchsorted(ordered, thresholds, side="left")  # points >= threshold
    areas = [pr_area(precision, recall, anchor_first=corrected)
             for precision, recall in _curves(labels, entry, cutoffs, pairs, corrected)]
    return float(np.mean(areas))


def pate_f1(y_true: ArrayLike, y_pred: ArrayLike, *, early_buffer: int = 100, delay_buffer: int = 100,
            num_splits: int = 1, include_zero: bool = True, variant: Variant = "reference") -> float:
    """PATE-F1 of binary predictions (0/1 per point), averaged over the buffer grid."""
    labels, predicted = _checked(y_true, y_pred, "y_pred", as_binary)
    pairs = _buffer_pairs(early_buffer, delay_buffer, num_splits, include_zero)
    count = int(predicted.sum())
    entry = np.where(predicted, 0, count)  # the predicted points enter first, all at once
    scores = [_f1(precision[0], recall[0])
              for precision, recall in _curves(labels, entry, np.array([count]), pairs, _is_corrected(variant))]
    return float(np.mean(scores))


def buffer_sizes(max_size: int, num_splits: int, include_zero: bool) -> np.ndarray:
    """The buffer sizes tried: ``num_splits`` even steps up to ``max_size``, 0 too if asked.

    >>> buffer_sizes(100, 3, include_zero=True).tolist()
    [0, 33, 66, 100]
    >>> buffer_sizes(100, 3, include_zero=False).tolist()
    [33, 66, 100]
    """
    if include_zero:
        return np.linspace(0, max_size, num_splits + 1).astype(np.int64)
    return np.linspace(max_size / num_splits, max_size, num_splits).astype(np.int64)


def threshold_grid(y_true: np.ndarray, y_score: np.ndarray, *, big_data: bool = True, num_thresholds: int = 250,
                   drop_intermediate: bool = True) -> np.ndarray:
    """The thresholds the reference tries, from the highest down.

    The distinct scores, less (``drop_intermediate``) those inside a run where the count of
    labelled points at or above the threshold stays the same; with ``big_data``,
    ``num_thresholds`` linear-interpolation percentiles of those, from 100 down to 0.

    >>> y_true, y_score = np.array([0, 1, 0, 0]) == 1, np.array([0.1, 0.9, 0.4, 0.3])
    >>> threshold_grid(y_true, y_score, big_data=False, drop_intermediate=False).tolist()
    [0.9, 0.4, 0.3, 0.1]
    >>> threshold_grid(y_true, y_score, big_data=False).tolist()
    [0.9, 0.1]
    >>> threshold_grid(y_true, y_score, num_thresholds=3).tolist()
    [0.9, 0.5, 0.1]
    """
    distinct = np.unique(y_score)[::-1]
    if drop_intermediate and distinct.size > 2:
        positives = np.sort(y_score[y_true])
        at_or_above = positives.size - np.searchsorted(positives, distinct, side="left")
        changes = np.diff(at_or_above) != 0
        distinct = distinct[np.concatenate(([True], changes[:-1] | changes[1:], [True]))]
    if not big_data:
        return distinct
    return _percentiles(distinct[::-1], np.linspace(100, 0, num_thresholds) / 100)


def pr_area(precision: np.ndarray, recall: np.ndarray, anchor_first: bool = False) -> float:
    """Trapezoid area under a PR curve, from the highest threshold down.

    The curve starts at (recall 0, precision 1) (``anchor_first``: at the first threshold's
    precision instead); a point whose recall falls below an earlier one is dropped.

    >>> pr_area(np.array([1.0, 0.5]), np.array([0.5, 1.0]))
    0.875
    """
    start = precision[0] if anchor_first and precision.size else 1.0
    precision = np.concatenate(([start], precision))
    recall = np.concatenate(([0.0], recall))
    earlier_best = np.concatenate(([-1.0], np.maximum.accumulate(recall)[:-1]))
    kept = recall >= earlier_best
    precision, recall = precision[kept], recall[kept]
    return float(np.sum(np.diff(recall) * (precision[1:] + precision[:-1]) / 2.0))


def _checked(y_true: ArrayLike, y_other: ArrayLike, other_name: str, as_other) -> tuple[np.ndarray, np.ndarray]:
    labels = as_binary(y_true, "y_true")
    other = as_other(y_other, other_name)
    same_length(labels, other, f"y_true and {other_name}")
    return labels, other


def _is_corrected(variant: str) -> bool:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    return variant == "corrected"


def _buffer_pairs(early_buffer: int, delay_buffer: int, num_splits: int, include_zero: bool) -> list[tuple[int, int]]:
    """Every (early, delay) pair of the buffer grid, in the reference's order."""
    num_splits = positive_int(num_splits, "num_splits")
    earlies = buffer_sizes(non_negative_int(early_buffer, "early_buffer"), num_splits, include_zero)
    delays = buffer_sizes(non_negative_int(delay_buffer, "delay_buffer"), num_splits, include_zero)
    return [(int(early), int(delay)) for early in earlies for delay in delays]


def _curves(labels: np.ndarray, entry: np.ndarray, cutoffs: np.ndarray, pairs: list[tuple[int, int]],
            corrected: bool):
    """Per buffer pair, precision and recall of each prediction ``entry < cutoff``."""
    events = Events.from_labels(labels)
    unique_cutoffs, which = np.unique(cutoffs, return_inverse=True)
    fn = missed_mass(events, entry, unique_cutoffs, coverage_onset=corrected)[which]
    entered = np.concatenate(([0], np.bincount(entry, minlength=entry.size).cumsum()))
    count = entered[cutoffs]  # points predicted at each cutoff
    for early, delay in pairs:
        tp = true_positive_mass(events, entry, early, delay, gate_delay=corrected)[cutoffs]
        precision = np.divide(tp, count, out=np.zeros_like(tp), where=count > 0)
        recall = np.divide(tp, tp + fn, out=np.zeros_like(tp), where=tp + fn > 0)
        yield precision, recall


def _f1(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2 * (precision * recall) / (precision + recall)


def _percentiles(ascending: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """numpy's 'linear' quantiles of sorted values, with its exact rounding (as in numpy 1.24)."""
    last = ascending.size - 1
    virtual = last * quantiles
    below = np.floor(virtual)
    at_end = virtual >= last
    lower = np.where(at_end, last, below).astype(np.intp)
    upper = np.where(at_end, last, below + 1).astype(np.intp)
    gamma = np.where(at_end, 0.0, virtual - below)
    low, high = ascending[lower], ascending[upper]
    step = high - low
    return np.where(gamma >= 0.5, high - step * (1 - gamma), low + step * gamma)
