"""Half-space trees (Tan et al. 2011) through river, as a batch scorer over [0, 1] vectors.

One river ``HalfSpaceTrees`` model per vector width, so streams with different numbers of
channels can share a scorer. Vectors are scored, then learned, in batch order.

river's score s lies in [0, 1] and crowds near 1 for everything outside the normal mass, so
this scorer returns -log(1 - s) instead: the same order, but the far tail is spread out, which
lets a threshold tell a rare-but-normal point (s = 0.97, 3.5) from a real outlier (s = 0.996,
5.5).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from river.anomaly import HalfSpaceTrees


_MAX_SCORE = 1 - 1e-6


class HalfSpaceTreesScorer:
    """Scores >= 0; 0 until the first ``window_size`` vectors have been seen."""

    def __init__(self, n_trees: int = 10, height: int = 8, window_size: int = 250, seed: int = 42):
        self.params = dict(n_trees=n_trees, height=height, window_size=window_size, seed=seed)
        self.models: dict[int, HalfSpaceTrees] = {}

    def score_and_learn(self, vectors: torch.Tensor) -> np.ndarray:
        width = vectors.shape[1]
        model = self.models.get(width)
        if model is None:
            model = self.models[width] = HalfSpaceTrees(**self.params)
        scores = np.empty(vectors.shape[0])
        for i, row in enumerate(vectors.cpu().tolist()):
            features = dict(enumerate(row))
            scores[i] = -math.log1p(-min(model.score_one(features), _MAX_SCORE))
            model.learn_one(features)
        return scores
