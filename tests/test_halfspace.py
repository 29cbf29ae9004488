"""Batched half-space trees against river's HalfSpaceTrees, point for point."""

import numpy as np
import pytest
from river.anomaly import HalfSpaceTrees as RiverHalfSpaceTrees

from detectors.halfspace import HalfSpaceTrees, HalfSpaceTreesScorer


def _river_scores(x: np.ndarray, **params) -> np.ndarray:
    model = RiverHalfSpaceTrees(**params)
    scores = []
    for row in x:
        features = dict(enumerate(row))
        scores.append(model.score_one(features))
        model.learn_one(features)
    return np.array(scores)


@pytest.mark.parametrize("width, n_trees, height, window_size", [(1, 5, 3, 3), (4, 10, 8, 250), (3, 7, 5, 20)])
def test_batches_of_any_size_give_river_scores_exactly(width, n_trees, height, window_size):
    rng = np.random.default_rng(width)
    x = rng.random((1500, width))
    x[::53] **= 8  # some points far into one corner
    forest = HalfSpaceTrees(width, n_trees, height, window_size, seed=7)
    ours, start = [], 0
    while start < len(x):  # batch sizes that straddle the window boundaries
        size = int(rng.integers(1, 3 * window_size + 2))
        ours.append(forest.river_scores(x[start:start + size]))
        start += size
    expected = _river_scores(x, n_trees=n_trees, height=height, window_size=window_size, seed=7)
    np.testing.assert_array_equal(np.concatenate(ours), expected)
    assert expected[window_size:].max() > 0  # the comparison covers real scores, not the warm-up zeros


def test_scorer_keeps_one_forest_per_width_and_ranks_an_outlier_highest():
    rng = np.random.default_rng(0)
    scorer = HalfSpaceTreesScorer(window_size=50)
    scorer.score_and_learn(np.full((1, 2), 0.5))
    normal = 0.5 + 0.05 * rng.standard_normal((300, 4))
    scores = scorer.score_and_learn(np.vstack([normal, [[0.99, 0.01, 0.99, 0.01]]]))
    assert sorted(scorer.forests) == [2, 4]
    assert scores[-1] > scores[50:-1].max()
