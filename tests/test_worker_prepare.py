"""The worker with a processor that prepares ahead (as the camera processor decodes ahead),
against a real broker: each poll is prepared before the poll before it is processed, every
record is processed once, in offset order, and the offsets committed at the end cover them all."""

from __future__ import annotations

import pytest
from streams.checkpoints import CheckpointStore
from streams.kafka_clients import ensure_topics, make_consumer, make_producer, wait_until_committed
from streams.worker import Outbox, PartitionedWorker

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
    def __init__(self):
        self.log: list[tuple[str, int, int]] = []  # (step, partition, first offset)
        self.prepared = 0  # records prepared

    def new_state(self) -> Seen:
        return Seen()

    def prepare(self, records: list) -> list[int]:
        self.log.append(("prepare", records[0].partition, records[0].offset))
        self.prepared += len(records)
        return [record.offset for record in records]

    def process(self, state: Seen, records: list, prepared: list[int]) -> None:
        assert prepared == [record.offset for record in records]  # the records' own preparation
        self.log.append(("process", records[0].partition, records[0].offset))
        state.offsets += prepared


def test_a_preparing_processor_has_each_poll_prepared_before_the_one_before_is_processed(tmp_path, argus_config):
    topic, group = argus_config["topics"]["series"], argus_config["group_id"]
    connection = argus_config["kafka"]
    ensure_topics(connection, {topic: 2, argus_config["topics"]["alerts"]: 1, argus_config["topics"]["dead_letter"]: 1})
    producer = make_producer(connection)
    for i in range(RECORDS):
        producer.send(topic, key=b"k", value=str(i).encode(), partition=i % 2)
    producer.flush()

    processor = PreparingProcessor()
    worker = PartitionedWorker(make_consumer(connection, group_id=group), Outbox(producer, "unused", "unused"),
                               topic, processor, CheckpointStore(tmp_path / "state", group),
                               commit_interval_s=0.2, poll_max_records=4)
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
