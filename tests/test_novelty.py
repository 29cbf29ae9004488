"""The novelty expert: values a stream has never seen in their context, per stream and channel."""

import numpy as np
import pytest
import torch

from detectors.novelty import LEVELS, NoveltyScorer
from streams.checkpoints import CheckpointStore


def _windows(values: np.ndarray, length: int = 8) -> np.ndarray:
    """Sliding windows (N - L + 1, C, L) of a (C, N) series."""
    return np.stack([values[:, t:t + length] for t in range(values.shape[1] - length + 1)])


def _seasonal(rng: np.random.Generator, n: int) -> np.ndarray:
    """A daily-like cycle with noise: normal behaviour that keeps to a band of levels."""
    return 50 + 20 * np.sin(np.arange(n) * 2 * np.pi / 100) + rng.normal(scale=1.0, size=n)


@pytest.mark.parametrize("kind", ["spike", "level_shift", "variance"])
def test_an_injected_anomaly_is_the_first_novelty_after_the_warm_up(kind):
    """A spike, a level shift and a variance change each score 1.0 within ten values of their
    start, and no normal window before them does."""
    values = _seasonal(np.random.default_rng(0), 2000)
    if kind == "spike":
        values[1500] += 60
    elif kind == "level_shift":
        values[1500:] += 45
    else:
        values[1500:] = 50 + np.random.default_rng(1).normal(scale=25.0, size=500)
    scores = NoveltyScorer(warmup=500, rest=50).score_and_learn(_windows(values[None]))
    at = 1500 - 7  # the window whose latest value is point 1500
    assert np.isnan(scores[:500 - 7]).all() and not np.isnan(scores[500 - 7:]).any()
    first = int(np.flatnonzero(scores == 1.0)[0])
    assert at <= first < at + 10, f"the first novelty is at point {first + 7}"


def test_a_novelty_scores_once_then_the_expert_rests():
    values = np.tile([0.0, 7.0], 20)  # levels 0 and 7 of the range 0-7, alternating
    values[30:] = [3.0, 4.0, 3.0, 4.0, 3.0, 4.0, 3.0, 0.0, 7.0, 5.0]
    scores = NoveltyScorer(warmup=20, rest=3, ranges={"": (0.0, 7.0)}).score_and_learn(_windows(values[None], 2))
    by_point = dict(zip(range(1, 40), scores.tolist()))
    # 3 after 7 is new (1.0); the 4s and 3s after it are new too but come while it rests (each
    # starts the rest again); 0 after 3 is new after the rest is over; 5 comes while it rests
    assert [by_point[t] for t in range(30, 40)] == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0]
    assert not any(by_point[t] for t in range(20, 30))


def test_without_a_configured_range_the_warm_up_sets_it_and_values_outside_are_new():
    swing = [0.0, 10.0]
    values = np.concatenate([np.tile(swing, 11), [30.0, 10.0, 0.0, 10.0, -20.0, 0.0, 10.0]])
    scorer = NoveltyScorer(warmup=20, rest=0)
    scores = scorer.score_and_learn(_windows(values[None], 2))
    assert np.isnan(scores[:19]).all()  # the warm-up: no opinion yet
    stream = scorer.streams[""]
    assert stream.low.tolist() == [0.0] and stream.step.tolist() == [10.0 / (LEVELS - 1)]
    # the swing as in the warm-up; above the range, and back from it; the swing again; below the
    # range, and back from it; then the swing
    assert scores[19:].tolist() == [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0]


def test_a_configured_range_is_used_from_the_first_value_and_per_stream():
    ranges = {"cpu": (0.0, 100.0)}
    scorer = NoveltyScorer(warmup=4, rest=0, ranges=ranges)
    windows = np.array([[[10.0, 12.0, 11.0, 10.0, 12.0]], [[10.0, 12.0, 11.0, 10.0, 12.0]]])
    scorer.score_and_learn(windows, ["cpu", "other"])
    assert scorer.streams["cpu"].step.tolist() == [100.0 / (LEVELS - 1)]
    assert scorer.streams["other"].step.tolist() == [2.0 / (LEVELS - 1)]  # the range of its warm-up, 10-12
    # 90 is a new level for cpu; 12 -> 13 stays inside cpu's level 0
    scores = scorer.score_and_learn(np.array([[[12.0, 90.0]], [[12.0, 13.0]]]), ["cpu", "cpu"])
    assert scores.tolist() == [1.0, 1.0]  # 90, a level cpu never had, then 13 after it
    assert scorer.score_and_learn(np.array([[[13.0, 12.0]]]), ["cpu"]).tolist() == [0.0]


