"""The series pipeline: records in, windows per stream, one detector call per batch, alerts out.

A :class:`SeriesProcessor` handles one partition's records for a
:class:`~streams.worker.PartitionedWorker`, which owns delivery and checkpoints. Readings are
validated and windowed per stream; full windows of a poll are scored in one detector call per
run of equal shapes, in offset order, so a replay recomputes the same alerts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from streams.alerts import AlertTracker
from streams.records import RecordError, encode_reading, parse_series_message
from streams.windows import WindowStore
from streams.worker import Outbox


@dataclass(frozen=True)
class SeriesSettings:
    window: int = 32
    max_record_bytes: int = 1024 * 1024
    min_run: int = 1
    quiet_readings: int = 5


@dataclass
class SeriesState:
    """A partition's windows, detector and open alerts."""

    windows: WindowStore
    detector: Any
    tracker: AlertTracker

    def state_dict(self) -> dict:
        return {"windows": self.windows.state_dict(), "detector": self.detector.state_dict(),
                "tracker": self.tracker.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.windows.load_state_dict(state["windows"])
        self.detector.load_state_dict(state["detector"])
        self.tracker.load_state_dict(state["tracker"])


class SeriesProcessor:
    """Series records -> readings -> windows -> verdicts -> alerts (see the module doc)."""

    def __init__(self, settings: SeriesSettings, detector_factory: Callable[[], Any], outbox: Outbox):
        self.settings = settings
        self.detector_factory = detector_factory
        self.outbox = outbox

    def new_state(self) -> SeriesState:
        detector = self.detector_factory()
        tracker = AlertTracker(detector.name, self.settings.min_run, self.settings.quiet_readings)
        return SeriesState(WindowStore(self.settings.window), detector, tracker)

    def process(self, state: SeriesState, records: list) -> None:
        pending, accepted = [], 0
        push, max_bytes = state.windows.push, self.settings.max_record_bytes
        for record in records:
            try:
                readings = parse_series_message(record.key, record.value, max_bytes)
            except RecordError as exc:
                self.outbox.dead_letter(record, record.value, exc)
                continue
            for reading in readings:
                try:
                    window = push(reading)
                except RecordError as exc:
                    self.outbox.dead_letter(record, encode_reading(reading.ts, reading.values), exc)
                    continue
                accepted += 1
                if window.full:
                    pending.append((reading.stream_id, reading.ts, window.channels, window.values().copy()))
        self.outbox.counters.readings += accepted
        self._judge(state, pending)

    def _judge(self, state: SeriesState, pending: list) -> None:
        """Score pending windows in order, one detector call per run of equal shapes."""
        start = 0
        while start < len(pending):
            shape = pending[start][3].shape
            end = start
            while end < len(pending) and pending[end][3].shape == shape:
                end += 1
            run = pending[start:end]
            verdicts = state.detector.judge([p[0] for p in run], [p[2] for p in run], np.stack([p[3] for p in run]))
            for (stream_id, ts, _, _), verdict in zip(run, verdicts):
                alert = state.tracker.observe(stream_id, ts, verdict)
                if alert is not None:
                    self.outbox.alert(alert)
            self.outbox.counters.scored += len(run)
            start = end
