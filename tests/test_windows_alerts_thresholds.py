import numpy as np
import pytest

from detectors.base import Verdict
from detectors.thresholds import RollingQuantileThreshold
from streams.alerts import Alert, AlertTracker, alert_id
from streams.records import CHANNEL_MISMATCH, DUPLICATE_TIMESTAMP, OUT_OF_ORDER, Reading, RecordError
from streams.windows import WindowStore


def test_window_keeps_the_last_readings_in_time_order():
    store = WindowStore(3)
    windows = [store.push(Reading("a", float(t), {"x": float(t), "y": 10.0 * t})) for t in range(5)]
    assert [w is not None for w in windows] == [False, False, True, True, True]
    np.testing.assert_array_equal(windows[-1], [[2, 3, 4], [20, 30, 40]])


@pytest.mark.parametrize("ts, values, reason", [
    (0.5, {"x": 1.0}, OUT_OF_ORDER), (1.0, {"x": 1.0}, DUPLICATE_TIMESTAMP), (2.0, {"z": 1.0}, CHANNEL_MISMATCH),
])
def test_window_rejects_late_duplicate_and_reshaped_readings(ts, values, reason):
    store = WindowStore(4)
    store.push(Reading("a", 1.0, {"x": 0.0}))
    with pytest.raises(RecordError) as info:
        store.push(Reading("a", ts, values))
    assert info.value.reason == reason
    store.push(Reading("a", 3.0, {"x": 1.0}))  # the stream goes on
    assert store.seen("a") == 2


def verdict(anomalous: bool, score: float = 0.9) -> Verdict:
    return Verdict(score, 0.5, anomalous, {"channel": "x"})


def test_tracker_opens_after_min_run_merges_and_closes_after_quiet():
    tracker = AlertTracker("d", min_run=2, quiet_readings=2)
    flags = [False, True, False, True, True, True, False, True, False, False, False]
    out = [tracker.observe("s", float(t), verdict(f)) for t, f in enumerate(flags)]
    published = [(t, a.status, a.start, a.end) for t, a in enumerate(out) if a]
    # t=1 is a lone outlier; the run from t=3 opens at t=4, absorbs t=7, closes after 2 quiet.
    assert published == [(4, "open", 3.0, 4.0), (9, "closed", 3.0, 7.0)]
    assert out[4].id == alert_id("s", "d", 3.0)


def test_alert_ids_are_deterministic_and_json_round_trips():
    assert alert_id("s", "d", 3.0) == alert_id("s", "d", 3.0) != alert_id("s", "d", 4.0)
    alert = Alert("i", "s", "series", 1.0, 2.0, 0.9, 0.5, "d", "closed", {"channel": "x"})
    assert Alert.from_json(alert.to_json()) == alert
    assert "s at 1970-01-01 00:00:01 UTC" in alert.describe()


def test_threshold_waits_for_warmup_then_flags_outliers_of_each_stream():
    t = RollingQuantileThreshold(quantile=0.9, margin=0.5, history=50, warmup=20)
    rng = np.random.default_rng(0)
    assert not any(t.judge("a", s)[1] for s in rng.uniform(0.4, 0.5, 20))
    threshold, anomalous = t.judge("a", 0.9)
    assert anomalous and 0.5 < threshold < 0.9
    assert t.judge("b", 0.9) == (float("inf"), False)  # stream b is still warming up


@pytest.mark.parametrize("seed", range(8))
def test_judge_many_gives_exactly_what_judge_gives_one_by_one(seed):
    rng = np.random.default_rng(seed)
    history, warmup = int(rng.integers(5, 40)), int(rng.integers(1, 30))
    one = RollingQuantileThreshold(quantile=0.9, margin=0.5, history=history, warmup=warmup, refresh_every=int(rng.integers(1, 6)))
    many = RollingQuantileThreshold(one.quantile, one.margin, history, warmup, one.refresh_every)
    for _ in range(12):  # batches where streams repeat, some more often than their history holds
        ids = [f"s{int(i)}" for i in rng.integers(0, int(rng.integers(1, 8)), int(rng.integers(1, 90)))]
        scores = rng.gamma(2.0, size=len(ids)) * rng.choice([1.0, 4.0], size=len(ids), p=[0.95, 0.05])
        scores[rng.random(len(ids)) < rng.choice([0.0, 0.2, 1.0], p=[0.4, 0.5, 0.1])] = np.nan  # no opinion
        ids += ["only-nan"] * int(rng.integers(0, 2))  # a stream that has not had a score yet
        scores = np.append(scores, [np.nan] * (len(ids) - len(scores)))
        expected = [one.judge(s, float(x)) for s, x in zip(ids, scores)]
        thresholds, anomalous = many.judge_many(ids, scores)
        assert thresholds.tolist() == [t for t, _ in expected]
        assert anomalous.tolist() == [a for _, a in expected]
        assert not anomalous[np.isnan(scores)].any()
    a, b = one.state_dict(), many.state_dict()
    assert a["ids"] == b["ids"] and a["count"].tolist() == b["count"].tolist()
    np.testing.assert_array_equal(a["scores"], b["scores"])


@pytest.mark.parametrize("batched", [False, True])
def test_nan_scores_are_skipped_as_if_they_were_not_there(batched):
    rng = np.random.default_rng(9)
    scores = rng.gamma(2.0, size=300)
    scores[::7] *= 5
    with_nan = np.insert(scores, rng.integers(0, 300, 120), np.nan)  # a warm-up run and gaps
    with_nan = np.concatenate([[np.nan] * 40, with_nan])
    skipping, fresh = (RollingQuantileThreshold(quantile=0.9, margin=0.5, history=50, warmup=30, refresh_every=4)
                       for _ in range(2))
    if batched:
        judged = [skipping.judge_many(["s"] * len(part), part) for part in np.array_split(with_nan, 8)]
        thresholds, anomalous = np.concatenate([t for t, _ in judged]), np.concatenate([a for _, a in judged])
    else:
        thresholds, anomalous = map(np.array, zip(*[skipping.judge("s", x) for x in with_nan]))
    expected = [fresh.judge("s", x) for x in scores]
    finite = ~np.isnan(with_nan)
    assert thresholds[finite].tolist() == [t for t, _ in expected]
    assert anomalous[finite].tolist() == [a for _, a in expected] and not anomalous[~finite].any()
    assert np.isinf(thresholds[:40]).all()  # no threshold before the first 30 scores
    previous = np.concatenate([[np.inf], thresholds[:-1]])  # a NaN gets the threshold of the score before it
    assert thresholds[~finite].tolist() == previous[~finite].tolist()
    a, b = skipping.state_dict(), fresh.state_dict()
    assert a["count"].tolist() == b["count"].tolist() == [300]
    np.testing.assert_array_equal(a["scores"], b["scores"])
