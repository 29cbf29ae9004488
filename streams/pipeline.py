"""The series pipeline: records in, windows per stream, one detector call per batch, alerts out.

Delivery is at-least-once: a partition's offset is committed only after its alerts and dead
letters are acknowledged by the broker and its state is checkpointed at that offset. State
(windows, detector, open alerts) is kept per Kafka partition, so a partition moves between
workers whole and a replay after a crash recomputes the same alerts with the same ids.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import KafkaError, KafkaTimeoutError
from kafka.structs import OffsetAndMetadata

from streams.alerts import AlertTracker
from streams.checkpoints import CheckpointStore
from streams.deadletter import DeadLetter
from streams.records import RecordError, encode_reading, parse_series_message
from streams.windows import WindowStore

log = logging.getLogger("argus.pipeline")


class DeliveryError(RuntimeError):
    """The broker did not acknowledge an alert or dead letter; the worker must not commit."""


@dataclass(frozen=True)
class PipelineSettings:
    series_topic: str
    alerts_topic: str
    dead_letter_topic: str
    window: int = 32
    max_record_bytes: int = 1024 * 1024
    commit_interval_s: float = 1.0
    min_run: int = 1
    quiet_readings: int = 5
    poll_max_records: int = 5000


@dataclass
class PartitionState:
    """Everything a partition's processing depends on, valid at ``next_offset``."""

    windows: WindowStore
    detector: Any
    tracker: AlertTracker
    next_offset: int | None = None

    def state_dict(self) -> dict:
        return {"windows": self.windows.state_dict(), "detector": self.detector.state_dict(),
                "tracker": self.tracker.state_dict(), "next_offset": self.next_offset}

    def load_state_dict(self, state: dict) -> None:
        self.windows.load_state_dict(state["windows"])
        self.detector.load_state_dict(state["detector"])
        self.tracker.load_state_dict(state["tracker"])
        self.next_offset = state["next_offset"]


@dataclass
class PipelineCounters:
    records: int = 0
    readings: int = 0
    scored: int = 0
    alerts: int = 0
    dead_letters: Counter = field(default_factory=Counter)


