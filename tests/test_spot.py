"""SPOT / DSPOT thresholds: alert rate on i.i.d. scores, drift, GPD fits, state round trips."""

import numpy as np
import pytest
from scipy.stats import genpareto

from detectors.halfspace import HalfSpaceTreesScorer
from detectors.series_detector import SeriesDetector
from detectors.spot import SPOTThreshold, fit_gpd, gpd_log_likelihood
from detectors.window_stats import WindowStatsEmbedder
from streams.checkpoints import CheckpointStore


def _alerts(threshold: SPOTThreshold, scores, stream: str = "s") -> np.ndarray:
    return np.array([threshold.judge(stream, float(x))[1] for x in scores])


@pytest.mark.parametrize("draw", ["exponential", "normal"])
def test_the_realised_alert_rate_is_close_to_q_on_iid_scores(draw):
    scores = getattr(np.random.default_rng(3), draw)(size=100_000)
    alerts = _alerts(SPOTThreshold(q=1e-3, calibration=1000), scores)
    assert not alerts[:1000].any()  # calibrating
    assert 0.5e-3 < alerts[1000:].mean() < 2e-3


def test_dspot_follows_a_drifting_level_where_spot_alarms_constantly():
    rng = np.random.default_rng(0)
    level = 0.01 * np.arange(20_000)
    scores = level + rng.normal(size=level.size)
    spot, dspot = SPOTThreshold(q=1e-3), SPOTThreshold(q=1e-3, depth=20)
    spot_alerts = _alerts(spot, scores)[2000:]
    dspot_verdicts = [dspot.judge("s", x) for x in scores][2000:]
    dspot_alerts = np.array([anomalous for _, anomalous in dspot_verdicts])
    assert dspot_alerts.mean() < 3e-3 and spot_alerts.mean() > 0.1
    gap = np.array([threshold for threshold, _ in dspot_verdicts]) - level[2000:]
    assert 2 < gap.min() and gap.max() < 6  # a few noise stds above the level, all along


