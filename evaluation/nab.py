"""The NAB score (Lavin and Ahmad, "Evaluating Real-time Anomaly Detection Algorithms", 2015).

Each labelled window rewards its earliest detection with a scaled sigmoid of the detection's
position in the window (``tp`` weight at the window's left edge, falling towards 0 at its right
edge); a window left undetected costs ``fn``. Every detection outside a window costs ``fp`` times
a sigmoid of its distance past the end of the previous window (a full ``fp`` before the first
window or more than three window-widths after one). The first 15 % of each series (at most 750
points) is a probation period and not scored. A series' raw score is the sum of these parts; the
corpus score adds them up and is normalised so that the null detector (no detections) scores 0
and a perfect one 100: ``100 * (raw - null) / (perfect - null)`` with ``perfect = tp * windows``.

The threshold (a point is a detection when its score is >= the threshold) is one for the whole
corpus; without one given, the threshold that maximises the corpus's raw score is chosen, as
NAB's optimiser does. The rules follow numenta/NAB's ``nab/sweeper.py`` and ``nab/runner.py``:
fed NAB's published per-row results and labels they give the published scores (see
``tests/test_evaluation_nab.py``). One deliberate difference: NAB divides by zero past a window
of one point; here every point after such a window counts as far away (a full ``fp``).

>>> windows = {"a": [(40, 49)]}
>>> scores = {"a": [0.0] * 42 + [0.9] + [0.0] * 57}   # 100 points, detected at the window's 3rd point
>>> result = nab_score(windows, scores, profile="standard")
>>> round(result.raw, 6), round(result.score, 4), result.threshold
(0.977107, 98.8553, 0.9)
>>> nab_score(windows, {"a": [0.0] * 100}).score   # the null detector
0.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from evaluation._validate import as_series, choice, fraction
from evaluation.errors import EvaluationInputError


@dataclass(frozen=True)
class CostMatrix:
    """Weights of a detection in a window (``tp``), one outside (``fp``) and a missed window (``fn``)."""

    tp: float
    fp: float
    fn: float


PROFILES = {
    "standard": CostMatrix(tp=1.0, fp=0.11, fn=1.0),
    "reward_low_FP_rate": CostMatrix(tp=1.0, fp=0.22, fn=1.0),
    "reward_low_FN_rate": CostMatrix(tp=1.0, fp=0.11, fn=2.0),
}
PROBATION_PERCENT = 0.15


@dataclass(frozen=True)
class SeriesCounts:
    """One series at the chosen threshold: its raw NAB score and its scored points' counts."""

    raw: float
    tp: int
    fp: int
    fn: int
    tn: int


@dataclass(frozen=True)
class NabResult:
    """The corpus's normalised ``score`` (null detector 0, perfect 100) and how it was reached."""

    score: float
    raw: float
    null: float
    perfect: float
    threshold: float
    profile: str
    series: dict[str, SeriesCounts] = field(default_factory=dict)


def scaled_sigmoid(position: np.ndarray) -> np.ndarray:
    """NAB's reward of a position: ``2 / (1 + exp(5 x)) - 1``, and -1 beyond ``x > 3``.

    >>> scaled_sigmoid(np.array([-1.0, 0.0, 1.0, 3.5])).round(5).tolist()
    [0.98661, 0.0, -0.98661, -1.0]
    """
    position = np.asarray(position, dtype=np.float64)
    with np.errstate(over="ignore"):
        value = 2.0 / (1.0 + np.exp(5.0 * position)) - 1.0
    return np.where(position > 3.0, -1.0, value)


def probation_length(n: int, percent: float = PROBATION_PERCENT) -> float:
    """How many leading points are not scored: ``min(floor(percent * n), percent * 5000)``."""
    return min(math.floor(percent * n), percent * 5000)


def row_weights(n: int, windows: Sequence[tuple[int, int]], cost: CostMatrix) -> tuple[np.ndarray, np.ndarray]:
    """Per point, its weight as a detection and the index of its window (-1 outside every window).

    ``windows`` are inclusive, sorted, disjoint index intervals.

    >>> weights, window = row_weights(8, [(2, 4)], PROFILES["standard"])
    >>> weights.round(4).tolist(), window.tolist()
    ([-0.11, -0.11, 1.0, 0.9437, 0.6915, -0.0933, -0.1085, -0.1099], [-1, -1, 0, 0, 0, -1, -1, -1])
    """
    index = np.arange(n)
    weights = np.full(n, -cost.fp)  # before the first window: as far away as can be
    window = np.full(n, -1)
    max_tp = float(scaled_sigmoid(np.array(-1.0)))
    for k, (start, end) in enumerate(windows):
        width = end - start + 1
        inside = index[start:end + 1]
        weights[start:end + 1] = scaled_sigmoid(-(end - inside + 1) / width) * cost.tp / max_tp
        window[start:end + 1] = k
        after_end = windows[k + 1][0] if k + 1 < len(windows) else n
        past = index[end + 1:after_end] - end
        position = past / (width - 1) if width > 1 else np.full(past.size, np.inf)
        weights[end + 1:after_end] = scaled_sigmoid(position) * cost.fp
    return weights, window


