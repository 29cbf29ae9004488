"""Produce-to-alert latency of `argus serve` at 1,000 streams x 1 reading/s.

    .venv/bin/python benchmarks/alert_latency.py [--streams 1000] [--seconds 60] [--bootstrap HOST:PORT]

`argus serve` runs as its own process, as in production. The benchmark first publishes each
stream's history (past timestamps, fast) so windows and thresholds are warm, then for
``--seconds`` publishes one reading per stream per second stamped with the wall clock at send,
with a spike in a few random streams each second (the rest continue their history's pattern). An alert opens at the reading that crossed
the threshold and carries its timestamp as ``start``, so latency = the moment the alert is read
from the alerts topic - ``start``. Prints p50/p90/p99/max over every alert of the live phase.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import bench_config, broker, publish_readings, start_serve, stream_values  # noqa: E402
from streams.alert_feed import follow_alerts  # noqa: E402
from streams.kafka_clients import make_producer, wait_until_committed  # noqa: E402
from streams.records import encode_reading  # noqa: E402

HISTORY = 400  # readings per stream before the live phase: window (32) + threshold warm-up (300)
SPIKES_PER_SECOND = 3


def collect_alert_latencies(config, live_from: float, out: list) -> None:
    """Ends once no alert has come for a few seconds (the live phase raises some every second)."""
    for alert in follow_alerts(config.kafka, config.topics.alerts, idle_timeout_s=5.0):
        if alert.status == "open" and alert.start >= live_from:
            out.append((alert.source, alert.start, time.time() - alert.start))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--bootstrap", help="an existing broker (default: start a local one)")
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    with broker(args.bootstrap) as bootstrap, tempfile.TemporaryDirectory() as work:
        config = bench_config(bootstrap, f"{work}/state")
        serve = start_serve(config, Path(work))
        values = stream_values(args.streams, HISTORY + args.seconds)
        history, live = values[:, :HISTORY], values[:, HISTORY:]
        now = time.time()
        publish_readings(config, history, start_ts=now - 10.0 * HISTORY - 60, per_message=50)
        wait_until_committed(config.kafka, config.group_id, config.topics.series, timeout_s=300)
        print(f"serve took in {args.streams} x {HISTORY} readings of history; live phase for {args.seconds}s", flush=True)
        latencies: list[tuple[str, float, float]] = []
        injected: set[tuple[str, float]] = set()
        reader = threading.Thread(target=collect_alert_latencies, args=(config, time.time(), latencies))
        reader.start()
        producer = make_producer(config.kafka)
        keys = [f"node-{s:05d}".encode() for s in range(args.streams)]
        for second in range(args.seconds):
            tick = time.time()
            spikes = set(rng.choice(args.streams, SPIKES_PER_SECOND, replace=False).tolist())
            for s, key in enumerate(keys):
                value, ts = live[s, second] + (40.0 if s in spikes else 0.0), time.time()
                if s in spikes:
                    injected.add((key.decode(), ts))
                producer.send(config.topics.series, key=key, value=encode_reading(ts, {"value": value}))
            producer.flush()
            time.sleep(max(0.0, tick + 1 - time.time()))
        reader.join()
        producer.close()
        serve.terminate()
        serve.wait(timeout=60)
    if not latencies:
        raise SystemExit("no alerts in the live phase; see the serve log")
    ms = np.array([latency for _, _, latency in latencies]) * 1000
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    on_spikes = sum((source, start) in injected for source, start, _ in latencies)
    print(f"\n| streams x rate | alerts | on injected spikes | spikes | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) |\n"
          f"|---|---:|---:|---:|---:|---:|---:|---:|\n"
          f"| {args.streams:,} x 1/s | {len(ms)} | {on_spikes} | {len(injected)} | {p50:.0f} | {p90:.0f} | {p99:.0f} "
          f"| {ms.max():.0f} |")


if __name__ == "__main__":
    main()
