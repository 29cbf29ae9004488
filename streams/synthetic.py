"""A synthetic HPC cluster: N nodes x M metrics with injected, labelled anomalies.

Normal behaviour: each node runs jobs that move CPU load between plateaus; memory, power and
temperature follow the load (temperature with thermal lag), network is bursty noise. Anomaly
kinds, each confined to one labelled interval of one node:

- ``spike``: a short burst on one metric;
- ``level_shift``: a metric jumps to a new level and stays there until the interval ends;
- ``stuck``: a sensor freezes at its last value;
- ``noise``: a metric's noise grows tenfold;
- ``thermal_runaway``: temperature climbs while load does not.

>>> cluster = make_cluster(nodes=2, length=800, anomalies_per_node=1, seed=0)
>>> cluster.values.shape
(2, 5, 800)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

METRICS = ("cpu", "memory", "temperature", "power", "network")
ANOMALY_KINDS = ("spike", "level_shift", "stuck", "noise", "thermal_runaway")
START_TS = 1_700_000_000.0


@dataclass
class Cluster:
    """Readings (nodes, metrics, time) and the labelled anomaly intervals per node."""

    nodes: list[str]
    metrics: tuple[str, ...]
    timestamps: np.ndarray
    values: np.ndarray
    labels: dict[str, list[list[float]]]
    kinds: dict[str, list[str]]

    def readings(self):
        """(node, ts, {metric: value}) in time order, nodes interleaved, as a broker sees them."""
        for t, ts in enumerate(self.timestamps):
            for n, node in enumerate(self.nodes):
                yield node, float(ts), {m: round(float(v), 4) for m, v in zip(self.metrics, self.values[n, :, t])}


def _normal_node(rng: np.random.Generator, length: int) -> np.ndarray:
    plateau = np.repeat(rng.uniform(0.2, 0.8, length // 200 + 1), 200)[:length]
    smooth = np.convolve(plateau, np.ones(20) / 20, mode="same")
    cpu = np.clip(smooth + rng.normal(0, 0.02, length), 0, 1) * 100
    memory = 30 + 0.3 * cpu + rng.normal(0, 0.5, length)
    lag = np.convolve(cpu, np.ones(30) / 30, mode="full")[:length]
    temperature = 40 + 0.35 * lag + rng.normal(0, 0.3, length)
    power = 120 + 2.5 * cpu + rng.normal(0, 3, length)
    network = np.abs(50 + 10 * rng.standard_normal(length))
    return np.stack([cpu, memory, temperature, power, network])


def _inject(rng: np.random.Generator, series: np.ndarray, kind: str, start: int, end: int) -> None:
    metric = int(rng.integers(len(METRICS)))
    span = series[:, start:end]
    scale = series[metric].std() + 1e-9
    if kind == "spike":
        span[metric] += rng.choice([-1, 1]) * 6 * scale
    elif kind == "level_shift":
        span[metric] += 4 * scale
    elif kind == "stuck":
        span[metric] = series[metric, start - 1]
    elif kind == "noise":
        span[metric] += rng.normal(0, 3 * scale, end - start)
    elif kind == "thermal_runaway":
        span[2] += np.linspace(0, 25, end - start)


def make_cluster(
    nodes: int = 8, length: int = 2000, anomalies_per_node: int = 1, interval_s: float = 10.0,
    seed: int = 0, warmup: int = 500,
) -> Cluster:
    """A seeded cluster; anomalies fall after ``warmup`` points so detectors have a baseline."""
    if anomalies_per_node and length < warmup + 100 * anomalies_per_node:
        raise ValueError(f"length {length} leaves no room for {anomalies_per_node} anomalies after a warm-up of {warmup}")
    rng = np.random.default_rng(seed)
    names = [f"node-{i:03d}" for i in range(nodes)]
    values = np.stack([_normal_node(rng, length) for _ in names])
    timestamps = START_TS + interval_s * np.arange(length)
    labels: dict[str, list[list[float]]] = {}
    kinds: dict[str, list[str]] = {}
    slot = (length - warmup) // max(anomalies_per_node, 1)
    for n, name in enumerate(names):
        labels[name], kinds[name] = [], []
        for a in range(anomalies_per_node):
            kind = ANOMALY_KINDS[(n + a) % len(ANOMALY_KINDS)]
            duration = 5 if kind == "spike" else int(rng.integers(30, 60))
            start = warmup + a * slot + int(rng.integers(0, max(1, slot - duration - 60)))
            _inject(rng, values[n], kind, start, start + duration)
            labels[name].append([float(timestamps[start]), float(timestamps[start + duration - 1])])
            kinds[name].append(kind)
    return Cluster(names, METRICS, timestamps, values, labels, kinds)
