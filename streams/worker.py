"""A consumer-group worker: per-partition state, at-least-once delivery, checkpoints.

The worker owns the Kafka side of a pipeline: it polls, hands each partition's records to a
processor (series windows, camera clips, ...), and commits a partition's offset only after the
alerts and dead letters the processor sent are acknowledged by the broker and the partition's
state is checkpointed at that offset. State is kept per Kafka partition, so a partition moves
between workers whole, and a replay after a crash recomputes the same alerts with the same ids.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import KafkaError, KafkaTimeoutError
from kafka.structs import OffsetAndMetadata

from streams.alerts import Alert
from streams.checkpoints import CheckpointStore
from streams.deadletter import DeadLetter
from streams.records import RecordError

log = logging.getLogger("argus.pipeline")


class DeliveryError(RuntimeError):
    """The broker did not acknowledge an alert or dead letter; the worker must not commit."""


@dataclass
class Counters:
    records: int = 0
    readings: int = 0  # accepted units of work: series readings, or decoded clips
    scored: int = 0
    alerts: int = 0
    dead_letters: Counter = field(default_factory=Counter)

    def line(self) -> str:
        dead = sum(self.dead_letters.values())
        return (f"records={self.records} readings={self.readings} scored={self.scored} alerts={self.alerts} "
                f"dead_letters={dead} {dict(self.dead_letters) if dead else ''}").rstrip()


class Outbox:
    """Everything a processor publishes (alerts, dead letters), kept until the broker acks it."""

    def __init__(self, producer: KafkaProducer, alerts_topic: str, dead_letter_topic: str):
        self.producer = producer
        self.alerts_topic = alerts_topic
        self.dead_letter_topic = dead_letter_topic
        self.counters = Counters()
        self._in_flight: list = []

    def alert(self, alert: Alert) -> None:
        self._send(self.alerts_topic, alert.id.encode(), alert.to_json())
        self.counters.alerts += 1

    def dead_letter(self, record, value: bytes | None, error: RecordError) -> None:
        """``record`` is the consumer record it came from; ``value`` what is kept of it."""
        letter = DeadLetter(record.key, value, error.reason, error.detail, record.topic, record.partition, record.offset)
        self._send(self.dead_letter_topic, letter.key, letter.value, letter.headers())
        self.counters.dead_letters[error.reason] += 1

    def _send(self, topic: str, key: bytes | None, value: bytes | None, headers: list | None = None) -> None:
        self._in_flight.append(self.producer.send(topic, key=key, value=value, headers=headers or []))

    def confirm(self) -> None:
        """Wait until the broker has every send, or DeliveryError if it refused any."""
        self.producer.flush()
        failed = [f.exception for f in self._in_flight if f.failed()]
        self._in_flight = []
        if failed:
            raise DeliveryError(f"{len(failed)} alerts/dead letters were not acknowledged: {failed[0]}")

    def discard(self) -> None:
        self._in_flight = []


class PartitionWork(Protocol):
    """A processor's state for one partition (windows, detector, open alerts, ...)."""

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


class Processor(Protocol):
    """Turns one partition's records into alerts and dead letters, through an Outbox.

    A processor may also have ``prepare(records) -> prepared``: the records' work that needs no
    partition state and publishes nothing (the camera processor parses and starts decoding).
    The worker then prepares each poll as soon as it has it, and processes the poll before
    while that runs: ``process(state, records, prepared)``.
    """

    def new_state(self) -> PartitionWork: ...

    def process(self, state: PartitionWork, records: list) -> None: ...


@dataclass
class PartitionState:
    """A partition's work, valid at ``next_offset``; checkpoints hold both."""

    work: Any
    next_offset: int | None = None
    replay_from: int | None = None  # where replaying its work starts: its checkpoint's offset, or its first record's

    def state_dict(self) -> dict:
        return {**self.work.state_dict(), "next_offset": self.next_offset}

    def load_state_dict(self, state: dict) -> None:
        self.work.load_state_dict(state)
        self.next_offset = state["next_offset"]


