"""CPU and CUDA give the same scores: the detectors `argus serve` builds from its config, and the
camera detector on a real clip. Runs where torch sees a GPU (the lent GPU machine); skipped elsewhere.
The scorer-level CUDA tests sit beside their scorers (test_lof, test_self_similarity, test_video_encoders)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from argus.config import load_config
from argus.wiring import camera_detector_factory, detector_factory
from video.camera_feed import VIDEO_DIR, make_feed
from video.decode import decode_clip

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _windows(streams: int = 12, steps: int = 160, length: int = 64, seed: int = 0) -> np.ndarray:
    """(steps, streams, 1, length) sliding windows of noisy cycles, a spike and a level shift late on."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps + length)
    series = 10 * np.sin(2 * np.pi * t / 48 + rng.uniform(0, 6, (streams, 1))) + rng.normal(0, 1, (streams, t.size))
    series[0, steps + length - 30] += 40
    series[1, steps + length - 40:] += 15
    windows = np.lib.stride_tricks.sliding_window_view(series, length, axis=1)[:, :steps]  # (streams, steps, L)
    return np.ascontiguousarray(windows.transpose(1, 0, 2)[:, :, None, :])


def _scores(overrides: dict, device: str, windows: np.ndarray) -> np.ndarray:
    detector = detector_factory(load_config(None, {**overrides, "detector.device": device}))()
    ids = [f"node-{i}" for i in range(windows.shape[1])]
    return np.stack([detector.assess(ids, step)[0] for step in windows])


@pytest.mark.parametrize("embedder", ["window_stats", "window", "chronos"])
@pytest.mark.parametrize("name", ["lof", "self_similarity", "mixture"])
def test_series_detectors_score_the_same_on_cuda(name, embedder):
    windows = _windows()
    overrides = {"detector.name": name, "detector.embedder": embedder}
    cpu, gpu = _scores(overrides, "cpu", windows), _scores(overrides, "cuda", windows)
    assert np.isfinite(cpu[-1]).all()  # every stream has left its warm-up (NaN: no opinion yet)
    np.testing.assert_allclose(gpu, cpu, rtol=1e-4, atol=1e-4)  # NaN where the other has NaN


@pytest.mark.parametrize("encoder", ["stats", "efficientnet"])
def test_camera_detector_judges_a_real_clip_the_same_on_cuda(encoder):
    feed = make_feed(VIDEO_DIR / "one-by-one-person-detection.mp4", "cam", normal_clips=20, anomaly_every=3,
                     max_clips=29, other=VIDEO_DIR / "car-detection.mp4")
    clips = [decode_clip(clip.data) for clip in feed.clips]
    verdicts = {}
    for device in ("cpu", "cuda"):
        config = load_config(None, {"video.encoder": encoder, "detector.device": device, "video.warmup": 10})
        detector = camera_detector_factory(config)()
        verdicts[device] = [v for clip, feed_clip in zip(clips, feed.clips)
                            for v in detector.judge([feed_clip.camera], [feed_clip.start], [clip])]
    cpu = np.array([v.score for v in verdicts["cpu"]])
    gpu = np.array([v.score for v in verdicts["cuda"]])
    # cuDNN convolutions may use TF32 on Hopper: the pretrained encoder agrees to 1e-3, the
    # weight-free one (no convolutions) to 1e-4
    tolerance = 1e-4 if encoder == "stats" else 1e-3
    np.testing.assert_allclose(gpu, cpu, rtol=tolerance, atol=tolerance)
    assert [v.anomalous for v in verdicts["cuda"]] == [v.anomalous for v in verdicts["cpu"]]
    assert any(v.anomalous for v in verdicts["cpu"])
