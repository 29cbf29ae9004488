"""Exact k nearest neighbours for LOF: each query's k nearest reference rows, nearest first,
ties to the lowest index, in bounded memory, on CPU and on GPUs.

- On CPU up to ``KD_TREE_MAX_DIM`` dimensions, scipy's k-d tree shortlists k + 1 per query.
- On CPU above that, blocks of float32 matrix products shortlist k + 8 (numpy: its
  selections are several times torch's on CPU; the reference against itself computes each
  pair of blocks once, for both), spread over torch's CPU threads.
- On GPUs, few large batched products and top-ks shortlist k + 8: ``batched_k_nearest``,
  which on every device also serves many references at once (the streaming scorer's
  memories, ``detectors.lof``).

The shortlisted candidates' distances are then computed exactly (difference vectors, no
``|a|^2 + |b|^2 - 2ab`` cancellation) and the best k kept. On CPU, each shortlist of
``k_nearest`` also comes with a floor under the distance of every row left out of it (from a
worst-case bound on the products' rounding). Where the k-th exact distance is not below it, a
neighbour or a tie might be missing, and the query is searched again in float64, then if need
be against every row (``_settle``). So ``k_nearest`` on CPU is exact by construction.
``batched_k_nearest`` ranks in the inputs' dtype (float64 by default) and relies on its 8 spare
candidates.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
from threadpoolctl import ThreadpoolController

METRICS = ("euclidean", "cosine")
KD_TREE_MAX_DIM = 15  # on CPU, up to this many dimensions a k-d tree shortlists (scikit-learn's own cut-off)
BATCH_ELEMENTS = 1 << 24  # elements of one (keys, queries, reference) block of batched shortlist distances,
_BATCH_BLOCK_CPU = 1 << 20  # on GPUs; on CPU smaller, cache-sized (a refit of 16 memories of 1,000: 1.6x faster)
_SLACK = 8  # candidates beyond k shortlisted per query by products, against rounding and ties
_EXACT_BLOCK_CPU = 1 << 18  # elements of a (rows, candidates, dim) block of exact distances: cache-sized,
_EXACT_BLOCK_GPU = 1 << 22  # and on GPUs larger, for fewer kernel launches
T = TypeVar("T")


def check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")


def _unit(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit length; zero rows stay zero (so their cosine distance is 1)."""
    norm = x.norm(dim=-1, keepdim=True)
    return x / torch.where(norm > 0, norm, torch.ones_like(norm))


def _exact_distances(queries: torch.Tensor, candidates: torch.Tensor, metric: str) -> torch.Tensor:
    """(Q, C) distances from each query (Q, D) to its own candidates (Q, C, D)."""
    if metric == "cosine":  # inputs are unit rows here, as in scikit-learn's cosine_distances
        return (1 - (queries[:, None, :] * candidates).sum(-1)).clamp(0, 2)
    return torch.linalg.vector_norm(queries[:, None, :] - candidates, dim=-1)


