"""Cameras: a real camera's clips with injected anomalies raise alerts with the right frames, and
nothing else; state survives a checkpoint; end to end through the real broker with `argus
replay --video` and `argus serve`, bad clips dead-lettered with their reasons."""

from __future__ import annotations

import json
import signal
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from kafka import TopicPartition
from PIL import Image

from argus.cli import main
from argus.config import load_config
from argus.wiring import camera_detector_factory
from conftest import start_serve, write_config
from streams.alert_feed import follow_alerts
from streams.checkpoints import CheckpointStore
from streams.clip_records import encode_clip_message
from streams.deadletter import read_headers
from streams.kafka_clients import ensure_topics, make_consumer, make_producer, wait_until_committed
from video.anomalies import inject
from video.camera_feed import VIDEO_DIR, make_feed
from video.clips import cut_clips, encode_frames
from video.decode import decode_clip
from video.frame_scores import FrameReference, still_run

CAMERA = VIDEO_DIR / "one-by-one-person-detection.mp4"
OTHER = VIDEO_DIR / "car-detection.mp4"


@pytest.fixture(scope="module")
def feed():
    """69 two-second clips of a real camera; one anomaly in every 4th clip after the first 30."""
    return make_feed(CAMERA, "cam-1", normal_clips=30, anomaly_every=4, other=OTHER)


@pytest.fixture(scope="module")
def decoded(feed):
    return [decode_clip(clip.data, fps=5.0, width=160, height=96) for clip in feed.clips]


def _detector(tmp_path, encoder: str = "stats"):
    overrides = {"video.keyframe_dir": str(tmp_path / "keyframes"), "video.encoder": encoder}
    return camera_detector_factory(load_config(None, overrides))()


def _judge(detector, feed, decoded, clips: slice, batch: int = 4) -> list:
    verdicts = []
    chosen = list(zip(feed.clips, decoded))[clips]
    for i in range(0, len(chosen), batch):
        part = chosen[i:i + batch]
        verdicts += detector.judge([c.camera for c, _ in part], [c.start for c, _ in part], [d for _, d in part])
    return verdicts


def _overlaps(span, label) -> bool:
    return span[0] <= label[1] and label[0] <= span[1]


@pytest.mark.parametrize("encoder", ["stats", "efficientnet"])
def test_every_injected_anomaly_alerts_with_its_frames_and_normal_clips_raise_nothing(tmp_path, feed, decoded, encoder):
    assert {kind for _, _, kind in feed.labels} == {"splice", "blackout", "shake"} and len(feed.labels) == 9
    verdicts = _judge(_detector(tmp_path, encoder), feed, decoded, slice(None))
    anomalous = [v for v in verdicts if v.anomalous]
    for label in feed.labels:
        assert [v for v in anomalous if _overlaps(v.span, label)], f"missed {label}"
    assert all(any(_overlaps(v.span, label) for label in feed.labels) for v in anomalous)  # no false alerts
    for v in anomalous:  # anomalies fill frames 2..7 of 10; the frame after the cut back is odd too
        first, last = v.explanation["frames"]
        assert 1 <= first <= 3 and 6 <= last <= 9, v.explanation
        assert first <= v.explanation["keyframe"] <= last
        picture = Image.open(v.explanation["keyframe_file"])
        assert picture.size == (160, 96)


def test_a_restored_camera_detector_judges_exactly_like_the_original(tmp_path, feed, decoded):
    original = _detector(tmp_path)
    _judge(original, feed, decoded, slice(0, 40))
    store = CheckpointStore(tmp_path / "state", "group")
    store.save("clips", 0, original.state_dict())
    restored = _detector(tmp_path)
    restored.load_state_dict(store.load("clips", 0))
    later = _judge(restored, feed, decoded, slice(40, None))
    assert later == _judge(original, feed, decoded, slice(40, None))
    assert any(v.anomalous for v in later)


