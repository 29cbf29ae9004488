"""Resident memory of `argus serve` holding 10,000 streams.

    .venv/bin/python benchmarks/pipeline_memory.py [--streams 10000] [--bootstrap HOST:PORT]

Starts `argus serve` as its own process, reads its resident memory once it has joined its
group (no stream yet), publishes 40 readings for each stream (one batch message per stream,
so every window is full and scored and every per-stream state exists), waits until serve has
committed them all, and reads its resident memory again, with the size of its checkpoints.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import bench_config, broker, publish_readings, rss_mb, start_serve, stream_values  # noqa: E402
from streams.kafka_clients import wait_until_committed  # noqa: E402

READINGS_PER_STREAM = 40


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--bootstrap", help="an existing broker (default: start a local one)")
    args = parser.parse_args()
    with broker(args.bootstrap) as bootstrap, tempfile.TemporaryDirectory() as work:
        config = bench_config(bootstrap, f"{work}/state")
        serve = start_serve(config, Path(work))
        time.sleep(8)  # started, imported, joined
        idle, _, _ = rss_mb(serve.pid)
        publish_readings(config, stream_values(args.streams, READINGS_PER_STREAM), per_message=READINGS_PER_STREAM)
        wait_until_committed(config.kafka, config.group_id, config.topics.series, timeout_s=300)
        loaded, peak, loaded_anon = rss_mb(serve.pid)
        serve.terminate()
        serve.wait(timeout=60)
        checkpoints = sum(f.stat().st_size for f in Path(config.state_dir).rglob("*.safetensors")) / 2**20
    print(f"\n| streams | serve RSS idle (MiB) | serve RSS with the streams (MiB) | of which anonymous (MiB) "
          f"| peak (MiB) | per stream (KiB) | checkpoints (MiB) |\n|---:|---:|---:|---:|---:|---:|---:|\n"
          f"| {args.streams:,} | {idle:.0f} | {loaded:.0f} | {loaded_anon:.0f} | {peak:.0f} "
          f"| {(loaded - idle) * 1024 / args.streams:.1f} | {checkpoints:.0f} |")

if __name__ == "__main__":
    main()
