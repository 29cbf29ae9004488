"""Dead letters: a rejected record, its reason, and where it came from, as a Kafka record."""

from __future__ import annotations

from dataclasses import dataclass

REASON_HEADER = "argus.reason"
DETAIL_HEADER = "argus.detail"
TOPIC_HEADER = "argus.source.topic"
PARTITION_HEADER = "argus.source.partition"
OFFSET_HEADER = "argus.source.offset"


@dataclass(frozen=True)
class DeadLetter:
    """A record that could not be scored, kept with the reason it was rejected."""

    key: bytes | None
    value: bytes | None
    reason: str
    detail: str
    topic: str
    partition: int
    offset: int

    def headers(self) -> list[tuple[str, bytes]]:
        """Kafka headers carrying the reason and the source coordinates."""
        return [
            (REASON_HEADER, self.reason.encode()),
            (DETAIL_HEADER, self.detail.encode()),
            (TOPIC_HEADER, self.topic.encode()),
            (PARTITION_HEADER, str(self.partition).encode()),
            (OFFSET_HEADER, str(self.offset).encode()),
        ]


def read_headers(headers: list[tuple[str, bytes]]) -> dict[str, str]:
    """The argus.* headers of a dead-letter record as a plain dict."""
    return {k: v.decode() for k, v in headers if k.startswith("argus.")}