def k_nearest(queries: torch.Tensor, reference: torch.Tensor, k: int, metric: str = "euclidean",
              exclude_self: bool = False, query_chunk: int = 512, reference_chunk: int = 1024,
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Distances (Q, k) and indices (Q, k) of each query's k nearest reference rows, nearest
    first, ties to the lower index. ``exclude_self``: queries are the reference itself and row
    i may not be its own neighbour (its duplicates may)."""
    check_metric(metric)
    available = reference.shape[0] - int(exclude_self)
    if not 1 <= k <= available:
        raise ValueError(f"k={k} needs at least {k + int(exclude_self)} reference vectors, got {reference.shape[0]}")
    if queries.shape[0] == 0:
        return queries.new_zeros((0, k)), torch.zeros((0, k), dtype=torch.long, device=queries.device)
    method = search_method(reference)
    if method == "batched":
        sizes = torch.tensor([reference.shape[0]], device=reference.device)
        distances, indices = batched_k_nearest(queries[None], reference[None], sizes, k, metric, exclude_self)
        return distances[0], indices[0]
    if metric == "cosine":
        queries, reference = _unit(queries), _unit(reference)
    own = np.arange(queries.shape[0]) if exclude_self else None
    keep = min(k + _SLACK, available)
    if method == "tree":
        floor, shortlist = _tree_shortlist(queries, reference, min(k + 1, available), own, metric)
    else:
        products = _Products(queries, reference, metric, np.float32)
        floor, shortlist = (products.self_shortlist(keep, reference_chunk) if exclude_self
                            else products.shortlist(keep, query_chunk, reference_chunk))
    distances, indices = _refine(queries, reference, shortlist, k, metric)
    unsure = np.flatnonzero(distances[:, -1].double().numpy() >= floor)
    if unsure.size:
        settled = _settle(queries[unsure], reference, k, keep, metric,
                          None if own is None else own[unsure], query_chunk, reference_chunk)
        distances[unsure], indices[unsure] = settled
    return distances, indices


def search_method(reference: torch.Tensor) -> str:
    """How ``k_nearest`` searches this reference: on CPU, scipy's k-d tree up to
    ``KD_TREE_MAX_DIM`` dimensions ("tree") and matrix-product blocks with a running
    shortlist above ("blocks", the least memory); on a GPU, ``batched_k_nearest``'s few large
    products and top-ks ("batched": the blocks' per-block host synchronisations dominate
    there). On CPU a query's shortlist is then checked against a lower bound on the distance
    of every row left out of it, and searched again where it might miss a neighbour or a tie
    (``_settle``), so the result is exact."""
    if reference.device.type != "cpu":
        return "batched"
    return "tree" if reference.shape[1] <= KD_TREE_MAX_DIM else "blocks"


def _tree_shortlist(queries: torch.Tensor, reference: torch.Tensor, keep: int, own: np.ndarray | None,
                    metric: str) -> tuple[np.ndarray, torch.Tensor]:
    """Each query's ``keep`` nearest reference rows (Q, keep) by a k-d tree (scipy), for few
    dimensions on CPU, where it beats any brute-force search, and the floor (Q,) under the
    distance of every row left out. Unit rows (cosine) are searched by euclidean distance,
    which orders them the same way. ``own``: row i of the queries is reference row own[i],
    barred from its own list."""
    from scipy.spatial import cKDTree

    extra = int(own is not None)
    tree = cKDTree(reference.numpy())
    found_d, found = tree.query(queries.numpy(), k=keep + extra, workers=torch.get_num_threads())
    found_d, found = found_d.reshape(queries.shape[0], -1), found.reshape(queries.shape[0], -1)
    if own is not None:  # drop row i from its list; where duplicates crowded it out, drop the farthest
        usable = found != own[:, None]
        usable[usable.all(1), -1] = False
        found = found[usable].reshape(found.shape[0], keep)
    chord = found_d[:, -1] * (1 - 1e-9)  # no row left out is nearer (rounding aside)
    floor = chord if metric == "euclidean" else chord ** 2 / 2 - 1e-12  # cosine of unit rows
    if keep == reference.shape[0] - extra:
        floor = np.full(queries.shape[0], np.inf)  # none left out
    return floor, torch.from_numpy(found.astype(np.int64))


def _settle(queries: torch.Tensor, reference: torch.Tensor, k: int, keep: int, metric: str, own: np.ndarray | None,
            query_chunk: int, reference_chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``k_nearest`` for queries whose first shortlist might miss a neighbour: a float64
    shortlist of ``keep``, and, where even that might (ties beyond it), exact distances to
    every reference row. ``own``: as in ``_tree_shortlist``."""
    floor, shortlist = _Products(queries, reference, metric, np.float64).shortlist(
        keep, query_chunk, reference_chunk, own)
    distances, indices = _refine(queries, reference, shortlist, k, metric)
    still = np.flatnonzero(distances[:, -1].double().numpy() >= floor)
    if still.size:
        every = torch.arange(reference.shape[0]).expand(still.size, -1)
        valid = None if own is None else every != torch.from_numpy(own[still])[:, None]
        distances[still], indices[still] = _refine(queries[still], reference, every, k, metric, valid)
    return distances, indices


class _Products:
    """Approximate distances of queries to reference rows by blocks of matrix products in
    ``dtype``: squared euclidean of centred rows, each row carrying its squared norm so that
    one product gives |q|^2 + |r|^2 - 2 q.r; or cosine, 1 - q.r of unit rows."""

    def __init__(self, queries: torch.Tensor, reference: torch.Tensor, metric: str, dtype: type):
        q, r = queries.double().numpy(), reference.double().numpy()
        ones_q, ones_r = np.ones((len(q), 1)), np.ones((len(r), 1))
        if metric == "euclidean":  # centring keeps the difference of squares accurate
            center = r.mean(0)
            q, r = q - center, r - center
            q_norm, r_norm = (q * q).sum(1, keepdims=True), (r * r).sum(1, keepdims=True)
            self.left = np.hstack([q, ones_q, q_norm]).astype(dtype)
            self.right = np.hstack([-2 * r, r_norm, ones_r]).astype(dtype)
        else:
            self.left, self.right = np.hstack([q, ones_q]).astype(dtype), np.hstack([-r, ones_r]).astype(dtype)
        # a worst-case bound on the rounding of a product of D + 2 terms of at most this span
        # (inputs, products, sums), times 4 for safety
        span = np.linalg.norm(q, axis=1) + np.linalg.norm(r, axis=1).max()
        self.error = 4 * (q.shape[1] + 8) * np.finfo(dtype).eps / 2 * span ** 2
        self.squared = metric == "euclidean"

    def shortlist(self, keep: int, query_chunk: int, reference_chunk: int, own: np.ndarray | None = None,
                  ) -> tuple[np.ndarray, torch.Tensor]:
        """Each query's ``keep`` nearest by value (Q, keep), a block at a time, and the floor
        under the distance of the rows left out.
        ``own`` (Q,): the reference row each query is, barred from its own shortlist."""
        q, n = len(self.left), len(self.right)
        best = _Shortlist(q, keep, self.left.dtype)

        def search(start: int) -> None:
            rows = slice(start, min(q, start + query_chunk))
            for column in range(0, n, reference_chunk):
                d = self.left[rows] @ self.right[column:column + reference_chunk].T
                if own is not None:
                    at = own[rows] - column
                    inside = (at >= 0) & (at < d.shape[1])
                    d[np.flatnonzero(inside), at[inside]] = np.inf
                best.merge(rows, d, column)

        _in_threads(search, range(0, q, query_chunk))
        return self.floor(best.values), torch.from_numpy(best.indices)

    def self_shortlist(self, keep: int, chunk: int) -> tuple[np.ndarray, torch.Tensor]:
        """``shortlist`` of the reference against itself, each row barred from its own: each
        pair of blocks is computed once and merged into the shortlists of both."""
        n = len(self.left)
        best = _Shortlist(n, keep, self.left.dtype)
        starts = range(0, n, chunk)
        locks = {start: threading.Lock() for start in starts}

        def search(pair: tuple[int, int]) -> None:
            a, b = pair
            rows, columns = slice(a, min(n, a + chunk)), slice(b, min(n, b + chunk))
            d = self.left[rows] @ self.right[columns].T
            if a == b:
                np.fill_diagonal(d, np.inf)
            with locks[a]:
                best.merge(rows, d, b)
            if a != b:
                with locks[b]:
                    best.merge(columns, d, a, by_column=True)

        _in_threads(search, [(a, b) for a in starts for b in starts if b >= a])
        return self.floor(best.values), torch.from_numpy(best.indices)

    def floor(self, values: np.ndarray) -> np.ndarray:
        """Per query, from its shortlist's ``values``: a floor under the distance of every
        reference row left out of it (each such row's value is at least the largest kept)."""
        lowest = values.max(1).astype(np.float64) - self.error
        return np.sqrt(np.maximum(lowest, 0)) if self.squared else lowest


def _in_threads(task: Callable[[T], None], items: Sequence[T]) -> None:
    """``task`` on every item, spread over torch's CPU threads (numpy lets go of the GIL in
    its heavy parts), with BLAS at one thread a task, so that the threads torch is given are
    all the search uses."""
    threads = min(torch.get_num_threads(), len(items))
    with _blas_controller().limit(limits=1, user_api="blas"):
        if threads <= 1:
            for item in items:
                task(item)
        else:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(task, items))


