"""The novelty expert: a step between value levels that the stream has never taken before.

Per stream and channel, each value is read as one of ``LEVELS`` (8) levels spread evenly across
the stream's value range (the lowest value at level 0, the highest at level 7), with one more
level each side for values outside the range. The score of a window is 1.0 when the step from
its previous value's level to its latest value's level is one the stream has never taken (in any
channel), else 0.0. After a novelty the expert rests: it scores 0.0 for the next ``rest`` values,
and a novelty while it rests starts the rest again, so that a stream moving into new territory
raises one alert, not one per new step (CAD-OSE's rest period, a fifth of NAB's probation).

The range is the one configured for the stream (``ranges``, e.g. 0-100 for a CPU percentage); a
stream without one takes the range of its first ``warmup`` values. NAB hands every detector the
minimum and maximum of each file and its probationary period before the first value, and its
best published detectors (HTM, CAD-OSE, ARTime) build on both; with the same two, this expert
alone scores 67.0 on NAB standard, and with the range of the warm-up only, as ``argus serve``
learns it, 51 (README, Measured). Until a stream has ``warmup`` values behind the one it
scores, the expert has no opinion (NaN); the steps taken meanwhile are learned.

Where a stream's normal life takes it to new territory, as an HPC node's jobs move its load to
plateaus it has not had before, each move is a novelty: on the synthetic cluster it raised
false alerts on every clean node. So the mixture holds it only where ``detector.novelty`` says.

It reads raw windows (B, C, L), as the level expert does: the latest value of each window is the
one scored, and a stream's first window also teaches it the window's earlier values.

>>> novelty = NoveltyScorer(warmup=6, rest=2, ranges={"a": (0.0, 7.0)})
>>> values = [0, 1, 0, 1, 0, 1, 0, 1, 5, 1, 0, 7, 7]
>>> windows = np.array([[values[i - 1:i + 1]] for i in range(1, len(values))], dtype=float)  # (12, 1, 2)
>>> [float(s) for s in novelty.score_and_learn(windows, keys=["a"] * len(windows))]
[nan, nan, nan, nan, nan, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]

The step 1 -> 5 is new; 5 -> 1, 0 -> 7 and 7 -> 7 are new too, but each came while it rested.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from detectors.base import window_batch

LEVELS = 8  # levels across the range (CAD-OSE's 3 bits); NAB standard 61.7 at 7, 67.0 at 8, 67.1 at 9
WARMUP = 750  # values before the first score: NAB's probationary period for its longer files
REST = WARMUP // 5  # values scored 0.0 after a novelty (CAD-OSE rests a fifth of the probation)
_STATES = LEVELS + 2  # the levels, and one outside the range on each side


class _Stream:
    """One stream's range, learned steps and where it stands."""

    __slots__ = ("count", "low", "step", "previous", "seen", "resting", "early")

    def __init__(self, channels: int, value_range: tuple[float, float] | None, warmup: int):
        self.count = 0  # values learned
        self.low = self.step = None  # per channel, once the range is known
        self.early = None  # the warm-up's values (warmup, C), kept until the range is known
        if value_range is not None:
            self.set_range(np.full(channels, float(value_range[0])), np.full(channels, float(value_range[1])))
        else:
            self.early = np.empty((warmup, channels))
        self.previous = np.full(channels, -1)  # each channel's last level (-1: none yet)
        self.seen = np.zeros((channels, _STATES, _STATES), dtype=bool)  # steps taken, previous -> latest
        self.resting = 0  # values still to score 0.0

    def set_range(self, low: np.ndarray, high: np.ndarray) -> None:
        span = high - low
        # a flat range: any other value lies outside it
        span = np.where(span > 0, span, np.maximum(np.abs(low), 1.0) * 1e-9)
        self.low, self.step = low, span / (LEVELS - 1)

    def levels(self, values: np.ndarray) -> np.ndarray:
        """The state of each value (C,) or (N, C): 0 below the range, 1..LEVELS inside, LEVELS + 1 above."""
        return np.clip(np.floor((values - self.low) / self.step), -1, LEVELS).astype(np.int64) + 1

    def learn(self, levels: np.ndarray) -> np.ndarray:
        """Take the step to ``levels`` (C,); which channels took a step never taken before."""
        channels = np.arange(levels.size)
        has_previous = self.previous >= 0
        new = has_previous & ~self.seen[channels, self.previous, levels]
        self.seen[channels[has_previous], self.previous[has_previous], levels[has_previous]] = True
        self.previous = levels
        return new


