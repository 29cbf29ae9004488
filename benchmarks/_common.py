"""What the pipeline benchmarks share: a throw-away local broker, a config, readings to publish."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import yaml

from argus.config import Config, load_config
from streams.broker import LocalBroker, free_port_pair
from streams.kafka_clients import ensure_topics, make_producer


@contextmanager
def broker(bootstrap: str | None = None) -> Iterator[str]:
    """The given bootstrap servers, or a fresh local broker on a free port for the run."""
    if bootstrap:
        yield bootstrap
        return
    with tempfile.TemporaryDirectory(prefix="argus-bench-") as home:
        local = LocalBroker(Path(home), free_port_pair())
        local.start()
        try:
            yield local.bootstrap
        finally:
            local.stop()


def bench_config(bootstrap: str, state_dir: str, partitions: int = 4, **overrides) -> Config:
    """Default settings on topics and a group of this run alone; topics are created."""
    tag = uuid.uuid4().hex[:8]
    config = load_config(None, {
        "kafka.bootstrap_servers": bootstrap, "topics.series": f"bench-series-{tag}",
        "topics.alerts": f"bench-alerts-{tag}", "topics.dead_letter": f"bench-dead-{tag}",
        "topics.partitions": partitions, "group_id": f"bench-{tag}", "state_dir": state_dir, **overrides,
    })
    t = config.topics
    ensure_topics(config.kafka, {t.series: partitions, t.alerts: partitions, t.dead_letter: partitions})
    return config


def stream_values(streams: int, per_stream: int, seed: int = 0) -> np.ndarray:
    """(streams, per_stream) noisy daily-ish cycles, one phase per stream."""
    rng = np.random.default_rng(seed)
    t = np.arange(per_stream)
    phase = rng.uniform(0, 2 * np.pi, (streams, 1))
    return 50 + 10 * np.sin(2 * np.pi * t / 288 + phase) + rng.normal(0, 1, (streams, per_stream))


def publish_readings(config: Config, values: np.ndarray, start_ts: float = 1.7e9, per_message: int = 1) -> int:
    """Publish stream i's readings under key node-i, interleaved in time; return messages sent."""
    producer = make_producer(config.kafka, linger_ms=20, batch_size=256 * 1024)
    streams, length = values.shape
    sent = 0
    for start in range(0, length, per_message):
        for stream in range(streams):
            readings = [{"ts": start_ts + 10.0 * i, "value": float(values[stream, i])}
                        for i in range(start, min(length, start + per_message))]
            body = readings[0] if len(readings) == 1 else {"readings": readings}
            producer.send(config.topics.series, key=f"node-{stream:05d}".encode(), value=json.dumps(body).encode())
            sent += 1
    producer.flush()
    producer.close()
    return sent


def start_serve(config: Config, work: Path) -> subprocess.Popen:
    """`argus serve` on this config as its own process, as in production; log in work/serve.log."""
    config_file = work / "argus.yaml"
    config_file.write_text(yaml.safe_dump(dataclasses.asdict(config)))
    return subprocess.Popen([sys.executable, "-m", "argus", "serve", "--config", str(config_file)],
                            stderr=open(work / "serve.log", "w"))


def rss_mb(pid: int | str = "self") -> tuple[float, float, float]:
    """(current, peak, anonymous) resident memory of a process in MiB; the rest of the current
    figure is file-backed pages (shared libraries), which processes share."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return tuple(int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM", "RssAnon"))


class DroppingProducer:
    """A producer for an in-process Outbox: accepts every send and keeps nothing, as if the
    broker acknowledged it at once (the outbox still counts alerts and dead letters)."""

    def send(self, *args, **kwargs) -> SimpleNamespace:
        return SimpleNamespace(failed=lambda: False)

    def flush(self) -> None:
        pass
