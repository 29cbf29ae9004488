"""Range-based precision, recall and F1 (Tatbul et al., "Precision and Recall for Time Series", NeurIPS 2018).

Recall of labelled ranges ``R_i`` against predicted ranges ``P_j``::

    recall    = mean_i [ alpha * existence(R_i) + (1 - alpha) * cardinality(R_i) * sum_j w(R_i, R_i & P_j) ]
    precision = mean_j [ cardinality(P_j) * sum_i w(P_j, P_j & R_i) ]

``existence`` is 1 when ``R_i`` overlaps any prediction; ``w(A, S)`` is the bias-weighted share
of range ``A``'s positions that lie in ``S`` (``flat``: every position weighs 1; ``front``: the
first weighs most; ``back``: the last; ``middle``: the centre); ``cardinality`` is 1 when the
range overlaps at most one range of the other side and otherwise ``1 / x`` (``reciprocal``, for
``x`` overlapping ranges) or 1 (``one``). The defaults (``alpha=0``, ``reciprocal``, ``flat``)
are the paper's. Precision is 0 without a predicted range, recall NaN without a labelled one.

For ``flat`` bias the numbers equal TSB-AD's ``range_recall_new`` (fixtures in
``tests/fixtures/vus``); TSB-AD feeds absolute series positions to its other biases, a defect
this module does not copy.

>>> y_true = [0, 1, 1, 1, 1, 0, 0, 0, 0, 0]
>>> y_pred = [0, 0, 0, 1, 1, 1, 0, 0, 1, 0]
>>> range_precision_recall(y_true, y_pred)   # recall 2/4; precision (2/3 + 0) / 2
PrecisionRecall(precision=0.3333333333333333, recall=0.5, f1=0.4)
>>> range_precision_recall(y_true, y_pred, alpha=0.5).recall   # existence rewards half
0.75
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from evaluation._pate_weights import Events
from evaluation._validate import as_binary, choice, fraction, labels_and
from evaluation.point_adjust import PrecisionRecall, f1_of

BIASES = ("flat", "front", "back", "middle")
CARDINALITIES = ("reciprocal", "one")


def range_precision_recall(y_true: ArrayLike, y_pred: ArrayLike, *, alpha: float = 0.0,
                           cardinality: str = "reciprocal", recall_bias: str = "flat",
                           precision_bias: str = "flat") -> PrecisionRecall:
    """Range-based precision, recall (with existence weight ``alpha``) and their F1."""
    labels, predicted = labels_and(y_true, y_pred, "y_pred", as_binary)
    alpha = fraction(alpha, "alpha")
    cardinality = choice(cardinality, "cardinality", CARDINALITIES)
    recall_bias = choice(recall_bias, "recall_bias", BIASES)
    precision_bias = choice(precision_bias, "precision_bias", BIASES)
    truth, guesses = Events.from_labels(labels), Events.from_labels(predicted)
    recall = _mean_reward(truth, guesses, predicted, alpha, cardinality, recall_bias)
    precision = _mean_reward(guesses, truth, labels, 0.0, cardinality, precision_bias)
    precision = 0.0 if np.isnan(precision) else precision
    return PrecisionRecall(precision, recall, f1_of(precision, recall))


def range_f1(y_true: ArrayLike, y_pred: ArrayLike, **options) -> float:
    """Range-based F1 (see :func:`range_precision_recall`)."""
    return range_precision_recall(y_true, y_pred, **options).f1


def bias_weights(lengths: np.ndarray, bias: str) -> tuple[np.ndarray, np.ndarray]:
    """Per position of ranges of the given lengths, its bias weight and its range's index.

    >>> bias_weights(np.array([4, 3]), "middle")[0].tolist()
    [1, 2, 2, 1, 1, 2, 1]
    """
    owner = np.repeat(np.arange(lengths.size), lengths)
    first = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    position = np.arange(owner.size) - first[owner] + 1  # 1-based within the range
    length = lengths[owner]
    weight = {"flat": np.ones_like(position), "front": length - position + 1, "back": position,
              "middle": np.where(position <= length / 2, position, length - position + 1)}[bias]
    return weight, owner


def _mean_reward(ranges: Events, others: Events, others_mask: np.ndarray, alpha: float, cardinality: str,
                 bias: str) -> float:
    """Mean over ``ranges`` of alpha * existence + (1 - alpha) * cardinality * weighted overlap."""
    if ranges.starts.size == 0:
        return float("nan")
    weight, owner = bias_weights(ranges.lengths, bias)
    before = np.cumsum(ranges.lengths) - ranges.lengths  # positions of earlier ranges
    points = np.arange(owner.size) + np.repeat(ranges.starts - before, ranges.lengths)
    covered = np.bincount(owner, weights=weight * others_mask[points], minlength=ranges.starts.size)
    share = covered / np.bincount(owner, weights=weight, minlength=ranges.starts.size)
    first = np.searchsorted(others.ends, ranges.starts, side="left")
    past = np.searchsorted(others.starts, ranges.ends, side="right")
    overlapping = past - first
    factor = np.where((overlapping <= 1) | (cardinality == "one"), 1.0, 1.0 / np.maximum(overlapping, 1))
    reward = alpha * (overlapping > 0) + (1 - alpha) * factor * share
    return float(reward.mean())
