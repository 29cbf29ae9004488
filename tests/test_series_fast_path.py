"""The batch fast path (one JSON parse and a few numpy calls per poll, verdicts only where they
can change an alert) gives exactly what message-by-message processing with every verdict
observed gives: the same windows, alerts, dead letters and state."""

from __future__ import annotations

import collections

import numpy as np
import orjson
import pytest

from argus.config import load_config
from argus.wiring import detector_factory
from streams.records import Reading, parse_simple_batch
from streams.series_pipeline import SeriesProcessor, SeriesSettings
from streams.windows import WindowStore
from streams.worker import Outbox

Record = collections.namedtuple("Record", "key value offset topic partition headers")


class _Sent:
    def failed(self) -> bool:
        return False


class _Producer:
    """An in-process producer that keeps what is sent, in order."""

    def __init__(self):
        self.sent = []

    def send(self, topic, key=None, value=None, headers=None):
        self.sent.append((topic, key, value, headers))
        return _Sent()


@pytest.mark.parametrize("seed", range(6))
def test_push_many_leaves_the_windows_push_leaves(seed):
    rng = np.random.default_rng(seed)
    length = int(rng.integers(2, 9))
    one, many = WindowStore(length), WindowStore(length)
    clock = collections.defaultdict(float)
    for _ in range(5):
        count = int(rng.integers(1, 60))
        ids = [f"s{int(i)}" for i in rng.integers(0, 6, count)]  # streams repeat, often more than L times
        ts = []
        for stream in ids:
            clock[stream] += float(rng.integers(1, 4))
            ts.append(clock[stream])
        values = rng.normal(size=count)
        expected = [one.push(Reading(s, t, {"value": v})) for s, t, v in zip(ids, ts, values)]
        windows, full = many.push_many(ids, np.array(ts), values, ("value",))
        assert full.tolist() == [w is not None for w in expected]
        for got, want in zip(windows, expected):
            if want is not None:
                np.testing.assert_array_equal(got, want)
    for a, b in zip(one.state_dict()["groups"], many.state_dict()["groups"]):
        assert a["ids"] == b["ids"]
        for name in ("windows", "seen", "last_ts"):
            np.testing.assert_array_equal(a[name], b[name])


def test_push_many_refuses_a_late_reading_and_changes_nothing():
    store = WindowStore(3)
    store.push(Reading("a", 5.0, {"value": 1.0}))
    before = store.state_dict()
    assert store.push_many(["b", "a"], np.array([1.0, 4.0]), np.array([1.0, 2.0]), ("value",)) is None
    assert store.push_many(["a", "a"], np.array([7.0, 7.0]), np.array([1.0, 2.0]), ("value",)) is None
    store.push(Reading("c", 1.0, {"x": 1.0, "y": 2.0}))
    assert store.push_many(["c"], np.array([2.0]), np.array([1.0]), ("value",)) is None
    assert store.seen("b") == 0 and store.seen("a") == 1
    np.testing.assert_array_equal(store.state_dict()["groups"][0]["windows"], before["groups"][0]["windows"])


@pytest.mark.parametrize("value", [b'{"ts": true, "value": 1}', b'{"ts": "2024-01-01", "value": 1}',
                                   b'{"ts": 1, "value": 1, "x": 2}', b'{"ts": 1, "value": NaN}', b"1, 2",
                                   b'{"ts": 1, "values": {"value": 1}}', b"", b'{"ts": 1, "value": "2"}'])
def test_a_message_of_another_shape_sends_the_batch_message_by_message(value):
    good = b'{"ts": 1, "value": 2.5}'
    assert parse_simple_batch([b"a", b"b"], [good, good], 1024) is not None
    assert parse_simple_batch([b"a", b"b"], [good, value], 1024) is None
    assert parse_simple_batch([b"a", None], [good, good], 1024) is None
    assert parse_simple_batch([b"a", b"b"], [good, good], 10) is None  # over max_record_bytes


def _records(seed: int) -> list[Record]:
    """Noisy one-value readings of 30 streams with spikes, and now and then a bad message."""
    rng = np.random.default_rng(seed)
    out = []
    for t in range(450):
        for s in range(30):
            value = 50 + rng.normal() + (25.0 if rng.random() < 0.003 else 0.0)
            body = {"ts": 1.7e9 + 10 * t, "value": value}
            roll = rng.random()
            if roll < 0.002:
                body = {"ts": 1.7e9 + 10 * t - 5000, "value": value}  # out of order
            elif roll < 0.003:
                body = {"ts": 1.7e9 + 10 * t, "value": "high"}
            out.append(Record(f"node-{s}".encode(), orjson.dumps(body), len(out), "series", 0, []))
    return out


def _observe_every_verdict(processor: SeriesProcessor):
    """The plain form of ``_judge_run``: every window's verdict goes to the tracker."""
    def judge_run(state, stream_ids, timestamps, channels, windows):
        for stream_id, ts, verdict in zip(stream_ids, timestamps, state.detector.judge(stream_ids, channels, windows)):
            alert = state.tracker.observe(stream_id, ts, verdict)
            if alert is not None:
                processor.outbox.alert(alert)
        processor.outbox.counters.scored += len(stream_ids)
    return judge_run


def _run(records: list[Record], fast: bool, poll: int):
    producer = _Producer()
    processor = SeriesProcessor(SeriesSettings(), detector_factory(load_config(None, {"threshold.warmup": 100})),
                                Outbox(producer, "alerts", "dead"))
    if not fast:  # the reference: message by message, every verdict observed
        processor._process_simple = lambda state, batch: False
        processor._judge_run = _observe_every_verdict(processor)
    state = processor.new_state()
    for start in range(0, len(records), poll):
        processor.process(state, records[start:start + poll])
    return producer.sent, state.state_dict(), processor.outbox.counters


@pytest.mark.parametrize("poll", [7, 200, 5000])
def test_the_fast_path_publishes_exactly_what_message_by_message_does(poll):
    records = _records(poll)
    fast_sent, fast_state, fast_counts = _run(records, True, poll)
    slow_sent, slow_state, slow_counts = _run(records, False, poll)
    assert fast_sent == slow_sent
    assert [s for s in fast_sent if s[0] == "alerts"] and [s for s in fast_sent if s[0] == "dead"]
    assert (fast_counts.readings, fast_counts.scored) == (slow_counts.readings, slow_counts.scored)
    np.testing.assert_array_equal(fast_state["windows"]["groups"][0]["windows"],
                                  slow_state["windows"]["groups"][0]["windows"])