def test_a_restored_state_gives_the_same_verdicts(tmp_path):
    rng = np.random.default_rng(1)
    streams = {"a": rng.exponential(size=4000), "b": rng.normal(size=4000), "c": rng.exponential(size=600)}
    make = lambda: SPOTThreshold(q=1e-2, calibration=500, depth=5, max_peaks=50)  # noqa: E731 - rings wrap
    original = make()
    for name, scores in streams.items():
        _alerts(original, scores[:len(scores) // 2], name)  # "c" is still calibrating at the save
    store = CheckpointStore(tmp_path, "group")
    store.save("topic", 0, {"threshold": original.state_dict()})  # through the real file format
    restored = make()
    restored.load_state_dict(store.load("topic", 0)["threshold"])
    for name, scores in streams.items():
        for x in scores[len(scores) // 2:]:
            assert original.judge(name, x) == restored.judge(name, x)


def test_a_replay_gives_the_same_thresholds():
    scores = np.random.default_rng(2).standard_t(3, size=5000)
    runs = [SPOTThreshold(q=1e-3, calibration=500, refit_every=1) for _ in range(2)]
    thresholds = [[run.judge("s", x)[0] for x in scores] for run in runs]
    assert thresholds[0] == thresholds[1] and np.isfinite(thresholds[0][-1])


def test_a_state_from_other_settings_is_refused():
    state = SPOTThreshold(q=1e-3).state_dict()
    with pytest.raises(ValueError, match="SPOT state was made with"):
        SPOTThreshold(q=1e-2).load_state_dict(state)


@pytest.mark.parametrize("kwargs, message", [
    (dict(q=0.0), "q must be in"), (dict(q=0.05, level=0.98), "q must be in"), (dict(level=1.0), "level must be in"),
    (dict(calibration=100), "calibration"), (dict(depth=-1), "depth"), (dict(max_peaks=5), "max_peaks"),
    (dict(refit_every=0), "refit_every"),
])
def test_bad_parameters_give_one_line_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message) as info:
        SPOTThreshold(**kwargs)
    assert "\n" not in str(info.value)


def test_calibration_waits_out_a_warming_scorer_and_skips_non_finite_scores():
    spot = SPOTThreshold(q=1e-3, calibration=200, level=0.9)
    assert not _alerts(spot, np.zeros(500)).any()  # constant: no tail to fit yet
    assert spot.judge("s", float("nan")) == (float("inf"), False)
    _alerts(spot, np.random.default_rng(4).exponential(size=300))
    threshold, anomalous = spot.judge("s", 50.0)
    assert np.isfinite(threshold) and anomalous
    assert spot.judge("s", float("inf")) == (threshold, False)


@pytest.mark.parametrize("depth", [0, 5])
def test_nan_scores_calibrate_nothing_and_leave_the_verdicts_of_the_others_unchanged(depth):
    """A threshold fed NaNs among its scores judges the scores as one fed the scores alone."""
    rng = np.random.default_rng(8)
    scores = rng.exponential(size=3000)
    with_nan = np.concatenate([[np.nan] * 300, np.insert(scores, rng.integers(0, 3000, 500), np.nan)])
    skipping, fresh = (SPOTThreshold(q=1e-2, calibration=500, depth=depth, max_peaks=50) for _ in range(2))
    thresholds, anomalous = skipping.judge_many(["s"] * len(with_nan), with_nan)
    finite = ~np.isnan(with_nan)
    expected = [fresh.judge("s", x) for x in scores]
    assert thresholds[finite].tolist() == [t for t, _ in expected]
    assert anomalous[finite].tolist() == [a for _, a in expected] and anomalous.sum() > 5
    assert not anomalous[~finite].any() and np.isinf(thresholds[:300]).all()
    after = np.flatnonzero(finite)[np.searchsorted(np.flatnonzero(finite), np.flatnonzero(~finite))]
    assert thresholds[~finite].tolist() == thresholds[after].tolist()  # a NaN gets the next score's threshold


@pytest.mark.parametrize("gamma", [-0.3, 0.0, 0.3])
def test_the_gpd_fit_recovers_the_parameters_and_beats_a_generic_optimiser(gamma):
    y = genpareto.rvs(gamma, scale=2.0, size=5000, random_state=5)
    ours = fit_gpd(y)
    assert ours == pytest.approx((gamma, 2.0), abs=0.1)
    shape, _, scale = genpareto.fit(y, floc=0)
    assert gpd_log_likelihood(*ours, y) >= gpd_log_likelihood(shape, scale, y) - 1e-6


def test_censored_peaks_fit_the_tail_they_hide():
    y = genpareto.rvs(0.2, scale=1.0, size=20_000, random_state=6)
    cut = np.quantile(y, 0.9)
    uncensored, censored = y[y < cut], np.full((y >= cut).sum(), cut)
    assert fit_gpd(uncensored, censored) == pytest.approx((0.2, 1.0), abs=0.05)
    assert fit_gpd(uncensored)[0] < 0  # ignoring the hidden tail makes it look bounded


def test_it_drops_into_a_series_detector_and_round_trips_with_it():
    rng = np.random.default_rng(7)
    windows = rng.normal(size=(1500, 1, 16)).astype(np.float32)
    windows[1400, 0, -1] = 40.0
    make = lambda: SeriesDetector("hst", WindowStatsEmbedder(), HalfSpaceTreesScorer(window_size=100),  # noqa: E731
                                  SPOTThreshold(q=1e-3, calibration=500))
    detector = make()
    for start in range(0, 1000, 100):
        detector.judge(["n"] * 100, [["x"]] * 100, windows[start:start + 100])
    copy = make()
    copy.load_state_dict(detector.state_dict())
    first, second = (d.judge(["n"] * 500, [["x"]] * 500, windows[1000:]) for d in (detector, copy))
    assert first == second and first[400].anomalous
