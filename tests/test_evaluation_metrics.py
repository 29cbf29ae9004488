"""Hand-worked cases and properties of AUC, point-adjust, range-based, affiliation and event metrics.

Each hand case writes its arithmetic out, so a reader can check it without running anything.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation.affiliation import affiliation
from evaluation.auc import auc_pr, auc_roc
from evaluation.errors import EvaluationInputError
from evaluation.events import detection_delays, event_recall, mean_detection_delay
from evaluation.pate import pate_f1
from evaluation.point_adjust import adjust_predictions, point_adjusted, point_adjusted_f1
from evaluation.ranges import range_f1, range_precision_recall
from evaluation.vus import vus


# ------------------------------------------------------------------ AUC

def test_auc_by_hand():
    # Positives score 0.35, 0.8; negatives 0.1, 0.4. Of the 4 (pos, neg) pairs, 3 are ordered right.
    assert auc_roc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    # Ranked: 0.8 (pos, P=1/1), 0.4 (neg), 0.35 (pos, P=2/3), 0.1. AP = (1 + 2/3) / 2 = 5/6.
    assert auc_pr([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(5 / 6)
    assert np.isnan(auc_roc([0, 0, 0], [0.1, 0.2, 0.3])) and np.isnan(auc_pr([1, 1], [0.1, 0.2]))


# ------------------------------------------------------------------ point-adjust

def test_point_adjust_by_hand():
    # Events [1, 4] and [8, 9]; detections at 3 (inside the first) and 6 (a false positive).
    # Adjusted: points 1-4 and 6 predicted -> TP 4 of 5 predicted (P 0.8), of 6 labelled (R 2/3).
    y_true = [0, 1, 1, 1, 1, 0, 0, 0, 1, 1]
    y_pred = [0, 0, 0, 1, 0, 0, 1, 0, 0, 0]
    assert adjust_predictions(y_true, y_pred).astype(int).tolist() == [0, 1, 1, 1, 1, 0, 1, 0, 0, 0]
    result = point_adjusted(y_true, y_pred)
    assert (result.precision, result.recall) == pytest.approx((0.8, 2 / 3))
    assert result.f1 == pytest.approx(2 * 0.8 * (2 / 3) / (0.8 + 2 / 3))


def test_point_adjust_fills_an_event_at_the_series_start():
    # TSB-AD's backward fill stops at index 1, so it would leave point 0 unpredicted: R 2/3 there.
    assert point_adjusted([1, 1, 1, 0], [0, 0, 1, 0]).recall == 1.0


# ------------------------------------------------------------------ range-based (Tatbul et al.)

def test_range_based_by_hand():
    # Labelled range R = [1, 4]; predicted P1 = [3, 5], P2 = [8, 8].
    # Recall of R: flat overlap |{3, 4}| / 4 = 1/2, one overlapping prediction (cardinality 1).
    # Precision: P1 covers 2 of its 3 points -> 2/3; P2 covers none -> 0; mean 1/3.
    y_true = [0, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    y_pred = [0, 0, 0, 1, 1, 1, 0, 0, 1, 0]
    result = range_precision_recall(y_true, y_pred)
    assert (result.precision, result.recall) == pytest.approx((1 / 3, 1 / 2))
    # alpha = 0.5: recall = 0.5 * existence (1) + 0.5 * overlap (1/2) = 3/4
    assert range_precision_recall(y_true, y_pred, alpha=0.5).recall == pytest.approx(0.75)
    # front bias on R = [1, 4]: weights 4, 3, 2, 1 for positions 1..4; covered positions 3, 4 -> (2+1)/10
    assert range_precision_recall(y_true, y_pred, recall_bias="front").recall == pytest.approx(0.3)
    # back bias: weights 1, 2, 3, 4 -> (3+4)/10
    assert range_precision_recall(y_true, y_pred, recall_bias="back").recall == pytest.approx(0.7)


def test_range_cardinality_by_hand():
    # R = [0, 5] overlapped by two predictions [0, 1] and [4, 4]: overlap 3/6 = 1/2;
    # reciprocal cardinality halves it -> 1/4; 'one' keeps 1/2.
    y_true = [1, 1, 1, 1, 1, 1, 0, 0]
    y_pred = [1, 1, 0, 0, 1, 0, 0, 0]
    assert range_precision_recall(y_true, y_pred).recall == pytest.approx(0.25)
    assert range_precision_recall(y_true, y_pred, cardinality="one").recall == pytest.approx(0.5)
    # middle bias on [0, 5] (length 6): weights 1, 2, 3, 3, 2, 1 (sum 12); covered 0, 1, 4 -> (1+2+2)/12
    assert range_precision_recall(y_true, y_pred, recall_bias="middle", cardinality="one").recall == \
        pytest.approx(5 / 12)


# ------------------------------------------------------------------ affiliation (Huet et al.)

def test_affiliation_by_hand():
    # n = 10, event J = [4, 6) (points 4, 5), one zone E = [0, 10). Prediction: point 7 = [7, 8).
    # Precision: x in [7, 8) lies d = x - 6 in [1, 2] from J. For X uniform on E,
    # P(dist(X, J) >= d) = ((4 - d) + (4 - d)) / 10; its mean over d in [1, 2] is (8 - 3) / 10 = 0.5.
    # Recall: y in [4, 6) is D = 7 - y in (1, 3] from the prediction; P(|X - y| >= D) = 1 - 2D / 10
    # (the ball [y - D, y + D] stays inside E); its mean over D in [1, 3] is 1 - 4 / 10 = 0.6.
    y_true = [0, 0, 0, 0, 1, 1, 0, 0, 0, 0]
    result = affiliation(y_true, [0, 0, 0, 0, 0, 0, 0, 1, 0, 0])
    assert (result.precision, result.recall) == pytest.approx((0.5, 0.6))


def test_affiliation_zones_by_hand():
    # Events [2, 3) and [8, 9) in n = 10: zones [0, 5.5) and [5.5, 10). Prediction at [2, 3) only.
    # Zone 1: precision 1, recall 1. Zone 2: no prediction -> no precision, recall 0.
    result = affiliation([0, 0, 1, 0, 0, 0, 0, 0, 1, 0], [0, 0, 1, 0, 0, 0, 0, 0, 0, 0])
    assert (result.precision, result.recall) == (1.0, 0.5)
    assert np.isnan(affiliation([0, 1, 0], [0, 0, 0]).precision)


# ------------------------------------------------------------------ events

def test_events_by_hand():
    # Events [1, 3] and [6, 7]; detections at 3 (two points into the first) and 5 (before the second).
    y_true = [0, 1, 1, 1, 0, 0, 1, 1, 0, 0]
    y_pred = [0, 0, 0, 1, 0, 1, 0, 0, 0, 0]
    assert event_recall(y_true, y_pred) == 0.5
    assert np.isnan(detection_delays(y_true, y_pred)).tolist() == [False, True]
    assert mean_detection_delay(y_true, y_pred) == 2.0
    times = [0, 60, 120, 180, 240, 300, 360, 420, 480, 540]
    assert mean_detection_delay(y_true, y_pred, times=times) == 120.0  # seconds
    assert np.isnan(event_recall([0, 0], [1, 0])) and np.isnan(mean_detection_delay(y_true, [0] * 10))


# ------------------------------------------------------------------ properties

@st.composite
def labelled(draw, min_size=8, max_size=200):
    n = draw(st.integers(min_size, max_size))
    labels = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=np.int64)
    if not labels.any():
        labels[draw(st.integers(0, n - 1))] = 1
    return labels


@settings(max_examples=60, deadline=None)
@given(labelled())
def test_a_perfect_detector_scores_one(y_true):
    y_score = y_true + 0.0
    assert point_adjusted_f1(y_true, y_true) == 1.0
    assert range_f1(y_true, y_true) == pytest.approx(1.0)
    assert tuple(affiliation(y_true, y_true)) == pytest.approx((1.0, 1.0))
    assert event_recall(y_true, y_true) == 1.0 and mean_detection_delay(y_true, y_true) == 0.0
    assert pate_f1(y_true, y_true, early_buffer=3, delay_buffer=3) == pytest.approx(1.0)
    if not y_true.all():
        assert auc_roc(y_true, y_score) == 1.0 and auc_pr(y_true, y_score) == 1.0
        assert vus(y_true, y_score, window=0).pr == pytest.approx(1.0)


@settings(max_examples=60, deadline=None)
@given(labelled(), st.data())
def test_values_stay_in_range_and_recall_grows_with_detections(y_true, data):
    n = y_true.size
    y_pred = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=np.int64)
    more = y_pred | np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=np.int64)
    for metric in (point_adjusted, range_precision_recall):
        result = metric(y_true, y_pred)
        assert 0 <= result.precision <= 1 and 0 <= result.recall <= 1
    assert point_adjusted(y_true, more).recall >= point_adjusted(y_true, y_pred).recall
    # Range recall grows with detections only without the cardinality penalty: with it, a new
    # detection can add a second range over the same event and halve its reward (0 0 1 1 -> 1 0 1 1).
    assert range_precision_recall(y_true, more, cardinality="one").recall >= \
        range_precision_recall(y_true, y_pred, cardinality="one").recall - 1e-12
    aff = affiliation(y_true, y_pred)
    assert 0 <= aff.recall <= 1 + 1e-12 and (np.isnan(aff.precision) or 0 <= aff.precision <= 1 + 1e-12)
    assert event_recall(y_true, more) >= event_recall(y_true, y_pred)


BAD_INPUTS = [
    ([0, 1, 2], [0, 1, 0], "only 0 and 1"),
    ([0, 1, 0], [0, 1], "differ in length"),
    ([], [], "empty"),
    ([0, 1, 0], [0, float("nan"), 1], "NaN"),
    ([[0, 1]], [[0, 1]], "one-dimensional"),
    ([0, 1, 0], ["a", "b", "c"], "numeric"),
]


@pytest.mark.parametrize("y_true, y_pred, message", BAD_INPUTS)
@pytest.mark.parametrize("metric", [point_adjusted, range_precision_recall, affiliation, event_recall,
                                    detection_delays])
def test_binary_metrics_reject_bad_input_in_one_line(metric, y_true, y_pred, message):
    with pytest.raises(EvaluationInputError, match=message) as err:
        metric(y_true, y_pred)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("metric", [auc_roc, auc_pr, vus])
def test_score_metrics_reject_bad_input_in_one_line(metric):
    for y_true, y_score, message in [([0, 1, 2], [0.1, 0.2, 0.3], "only 0 and 1"),
                                     ([0, 1], [0.1, float("inf")], "NaN or infinite")]:
        with pytest.raises(EvaluationInputError, match=message) as err:
            metric(y_true, y_score)
        assert "\n" not in str(err.value)


def test_options_are_checked():
    for options, message in [({"alpha": 2}, "alpha"), ({"cardinality": "many"}, "cardinality"),
                             ({"recall_bias": "left"}, "recall_bias")]:
        with pytest.raises(EvaluationInputError, match=message):
            range_precision_recall([0, 1], [0, 1], **options)
    with pytest.raises(EvaluationInputError, match="window"):
        vus([0, 1], [0.1, 0.2], window=-1)
