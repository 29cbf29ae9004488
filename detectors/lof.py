"""Local outlier factor in torch, equal to scikit-learn's novelty LOF, over rolling memories.

Scores are scikit-learn's ``-LocalOutlierFactor(novelty=True).score_samples(X)``: about 1 for
a vector as dense as its neighbourhood, higher the sparser it is. The semantics follow it
exactly: exactly k neighbours (no k-distance "ties included" neighbourhoods); when the
reference is fitted, each reference vector's neighbours exclude itself by index, so its
duplicates count at distance 0; reachability densities carry the same 1e-10 against
division by zero when more than k duplicates coincide.

Ties between *distinct* vectors at the k-th distance go to the lowest reference index (the
oldest vector of a memory). scikit-learn leaves them to its search structure: its kd-tree,
ball-tree and brute force pick differently and give different scores on such data, so no
single answer exists there to match; everywhere else (duplicates included) scores agree.

The k nearest neighbours are found in blocks of ``query_chunk`` x ``reference_chunk``
distances by one matrix product each, keeping a shortlist of each query's ``k + 8`` nearest;
the shortlisted candidates' distances are then recomputed exactly (difference vectors, no ``|a|^2 + |b|^2 - 2ab``
cancellation) and the best k kept. Memory stays bounded whatever the sizes.

>>> ref = torch.tensor([[0.0], [1.0], [2.0], [3.0]], dtype=torch.float64)
>>> fitted = fit_lof(ref, k=2)
>>> [round(float(s), 3) for s in lof_scores(fitted, torch.tensor([[1.5], [9.0]], dtype=torch.float64))]
[0.667, 4.333]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from detectors.memory import (StateFile, as_rows, default_dtype, dtype_name, keyed_state, rows_by_key,
                              unpack_keyed_state)

METRICS = ("euclidean", "cosine")
_DENSITY_GUARD = 1e-10  # scikit-learn's, against 0 / 0 when > k duplicates coincide
_EXACT_BLOCK = 1 << 22  # elements of the (rows, candidates, dim) block of exact distances
_SLACK = 8  # candidates beyond k shortlisted per query, against rounding in the shortlist


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")


def _unit(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit length; zero rows stay zero (so their cosine distance is 1)."""
    norm = x.norm(dim=1, keepdim=True)
    return x / torch.where(norm > 0, norm, torch.ones_like(norm))


def _exact_distances(queries: torch.Tensor, candidates: torch.Tensor, metric: str) -> torch.Tensor:
    """(Q, C) distances from each query (Q, D) to its own candidates (Q, C, D)."""
    if metric == "cosine":  # inputs are unit rows here, as in scikit-learn's cosine_distances
        return (1 - (queries[:, None, :] * candidates).sum(-1)).clamp(0, 2)
    return (queries[:, None, :] - candidates).square().sum(-1).sqrt()


