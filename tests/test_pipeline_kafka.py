"""The series pipeline against a real broker: detection, dead letters, crash recovery, demo."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter

import pytest
from kafka import TopicPartition

from argus.cli import main
from argus.config import load_config
from argus.wiring import build_pipeline
from conftest import start_serve, write_config
from detectors.chronos_models import save_random_model
from streams.broker import LocalBroker, free_port_pair
from streams.alert_feed import follow_alerts
from streams.deadletter import read_headers
from streams.kafka_clients import ensure_topics, make_consumer, make_producer, wait_until_committed
from streams.records import encode_reading
from streams.replay import publish
from streams.synthetic import make_cluster

pytestmark = pytest.mark.kafka


def _config(tmp_path, overrides):
    config = load_config(write_config(tmp_path / "argus.yaml", overrides))
    t = config.topics
    ensure_topics(config.kafka, {t.series: t.partitions, t.alerts: t.partitions, t.dead_letter: t.partitions})
    return config


def _run_until(pipeline, records: int, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while pipeline.counters.records < records and time.monotonic() < deadline:
        batch = pipeline.consumer.poll(timeout_ms=200)
        pipeline.process(batch)
    pipeline.checkpoint()
    assert pipeline.counters.records == records


def _read_all(config, topic: str, idle_s: float = 3.0) -> list:
    consumer = make_consumer(config.kafka, consumer_timeout_ms=int(idle_s * 1000))
    consumer.assign([TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)])
    records = list(consumer)
    consumer.close()
    return records


@pytest.mark.parametrize("detector", ["halfspace", "mixture"])
def test_injected_anomaly_raises_one_overlapping_alert_and_clean_stream_none(tmp_path, argus_config, detector):
    config = _config(tmp_path, {**argus_config, "detector": {"name": detector}})
    cluster = make_cluster(nodes=2, length=1500, anomalies_per_node=0, seed=4)
    start, end = 1000, 1010  # node-000's CPU jumps by 40 points for 10 readings; node-001 stays clean
    cluster.values[0, 0, start:end] += 40
    label = (cluster.timestamps[start], cluster.timestamps[end - 1])
    readings = list(cluster.readings())
    publish(make_producer(config.kafka), config.topics.series, readings, progress=False)
    pipeline = build_pipeline(config)
    _run_until(pipeline, len(readings))
    alerts = {a.id: a for a in follow_alerts(config.kafka, config.topics.alerts, idle_timeout_s=3)}
    overlapping = [a for a in alerts.values() if a.source == "node-000" and a.start <= label[1] and a.end >= label[0]]
    assert len(overlapping) == 1, alerts
    assert overlapping[0].explanation["channel"] == "cpu"
    assert list(overlapping[0].explanation["channels"])[0] == "cpu"  # every channel, the driver first
    assert not [a for a in alerts.values() if a.source == "node-001"]
    assert pipeline.counters.scored == len(readings) - 2 * (config.detector.window - 1)


def test_a_chronos_embedder_from_a_local_folder_scores_every_window(tmp_path, argus_config):
    folder = save_random_model("bolt", "test", tmp_path / "bolt")
    config = _config(tmp_path, {**argus_config, "detector": {"embedder": "chronos", "chronos_model": str(folder)}})
    cluster = make_cluster(nodes=3, length=300, anomalies_per_node=0, seed=2)
    readings = list(cluster.readings())
    publish(make_producer(config.kafka), config.topics.series, readings, progress=False)
    pipeline = build_pipeline(config)
    _run_until(pipeline, len(readings))
    assert pipeline.counters.scored == len(readings) - 3 * (config.detector.window - 1)


def test_malformed_records_go_to_the_dead_letter_topic_with_reasons(tmp_path, argus_config):
    config = _config(tmp_path, argus_config)
    bad = {
        b"not json": "not_json",
        b'{"ts": 1}': "missing_field",
        b'{"ts": 2, "value": "x"}': "wrong_type",
        b'{"ts": 3, "value": NaN}': "non_finite",
        b'{"ts": 4, "value": 1, "pad": "' + b"x" * 2_000_000 + b'"}': "oversize",
    }
    producer = make_producer(config.kafka)
    sent = 0
    for i in range(40):  # good readings around the bad ones, on one stream
        producer.send(config.topics.series, key=b"node", value=encode_reading(100.0 + i, {"value": float(i % 7)}))
        sent += 1
        if i == 20:
            for value in bad:
                producer.send(config.topics.series, key=b"node", value=value)
            producer.send(config.topics.series, key=None, value=encode_reading(1.0, {"value": 1.0}))
            producer.send(config.topics.series, key=b"node", value=encode_reading(50.0, {"value": 1.0}))  # late
            producer.send(config.topics.series, key=b"node", value=encode_reading(120.0, {"value": 1.0}))  # duplicate
            sent += len(bad) + 3
    producer.flush()
    pipeline = build_pipeline(config)
    _run_until(pipeline, sent)
    letters = [read_headers(r.headers) for r in _read_all(config, config.topics.dead_letter)]
    reasons = sorted(h["argus.reason"] for h in letters)
    assert reasons == sorted([*bad.values(), "missing_key", "out_of_order", "duplicate_timestamp"])
    assert all(h["argus.source.topic"] == config.topics.series and h["argus.source.offset"].isdigit() for h in letters)
    assert pipeline.counters.readings == 40  # every good reading around them was processed


def _cluster_readings() -> list:
    return list(make_cluster(nodes=4, length=2500, anomalies_per_node=1, seed=11).readings())


def _reference_alerts(tmp_path, argus_config, readings) -> Counter:
    """Alert id -> alert records (opened, closed) of an uninterrupted in-process run."""
    (tmp_path / "ref").mkdir()
    topics = argus_config["topics"]
    reference = _config(tmp_path / "ref", {
        **argus_config, "group_id": argus_config["group_id"] + "-ref", "state_dir": str(tmp_path / "ref-state"),
        "topics": {**topics, "series": topics["series"] + "-ref", "alerts": topics["alerts"] + "-ref"},
    })
    publish(make_producer(reference.kafka), reference.topics.series, readings, progress=False)
    _run_until(build_pipeline(reference), len(readings))
    expected = Counter(a.id for a in follow_alerts(reference.kafka, reference.topics.alerts, idle_timeout_s=3))
    assert expected
    return expected


def _stop(serve) -> None:
    serve.send_signal(signal.SIGTERM)
    serve.wait(timeout=60)


def _assigned(log_file) -> list[str]:
    """The partitions a serve process was last assigned, from its log."""
    lines = [line for line in log_file.read_text().splitlines() if "assigned partitions:" in line]
    last = lines[-1].split("assigned partitions:")[1].strip() if lines else "none"
    return [] if last == "none" else last.split(", ")


def test_kill_9_then_restart_loses_nothing_and_repeats_alerts_with_the_same_ids(tmp_path, argus_config):
    readings = _cluster_readings()
    expected = _reference_alerts(tmp_path, argus_config, readings)
    config = _config(tmp_path, argus_config)
    config_file = tmp_path / "argus.yaml"
    serve = start_serve(config_file, tmp_path / "serve.log")
    producer = make_producer(config.kafka)
    publish(producer, config.topics.series, readings[: len(readings) // 2], progress=False)
    time.sleep(6)
    os.kill(serve.pid, signal.SIGKILL)  # mid-stream, no goodbye
    serve.wait()
    publish(producer, config.topics.series, readings[len(readings) // 2:], progress=False)
    serve = start_serve(config_file, tmp_path / "serve.log")
    try:
        wait_until_committed(config.kafka, config.group_id, config.topics.series)
    finally:
        _stop(serve)
    seen = [a.id for a in follow_alerts(config.kafka, config.topics.alerts, idle_timeout_s=3)]
    assert set(seen) == set(expected), (tmp_path / "serve.log").read_text()[-2000:]


def test_two_workers_split_the_partitions_and_the_survivor_takes_over(tmp_path, argus_config):
    readings = _cluster_readings()
    expected = _reference_alerts(tmp_path, argus_config, readings)
    config = _config(tmp_path, argus_config)
    config_file = tmp_path / "argus.yaml"
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    first, second = (start_serve(config_file, log) for log in logs)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not all(_assigned(log) for log in logs):
            time.sleep(0.5)
        split = [_assigned(log) for log in logs]
        assert all(split) and not set(split[0]) & set(split[1]), split
        producer = make_producer(config.kafka)
        publish(producer, config.topics.series, readings[: len(readings) // 2], progress=False)
        time.sleep(4)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        publish(producer, config.topics.series, readings[len(readings) // 2:], progress=False)
        wait_until_committed(config.kafka, config.group_id, config.topics.series)
        assert sorted(_assigned(logs[1])) == sorted(split[0] + split[1])  # the survivor owns all
    finally:
        _stop(second)
    ends = make_consumer(config.kafka).end_offsets([TopicPartition(config.topics.series, p) for p in range(2)])
    assert all(ends.values())  # both partitions carried streams
    seen = {a.id for a in follow_alerts(config.kafka, config.topics.alerts, idle_timeout_s=3)}
    assert seen == set(expected), logs[1].read_text()[-2000:]


def test_serve_resumes_by_itself_after_the_broker_restarts(tmp_path, argus_config):
    readings = _cluster_readings()
    expected = _reference_alerts(tmp_path, argus_config, readings)
    broker = LocalBroker(tmp_path / "own-broker", free_port_pair())
    broker.start()
    try:
        config = _config(tmp_path, {**argus_config, "kafka": {"bootstrap_servers": broker.bootstrap}})
        serve = start_serve(tmp_path / "argus.yaml", tmp_path / "serve.log")
        producer = make_producer(config.kafka)  # it too must ride out the restart
        try:
            publish(producer, config.topics.series, readings[: len(readings) // 2], progress=False)
            wait_until_committed(config.kafka, config.group_id, config.topics.series)
            broker.stop()
            time.sleep(3)
            assert serve.poll() is None
            broker.start()
            publish(producer, config.topics.series, readings[len(readings) // 2:], progress=False)
            wait_until_committed(config.kafka, config.group_id, config.topics.series)
            assert serve.poll() is None
        finally:
            producer.close()
            _stop(serve)
        seen = {a.id for a in follow_alerts(config.kafka, config.topics.alerts, idle_timeout_s=3)}
    finally:
        broker.stop()
    assert seen == set(expected), (tmp_path / "serve.log").read_text()[-2000:]


def test_rewind_replays_everything_since_the_last_checkpoint_with_the_same_alert_ids(tmp_path, argus_config):
    readings = _cluster_readings()
    expected = _reference_alerts(tmp_path, argus_config, readings)
    config = _config(tmp_path, argus_config)
    publish(make_producer(config.kafka), config.topics.series, readings, progress=False)
    pipeline = build_pipeline(config)
    deadline = time.monotonic() + 120
    while pipeline.counters.records < len(readings) and time.monotonic() < deadline:
        pipeline.process(pipeline.consumer.poll(timeout_ms=200))
    pipeline.producer.flush()
    pipeline.rewind()  # as after a failed send: back to each partition's checkpoint (or its start)
    owned = list(pipeline.states)
    ends = pipeline.consumer.end_offsets(owned)
    replayed = sum(ends[tp] - pipeline.consumer.position(tp) for tp in owned)
    assert replayed > 0
    _run_until(pipeline, len(readings) + replayed)
    alerts = Counter(a.id for a in follow_alerts(config.kafka, config.topics.alerts, idle_timeout_s=3))
    assert set(alerts) == set(expected)  # repeats carry the same ids, and nothing is missing
    assert all(alerts[alert] >= n for alert, n in expected.items())


def test_demo_runs_end_to_end(tmp_path, capsys):
    assert main(["demo", "--short", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "ALERT" in out and "summary:" in out and "broker stopped" in out
    assert "event_recall" in out and "overall" in out  # the alerts evaluated against the labels
    assert (tmp_path / "demo" / "report.html").read_text().count("<img") >= 2
    alerts = [json.loads(line) for line in (tmp_path / "demo" / "alerts.jsonl").read_text().splitlines()]
    labels = json.loads((tmp_path / "demo" / "labels.json").read_text())
    assert alerts and set(labels) >= {"node-000", "node-003"}
    assert {a["source"] for a in alerts} & set(labels)