@pytest.fixture(scope="module")
def recorded():
    """The camera's 2-s clips as it records them: the source's frame rate (30 fps), 320x180."""
    return list(cut_clips(CAMERA, 2.0, width=320, height=180, max_clips=40))


def test_a_stuck_camera_alerts_from_the_frame_it_froze_and_normal_clips_raise_nothing(tmp_path, recorded):
    """The picture stops 20% into a clip and stays (a stuck camera: the next clip shows only that
    picture). This camera's own footage stands still for up to 4 sampled frames (0.8 s), which
    raises nothing; the stuck clips alert, the first naming the frames from where it froze."""
    detector = _detector(tmp_path)
    fps = recorded[0].fps
    full = decode_clip(recorded[35].data).frames
    stop = len(full) // 5
    frozen, _ = inject("freeze", full, stop, len(full))
    stuck = np.repeat(frozen[-1:], len(full), axis=0)
    clips = [clip.data for clip in recorded[:35]] + [encode_frames(frozen, fps), encode_frames(stuck, fps)] + \
        [clip.data for clip in recorded[37:]]
    verdicts = [detector.judge(["cam-1"], [2.0 * i], [decode_clip(data, fps=5.0, width=160, height=96)])[0]
                for i, data in enumerate(clips)]
    assert [i for i, v in enumerate(verdicts) if v.anomalous] == [35, 36]
    first, last = verdicts[35].explanation["frames"]
    sampled = decode_clip(clips[35], fps=5.0).indices.tolist()  # frame numbers of the sampled frames
    after_stop = [i for i in sampled if i >= stop]
    assert after_stop[0] <= first <= after_stop[1] and last == sampled[-1]  # an encoder refines the first repeats
    assert verdicts[35].explanation["frozen_frames"] >= 6 and verdicts[35].explanation["keyframe"] == first
    assert verdicts[36].explanation["frozen_frames"] >= 7


@pytest.mark.parametrize("motion, run", [
    ([0, 1, 0, 0, 1, 0, 0, 0], (5, 8)),  # the longest run, up to the last frame
    ([0, 0, 0, 1], (1, 3)),  # frame 0 has no predecessor and never counts
    ([0, 1, 1], (0, 0)),
    ([0], (0, 0)),
])
def test_still_run_is_the_longest_run_of_frames_repeating_their_predecessor(motion, run):
    assert still_run(torch.tensor(motion, dtype=torch.float64), 0.5) == run


def test_frame_reference_keeps_its_still_runs_through_a_checkpoint():
    reference = FrameReference(20)
    for still in (2, 4, 1):
        reference.learn(torch.zeros(5, 3), still)
    restored = FrameReference(20)
    restored.load_state_dict(reference.state_dict())
    assert (restored.clips, restored.longest_still) == (reference.clips, reference.longest_still) == (3, 4)


def test_frame_reference_puts_a_new_scene_above_every_normal_frame():
    rng = np.random.default_rng(0)
    reference = FrameReference(capacity=50)
    assert not reference.ready
    for _ in range(6):
        reference.learn(torch.from_numpy(rng.normal(size=(10, 8))))
    assert reference.ready and reference.frames.shape == (50, 8) and reference.distances.shape == (50,)
    normal = reference.novelty(torch.from_numpy(rng.normal(size=(10, 8))))
    odd = reference.novelty(torch.from_numpy(rng.normal(size=(10, 8)) + 10))
    assert odd.min() > reference.bar > normal.median()


def test_frame_reference_holds_the_latest_frames_and_checkpoints_them_oldest_first():
    reference = FrameReference(capacity=25)
    for value in range(6):  # clips of 10 frames: 60 frames through a ring of 25
        reference.learn(torch.full((10, 3), float(value)))
    state = reference.state_dict()
    assert state["frames"][:, 0].tolist() == [3.0] * 5 + [4.0] * 10 + [5.0] * 10
    restored = FrameReference(capacity=25)
    restored.load_state_dict(state)
    probe = torch.tensor([[2.5] * 3, [9.0] * 3])
    assert torch.allclose(restored.novelty(probe), reference.novelty(probe))
    assert torch.allclose(reference.novelty(probe), torch.tensor([0.5, 4.0], dtype=torch.float64))



