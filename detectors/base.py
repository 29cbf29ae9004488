"""The detector contracts: embedders, scorers, and what a detector returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch


class Embedder(Protocol):
    """Maps a batch of windows (B, C, L) to vectors (B, D)."""

    def embed(self, windows: torch.Tensor) -> torch.Tensor: ...


class Scorer(Protocol):
    """Keeps a memory of recent vectors; maps new vectors (B, D) to scores (B,), higher = worse.

    ``score_and_learn`` scores each vector before learning it, in batch order, so a batch gives
    the same scores as the same vectors one at a time.
    """

    def score_and_learn(self, vectors: torch.Tensor) -> np.ndarray: ...


@dataclass(frozen=True)
class Verdict:
    """What a detector says about one window."""

    score: float
    threshold: float
    anomalous: bool
    explanation: dict
