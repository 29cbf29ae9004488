"""Labels matched to scores (or alerts) series by series, as index intervals on each series' time axis.

Rules (each break is an :class:`~evaluation.errors.EvaluationInputError`, one line):

- Series names match after dropping a ``.csv``/``.json`` ending, so NAB's ``realTraffic/speed_t4013.csv``,
  an Argus stream id ``realTraffic/speed_t4013`` and a results file ``realTraffic/speed_t4013.csv``
  are one series. When every file of a scores folder starts with the same ``<word>_`` (NAB's
  results name theirs ``<detector>_<series>``), that prefix is dropped; a name that is the end
  of exactly one labelled name (``nyc_taxi`` for ``realKnownCause/nyc_taxi``) matches it. One
  labelled series and one scored series always pair.
- Every scored series needs labels (an empty list is fine); labelled series without scores are
  left out, with a note.
- A label interval ``[start, end]`` runs from the first row at or after ``start`` to the first
  row at ``end`` (or the last row before it, when no row is at ``end``), as NAB maps its windows.
  Bounds are dates or epoch seconds when the series has dates, indexes when it has none.
  Intervals must be sorted, disjoint (sharing a point is overlapping), ``start <= end``, inside
  the series' first and last time, and hold at least one point.
- Times may repeat or step back, as real exports do (NAB's machine_temperature_system_failure
  steps back an hour): rows keep their file order and bounds are placed on the running maximum
  of the times. Scores must be finite (no NaN).
- An alert makes every point of its source's series within ``[start, end]`` a detection.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from evaluation.errors import EvaluationInputError
from evaluation.inputs import ScoreSet, Scores, parse_times


@dataclass
class SeriesData:
    """One series ready for the metrics."""

    name: str
    times: np.ndarray
    scores: np.ndarray
    intervals: list[tuple[int, int]]  # inclusive index intervals
    binary: bool = False
    timed: bool = True
    values: np.ndarray | None = None  # the series itself, for plots

    @property
    def y_true(self) -> np.ndarray:
        labels = np.zeros(self.times.size, dtype=np.int64)
        for start, end in self.intervals:
            labels[start:end + 1] = 1
        return labels


def series_key(name: str) -> str:
    """The name series are matched by: without a .csv or .json ending.

    >>> series_key("realTraffic/speed_t4013.csv")
    'realTraffic/speed_t4013'
    """
    for ending in (".csv", ".json"):
        if name.lower().endswith(ending):
            return name[: -len(ending)]
    return name


def match_scores(labels: Mapping[str, list], scores: ScoreSet) -> tuple[list[SeriesData], list[str]]:
    """Each scored series with its labels as index intervals; and notes on what was left out."""
    keyed = {series_key(name): name for name in labels}
    pairs = {}
    for name, series in scores.series.items():
        label_name = _label_name(name, keyed, scores.folder_prefix, single=len(labels) == 1 == len(scores.series))
        pairs[label_name] = (name, series)
    notes = list(scores.notes)
    unscored = len(labels) - len(pairs)
    if unscored:
        notes.append(f"{unscored} labelled series have no scores and are left out")
    out = []
    for label_name, (name, series) in pairs.items():
        _check_scores(name, series)
        intervals = label_intervals(name, labels[label_name], series.times, series.timed)
        out.append(SeriesData(series_key(label_name), series.times, series.values, intervals, series.binary,
                              series.timed))
    return out, notes


def match_alerts(labels: Mapping[str, list], alerts: Iterable[Mapping], timelines: Mapping[str, tuple]) -> tuple[
        list[SeriesData], list[str]]:
    """Binary predictions from alerts over each labelled series' time axis.

    ``timelines`` maps series names to (times, values, timed), as :func:`evaluation.inputs.load_series` gives.
    """
    keyed_series = {series_key(name): name for name in timelines}
    series: dict[str, Scores] = {}
    for name, (times, _, timed) in timelines.items():
        series[name] = Scores(times, np.zeros(times.size), binary=True, timed=timed)
    for number, alert in enumerate(alerts, 1):
        if not isinstance(alert, Mapping) or not {"source", "start", "end"} <= set(alert):
            raise EvaluationInputError(f"alert {number} needs 'source', 'start' and 'end'; got {alert!r:.80}")
        source = str(alert["source"])
        name = keyed_series.get(series_key(source))
        if name is None:
            raise EvaluationInputError(f"alert {number} comes from {source!r}, which is not among the series given "
                                       f"({len(timelines)} series)")
        (start, end), _ = parse_times([alert["start"], alert["end"]], f"alert {number}")
        if start > end:
            raise EvaluationInputError(f"alert {number} of {source!r} ends before it starts ({start} > {end})")
        times = series[name].times
        series[name].values[(times >= start) & (times <= end)] = 1.0
    labelled = {name: s for name, s in series.items()
                if series_key(name) in {series_key(label) for label in labels}}
    data, notes = match_scores(labels, ScoreSet(labelled))
    attach_values(data, timelines)
    left_out = len(series) - len(labelled)
    return data, notes + ([f"{left_out} series without labels are left out"] if left_out else [])


def attach_values(data: list[SeriesData], timelines: Mapping[str, tuple]) -> None:
    """Give each series its values (for plots) where a timeline of the same name and length exists."""
    keyed = {series_key(name): value for name, value in timelines.items()}
    for item in data:
        found = keyed.get(item.name)
        if found is not None and found[1].size == item.times.size:
            item.values = found[1]


def label_intervals(name: str, raw: list, times: np.ndarray, timed: bool) -> list[tuple[int, int]]:
    """Inclusive index intervals of ``raw`` [start, end] bounds on the axis ``times``.

    >>> label_intervals("s", [[2, 3], [6, 9]], np.arange(10.0), timed=False)
    [(2, 3), (6, 9)]
    """
    if not raw:
        return []
    bounds, dated = parse_times([bound for interval in raw for bound in interval], f"labels of {name!r}")
    if dated and not timed:
        raise EvaluationInputError(f"labels of {name!r} are dates but its scores have no time column")
    reached = np.maximum.accumulate(times)
    out = []
    for k, (start, end) in enumerate(bounds.reshape(-1, 2)):
        shown = f"labels of {name!r}: interval {list(raw[k])}"
        if start > end:
            raise EvaluationInputError(f"{shown} ends before it starts")
        if start < times[0] or end > reached[-1]:
            raise EvaluationInputError(f"{shown} lies outside the series ({_shown(times[0], timed)} .. "
                                       f"{_shown(reached[-1], timed)})")
        if k and start < bounds[2 * k - 2]:
            raise EvaluationInputError(f"{shown} starts before the previous one: sort the intervals")
        if k and start <= bounds[2 * k - 1]:
            raise EvaluationInputError(f"{shown} overlaps the previous one {list(raw[k - 1])}")
        first, last = (int(i) for i in np.searchsorted(reached, [start, end], "left"))
        last -= bool(times[last] != end)
        if first > last:
            raise EvaluationInputError(f"{shown} holds no point of the series")
        out.append((first, last))
    return out


def _label_name(name: str, keyed: dict[str, str], prefix: str, single: bool) -> str:
    key = series_key(name)
    folder, _, file = key.rpartition("/")
    if key not in keyed and prefix and file.startswith(prefix):
        key = f"{folder}/{file[len(prefix):]}" if folder else file[len(prefix):]
    if key in keyed:
        return keyed[key]
    ending = [label for label in keyed if label.endswith("/" + key)]
    if len(ending) == 1:
        return keyed[ending[0]]
    if single:
        return next(iter(keyed.values()))
    example = next(iter(keyed), None)
    raise EvaluationInputError(f"scored series {name!r} has no labels (labels name {len(keyed)} series, "
                               f"e.g. {example!r})")


def _check_scores(name: str, series: Scores) -> None:
    bad = np.flatnonzero(~np.isfinite(series.values))
    if bad.size:
        raise EvaluationInputError(f"scores of {name!r} hold {bad.size} NaN or infinite value(s), the first at row "
                                   f"{bad[0]} ({_shown(series.times[bad[0]], series.timed)})")


def _shown(time: float, timed: bool) -> str:
    if not timed:
        return f"{time:g}"
    return str(np.datetime64(int(round(time * 1e6)), "us")).replace("T", " ").removesuffix(".000000")
