import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams import records as r
from streams.records import RecordError, Reading, _parse_reading, parse_series_message

LIMIT = 10_000


def parse(value: bytes, key: bytes | None = b"node-1"):
    return parse_series_message(key, value, LIMIT)


def test_single_value_and_named_values_and_batch():
    assert parse(b'{"ts": 5, "value": 1}') == [Reading("node-1", 5.0, {"value": 1.0})]
    assert parse(b'{"ts": "1970-01-01T00:00:10Z", "values": {"mem": 2, "cpu": 0.5}}') == [
        Reading("node-1", 10.0, {"cpu": 0.5, "mem": 2.0})
    ]
    batch = parse(b'{"readings": [{"ts": 1, "value": 1}, {"ts": "1970-01-01 00:00:02", "value": 2}]}')
    assert [x.ts for x in batch] == [1.0, 2.0]


@pytest.mark.parametrize(
    "key, value, reason",
    [
        (None, b'{"ts": 1, "value": 1}', r.MISSING_KEY),
        (b"n", b"not json", r.NOT_JSON),
        (b"n", b"\xff\xfe", r.NOT_JSON),
        (b"n", b'{"value": 1}', r.MISSING_FIELD),
        (b"n", b'{"ts": 1}', r.MISSING_FIELD),
        (b"n", b'{"ts": 1, "value": "high"}', r.WRONG_TYPE),
        (b"n", b'{"ts": 1, "value": true}', r.WRONG_TYPE),
        (b"n", b'{"ts": [1], "value": 1}', r.WRONG_TYPE),
        (b"n", b'{"ts": "yesterday", "value": 1}', r.WRONG_TYPE),
        (b"n", b'{"ts": 1, "values": {}}', r.WRONG_TYPE),
        (b"n", b'{"readings": []}', r.WRONG_TYPE),
        (b"n", b"[1, 2]", r.WRONG_TYPE),
        (b"n", b'{"ts": 1, "value": NaN}', r.NON_FINITE),
        (b"n", b'{"ts": 1, "values": {"a": Infinity}}', r.NON_FINITE),
        (b"n", b'{"ts": 1, "value": 1, "pad": "' + b"x" * LIMIT + b'"}', r.OVERSIZE),
    ],
)
def test_each_bad_message_names_its_reason(key, value, reason):
    with pytest.raises(RecordError) as info:
        parse(value, key)
    assert info.value.reason == reason
    assert info.value.detail


def test_one_bad_reading_rejects_the_whole_batch_message():
    with pytest.raises(RecordError) as info:
        parse(b'{"readings": [{"ts": 1, "value": 1}, {"ts": 2, "value": null}]}')
    assert info.value.reason == r.WRONG_TYPE


def test_encode_reading_round_trips():
    for values in ({"value": 1.5}, {"cpu": 1.0, "mem": 2.0}):
        assert parse(r.encode_reading(7.0, values)) == [Reading("node-1", 7.0, values)]


_scalars = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                     st.text(max_size=3), st.none())


@given(ts=_scalars, value=_scalars)
def test_the_fast_path_for_one_value_agrees_with_the_general_parser(ts, value):
    """{"ts", "value"} messages skip the general parser; they must get its exact outcome."""
    body = {"ts": ts, "value": value}
    raw = json.dumps(body).encode()  # NaN/Infinity written the way Python's JSON writes them
    try:
        expected = [_parse_reading("s", json.loads(raw))]
    except RecordError as exc:
        expected = exc.reason
    try:
        got = parse_series_message(b"s", raw, max_bytes=1024)
    except RecordError as exc:
        got = exc.reason
    assert got == expected
