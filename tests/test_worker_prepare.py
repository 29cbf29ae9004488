"""The worker with a processor that prepares ahead (as the camera processor decodes ahead),
against a real broker: each poll is prepared before the poll before it is processed, every
record is processed once, in offset order, and the offsets committed at the end cover them all;
prepared polls are dropped and fetched again after a rewind or when partitions move between
workers, so each partition's state holds every record once, in order; so it does when a
partition comes back to the same worker after a release whose checkpoint failed."""

from __future__ import annotations

import threading
import time

import pytest

from streams.checkpoints import CheckpointStore
from streams.kafka_clients import ensure_topics, make_consumer, make_producer, wait_until_committed
from streams.worker import DeliveryError, Outbox, PartitionedWorker

pytestmark = pytest.mark.kafka

RECORDS = 60


class Seen:
    """A partition's work: the offsets it has processed."""

    def __init__(self):
        self.offsets: list[int] = []

    def state_dict(self) -> dict:
        return {"offsets": list(self.offsets)}

    def load_state_dict(self, state: dict) -> None:
        self.offsets = list(state["offsets"])


class PreparingProcessor:
    def __init__(self, seconds_a_poll: float = 0.0):
        self.seconds_a_poll = seconds_a_poll
        self.log: list[tuple[str, int, int]] = []  # (step, partition, first offset)
        self.prepared = 0  # records prepared
        self.last_prepared: dict[int, int] = {}  # partition -> last offset prepared

    def new_state(self) -> Seen:
        return Seen()

    def prepare(self, records: list) -> list[int]:
        self.log.append(("prepare", records[0].partition, records[0].offset))
        self.prepared += len(records)
        self.last_prepared[records[0].partition] = records[-1].offset
        return [record.offset for record in records]

    def process(self, state: Seen, records: list, prepared: list[int]) -> None:
        assert prepared == [record.offset for record in records]  # the records' own preparation
        self.log.append(("process", records[0].partition, records[0].offset))
        state.offsets += prepared
        time.sleep(self.seconds_a_poll)


def _publish(argus_config, records: int = RECORDS) -> None:
    """``records`` records over the 2 partitions of a fresh topic."""
    topic, connection = argus_config["topics"]["series"], argus_config["kafka"]
    ensure_topics(connection, {topic: 2})
    producer = make_producer(connection)
    for i in range(records):
        producer.send(topic, key=b"k", value=str(i).encode(), partition=i % 2)
    producer.flush()
    producer.close()


def _worker(tmp_path, argus_config, seconds_a_poll: float = 0.0) -> tuple[PartitionedWorker, PreparingProcessor]:
    """A worker of the test's group, its checkpoints in the test's folder."""
    topic, group, connection = argus_config["topics"]["series"], argus_config["group_id"], argus_config["kafka"]
    processor = PreparingProcessor(seconds_a_poll)
    worker = PartitionedWorker(make_consumer(connection, group_id=group),
                               Outbox(make_producer(connection), "unused", "unused"), topic, processor,
                               CheckpointStore(tmp_path / "state", group), commit_interval_s=0.2, poll_max_records=4)
    return worker, processor


