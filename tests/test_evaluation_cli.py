"""`argus evaluate`: table, JSON and HTML reports on NAB files and on a small hand-made case."""

from __future__ import annotations

import base64
import json
import re
import uuid
from pathlib import Path

import pytest

from argus.cli import main
from evaluation.point_adjust import point_adjusted_f1
from evaluation.vus import vus_pr

NAB = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "NAB"
LABELS = str(NAB / "labels" / "combined_windows.json")


@pytest.fixture
def hand_case(tmp_path):
    """Series 'm' of 12 points labelled [4, 6]; scores peak at 5, a false alarm at 10."""
    scores = [0.1, 0.1, 0.2, 0.1, 0.6, 0.9, 0.3, 0.1, 0.1, 0.2, 0.8, 0.1]
    (tmp_path / "labels.json").write_text(json.dumps({"m": [[4, 6]]}))
    (tmp_path / "scores.csv").write_text("index,score\n" + "".join(f"{i},{s}\n" for i, s in enumerate(scores)))
    return tmp_path, scores


def run_json(capsys, *args) -> dict:
    assert main(["evaluate", *args, "--format", "json", "--quiet"]) == 0
    return json.loads(capsys.readouterr().out)


def test_hand_case_table_and_json(hand_case, capsys):
    folder, scores = hand_case
    args = ["--labels", str(folder / "labels.json"), "--scores", str(folder / "scores.csv"), "--threshold", "0.5",
            "--window", "4", "--early-buffer", "2", "--delay-buffer", "2"]
    result = run_json(capsys, *args)
    m = result["series"]["m"]
    # Detections at 4, 5 (inside [4, 6]) and 10 (outside): point-adjust fills 6 -> P 3/4, R 1.
    assert m["pa_f1"] == pytest.approx(2 * 0.75 / 1.75)
    assert m["event_recall"] == 1.0 and m["detection_delay"] == 0.0
    # Range-based: R covered 2/3; predictions [4, 5] covered 2/2, [10] 0 -> precision 1/2.
    assert m["range_recall"] == pytest.approx(2 / 3) and m["range_precision"] == pytest.approx(0.5)
    y_true = [0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0]
    assert m["vus_pr"] == pytest.approx(vus_pr(y_true, scores, window=4))
    assert result["overall"]["pa_f1"] == m["pa_f1"] and result["thresholds"]["m"] == 0.5
    assert main(["evaluate", *args, "--metrics", "pa_f1,event_recall", "--quiet"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["series", "pa_f1", "event_recall"]
    assert table[2].split() == ["m", "0.8571", "1.0000"] and table[-1].split() == ["overall", "0.8571", "1.0000"]
    assert point_adjusted_f1(y_true, [s >= 0.5 for s in scores]) == pytest.approx(0.857142857)


def test_nan_scores_count_as_the_series_lowest_score(hand_case, capsys):
    folder, scores = hand_case
    for name, first in (("warming", "nan"), ("filled", min(scores[3:]))):  # no opinion yet on three points
        values = [first] * 3 + scores[3:]
        (folder / f"{name}.csv").write_text("index,score\n" + "".join(f"{i},{s}\n" for i, s in enumerate(values)))
    common = ["--labels", str(folder / "labels.json"), "--metrics", "auc_roc", "vus_pr", "pa_f1", "--threshold", "0.5"]
    result = run_json(capsys, *common, "--scores", str(folder / "warming.csv"))
    assert result["series"] == run_json(capsys, *common, "--scores", str(folder / "filled.csv"))["series"]
    assert result["notes"] == ["3 NaN scores (no opinion yet) in 1 series count as their series' lowest score"]


def test_nab_folder_json_reproduces_the_published_nab_score(capsys):
    result = run_json(capsys, "--labels", LABELS, "--scores", str(NAB / "results" / "windowedGaussian"),
                      "--metrics", "nab", "auc_pr")
    assert len(result["series"]) == 58 and result["nab"]["threshold"] == 1.0
    assert result["overall"]["nab"] == pytest.approx(39.649523496077585, abs=1e-6)


def test_nab_html_report_has_a_plot_per_series(tmp_path, capsys):
    out = tmp_path / "report.html"
    code = main(["evaluate", "--labels", LABELS, "--scores", str(NAB / "results" / "bayesChangePt" / "realKnownCause"),
                 "--series", str(NAB / "data"), "--format", "html", "--out", str(out), "--quiet",
                 "--metrics", "auc_roc", "vus_pr", "pate", "affiliation_precision", "nab"])
    assert code == 0 and "wrote html report on 7 series" in capsys.readouterr().err
    page = out.read_text()
    images = re.findall(r"src='data:image/png;base64,([^']+)'", page)
    assert len(images) == 7 and all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert "realKnownCause/nyc_taxi" in page and "<td>overall</td>" in page
    assert not re.search(r"(src|href)='(?!data:|#)", page)  # self-contained: nothing fetched


def test_nab_table_lists_every_series_and_overall(capsys):
    assert main(["evaluate", "--labels", LABELS, "--scores", str(NAB / "results" / "null" / "realTraffic"),
                 "--metrics", "pate_f1", "nab", "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("realTraffic/") for line in lines) == 7
    assert any(line.startswith("overall") for line in lines) and "NAB (standard): 0.0000" in "\n".join(lines)


def test_alerts_file_with_series(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "n1.csv").write_text("timestamp,value\n" + "".join(f"{t},{t % 7}\n" for t in range(100, 120)))
    (tmp_path / "labels.json").write_text(json.dumps({"n1": [[105, 108]]}))
    (tmp_path / "alerts.json").write_text(json.dumps([{"source": "n1", "start": 107, "end": 109}]))
    result = run_json(capsys, "--labels", str(tmp_path / "labels.json"), "--alerts", str(tmp_path / "alerts.json"),
                      "--series", str(tmp_path / "data"), "--metrics", "event_recall", "detection_delay")
    assert result["series"]["n1"] == {"event_recall": 1.0, "detection_delay": 2.0}


@pytest.mark.parametrize("args, message", [
    (["--scores", "nowhere.csv"], "nowhere.csv: no such file or folder"),
    (["--alerts", "nowhere.json"], "alerts need --series"),
    (["--scores", "{scores}", "--metrics", "f2"], "unknown metric 'f2'"),
])
def test_errors_are_one_line_and_exit_2(hand_case, capsys, args, message):
    folder, _ = hand_case
    args = [a.format(scores=folder / "scores.csv") for a in args]
    assert main(["evaluate", "--labels", str(folder / "labels.json"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("argus evaluate: error: ") and message in err and err.count("\n") == 1


@pytest.mark.kafka
def test_alerts_topic(kafka_broker, tmp_path, capsys):
    from streams.alerts import Alert
    from streams.kafka_clients import ensure_topics, make_producer

    connection = {"bootstrap_servers": kafka_broker.bootstrap}
    topic = f"alerts-{uuid.uuid4().hex[:8]}"
    ensure_topics(connection, {topic: 1})
    producer = make_producer(connection)
    for start, end in [(105.0, 106.0), (115.0, 115.0)]:
        alert = Alert(id=f"a{start}", source="n1", modality="series", start=start, end=end, score=2.0, threshold=1.0,
                      detector="halfspace", status="closed")
        producer.send(topic, key=alert.id.encode(), value=alert.to_json())
    producer.flush()
    producer.close()
    (tmp_path / "n1.csv").write_text("timestamp,value\n" + "".join(f"{t},0\n" for t in range(100, 120)))
    (tmp_path / "labels.json").write_text(json.dumps({"n1": [[104, 108]]}))
    result = run_json(capsys, "--labels", str(tmp_path / "labels.json"), "--alerts-topic", topic,
                      "--bootstrap-servers", kafka_broker.bootstrap, "--idle-timeout", "3",
                      "--series", str(tmp_path / "n1.csv"), "--metrics", "event_recall", "detection_delay", "pa_f1")
    # detections 105, 106 (in [104, 108]) and 115: point-adjust -> 5 TP of 6 predicted, recall 1
    assert result["series"]["n1"]["detection_delay"] == 1.0
    assert result["series"]["n1"]["pa_f1"] == pytest.approx(2 * (5 / 6) / (5 / 6 + 1))


def test_help_lists_every_metric():
    from argus.evaluate import METRIC_NAMES
    from evaluation.report import METRICS

    assert METRIC_NAMES.split() == list(METRICS)
