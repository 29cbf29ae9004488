"""A series detector: embedder -> scorer -> per-stream threshold, over a batch of windows."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from detectors.base import Embedder, Scorer, Verdict
from detectors.thresholds import RollingQuantileThreshold


class SeriesDetector:
    """Judges windows of many streams at once; holds all its state, so it pickles whole."""

    def __init__(self, name: str, embedder: Embedder, scorer: Scorer, threshold: RollingQuantileThreshold):
        self.name = name
        self.embedder = embedder
        self.scorer = scorer
        self.threshold = threshold

    def judge(self, stream_ids: Sequence[str], channels: Sequence[Sequence[str]], windows: np.ndarray) -> list[Verdict]:
        """One verdict per window; ``windows`` is (B, C, L), all of one shape."""
        vectors = self.embedder.embed(torch.from_numpy(windows))
        scores = self.scorer.score_and_learn(vectors)
        deviation = _last_point_deviation(windows)
        worst = deviation.argmax(axis=1)
        rows = np.arange(len(worst))
        last_values, worst_deviation = windows[rows, worst, -1].tolist(), deviation[rows, worst].tolist()
        verdicts = []
        for i, (stream_id, score) in enumerate(zip(stream_ids, scores.tolist())):
            threshold, anomalous = self.threshold.judge(stream_id, score)
            explanation = {
                "channel": channels[i][worst[i]],
                "value": last_values[i],
                "deviation": round(worst_deviation[i], 3),
            }
            verdicts.append(Verdict(score, threshold, anomalous, explanation))
        return verdicts


def _last_point_deviation(windows: np.ndarray) -> np.ndarray:
    """|last - mean| / std of the rest of each channel's window, shape (B, C)."""
    history = windows[..., :-1].astype(np.float64)
    spread = history.std(axis=-1) + 1e-9 + 1e-3 * np.abs(history).mean(axis=-1)
    return np.abs(windows[..., -1] - history.mean(axis=-1)) / spread
