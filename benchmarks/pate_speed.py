"""PATE speed and memory: evaluation.pate beside the reference package ``pate`` 0.1.1.

The reference pins numpy 1.24 / scikit-learn 1.3.2, so it lives in its own venv and runs as a
subprocess; ours runs as a subprocess of the project's venv. Each (size, mode) pair runs on the
same inputs in fresh processes, one after the other, on one core, and the table gives wall
seconds of the metric call, peak resident memory of the process (RSS), the growth of RSS over
the process's state just before the call, the peak of memory that tracemalloc sees during our
call (a second, untimed call; the reference is too slow to trace), and the results' difference.

Reproduce (from the repository root; ~10 minutes, most of it the reference at 1e5)::

    make setup   # also creates .venv-pate, the reference's own venv
    .venv/bin/python benchmarks/pate_speed.py

``--sizes`` picks the lengths (default 1000 10000 100000); ``--no-reference`` times ours alone.
Inputs: smoothed noise with a bump on 6 of 8 labelled events (about 2% of the points labelled),
binary predictions = scores above their 98th percentile; default PATE parameters.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ONE_CORE = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def make_inputs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels and scores like a real detector's: smooth noise, bumps near most events."""
    rng = np.random.default_rng(seed)
    y_true = np.zeros(n, dtype=np.int64)
    scores = np.convolve(rng.standard_normal(n + 19), np.ones(20) / 20, mode="valid")
    length = max(2, n // 400)
    starts = np.sort(rng.choice(np.arange(n // 20, n - n // 20, 2 * length), size=8, replace=False))
    for i, start in enumerate(starts):
        y_true[start:start + length] = 1
        if i % 4 != 3:  # two events are missed
            shift = int(rng.integers(-length, length))
            scores[max(0, start + shift):start + shift + length] += 1.0
    return y_true, scores


def worker(which: str, inputs: str, binary: bool) -> None:
    """Time one call in this process and print its result as JSON."""
    data = np.load(inputs)
    y_true, y_score = data["y_true"], data["y_score"]
    if binary:
        y_score = (y_score > np.percentile(y_score, 98)).astype(np.int64)
    if which == "ours":
        sys.path.insert(0, str(REPO))
        from evaluation.pate import pate, pate_f1

        def call():
            return pate_f1(y_true, y_score) if binary else pate(y_true, y_score)
    else:
        import logging
        import warnings

        warnings.filterwarnings("ignore")
        logging.disable(logging.INFO)
        from pate.PATE_metric import PATE

        def call():
            return PATE(y_true, y_score, binary_scores=binary)
    before = _rss_now_kib()
    start = time.perf_counter()
    value = float(call())
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    traced = None
    if which == "ours":  # the reference is too slow under tracemalloc
        tracemalloc.start()
        call()
        traced = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    print(json.dumps({"value": value, "seconds": seconds, "peak_mib": peak / 1024,
                      "growth_mib": max(0, peak - before) / 1024, "traced_mib": traced}))


def _rss_now_kib() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def run(python: str, which: str, inputs: str, binary: bool) -> dict:
    cmd = [python, __file__, "--worker", which, inputs] + (["--binary"] if binary else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=os.environ | ONE_CORE)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--reference-python", default=".venv-pate/bin/python")
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--worker", nargs=2, metavar=("WHICH", "INPUTS"), help=argparse.SUPPRESS)
    parser.add_argument("--binary", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1], args.binary)
        return

    rows = ["| n | mode | ours s | reference s | speed-up | ours peak RSS MiB (growth) | ours traced peak MiB "
            "| reference peak RSS MiB (growth) | abs diff |", "|---|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            inputs = f"{tmp}/inputs_{n}.npz"
            y_true, y_score = make_inputs(n)
            np.savez(inputs, y_true=y_true, y_score=y_score)
            for binary in (False, True):
                mode = "binary (PATE-F1)" if binary else "continuous"
                ours = run(sys.executable, "ours", inputs, binary)
                ref = None if args.no_reference else run(args.reference_python, "reference", inputs, binary)
                cells = [f"{n:,}", mode, f"{ours['seconds']:.4f}"]
                if ref:
                    cells += [f"{ref['seconds']:.3f}", f"{ref['seconds'] / ours['seconds']:,.0f}x"]
                else:
                    cells += ["-", "-"]
                cells.append(f"{ours['peak_mib']:.0f} ({ours['growth_mib']:.1f})")
                cells.append(f"{ours['traced_mib']:.2f}")
                cells.append(f"{ref['peak_mib']:.0f} ({ref['growth_mib']:.1f})" if ref else "-")
                cells.append(f"{abs(ours['value'] - ref['value']):.1e}" if ref else "-")
                rows.append("| " + " | ".join(cells) + " |")
                print(rows[-1], file=sys.stderr, flush=True)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
