"""Input checks shared by the metrics: one clear, one-line error per bad input.

The error is :class:`evaluation.errors.EvaluationInputError`, a ValueError.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from evaluation.errors import EvaluationInputError


def as_series(values: ArrayLike, name: str) -> np.ndarray:
    """A non-empty 1-D float array without NaN or infinity."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise EvaluationInputError(f"{name} must be numeric: {err}") from None
    if array.ndim != 1:
        raise EvaluationInputError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        raise EvaluationInputError(f"{name} is empty")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise EvaluationInputError(f"{name} holds {bad.size} NaN or infinite value(s), the first at index {bad[0]}")
    return array


def as_binary(values: ArrayLike, name: str) -> np.ndarray:
    """A non-empty 1-D boolean array from values that are all 0 or 1."""
    array = as_series(values, name)
    bad = np.flatnonzero((array != 0) & (array != 1))
    if bad.size:
        raise EvaluationInputError(f"{name} must hold only 0 and 1, found {array[bad[0]]!r} at index {bad[0]}")
    return array == 1


def same_length(first: np.ndarray, second: np.ndarray, names: str) -> None:
    """Raise unless the two series have the same length."""
    if first.size != second.size:
        raise EvaluationInputError(f"{names} differ in length: {first.size} != {second.size}")


def non_negative_int(value: object, name: str) -> int:
    """An int >= 0 (bools and non-integral numbers are refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise EvaluationInputError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def positive_int(value: object, name: str) -> int:
    """An int >= 1."""
    if non_negative_int(value, name) == 0:
        raise EvaluationInputError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def labels_and(y_true: ArrayLike, other: ArrayLike, other_name: str,
               as_other=as_series) -> tuple[np.ndarray, np.ndarray]:
    """Checked 0/1 labels and a checked series of the same length (scores, or predictions with as_binary)."""
    labels = as_binary(y_true, "y_true")
    checked = as_other(other, other_name)
    same_length(labels, checked, f"y_true and {other_name}")
    return labels, checked


def fraction(value: object, name: str) -> float:
    """A float in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not 0 <= value <= 1:
        raise EvaluationInputError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def choice(value: object, name: str, options: tuple[str, ...]) -> str:
    """One of the named options."""
    if value not in options:
        raise EvaluationInputError(f"{name} must be one of {', '.join(options)}; got {value!r}")
    return str(value)
