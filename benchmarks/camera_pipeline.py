"""Cameras per machine and camera alert latency of `argus serve`, weight-free encoder, CPU.

    .venv/bin/python benchmarks/camera_pipeline.py [--cameras 50] [--clips 20] [--live-seconds 40]

A real camera's footage (one-by-one-person-detection.mp4, 768x432) is published as 2-second
clips at 5 frames/s, full size (serve samples every frame and resizes to 160x96 on decode), as
``--cameras`` cameras with ids of their own; every 4th clip after the 30th carries an injected
anomaly. `argus serve` runs as its own process, series and camera workers both.

1. Throughput: once serve is ready, ``--clips`` clips per camera are published at once (a
   backlog), timed from the start of publishing to the commit of the last clip. Cameras sustained = clips/s x 2 s (each camera
   sends a clip every 2 s). Side by side, in this process: decoding the same clips alone with
   decord, one thread (what decoding by itself would sustain).
2. Latency: after 30 warm clips per camera, each camera sends a clip every 2 s in real time for
   ``--live-seconds`` (stamped as just ended); latency = the moment a camera alert is read from
   the alerts topic - the moment its clip was sent.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import bench_config, broker, start_serve  # noqa: E402
from streams.alert_feed import follow_alerts  # noqa: E402
from streams.kafka_clients import ensure_topics, group_lag, make_producer  # noqa: E402
from streams.replay import publish_clips  # noqa: E402
from video.camera_feed import VIDEO_DIR, make_feed  # noqa: E402
from video.decode import decode_clip  # noqa: E402

CLIP_SECONDS, FPS, WARM = 2.0, 5.0, 30


def _copies(clips, cameras: int, start: float) -> list:
    """Each clip once per camera, cameras interleaved in time, restamped from ``start``."""
    out = []
    for number, clip in enumerate(clips):
        for camera in range(cameras):
            out.append(dataclasses.replace(clip, camera=f"cam-{camera:03d}", start=start + number * CLIP_SECONDS))
    return out


def _wait_processed(config, group: str, topic: str, timeout_s: float = 900) -> None:
    deadline = time.monotonic() + timeout_s
    while group_lag(config.kafka, group, topic):
        if time.monotonic() > deadline:
            raise TimeoutError(f"serve did not keep up with {topic}")
        time.sleep(0.2)


def decode_only_rate(clips) -> float:
    """Clips/s that decord alone decodes (every frame, resized to 160x96), one thread, in process."""
    started = time.perf_counter()
    for clip in clips:
        decode_clip(clip.data, fps=FPS, width=160, height=96)
    return len(clips) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=50)
    parser.add_argument("--clips", type=int, default=20, help="clips per camera in the throughput phase")
    parser.add_argument("--live-seconds", type=float, default=40.0)
    parser.add_argument("--bootstrap")
    args = parser.parse_args()

    feed = make_feed(VIDEO_DIR / "one-by-one-person-detection.mp4", "cam", seconds=CLIP_SECONDS, fps=FPS,
                     width=768, height=432, normal_clips=WARM, anomaly_every=4,
                     other=VIDEO_DIR / "car-detection.mp4")
    sizes = [len(c.data) for c in feed.clips]
    print(f"{len(feed.clips)} clips of {CLIP_SECONDS:.0f} s at {FPS:.0f} fps, 768x432, "
          f"{np.mean(sizes) / 1024:.0f} KiB each on average", flush=True)
    decode_rate = decode_only_rate(feed.clips[:40])

    with broker(args.bootstrap) as bootstrap, tempfile.TemporaryDirectory(prefix="argus-cams-") as work:
        work = Path(work)
        config = bench_config(bootstrap, str(work / "state"), **{
            "video.enabled": True, "video.keyframe_dir": str(work / "keyframes")})
        config.topics.clips = config.topics.series.replace("series", "clips")
        t = config.topics
        ensure_topics(config.kafka, {t.clips: t.partitions})
        group = f"{config.group_id}.video"
        serve = start_serve(config, work)
        producer = make_producer(config.kafka, linger_ms=20)
        try:
            # 1. throughput on a backlog (the first clips of every camera: warm-up, no anomalies)
            backlog = _copies(feed.clips[:args.clips], args.cameras, 1.7e9)
            while f"assigned partitions: {t.clips}" not in (work / "serve.log").read_text():  # serve is ready
                time.sleep(0.1)
            started = time.monotonic()  # the commit interval (1 s) counts against serve here
            publish_clips(producer, t.clips, backlog, progress=False)
            _wait_processed(config, group, t.clips)
            throughput = len(backlog) / (time.monotonic() - started)
            print(f"throughput: {throughput:.1f} clips/s = {throughput * CLIP_SECONDS:.0f} cameras", flush=True)

            # 2. latency, live: the rest of the warm-up fast, then one clip per camera every 2 s
            warm = _copies(feed.clips[args.clips:WARM], args.cameras, 1.7e9 + args.clips * CLIP_SECONDS)
            publish_clips(producer, t.clips, warm, progress=False)
            _wait_processed(config, group, t.clips)
            sent: dict[tuple[str, float], float] = {}
            latencies: list[float] = []
            live_from = time.time()
            listener = threading.Thread(target=_collect, args=(config, live_from, sent, latencies), daemon=True)
            listener.start()
            rounds = int(args.live_seconds / CLIP_SECONDS)
            for number in range(rounds):
                clip = feed.clips[WARM + number % (len(feed.clips) - WARM)]
                tick = live_from + number * CLIP_SECONDS
                time.sleep(max(0.0, tick - time.time()))
                for camera in range(args.cameras):  # spread over the 2 s like independent cameras
                    time.sleep(max(0.0, tick + camera * CLIP_SECONDS / args.cameras - time.time()))
                    start = time.time() - CLIP_SECONDS
                    live = dataclasses.replace(clip, camera=f"cam-{camera:03d}", start=start)
                    sent[(live.camera, start)] = time.time()
                    publish_clips(producer, t.clips, [live], progress=False)
            _wait_processed(config, group, t.clips)
            listener.join(timeout=30)
        finally:
            producer.close()
            serve.terminate()
            serve.wait(timeout=60)
        alerts = len(latencies)
        p50, p90, p99, worst = (np.percentile(latencies, [50, 90, 99, 100]) * 1000 if latencies else [np.nan] * 4)
        print(f"\n| cameras | clips/s processed | cameras sustained (1 clip / 2 s each) | decord alone, 1 thread "
              f"(clips/s) | serve / decode alone |")
        print("|---:|---:|---:|---:|---:|")
        print(f"| {args.cameras} | {throughput:.1f} | {throughput * CLIP_SECONDS:.0f} | {decode_rate:.1f} | "
              f"{throughput / decode_rate:.2f}x |")
        print(f"\n| cameras live | camera alerts | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) |")
        print("|---:|---:|---:|---:|---:|---:|")
        print(f"| {args.cameras} | {alerts} | {p50:.0f} | {p90:.0f} | {p99:.0f} | {worst:.0f} |")


def _collect(config, live_from: float, sent: dict, out: list) -> None:
    """Latency of each live camera alert: read time - send time of the clip it is in."""
    for alert in follow_alerts(config.kafka, config.topics.alerts, idle_timeout_s=15.0):
        if alert.status != "open" or alert.modality != "video" or alert.start < live_from - CLIP_SECONDS:
            continue
        clips = [(start, at) for (camera, start), at in sent.items() if camera == alert.source and start <= alert.start]
        if clips:
            out.append(time.time() - max(clips)[1])


if __name__ == "__main__":
    main()
