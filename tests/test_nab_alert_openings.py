"""The NAB benchmark's alert column models `argus serve`'s alerts exactly: one opens where
AlertTracker (the config's defaults) would open one on the same verdicts."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from argus.config import AlertConfig
from detectors.base import Verdict
from streams.alerts import AlertTracker

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from nab_quality import alert_openings  # noqa: E402


@pytest.mark.parametrize("seed", range(5))
def test_alert_openings_are_where_the_tracker_opens_alerts(seed):
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=2000)
    scores[rng.random(2000) < 0.05] = np.nan  # no opinion: never anomalous
    threshold = float(rng.uniform(0.5, 2.5))
    settings = AlertConfig()
    tracker = AlertTracker("bench", settings.min_run, settings.quiet_readings)
    expected = np.zeros(scores.size)
    for i, score in enumerate(scores.tolist()):
        alert = tracker.observe("s", float(i), Verdict(score, threshold, bool(score >= threshold), {}))
        expected[i] = alert is not None and alert.status == "open"
    opened = alert_openings(scores, threshold, settings.quiet_readings)
    assert 5 < opened.sum() < (scores >= threshold).sum()  # runs are merged, and there are several
    assert np.array_equal(opened, expected)
