"""Running min-max scaling into [0, 1], for scorers that expect bounded inputs (half-space trees).

Each row is scaled by the per-dimension minimum and maximum seen up to and including that row,
so a batch gives the same result as its rows one at a time (and a replay the same as the
original run). A dimension that has not varied yet maps to 0.5.

>>> scale = RunningMinMax()
>>> scale(np.array([[0.0], [10.0], [5.0]])).ravel().tolist()
[0.5, 1.0, 0.5]
>>> scale(np.array([[20.0]])).ravel().tolist()
[1.0]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


class RunningMinMax:
    """Scales (B, D) rows into [0, 1] by the running per-dimension min and max."""

    def __init__(self) -> None:
        self.low: np.ndarray | None = None
        self.high: np.ndarray | None = None

    def state_dict(self) -> dict:
        return {"low": self.low, "high": self.high}

    def load_state_dict(self, state: dict) -> None:
        self.low, self.high = state["low"], state["high"]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.low is None or self.low.shape != x.shape[1:]:
            self.low, self.high = x[0].copy(), x[0].copy()
        low = np.minimum.accumulate(np.vstack([self.low, x]), axis=0)[1:]
        high = np.maximum.accumulate(np.vstack([self.high, x]), axis=0)[1:]
        self.low, self.high = low[-1], high[-1]
        span = high - low
        return np.where(span > 0, (x - low) / np.where(span > 0, span, 1), 0.5)


class MinMaxScaled:
    """A scorer fed running-min-max-scaled vectors, one scaler per vector width."""

    def __init__(self, scorer) -> None:
        self.scorer = scorer
        self.scalers: dict[int, RunningMinMax] = {}

    def score_and_learn(self, vectors: torch.Tensor | np.ndarray, keys: Sequence[str] | None = None) -> np.ndarray:
        x = vectors.cpu().numpy() if isinstance(vectors, torch.Tensor) else np.asarray(vectors)
        scaler = self.scalers.setdefault(x.shape[1], RunningMinMax())
        return self.scorer.score_and_learn(scaler(x), keys)

    def state_dict(self) -> dict:
        return {"scorer": self.scorer.state_dict(), "scalers": {str(w): s.state_dict() for w, s in self.scalers.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.scorer.load_state_dict(state["scorer"])
        self.scalers = {}
        for width, scaler_state in state["scalers"].items():
            self.scalers[int(width)] = scaler = RunningMinMax()
            scaler.load_state_dict(scaler_state)