def nab_score(windows: Mapping[str, Sequence[tuple[int, int]]], scores: Mapping[str, ArrayLike], *,
              profile: str = "standard", threshold: float | None = None,
              probation_percent: float = PROBATION_PERCENT) -> NabResult:
    """The NAB score of per-series ``scores`` against per-series labelled ``windows``.

    ``windows[name]`` holds inclusive ``(start, end)`` index intervals, sorted and disjoint;
    every series in ``scores`` needs an entry (possibly empty). ``threshold=None`` picks the
    threshold that maximises the corpus's raw score (ties: the highest); ``inf`` means no
    detection.
    """
    cost = PROFILES[choice(profile, "profile", tuple(PROFILES))]
    probation_percent = fraction(probation_percent, "probation_percent")
    corpus = _Corpus(windows, scores, cost, probation_percent)
    if threshold is None:
        threshold = corpus.best_threshold()
    elif isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or math.isnan(threshold):
        raise EvaluationInputError(f"threshold must be a number, got {threshold!r}")
    per_series = {name: corpus.series_counts(name, float(threshold)) for name in corpus.names}
    raw = sum(counts.raw for counts in per_series.values())
    total_windows = sum(len(windows[name]) for name in corpus.names)
    perfect = cost.tp * total_windows
    normalised = 100 * (raw - corpus.null) / (perfect - corpus.null) if perfect != corpus.null else float("nan")
    return NabResult(score=normalised, raw=raw, null=corpus.null, perfect=perfect, threshold=float(threshold),
                     profile=profile, series=per_series)


class _Corpus:
    """Every scored point of every series, with its weight and window, for any threshold."""

    def __init__(self, windows, scores, cost: CostMatrix, probation_percent: float):
        missing = sorted(set(scores) - set(windows))
        if missing:
            raise EvaluationInputError(f"no labelled windows given for series {missing[0]!r} "
                                       f"({len(missing)} series lack them)")
        if not scores:
            raise EvaluationInputError("no series to score")
        self.names = list(scores)
        self.cost = cost
        self.rows = {}
        offset = 0
        null = 0.0
        for name in self.names:
            values = as_series(scores[name], f"scores of {name!r}")
            weights, window = row_weights(values.size, windows[name], cost)
            scored = np.arange(values.size) >= probation_length(values.size, probation_percent)
            window = np.where(window >= 0, window + offset, -1)
            offset += len(windows[name])
            null -= cost.fn * np.unique(window[scored & (window >= 0)]).size
            self.rows[name] = (values[scored], weights[scored], window[scored])
        self.null = float(null)

    def series_counts(self, name: str, threshold: float) -> SeriesCounts:
        values, weights, window = self.rows[name]
        detected = values >= threshold
        in_window = window >= 0
        raw = float(weights[detected & ~in_window].sum())
        windows = np.unique(window[in_window])
        best = np.full(windows.size, -self.cost.fn)
        hit = detected & in_window
        np.maximum.at(best, np.searchsorted(windows, window[hit]), weights[hit])
        raw += float(best.sum())
        tp, fp = int(np.sum(hit)), int(np.sum(detected & ~in_window))
        return SeriesCounts(raw=raw, tp=tp, fp=fp, fn=int(in_window.sum()) - tp, tn=int((~in_window).sum()) - fp)

    def best_threshold(self) -> float:
        """The threshold of the highest raw corpus score, NAB's optimiser's choice (inf: detect nothing)."""
        values, weights, window = (np.concatenate(part) for part in zip(*self.rows.values()))
        order = np.argsort(-values, kind="stable")
        values, weights, window = values[order], weights[order], window[order]
        gain = np.where(window < 0, weights, 0.0)
        in_window = np.flatnonzero(window >= 0)
        by_window = in_window[np.argsort(window[in_window], kind="stable")]
        groups = window[by_window]
        starts = np.flatnonzero(np.concatenate(([True], groups[1:] != groups[:-1])))
        for first, last in zip(starts, np.append(starts[1:], by_window.size)):
            rows = by_window[first:last]
            best = np.maximum.accumulate(np.concatenate(([-self.cost.fn], weights[rows])))
            gain[rows] = np.diff(best)
        totals = np.concatenate(([0.0], np.cumsum(gain)))
        last_of_level = np.flatnonzero(np.append(values[1:] != values[:-1], True))
        candidates = np.concatenate(([np.inf], values[last_of_level]))
        reached = np.concatenate(([0.0], totals[last_of_level + 1]))
        return float(candidates[int(np.argmax(reached))])