def test_the_channel_that_goes_somewhere_new_decides():
    quiet = np.tile([[1.0, 2.0], [5.0, 6.0]], 15)  # (2, 30): two channels alternating between two values
    scorer = NoveltyScorer(warmup=20, rest=0)
    scorer.score_and_learn(_windows(quiet, 4))
    assert scorer.score_and_learn(np.array([[[2.0, 1.0], [6.0, 5.0]]])).tolist() == [0.0]  # as before
    assert scorer.score_and_learn(np.array([[[1.0, 2.0], [5.0, 9.0]]])).tolist() == [1.0]  # channel 1 leaves its range


def test_a_batch_scores_as_its_rows_one_at_a_time_with_keys_interleaved():
    rng = np.random.default_rng(2)
    values = rng.normal(size=(3, 2, 400)).cumsum(axis=2)  # three wandering streams
    windows = np.stack([_windows(v, 8) for v in values], axis=1).reshape(-1, 2, 8)  # time-major
    keys = ["a", "b", "c"] * (len(windows) // 3)
    batched, single = NoveltyScorer(warmup=50, rest=5), NoveltyScorer(warmup=50, rest=5)
    together = np.concatenate([batched.score_and_learn(torch.from_numpy(windows[i:i + 37]), keys[i:i + 37])
                               for i in range(0, len(windows), 37)])
    one_by_one = np.concatenate([single.score_and_learn(windows[i:i + 1], keys[i:i + 1]) for i in range(len(windows))])
    np.testing.assert_array_equal(together, one_by_one)
    assert np.nansum(together) > 0  # the walks keep finding new places


@pytest.mark.parametrize("ranges", [None, {"a": (-5.0, 5.0)}])
def test_restored_from_a_checkpoint_it_scores_like_the_original(tmp_path, ranges):
    rng = np.random.default_rng(3)
    windows = _windows(rng.normal(size=(1, 300)).cumsum(axis=1), 8)
    original = NoveltyScorer(warmup=100, rest=10, ranges=ranges)
    original.score_and_learn(windows[:60], ["a"] * 60)  # mid warm-up: the kept early values travel too
    store = CheckpointStore(tmp_path, "g")
    store.save("t", 0, original.state_dict())
    restored = NoveltyScorer(warmup=100, rest=10, ranges=ranges)
    restored.load_state_dict(store.load("t", 0))
    rest = windows[60:]
    np.testing.assert_array_equal(restored.score_and_learn(rest, ["a"] * len(rest)),
                                  original.score_and_learn(rest, ["a"] * len(rest)))


def test_bad_input_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="low must not exceed high"):
        NoveltyScorer(ranges={"s": (5.0, 1.0)})
    with pytest.raises(ValueError, match="warmup >= 1"):
        NoveltyScorer(warmup=0)
    scorer = NoveltyScorer()
    scorer.score_and_learn(np.zeros((1, 2, 8)), ["s"])
    with pytest.raises(ValueError, match="had 2 channels and now has 3"):
        scorer.score_and_learn(np.zeros((1, 3, 8)), ["s"])
    with pytest.raises(ValueError, match=r"windows \(B, C, L\)"):
        scorer.score_and_learn(np.zeros((4, 8)), ["s"] * 4)


def test_a_flat_warm_up_makes_any_other_value_new():
    values = np.concatenate([np.full(30, 4.0), [4.0, 4.5, 4.5, 4.0]])
    scores = NoveltyScorer(warmup=20, rest=0).score_and_learn(_windows(values[None], 2))
    assert scores[~np.isnan(scores)].tolist() == [0.0] * 11 + [1.0, 1.0, 1.0]


def test_values_far_beyond_a_flat_range_keep_their_side():
    """(value - low) / step overflows int64 here unless clipped first, which would put a value
    far above the range below it."""
    far_above, far_below = 5.0 + 1e12, 5.0 - 1e12
    values = np.concatenate([np.full(4, 5.0), np.tile([5.0, far_above], 30), [5.0, far_below]])
    scores = NoveltyScorer(warmup=4, rest=0).score_and_learn(_windows(values[None], 2))
    assert scores[-6:-1].tolist() == [0.0] * 5  # swinging far above the flat range: learned
    assert scores[-1] == 1.0  # far below it, after the usual 5.0: new
