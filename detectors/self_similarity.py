"""Self-similarity scores, THEMIS style: the newest embedding against the W - 1 before it.

For each stream, a sliding window holds its last W embeddings, scaled to unit length. The
newest vector x is judged against the W - 1 older ones, e_1..e_{W-1} (never against itself),
by three scores, each higher = more anomalous:

- ``mean``: 1 - mean_j |cos(x, e_j)|, the absolute cosine similarity of THEMIS (a vector and
  its negation count as alike);
- ``topk``: 1 - the mean of the ``top_k`` largest |cos(x, e_j)|: trimmed to the nearest few,
  so a recurring pattern that is rare in the window is not punished;
- ``spectral``: the part of x outside the span of the top ``rank`` eigenvectors of the older
  vectors' Gram matrix K = [e_i . e_j], i.e. the kernel-PCA residual
  sqrt(1 - sum_{i<=r} (k . v_i)^2 / lambda_i) with k = [e_j . x] and (lambda_i, v_i) the top
  eigenpairs of K (those above sqrt(eps) * lambda_max; the rest carry only rounding). THEMIS
  reports this stable for ranks 2..20. It needs dim > rank to say anything: with rank >= dim
  the span is the whole space and the residual is 0.

A stream's first W - 1 vectors score NaN ("no opinion yet"); from the W-th on, every vector
is scored. ``self_similarity_scores`` is the batch form over a whole series; the scorer is the
incremental form, which keeps each key's last W - 1 unit vectors and their Gram matrix, so a
new vector costs one row of similarities and one (W-1)^2 eigendecomposition, and equals the
batch form on the same series however it is cut into batches.

>>> t = torch.arange(80.0, dtype=torch.float64)
>>> series = torch.stack([torch.sin(t / 3 + phase) for phase in range(6)], 1)  # 80 vectors of dim 6
>>> series[70] = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0, -1.0])
>>> scores = self_similarity_scores(series, window=16, rank=2)["spectral"]
>>> int(scores.argmax()) + 15  # the series index of the highest score
70
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from detectors.memory import (StateFile, as_rows, DEFAULT_DTYPE, dtype_name, keyed_state, rows_by_key,
                              unpack_keyed_state)

SCORES = ("spectral", "mean", "topk")


def _unit(x: torch.Tensor) -> torch.Tensor:
    norm = x.norm(dim=-1, keepdim=True)
    return x / torch.where(norm > 0, norm, torch.ones_like(norm))


def window_scores(gram: torch.Tensor, similarity: torch.Tensor, rank: int, top_k: int) -> dict[str, torch.Tensor]:
    """The three scores of N windows from the older vectors' Gram matrices (N, W-1, W-1) and
    the newest vector's cosine similarities to them (N, W-1)."""
    absolute = similarity.abs()
    values, vectors = torch.linalg.eigh(gram)  # ascending; K is positive semi-definite
    values, vectors = values[:, -rank:], vectors[:, :, -rank:]
    usable = values > values[:, -1:].clamp(min=0) * torch.finfo(gram.dtype).eps ** 0.5
    coefficients = (similarity[:, None, :] @ vectors).squeeze(1)
    explained = torch.where(usable, coefficients.square() / torch.where(usable, values, 1), 0).sum(1)
    return {
        "spectral": (1 - explained).clamp(0, 1).sqrt(),
        "mean": 1 - absolute.mean(1),
        "topk": 1 - absolute.topk(top_k, dim=1).values.mean(1),
    }


def _check(window: int, rank: int, top_k: int) -> None:
    if window < 2 or not 1 <= rank < window or not 1 <= top_k < window:
        raise ValueError(f"need window >= 2 and 1 <= rank, top_k < window; got window={window}, rank={rank}, top_k={top_k}")


def self_similarity_scores(embeddings: torch.Tensor, window: int, rank: int = 5, top_k: int = 5) -> dict[str, torch.Tensor]:
    """Batch form: the scores of rows window-1 .. T-1 of a (T, D) series, each against the
    window - 1 rows before it, every window computed from scratch."""
    _check(window, rank, top_k)
    windows = _unit(embeddings).unfold(0, window, 1).transpose(1, 2)  # (T - W + 1, W, D)
    older, newest = windows[:, :-1], windows[:, -1]
    gram = older @ older.transpose(1, 2)
    return window_scores(gram, (older @ newest[:, :, None]).squeeze(-1), rank, top_k)


class _Recent:
    """One key's last W - 1 unit vectors, oldest first, with their Gram matrix."""

    def __init__(self, vectors: torch.Tensor, gram: torch.Tensor, seen: int):
        self.vectors, self.gram, self.seen = vectors, gram, seen


