"""Windows/s of the Chronos embedder, random weights in the published configurations.

    .venv/bin/python benchmarks/chronos_speed.py [--sizes tiny mini small] [--batches 256 1024]
        [--window 64] [--device cpu|cuda] [--threads 1 2]

Weights cannot be downloaded here, so each model is built with random weights in chronos'
own classes at the published sizes (``detectors/chronos_models.py``): the compute is that of the
real checkpoint. The weight-free embedder runs beside it as the baseline. One channel per window.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from detectors.chronos_embedder import ChronosEmbedder
from detectors.chronos_models import save_random_model
from detectors.window_stats import WindowStatsEmbedder


def windows_per_second(embedder, batch: int, window: int, repeats: int = 3) -> float:
    x = torch.randn(batch, 1, window, dtype=torch.float64).cumsum(-1)
    embedder.embed(x)  # warm-up
    started = time.perf_counter()
    for _ in range(repeats):
        embedder.embed(x)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return batch * repeats / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="bolt", choices=["t5", "bolt", "chronos2"])
    parser.add_argument("--sizes", nargs="+", default=["tiny", "mini", "small"])
    parser.add_argument("--batches", nargs="+", type=int, default=[256, 1024])
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    args = parser.parse_args()
    print(f"| embedder | device | threads | batch | windows/s |\n|---|---|---:|---:|---:|")
    for threads in args.threads:
        torch.set_num_threads(threads)
        for batch in args.batches:
            rate = windows_per_second(WindowStatsEmbedder(args.device), batch, args.window)
            print(f"| weight-free window stats | {args.device} | {threads} | {batch} | {rate:,.0f} |", flush=True)
            for size in args.sizes:
                with tempfile.TemporaryDirectory() as folder:
                    embedder = ChronosEmbedder(save_random_model(args.family, size, folder), device=args.device)
                    rate = windows_per_second(embedder, batch, args.window)
                print(f"| chronos-{args.family}-{size} (random weights) | {args.device} | {threads} | {batch} "
                      f"| {rate:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
