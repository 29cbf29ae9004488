"""The series pipeline: records in, windows per stream, one detector call per batch, alerts out.

A :class:`SeriesProcessor` handles one partition's records for a
:class:`~streams.worker.PartitionedWorker`, which owns delivery and checkpoints. Readings are
validated and windowed per stream; full windows of a poll are scored in one detector call per
run of equal shapes, in offset order, so a replay recomputes the same alerts. A poll of nothing
but good one-value readings (the common case) is parsed and windowed in a few numpy calls; any
other poll goes message by message, with the same results.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from streams.alerts import AlertTracker
from streams.records import DEFAULT_CHANNEL, RecordError, encode_reading, parse_series_message, parse_simple_batch
from streams.windows import WindowStore
from streams.worker import Outbox


SINGLE = (DEFAULT_CHANNEL,)  # the channels of a one-value stream


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
        if not self._process_simple(state, records):
            self._process_each(state, records)

    def _process_simple(self, state: SeriesState, records: list) -> bool:
        """The common case in a few numpy calls: every message one good one-value reading.
        False, with nothing changed, if any message or reading is anything else."""
        parsed = parse_simple_batch([r.key for r in records], [r.value for r in records],
                                    self.settings.max_record_bytes)
        if parsed is None:
            return False
        stream_ids, ts, values = parsed
        windowed = state.windows.push_many(stream_ids, ts, values, SINGLE)
        if windowed is None:
            return False
        windows, full = windowed
        self.outbox.counters.readings += len(records)
        chosen = np.flatnonzero(full).tolist()
        if chosen:
            self._judge_run(state, [stream_ids[i] for i in chosen], ts[full].tolist(), [SINGLE] * len(chosen),
                            windows[full])
        return True

    def _process_each(self, state: SeriesState, records: list) -> None:
        """Message by message, reading by reading: every refusal dead-lettered with its reason."""
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
                if window is not None:
                    pending.append((reading.stream_id, reading.ts, tuple(reading.values), window))
        self.outbox.counters.readings += accepted
        start = 0
        while start < len(pending):  # one detector call per run of equal shapes, in order
            shape = pending[start][3].shape
            end = start
            while end < len(pending) and pending[end][3].shape == shape:
                end += 1
            run = pending[start:end]
            self._judge_run(state, [p[0] for p in run], [p[1] for p in run], [p[2] for p in run],
                            np.stack([p[3] for p in run]))
            start = end

    def _judge_run(self, state: SeriesState, stream_ids: list[str], timestamps: list[float],
                   channels: list[tuple[str, ...]], windows: np.ndarray) -> None:
        """Score windows of one shape (B, C, L) in order and publish the alerts they open or
        close. Only anomalous windows and streams with an open interval reach the tracker: a
        normal window of any other stream changes nothing there."""
        scores, thresholds, anomalous = state.detector.assess(stream_ids, windows)
        tracker = state.tracker
        open_streams = tracker.intervals  # live: a window that opens an interval adds its stream
        for i in range(len(stream_ids)) if open_streams or anomalous.any() else ():
            stream_id = stream_ids[i]
            if not anomalous[i] and stream_id not in open_streams:
                continue
            judged = state.detector.verdict(float(scores[i]), float(thresholds[i]), bool(anomalous[i]), channels[i],
                                            windows[i])
            alert = tracker.observe(stream_id, timestamps[i], judged)
            if alert is not None:
                self.outbox.alert(alert)
        self.outbox.counters.scored += len(stream_ids)