class SelfSimilarityScorer(StateFile):
    """Incremental self-similarity per key (``keys=None``: one shared stream, key ``""``).

    Each vector is scored against the W - 1 vectors of its key before it, then joins the
    window; ``score`` picks which of ``SCORES`` ``score_and_learn`` returns, and
    ``scores_and_learn`` returns all three. Rows are processed ``chunk`` at a time, the windows
    of all keys in a chunk in one batched eigendecomposition.
    """

    state_name = "self_similarity"
    score_scale = "log"  # a dissimilarity near 0: a mixture z-scores its log (detectors.mixture)

    def __init__(self, window: int = 64, rank: int = 5, top_k: int = 5, score: str = "spectral",
                 device: str | torch.device = "cpu", dtype: torch.dtype | None = None, chunk: int = 1024):
        _check(window, rank, top_k)
        if score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}, got {score!r}")
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        self.window, self.rank, self.top_k, self.score, self.chunk = window, rank, top_k, score, chunk
        self.device = torch.device(device)
        self.dtype = dtype or DEFAULT_DTYPE
        self.recent: dict[str, _Recent] = {}

    def score_and_learn(self, vectors: torch.Tensor | np.ndarray, keys: Sequence[str] | None = None) -> np.ndarray:
        """The chosen score of each row (NaN while its key's window fills), then learned."""
        return self.scores_and_learn(vectors, keys)[self.score]

    def scores_and_learn(self, vectors: torch.Tensor | np.ndarray, keys: Sequence[str] | None = None,
                         ) -> dict[str, np.ndarray]:
        """All three scores of each row, in ``SCORES`` order of names."""
        rows = _unit(as_rows(vectors, self.device, self.dtype))
        if keys is not None and len(keys) != rows.shape[0]:
            raise ValueError(f"got {len(keys)} keys for {rows.shape[0]} vectors; give one key per row")
        out = {name: rows.new_full((rows.shape[0],), float("nan")) for name in SCORES}
        for start in range(0, rows.shape[0], self.chunk):
            chunk_keys = None if keys is None else keys[start:start + self.chunk]
            self._chunk(rows[start:start + self.chunk], chunk_keys, start, out)
        return {name: scores.cpu().numpy().astype(np.float64) for name, scores in out.items()}

    def _chunk(self, rows: torch.Tensor, keys: Sequence[str] | None, offset: int, out: dict) -> None:
        grams, similarities, targets = [], [], []
        for key, index in rows_by_key(keys, rows.shape[0]).items():
            gram, similarity, scored = self._windows(key, rows[index.to(self.device)])
            grams.append(gram)
            similarities.append(similarity)
            targets.append(index[scored.cpu()] + offset)
        scores = window_scores(torch.cat(grams), torch.cat(similarities), self.rank, self.top_k)
        target = torch.cat(targets).to(self.device)
        for name, values in scores.items():
            out[name][target] = values

    def _windows(self, key: str, new: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The Gram matrices and similarity rows of the windows of a key's new rows that have
        W - 1 predecessors, which rows those are, and the key's window moved on."""
        recent = self.recent.get(key)
        if recent is None:
            recent = self.recent[key] = _Recent(new[:0], new.new_zeros((0, 0)), 0)
        elif recent.vectors.shape[1] != new.shape[1]:
            raise ValueError(f"key {key!r} holds vectors of dim {recent.vectors.shape[1]}, got dim {new.shape[1]}")
        held, older = recent.vectors.shape[0], self.window - 1
        joined = torch.cat([recent.vectors, new])
        cross = joined @ new.T  # the only new similarities: (held + B, B)
        gram = torch.cat([torch.cat([recent.gram, cross[:held].T]), cross], 1)
        # position p of `joined` is scored iff it has `older` predecessors: p >= older
        scored = torch.arange(held, joined.shape[0], device=new.device)
        scored = scored[scored >= older]
        window = scored[:, None] - older + torch.arange(older, device=new.device)  # (n, W-1)
        keep = slice(max(0, joined.shape[0] - older), None)
        recent.vectors, recent.gram = joined[keep], gram[keep, keep]
        recent.seen += new.shape[0]
        return gram[window[:, :, None], window[:, None, :]], gram[scored[:, None], window], scored - held

    def config(self) -> dict:
        return dict(window=self.window, rank=self.rank, top_k=self.top_k, score=self.score,
                    dtype=dtype_name(self.dtype), chunk=self.chunk)

    def state_dict(self) -> dict:
        """Config and every key's window (unit vectors and Gram matrix): arrays and JSON values."""
        return keyed_state(self.state_name, self.config(), {
            key: ({"vectors": recent.vectors, "gram": recent.gram}, {"seen": recent.seen})
            for key, recent in self.recent.items()})

    def load_state_dict(self, state: dict) -> None:
        """Take the windows of a ``state_dict`` made by a scorer with the same arguments."""
        states = unpack_keyed_state(state, self.state_name, self.config(), self.device, self.dtype)
        self.recent = {key: _Recent(tensors["vectors"], tensors["gram"], counters["seen"])
                       for key, (tensors, counters) in states.items()}
