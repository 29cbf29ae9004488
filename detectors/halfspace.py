"""Half-space trees (Tan et al. 2011), batched in numpy, equal to river's ``HalfSpaceTrees``.

river walks every tree in Python for every point; here a whole batch walks all trees at once
(one numpy step per tree level). The trees are grown with the same random calls as river's
(same seed, same features and split points), and a batch is scored exactly as river scores
its points one at a time with ``score_one`` then ``learn_one``: the reference masses change
only when a window of ``window_size`` points completes, so a batch is cut at those points.

river's score s lies in [0, 1] and crowds near 1 for everything outside the normal mass, so
the scorer returns -log(1 - s) instead: the same order, but the far tail is spread out, which
lets a threshold tell a rare-but-normal point (s = 0.97, 3.5) from a real outlier (s = 0.996,
5.5).

>>> trees = HalfSpaceTrees(width=1, n_trees=5, height=3, window_size=3, seed=42)
>>> _ = trees.score_and_learn(np.array([[0.5], [0.45], [0.43]]))  # first window: scores 0
>>> [round(float(s), 3) for s in trees.score_and_learn(np.array([[0.45], [0.0]]))]
[0.074, 1.92]
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import torch

_PADDING = 0.15  # river's: split points stay this fraction away from a node's limits
_MAX_SCORE = 1 - 1e-6


class HalfSpaceTrees:
    """One forest over vectors of a fixed width in [0, 1]; river's semantics, batched."""

    def __init__(self, width: int, n_trees: int = 10, height: int = 8, window_size: int = 250, seed: int = 42):
        self.width, self.n_trees, self.height, self.window_size = width, n_trees, height, window_size
        inner, nodes = 2**height - 1, 2 ** (height + 1) - 1
        self.feature = np.zeros((n_trees, inner), dtype=np.int64)
        self.split = np.zeros((n_trees, inner))
        rng = random.Random(seed)
        for tree in range(n_trees):
            self._grow(rng, tree, 0, height, [(0.0, 1.0)] * width)
        self.latest_mass = np.zeros((n_trees, nodes))  # river's l_mass
        self.reference_mass = np.zeros((n_trees, nodes))  # river's r_mass
        self.seen_in_window = 0
        self.first_window = True
        self._leaf_totals: np.ndarray | None = None  # _path_scores of the reference masses

    def _grow(self, rng: random.Random, tree: int, node: int, height: int, limits: list) -> None:
        """Pre-order growth with river's random calls, so a seed gives river's very trees."""
        if height == 0:
            return
        on = rng.choices(population=list(range(self.width)), weights=[b - a for a, b in limits])[0]
        a, b = limits[on]
        at = rng.uniform(a + _PADDING * (b - a), b - _PADDING * (b - a))
        self.feature[tree, node], self.split[tree, node] = on, at
        self._grow(rng, tree, 2 * node + 1, height - 1, limits[:on] + [(a, at)] + limits[on + 1:])
        self._grow(rng, tree, 2 * node + 2, height - 1, limits[:on] + [(at, b)] + limits[on + 1:])

    _STATE = ("feature", "split", "latest_mass", "reference_mass", "seen_in_window", "first_window")

    def state_dict(self) -> dict:
        return {"params": [self.width, self.n_trees, self.height, self.window_size],
                **{name: getattr(self, name) for name in self._STATE}}

    @classmethod
    def from_state(cls, state: dict) -> "HalfSpaceTrees":
        width, n_trees, height, window_size = state["params"]
        forest = cls.__new__(cls)
        forest.width, forest.n_trees, forest.height, forest.window_size = width, n_trees, height, window_size
        for name in cls._STATE:
            value = state[name]
            setattr(forest, name, value.copy() if isinstance(value, np.ndarray) else value)
        forest._leaf_totals = None
        return forest

    def leaves(self, x: np.ndarray) -> np.ndarray:
        """The leaf each row of x reaches in every tree: (B, n_trees) node indices. Flat
        ``take``s, one per array and level: several times faster than 2-D fancy indexing."""
        inner = self.feature.shape[1]
        tree_base, row_base = np.arange(self.n_trees) * inner, (np.arange(x.shape[0]) * x.shape[1])[:, None]
        feature, split, flat = self.feature.ravel(), self.split.ravel(), np.ascontiguousarray(x).ravel()
        node = np.zeros((x.shape[0], self.n_trees), dtype=np.intp)
        for _ in range(self.height):
            at = tree_base + node
            node = 2 * node + 1 + (flat.take(row_base + feature.take(at)) >= split.take(at))
        return node

    def river_scores(self, x: np.ndarray) -> np.ndarray:
        """river's score_one for each row of x in turn, each row learned after it is scored."""
        leaves = self.leaves(np.asarray(x, dtype=np.float64))
        scores = np.zeros(len(leaves))
        start = 0
        while start < len(leaves):
            end = min(len(leaves), start + self.window_size - self.seen_in_window)
            if not self.first_window:
                scores[start:end] = self._score(leaves[start:end])
            self._learn(leaves[start:end])
            start = end
        return scores

    def score_and_learn(self, vectors: torch.Tensor | np.ndarray) -> np.ndarray:
        """-log(1 - s) of river's score s, scored before learned, in batch order."""
        x = vectors.cpu().numpy() if isinstance(vectors, torch.Tensor) else vectors
        return -np.log1p(-np.minimum(self.river_scores(x), _MAX_SCORE))

    def _path_scores(self) -> np.ndarray:
        """river's mass sum along the path from the root to each node, (n_trees, nodes): each
        node on the way adds reference mass x 2^depth, and river stops descending below a node
        whose reference mass is under 10% of a window. Sums of integers, so exact."""
        mass = self.reference_mass
        total = np.zeros_like(mass)
        descends = np.zeros(mass.shape, dtype=bool)  # river goes on below this node
        total[:, 0], descends[:, 0] = mass[:, 0], mass[:, 0] >= 0.1 * self.window_size
        for depth in range(1, self.height + 1):  # a level's nodes are one slice; each parent twice
            level, above = slice(2**depth - 1, 2 ** (depth + 1) - 1), slice(2 ** (depth - 1) - 1, 2**depth - 1)
            reached = np.repeat(descends[:, above], 2, axis=1)
            total[:, level] = np.repeat(total[:, above], 2, axis=1) + mass[:, level] * 2.0**depth * reached
            descends[:, level] = reached & (mass[:, level] >= 0.1 * self.window_size)
        return total

    def _score(self, leaves: np.ndarray) -> np.ndarray:
        if self._leaf_totals is None:
            self._leaf_totals = self._path_scores()
        total = self._leaf_totals[np.arange(self.n_trees), leaves].sum(axis=1)
        return 1 - total / (self.n_trees * self.window_size * (2 ** (self.height + 1) - 1))

    def _learn(self, leaves: np.ndarray) -> None:
        """Count the paths into the latest masses (a leaf's count climbs to every ancestor);
        pivot them to reference when a window completes."""
        nodes = self.latest_mass.shape[1]
        flat = (np.arange(self.n_trees) * nodes + leaves).ravel()
        counts = np.bincount(flat, minlength=self.latest_mass.size).reshape(self.latest_mass.shape).astype(float)
        for depth in range(self.height - 1, -1, -1):  # children of a level: the next level's slice
            below = slice(2 ** (depth + 1) - 1, 2 ** (depth + 2) - 1)
            counts[:, 2**depth - 1:2 ** (depth + 1) - 1] = counts[:, below][:, 0::2] + counts[:, below][:, 1::2]
        self.latest_mass += counts
        self.seen_in_window += leaves.shape[0]
        if self.seen_in_window == self.window_size:
            self.reference_mass, self.latest_mass = self.latest_mass, np.zeros_like(self.latest_mass)
            self._leaf_totals = None
            self.seen_in_window = 0
            self.first_window = False


class HalfSpaceTreesScorer:
    """Scores >= 0 (0 during the first window); one forest per vector width, so streams
    with different numbers of channels can share a scorer."""

    def __init__(self, n_trees: int = 10, height: int = 8, window_size: int = 250, seed: int = 42):
        self.params = dict(n_trees=n_trees, height=height, window_size=window_size, seed=seed)
        self.forests: dict[int, HalfSpaceTrees] = {}

    def score_and_learn(self, vectors: torch.Tensor | np.ndarray, keys: Sequence[str] | None = None) -> np.ndarray:
        """Scores of the rows; all keys share the forest of their width (the vectors of the
        weight-free embedder are scale-free, so streams are comparable)."""
        width = vectors.shape[1]
        forest = self.forests.get(width)
        if forest is None:
            forest = self.forests[width] = HalfSpaceTrees(width, **self.params)
        return forest.score_and_learn(vectors)

    def state_dict(self) -> dict:
        return {"forests": {str(width): forest.state_dict() for width, forest in self.forests.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.forests = {int(width): HalfSpaceTrees.from_state(f) for width, f in state["forests"].items()}
