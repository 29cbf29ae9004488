"""Reading labels, scores, predictions, series and alerts from files, as plain arrays.

Labels
    NAB-style JSON ``{"<series>": [[start, end], ...]}`` or a CSV with columns
    ``series,start,end`` (one labelled interval a row). Bounds are timestamps (ISO-8601 strings
    or epoch seconds) or integer indexes; both ends are inside the interval.
Scores or predictions
    A CSV with a score column (``anomaly_score``, ``score``) or a binary prediction column
    (``prediction``, ``predicted``), an optional time column (``timestamp``, ``time``, ``ts``;
    else the row's index, or an ``index`` column) and an optional ``series`` column (else the
    file holds one series, named by its file name); or a JSON
    ``{"<series>": [score, ...]}`` / ``{"<series>": {"timestamp": [...], "score": [...]}}``
    (``prediction`` instead of ``score`` for binary); or a folder of such files, searched
    recursively, each series named by its path in the folder (``a/b.csv``). Folder files with
    none of the score columns (such as NAB's summary ``*_scores.csv`` files) are skipped and
    listed in the notes.
Series
    ``timestamp,value`` CSV files (or a folder of them), as NAB's ``data/``: the time axis for
    alerts and the values drawn in reports.
Alerts
    A JSON list of alerts, or JSON lines (as ``argus alerts --json`` prints), each with at
    least ``source``, ``start`` and ``end``.

Times become float epoch seconds (a date without a zone is UTC); an index stays a number.
Every problem is an :class:`~evaluation.errors.EvaluationInputError` with a one-line message.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from evaluation.errors import EvaluationInputError

TIME_COLUMNS = ("timestamp", "time", "ts", "index")
SCORE_COLUMNS = ("anomaly_score", "score")
PREDICTION_COLUMNS = ("prediction", "predicted")
VALUE_COLUMNS = ("value",)


@dataclass
class Scores:
    """One series' scores (or 0/1 predictions) on its time axis."""

    times: np.ndarray
    values: np.ndarray
    binary: bool = False
    timed: bool = True  # times are dates (epoch seconds), not indexes


@dataclass
class ScoreSet:
    """Scores by series name, and what was skipped while reading them."""

    series: dict[str, Scores]
    notes: list[str] = field(default_factory=list)
    folder_prefix: str = ""  # "<word>_" that every file in the folder starts with (NAB: the detector's name)


def parse_times(raw: list[object], where: str) -> tuple[np.ndarray, bool]:
    """Epoch seconds (dates) or plain numbers (indexes) from strings or numbers; and whether they were dates.

    >>> parse_times(["2014-04-01 00:00:00", "2014-04-01 00:05:00"], "x")
    (array([1.3963104e+09, 1.3963107e+09]), True)
    >>> parse_times(["0", "1", 2], "x")
    (array([0., 1., 2.]), False)
    """
    try:
        return np.array([float(value) for value in raw], dtype=np.float64), False
    except (TypeError, ValueError):
        pass
    try:
        micros = np.array(raw, dtype="datetime64[us]").astype(np.int64)
        return micros / 1e6, True
    except (TypeError, ValueError):
        pass
    out = np.empty(len(raw))
    for i, value in enumerate(raw):
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise EvaluationInputError(f"{where}: {value!r} is neither a number nor an ISO-8601 date") from None
        out[i] = (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp()
    return out, True


def load_labels(path: str | Path) -> dict[str, list[tuple[object, object]]]:
    """Labelled intervals by series name, bounds as written in the file (JSON or CSV)."""
    path = _existing(path)
    if path.suffix.lower() == ".csv":
        rows = _csv_rows(path)
        missing = {"series", "start", "end"} - set(rows[0] if rows else {})
        if missing:
            raise EvaluationInputError(f"{path}: a labels CSV needs columns series,start,end; "
                                       f"missing {sorted(missing)}")
        labels: dict[str, list[tuple[object, object]]] = {}
        for row in rows:
            labels.setdefault(row["series"], []).append((row["start"], row["end"]))
        return labels
    content = _json(path)
    if not isinstance(content, dict):
        raise EvaluationInputError(f"{path}: labels JSON must be an object {{series: [[start, end], ...]}}")
    for name, intervals in content.items():
        if not isinstance(intervals, list) or not all(isinstance(i, list) and len(i) == 2 for i in intervals):
            raise EvaluationInputError(f"{path}: labels of {name!r} must be a list of [start, end] pairs")
    return {name: [tuple(interval) for interval in intervals] for name, intervals in content.items()}


def load_scores(path: str | Path) -> ScoreSet:
    """Scores or predictions by series name from a CSV or JSON file or a folder of them."""
    path = _existing(path)
    if not path.is_dir():
        return ScoreSet(_score_file(path, path.name))
    found, notes = {}, []
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in (".csv", ".json") and p.is_file())
    for file in files:
        name = file.relative_to(path).as_posix()
        try:
            found.update(_score_file(file, name))
        except _NoScoreColumn:
            notes.append(f"skipped {name}: no score or prediction column")
    if not found:
        raise EvaluationInputError(f"{path}: no score files in this folder (CSV or JSON with a score column)")
    return ScoreSet(found, notes, folder_prefix=_shared_prefix([name.rpartition("/")[2] for name in found]))