class SeriesPipeline:
    """Consumes series records and publishes alerts and dead letters; see the module doc."""

    def __init__(
        self, consumer: KafkaConsumer, producer: KafkaProducer, settings: PipelineSettings,
        detector_factory: Callable[[], Any], checkpoints: CheckpointStore,
    ):
        self.consumer = consumer
        self.producer = producer
        self.settings = settings
        self.detector_factory = detector_factory
        self.checkpoints = checkpoints
        self.states: dict[TopicPartition, PartitionState] = {}
        self.counters = PipelineCounters()
        self._in_flight: list = []
        self._dirty: set[TopicPartition] = set()
        _wait_for_partitions(consumer, settings.series_topic)
        consumer.subscribe([settings.series_topic], listener=_Rebalance(self))

    # -- partition ownership -------------------------------------------------------------

    def _new_state(self) -> PartitionState:
        detector = self.detector_factory()
        tracker = AlertTracker(detector.name, self.settings.min_run, self.settings.quiet_readings)
        return PartitionState(WindowStore(self.settings.window), detector, tracker)

    def adopt(self, partitions: set[TopicPartition]) -> None:
        """Restore each partition's checkpoint and resume exactly where it was taken."""
        log.info("assigned partitions: %s", _names(partitions))
        for tp in partitions:
            self.states[tp] = self._restore(tp)

    def _restore(self, tp: TopicPartition, rewinding: bool = False) -> PartitionState:
        state = self._new_state()
        saved = self.checkpoints.load(tp.topic, tp.partition)
        if saved is not None and saved["next_offset"] is not None:
            state.load_state_dict(saved)
            self.consumer.seek(tp, state.next_offset)
            log.info("partition %s-%d: resumed from checkpoint at offset %d", tp.topic, tp.partition, state.next_offset)
            return state
        if rewinding:  # never checkpointed: back to the committed offset, or to the start
            committed = self.consumer.committed(tp)
            if committed is None:
                self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, committed)
        return state

    def release(self, partitions: set[TopicPartition]) -> None:
        """Checkpoint and forget partitions this worker no longer owns."""
        log.info("revoked partitions: %s", _names(partitions))
        try:  # kafka-python may call this on its IO thread, where a blocking commit is refused
            self.checkpoint(partitions, wait_for_commit=False)
        except (KafkaError, DeliveryError) as exc:
            log.warning("could not checkpoint revoked partitions (%s); they will be replayed", exc)
        for tp in partitions:
            self.states.pop(tp, None)
            self._dirty.discard(tp)

    def rewind(self) -> None:
        """Forget all work since the last checkpoint and replay it: sends that failed are redone
        (alert ids are deterministic, so repeats are recognisable)."""
        self._in_flight = []
        self._dirty.clear()
        for tp in list(self.states):
            self.states[tp] = self._restore(tp, rewinding=True)

    # -- processing -----------------------------------------------------------------------

    def process(self, batch: dict[TopicPartition, list]) -> None:
        """Handle one poll's records, partition by partition, in offset order."""
        for tp, records in batch.items():
            state = self.states.get(tp)
            if state is None:  # fetched just before a revoke; the new owner replays it
                continue
            pending, accepted = [], 0
            push, max_bytes = state.windows.push, self.settings.max_record_bytes
            for record in records:
                try:
                    readings = parse_series_message(record.key, record.value, max_bytes)
                except RecordError as exc:
                    self._dead_letter(record, record.value, exc)
                    continue
                for reading in readings:
                    try:
                        window = push(reading)
                    except RecordError as exc:
                        self._dead_letter(record, encode_reading(reading.ts, reading.values), exc)
                        continue
                    accepted += 1
                    if window.full:
                        pending.append((reading.stream_id, reading.ts, window.channels, window.values().copy()))
            if records:
                state.next_offset = records[-1].offset + 1
            self.counters.records += len(records)
            self.counters.readings += accepted
            self._judge(state, pending)
            self._dirty.add(tp)

    def _judge(self, state: PartitionState, pending: list) -> None:
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
                    self._send(self.settings.alerts_topic, alert.id.encode(), alert.to_json())
                    self.counters.alerts += 1
            self.counters.scored += len(run)
            start = end

    def _dead_letter(self, record, value: bytes | None, error: RecordError) -> None:
        letter = DeadLetter(record.key, value, error.reason, error.detail, record.topic, record.partition, record.offset)
        self._send(self.settings.dead_letter_topic, letter.key, letter.value, letter.headers())
        self.counters.dead_letters[error.reason] += 1

    def _send(self, topic: str, key: bytes | None, value: bytes | None, headers: list | None = None) -> None:
        self._in_flight.append(self.producer.send(topic, key=key, value=value, headers=headers or []))

    # -- delivery ---------------------------------------------------------------------------

    def checkpoint(self, partitions: set[TopicPartition] | None = None, wait_for_commit: bool = True) -> None:
        """Wait for the broker to acknowledge all sends, save states, then commit offsets.

        Without ``wait_for_commit`` the commit is sent and not waited for: the saved checkpoint
        already holds the offset, and a commit that is lost only means a longer replay.
        """
        self.producer.flush()
        failed = [f.exception for f in self._in_flight if f.failed()]
        self._in_flight = []
        if failed:
            raise DeliveryError(f"{len(failed)} alerts/dead letters were not acknowledged: {failed[0]}")
        targets = self._dirty if partitions is None else self._dirty & set(partitions)
        offsets = {}
        for tp in list(targets):
            state = self.states[tp]
            self.checkpoints.save(tp.topic, tp.partition, state.state_dict())
            offsets[tp] = OffsetAndMetadata(state.next_offset, "", -1)
        if offsets and wait_for_commit:
            self.consumer.commit(offsets)
        elif offsets:
            self.consumer.commit_async(offsets, callback=_log_commit_failure)
        self._dirty -= set(offsets)

    def run(self, should_stop: Callable[[], bool], status_every_s: float = 10.0) -> None:
        """Poll, process and checkpoint until ``should_stop()``; checkpoint once more at the end."""
        last_checkpoint = last_status = time.monotonic()
        while not should_stop():
            batch = self.consumer.poll(timeout_ms=200, max_records=self.settings.poll_max_records)
            if batch:
                self.process(batch)
            elif not self.consumer.assignment():
                time.sleep(0.2)  # a worker with no partitions (more workers than partitions) waits
            now = time.monotonic()
            if now - last_checkpoint >= self.settings.commit_interval_s:
                try:
                    self.checkpoint()
                except DeliveryError as exc:
                    log.warning("%s; replaying from the last checkpoint", exc)
                    self.rewind()
                except KafkaError as exc:
                    log.warning("commit failed (%s); retrying", exc)
                last_checkpoint = now
            if now - last_status >= status_every_s:
                log.info("%s", self.status_line())
                last_status = now
        self.checkpoint()

    def status_line(self) -> str:
        c = self.counters
        dead = sum(c.dead_letters.values())
        return (f"records={c.records} readings={c.readings} scored={c.scored} alerts={c.alerts} "
                f"dead_letters={dead} {dict(c.dead_letters) if dead else ''}").rstrip()


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, pipeline: SeriesPipeline):
        self.pipeline = pipeline

    def on_partitions_revoked(self, revoked):
        self.pipeline.release(set(revoked))

    def on_partitions_assigned(self, assigned):
        self.pipeline.adopt(set(assigned))


def _names(partitions) -> str:
    return ", ".join(sorted(f"{tp.topic}-{tp.partition}" for tp in partitions)) or "none"


def _wait_for_partitions(consumer: KafkaConsumer, topic: str, timeout_s: float = 60.0) -> None:
    """Until the client knows the topic's partitions: a group joined without them assigns none."""
    deadline = time.monotonic() + timeout_s
    while not consumer.partitions_for_topic(topic):
        if time.monotonic() > deadline:
            raise KafkaTimeoutError(f"no partition metadata for topic {topic} after {timeout_s:.0f}s")
        time.sleep(0.2)


def _log_commit_failure(offsets, response) -> None:
    if isinstance(response, Exception):
        log.warning("asynchronous commit of %s failed (%s); those records will be replayed", _names(offsets), response)
