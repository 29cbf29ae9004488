"""Records/s through the series pipeline vs the raw kafka-python consume rate, on the same topic.

    .venv/bin/python benchmarks/pipeline_throughput.py [--records 100000] [--rounds 3] [--bootstrap HOST:PORT]

For 1, 100 and 1,000 streams, on a fresh 4-partition topic of a local broker (started for the
run unless --bootstrap names one), it publishes a warm-up history for each stream (enough to
fill its window and its threshold's warm-up, so the measured part is the steady state), then the
same number of one-reading records for every stream count, and measures, side by side:

- raw: a kafka-python consumer reads every measured record and does nothing with it;
- pipeline: the Argus pipeline (default detector), warmed up on the history, consumes,
  validates, windows, scores, and checkpoints + commits every second, as `argus serve` does;
- anchor: river's MinMaxScaler | HalfSpaceTrees, score_one + learn_one per value, no Kafka.

After the warm-up, the process's heap is frozen out of the garbage collector's sight, as
`argus serve` does after start-up; both consumers run in this process and gain alike. Raw and
pipeline take turns, ``--rounds`` times, each reading the next ``--records`` records
(rates on a shared 2-core machine vary by tens of percent from one second to the next; turns
expose both to the same conditions). Prints a markdown table of the median records/s of each
and the pipeline's share of the raw rate.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from river import anomaly, preprocessing  # noqa: E402

from _common import bench_config, broker, publish_readings, stream_values  # noqa: E402
from argus.cli import settle_heap  # noqa: E402
from argus.wiring import build_pipeline  # noqa: E402
from streams.kafka_clients import make_consumer  # noqa: E402

WARMUP = 400  # readings per stream: a full window (32) plus the threshold's warm-up (300)


class RawConsumer:
    """A plain kafka-python consumer on the topic, counting records and doing nothing else."""

    def __init__(self, config):
        self.consumer = make_consumer(config.kafka, group_id=config.group_id + "-raw")
        self.consumer.subscribe([config.topics.series])
        self.seen = self.target = 0

    def consume(self, records: int) -> int:
        """Up to ``records`` more in all, and how many this call read: a poll that overshoots
        one turn's share counts towards the next, so the last turn does not wait for records
        that were never sent."""
        self.target += records
        before = self.seen
        while self.seen < self.target:
            self.seen += sum(len(b) for b in self.consumer.poll(timeout_ms=200, max_records=5000).values())
        return self.seen - before


class Pipeline:
    """The Argus pipeline, run as `argus serve` runs it."""

    def __init__(self, config):
        self.pipeline = build_pipeline(config)
        self.target = 0

    def consume(self, records: int) -> int:
        """As RawConsumer.consume: cumulative, so overshoots are not lost."""
        self.target += records
        before = self.pipeline.counters.records
        self.pipeline.run(lambda: self.pipeline.counters.records >= self.target, status_every_s=3600)
        assert not self.pipeline.counters.dead_letters, self.pipeline.status_line()
        return self.pipeline.counters.records - before


def timed(consumer, records: int) -> float:
    started = time.perf_counter()
    read = consumer.consume(records)
    return read / (time.perf_counter() - started)


def river_anchor_rate(values) -> float:
    model = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(seed=42)
    flat = values.T.ravel().tolist()
    started = time.perf_counter()
    for value in flat:
        x = {"value": value}
        model.score_one(x)
        model.learn_one(x)
    return len(flat) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000, help="records a turn")
    parser.add_argument("--rounds", type=int, default=3, help="turns of each consumer")
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 100, 1000])
    parser.add_argument("--bootstrap", help="an existing broker (default: start a local one)")
    args = parser.parse_args()
    rows = []
    with broker(args.bootstrap) as bootstrap, tempfile.TemporaryDirectory() as state:
        for streams in args.streams:
            per_stream = args.rounds * args.records // streams
            values = stream_values(streams, WARMUP + per_stream)
            config = bench_config(bootstrap, state)
            warmup_messages = publish_readings(config, values[:, :WARMUP], per_message=50)
            raw, piped = RawConsumer(config), Pipeline(config)
            for consumer in (raw, piped):  # untimed: connections, group join, full windows, warm thresholds
                consumer.consume(warmup_messages)
            settle_heap()  # as serve does after start-up; the raw consumer in this process gains as much
            records = publish_readings(config, values[:, WARMUP:], start_ts=1.7e9 + 10.0 * WARMUP) // args.rounds
            turns = [(timed(raw, records), timed(piped, records)) for _ in range(args.rounds)]
            raw_rate, piped_rate = (float(np.median(rates)) for rates in zip(*turns))
            anchor = river_anchor_rate(values[:, WARMUP:WARMUP + args.records // streams])
            rows.append((streams, records, raw_rate, piped_rate, anchor))
            print(f"{streams} streams: raw {raw_rate:,.0f}/s, pipeline {piped_rate:,.0f}/s, river HST {anchor:,.0f}/s "
                  f"(turns: {', '.join(f'{r:,.0f}/{p:,.0f}' for r, p in turns)})", flush=True)
    print("\n| streams | records | raw kafka-python consume (rec/s) | Argus pipeline (rec/s) | pipeline / raw "
          "| river HST loop, no Kafka (rec/s) | pipeline / river HST |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for streams, records, raw, piped, anchor in rows:
        print(f"| {streams:,} | {records:,} | {raw:,.0f} | {piped:,.0f} | {piped / raw:.0%} | {anchor:,.0f} "
              f"| {piped / anchor:.1f}x |")


if __name__ == "__main__":
    main()