@functools.cache
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()  # scanning the loaded libraries takes a while: once


class _Shortlist:
    """Each row's ``keep`` smallest values seen so far (inf where none yet) and their columns."""

    def __init__(self, rows: int, keep: int, dtype: type):
        self.values = np.full((rows, keep), np.inf, dtype)
        self.indices = np.zeros((rows, keep), np.int64)

    def merge(self, rows: slice, d: np.ndarray, offset: int, by_column: bool = False) -> None:
        """Take in a block of values ``d`` of these rows (reference columns from ``offset``;
        ``by_column``: the rows are d's columns). Only entries under a row's worst kept value
        are looked at (after a row's first block they are few); a row's first block is cut at
        its ``keep``-th smallest."""
        keep, view = self.values.shape[1], d.T if by_column else d
        limit = self.values[rows].max(1)  # each row's worst kept value
        fresh = np.flatnonzero(np.isinf(limit))
        if fresh.size and view.shape[1] >= keep:
            kth = np.partition(view[fresh], keep - 1, axis=1)[:, keep - 1]
            limit[fresh] = np.nextafter(kth, np.inf)  # d < limit: every value up to the kth
        hit = np.flatnonzero(d < (limit[None, :] if by_column else limit[:, None]))
        if hit.size == 0:
            return
        hit_rows, hit_columns = np.divmod(hit, d.shape[1])
        if by_column:  # grouped by row of the view, in order
            order = np.argsort(hit_columns, kind="stable")
            hit_rows, hit_columns = hit_columns[order], hit_rows[order]
        counts = np.bincount(hit_rows, minlength=len(limit))
        slot = keep + np.arange(hit.size) - (np.cumsum(counts) - counts)[hit_rows]
        width = keep + int(counts.max())
        values = np.full((len(limit), width), np.inf, self.values.dtype)
        indices = np.zeros((len(limit), width), np.int64)
        values[:, :keep], indices[:, :keep] = self.values[rows], self.indices[rows]
        values[hit_rows, slot], indices[hit_rows, slot] = view[hit_rows, hit_columns], hit_columns + offset
        pick = np.argpartition(values, keep - 1, axis=1)[:, :keep]
        self.values[rows] = np.take_along_axis(values, pick, 1)
        self.indices[rows] = np.take_along_axis(indices, pick, 1)


