"""Every metric of every series, and the overall figures, as a table, JSON or data for the HTML report.

Threshold-free metrics (``auc_roc``, ``auc_pr``, ``vus_roc``, ``vus_pr``, ``pate``) read the
scores; the others read binary detections: the predictions themselves for binary inputs
(alerts, prediction columns), else ``scores >= threshold`` with the threshold given, or by
default each series' mean plus three standard deviations (a rule that does not look at the
labels). NAB chooses its own corpus-wide threshold by its optimiser for continuous scores
(the one given, if any; 1 for binary inputs).

Overall figures: the mean over the series where a metric is defined (NaN, shown as ``-``, where
it is not: AUC without a labelled point, precision without a detection, and so on), except
``event_recall`` and ``detection_delay`` (pooled over all events of all series) and ``nab``
(the corpus's normalised NAB score; per series, its own normalised score). Detection delays are
in seconds for dated series, in points otherwise.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from evaluation.affiliation import affiliation
from evaluation.auc import auc_pr, auc_roc
from evaluation.dataset import SeriesData
from evaluation.errors import EvaluationInputError
from evaluation.events import detection_delays
from evaluation.nab import PROFILES, nab_score
from evaluation.pate import pate, pate_f1
from evaluation.point_adjust import point_adjusted
from evaluation.ranges import range_precision_recall
from evaluation.vus import vus


@dataclass
class Options:
    """What the metrics are computed with."""

    threshold: float | None = None  # None: mean + 3 std per series
    window: int = 100  # VUS
    early_buffer: int = 100  # PATE
    delay_buffer: int = 100
    nab_profile: str = "standard"


@dataclass
class Evaluation:
    """Per-series and overall values of the chosen metrics."""

    metrics: list[str]
    series: dict[str, dict[str, float]]
    overall: dict[str, float]
    thresholds: dict[str, float]
    predictions: dict[str, np.ndarray]
    options: Options
    notes: list[str] = field(default_factory=list)
    nab: dict | None = None


def _scores_metric(fn: Callable) -> Callable:
    return lambda item, predicted, options: fn(item.y_true, item.scores)


def _vus(part: str) -> Callable:
    return lambda item, predicted, options: getattr(vus(item.y_true, item.scores, window=options.window), part)


def _pate(item: SeriesData, predicted: np.ndarray, options: Options) -> float:
    return pate(item.y_true, item.scores, early_buffer=options.early_buffer, delay_buffer=options.delay_buffer)


def _pate_f1(item: SeriesData, predicted: np.ndarray, options: Options) -> float:
    return pate_f1(item.y_true, predicted, early_buffer=options.early_buffer, delay_buffer=options.delay_buffer)


def _field(fn: Callable, part: str) -> Callable:
    return lambda item, predicted, options: getattr(fn(item.y_true, predicted), part)


SERIES_METRICS: dict[str, Callable[[SeriesData, np.ndarray, Options], float]] = {
    "auc_roc": _scores_metric(auc_roc),
    "auc_pr": _scores_metric(auc_pr),
    "vus_roc": _vus("roc"),
    "vus_pr": _vus("pr"),
    "pate": _pate,
    "pate_f1": _pate_f1,
    "pa_f1": _field(point_adjusted, "f1"),
    "range_precision": _field(range_precision_recall, "precision"),
    "range_recall": _field(range_precision_recall, "recall"),
    "range_f1": _field(range_precision_recall, "f1"),
    "affiliation_precision": _field(affiliation, "precision"),
    "affiliation_recall": _field(affiliation, "recall"),
}
POOLED = ("event_recall", "detection_delay")
METRICS = tuple(SERIES_METRICS) + POOLED + ("nab",)
DEFAULT_METRICS = METRICS


def evaluate(data: Sequence[SeriesData], metrics: Sequence[str] = DEFAULT_METRICS, options: Options | None = None,
             notes: Sequence[str] = (), progress: bool = False) -> Evaluation:
    """Compute ``metrics`` for every series of ``data``."""
    options = options or Options()
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise EvaluationInputError(f"unknown metric {unknown[0]!r} (known: {', '.join(METRICS)})")
    if not data:
        raise EvaluationInputError("no series to evaluate")
    per_series: dict[str, dict[str, float]] = {}
    thresholds, predictions, all_delays = {}, {}, []
    long_run = sum(item.times.size for item in data) > 200_000 or len(data) > 20
    for item in tqdm(data, desc="evaluating", unit="series", disable=not (progress and long_run)):
        threshold = _threshold(item, options)
        predicted = item.scores >= threshold
        thresholds[item.name], predictions[item.name] = threshold, predicted
        row = {m: float(SERIES_METRICS[m](item, predicted, options)) for m in metrics if m in SERIES_METRICS}
        delays = detection_delays(item.y_true, predicted, times=item.times)
        all_delays.append(delays)
        if "event_recall" in metrics:
            row["event_recall"] = float(np.mean(~np.isnan(delays))) if delays.size else math.nan
        if "detection_delay" in metrics:
            row["detection_delay"] = _nanmean(delays)
        per_series[item.name] = row
    overall = {m: _nanmean(np.array([row[m] for row in per_series.values()])) for m in metrics if m in SERIES_METRICS}
    pooled = np.concatenate(all_delays)
    if "event_recall" in metrics:
        overall["event_recall"] = float(np.mean(~np.isnan(pooled))) if pooled.size else math.nan
    if "detection_delay" in metrics:
        overall["detection_delay"] = _nanmean(pooled)
    nab = None
    if "nab" in metrics:
        nab = _nab(data, options, per_series)
        overall["nab"] = nab["score"]
    ordered = [m for m in METRICS if m in metrics]
    return Evaluation(ordered, per_series, {m: overall[m] for m in ordered}, thresholds, predictions, options,
                      list(notes), nab)


def to_json(result: Evaluation) -> str:
    """The evaluation as JSON (NaN as null)."""
    document = {"metrics": result.metrics, "options": vars(result.options), "notes": result.notes,
                "overall": result.overall, "series": result.series, "thresholds": result.thresholds,
                "nab": result.nab}
    return json.dumps(_nulls(document), indent=1)


def to_table(result: Evaluation) -> str:
    """A plain-text table: one row per series and one overall."""
    names = list(result.series) + ["overall"]
    rows = [[name] + [_cell(values.get(m)) for m in result.metrics]
            for name, values in zip(names, list(result.series.values()) + [result.overall])]
    header = ["series"] + result.metrics
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda cells: "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    out = [line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in rows[:-1]]
    out += ["  ".join("-" * w for w in widths), line(rows[-1])]
    if result.nab:
        out.append(f"NAB ({result.nab['profile']}): {result.nab['score']:.4f} (raw {result.nab['raw']:.4f}, "
                   f"threshold {result.nab['threshold']:g})")
    out += [f"note: {note}" for note in result.notes]
    return "\n".join(out)


def _threshold(item: SeriesData, options: Options) -> float:
    if item.binary:
        return 0.5
    if options.threshold is not None:
        return float(options.threshold)
    return float(item.scores.mean() + 3 * item.scores.std())


def _nab(data: Sequence[SeriesData], options: Options, per_series: dict[str, dict[str, float]]) -> dict:
    binary = all(item.binary for item in data)
    threshold = 1.0 if binary else options.threshold
    result = nab_score({item.name: item.intervals for item in data}, {item.name: item.scores for item in data},
                       profile=options.nab_profile, threshold=threshold)
    for item in data:
        counts = result.series[item.name]
        null, perfect = -PROFILES[options.nab_profile].fn * len(item.intervals), len(item.intervals) * 1.0
        per_series[item.name]["nab"] = 100 * (counts.raw - null) / (perfect - null) if item.intervals else math.nan
    return {"profile": result.profile, "score": result.score, "raw": result.raw, "threshold": result.threshold,
            "null": result.null, "perfect": result.perfect,
            "series": {name: vars(counts) for name, counts in result.series.items()}}


def _nanmean(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=np.float64)
    kept = values[~np.isnan(values)]
    return float(kept.mean()) if kept.size else math.nan


def _cell(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.4f}"


def _nulls(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _nulls(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nulls(v) for v in value]
    return value
