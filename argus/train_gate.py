"""`argus train-gate`: train the mixture's gate from labelled series and save it to a file.

The series (``timestamp,value`` CSVs, e.g. NAB's) run through the configured mixture exactly as
`argus serve` would run them (same windows, embedder and experts), each window labelled 1 when
its last reading lies inside a labelled interval; the gate learns which experts to trust from
those labels. Point ``detector.gate`` at the file to use it in `argus serve`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from argus.config import ConfigError, load_config
from argus.wiring import detector_factory
from detectors.mixture import has_opinion
from streams.records import Reading, RecordError, parse_timestamp
from streams.replay import ReplayError, collect_csv_series
from streams.windows import WindowStore


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--csv", nargs="+", type=Path, required=True, help="timestamp,value CSV files or folders")
    p.add_argument("--labels", type=Path, required=True,
                   help="labelled intervals, NAB style: {series: [[start, end], ...]} (series as in --csv, .csv optional)")
    p.add_argument("--out", type=Path, required=True, help="where to write the gate (safetensors)")
    p.add_argument("--config", help="YAML config (detector settings; detector.name is taken as mixture)")
    p.add_argument("--epochs", type=int, default=200)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config, {"detector.name": "mixture", "detector.gate": ""})
    series = collect_csv_series(args.csv)
    labels = _labels(args.labels, series)
    detector = detector_factory(config)()
    mixture = detector.scorer
    windows = WindowStore(config.detector.window)
    z, vectors, targets = [], [], []
    for stream, rows in tqdm(series.items(), desc="scoring", unit="series"):
        batch = []
        for ts, value in rows:
            try:
                window = windows.push(Reading(stream, ts, {"value": value}))
            except RecordError:  # late or repeated: skipped, as serve dead-letters it
                continue
            if window is not None:
                batch.append((ts, window))
        if not batch:
            continue
        stacked = np.stack([w for _, w in batch])
        raw = torch.from_numpy(stacked)
        embedded = detector.embedder.embed(raw)
        z.append(mixture.expert_scores(embedded, keys=[stream] * len(batch), windows=raw))
        vectors.append(embedded.cpu().numpy())
        targets.append([any(a <= ts <= b for a, b in labels.get(stream, [])) for ts, _ in batch])
    if not z:
        raise ConfigError("no series was long enough for one window")
    y = np.concatenate(targets).astype(int)
    z = np.vstack(z)
    opinion = has_opinion(z)  # the windows fit_gate trains on
    try:
        losses = mixture.fit_gate(z, np.vstack(vectors), y, epochs=args.epochs)
    except ValueError as exc:
        raise ConfigError(f"cannot train the gate: {exc}") from None
    mixture.save_gate(args.out)
    print(f"trained on {int(opinion.sum())} windows of {len(targets)} series ({int(y[opinion].sum())} labelled "
          f"anomalous; {int((~opinion).sum())} more had no expert's opinion yet); "
          f"loss {losses[0]:.3f} -> {losses[-1]:.3f}; gate written to {args.out}")
    return 0


def _labels(path: Path, series: dict) -> dict[str, list[tuple[float, float]]]:
    """Labelled intervals in epoch seconds, keyed by the stream ids of ``series``."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ReplayError(f"cannot read labels {path}: {exc}") from None
    by_name = {name.removesuffix(".csv"): intervals for name, intervals in raw.items()}

    def intervals_of(stream: str) -> list:
        """A label named like the stream, or a path ending in it (NAB's 'category/name')."""
        for name, intervals in by_name.items():
            if name == stream or name.endswith("/" + stream) or stream.endswith("/" + name):
                return intervals
        return []

    return {stream: [(parse_timestamp(a), parse_timestamp(b)) for a, b in intervals_of(stream)] for stream in series}
