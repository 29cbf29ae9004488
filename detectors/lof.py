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

The k nearest neighbours come from ``detectors.nearest`` (exact, with the same tie rule on
every device).

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

from detectors.memory import (StateFile, as_rows, DEFAULT_DTYPE, dtype_name, keyed_state, rows_by_key,
                              unpack_keyed_state)
from detectors.nearest import (BATCH_ELEMENTS, METRICS, Frame, batched_k_nearest, check_metric, k_nearest,
                               reference_frame)

_DENSITY_GUARD = 1e-10  # scikit-learn's, against 0 / 0 when > k duplicates coincide


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


def _density(distances: torch.Tensor, neighbour_k_distance: torch.Tensor) -> torch.Tensor:
    """Local reachability density: 1 / mean over neighbours o of max(d(x, o), k-distance(o));
    ``neighbour_k_distance`` is k-distance(o) looked up for each neighbour, shaped as ``distances``."""
    reach = torch.maximum(distances, neighbour_k_distance)
    return 1 / (reach.mean(-1) + _DENSITY_GUARD)


def fit_lof(reference: torch.Tensor, k: int, metric: str = "euclidean",
            query_chunk: int = 512, reference_chunk: int = 1024) -> FittedLOF:
    """scikit-learn's ``LocalOutlierFactor(n_neighbors=k, novelty=True).fit(reference)``."""
    distances, neighbours = k_nearest(reference, reference, k, metric, True, query_chunk, reference_chunk)
    k_distance = distances[:, -1].contiguous()
    return FittedLOF(reference, k_distance, _density(distances, k_distance[neighbours]), k, metric,
                     query_chunk, reference_chunk)


def lof_scores(fitted: FittedLOF, queries: torch.Tensor) -> torch.Tensor:
    """LOF of each query against the fitted reference: ``-score_samples`` in scikit-learn."""
    distances, neighbours = k_nearest(queries, fitted.vectors, fitted.k, fitted.metric,
                                      False, fitted.query_chunk, fitted.reference_chunk)
    density = _density(distances, fitted.k_distance[neighbours])
    return (fitted.density[neighbours] / density[:, None]).mean(1)


