"""Input checks shared by the metrics: one clear, one-line ValueError per bad input."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def as_series(values: ArrayLike, name: str) -> np.ndarray:
    """A non-empty 1-D float array without NaN or infinity."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be numeric: {err}") from None
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ValueError(f"{name} holds {bad.size} NaN or infinite value(s), the first at index {bad[0]}")
    return array


def as_binary(values: ArrayLike, name: str) -> np.ndarray:
    """A non-empty 1-D boolean array from values that are all 0 or 1."""
    array = as_series(values, name)
    bad = np.flatnonzero((array != 0) & (array != 1))
    if bad.size:
        raise ValueError(f"{name} must hold only 0 and 1, found {array[bad[0]]!r} at index {bad[0]}")
    return array == 1


def same_length(first: np.ndarray, second: np.ndarray, names: str) -> None:
    """Raise unless the two series have the same length."""
    if first.size != second.size:
        raise ValueError(f"{names} differ in length: {first.size} != {second.size}")


def non_negative_int(value: object, name: str) -> int:
    """An int >= 0 (bools and non-integral numbers are refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def positive_int(value: object, name: str) -> int:
    """An int >= 1."""
    if non_negative_int(value, name) == 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)
