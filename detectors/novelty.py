"""The novelty expert: a value the stream has never seen in this context (CAD-OSE's memory).

Per stream and channel, each value is read as one of ``LEVELS`` (8) levels spread evenly across
the stream's value range (the lowest value at level 0, the highest at level 7), and the level's
three bits become three facts; a value below or above the range is one fact of its own per side,
sharing nothing with the levels inside. The facts feed a context memory per channel
(:mod:`detectors.contexts`, the memory of the Contextual Anomaly Detector, CAD-OSE), which
scores how little of what it expected came true and how much was new. A window scores 1.0 where
a channel's latest value scores at least ``THRESHOLD`` (0.75, CAD-OSE's), else 0.0. After a
novelty the expert rests: it scores 0.0 for the next ``rest`` values, and a novelty while it
rests starts the rest again, so that a stream moving into new territory raises one alert, not
one per new step (CAD-OSE's rest period, a fifth of NAB's probation). A stream rests from its
first value too, as CAD-OSE does.

The range is the one configured for the stream (``ranges``, e.g. 0-100 for a CPU percentage); a
stream without one takes the range of its first ``warmup`` values, and learns them once it
knows it. NAB hands every detector the minimum and maximum of each file and its probationary
period before the first value, and its best published detectors (HTM, CAD-OSE, ARTime) build on
both; with the same two, this expert's scores are CAD-OSE's events (README, Measured). Until a
stream has ``warmup`` values behind the one it scores, the expert has no opinion (NaN).

Where a stream's normal life takes it to new territory, as an HPC node's jobs move its load to
plateaus it has not had before, each move is a novelty: on the synthetic cluster it raised
false alerts on every clean node. So the mixture holds it only where ``detector.novelty`` says.

It reads raw windows (B, C, L), as the level expert does: the latest value of each window is the
one scored, and a stream's first window also teaches it the window's earlier values.

>>> novelty = NoveltyScorer(warmup=8, rest=2, ranges={"a": (0.0, 7.0)})
>>> values = [0, 7] * 8 + [3, 7, 0, 7, 0]
>>> windows = np.array([[values[i - 1:i + 1]] for i in range(1, len(values))], dtype=float)
>>> [int(s) if s == s else None for s in novelty.score_and_learn(windows, keys=["a"] * len(windows))]
[None, None, None, None, None, None, None, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]

The stream swings between 0 and 7 until a 3 comes: a novelty (and, resting, the 7 after it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from detectors.base import window_batch
from detectors.contexts import ContextMemory

LEVELS = 8  # levels across the range (CAD-OSE's 3 bits)
BITS = 3  # facts per value, one per bit of its level
BELOW, ABOVE = 2 * BITS, 2 * BITS + 1  # the one fact of a value below or above the range
THRESHOLD = 0.75  # a context score at or above this is a novelty (CAD-OSE's)
WARMUP = 750  # values before the first score: NAB's probationary period for its longer files
REST = WARMUP // 5  # values scored 0.0 after a novelty (CAD-OSE rests a fifth of the probation)


def value_facts(levels: np.ndarray) -> list[tuple[int, ...]]:
    """Each channel's facts for its level (C,): bit i of a level inside the range is fact 2i or
    2i + 1; a level below the range is ``BELOW`` alone, one above it ``ABOVE`` alone.

    >>> value_facts(np.array([0, 6, 7, -1, 8]))
    [(0, 2, 4), (0, 3, 5), (1, 3, 5), (6,), (7,)]
    """
    facts = []
    for level in levels.tolist():
        if level < 0:
            facts.append((BELOW,))
        elif level >= LEVELS:
            facts.append((ABOVE,))
        else:
            facts.append(tuple(2 * i + ((level >> i) & 1) for i in range(BITS)))
    return facts


class _Stream:
    """One stream's range, context memories (one per channel) and rest."""

    __slots__ = ("count", "low", "step", "memories", "resting", "early")

    def __init__(self, channels: int, value_range: tuple[float, float] | None, warmup: int, rest: int):
        self.count = 0  # values learned
        self.low = self.step = None  # per channel, once the range is known
        self.early = None  # the warm-up's values (warmup, C), kept until the range is known
        if value_range is not None:
            self.set_range(np.full(channels, float(value_range[0])), np.full(channels, float(value_range[1])))
        else:
            self.early = np.empty((warmup, channels))
        self.memories = [ContextMemory() for _ in range(channels)]
        self.resting = rest  # values still to score 0.0: a new stream rests, as CAD-OSE does

    def set_range(self, low: np.ndarray, high: np.ndarray) -> None:
        span = high - low
        # a flat range: any other value lies outside it
        span = np.where(span > 0, span, np.maximum(np.abs(low), 1.0) * 1e-9)
        self.low, self.step = low, span / (LEVELS - 1)

    def learn(self, values: np.ndarray, rest: int) -> bool:
        """Learn one value per channel (C,); whether it is a novelty the rest lets through."""
        levels = np.clip(np.floor((values - self.low) / self.step), -1, LEVELS).astype(np.int64)  # no overflow
        scores = [memory.step(facts) for memory, facts in zip(self.memories, value_facts(levels))]
        novel = max(scores) >= THRESHOLD
        raised = novel and self.resting == 0
        self.resting = rest if novel else max(self.resting - 1, 0)
        return raised


