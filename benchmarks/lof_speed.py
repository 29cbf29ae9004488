"""LOF speed: detectors.lof beside scikit-learn's LocalOutlierFactor(novelty=True), side by side.

One task at each size: fit on ``--reference`` vectors, score ``--queries`` new ones (k = 20,
euclidean, Gaussian data), wall seconds of fit + score, best of ``--repeat`` runs after one
warm-up. scikit-learn runs with its default algorithm (kd-tree up to 15 dimensions, brute
force above) under threadpoolctl and n_jobs limits; torch (which shortlists with scipy's k-d tree
up to 15 dimensions on CPU and by blocks of matrix products above; on GPUs by
``batched_k_nearest``'s few large products, see ``detectors.nearest.search_method``) on CPU at float64 (the dtype that
matches scikit-learn to 1e-5) and float32, at 1 and 2 threads; on CUDA at float32 when a GPU is
present. The last column is the largest relative difference of torch's scores (float64 on CPU,
float32 on CUDA) from scikit-learn's.

Reproduce (from the repository root; about a minute on 2 cores)::

    .venv/bin/python benchmarks/lof_speed.py
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
from sklearn.neighbors import LocalOutlierFactor
from threadpoolctl import threadpool_limits

from detectors.lof import fit_lof, lof_scores

K = 20


def best_seconds(run: Callable[[], np.ndarray], repeat: int) -> tuple[float, np.ndarray]:
    """Fastest wall time of ``repeat`` runs after one warm-up, and the run's result."""
    result = run()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return min(times), result


def torch_lof(reference: np.ndarray, queries: np.ndarray, device: str, dtype: torch.dtype) -> Callable[[], np.ndarray]:
    ref = torch.as_tensor(reference, device=device, dtype=dtype)
    qs = torch.as_tensor(queries, device=device, dtype=dtype)

    def run() -> np.ndarray:
        scores = lof_scores(fit_lof(ref, K), qs).cpu().numpy()  # .cpu() waits for the device
        return scores

    return run


def sklearn_lof(reference: np.ndarray, queries: np.ndarray, threads: int) -> Callable[[], np.ndarray]:
    def run() -> np.ndarray:
        with threadpool_limits(threads):
            model = LocalOutlierFactor(n_neighbors=K, novelty=True, n_jobs=threads).fit(reference)
            return -model.score_samples(queries)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--dims", type=int, nargs="+", default=[4, 64])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="CPU threads (a row each)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"LOF fit + score, {args.reference} reference x {args.queries} queries, k={K}, euclidean; wall seconds\n")
    print("| dim | device | threads | scikit-learn | torch float64 | torch float32 | sklearn / torch64 | max rel diff |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for dim in args.dims:
        reference = rng.standard_normal((args.reference, dim))
        queries = rng.standard_normal((args.queries, dim)) * 1.2
        for threads in args.threads:
            torch.set_num_threads(threads)
            sk_s, expected = best_seconds(sklearn_lof(reference, queries, threads), args.repeat)
            t64, ours = best_seconds(torch_lof(reference, queries, "cpu", torch.float64), args.repeat)
            t32, _ = best_seconds(torch_lof(reference, queries, "cpu", torch.float32), args.repeat)
            diff = np.max(np.abs(ours - expected) / expected)
            print(f"| {dim} | cpu | {threads} | {sk_s:.3f} | {t64:.3f} | {t32:.3f} | {sk_s / t64:.2f}x | {diff:.1e} |")
        if torch.cuda.is_available():
            t32, ours = best_seconds(torch_lof(reference, queries, "cuda", torch.float32), args.repeat)
            t64, _ = best_seconds(torch_lof(reference, queries, "cuda", torch.float64), args.repeat)
            diff = np.max(np.abs(ours - expected) / expected)
            print(f"| {dim} | {torch.cuda.get_device_name()} | - | {sk_s:.3f} ({threads} cpu threads) | {t64:.3f} | {t32:.3f} "
                  f"| {sk_s / t32:.1f}x (vs float32) | {diff:.1e} |")


if __name__ == "__main__":
    main()
