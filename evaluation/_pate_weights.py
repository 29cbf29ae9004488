"""PATE's weighted true-positive and false-negative mass, for many nested predictions at once.

A prediction is described by ``entry``: point ``x`` is predicted at cutoff ``k`` when
``entry[x] < k``. Lowering a threshold raises the cutoff, so one sweep over the points in entry
order gives every threshold's counts (O(n) per buffer pair instead of O(n) per threshold).

Zones around labelled event ``i`` (inclusive index ranges ``[s_i, e_i]``, length ``L_i``):

- pre-buffer ``[p_i, s_i - 1]`` with ``p_i = max(0, s_i - early, q_{i-1} + 1)``,
- the event itself ``[s_i, e_i]``,
- post-buffer ``[e_i + 1, q_i]`` with ``q_i = min(e_i + delay, s_{i+1} - 1)`` (or ``n - 1``),
- everything else is outside.

A predicted point in the event weighs 1. In a buffer its weight falls linearly from 1 next to
the event to 0 at the buffer's far end, measured as the summed distance to the event's points:
``1 - sum_y |x - y| / sum_y |b - y|`` with ``b`` the far end. Pre-buffer weight counts only once
the event is detected (``gate_delay`` applies the same rule to the post-buffer). Every
predicted point's true- and false-positive weights add to 1, so false positives are the count
of predicted points minus the true-positive mass.

A missed point of a detected event weighs 1 up to ``s_i + delta`` and ``1 - D / M`` beyond,
with ``D = sum_{y=s_i}^{s_i+delta} (x - y)`` and ``M = L_i (L_i - 1) / 2``; ``delta`` is the
length of the event's first detected run (or, with ``coverage_onset``, its detected point
count). A wholly missed event weighs ``L_i``.

Each point's weight is computed from exact integers and one division, as the reference does,
so the weights agree bit for bit; only the order of summation differs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_CHUNK_CELLS = 1 << 20  # cells of a (cutoffs x event points) block in missed_mass


@dataclass(frozen=True)
class Events:
    """Labelled events as inclusive, sorted, separated index intervals."""

    starts: np.ndarray
    ends: np.ndarray

    @classmethod
    def from_labels(cls, y_true: np.ndarray) -> Events:
        """The runs of True in a boolean label series."""
        padded = np.concatenate(([False], y_true, [False])).astype(np.int8)
        edges = np.diff(padded)
        return cls(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1)

    @property
    def lengths(self) -> np.ndarray:
        return self.ends - self.starts + 1


def spans(starts: np.ndarray, stops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All indices of the half-open ranges ``[starts[j], stops[j])`` and the j each belongs to."""
    sizes = np.maximum(stops - starts, 0)
    owner = np.repeat(np.arange(sizes.size), sizes)
    first = np.cumsum(sizes) - sizes
    return np.arange(owner.size) - first[owner] + starts[owner], owner


def detection_entry(events: Events, entry: np.ndarray) -> np.ndarray:
    """Per event, the smallest entry among its points (detected at cutoffs above it)."""
    if events.starts.size == 0:
        return np.zeros(0, dtype=entry.dtype)
    points, _ = spans(events.starts, events.ends + 1)
    offsets = np.cumsum(events.lengths) - events.lengths
    return np.minimum.reduceat(entry[points], offsets)


def buffer_zones(events: Events, n: int, early: int, delay: int) -> tuple[np.ndarray, np.ndarray]:
    """Per event, the first pre-buffer point and the last post-buffer point."""
    next_starts = np.append(events.starts[1:], n)
    post_ends = np.minimum(events.ends + delay, next_starts - 1)
    previous_post_ends = np.concatenate(([-1], post_ends[:-1]))
    pre_starts = np.maximum(np.maximum(events.starts - early, previous_post_ends + 1), 0)
    return pre_starts, post_ends


def true_positive_mass(events: Events, entry: np.ndarray, early: int, delay: int,
                       gate_delay: bool = False) -> np.ndarray:
    """``tp[k]``: the true-positive mass of the prediction ``entry < k``, for k in 0..n."""
    n = entry.size
    lengths = events.lengths.astype(np.int64)
    half_pairs = lengths * (lengths - 1) // 2  # sum_{y=s}^{e} (y - s)
    detected = detection_entry(events, entry)
    pre_starts, post_ends = buffer_zones(events, n, early, delay)

    inside, _ = spans(events.starts, events.ends + 1)
    pre, pre_owner = spans(pre_starts, events.starts)
    post, post_owner = spans(events.ends + 1, post_ends + 1)

    s, L, h = events.starts[pre_owner], lengths[pre_owner], half_pairs[pre_owner]
    pre_weight = 1.0 - (L * (s - pre) + h) / (L * (s - pre_starts[pre_owner]) + h)
    s, L, h = events.starts[post_owner], lengths[post_owner], half_pairs[post_owner]
    post_weight = 1.0 - (L * (post - s) - h) / (L * (post_ends[post_owner] - s) - h)

    pre_step = np.maximum(entry[pre], detected[pre_owner])
    post_step = np.maximum(entry[post], detected[post_owner]) if gate_delay else entry[post]
    steps = np.concatenate((entry[inside], pre_step, post_step))
    weights = np.concatenate((np.ones(inside.size), pre_weight, post_weight))
    return np.concatenate(([0.0], np.cumsum(np.bincount(steps, weights, minlength=n))))


def missed_mass(events: Events, entry: np.ndarray, cutoffs: np.ndarray,
                coverage_onset: bool = False) -> np.ndarray:
    """The false-negative mass of the prediction ``entry < k`` for each cutoff k."""
    result = np.zeros(cutoffs.size)
    if events.starts.size == 0:
        return result
    lengths = events.lengths.astype(np.int64)
    points, owner = spans(events.starts, events.ends + 1)
    offsets = np.cumsum(lengths) - lengths
    rel = points - events.starts[owner]  # position inside its event
    half_pairs = (lengths * (lengths - 1) // 2)[owner]
    point_entry = entry[points]
    size = lengths[owner]
    rows = max(1, _CHUNK_CELLS // points.size)
    for lo in range(0, cutoffs.size, rows):
        hit = point_entry < cutoffs[lo:lo + rows, None]
        first = np.minimum.reduceat(np.where(hit, rel, size), offsets, axis=1)
        detected = first < lengths
        if coverage_onset:
            delta = np.add.reduceat(hit, offsets, axis=1).astype(np.int64)
        else:
            after_run = ~hit & (rel >= first[:, owner])
            delta = np.minimum.reduceat(np.where(after_run, rel, size), offsets, axis=1) - first
        d = delta[:, owner]
        beyond = 1.0 - ((d + 1) * rel - d * (d + 1) // 2) / np.maximum(half_pairs, 1)
        weight = np.where(rel <= d, 1.0, beyond)
        partial = np.add.reduceat(np.where(hit, 0.0, weight), offsets, axis=1)
        result[lo:lo + rows] = np.where(detected, partial, lengths).sum(axis=1)
    return result
