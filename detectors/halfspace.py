"""Half-space trees (Tan et al. 2011) through river, as a batch scorer over [0, 1] vectors.

One river ``HalfSpaceTrees`` model per vector width, so streams with different numbers of
channels can share a scorer. Vectors are scored, then learned, in batch order.
"""

from __future__ import annotations

import numpy as np
import torch
from river.anomaly import HalfSpaceTrees


class HalfSpaceTreesScorer:
    """Scores in [0, 1]; 0 until the first ``window_size`` vectors have been seen."""

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
            scores[i] = model.score_one(features)
            model.learn_one(features)
        return scores