def _dead_letters(config) -> list[dict]:
    consumer = make_consumer(config.kafka, consumer_timeout_ms=3000)
    topic = config.topics.dead_letter
    consumer.assign([TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)])
    letters = [read_headers(record.headers) for record in consumer]
    consumer.close()
    return letters


@pytest.mark.kafka
def test_camera_clips_end_to_end_through_the_broker(tmp_path, argus_config):
    """`argus replay --video` publishes a camera's clips by URI (claim check) and `argus serve`
    with video enabled raises one alert per injected anomaly; bad clips are dead-lettered."""
    tag = argus_config["group_id"].split("-")[-1]
    clips_root = tmp_path / "clips"
    overrides = {**argus_config, "topics": {**argus_config["topics"], "clips": f"clips-{tag}"},
                 "video": {"enabled": True, "roots": [str(clips_root)], "keyframe_dir": str(tmp_path / "keyframes")}}
    config_file = write_config(tmp_path / "argus.yaml", overrides)
    config = load_config(config_file)
    t = config.topics
    ensure_topics(config.kafka, {name: t.partitions for name in (t.clips, t.alerts, t.dead_letter)})
    labels_file = tmp_path / "labels.json"
    assert main(["replay", "--config", str(config_file), "--video", str(CAMERA), "--quiet",
                 "--uri-dir", str(clips_root), "--labels-out", str(labels_file)]) == 0
    good = next(p for p in sorted(clips_root.rglob("*.mp4")))
    bad = {
        "truncated": encode_clip_message("bad-cam", 1.0, 5.0, data=good.read_bytes()[:3000]),
        "unsupported": encode_clip_message("bad-cam", 2.0, 5.0, data=b"GIF89a" + bytes(200)),
        "uri_not_allowed": encode_clip_message("bad-cam", 3.0, 5.0, uri=str(clips_root / ".." / "escape.mp4")),
        "empty_clip": encode_clip_message("bad-cam", 4.0, 5.0, data=b""),
    }
    producer = make_producer(config.kafka)
    for key, value, headers in bad.values():
        producer.send(t.clips, key=key, value=value, headers=headers)
    producer.flush()
    producer.close()

    serve = start_serve(config_file, tmp_path / "serve.log")
    try:
        wait_until_committed(config.kafka, f"{config.group_id}.video", t.clips, timeout_s=240)
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=60)
    log = (tmp_path / "serve.log").read_text()
    labels = json.loads(labels_file.read_text())["one-by-one-person-detection"]
    assert len(labels) == 9
    alerts = {a.id: a for a in follow_alerts(config.kafka, t.alerts, idle_timeout_s=3) if a.status == "open"}
    assert all(a.modality == "video" and a.source == "one-by-one-person-detection" for a in alerts.values())
    for label in labels:
        assert [a for a in alerts.values() if _overlaps((a.start, a.end), label)], f"missed {label}\n{log[-2000:]}"
    assert len(alerts) == len(labels), alerts
    assert all(Path(a.explanation["keyframe_file"]).is_file() for a in alerts.values())
    reasons = Counter(letter["argus.reason"] for letter in _dead_letters(config))
    assert reasons == Counter(bad.keys()), log[-2000:]


@pytest.mark.parametrize("flags, message", [
    (["--cameras", "0"], "--cameras and --anomaly-every must be at least 1"),
    (["--clip-seconds", "0"], "--clip-seconds above 0"),
])
def test_replay_video_refuses_bad_flags_in_one_line(tmp_path, capsys, flags, message):
    assert main(["replay", "--video", str(CAMERA), "--bootstrap-servers", "127.0.0.1:1", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_replay_video_names_a_file_that_is_not_a_video(tmp_path, capsys):
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    assert main(["replay", "--video", str(bad), "--bootstrap-servers", "127.0.0.1:1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert str(bad) in err and "unsupported" in err and "\n" not in err
