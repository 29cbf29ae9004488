"""Windows/s of the Chronos embedder, random weights in the published configurations, alone
and with scoring (embed + score, the LOF detector `argus serve` builds).

    .venv/bin/python benchmarks/chronos_speed.py [--sizes tiny mini small] [--batches 256 1024]
        [--window 64] [--device cpu|cuda] [--threads 1 2]

Weights cannot be downloaded here, so each model is built with random weights in chronos'
own classes at the published sizes (``detectors/chronos_models.py``): the compute is that of the
real checkpoint. The weight-free embedder runs beside it as the baseline. One channel per window.
"embed + score" is ``SeriesDetector.assess`` of the config's LOF detector (k = 20, a memory of
up to 1,000 vectors per stream, refit every 64) on a batch holding one window of each of
``batch`` streams, every stream's memory first filled with ``--memory`` random vectors (1,000: the
steady state of serve with ``batch`` streams): embedding, per-stream LOF, thresholds, timed over
64 calls, so that every stream's memory is refitted once inside the timing, as in steady state.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from argus.config import load_config
from argus.wiring import detector_factory
from detectors.chronos_models import save_random_model


def rates(model: str | None, device: str, batch: int, window: int, memory: int, repeats: int = 3,
          ) -> tuple[float, float]:
    """(embed, embed + score) windows/s of the LOF detector on ``model`` (None: window stats)."""
    overrides = {"detector.name": "lof", "detector.device": device, "detector.window": window}
    if model is not None:
        overrides |= {"detector.embedder": "chronos", "detector.chronos_model": model}
    detector = detector_factory(load_config(None, overrides))()
    x = torch.randn(batch, 1, window, dtype=torch.float64).cumsum(-1)
    ids = [f"node-{i:05d}" for i in range(batch)]
    vectors = detector.embedder.embed(x)  # warm-up, and the vector size
    every = detector.scorer.refit_every
    for filled in range(0, memory, every):  # every stream's memory filled (and fitted) before the timing
        rows = min(every, memory - filled)
        detector.scorer.score_and_learn(torch.randn(rows * batch, vectors.shape[1]), keys=ids * rows)
    timings = []
    # embed + score over one refit cycle, a new window of each stream a call: every stream's memory
    # is refitted once inside the timing, as in serve's steady state
    windows = [torch.randn(batch, 1, window, dtype=torch.float64).cumsum(-1).numpy() for _ in range(every)]
    for step, calls in ((lambda i: detector.embedder.embed(x), repeats), (lambda i: detector.assess(ids, windows[i]), every)):
        started = time.perf_counter()
        for i in range(calls):
            step(i)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        timings.append(batch * calls / (time.perf_counter() - started))
    return timings[0], timings[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="bolt", choices=["t5", "bolt", "chronos2"])
    parser.add_argument("--sizes", nargs="+", default=["tiny", "mini", "small"])
    parser.add_argument("--batches", nargs="+", type=int, default=[256, 1024])
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--memory", type=int, default=1000, help="vectors in each stream's LOF memory")
    args = parser.parse_args()
    print("| embedder | device | threads | batch | embed, windows/s | embed + score, windows/s |")
    print("|---|---|---:|---:|---:|---:|")
    for threads in args.threads:
        torch.set_num_threads(threads)
        for batch in args.batches:
            embed, scored = rates(None, args.device, batch, args.window, args.memory)
            print(f"| weight-free window stats | {args.device} | {threads} | {batch} | {embed:,.0f} | {scored:,.0f} |",
                  flush=True)
            for size in args.sizes:
                with tempfile.TemporaryDirectory() as folder:
                    embed, scored = rates(str(save_random_model(args.family, size, folder)), args.device, batch,
                                          args.window, args.memory)
                print(f"| chronos-{args.family}-{size} (random weights) | {args.device} | {threads} | {batch} "
                      f"| {embed:,.0f} | {scored:,.0f} |", flush=True)

if __name__ == "__main__":
    main()
