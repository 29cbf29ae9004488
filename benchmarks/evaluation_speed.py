"""Seconds per call of every evaluation metric at 1e3, 1e4 and 1e5 points; VUS beside TSB-AD's.

Inputs are those of benchmarks/pate_speed.py (smoothed noise, bumps near 6 of 8 labelled
events); binary metrics get the scores above their 98th percentile. Each metric is called once
to warm up, then timed as the best of ``--repeat`` calls, on one core. When a TSB-AD source tree
and a venv for it are given (see tests/fixtures/vus/make_fixtures.py), TSB-AD's own VUS
(``generate_curve(..., "opt")``, window 100, 250 thresholds) runs on the same inputs in that venv,
once per size, and the table shows both timings and the results' difference.

Reproduce (from the repository root; a minute or two, most of it TSB-AD at 1e5)::

    .venv/bin/python benchmarks/evaluation_speed.py --tsbad-python /work/tsbad-ref/bin/python \\
        --tsbad-src /work/tsbad-ref/src
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from pate_speed import ONE_CORE, REPO, make_inputs

sys.path.insert(0, str(REPO))

from evaluation.affiliation import affiliation  # noqa: E402
from evaluation.auc import auc_pr, auc_roc  # noqa: E402
from evaluation.events import detection_delays  # noqa: E402
from evaluation.nab import nab_score  # noqa: E402
from evaluation.pate import pate, pate_f1  # noqa: E402
from evaluation.point_adjust import point_adjusted  # noqa: E402
from evaluation.ranges import range_precision_recall  # noqa: E402
from evaluation.vus import vus  # noqa: E402

TSBAD_SNIPPET = """
import json, sys, time, numpy as np
sys.path.insert(0, sys.argv[1])
from TSB_AD.evaluation.basic_metrics import generate_curve
data = np.load(sys.argv[2])
start = time.perf_counter()
*_, roc, pr = generate_curve(data["y_true"].astype(int), data["y_score"], 100, "opt", 250)
print(json.dumps({"seconds": time.perf_counter() - start, "roc": float(roc), "pr": float(pr)}))
"""


def metric_calls(y_true: np.ndarray, y_score: np.ndarray) -> dict:
    """Every metric as a no-argument call on these inputs."""
    y_pred = (y_score > np.percentile(y_score, 98)).astype(np.int64)
    runs = np.flatnonzero(np.diff(np.concatenate(([0], y_true, [0]))))
    windows = {"s": list(zip(runs[::2], runs[1::2] - 1))}
    return {
        "auc_roc + auc_pr": lambda: (auc_roc(y_true, y_score), auc_pr(y_true, y_score)),
        "vus (roc + pr, window 100)": lambda: vus(y_true, y_score),
        "pate (continuous)": lambda: pate(y_true, y_score),
        "pate_f1": lambda: pate_f1(y_true, y_pred),
        "point-adjusted P/R/F1": lambda: point_adjusted(y_true, y_pred),
        "range-based P/R/F1": lambda: range_precision_recall(y_true, y_pred),
        "affiliation P/R": lambda: affiliation(y_true, y_pred),
        "event recall + delays": lambda: detection_delays(y_true, y_pred),
        "nab (threshold optimised)": lambda: nab_score(windows, {"s": y_score}),
    }


def best_seconds(call, repeat: int) -> float:
    call()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def tsbad_vus(python: str, src: str, y_true: np.ndarray, y_score: np.ndarray) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        inputs = f"{tmp}/inputs.npz"
        np.savez(inputs, y_true=y_true, y_score=y_score)
        out = subprocess.run([python, "-c", TSBAD_SNIPPET, src, inputs], check=True, capture_output=True, text=True,
                             env=os.environ | ONE_CORE)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tsbad-python", help="python of a venv that can run TSB-AD's metric modules")
    parser.add_argument("--tsbad-src", default="/work/tsbad-ref/src", help="folder holding TSB_AD/evaluation")
    args = parser.parse_args()
    columns = [f"{n:,} s" for n in args.sizes]
    rows = {}
    tsbad = {}
    for n in args.sizes:
        y_true, y_score = make_inputs(n)
        for name, call in metric_calls(y_true, y_score).items():
            rows.setdefault(name, []).append(best_seconds(call, args.repeat))
        if args.tsbad_python:
            ours = vus(y_true, y_score)
            ref = tsbad_vus(args.tsbad_python, args.tsbad_src, y_true, y_score)
            tsbad[n] = (ref["seconds"], max(abs(ours.roc - ref["roc"]), abs(ours.pr - ref["pr"])))
        print(f"done n={n:,}", file=sys.stderr, flush=True)
    lines = ["| metric | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    lines += [f"| {name} | " + " | ".join(f"{s:.4f}" for s in seconds) + " |" for name, seconds in rows.items()]
    if tsbad:
        lines += ["| TSB-AD vus (same inputs) | " + " | ".join(f"{tsbad[n][0]:.2f}" for n in args.sizes) + " |",
                  "| speed-up of ours on vus | " + " | ".join(
                      f"{tsbad[n][0] / rows['vus (roc + pr, window 100)'][i]:,.0f}x" for i, n in enumerate(args.sizes))
                  + " |",
                  "| abs diff of vus, ours vs TSB-AD | " + " | ".join(f"{tsbad[n][1]:.1e}" for n in args.sizes) + " |"]
    print("\n".join(lines))


if __name__ == "__main__":
    os.environ.update(ONE_CORE)
    main()
