"""Reading labels, scores and alerts, and matching them: formats accepted, errors in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evaluation.dataset import label_intervals, match_alerts, match_scores, series_key
from evaluation.errors import EvaluationInputError
from evaluation.inputs import load_alerts, load_labels, load_scores, load_series

TIMES = ["2024-01-01 00:00:00", "2024-01-01 00:01:00", "2024-01-01 00:02:00", "2024-01-01 00:03:00",
         "2024-01-01 00:04:00", "2024-01-01 00:05:00"]


def write_csv(path, header, rows):
    path.write_text("\n".join([header] + [",".join(map(str, row)) for row in rows]) + "\n")
    return path


def test_labels_json_and_csv_agree(tmp_path):
    (tmp_path / "l.json").write_text(json.dumps({"a.csv": [[TIMES[1], TIMES[2]]], "b.csv": []}))
    write_csv(tmp_path / "l.csv", "series,start,end", [("a.csv", TIMES[1], TIMES[2])])
    assert load_labels(tmp_path / "l.json")["a.csv"] == load_labels(tmp_path / "l.csv")["a.csv"]


def test_scores_from_csv_json_and_folder_match_labels(tmp_path):
    labels = {"cat/a.csv": [[TIMES[1], TIMES[2]]], "cat/b.csv": [[TIMES[4], TIMES[5]]]}
    folder = tmp_path / "det"
    (folder / "cat").mkdir(parents=True)
    for name in ("a", "b"):  # NAB's results layout: <detector>_<series>
        write_csv(folder / "cat" / f"det_{name}.csv", "timestamp,anomaly_score",
                  [(t, i / 10) for i, t in enumerate(TIMES)])
    write_csv(folder / "det_standard_scores.csv", "Detector,File", [("det", "cat/a.csv")])
    data, notes = match_scores(labels, load_scores(folder))
    assert sorted(d.name for d in data) == ["cat/a", "cat/b"]
    assert notes == ["skipped det_standard_scores.csv: no score or prediction column"]
    a = next(d for d in data if d.name == "cat/a")
    assert a.intervals == [(1, 2)] and a.timed and a.y_true.tolist() == [0, 1, 1, 0, 0, 0]
    (tmp_path / "s.json").write_text(json.dumps({"cat/a": {"timestamp": TIMES, "score": [0.0] * 6},
                                                 "cat/b": [0.1] * 6}))
    labels = {"cat/a.csv": [[TIMES[1], TIMES[2]]], "cat/b.csv": [[2, 3]]}
    data, _ = match_scores(labels, load_scores(tmp_path / "s.json"))
    assert [d.intervals for d in data] == [[(1, 2)], [(2, 3)]] and not data[1].timed


def test_one_csv_with_series_column_and_index_labels(tmp_path):
    write_csv(tmp_path / "p.csv", "series,index,prediction", [("x", i, int(i == 3)) for i in range(5)] +
              [("y", i, 0) for i in range(5)])
    data, notes = match_scores({"x": [[2, 3]], "y": [], "z": [[0, 1]]}, load_scores(tmp_path / "p.csv"))
    assert [d.binary for d in data] == [True, True] and data[0].intervals == [(2, 3)]
    assert notes == ["1 labelled series have no scores and are left out"]


def test_times_that_repeat_or_step_back_map_as_nab_does():
    times = np.array([0.0, 1, 2, 2, 3, 1, 2, 4, 5])  # a repeated 2, then a step back to 1
    # start 2 -> first row at 2 (row 2); end 3 -> first row at 3 (row 4)
    assert label_intervals("s", [[2, 3]], times, timed=False) == [(2, 4)]
    # end 3.5 (no row at it) -> the last row before the first time past it: row 6
    assert label_intervals("s", [[2, 3.5]], times, timed=False) == [(2, 6)]


@pytest.mark.parametrize("intervals, message", [
    ([[3, 4], [1, 2]], "starts before the previous one"),
    ([[1, 3], [3, 4]], "overlaps the previous one"),
    ([[4, 2]], "ends before it starts"),
    ([[2, 9]], "lies outside the series"),
    ([[-3, 1]], "lies outside the series"),
    ([[1.2, 1.5]], "holds no point"),
    ([["2024-01-01", "2024-01-02"]], "are dates but its scores have no time column"),
])
def test_bad_label_intervals_get_one_line_errors(intervals, message):
    with pytest.raises(EvaluationInputError, match=message) as err:
        label_intervals("s", intervals, np.arange(6.0), timed=False)
    assert "\n" not in str(err.value)


def test_mismatched_names_and_nan_scores_get_one_line_errors(tmp_path):
    (tmp_path / "s.json").write_text(json.dumps({"a": [0.1, 0.2], "b": [0.1, 0.3]}))
    with pytest.raises(EvaluationInputError, match="scored series 'b' has no labels") as err:
        match_scores({"a": [], "c": []}, load_scores(tmp_path / "s.json"))
    assert "\n" not in str(err.value)
    write_csv(tmp_path / "n.csv", "timestamp,score", [(TIMES[0], 0.1), (TIMES[1], "nan")])
    with pytest.raises(EvaluationInputError, match=r"NaN or infinite value\(s\), the first at row 1 \(2024-01-01 00:01"
                       ):
        match_scores({"n": []}, load_scores(tmp_path / "n.csv"))
    for path, message in [(tmp_path / "missing.json", "no such file"), (tmp_path / "n.csv", "needs columns")]:
        with pytest.raises(EvaluationInputError, match=message):
            load_labels(path)


def test_alerts_become_predictions_over_their_intervals(tmp_path):
    write_csv(tmp_path / "node-1.csv", "timestamp,value", [(t, i) for i, t in enumerate(TIMES)])
    start, end = 1704067260.0, 1704067320.0  # 00:01 and 00:02 UTC in epoch seconds
    alerts = [{"source": "node-1", "start": start, "end": end, "status": "closed", "score": 3.0}]
    (tmp_path / "alerts.jsonl").write_text("\n".join(json.dumps(a) for a in alerts) + "\n")
    data, notes = match_alerts({"node-1": [[TIMES[2], TIMES[3]]]}, load_alerts(tmp_path / "alerts.jsonl"),
                               load_series(tmp_path / "node-1.csv"))
    assert data[0].scores.tolist() == [0, 1, 1, 0, 0, 0] and data[0].binary and data[0].intervals == [(2, 3)]
    assert data[0].values.tolist() == [0, 1, 2, 3, 4, 5] and notes == []
    with pytest.raises(EvaluationInputError, match="comes from 'node-9'"):
        match_alerts({}, [{"source": "node-9", "start": 0, "end": 1}], load_series(tmp_path / "node-1.csv"))
    with pytest.raises(EvaluationInputError, match="needs 'source', 'start' and 'end'"):
        match_alerts({}, [{"source": "node-1"}], load_series(tmp_path / "node-1.csv"))


def test_series_key_drops_file_endings():
    assert series_key("a/b.CSV") == "a/b" and series_key("a/b.json") == "a/b" and series_key("node-1") == "node-1"
