"""A batch's items grouped by key (a stream's row), in arrival order within each key: what
batched per-stream updates (windows, thresholds) need to stay exactly sequential.

>>> runs = key_runs(np.array([7, 3, 7, 7]))
>>> runs.order.tolist(), runs.keys.tolist(), runs.rank.tolist(), runs.last.tolist()
([1, 0, 2, 3], [3, 7, 7, 7], [0, 0, 1, 2], [True, False, False, True])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class KeyRuns:
    order: np.ndarray  # positions of the items, sorted by key, stable
    keys: np.ndarray  # the keys in that order
    first: np.ndarray  # (sorted) the first item of its key
    last: np.ndarray  # (sorted) the last item of its key
    start: np.ndarray  # (sorted) where the item's key run starts
    rank: np.ndarray  # (sorted) earlier items of the same key


def key_runs(keys: np.ndarray) -> KeyRuns:
    order = np.argsort(keys, kind="stable")
    by_key = keys[order]
    n = len(by_key)
    first, last = np.ones(n, dtype=bool), np.ones(n, dtype=bool)
    first[1:] = last[:-1] = by_key[1:] != by_key[:-1]
    position = np.arange(n)
    start = np.maximum.accumulate(np.where(first, position, 0))
    return KeyRuns(order, by_key, first, last, start, position - start)