class NoveltyScorer:
    """Per-stream context novelty of raw windows (see the module doc); NaN while a stream warms up."""

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
            raised = self._take(stream, x[i, :, -1])
            if scored:
                scores[i] = 1.0 if raised else 0.0
        return scores

    def _take(self, stream: _Stream, values: np.ndarray) -> bool:
        """Learn one value per channel; whether it raised a novelty (never in the warm-up of a
        stream still learning its range)."""
        stream.count += 1
        if stream.low is not None:
            return stream.learn(values, self.rest)
        stream.early[stream.count - 1] = values
        if stream.count == self.warmup:  # the range is known: learn the warm-up's values
            early, stream.early = stream.early, None
            stream.set_range(early.min(axis=0), early.max(axis=0))
            for row in early:
                stream.learn(row, self.rest)
        return False

    def _stream(self, key: str, window: np.ndarray) -> _Stream:
        """The stream's state; a new stream learns its first window's earlier values."""
        stream = self.streams.get(key)
        if stream is None:
            stream = self.streams[key] = _Stream(window.shape[0], self.ranges.get(key), self.warmup, self.rest)
            for values in window[:, :-1].T:
                self._take(stream, values)
        elif len(stream.memories) != window.shape[0]:
            raise ValueError(f"stream {key!r} had {len(stream.memories)} channels and now has {window.shape[0]}")
        return stream

    def state_dict(self) -> dict:
        return {"streams": {key: {"count": s.count, "resting": s.resting,
                                  "memories": [memory.state_dict() for memory in s.memories],
                                  "early": s.early[:s.count].copy() if s.early is not None else None,
                                  "low": s.low.copy() if s.low is not None else None,
                                  "step": s.step.copy() if s.step is not None else None}
                            for key, s in self.streams.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.streams = {}
        for key, saved in state["streams"].items():
            memories = [ContextMemory.from_state(memory) for memory in saved["memories"]]
            stream = _Stream(len(memories), None, self.warmup, self.rest)
            stream.count, stream.resting = int(saved["count"]), int(saved["resting"])
            stream.memories = memories
            if saved["early"] is not None:  # still learning its range
                stream.early[:stream.count] = np.asarray(saved["early"], dtype=np.float64)
            else:
                stream.early = None
            if saved["low"] is not None:
                stream.low = np.asarray(saved["low"], dtype=np.float64).copy()
                stream.step = np.asarray(saved["step"], dtype=np.float64).copy()
            self.streams[key] = stream
