"""PATE (evaluation.pate): the reference's numbers, hand-worked cases, and properties.

The fixtures in tests/fixtures/pate come from the reference package pate 0.1.1
(tests/fixtures/pate/make_fixtures.py); NAB inputs are re-read from ../shared/data.
"""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation.pate import buffer_sizes, pate, pate_f1, pr_area, threshold_grid

FIXTURES = Path(__file__).parent / "fixtures" / "pate"
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
REFERENCE_PYTHON = Path(__file__).resolve().parents[1] / ".venv-pate" / "bin" / "python"
CASES = json.loads((FIXTURES / "cases.json").read_text())
OUR_NAMES = {"e_buffer": "early_buffer", "d_buffer": "delay_buffer", "num_splits_MaxBuffer": "num_splits",
             "include_zero": "include_zero", "Big_Data": "big_data", "num_desired_thresholds": "num_thresholds",
             "drop_intermediate": "drop_intermediate"}
BINARY_KEYS = {"early_buffer", "delay_buffer", "num_splits", "include_zero"}


def labels_of(n: int, intervals) -> np.ndarray:
    y = np.zeros(n, dtype=np.int64)
    for start, end in intervals:
        y[start:end + 1] = 1
    return y


def nab_scores(path: str, sha256: str) -> np.ndarray:
    file = DATA / path
    assert file.exists(), f"NAB data missing: {file} (the tests expect ../shared/data beside the repo)"
    assert hashlib.sha256(file.read_bytes()).hexdigest() == sha256, f"{file} differs from the fixture's copy"
    with open(file, newline="") as fh:
        return np.array([float(row["anomaly_score"]) for row in csv.DictReader(fh)])


def fixture_inputs(case: dict) -> tuple[np.ndarray, np.ndarray]:
    with np.load(FIXTURES / "inputs.npz") as arrays:
        y_true = labels_of(case["n"], arrays[f"{case['name']}.labels"])
        source = case["source"]
        if "codes" in source:
            return y_true, arrays[f"{source['codes']}.codes"].astype(np.float64) / source["denominator"]
    scores = nab_scores(source["nab"], source["sha256"])
    if "threshold" in source:
        scores = (scores >= source["threshold"]).astype(np.float64)
    return y_true, scores


def ours(case: dict, y_true: np.ndarray, y_score: np.ndarray, **extra) -> float:
    kwargs = {OUR_NAMES[key]: value for key, value in case["params"].items()} | extra
    if case["binary"]:
        return pate_f1(y_true, y_score, **{k: v for k, v in kwargs.items() if k in BINARY_KEYS | {"variant"}})
    return pate(y_true, y_score, **kwargs)


# ------------------------------------------------------------------ the reference's numbers

@pytest.mark.parametrize("case", CASES, ids=[f"{c['name']}-{c['params_name']}" for c in CASES])
def test_equals_reference_fixture(case):
    y_true, y_score = fixture_inputs(case)
    assert ours(case, y_true, y_score) == pytest.approx(case["expected"], abs=1e-9, rel=0)


def test_fixture_grid_covers_what_it_should():
    names = {c["name"] for c in CASES}
    assert len(CASES) >= 250
    assert {c["n"] for c in CASES} >= {100, 1000, 10_000, 100_000}
    assert any(c["binary"] for c in CASES if c["n"] == 100_000)
    assert any(not c["binary"] for c in CASES if c["n"] == 100_000)
    assert sum("nab" in c["source"] for c in CASES) >= 10
    assert {c["params_name"] for c in CASES} >= {"default", "split3", "split2", "zero", "wide", "asym5", "fullgrid",
                                                  "fullgrid_nodrop", "bigdata_nodrop"}
    for part in ("edges", "touching", "constant", "tied", "many_events", "single_points", "no_labels", "all_labels"):
        assert any(part in name for name in names), part


