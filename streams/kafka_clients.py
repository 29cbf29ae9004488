"""kafka-python clients with Argus's delivery settings, and the user's connection settings.

Connection settings (bootstrap servers, TLS, SASL, ...) are kafka-python's own option names,
passed through unchanged, so a user's secured cluster works as it does with kafka-python.
"""

from __future__ import annotations

import time
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

# Large enough for 10 MB video clips with headroom; the broker and topics are set to match.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024

_CLIENT_KEYS = {
    "consumer": set(KafkaConsumer.DEFAULT_CONFIG),
    "producer": set(KafkaProducer.DEFAULT_CONFIG),
    "admin": set(KafkaAdminClient.DEFAULT_CONFIG),
}
KNOWN_CONNECTION_KEYS = set().union(*_CLIENT_KEYS.values())


def _for_client(kind: str, connection: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in connection.items() if k in _CLIENT_KEYS[kind]}


def make_producer(connection: dict[str, Any], **overrides: Any) -> KafkaProducer:
    """An idempotent producer that waits for all in-sync replicas."""
    settings = dict(acks="all", enable_idempotence=True, linger_ms=2, max_request_size=MAX_MESSAGE_BYTES)
    settings.update(_for_client("producer", connection))
    settings.update(overrides)
    return KafkaProducer(**settings)


def make_consumer(connection: dict[str, Any], *topics: str, **overrides: Any) -> KafkaConsumer:
    """A consumer that never commits on its own and can fetch the largest messages; it refreshes
    metadata every 30 s, so partitions added to a topic join the group's assignment soon."""
    settings = dict(
        enable_auto_commit=False, auto_offset_reset="earliest", metadata_max_age_ms=30_000,
        max_partition_fetch_bytes=MAX_MESSAGE_BYTES, fetch_max_bytes=4 * MAX_MESSAGE_BYTES,
    )
    settings.update(_for_client("consumer", connection))
    settings.update(overrides)
    return KafkaConsumer(*topics, **settings)


def ensure_topics(connection: dict[str, Any], topics: dict[str, int]) -> None:
    """Create the topics (name -> partitions) that do not exist yet, with the raised size limit."""
    admin = KafkaAdminClient(**_for_client("admin", connection))
    try:
        missing = [name for name in topics if name not in set(admin.list_topics())]
        for name in missing:
            try:
                admin.create_topics([NewTopic(name, topics[name], 1, topic_configs={"max.message.bytes": str(MAX_MESSAGE_BYTES)})])
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()


def group_lag(connection: dict[str, Any], group_id: str, topic: str) -> int:
    """Records of the topic that the consumer group has not committed yet."""
    consumer = make_consumer(connection, group_id=group_id)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        ends = consumer.end_offsets(parts)
        return sum(max(0, ends[tp] - (consumer.committed(tp) or 0)) for tp in parts)
    finally:
        consumer.close()


def wait_until_committed(connection: dict[str, Any], group_id: str, topic: str, timeout_s: float = 180) -> None:
    """Block until the group has committed every record of the topic, or raise TimeoutError."""
    deadline = time.monotonic() + timeout_s
    while group_lag(connection, group_id, topic):
        if time.monotonic() > deadline:
            raise TimeoutError(f"group {group_id} did not commit all of {topic} within {timeout_s:.0f}s")
        time.sleep(0.5)