def test_a_preparing_processor_has_each_poll_prepared_before_the_one_before_is_processed(tmp_path, argus_config):
    _publish(argus_config)
    worker, processor = _worker(tmp_path, argus_config)
    connection, group, topic = argus_config["kafka"], argus_config["group_id"], worker.topic
    worker.run(lambda: processor.prepared == RECORDS)  # stops with the last poll prepared, not processed
    seen = {tp.partition: state.work.offsets for tp, state in worker.states.items()}
    worker.close()

    assert worker.counters.records == RECORDS  # the prepared polls were processed before stopping
    assert seen == {0: list(range(RECORDS // 2)), 1: list(range(RECORDS // 2))}
    log = processor.log
    processed = [n for n, (step, _, _) in enumerate(log) if step == "process"]
    assert len(processed) == len(log) - len(processed) > 2
    ahead = [n for n in processed  # processed after a later poll of its partition was prepared
             if any(step == "prepare" and p == log[n][1] and o > log[n][2] for step, p, o in log[:n])]
    assert len(ahead) >= len(processed) // 2, log
    wait_until_committed(connection, group, topic, timeout_s=30)


def test_a_rewind_drops_prepared_polls_so_every_record_is_processed_once(tmp_path, argus_config):
    _publish(argus_config)
    worker, processor = _worker(tmp_path, argus_config)
    rewound = []

    def should_stop() -> bool:
        if not rewound and processor.prepared >= RECORDS // 2:  # mid-stream, a poll prepared ahead
            rewound.append(len(worker._pending))
            worker.rewind()
        return bool(rewound) and all(processor.last_prepared.get(p) == RECORDS // 2 - 1 for p in (0, 1))

    worker.run(should_stop)
    seen = {tp.partition: state.work.offsets for tp, state in worker.states.items()}
    worker.close()
    assert rewound[0] > 0  # there was a prepared poll to drop
    assert seen == {0: list(range(RECORDS // 2)), 1: list(range(RECORDS // 2))}


def test_partitions_moving_between_workers_keep_every_record_once_in_order(tmp_path, argus_config):
    """Worker B joins the group mid-stream (a rebalance: A gives up a partition, prepared polls
    and all), processes some of it, and leaves (A takes it back from B's checkpoint)."""
    records = 160
    _publish(argus_config, records)
    a, _ = _worker(tmp_path, argus_config, seconds_a_poll=0.05)
    b, b_processor = _worker(tmp_path, argus_config, seconds_a_poll=0.05)
    b_done = threading.Event()

    def a_done() -> bool:
        states = a.states.values()
        return b_done.is_set() and len(states) == 2 and all(s.next_offset == records // 2 for s in states)

    runner = threading.Thread(target=a.run, args=(a_done,))
    runner.start()
    deadline = time.monotonic() + 60
    b.run(lambda: sum(step == "process" for step, _, _ in b_processor.log) >= 3 or time.monotonic() > deadline)
    b.close()
    b_done.set()
    runner.join(timeout=120)
    seen = {tp.partition: state.work.offsets for tp, state in a.states.items()}
    a.close()
    assert any(step == "process" for step, _, _ in b_processor.log)  # B did take a partition
    assert seen == {0: list(range(records // 2)), 1: list(range(records // 2))}


def test_a_partition_given_back_after_a_failed_release_checkpoint_replays_its_unsaved_work(tmp_path, argus_config,
                                                                                         monkeypatch):
    """A rebalance revokes both partitions and gives them back to the same worker; their states
    were never checkpointed, and the release's checkpoint fails (the broker refused an alert).
    The consumer keeps its positions across such a rebalance, so without a seek back the records
    processed before it would be missing from the fresh states."""
    _publish(argus_config)
    worker, processor = _worker(tmp_path, argus_config)
    worker.commit_interval_s = 3600  # no checkpoint before the rebalance
    given_back = []

    def refuse() -> None:
        monkeypatch.undo()  # once
        raise DeliveryError("1 alerts/dead letters were not acknowledged: test")

    def should_stop() -> bool:
        if not given_back and sum(len(s.work.offsets) for s in worker.states.values()) >= RECORDS // 3:
            partitions = set(worker.states)
            given_back.append({tp.partition: len(worker.states[tp].work.offsets) for tp in partitions})
            monkeypatch.setattr(worker.outbox, "confirm", refuse)
            worker.release(partitions)  # what the rebalance listener calls, in this order
            worker.adopt(partitions)
        return bool(given_back) and all(processor.last_prepared.get(p) == RECORDS // 2 - 1 for p in (0, 1))

    worker.run(should_stop)
    seen = {tp.partition: state.work.offsets for tp, state in worker.states.items()}
    worker.close()
    assert sum(given_back[0].values()) >= RECORDS // 3  # there was unsaved work when the partitions moved
    assert seen == {0: list(range(RECORDS // 2)), 1: list(range(RECORDS // 2))}
