"""Detection quality of the default detector on the synthetic cluster, without Kafka.

    .venv/bin/python benchmarks/detection_synthetic.py [--detectors halfspace lof self_similarity mixture
        mixture-novelty]

``mixture-novelty`` is the mixture with ``detector.novelty: true``.

Counts labelled anomalies with an alert within 5 minutes of them, alerts outside every label,
and alerts on a cluster with no anomalies at all; prints readings/s of the detector loop.
"""

from __future__ import annotations

import argparse
import time

from argus.config import load_config
from argus.wiring import detector_factory
from streams.alerts import AlertTracker
from streams.records import Reading
from streams.synthetic import make_cluster
from streams.windows import WindowStore

TOLERANCE_S = 300
VARIANTS = {"mixture-novelty": {"detector.name": "mixture", "detector.novelty": True}}  # name -> config overrides


def run(nodes: int, anomalies: int, seed: int, detector_name: str = "halfspace") -> tuple[int, int, int, float]:
    config = load_config(None, VARIANTS.get(detector_name, {"detector.name": detector_name}))
    cluster = make_cluster(nodes=nodes, length=2500, anomalies_per_node=anomalies, seed=seed)
    detector = detector_factory(config)()
    windows, tracker = WindowStore(config.detector.window), AlertTracker(detector.name, config.alert.min_run)
    opened, started, count = [], time.perf_counter(), 0
    for node, ts, values in cluster.readings():
        window = windows.push(Reading(node, ts, values))
        count += 1
        if window is not None:
            verdict = detector.judge([node], [tuple(values)], window[None])[0]
            alert = tracker.observe(node, ts, verdict)
            if alert is not None and alert.status == "open":
                opened.append((node, ts))
    rate = count / (time.perf_counter() - started)
    near = lambda node, ts: any(s - TOLERANCE_S <= ts <= e + TOLERANCE_S for s, e in cluster.labels[node])
    hit = sum(any(n == node and s - TOLERANCE_S <= ts <= e + TOLERANCE_S for n, ts in opened)
              for node in cluster.nodes for s, e in cluster.labels[node])
    outside = sum(not near(node, ts) for node, ts in opened)
    return hit, sum(len(v) for v in cluster.labels.values()), outside, rate


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detectors", nargs="+",
                        default=["halfspace", "lof", "self_similarity", "mixture", "mixture-novelty"])
    args = parser.parse_args()
    print("| detector | anomalies alerted (10 nodes x 2) | alerts outside labels | alerts on 4 clean nodes | readings/s |")
    print("|---|---:|---:|---:|---:|")
    for name in args.detectors:
        hit, events, outside, rate = run(nodes=10, anomalies=2, seed=1, detector_name=name)
        _, _, false_alarms, _ = run(nodes=4, anomalies=0, seed=1, detector_name=name)
        print(f"| {name} | {hit}/{events} | {outside} | {false_alarms} | {rate:,.0f} |", flush=True)
