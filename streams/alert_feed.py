"""Reading alerts back from the alerts topic (for `argus alerts`, the demo and tests)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from kafka import TopicPartition

from streams.alerts import Alert
from streams.kafka_clients import make_consumer


def follow_alerts(
    connection: dict[str, Any], topic: str, from_beginning: bool = True, idle_timeout_s: float | None = None,
) -> Iterator[Alert]:
    """Alerts as they arrive, without joining a consumer group; ends after an idle timeout."""
    consumer = make_consumer(connection, auto_offset_reset="earliest" if from_beginning else "latest")
    try:
        last = time.monotonic()
        partitions = consumer.partitions_for_topic(topic)
        while not partitions:  # the topic may not exist yet; wait for it within the idle timeout
            if idle_timeout_s is not None and time.monotonic() - last >= idle_timeout_s:
                return
            time.sleep(0.2)
            partitions = consumer.partitions_for_topic(topic)
        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        while idle_timeout_s is None or time.monotonic() - last < idle_timeout_s:
            for records in consumer.poll(timeout_ms=200).values():
                for record in records:
                    last = time.monotonic()
                    yield Alert.from_json(record.value)
    finally:
        consumer.close()