def test_live_cross_check_with_reference():
    """Random cases through the reference itself, in its own venv (``make setup`` makes it)."""
    assert REFERENCE_PYTHON.exists(), f"{REFERENCE_PYTHON} is missing: `make setup` creates the reference's venv"
    rng = np.random.default_rng(7)
    cases = []
    for _ in range(30):
        n = int(rng.integers(30, 400))
        y_true = (rng.random(n) < rng.uniform(0.02, 0.3)).astype(int)
        y_true[rng.integers(0, n, 3)] = 1
        y_score = np.round(rng.random(n), int(rng.integers(1, 4)))
        params = {"e_buffer": int(rng.integers(0, 30)), "d_buffer": int(rng.integers(0, 30)),
                  "num_splits_MaxBuffer": int(rng.integers(1, 4)), "include_zero": bool(rng.integers(0, 2)),
                  "Big_Data": bool(rng.integers(0, 2)), "num_desired_thresholds": int(rng.integers(5, 300)),
                  "drop_intermediate": bool(rng.integers(0, 2))}
        predicted = (y_score > 0.7).astype(int)
        cases += [{"y_true": y_true.tolist(), "y_score": y_score.tolist(), "binary": False, "params": params},
                  {"y_true": y_true.tolist(), "y_score": predicted.tolist(), "binary": True, "params": params}]
    done = subprocess.run([str(REFERENCE_PYTHON), str(FIXTURES / "reference_cli.py")], input=json.dumps(cases),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    for case, expected in zip(cases, json.loads(done.stdout), strict=True):
        got = ours(case, np.array(case["y_true"]), np.array(case["y_score"], dtype=float))
        assert got == pytest.approx(expected, abs=1e-9, rel=0), case["params"]


# ------------------------------------------------------------------ hand-worked cases
# Notation: event [s, e] of length L; a post-buffer point x with buffer end b weighs
# 1 - (L(x - s) - L(L-1)/2) / (L(b - s) - L(L-1)/2); a pre-buffer point x with buffer start a weighs
# 1 - (L(s - x) + L(L-1)/2) / (L(s - a) + L(L-1)/2). One buffer pair (include_zero=False, one split).

def f1(precision: Fraction, recall: Fraction) -> float:
    return float(2 * precision * recall / (precision + recall))


def test_hand_late_detection_of_a_missed_event():
    # Event [10, 14] (L=5), buffers 5: post-buffer [15, 19]. A single detection at 16 weighs
    # 1 - (5*6 - 10) / (5*9 - 10) = 3/7 as TP (4/7 as FP); the event itself is wholly missed: FN = 5.
    precision, recall = Fraction(3, 7), Fraction(3, 7) / (Fraction(3, 7) + 5)
    y = labels_of(40, [(10, 14)])
    got = pate_f1(y, labels_of(40, [(16, 16)]), early_buffer=5, delay_buffer=5, include_zero=False)
    assert got == pytest.approx(f1(precision, recall), abs=1e-12)  # 2/15
    # The corrected variant treats it like the early detection below: a plain false positive.
    assert pate_f1(y, labels_of(40, [(16, 16)]), early_buffer=5, delay_buffer=5, include_zero=False,
                   variant="corrected") == 0.0


def test_hand_early_detection():
    # Same event; a detection at 8 (pre-buffer [5, 9]) weighs 1 - (5*2 + 10) / (5*5 + 10) = 3/7,
    # but only if the event is detected too. Alone it is a false positive: F1 = 0.
    y = labels_of(40, [(10, 14)])
    kwargs = {"early_buffer": 5, "delay_buffer": 5, "include_zero": False}
    assert pate_f1(y, labels_of(40, [(8, 8)]), **kwargs) == 0.0
    # With the event detected: TP = 5 + 3/7 over 6 predicted points, recall 1.
    precision = (5 + Fraction(3, 7)) / 6
    assert pate_f1(y, labels_of(40, [(8, 8), (10, 14)]), **kwargs) == pytest.approx(f1(precision, Fraction(1)))


def test_hand_partly_missed_event():
    # Event [10, 19] (L=10, M = L(L-1)/2 = 45), no buffers, 8 of its points detected.
    # A missed point x weighs 1 up to s + delta, beyond it 1 - sum_{y=s}^{s+delta} (x - y) / M,
    # delta = length of the first detected run.
    # a) detected {10} + [12, 18]: delta = 1; missed 11 weighs 1, missed 19 weighs 1 - (9 + 8) / 45 = 28/45.
    # c) detected [10, 11] + [13, 18]: delta = 2; missed 12 weighs 1, 19 weighs 1 - (9 + 8 + 7) / 45 = 21/45.
    y = labels_of(30, [(10, 19)])
    kwargs = {"early_buffer": 0, "delay_buffer": 0, "include_zero": False}
    for detected, fn in ([[(10, 10), (12, 18)], 1 + Fraction(28, 45)], [[(10, 11), (13, 18)], 1 + Fraction(21, 45)]):
        recall = Fraction(8) / (8 + fn)
        assert pate_f1(y, labels_of(30, detected), **kwargs) == pytest.approx(f1(Fraction(1), recall), abs=1e-12)
        # corrected: delta = 8 detected points; 19 weighs 1 - (9+8+...+1) / 45 = 0, the other missed point 1.
        assert pate_f1(y, labels_of(30, detected), variant="corrected", **kwargs) == pytest.approx(16 / 17)


def test_hand_continuous_curve():
    # y = 0 0 1 1 0 0 0 0, scores .1 .2 .9 .3 .8 0 .1 .2, buffers 2: pre-buffer [0, 1], post-buffer [4, 5].
    # Point 4 weighs 1 - (2*2 - 1) / (2*3 - 1) = 2/5, point 1 also 2/5, points 0 and 5 weigh 0.
    # Thresholds: distinct scores .9 .8 .3 .2 .1 0; .2 and .1 are dropped (labelled count unchanged around them).
    #   .9: {2}        TP 1,    P 1,     FN 1 (point 3 is within s + delta) -> R 1/2
    #   .8: {2,4}      TP 7/5,  P 7/10,  R (7/5) / (7/5 + 1) = 7/12
    #   .3: {2,3,4}    TP 12/5, P 4/5,   R 1
    #   0 : all        TP 14/5, P 7/20,  R 1
    # Area from (0, 1): 1/2 * 1 + 1/12 * (1 + 7/10)/2 + 5/12 * (7/10 + 4/5)/2 = 53/60.
    y = [0, 0, 1, 1, 0, 0, 0, 0]
    scores = [0.1, 0.2, 0.9, 0.3, 0.8, 0.0, 0.1, 0.2]
    kwargs = {"early_buffer": 2, "delay_buffer": 2, "include_zero": False}
    assert threshold_grid(np.array(y) == 1, np.array(scores), big_data=False).tolist() == [0.9, 0.8, 0.3, 0.0]
    assert pate(y, scores, big_data=False, **kwargs) == pytest.approx(53 / 60, abs=1e-12)
    assert pate(y, scores, **kwargs) == pytest.approx(53 / 60, abs=1e-12)  # the percentile grid adds nothing new


def test_hand_constant_scores():
    # Event [5, 9] in 20 points, buffers 2: everything is predicted at the only threshold.
    # TP = 5 + 1/4 (pre 4) + 1/4 (post 10) = 11/2, P = 11/40, R = 1; area from (0, 1): (1 + 11/40) / 2.
    y = labels_of(20, [(5, 9)])
    kwargs = {"early_buffer": 2, "delay_buffer": 2, "include_zero": False}
    assert pate(y, np.full(20, 0.5), **kwargs) == pytest.approx(51 / 80)
    assert pate(y, np.full(20, 0.5), variant="corrected", **kwargs) == pytest.approx(11 / 40)


def test_hand_pr_area_and_buffer_grid():
    # (0,1) (.5,1) (.25,.9: recall falls, dropped) (1,.5): .5 * 1 + .5 * .75
    assert pr_area(np.array([1.0, 0.9, 0.5]), np.array([0.5, 0.25, 1.0])) == 0.875
    assert buffer_sizes(10, 4, include_zero=True).tolist() == [0, 2, 5, 7, 10]
    assert buffer_sizes(10, 4, include_zero=False).tolist() == [2, 5, 7, 10]


# ------------------------------------------------------------------ properties

@st.composite
def labelled_series(draw, min_events: int = 1):
    """(labels, event intervals) with separated events."""
    n = draw(st.integers(5, 300))
    cuts = sorted(draw(st.sets(st.integers(0, n - 1), min_size=2 * min_events, max_size=12)))
    intervals = [(a, b) for a, b in zip(cuts[::2], cuts[1::2])]
    intervals = [iv for i, iv in enumerate(intervals) if i == 0 or iv[0] > intervals[i - 1][1] + 1]
    return labels_of(n, intervals), intervals


buffers = st.fixed_dictionaries({"early_buffer": st.integers(0, 60), "delay_buffer": st.integers(0, 60),
                                 "num_splits": st.integers(1, 4), "include_zero": st.booleans()})


@settings(max_examples=60, deadline=None)
@given(labelled_series(), buffers, st.sampled_from(["reference", "corrected"]))
def test_perfect_detector_scores_one(series, kwargs, variant):
    y, _ = series
    assert pate_f1(y, y, variant=variant, **kwargs) == 1.0
    assert pate(y, y.astype(float), variant=variant, **kwargs) == pytest.approx(1.0, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(labelled_series(), buffers, st.data())
def test_detection_beyond_every_buffer_is_a_false_positive(series, kwargs, data):
    y, intervals = series
    early, delay = kwargs["early_buffer"], kwargs["delay_buffer"]
    far = [x for x in range(y.size) if all(x < s - early or x > e + delay for s, e in intervals)]
    if not far:
        return
    predicted = y.copy()
    predicted[data.draw(st.sampled_from(far))] = 1
    labelled = int(y.sum())  # TP = labelled points, FP = 1, FN = 0
    assert pate_f1(y, predicted, **kwargs) == pytest.approx(2 * labelled / (2 * labelled + 1), abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(labelled_series(min_events=0), st.lists(st.floats(0, 1), min_size=300, max_size=300), buffers)
def test_scores_lie_in_the_unit_interval(series, raw, kwargs):
    y, _ = series
    value = pate(y, np.array(raw[:y.size]), num_thresholds=20, **kwargs)
    assert 0.0 <= value <= 1.0


def assert_one_line_value_error(call, match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        call()
    assert "\n" not in str(info.value)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 50), st.integers(1, 50))
def test_length_mismatch_is_refused(n, m):
    if n != m:
        assert_one_line_value_error(lambda: pate(np.zeros(n), np.zeros(m)), "differ in length")
        assert_one_line_value_error(lambda: pate_f1(np.zeros(n), np.zeros(m)), "differ in length")


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 50), st.data(), st.sampled_from([np.nan, np.inf, -np.inf]))
def test_nan_or_infinite_scores_are_refused(n, data, bad):
    scores = np.linspace(0, 1, n)
    scores[data.draw(st.integers(0, n - 1))] = bad
    assert_one_line_value_error(lambda: pate(np.zeros(n), scores), "NaN or infinite")
    assert_one_line_value_error(lambda: pate(scores, np.zeros(n)), "NaN or infinite")


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 50), st.data(), st.sampled_from([2, -1, 0.5, 1.0000001]))
def test_non_binary_labels_or_predictions_are_refused(n, data, bad):
    values = np.zeros(n)
    values[data.draw(st.integers(0, n - 1))] = bad
    assert_one_line_value_error(lambda: pate(values, np.zeros(n)), "only 0 and 1")
    assert_one_line_value_error(lambda: pate_f1(np.zeros(n), values), "only 0 and 1")


@pytest.mark.parametrize("call, match", [
    (lambda: pate([], []), "empty"),
    (lambda: pate_f1([], []), "empty"),
    (lambda: pate(np.zeros((3, 2)), np.zeros((3, 2))), "one-dimensional"),
    (lambda: pate([0, 1], ["a", "b"]), "numeric"),
    (lambda: pate([0, 1], [0.1, 0.2], early_buffer=-1), "early_buffer"),
    (lambda: pate([0, 1], [0.1, 0.2], delay_buffer=2.5), "delay_buffer"),
    (lambda: pate_f1([0, 1], [0, 1], num_splits=0), "num_splits"),
    (lambda: pate([0, 1], [0.1, 0.2], num_thresholds=0), "num_thresholds"),
    (lambda: pate([0, 1], [0.1, 0.2], variant="fixed"), "variant"),
])
def test_bad_arguments_are_refused(call, match):
    assert_one_line_value_error(call, match)
