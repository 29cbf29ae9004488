"""The detector contracts: embedders, scorers, and what a detector returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch


def window_batch(windows: torch.Tensor | np.ndarray, keys: Sequence[str] | None,
                 expert: str) -> tuple[np.ndarray, list[str]]:
    """The float64 windows (B, C, L) and the B keys ("" each where none) that an expert reading
    raw windows gets (``reads = "windows"``: the level and novelty experts); other shapes are
    refused with a ValueError naming ``expert``."""
    x = windows.detach().cpu().numpy() if isinstance(windows, torch.Tensor) else np.asarray(windows)
    x = x.astype(np.float64, copy=False)
    if x.ndim != 3:
        raise ValueError(f"the {expert} expert reads windows (B, C, L), got shape {x.shape}")
    return x, list(keys) if keys is not None else [""] * len(x)


class Embedder(Protocol):
    """Maps a batch of windows (B, C, L) to vectors (B, D)."""

    def embed(self, windows: torch.Tensor) -> torch.Tensor: ...


class Scorer(Protocol):
    """Keeps a memory of recent vectors; maps new vectors (B, D) to scores (B,), higher = worse.

    ``score_and_learn`` scores each vector before learning it, in batch order, so a batch gives
    the same scores as the same vectors one at a time. ``keys`` (one per row, e.g. stream ids)
    select per-key memories in scorers that keep them; others share one memory. A score is NaN
    where the scorer has no opinion yet (a key's memory still warming up).
    """

    def score_and_learn(self, vectors: torch.Tensor, keys: Sequence[str] | None = None) -> np.ndarray: ...

    def state_dict(self) -> dict:
        """What it has learned: nested dicts of arrays and JSON values (see streams/checkpoints)."""
        ...

    def load_state_dict(self, state: dict) -> None: ...


class Threshold(Protocol):
    """Per-stream thresholds (rolling quantile, SPOT/DSPOT): judges each stream's scores in order.

    A NaN score (no opinion yet) is never anomalous, is not learned and does not count towards
    warm-up or calibration; its threshold is the stream's current one (inf before there is one).
    """

    def judge(self, stream_id: str, score: float) -> tuple[float, bool]: ...

    def judge_many(self, stream_ids: Sequence[str], scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(thresholds, anomalous) of a batch, exactly as ``judge`` one by one in order."""
        ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


@dataclass(frozen=True)
class Verdict:
    """What a detector says about one window."""

    score: float
    threshold: float
    anomalous: bool
    explanation: dict
    span: tuple[float, float] | None = None  # the times it covers, where narrower than the record's