def _refine(queries: torch.Tensor, reference: torch.Tensor, candidates: torch.Tensor, k: int, metric: str,
            valid: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact distances to the shortlisted candidates; the k best by (distance, index).
    ``reference``: rows (M, D), or G references (G, N, D) that ``candidates`` number g * N + i
    (a view of padded memories is searched where it lies, not copied flat).
    ``valid`` (Q, C): False marks a candidate that is padding, never a neighbour."""
    block = _EXACT_BLOCK_CPU if queries.device.type == "cpu" else _EXACT_BLOCK_GPU
    rows = max(1, block // (candidates.shape[1] * reference.shape[-1]))
    exact = torch.cat([_exact_distances(queries[s:s + rows], _rows(reference, candidates[s:s + rows]), metric)
                       for s in range(0, queries.shape[0], rows)])
    if valid is not None:
        exact = exact.masked_fill(~valid, float("inf"))
    candidates, by_index = candidates.sort(dim=1)
    exact, by_distance = exact.gather(1, by_index).sort(dim=1, stable=True)
    return exact[:, :k], candidates.gather(1, by_distance)[:, :k]


def _rows(reference: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Reference rows at ``index``, of rows (M, D) or of references (G, N, D) numbered g * N + i."""
    if reference.ndim == 2:
        return reference[index]
    return reference[index // reference.shape[1], index % reference.shape[1]]


# Many references at once: the memories of many keys (detectors.lof), padded to one length.

@dataclass
class Frame:
    """Where ``batched_k_nearest`` measures G references (G, N, D) from: each one's centre (its
    mean over its own rows; zeros for cosine) and each row's squared distance from it (zeros for
    cosine). Working it out is a few passes over the references, so the LOF memories keep theirs
    from their last refit instead of paying that at every search."""

    center: torch.Tensor  # (G, D)
    bias: torch.Tensor  # (G, N)


def reference_frame(reference: torch.Tensor, sizes: torch.Tensor, metric: str) -> Frame:
    """The ``Frame`` of references (G, N, D), each used up to its own size."""
    g, n = reference.shape[:2]
    if metric == "cosine":
        return Frame(reference.new_zeros((g, reference.shape[2])), reference.new_zeros((g, n)))
    valid = torch.arange(n, device=reference.device) < sizes[:, None]
    center = (reference * valid[..., None]).sum(1) / sizes[:, None].to(reference.dtype)
    shifted = reference - center[:, None]
    return Frame(center, (shifted * shifted).sum(-1))


def batched_k_nearest(queries: torch.Tensor, reference: torch.Tensor, sizes: torch.Tensor, k: int,
                      metric: str = "euclidean", exclude_self: bool = False, frame: Frame | None = None,
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """For each g, distances and indices (G, Q, k) of the k nearest of ``reference[g, :sizes[g]]``
    to each of ``queries[g]``, as ``k_nearest`` finds them (same ties). ``exclude_self``: the
    queries are the references themselves. ``frame``: the references' ``reference_frame``, if
    kept from before (entries of ``bias`` beyond a reference's size are never read).

    The shortlist ranks reference rows r for a query q by |r - c|^2 - 2 (q - c).r, the squared
    distance less a constant of the query: centred on the reference's mean c, as the CPU
    search's products are, so that large values far from the origin keep their digits."""
    g, q, n = queries.shape[0], queries.shape[1], reference.shape[1]
    if metric == "cosine":
        queries, reference = _unit(queries), _unit(reference)
    frame = frame or reference_frame(reference, sizes, metric)
    valid = torch.arange(n, device=reference.device) < sizes[:, None]  # (G, N)
    keep = min(k + _SLACK, n - int(exclude_self))
    bias = frame.bias.masked_fill(~valid, float("inf"))
    shifted_q, scale = (queries - frame.center[:, None], -2) if metric == "euclidean" else (queries, -1)
    rows = max(1, (_BATCH_BLOCK_CPU if reference.device.type == "cpu" else BATCH_ELEMENTS) // (g * n))
    candidates = []
    for start in range(0, q, rows):
        d = torch.baddbmm(bias[:, None, :], shifted_q[:, start:start + rows], reference.transpose(1, 2), alpha=scale)
        if exclude_self:
            own = torch.arange(start, min(q, start + rows), device=d.device)
            d[:, own - start, own] = float("inf")
        candidates.append(_smallest(d, keep))
    local = torch.cat(candidates, 1)  # (G, Q, keep)
    usable = local < sizes[:, None, None]  # padding may be shortlisted where a reference is short
    if exclude_self:  # and so may a row itself, which the exact distances would not bar
        usable &= local != torch.arange(q, device=local.device)[None, :, None]
    offsets = torch.arange(g, device=local.device)[:, None, None] * n
    distances, indices = _refine(queries.reshape(g * q, -1), reference,
                                 (local + offsets).reshape(g * q, keep), k, metric, valid=usable.reshape(g * q, keep))
    return distances.view(g, q, k), indices.view(g, q, k) - offsets


def _smallest(d: torch.Tensor, keep: int) -> torch.Tensor:
    """Indices of the ``keep`` smallest along the last dimension, in no order: numpy's
    partition on CPU (2-3x torch's top-k there), torch's top-k on GPUs."""
    if d.device.type == "cpu":
        return torch.from_numpy(np.argpartition(d.numpy(), keep - 1, axis=-1)[..., :keep])
    return torch.topk(d, keep, dim=-1, largest=False, sorted=False).indices

