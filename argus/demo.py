"""`argus demo`: a fresh local broker, a serving worker, NAB and synthetic replays, a camera's
clips with injected anomalies, live alerts, and at the end the alerts evaluated against the
labels (`argus evaluate` on the demo's files)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

from argus.config import load_config
from streams.alert_feed import follow_alerts
from streams.alerts import Alert
from streams.broker import LocalBroker, free_port_pair
from streams.kafka_clients import ensure_topics, group_lag, make_producer
from streams.replay import collect_csv_series, interleave, nab_labels, publish, publish_clips
from streams.synthetic import make_cluster
from video.camera_feed import VIDEO_DIR, make_feed
from video.decode import decode_clip

FULL = dict(nodes=16, length=3000, nab_series=None)
SHORT = dict(nodes=4, length=1500, nab_series=1)
CAMERA = VIDEO_DIR / "one-by-one-person-detection.mp4"  # 139 s of a fixed camera: 69 two-second clips
SPLICED = VIDEO_DIR / "car-detection.mp4"  # another scene, spliced into some of its clips


def run_demo(out: Path, nab: Path, short: bool = False, port: int = 0) -> int:
    """Run the demo; leave alerts.jsonl, labels.json and the config in ``out``. Returns 0."""
    plan = SHORT if short else FULL
    out.mkdir(parents=True, exist_ok=True)
    for previous in ("broker", "state"):  # every demo starts from an empty broker and no state
        shutil.rmtree(out / previous, ignore_errors=True)
    broker = LocalBroker(out / "broker", port or free_port_pair())
    print(f"starting a local Kafka broker at {broker.bootstrap} ...", flush=True)
    broker.start()
    serve = None
    try:
        config_file = out / "argus.yaml"
        config_file.write_text(yaml.safe_dump({
            "kafka": {"bootstrap_servers": broker.bootstrap}, "state_dir": str(out / "state"),
            "group_id": "argus-demo",
            "video": {"enabled": CAMERA.is_file(), "roots": [str(out / "clips")], "keyframe_dir": str(out / "keyframes")},
        }))
        config = load_config(config_file)
        t = config.topics
        ensure_topics(config.kafka, {name: t.partitions for name in (t.series, t.clips, t.alerts, t.dead_letter)})
        serve = subprocess.Popen([sys.executable, "-m", "argus", "serve", "--config", str(config_file)],
                                 stderr=open(out / "serve.log", "w"))
        alerts: dict[str, Alert] = {}
        stop_printing = threading.Event()

        def print_alerts() -> None:
            for alert in follow_alerts(config.kafka, t.alerts, True, idle_timeout_s=None):
                if alert.status == "open":
                    print("ALERT", alert.describe(), flush=True)
                alerts[alert.id] = alert
                if stop_printing.is_set():
                    return

        threading.Thread(target=print_alerts, daemon=True).start()

        producer = make_producer(config.kafka)
        cluster = make_cluster(plan["nodes"], plan["length"], anomalies_per_node=1, seed=7)
        labels = dict(cluster.labels)
        print(f"replaying a synthetic cluster: {plan['nodes']} nodes x {len(cluster.metrics)} metrics, "
              f"{plan['length']} readings each, one injected anomaly per node", flush=True)
        recorded: dict[str, list[tuple[float, float]]] = {}
        publish(producer, t.series, _recording(cluster.readings(), recorded), plan["nodes"] * plan["length"])
        nab_dir = nab / "data" / "realKnownCause"
        if nab_dir.is_dir():
            series = collect_csv_series([nab / "data"])
            chosen = sorted(k for k in series if k.startswith("realKnownCause/"))[: plan["nab_series"]]
            series = {k: series[k] for k in chosen}
            print(f"replaying {len(series)} NAB series: {', '.join(series)}", flush=True)
            publish(producer, t.series, _recording(interleave(series), recorded), sum(len(s) for s in series.values()))
            labels.update(nab_labels(series, nab / "labels" / "combined_windows.json"))
        else:
            print(f"NAB data not found at {nab}; replaying the synthetic cluster only (pass --nab DIR)")
        if config.video.enabled:
            _replay_camera(producer, config, out, labels, recorded)
        else:
            print(f"camera clips not found at {CAMERA}; no camera part")
        producer.close()

        print("waiting for argus serve to process everything ...", flush=True)
        while (group_lag(config.kafka, config.group_id, t.series)
               or (config.video.enabled and group_lag(config.kafka, f"{config.group_id}.video", t.clips))):
            if serve.poll() is not None:
                raise RuntimeError(f"argus serve exited with code {serve.returncode}; see {out / 'serve.log'}")
            time.sleep(1)
        time.sleep(2)
        stop_printing.set()
        (out / "alerts.jsonl").write_text("".join(a.to_json().decode() + "\n" for a in alerts.values()))
        (out / "labels.json").write_text(json.dumps(labels, indent=1))
        _write_series(out / "series", recorded)
        _summary(alerts.values(), labels)
        _evaluate(out)
        print(f"alerts: {out / 'alerts.jsonl'}  labels: {out / 'labels.json'}  series: {out / 'series'}  "
              f"report: {out / 'report.html'}  worker log: {out / 'serve.log'}")
    finally:
        if serve is not None and serve.poll() is None:
            serve.send_signal(signal.SIGTERM)
            serve.wait(timeout=60)
        broker.stop()
        print("broker stopped", flush=True)
    return 0


def _replay_camera(producer, config, out: Path, labels: dict, recorded: dict) -> None:
    """A real camera's clips, by URI under ``out/clips``, with a labelled anomaly (scene splice,
    black-out, shake) in every 4th clip after the first 30; its frames' brightness is kept as
    the camera's series for the report."""
    v = config.video
    feed = make_feed(CAMERA, "camera-entrance", seconds=2.0, fps=v.sample_fps, width=v.width, height=v.height,
                     normal_clips=30, anomaly_every=4, other=SPLICED)
    print(f"replaying camera {feed.camera}: {len(feed.clips)} clips of 2 s ({CAMERA.name}, CC BY 4.0), "
          f"{len(feed.labels)} injected anomalies", flush=True)
    publish_clips(producer, config.topics.clips, feed.clips, uri_dir=out / "clips")
    labels[feed.camera] = [[start, end] for start, end, _ in feed.labels]
    rows = recorded.setdefault(feed.camera, [])
    for clip in feed.clips:
        decoded = decode_clip(clip.data)
        rows += [(clip.start + float(t), float(level)) for t, level in
                 zip(decoded.timestamps, decoded.frames.mean(axis=(1, 2, 3)))]


