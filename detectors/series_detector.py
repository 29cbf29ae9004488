"""A series detector: embedder -> scorer -> per-stream threshold, over a batch of windows."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from detectors.base import Embedder, Scorer, Threshold, Verdict


class SeriesDetector:
    """Judges windows of many streams at once; its learned state round-trips through state_dict."""

    def __init__(self, name: str, embedder: Embedder, scorer: Scorer, threshold: Threshold):
        self.name = name
        self.embedder = embedder
        self.scorer = scorer
        self.threshold = threshold

    def state_dict(self) -> dict:
        """What it has learned (the embedder is configuration, not state)."""
        return {"scorer": self.scorer.state_dict(), "threshold": self.threshold.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.scorer.load_state_dict(state["scorer"])
        self.threshold.load_state_dict(state["threshold"])

    def assess(self, stream_ids: Sequence[str], windows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(scores, thresholds, anomalous) of windows (B, C, L) of one shape, in order: the
        scorer and each stream's threshold learn them as they go."""
        raw = torch.from_numpy(windows)
        vectors = self.embedder.embed(raw)
        if getattr(self.scorer, "needs_windows", False):  # a mixture with the level expert
            scores = self.scorer.score_and_learn(vectors, keys=list(stream_ids), windows=raw)
        else:
            scores = self.scorer.score_and_learn(vectors, keys=list(stream_ids))
        thresholds, anomalous = self.threshold.judge_many(stream_ids, scores)
        return scores, thresholds, anomalous

    def judge(self, stream_ids: Sequence[str], channels: Sequence[Sequence[str]], windows: np.ndarray) -> list[Verdict]:
        """One verdict per window; ``windows`` is (B, C, L), all of one shape."""
        scores, thresholds, anomalous = self.assess(stream_ids, windows)
        return [self.verdict(float(scores[i]), float(thresholds[i]), bool(anomalous[i]), channels[i], windows[i])
                for i in range(len(stream_ids))]

    @staticmethod
    def verdict(score: float, threshold: float, anomalous: bool, channels: Sequence[str], window: np.ndarray) -> Verdict:
        """The verdict on one window; an anomalous one says which channels drove it."""
        return Verdict(score, threshold, anomalous, _explain(channels, window) if anomalous else {})


def _explain(channels: Sequence[str], window: np.ndarray) -> dict:
    """Which channels drove it: the one whose last point strays furthest from the rest of its
    window (in stds), its value, and every channel's deviation when there are several."""
    history = window[:, :-1].astype(np.float64)
    spread = history.std(axis=-1) + 1e-9 + 1e-3 * np.abs(history).mean(axis=-1)
    deviation = np.abs(window[:, -1] - history.mean(axis=-1)) / spread
    worst = int(deviation.argmax())
    explanation = {"channel": channels[worst], "value": float(window[worst, -1]), "deviation": round(float(deviation[worst]), 3)}
    if len(channels) > 1:
        order = np.argsort(-deviation)
        explanation["channels"] = {channels[i]: round(float(deviation[i]), 3) for i in order}
    return explanation
