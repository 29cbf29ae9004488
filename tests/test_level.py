"""The level expert: a stream's latest value against its own long history, per stream and channel."""

import numpy as np
import pytest
import torch

from detectors.level import LevelScorer
from streams.checkpoints import CheckpointStore


def _steps(rng: np.random.Generator, streams: int, steps: int, length: int = 16, channels: int = 2) -> np.ndarray:
    """Sliding windows (steps, streams, C, L) of one random walk-free series per stream."""
    values = rng.normal(size=(streams, channels, steps + length - 1)) + np.arange(streams)[:, None, None] * 50
    return np.stack([values[:, :, t:t + length] for t in range(steps)])


def test_a_batch_scores_as_its_rows_one_at_a_time_with_keys_interleaved():
    windows = _steps(np.random.default_rng(0), streams=3, steps=60)  # (60, 3, C, L)
    keys = ["a", "b", "c"]
    batched, single = LevelScorer(warmup=20), LevelScorer(warmup=20)
    flat = windows.reshape(-1, *windows.shape[2:])
    flat_keys = keys * 60
    together = np.concatenate([batched.score_and_learn(flat[i:i + 37], flat_keys[i:i + 37]) for i in range(0, len(flat), 37)])
    one_by_one = np.concatenate([single.score_and_learn(flat[i:i + 1], flat_keys[i:i + 1]) for i in range(len(flat))])
    np.testing.assert_array_equal(together, one_by_one)
    assert np.isnan(together[:3 * 5]).all() and np.isfinite(together[3 * 5:]).all()  # 15 values, then 20


def test_a_level_never_seen_in_a_streams_history_outranks_its_normal_values():
    rng = np.random.default_rng(1)
    windows = _steps(rng, streams=2, steps=400, channels=1)
    windows[300, 1, 0, -1] += 8.0  # stream b (level 50, noise 1): a value 8 standard deviations up
    scorer = LevelScorer()
    scores = np.stack([scorer.score_and_learn(torch.from_numpy(step), ["a", "b"]) for step in windows])
    assert scores[300, 1] > 6 and scores[300, 1] == np.nanmax(scores[:, 1])
    assert np.nanmax(scores[:, 0]) < 5  # stream a's level 0 is not judged against b's 50


def test_the_worst_channel_decides():
    window = np.zeros((1, 2, 40))
    window[0, :, :-1] = np.random.default_rng(2).normal(size=(2, 39))
    window[0, 1, -1] = 10.0
    both = LevelScorer().score_and_learn(window, ["s"])[0]
    first = LevelScorer().score_and_learn(window[:, :1], ["s"])[0]
    assert both > 5 > first


def test_restored_from_a_checkpoint_it_scores_like_the_original(tmp_path):
    windows = _steps(np.random.default_rng(3), streams=2, steps=80)
    original = LevelScorer()
    for step in windows[:50]:
        original.score_and_learn(step, ["a", "b"])
    store = CheckpointStore(tmp_path, "g")
    store.save("t", 0, original.state_dict())
    restored = LevelScorer()
    restored.load_state_dict(store.load("t", 0))
    for step in windows[50:]:
        np.testing.assert_array_equal(restored.score_and_learn(step, ["a", "b"]), original.score_and_learn(step, ["a", "b"]))


def test_a_stream_that_changes_its_channel_count_is_refused():
    scorer = LevelScorer()
    scorer.score_and_learn(np.zeros((1, 2, 8)), ["s"])
    with pytest.raises(ValueError, match="had 2 channels and now has 3"):
        scorer.score_and_learn(np.zeros((1, 3, 8)), ["s"])
    with pytest.raises(ValueError, match=r"windows \(B, C, L\)"):
        scorer.score_and_learn(np.zeros((4, 8)), ["s"] * 4)
