"""AUC-ROC and AUC-PR: the point-wise, threshold-free baselines (scikit-learn's definitions).

AUC-PR is scikit-learn's ``average_precision_score`` (a step-wise sum, no interpolation), as
TSB-AD reports it. Both are NaN when the labels hold a single class.

>>> auc_roc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
0.75
>>> round(auc_pr([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), 6)
0.833333
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import average_precision_score, roc_auc_score

from evaluation._validate import labels_and


def auc_roc(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Area under the point-wise ROC curve (NaN if only one class is labelled)."""
    labels, scores = labels_and(y_true, y_score, "y_score")
    return float(roc_auc_score(labels, scores)) if _both_classes(labels) else float("nan")


def auc_pr(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Average precision of the point-wise PR curve (NaN if only one class is labelled)."""
    labels, scores = labels_and(y_true, y_score, "y_score")
    return float(average_precision_score(labels, scores)) if _both_classes(labels) else float("nan")


def _both_classes(labels: np.ndarray) -> bool:
    return 0 < int(labels.sum()) < labels.size
