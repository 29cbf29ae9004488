"""A streaming threshold per stream: a robust margin above a rolling quantile of its scores.

threshold = Q_q + margin * (Q_q - median), over the stream's last ``history`` scores. A stream
raises nothing until it has ``warmup`` scores. Scores are remembered after they are judged.
The quantiles are recomputed every ``refresh_every`` scores of a stream (16 by default), not at
every score: over a history of hundreds of scores a few more barely move them, and sorting is
the cost. Slow streams (a camera's clips) can afford 1. With ``remember_anomalies=False`` only
scores judged normal join the history, so a burst of anomalies does not raise the bar. A NaN
score (a scorer's "no opinion yet") is skipped: never anomalous, not remembered, not counted
towards the warm-up; it gets the stream's current threshold (inf until there is one).

>>> t = RollingQuantileThreshold(quantile=0.9, margin=1.0, history=100, warmup=10)
>>> [t.judge("a", s)[1] for s in [0.1] * 20 + [0.9]][-2:]
[False, True]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from detectors.runs import key_runs


REFRESH_EVERY = 16


@dataclass
class RollingQuantileThreshold:
    """Per-stream rolling quantile thresholds (see the module doc). All streams' histories sit
    in one ``(streams, history)`` array, so ``judge_many`` judges a batch in a few numpy calls,
    exactly as ``judge`` would one score at a time."""

    quantile: float = 0.99
    margin: float = 1.0
    history: int = 1000
    warmup: int = 100
    refresh_every: int = REFRESH_EVERY
    remember_anomalies: bool = True

    def __post_init__(self) -> None:
        self.index: dict[str, int] = {}
        self.ids: list[str] = []
        # filled, not zeroed: the pages are resident from the start, so a worker's memory at
        # start-up is its memory at steady state and can be sized from it
        self.scores = np.full((0, self.history), np.nan, dtype=np.float32)
        self.count = np.zeros(0, dtype=np.int64)
        self.threshold = np.zeros(0, dtype=np.float64)

    def _row(self, stream_id: str) -> int:
        row = self.index.get(stream_id)
        if row is None:
            row = self.index[stream_id] = len(self.ids)
            self.ids.append(stream_id)
            if row >= len(self.count):
                grown = max(64, len(self.count) + len(self.count) // 4)
                self.scores = np.concatenate([self.scores, np.full((grown - len(self.count), self.history), np.nan,
                                                                   dtype=np.float32)])
                self.count = np.concatenate([self.count, np.zeros(grown - len(self.count), np.int64)])
                self.threshold = np.concatenate([self.threshold, np.full(grown - len(self.threshold), np.inf)])
        return row

    def _level(self, high: float | np.ndarray, mid: float | np.ndarray) -> float | np.ndarray:
        """The threshold from the two quantiles (floats, or arrays of them)."""
        return high + self.margin * (high - mid)

    def judge(self, stream_id: str, score: float) -> tuple[float, bool]:
        """(threshold, is the score above it) for this stream, then remember the score."""
        row = self._row(stream_id)
        if math.isnan(score):
            return float(self.threshold[row]), False
        count = int(self.count[row])
        if count >= self.warmup and (count - self.warmup) % self.refresh_every == 0:
            self.threshold[row] = self._level(*quantiles(self.scores[row, :min(count, self.history)],
                                                         (self.quantile, 0.5)))
        threshold = float(self.threshold[row])
        anomalous = score > threshold
        if anomalous and not self.remember_anomalies:
            return threshold, True
        self.scores[row, count % self.history] = score
        self.count[row] = count + 1
        return threshold, anomalous

    def judge_many(self, stream_ids: Sequence[str], scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(thresholds, anomalous) of a batch of scores, in order: what ``judge`` gives one by one."""
        if not self.remember_anomalies:  # counts hang on the verdicts: one at a time
            return judge_each(self, stream_ids, scores)
        scores = np.asarray(scores, dtype=np.float64)
        missing = np.isnan(scores)
        if missing.any():
            return self._judge_around(stream_ids, scores, missing)
        n = len(stream_ids)
        if n > self.history:  # in turns, so no stream laps its history within one
            parts = [self.judge_many(stream_ids[i:i + self.history], scores[i:i + self.history])
                     for i in range(0, n, self.history)]
            return np.concatenate([t for t, _ in parts]), np.concatenate([a for _, a in parts])
        rows = list(map(self.index.get, stream_ids))
        if None in rows:  # new streams
            rows = list(map(self._row, stream_ids))
        runs = key_runs(np.array(rows, dtype=np.int64))
        order, by_row, segment, rank, last = runs.order, runs.keys, runs.start, runs.rank, runs.last
        x = scores[order]
        before = self.count[by_row]
        counts = before + rank  # each score's stream count when it is judged
        refresh = (counts >= self.warmup) & ((counts - self.warmup) % self.refresh_every == 0)
        levels = np.full(n, np.nan)
        events = np.flatnonzero(refresh)
        if events.size:
            levels[events] = self._levels(events, by_row, x, counts, before, segment)
        latest = np.maximum.accumulate(np.where(refresh, np.arange(n), -1))
        thresholds = np.where(latest >= segment, levels[np.maximum(latest, 0)], self.threshold[by_row])
        anomalous = x > thresholds
        self.scores[by_row, counts % self.history] = x
        self.count[by_row[last]] = counts[last] + 1
        self.threshold[by_row[last]] = thresholds[last]
        out_thresholds, out_anomalous = np.empty(n), np.empty(n, dtype=bool)
        out_thresholds[order], out_anomalous[order] = thresholds, anomalous
        return out_thresholds, out_anomalous

    def _judge_around(self, stream_ids: Sequence[str], scores: np.ndarray, missing: np.ndarray,
                      ) -> tuple[np.ndarray, np.ndarray]:
        """``judge_many`` of the scores that are not NaN; a NaN gets its stream's threshold as it
        stands then: that of the stream's latest score before it in the batch, else the stored one."""
        rows = np.fromiter(map(self._row, stream_ids), np.int64, len(stream_ids))
        thresholds, anomalous = self.threshold[rows], np.zeros(len(rows), dtype=bool)
        kept = np.flatnonzero(~missing)
        if kept.size:
            thresholds[kept], anomalous[kept] = self.judge_many([stream_ids[i] for i in kept], scores[kept])
            runs = key_runs(rows)
            judged = np.maximum.accumulate(np.where(missing[runs.order], -1, np.arange(len(rows))))
            carried = missing[runs.order] & (judged >= runs.start)
            thresholds[runs.order[carried]] = thresholds[runs.order[judged[carried]]]
        return thresholds, anomalous

    def _levels(self, events: np.ndarray, by_row: np.ndarray, x: np.ndarray, counts: np.ndarray,
                before: np.ndarray, segment: np.ndarray) -> np.ndarray:
        """The refreshed threshold at each event: quantiles of the stream's last ``history``
        scores before it. Quantiles ignore order, so an event's window is its stream's stored
        ring with the slots of the batch's earlier scores overwritten (a batch never laps the
        ring), cut to the scores seen while the ring is not yet full."""
        rows, start, prior = by_row[events], segment[events], before[events]
        earlier = counts[events] - prior  # the batch's scores of the stream before the event
        window = self.scores[rows]
        which = np.repeat(np.arange(events.size), earlier)
        step = np.arange(which.size) - np.repeat(np.cumsum(earlier) - earlier, earlier)
        window[which, (prior[which] + step) % self.history] = x[start[which] + step]
        span = np.minimum(counts[events], self.history)
        levels = np.empty(events.size)
        for width in np.unique(span).tolist():  # events over equally long histories together
            group = np.flatnonzero(span == width)
            high, mid = (q.astype(np.float64) for q in quantiles(window[group, :width], (self.quantile, 0.5)))
            levels[group] = self._level(high, mid)
        return levels

    def state_dict(self) -> dict:
        n = len(self.ids)
        return {"ids": list(self.ids), "scores": self.scores[:n], "count": self.count[:n],
                "threshold": self.threshold[:n]}

    def load_state_dict(self, state: dict) -> None:
        self.__post_init__()
        for stream_id in state["ids"]:
            self._row(stream_id)
        n = len(state["ids"])
        self.scores[:n], self.count[:n], self.threshold[:n] = state["scores"], state["count"], state["threshold"]


