"""The series record: parsing and validation of one Kafka message into readings.

A message's key is the stream id (e.g. a node name). Its value is UTF-8 JSON in one of
three shapes::

    {"ts": 1700000000.5, "value": 41.2}                      one reading, one value
    {"ts": "2024-01-01T00:00:00Z", "values": {"cpu": 0.4}}   one reading, named values
    {"readings": [{"ts": ..., "value": ...}, ...]}           a batch of readings

``ts`` is epoch seconds (int or float) or an ISO-8601 / ``YYYY-MM-DD HH:MM:SS`` string
(read as UTC when it carries no offset). Anything else raises :class:`RecordError`
with a machine-readable ``reason`` and a human ``detail``; the pipeline dead-letters it.

>>> parse_series_message(b"node-1", b'{"ts": 10, "value": 2.5}', max_bytes=1024)
[Reading(stream_id='node-1', ts=10.0, values={'value': 2.5})]
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import orjson

# Reasons a message or reading is rejected (the dead-letter header ``argus.reason``).
NOT_JSON = "not_json"
MISSING_KEY = "missing_key"
MISSING_FIELD = "missing_field"
WRONG_TYPE = "wrong_type"
NON_FINITE = "non_finite"
OVERSIZE = "oversize"
OUT_OF_ORDER = "out_of_order"
DUPLICATE_TIMESTAMP = "duplicate_timestamp"
CHANNEL_MISMATCH = "channel_mismatch"

DEFAULT_CHANNEL = "value"


class RecordError(ValueError):
    """A message or reading that cannot be scored; ``reason`` is one of the constants above."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Reading:
    """One timestamped observation of one stream: channel name -> value."""

    stream_id: str
    ts: float
    values: dict[str, float]


def parse_timestamp(raw: object) -> float:
    """Epoch seconds from a number or an ISO-8601 string; RecordError otherwise."""
    if isinstance(raw, bool):
        raise RecordError(WRONG_TYPE, f"'ts' must be a number or a date string, got {raw!r}")
    if isinstance(raw, (int, float)):
        if not math.isfinite(raw):
            raise RecordError(NON_FINITE, f"'ts' is {raw!r}")
        return float(raw)
    if isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise RecordError(WRONG_TYPE, f"'ts' {raw!r} is not an ISO-8601 date") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.timestamp()
    raise RecordError(WRONG_TYPE, f"'ts' must be a number or a date string, got {type(raw).__name__}")


def _parse_value(name: str, raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise RecordError(WRONG_TYPE, f"value {name!r} must be a number, got {type(raw).__name__}")
    if not math.isfinite(raw):
        raise RecordError(NON_FINITE, f"value {name!r} is {raw!r}")
    return float(raw)


def _parse_reading(stream_id: str, body: object) -> Reading:
    if not isinstance(body, dict):
        raise RecordError(WRONG_TYPE, f"a reading must be a JSON object, got {type(body).__name__}")
    if "ts" not in body:
        raise RecordError(MISSING_FIELD, "a reading needs 'ts'")
    ts = parse_timestamp(body["ts"])
    if "value" in body and "values" in body:
        raise RecordError(WRONG_TYPE, "a reading has either 'value' or 'values', not both")
    if "value" in body:
        return Reading(stream_id, ts, {DEFAULT_CHANNEL: _parse_value(DEFAULT_CHANNEL, body["value"])})
    if "values" not in body:
        raise RecordError(MISSING_FIELD, "a reading needs 'value' or 'values'")
    named = body["values"]
    if not isinstance(named, dict) or not named:
        raise RecordError(WRONG_TYPE, "'values' must be a non-empty object of name -> number")
    return Reading(stream_id, ts, {str(k): _parse_value(str(k), v) for k, v in sorted(named.items())})


_NUMBER = (int, float)  # exact types: bool is an int subclass and is refused below
_NUMBER_TYPES = frozenset(_NUMBER)


def _load_json(value: bytes) -> object:
    """orjson for speed; the standard parser for what orjson refuses but Python's JSON reads
    (NaN, Infinity, huge integers), so those get their precise reason, not ``not_json``."""
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(value.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordError(NOT_JSON, f"the value is not JSON ({exc})") from None


def parse_series_message(key: bytes | None, value: bytes | None, max_bytes: int) -> list[Reading]:
    """All readings of one message, or RecordError naming the first thing wrong with it."""
    if not key:
        raise RecordError(MISSING_KEY, "the message has no key (the stream id)")
    try:
        stream_id = key.decode("utf-8")
    except UnicodeDecodeError:
        raise RecordError(MISSING_KEY, "the key is not UTF-8 text") from None
    size = len(value or b"")
    if size > max_bytes:
        raise RecordError(OVERSIZE, f"the value is {size} bytes, over the limit of {max_bytes}")
    body = _load_json(value or b"")
    if type(body) is dict and len(body) == 2:  # the common {"ts": number, "value": number}, checked inline
        ts, number = body.get("ts"), body.get("value")
        if type(ts) in _NUMBER and type(number) in _NUMBER and math.isfinite(ts) and math.isfinite(number):
            return [Reading(stream_id, float(ts), {DEFAULT_CHANNEL: float(number)})]
    if isinstance(body, dict) and "readings" in body:
        batch = body["readings"]
        if not isinstance(batch, list) or not batch:
            raise RecordError(WRONG_TYPE, "'readings' must be a non-empty list")
        return [_parse_reading(stream_id, item) for item in batch]
    return [_parse_reading(stream_id, body)]


def parse_simple_batch(keys: list, values: list, max_bytes: int) -> tuple[list[str], np.ndarray, np.ndarray] | None:
    """(stream ids, ts, values) of messages that are all one ``{"ts": number, "value": number}``
    reading each, with a key, in one JSON parse; None if any message is anything else (then
    ``parse_series_message`` each, to get every reading or the reason it is refused)."""
    if None in values or max(map(len, values), default=0) > max_bytes or None in keys or b"" in keys:
        return None
    try:
        docs = orjson.loads(b"[" + b",".join(values) + b"]")
        stream_ids = [key.decode("utf-8") for key in keys]
    except (orjson.JSONDecodeError, UnicodeDecodeError):
        return None
    # one object per message (a message holding "1, 2" or "" changes the count or the syntax),
    # exactly the two keys, numbers that are not bools
    if len(docs) != len(values) or set(map(type, docs)) != {dict} or set(map(len, docs)) != {2}:
        return None
    try:
        ts, readings = [doc["ts"] for doc in docs], [doc["value"] for doc in docs]
    except KeyError:
        return None
    if not set(map(type, ts)) <= _NUMBER_TYPES or not set(map(type, readings)) <= _NUMBER_TYPES:
        return None
    ts, readings = np.array(ts, dtype=np.float64), np.array(readings, dtype=np.float64)
    if not (np.isfinite(ts).all() and np.isfinite(readings).all()):
        return None
    return stream_ids, ts, readings



def encode_reading(ts: float, values: dict[str, float]) -> bytes:
    """The JSON value of a one-reading message (the inverse of the parser, for producers)."""
    if list(values) == [DEFAULT_CHANNEL]:
        return json.dumps({"ts": ts, "value": values[DEFAULT_CHANNEL]}).encode()
    return json.dumps({"ts": ts, "values": values}).encode()