class NoveltyScorer:
    """Per-stream step novelty of raw windows (see the module doc); NaN while a stream warms up."""

    reads = "windows"
    score_scale = "event"  # 1.0 or 0.0: the mixture reads it as it is (detectors.mixture)

    def __init__(self, warmup: int = WARMUP, rest: int = REST,
                 ranges: Mapping[str, tuple[float, float]] | None = None):
        if warmup < 1 or rest < 0:
            raise ValueError(f"the novelty expert needs warmup >= 1 and rest >= 0, got {warmup} and {rest}")
        self.warmup, self.rest = warmup, rest
        self.ranges = dict(ranges or {})
        for key, (low, high) in self.ranges.items():
            if not low <= high:
                raise ValueError(f"the value range of stream {key!r} runs from {low} to {high}: low must not exceed high")
        self.streams: dict[str, _Stream] = {}

    def score_and_learn(self, windows: torch.Tensor | np.ndarray, keys: Sequence[str] | None = None) -> np.ndarray:
        """(B,) scores of windows (B, C, L), each scored then learned, in batch order."""
        x, keys = window_batch(windows, keys, "novelty")
        scores = np.full(len(x), np.nan)
        for i, key in enumerate(keys):
            stream = self._stream(key, x[i])
            scored = stream.count >= self.warmup
            novel = self._take(stream, x[i, :, -1]).any()
            if scored:
                scores[i] = 1.0 if novel and stream.resting == 0 else 0.0
                stream.resting = self.rest if novel else max(stream.resting - 1, 0)
        return scores

    def _take(self, stream: _Stream, values: np.ndarray) -> np.ndarray:
        """Learn one value per channel; which channels stepped somewhere new (none in the warm-up
        of a stream still learning its range)."""
        stream.count += 1
        if stream.low is not None:
            return stream.learn(stream.levels(values))
        stream.early[stream.count - 1] = values
        if stream.count == self.warmup:  # the range is known: learn the warm-up's steps
            early, stream.early = stream.early, None
            stream.set_range(early.min(axis=0), early.max(axis=0))
            for levels in stream.levels(early):
                stream.learn(levels)
        return np.zeros(values.size, dtype=bool)

    def _stream(self, key: str, window: np.ndarray) -> _Stream:
        """The stream's state; a new stream learns its first window's earlier values."""
        stream = self.streams.get(key)
        if stream is None:
            stream = self.streams[key] = _Stream(window.shape[0], self.ranges.get(key), self.warmup)
            for values in window[:, :-1].T:
                self._take(stream, values)
        elif stream.previous.size != window.shape[0]:
            raise ValueError(f"stream {key!r} had {stream.previous.size} channels and now has {window.shape[0]}")
        return stream

    def state_dict(self) -> dict:
        return {"streams": {key: {"count": s.count, "previous": s.previous.copy(), "seen": s.seen.astype(np.uint8),
                                  "resting": s.resting,
                                  "early": s.early[:s.count].copy() if s.early is not None else None,
                                  "low": s.low.copy() if s.low is not None else None,
                                  "step": s.step.copy() if s.step is not None else None}
                            for key, s in self.streams.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.streams = {}
        for key, saved in state["streams"].items():
            previous = np.asarray(saved["previous"], dtype=np.int64)
            stream = _Stream(previous.size, None, self.warmup)
            stream.count, stream.resting = int(saved["count"]), int(saved["resting"])
            stream.previous = previous.copy()
            stream.seen = np.asarray(saved["seen"]).astype(bool)
            if saved["early"] is not None:  # still learning its range
                stream.early[:stream.count] = np.asarray(saved["early"], dtype=np.float64)
            else:
                stream.early = None
            if saved["low"] is not None:
                stream.low = np.asarray(saved["low"], dtype=np.float64).copy()
                stream.step = np.asarray(saved["step"], dtype=np.float64).copy()
            self.streams[key] = stream