# Many references at once: the memories of many keys, padded to one length. Each of the G
# references is used only up to its own size; the results equal fit_lof / lof_scores on each.
def batched_fit(reference: torch.Tensor, sizes: torch.Tensor, k: int, metric: str = "euclidean",
                frame: Frame | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """k-distances and densities (G, N) of each reference (``fit_lof`` on each); ``frame``: the
    references' ``reference_frame``, if already worked out."""
    distances, neighbours = batched_k_nearest(reference, reference, sizes, k, metric, exclude_self=True, frame=frame)
    k_distance = distances[..., -1].contiguous()
    return k_distance, _density(distances, _per_reference(k_distance, neighbours))


def batched_scores(queries: torch.Tensor, reference: torch.Tensor, sizes: torch.Tensor, k_distance: torch.Tensor,
                   density: torch.Tensor, k: int, metric: str = "euclidean", frame: Frame | None = None,
                   ) -> torch.Tensor:
    """LOF (G, Q) of each ``queries[g]`` against fitted reference g (``lof_scores`` on each);
    ``frame``: as in ``batched_fit``."""
    distances, neighbours = batched_k_nearest(queries, reference, sizes, k, metric, frame=frame)
    query_density = _density(distances, _per_reference(k_distance, neighbours))
    return (_per_reference(density, neighbours) / query_density[..., None]).mean(-1)


def _per_reference(values: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """values (G, N) looked up at indices (G, Q, k) of the same reference."""
    return values.gather(1, indices.flatten(1)).view(indices.shape)


class _Memories:
    """The memories of every key whose vectors have one width, stacked: slot s is one key's FIFO
    ring of admitted vectors and the reference fitted at its last refit (oldest first, its own
    size), with that reference's k-distances, densities and frame (``reference_frame``: kept, so
    that scoring does not pass over every reference again). Counters live on the host."""

    def __init__(self, capacity: int, width: int, device: torch.device, dtype: torch.dtype):
        self.capacity, self.width = capacity, width
        self.ring = torch.zeros((0, capacity, width), device=device, dtype=dtype)
        self.reference = torch.zeros_like(self.ring)
        self.k_distance = torch.zeros((0, capacity), device=device, dtype=dtype)
        self.density = torch.zeros_like(self.k_distance)
        self.center = torch.zeros((0, width), device=device, dtype=dtype)
        self.bias = torch.zeros_like(self.k_distance)
        self.count = np.zeros(0, np.int64)  # vectors ever admitted
        self.since_fit = np.zeros(0, np.int64)  # admitted since the last refit
        self.fitted = np.zeros(0, np.int64)  # size of the fitted reference; 0: none yet
        self.used = 0

    def add(self) -> int:
        """A new empty slot (storage grows by a quarter: a slot holds two (capacity, D) arrays)."""
        if self.used == self.ring.shape[0]:
            grow = max(4, self.used // 4)
            self.ring, self.reference, self.k_distance, self.density, self.center, self.bias = (
                torch.cat([t, t.new_zeros((grow, *t.shape[1:]))]) for t in
                (self.ring, self.reference, self.k_distance, self.density, self.center, self.bias))
            self.count, self.since_fit, self.fitted = (
                np.concatenate([a, np.zeros(grow, np.int64)]) for a in (self.count, self.since_fit, self.fitted))
        self.used += 1
        return self.used - 1

    def contents(self, slots: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
        """The vectors each slot holds, oldest first, padded to the longest: (S, N, D), sizes."""
        sizes = np.minimum(self.count[slots], self.capacity)
        first = np.where(self.count[slots] > self.capacity, self.count[slots] % self.capacity, 0)
        order = (first[:, None] + np.arange(sizes.max())[None, :]) % self.capacity
        return self.ring[torch.as_tensor(slots)[:, None], torch.as_tensor(order)], sizes

    def admit(self, slots: np.ndarray, rows: torch.Tensor, taken: np.ndarray) -> None:
        """Append ``rows`` (S, Q, D) to their slots, ``taken`` (S, Q) of them, in order."""
        rank = np.cumsum(taken, 1) - 1
        position = (self.count[slots][:, None] + rank) % self.capacity
        where = np.nonzero(taken)
        index = torch.as_tensor(where[0]), torch.as_tensor(where[1])
        self.ring[torch.as_tensor(slots[where[0]]), torch.as_tensor(position[where])] = rows[index]
        added = taken.sum(1)
        self.count[slots] += added
        self.since_fit[slots] += added

    def refit(self, slots: np.ndarray, k: int, metric: str) -> None:
        contents, sizes = self.contents(slots)
        n, index = contents.shape[1], torch.as_tensor(slots)
        lengths = torch.as_tensor(sizes, device=contents.device)
        frame = reference_frame(contents, lengths, metric)
        k_distance, density = batched_fit(contents, lengths, k, metric, frame)
        self.reference[index, :n], self.k_distance[index, :n], self.density[index, :n] = contents, k_distance, density
        self.center[index], self.bias[index, :n] = frame.center, frame.bias
        self.fitted[slots], self.since_fit[slots] = sizes, 0

    def scores(self, slots: np.ndarray, queries: torch.Tensor, k: int, metric: str) -> torch.Tensor:
        """LOF (S, Q) of each slot's queries against its fitted reference, a group of slots at a
        time (a group's references are gathered: a view where its slots are consecutive)."""
        n = int(self.fitted[slots].max())
        per_group = max(1, 4 * BATCH_ELEMENTS // (n * self.width))
        out = []
        for start in range(0, len(slots), per_group):
            group = slots[start:start + per_group]
            pick = (slice(int(group[0]), int(group[-1]) + 1) if (np.diff(group) == 1).all()
                    else torch.as_tensor(group))
            sizes = torch.as_tensor(self.fitted[group], device=queries.device)
            out.append(batched_scores(queries[start:start + per_group], self.reference[pick, :n], sizes,
                                      self.k_distance[pick, :n], self.density[pick, :n], k, metric,
                                      Frame(self.center[pick], self.bias[pick, :n])))
        return torch.cat(out)


class LOFScorer(StateFile):
    """Streaming LOF: each vector is scored against its key's fitted memory, then admitted.

    Update policy, per key (``keys=None``: one shared memory, key ``""``):

    - the memory is a FIFO ring of the last ``capacity`` admitted vectors; a vector is admitted
      after it is scored, always if ``admit_below`` is None, else only if its score is at most
      ``admit_below`` (a memory of vectors judged normal);
    - scores see the memory as it stood at the last refit. The first refit comes when the
      memory first holds k + 1 vectors (the k + 1 before it score NaN, "no opinion yet"); then
      one comes after every ``refit_every`` admissions. ``refit_every=1`` scores each vector
      against all vectors admitted before it; larger values trade that lag (at most
      ``refit_every - 1`` vectors) for fewer refits (a refit is a k-NN search of the memory in
      itself, O(capacity^2 * dim));
    - refits happen at admission counts, never at batch ends, so a batch gives exactly the
      scores of the same vectors fed one at a time, and keys never see each other's vectors.

    The keys of a batch are served together: their memories sit stacked in one tensor, so one
    batched k-NN search scores a row of every key at once (one call for thousands of streams,
    not one per stream), and the keys due for a refit are refitted together.

    >>> scorer = LOFScorer(k=3, capacity=50, refit_every=10)
    >>> scorer.score_and_learn(np.sin(np.arange(40.0))[:, None])[:5].round(2).tolist()  # 4 warm-up NaNs
    [nan, nan, nan, nan, 1.32]
    >>> scorer.score_and_learn(np.array([[0.5], [3.0]])).round(2).tolist()
    [1.04, 51.41]
    """

    state_name = "lof"
    score_scale = "log"  # a density ratio: a mixture z-scores its log (detectors.mixture)

    def __init__(self, k: int = 20, capacity: int = 1000, refit_every: int = 64, metric: str = "euclidean",
                 admit_below: float | None = None, device: str | torch.device = "cpu",
                 dtype: torch.dtype | None = None, query_chunk: int = 512, reference_chunk: int = 1024):
        check_metric(metric)
        if k < 1 or capacity <= k:
            raise ValueError(f"need 1 <= k < capacity, got k={k}, capacity={capacity}")
        if refit_every < 1 or query_chunk < 1 or reference_chunk < 1:
            raise ValueError("refit_every, query_chunk and reference_chunk must be >= 1")
        self.k, self.capacity, self.refit_every, self.metric = k, capacity, refit_every, metric
        self.admit_below = admit_below
        self.device = torch.device(device)
        self.dtype = dtype or DEFAULT_DTYPE
        self.query_chunk, self.reference_chunk = query_chunk, reference_chunk
        self.memories: dict[int, _Memories] = {}  # vector width -> the memories of that width
        self.slots: dict[str, tuple[int, int]] = {}  # key -> (width, slot)

    def score_and_learn(self, vectors: torch.Tensor | np.ndarray, keys: Sequence[str] | None = None) -> np.ndarray:
        """LOF of each row against its key's memory (NaN while it warms up), then learned."""
        rows = as_rows(vectors, self.device, self.dtype)
        scores = rows.new_full((rows.shape[0],), float("nan"))
        width = rows.shape[1]
        groups = rows_by_key(keys, rows.shape[0])
        slots = np.array([self._slot(key, width) for key in groups], np.int64)
        lengths = np.array([len(index) for index in groups.values()])
        table = np.full((len(groups), int(lengths.max())), -1, np.int64)  # each key's rows in order
        for i, index in enumerate(groups.values()):
            table[i, :len(index)] = index.numpy()
        self._learn(self._memories(width), slots, table, lengths, rows, scores)
        return scores.cpu().numpy().astype(np.float64)

    def _memories(self, width: int) -> _Memories:
        if width not in self.memories:
            self.memories[width] = _Memories(self.capacity, width, self.device, self.dtype)
        return self.memories[width]

    def _slot(self, key: str, width: int) -> int:
        """The key's slot in the memories of its width, made on first sight."""
        if key not in self.slots:
            self.slots[key] = (width, self._memories(width).add())
        held, slot = self.slots[key]
        if held != width:
            raise ValueError(f"key {key!r} holds vectors of dim {held}, got dim {width}")
        return slot

    def _learn(self, memories: _Memories, slots: np.ndarray, table: np.ndarray, lengths: np.ndarray,
               rows: torch.Tensor, scores: torch.Tensor) -> None:
        """Every key's rows in steps: a step takes from each key the rows up to its next refit
        (all scored against one reference), admits them, then refits the keys that are due."""
        done = np.zeros_like(lengths)
        while (active := np.nonzero(done < lengths)[0]).size:
            slot = slots[active]
            fitted = memories.fitted[slot] > 0
            take = np.minimum(np.minimum(lengths[active] - done[active], self._due(memories, slot)), self.capacity)
            width = int(take.max())
            columns = np.minimum(done[active][:, None] + np.arange(width)[None, :], table.shape[1] - 1)
            picked = np.where(np.arange(width)[None, :] < take[:, None], table[active[:, None], columns], -1)
            batch = rows[torch.as_tensor(np.maximum(picked, 0))]  # (A, width, D), padding repeats row 0
            taken = picked >= 0
            if fitted.any():
                step = torch.as_tensor(np.nonzero(fitted)[0])
                step_scores = memories.scores(slot[fitted], batch[step], self.k, self.metric)
                row_index = picked[fitted]
                scores[torch.as_tensor(row_index[row_index >= 0])] = step_scores[torch.as_tensor(row_index >= 0)]
                if self.admit_below is not None:
                    taken[fitted] &= (step_scores <= self.admit_below).cpu().numpy()
            memories.admit(slot, batch, taken)
            done[active] += take
            refit = self._due(memories, slot) <= 0
            if refit.any():
                self._refit(memories, slot[refit])

    def _due(self, memories: _Memories, slots: np.ndarray) -> np.ndarray:
        """Admissions each slot has left before its next refit (the first comes at k + 1)."""
        return np.where(memories.fitted[slots] > 0, self.refit_every - memories.since_fit[slots],
                        self.k + 1 - memories.count[slots])

    def _refit(self, memories: _Memories, slots: np.ndarray) -> None:
        """Refit in groups small enough that each group's (N x N) distances stay bounded."""
        per_group = max(1, BATCH_ELEMENTS // (self.capacity * self.capacity))
        for start in range(0, len(slots), per_group):
            memories.refit(slots[start:start + per_group], self.k, self.metric)

    def config(self) -> dict:
        return dict(k=self.k, capacity=self.capacity, refit_every=self.refit_every, metric=self.metric,
                    admit_below=self.admit_below, dtype=dtype_name(self.dtype), query_chunk=self.query_chunk,
                    reference_chunk=self.reference_chunk)

    def contents(self, key: str) -> torch.Tensor:
        """The vectors ``key``'s memory holds, oldest first."""
        width, slot = self.slots[key]
        contents, sizes = self.memories[width].contents(np.array([slot]))
        return contents[0, :sizes[0]]

    def state_dict(self) -> dict:
        """Config, every key's ring, counters and fitted reference: numpy arrays and JSON values."""
        states = {}
        for key, (width, slot) in self.slots.items():
            m = self.memories[width]
            tensors = {"ring": m.ring[slot]}
            if m.fitted[slot]:
                n = int(m.fitted[slot])
                tensors.update(reference=m.reference[slot, :n], k_distance=m.k_distance[slot, :n],
                               density=m.density[slot, :n], center=m.center[slot], bias=m.bias[slot, :n])
            states[key] = (tensors, dict(count=int(m.count[slot]), since_fit=int(m.since_fit[slot])))
        return keyed_state(self.state_name, self.config(), states)

    def load_state_dict(self, state: dict) -> None:
        """Take the memories of a ``state_dict`` made by a scorer with the same arguments."""
        states = unpack_keyed_state(state, self.state_name, self.config(), self.device, self.dtype)
        self.memories, self.slots = {}, {}
        for key, (tensors, counters) in states.items():
            width = tensors["ring"].shape[1]
            slot, m = self._slot(key, width), self.memories[width]
            m.ring[slot] = tensors["ring"]
            m.count[slot], m.since_fit[slot] = counters["count"], counters["since_fit"]
            if "reference" in tensors:
                n = tensors["reference"].shape[0]
                m.reference[slot, :n], m.k_distance[slot, :n] = tensors["reference"], tensors["k_distance"]
                m.density[slot, :n], m.fitted[slot] = tensors["density"], n
                if "center" in tensors:
                    m.center[slot], m.bias[slot, :n] = tensors["center"], tensors["bias"]
                else:  # a checkpoint from before the frame was kept
                    frame = reference_frame(tensors["reference"][None], torch.tensor([n], device=m.ring.device),
                                            self.metric)
                    m.center[slot], m.bias[slot, :n] = frame.center[0], frame.bias[0]