def k_nearest(queries: torch.Tensor, reference: torch.Tensor, k: int, metric: str = "euclidean",
              exclude_self: bool = False, query_chunk: int = 512, reference_chunk: int = 1024,
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Distances (Q, k) and indices (Q, k) of each query's k nearest reference rows, nearest
    first, ties to the lower index. ``exclude_self``: queries are the reference itself and row
    i may not be its own neighbour (its duplicates may)."""
    _check_metric(metric)
    available = reference.shape[0] - int(exclude_self)
    if not 1 <= k <= available:
        raise ValueError(f"k={k} needs at least {k + int(exclude_self)} reference vectors, got {reference.shape[0]}")
    if metric == "cosine":
        queries, reference = _unit(queries), _unit(reference)
    keep = min(k + _SLACK, available)
    distances, indices = [], []
    for start in range(0, queries.shape[0], query_chunk):
        chunk = queries[start:start + query_chunk]
        candidates = _shortlist(chunk, reference, keep, metric, start if exclude_self else None, reference_chunk)
        d, i = _refine(chunk, reference, candidates, k, metric)
        distances.append(d)
        indices.append(i)
    return torch.cat(distances), torch.cat(indices)


def _shortlist(queries: torch.Tensor, reference: torch.Tensor, keep: int, metric: str, self_offset: int | None,
               reference_chunk: int) -> torch.Tensor:
    """Indices (Q, keep) of each query's ``keep`` nearest reference rows by a matrix-product
    distance, one block of reference rows at a time. ``self_offset``: the queries are reference
    rows from there on, each barred from its own shortlist."""
    if metric == "euclidean":  # |r|^2 - 2 q.r, the squared distance less |q|^2, on centred data
        center = reference.mean(0)  # centring keeps the difference of squares accurate
        queries, reference = queries - center, reference - center
        bias, scale = (reference * reference).sum(1), 2
    else:  # -q.r, the cosine distance less 1, on unit rows
        bias, scale = reference.new_zeros(reference.shape[0]), 1
    best_d = queries.new_empty((queries.shape[0], 0))
    best_i = torch.empty((queries.shape[0], 0), dtype=torch.long, device=queries.device)
    for start in range(0, reference.shape[0], reference_chunk):
        block = reference[start:start + reference_chunk]
        d = torch.addmm(bias[None, start:start + block.shape[0]], queries, block.T, alpha=-scale)
        if self_offset is not None:
            low = max(self_offset, start)
            own = torch.arange(low, max(low, min(self_offset + queries.shape[0], start + block.shape[0])),
                               device=d.device)
            d[own - self_offset, own - start] = float("inf")
        best_d, best_i = _merge(best_d, best_i, d, start, keep)
    return best_i


def _merge(best_d: torch.Tensor, best_i: torch.Tensor, d: torch.Tensor, offset: int, keep: int,
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's ``keep`` smallest among its best so far and a new block of distances ``d``
    (reference columns from ``offset``). Once a row's shortlist is full, only the block's
    entries under the row's worst kept distance are looked at: after the first block they
    are few, which spares a top-k over every block."""
    rows = d.shape[0]
    if best_d.shape[1] < keep:
        d, i = torch.topk(d, min(keep, d.shape[1]), dim=1, largest=False, sorted=False)
        both_d, both_i = torch.cat([best_d, d], 1), torch.cat([best_i, i + offset], 1)
    else:
        hit_rows, hit_cols = (d < best_d.amax(1, keepdim=True)).nonzero(as_tuple=True)
        if hit_rows.numel() == 0:
            return best_d, best_i
        counts = torch.bincount(hit_rows, minlength=rows)
        slot = keep + torch.arange(hit_rows.numel(), device=d.device) - (torch.cumsum(counts, 0) - counts)[hit_rows]
        width = keep + int(counts.max())
        both_d = torch.cat([best_d, best_d.new_full((rows, width - keep), float("inf"))], 1)
        both_i = torch.cat([best_i, best_i.new_zeros((rows, width - keep))], 1)
        both_d[hit_rows, slot] = d[hit_rows, hit_cols]
        both_i[hit_rows, slot] = hit_cols + offset
    best_d, pick = torch.topk(both_d, min(keep, both_d.shape[1]), dim=1, largest=False, sorted=False)
    return best_d, both_i.gather(1, pick)


def _refine(queries: torch.Tensor, reference: torch.Tensor, candidates: torch.Tensor, k: int, metric: str,
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact distances to the shortlisted candidates; the k best by (distance, index)."""
    rows = max(1, _EXACT_BLOCK // (candidates.shape[1] * reference.shape[1]))
    exact = torch.cat([_exact_distances(queries[s:s + rows], reference[candidates[s:s + rows]], metric)
                       for s in range(0, queries.shape[0], rows)])
    candidates, by_index = candidates.sort(dim=1)
    exact, by_distance = exact.gather(1, by_index).sort(dim=1, stable=True)
    return exact[:, :k], candidates.gather(1, by_distance)[:, :k]


@dataclass
class FittedLOF:
    """A reference set with each vector's k-distance and local reachability density."""

    vectors: torch.Tensor
    k_distance: torch.Tensor
    density: torch.Tensor
    k: int
    metric: str = "euclidean"
    query_chunk: int = 512
    reference_chunk: int = 1024


def _density(distances: torch.Tensor, neighbours: torch.Tensor, k_distance: torch.Tensor) -> torch.Tensor:
    """Local reachability density: 1 / mean over neighbours o of max(d(x, o), k-distance(o))."""
    reach = torch.maximum(distances, k_distance[neighbours])
    return 1 / (reach.mean(1) + _DENSITY_GUARD)


def fit_lof(reference: torch.Tensor, k: int, metric: str = "euclidean",
            query_chunk: int = 512, reference_chunk: int = 1024) -> FittedLOF:
    """scikit-learn's ``LocalOutlierFactor(n_neighbors=k, novelty=True).fit(reference)``."""
    distances, neighbours = k_nearest(reference, reference, k, metric, True, query_chunk, reference_chunk)
    k_distance = distances[:, -1].contiguous()
    return FittedLOF(reference, k_distance, _density(distances, neighbours, k_distance), k, metric,
                     query_chunk, reference_chunk)


def lof_scores(fitted: FittedLOF, queries: torch.Tensor) -> torch.Tensor:
    """LOF of each query against the fitted reference: ``-score_samples`` in scikit-learn."""
    distances, neighbours = k_nearest(queries, fitted.vectors, fitted.k, fitted.metric,
                                      False, fitted.query_chunk, fitted.reference_chunk)
    density = _density(distances, neighbours, fitted.k_distance)
    return (fitted.density[neighbours] / density[:, None]).mean(1)


class _Memory:
    """One key's FIFO ring of admitted vectors and the LOF fitted on it at the last refit."""

    def __init__(self, capacity: int, width: int, device: torch.device, dtype: torch.dtype):
        self.ring = torch.zeros((capacity, width), device=device, dtype=dtype)
        self.count = 0  # vectors ever admitted
        self.since_fit = 0  # admitted since the last refit
        self.fitted: FittedLOF | None = None

    def contents(self) -> torch.Tensor:
        """The vectors held, oldest first."""
        capacity = self.ring.shape[0]
        if self.count <= capacity:
            return self.ring[:self.count]
        start = self.count % capacity
        return torch.cat([self.ring[start:], self.ring[:start]])

    def admit(self, rows: torch.Tensor) -> None:
        """Append rows, overwriting the oldest once the ring is full."""
        capacity, added = self.ring.shape[0], rows.shape[0]
        kept = rows[-capacity:]
        first = self.count + added - kept.shape[0]
        self.ring[(first + torch.arange(kept.shape[0], device=kept.device)) % capacity] = kept
        self.count += added
        self.since_fit += added


class LOFScorer(StateFile):
    """Streaming LOF: each vector is scored against its key's fitted memory, then admitted.

    Update policy, per key (``keys=None``: one shared memory, key ``""``):

    - the memory is a FIFO ring of the last ``capacity`` admitted vectors; a vector is admitted
      after it is scored, always if ``admit_below`` is None, else only if its score is at most
      ``admit_below`` (a memory of vectors judged normal);
    - scores see the memory as it stood at the last refit. The first refit comes when the
      memory first holds k + 1 vectors (the k + 1 before it score 0.0, "nothing known"); then
      one comes after every ``refit_every`` admissions. ``refit_every=1`` scores each vector
      against all vectors admitted before it; larger values trade that lag (at most
      ``refit_every - 1`` vectors) for fewer refits (a refit is a k-NN search of the memory in
      itself, O(capacity^2 * dim));
    - refits happen at admission counts, never at batch ends, so a batch gives exactly the
      scores of the same vectors fed one at a time, and keys never see each other's vectors.

    >>> scorer = LOFScorer(k=3, capacity=50, refit_every=10)
    >>> scorer.score_and_learn(np.sin(np.arange(40.0))[:, None])[:5].round(2).tolist()  # 4 warm-up zeros
    [0.0, 0.0, 0.0, 0.0, 1.32]
    >>> scorer.score_and_learn(np.array([[0.5], [3.0]])).round(2).tolist()
    [1.04, 51.41]
    """

    state_name = "lof"

    def __init__(self, k: int = 20, capacity: int = 1000, refit_every: int = 64, metric: str = "euclidean",
                 admit_below: float | None = None, device: str | torch.device = "cpu",
                 dtype: torch.dtype | None = None, query_chunk: int = 512, reference_chunk: int = 1024):
        _check_metric(metric)
        if k < 1 or capacity <= k:
            raise ValueError(f"need 1 <= k < capacity, got k={k}, capacity={capacity}")
        if refit_every < 1 or query_chunk < 1 or reference_chunk < 1:
            raise ValueError("refit_every, query_chunk and reference_chunk must be >= 1")
        self.k, self.capacity, self.refit_every, self.metric = k, capacity, refit_every, metric
        self.admit_below = admit_below
        self.device = torch.device(device)
        self.dtype = dtype or default_dtype(self.device)
        self.query_chunk, self.reference_chunk = query_chunk, reference_chunk
        self.memories: dict[str, _Memory] = {}

    def score_and_learn(self, vectors: torch.Tensor | np.ndarray, keys: Sequence[str] | None = None) -> np.ndarray:
        """LOF of each row against its key's memory (0.0 while it warms up), then learned."""
        rows = as_rows(vectors, self.device, self.dtype)
        scores = rows.new_zeros(rows.shape[0])
        for key, index in rows_by_key(keys, rows.shape[0]).items():
            index = index.to(self.device)
            scores[index] = self._stream(key, rows[index])
        return scores.cpu().numpy().astype(np.float64)

    def _stream(self, key: str, rows: torch.Tensor) -> torch.Tensor:
        memory = self.memories.get(key)
        if memory is None:
            memory = self.memories[key] = _Memory(self.capacity, rows.shape[1], self.device, self.dtype)
        elif memory.ring.shape[1] != rows.shape[1]:
            raise ValueError(f"key {key!r} holds vectors of dim {memory.ring.shape[1]}, got dim {rows.shape[1]}")
        scores = rows.new_zeros(rows.shape[0])
        start = 0
        while start < rows.shape[0]:
            # at most as many rows as admissions before the next refit: all share one reference
            block = rows[start:start + self._admissions_to_refit(memory)]
            if memory.fitted is None:
                memory.admit(block)
            else:
                block_scores = lof_scores(memory.fitted, block)
                scores[start:start + block.shape[0]] = block_scores
                memory.admit(block if self.admit_below is None else block[block_scores <= self.admit_below])
            start += block.shape[0]
            if self._admissions_to_refit(memory) == 0:
                memory.fitted = fit_lof(memory.contents().clone(), self.k, self.metric,
                                        self.query_chunk, self.reference_chunk)
                memory.since_fit = 0
        return scores

    def _admissions_to_refit(self, memory: _Memory) -> int:
        if memory.fitted is None:
            return self.k + 1 - memory.count
        return self.refit_every - memory.since_fit

    def config(self) -> dict:
        return dict(k=self.k, capacity=self.capacity, refit_every=self.refit_every, metric=self.metric,
                    admit_below=self.admit_below, dtype=dtype_name(self.dtype), query_chunk=self.query_chunk,
                    reference_chunk=self.reference_chunk)

    def state_dict(self) -> dict:
        """Config, every key's ring, counters and fitted reference: numpy arrays and JSON values."""
        states = {}
        for key, memory in self.memories.items():
            tensors = {"ring": memory.ring}
            if memory.fitted is not None:
                fitted = memory.fitted
                tensors.update(reference=fitted.vectors, k_distance=fitted.k_distance, density=fitted.density)
            states[key] = (tensors, dict(count=memory.count, since_fit=memory.since_fit))
        return keyed_state(self.state_name, self.config(), states)

    def load_state_dict(self, state: dict) -> None:
        """Take the memories of a ``state_dict`` made by a scorer with the same arguments."""
        states = unpack_keyed_state(state, self.state_name, self.config(), self.device, self.dtype)
        self.memories = {}
        for key, (tensors, counters) in states.items():
            memory = self.memories[key] = _Memory(self.capacity, tensors["ring"].shape[1], self.device, self.dtype)
            memory.ring.copy_(tensors["ring"])
            memory.count, memory.since_fit = counters["count"], counters["since_fit"]
            if "reference" in tensors:
                memory.fitted = FittedLOF(tensors["reference"], tensors["k_distance"], tensors["density"],
                                          self.k, self.metric, self.query_chunk, self.reference_chunk)
