"""VUS, AUC, point-adjust, range-based and affiliation metrics against TSB-AD's own numbers.

tests/fixtures/vus/make_fixtures.py ran TSB-AD's ``TSB_AD/evaluation`` code (its commit is in
cases.json) on random and NAB-derived cases; the inputs and outputs are committed, so these
tests need no TSB-AD install.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from evaluation.affiliation import affiliation
from evaluation.auc import auc_pr, auc_roc
from evaluation.point_adjust import point_adjusted
from evaluation.ranges import range_precision_recall
from evaluation.vus import vus

FIXTURES = Path(__file__).parent / "fixtures" / "vus"
DOCUMENT = json.loads((FIXTURES / "cases.json").read_text())
CASES = DOCUMENT["cases"]
ARRAYS = dict(np.load(FIXTURES / "inputs.npz"))


def _binary(n: int, intervals: np.ndarray) -> np.ndarray:
    out = np.zeros(n, dtype=np.int64)
    for start, end in intervals:
        out[start:end + 1] = 1
    return out


def _inputs(case: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n, name = case["n"], case["name"]
    return (_binary(n, ARRAYS[f"{name}.events"]), ARRAYS[f"{name}.codes"] / 65535.0,
            _binary(n, ARRAYS[f"{name}.pred"]))


def test_fixtures_cover_what_they_should():
    assert len(CASES) >= 50 and len(DOCUMENT["tsb_ad_commit"]) == 40
    assert {c["n"] for c in CASES} >= {100, 1000, 10_000, 100_000}
    assert {c["window"] for c in CASES} >= {0, 7, 100, 400}
    names = {c["name"] for c in CASES}
    for part in ("edges", "close_events", "constant", "tied", "nab_"):
        assert any(part in name for name in names), part


@pytest.mark.parametrize("case", CASES, ids=[f"{c['name']}-w{c['window']}-t{c['thresholds']}" for c in CASES])
def test_vus_equals_tsb_ad(case):
    y_true, y_score, _ = _inputs(case)
    got = vus(y_true, y_score, window=case["window"], num_thresholds=case["thresholds"])
    assert got.roc == pytest.approx(case["vus_roc"], abs=1e-9, rel=0)
    assert got.pr == pytest.approx(case["vus_pr"], abs=1e-9, rel=0)


@pytest.mark.parametrize("case", [c for c in CASES if c["window"] == 100],
                         ids=[c["name"] for c in CASES if c["window"] == 100])
def test_threshold_metrics_equal_tsb_ad(case):
    y_true, y_score, y_pred = _inputs(case)
    assert auc_roc(y_true, y_score) == pytest.approx(case["auc_roc"], abs=1e-12)
    assert auc_pr(y_true, y_score) == pytest.approx(case["auc_pr"], abs=1e-12)
    adjusted = point_adjusted(y_true, y_pred)
    assert [adjusted.precision, adjusted.recall] == pytest.approx(case["pa_precision_recall"], abs=1e-12)
    assert range_precision_recall(y_true, y_pred, alpha=0.2).recall == pytest.approx(
        case["range_recall_alpha_0.2"], abs=1e-12)
    ranges = range_precision_recall(y_true, y_pred)
    assert ranges.recall == pytest.approx(case["range_recall_alpha_0"], abs=1e-12)
    if case["range_precision"] is not None:
        assert ranges.precision == pytest.approx(case["range_precision"], abs=1e-12)
    if "affiliation" in case:
        assert list(affiliation(y_true, y_pred)) == pytest.approx(case["affiliation"], abs=1e-9)


def test_vus_hand_cases():
    # One labelled point, window 0, every rank a threshold. Label scored highest: every
    # threshold has recall 1 and existence 1, so ROC and PR areas are 1.
    assert tuple(vus([0, 1, 0, 0], [0.1, 0.9, 0.2, 0.3], window=0, num_thresholds=4)) == (1.0, 1.0)
    # Label scored lowest: thresholds 0.9, 0.3, 0.2 catch 1, 2, 3 normal points and no label
    # (TPR 0, FPR 1/3, 2/3, 1); 0.1 catches all 4: TPR 1 at FPR 1, precision 1/4.
    # ROC area 0; PR area: recall steps 0 -> 1 once, at precision 1/4.
    assert tuple(vus([0, 1, 0, 0], [0.9, 0.1, 0.2, 0.3], window=0, num_thresholds=4)) == (0.0, 0.25)


def test_vus_without_labels_is_nan():
    assert all(np.isnan(vus([0, 0, 0], [0.1, 0.2, 0.3])))