class PartitionedWorker:
    """Consumes one topic in a group and drives a Processor; see the module doc."""

    def __init__(self, consumer: KafkaConsumer, outbox: Outbox, topic: str, processor: Processor,
                 checkpoints: CheckpointStore, commit_interval_s: float = 1.0, poll_max_records: int = 5000):
        self.consumer = consumer
        self.outbox = outbox
        self.topic = topic
        self.processor = processor
        self.checkpoints = checkpoints
        self.commit_interval_s = commit_interval_s
        self.poll_max_records = poll_max_records
        self.states: dict[TopicPartition, PartitionState] = {}
        self._dirty: set[TopicPartition] = set()
        self._ahead = hasattr(processor, "prepare")
        self._pending: list[tuple[TopicPartition, list, Any]] = []  # prepared, not yet processed
        _wait_for_partitions(consumer, topic)
        consumer.subscribe([topic], listener=_Rebalance(self))

    @property
    def producer(self) -> KafkaProducer:
        return self.outbox.producer

    @property
    def counters(self) -> Counters:
        return self.outbox.counters

    # -- partition ownership -------------------------------------------------------------

    def adopt(self, partitions: set[TopicPartition]) -> None:
        """Restore each partition's checkpoint and resume exactly where it was taken."""
        log.info("assigned partitions: %s", _names(partitions))
        self._drop_pending(partitions)  # the partition restarts from its checkpoint
        for tp in partitions:
            self.states[tp] = self._restore(tp)

    def _restore(self, tp: TopicPartition, rewinding: bool = False) -> PartitionState:
        state = PartitionState(self.processor.new_state())
        saved = self.checkpoints.load(tp.topic, tp.partition)
        if saved is not None and saved["next_offset"] is not None:
            state.load_state_dict(saved)
            state.replay_from = state.next_offset
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
        saved = True
        try:  # kafka-python may call this on its IO thread, where a blocking commit is refused
            self.checkpoint(partitions, wait_for_commit=False)
        except (KafkaError, DeliveryError) as exc:
            log.warning("could not checkpoint revoked partitions (%s); they will be replayed", exc)
            saved = False
        self._drop_pending(partitions)  # the new owner replays them
        for tp in partitions:
            state = self.states.pop(tp, None)
            self._dirty.discard(tp)
            if not saved and state is not None and state.replay_from is not None:
                # given back to this consumer, a partition keeps its position: put it where its
                # unsaved work began, so that work is replayed (adopt seeks checkpointed ones anyway)
                self.consumer.seek(tp, state.replay_from)

    def _drop_pending(self, partitions: set[TopicPartition]) -> None:
        """Forget the prepared polls of ``partitions`` and put the consumer back to their first
        record: a partition reassigned to this consumer keeps its position, and is then restored
        from its checkpoint, which only ever covers processed records (``seek`` does not block,
        as the rebalance callbacks that call this must not)."""
        first: dict[TopicPartition, int] = {}
        for tp, records, _ in self._pending:
            if tp in partitions:
                first.setdefault(tp, records[0].offset)  # a partition's polls are pending in offset order
        self._pending = [entry for entry in self._pending if entry[0] not in partitions]
        for tp, offset in first.items():
            self.consumer.seek(tp, offset)

    def rewind(self) -> None:
        """Forget all work since the last checkpoint and replay it: sends that failed are redone
        (alert ids are deterministic, so repeats are recognisable)."""
        self.outbox.discard()
        self._dirty.clear()
        self._pending = []
        for tp in list(self.states):
            self.states[tp] = self._restore(tp, rewinding=True)

    # -- processing -----------------------------------------------------------------------

    def process(self, batch: dict[TopicPartition, list]) -> None:
        """Handle one poll's records, partition by partition, in offset order."""
        self._process_prepared(self._prepare(batch))

    def _prepare(self, batch: dict[TopicPartition, list]) -> list[tuple[TopicPartition, list, Any]]:
        return [(tp, records, self.processor.prepare(records) if self._ahead else None)
                for tp, records in batch.items() if records and tp in self.states]

    def _process_prepared(self, work: list[tuple[TopicPartition, list, Any]]) -> None:
        for tp, records, prepared in work:
            state = self.states.get(tp)
            if state is None:  # fetched just before a revoke; the new owner replays it
                continue
            if self._ahead:
                self.processor.process(state.work, records, prepared)
            else:
                self.processor.process(state.work, records)
            if state.replay_from is None:
                state.replay_from = records[0].offset
            state.next_offset = records[-1].offset + 1
            self.counters.records += len(records)
            self._dirty.add(tp)

    # -- delivery ---------------------------------------------------------------------------

    def checkpoint(self, partitions: set[TopicPartition] | None = None, wait_for_commit: bool = True) -> None:
        """Wait for the broker to acknowledge all sends, save states, then commit offsets.

        Without ``wait_for_commit`` the commit is sent and not waited for: the saved checkpoint
        already holds the offset, and a commit that is lost only means a longer replay.
        """
        self.outbox.confirm()
        targets = self._dirty if partitions is None else self._dirty & set(partitions)
        offsets = {}
        for tp in list(targets):
            state = self.states[tp]
            self.checkpoints.save(tp.topic, tp.partition, state.state_dict())
            state.replay_from = state.next_offset
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
            # with a poll waiting to be processed, take only what has arrived: it is not held up
            batch = self.consumer.poll(timeout_ms=0 if self._pending else 200, max_records=self.poll_max_records)
            if self._ahead:  # start preparing this poll, then process the one before it
                before, self._pending = self._pending, self._prepare(batch)
                self._process_prepared(before)
            elif batch:
                self.process(batch)
            if not batch and not self.consumer.assignment():
                time.sleep(0.2)  # a worker with no partitions (more workers than partitions) waits
            now = time.monotonic()
            if now - last_checkpoint >= self.commit_interval_s:
                try:
                    self.checkpoint()
                except DeliveryError as exc:
                    log.warning("%s; replaying from the last checkpoint", exc)
                    self.rewind()
                except KafkaError as exc:
                    log.warning("commit failed (%s); retrying", exc)
                last_checkpoint = now
            if now - last_status >= status_every_s:
                log.info("%s: %s", self.topic, self.status_line())
                last_status = now
        before, self._pending = self._pending, []
        self._process_prepared(before)
        self.checkpoint()

    def status_line(self) -> str:
        return self.counters.line()

    def close(self) -> None:
        self.consumer.close()
        self.producer.close()


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, worker: PartitionedWorker):
        self.worker = worker

    def on_partitions_revoked(self, revoked):
        self.worker.release(set(revoked))

    def on_partitions_assigned(self, assigned):
        self.worker.adopt(set(assigned))


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