def judge_each(threshold, stream_ids: Sequence[str], scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``judge_many`` for any threshold with ``judge``: one score at a time."""
    judged = [threshold.judge(stream_id, score) for stream_id, score in zip(stream_ids, np.asarray(scores).tolist())]
    return (np.fromiter((t for t, _ in judged), np.float64, len(judged)),
            np.fromiter((a for _, a in judged), bool, len(judged)))


def quantiles(values: np.ndarray, qs: tuple[float, ...]) -> list:
    """np.quantile's default (linear) quantiles from one sort: several times faster than
    np.quantile on the short arrays a threshold sees (numpy sorts float rows with SIMD; a
    partition at several ranks is slower than a full sort). ``values`` (n,) gives floats;
    (rows, n) gives an array per quantile, row by row. The arithmetic stays in the values' dtype.

    >>> x = np.random.default_rng(0).random(101)
    >>> np.allclose(quantiles(x, (0.995, 0.5)), np.quantile(x, [0.995, 0.5]))
    True
    """
    n = values.shape[-1]
    positions = [q * (n - 1) for q in qs]
    below = [int(p) for p in positions]
    ordered = np.sort(values, axis=-1)
    out = [ordered[..., b] + (ordered[..., min(b + 1, n - 1)] - ordered[..., b]) * (p - b)
           for p, b in zip(positions, below)]
    return [float(v) for v in out] if values.ndim == 1 else out