def _recording(readings, into: dict[str, list[tuple[float, float]]]):
    """Pass readings through, keeping each stream's timestamps and first value for the report."""
    for stream, ts, values in readings:
        into.setdefault(stream, []).append((ts, next(iter(values.values()))))
        yield stream, ts, values


def _write_series(folder: Path, recorded: dict[str, list[tuple[float, float]]]) -> None:
    """One timestamp,value CSV per stream (a node's first metric): the time axis of its alerts."""
    shutil.rmtree(folder, ignore_errors=True)
    for stream, rows in recorded.items():
        path = folder / (stream if stream.endswith(".csv") else f"{stream}.csv")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("timestamp,value\n" + "".join(f"{ts!r},{value!r}\n" for ts, value in rows))


def _evaluate(out: Path) -> None:
    """The event-level metrics of the alerts in a table, and the HTML report with plots."""
    from argus.cli import main

    common = ["evaluate", "--labels", str(out / "labels.json"), "--alerts", str(out / "alerts.jsonl"),
              "--series", str(out / "series"), "--quiet"]
    main([*common, "--metrics", "event_recall", "detection_delay", "affiliation_precision", "affiliation_recall",
          "pate_f1", "range_f1"])
    main([*common, "--format", "html", "--out", str(out / "report.html")])


def _summary(alerts, labels: dict[str, list[list[float]]]) -> None:
    by_source: dict[str, list[Alert]] = {}
    for a in alerts:
        by_source.setdefault(a.source, []).append(a)
    events = detected = false_alarms = 0
    for source, intervals in labels.items():
        for start, end in intervals:
            events += 1
            detected += any(a.start <= end and a.end >= start for a in by_source.get(source, []))
    for source, found in by_source.items():
        for a in found:
            false_alarms += not any(a.start <= end and a.end >= start for start, end in labels.get(source, []))
    print(f"summary: {detected} of {events} labelled anomalies raised an overlapping alert; "
          f"{false_alarms} alerts fell outside every labelled interval")