def load_series(path: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray, bool]]:
    """``timestamp,value`` series by name (file, or folder searched for ``*.csv``): (times, values, timed)."""
    path = _existing(path)
    files = sorted(path.rglob("*.csv")) if path.is_dir() else [path]
    out = {}
    for file in files:
        name = file.relative_to(path).as_posix() if path.is_dir() else file.name
        rows = _csv_rows(file)
        time_column = _first(rows, TIME_COLUMNS)
        value_column = _first(rows, VALUE_COLUMNS)
        if value_column is None:
            raise EvaluationInputError(f"{file}: a series CSV needs a 'value' column")
        times, timed = _times(rows, time_column, file)
        out[name] = (times, _numbers([row[value_column] for row in rows], f"{file}: value"), timed)
    return out


def load_alerts(path: str | Path) -> list[dict]:
    """Alerts from a JSON list or JSON lines."""
    text = _existing(path).read_text()
    try:
        alerts = json.loads(text) if text.lstrip().startswith("[") else [json.loads(line) for line in text.splitlines()
                                                                          if line.strip()]
    except json.JSONDecodeError as err:
        raise EvaluationInputError(f"{path}: not JSON or JSON lines: {err}") from None
    return alerts


def _shared_prefix(names: list[str]) -> str:
    """The ``<word>_`` all names start with, or ''.

    >>> _shared_prefix(["null_a.csv", "null_b_c.csv"]), _shared_prefix(["a_b.csv", "c.csv"])
    ('null_', '')
    """
    word = names[0].partition("_")[0] + "_" if "_" in names[0] else ""
    return word if word and all(name.startswith(word) for name in names) else ""


def _score_file(path: Path, name: str) -> dict[str, Scores]:
    if path.suffix.lower() == ".json":
        return _score_json(path)
    rows = _csv_rows(path)
    value_column = _first(rows, SCORE_COLUMNS + PREDICTION_COLUMNS)
    if value_column is None:
        raise _NoScoreColumn(f"{path}: no score column (one of {', '.join(SCORE_COLUMNS + PREDICTION_COLUMNS)})")
    binary = value_column in PREDICTION_COLUMNS
    time_column = _first(rows, TIME_COLUMNS)
    if rows and "series" in rows[0]:
        groups: dict[str, list[dict]] = {}
        for row in rows:
            groups.setdefault(row["series"], []).append(row)
    else:
        groups = {name: rows}
    out = {}
    for series, series_rows in groups.items():
        times, timed = _times(series_rows, time_column, path)
        values = _numbers([row[value_column] for row in series_rows], f"{path}: {value_column} of {series!r}")
        out[series] = Scores(times, values, binary, timed)
    return out


def _score_json(path: Path) -> dict[str, Scores]:
    content = _json(path)
    if not isinstance(content, dict):
        raise EvaluationInputError(f"{path}: scores JSON must be an object {{series: scores}}")
    out = {}
    for series, entry in content.items():
        if isinstance(entry, list):
            entry = {"score": entry}
        if not isinstance(entry, dict):
            raise EvaluationInputError(f"{path}: scores of {series!r} must be a list or an object")
        column = next((c for c in SCORE_COLUMNS + PREDICTION_COLUMNS if c in entry), None)
        if column is None:
            raise _NoScoreColumn(f"{path}: {series!r} has no 'score' or 'prediction' list")
        values = _numbers(entry[column], f"{path}: {column} of {series!r}")
        time_key = next((c for c in TIME_COLUMNS if c in entry), None)
        raw_times = entry[time_key] if time_key else list(range(values.size))
        times, timed = parse_times(raw_times, f"{path}: {series!r}")
        if times.size != values.size:
            raise EvaluationInputError(f"{path}: {series!r} has {times.size} times but {values.size} {column}s")
        out[series] = Scores(times, values, column in PREDICTION_COLUMNS, timed)
    return out


class _NoScoreColumn(EvaluationInputError):
    pass


def _times(rows: list[dict], column: str | None, path: Path) -> tuple[np.ndarray, bool]:
    if column is None:
        return np.arange(len(rows), dtype=np.float64), False
    return parse_times([row[column] for row in rows], f"{path}: {column}")


def _numbers(raw: list, where: str) -> np.ndarray:
    try:
        return np.array([float(value) for value in raw], dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise EvaluationInputError(f"{where}: not a number ({err})") from None


def _first(rows: list[dict], names: tuple[str, ...]) -> str | None:
    header = {column.strip().lower(): column for column in (rows[0] if rows else {})}
    return next((header[name] for name in names if name in header), None)


def _csv_rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise EvaluationInputError(f"{path}: no rows")
    return rows


def _json(path: Path):
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise EvaluationInputError(f"{path}: not valid JSON: {err}") from None


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise EvaluationInputError(f"{path}: no such file or folder")
    return path
