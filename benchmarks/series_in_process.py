"""Argus's own cost per series record, without Kafka: where the pipeline's time goes.

    .venv/bin/python benchmarks/series_in_process.py [--streams 1 100 1000] [--records 200000]

A `SeriesProcessor` with the default detector is fed one-reading records the way a worker
feeds it (polls of 1,250 records: 5,000 over 4 partitions), after a warm-up that fills every
stream's window and threshold warm-up; its outbox drops what it would publish. For each stream
count it prints the microseconds per record in all, then the same run under cProfile split
into the parts of the fast path (parse, window, embed, score, threshold). The profiler's own
overhead inflates the parts; their shares are what to read.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import pstats
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DroppingProducer, stream_values  # noqa: E402
from argus.config import load_config  # noqa: E402
from argus.wiring import detector_factory  # noqa: E402
from streams.series_pipeline import SeriesProcessor, SeriesSettings  # noqa: E402
from streams.worker import Outbox  # noqa: E402

WARMUP = 400  # readings per stream: a full window plus the threshold's warm-up
POLL = 1250
PARTS = {  # the fast path's parts: (file, function) as cProfile names them
    "parse": ("records.py", "parse_simple_batch"),
    "window": ("windows.py", "push_many"),
    "embed": ("window_stats.py", "embed"),
    "score": ("halfspace.py", "river_scores"),  # the default scorer: half-space trees
    "threshold": ("thresholds.py", "judge_many"),
}


def records(values, start_ts: float) -> list:
    """One-reading records of every stream, interleaved in time, as a consumer returns them."""
    streams, length = values.shape
    out = []
    for i in range(length):
        for stream in range(streams):
            body = json.dumps({"ts": start_ts + 10.0 * i, "value": float(values[stream, i])}).encode()
            out.append(SimpleNamespace(key=f"node-{stream:05d}".encode(), value=body, topic="series",
                                       partition=0, offset=len(out)))
    return out


def warmed_processor(streams: int, measured: int):
    """(processor, its state, the polls to measure) after the warm-up has been processed."""
    config = load_config(None, {})
    processor = SeriesProcessor(SeriesSettings(window=config.detector.window), detector_factory(config),
                                Outbox(DroppingProducer(), "alerts", "dead"))
    state = processor.new_state()
    values = stream_values(streams, WARMUP + measured // streams)
    warm = records(values[:, :WARMUP], 1.7e9)
    for start in range(0, len(warm), POLL):
        processor.process(state, warm[start:start + POLL])
    todo = records(values[:, WARMUP:], 1.7e9 + 10.0 * WARMUP)
    gc.collect()
    gc.freeze()  # as `argus serve` does after start-up
    return processor, state, [todo[i:i + POLL] for i in range(0, len(todo), POLL)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 100, 1000])
    parser.add_argument("--records", type=int, default=200_000, help="measured records per stream count")
    args = parser.parse_args()
    print("| streams | µs per record | " + " | ".join(PARTS) + " |")
    print("|---:|---:|" + "---:|" * len(PARTS))
    for streams in args.streams:
        processor, state, polls = warmed_processor(streams, args.records)
        started = time.perf_counter()
        for poll in polls:
            processor.process(state, poll)
        total = sum(map(len, polls))
        per_record = (time.perf_counter() - started) / total * 1e6

        processor, state, polls = warmed_processor(streams, args.records)
        profile = cProfile.Profile()
        profile.runcall(lambda: [processor.process(state, poll) for poll in polls])
        stats = pstats.Stats(profile).stats
        whole = sum(t for (_, _, name), (_, _, _, t, _) in stats.items() if name == "_process_simple")
        shares = []
        for file, function in PARTS.values():
            spent = sum(t for (path, _, name), (_, _, _, t, _) in stats.items()
                        if name == function and path.endswith(file))
            shares.append(f"{spent / whole:.0%}")
        print(f"| {streams:,} | {per_record:.2f} | " + " | ".join(shares) + " |", flush=True)


if __name__ == "__main__":
    main()
