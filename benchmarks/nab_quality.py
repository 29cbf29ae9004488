"""Detection quality on the 58 NAB series, offline (no Kafka), every detector side by side.

    nice -n 19 .venv/bin/python benchmarks/nab_quality.py [--series realKnownCause] [--limit 5]
        [--detectors hst lof] [--raw] [--nab-contract] [--out nab-scores/]

Each series is cut into windows of its last ``--window`` values (L, default 32, the serve
default); window i ends at point i + L - 1 and its score lands there, so the first L - 1 points
have no score: NaN, "no opinion yet", as a warming scorer gives (LOF for its first k + 1 windows,
self-similarity for its first W - 1, the mixture until its experts have 300 scores). Every
detector starts fresh on every series and sees its points in order, scoring each window before
learning it (streaming, as in ``argus serve``). Detectors:

- ``hst``: ours, HalfSpaceTreesScorer on WindowStatsEmbedder vectors (the serve default);
- ``river-hst``: the anchor, river's ``MinMaxScaler | HalfSpaceTrees`` on the raw value, one point
  at a time (every point scored; seed 42);
- ``sklearn-lof``: scikit-learn ``LocalOutlierFactor(n_neighbors=20, novelty=True)`` on the raw
  windows, refitted on the last 1000 windows every 64 windows (the issue's baseline; the same
  memory policy as ours);
- ``lof``: ours, LOFScorer (k 20, memory 1000, refit every 64) on WindowStats vectors;
- ``lof-window``: the same LOFScorer on the raw windows (``embedder: window``): scikit-learn's
  baseline computed by Argus, so its figures should equal ``sklearn-lof``'s;
- ``ssm-*-window``: SelfSimilarityScorer (window 64, top-k 5, rank 5) on the raw windows;
- ``level``: LevelScorer, each window's latest value against the series' long history (NAB's
  windowed Gaussian, done as a streaming expert);
- ``novelty``: NoveltyScorer, a value new in its context (CAD-OSE's context memory over the
  levels of the series' range; the range of its first 750 values, as ``argus serve`` learns it; with
  ``--nab-contract``, the file's minimum and maximum and its probationary period, which NAB gives
  every detector before the first value);
- ``mixture``: the mixture ``argus serve`` runs by default: ``hst``, ``lof`` and ``ssm-mean`` on
  WindowStats vectors and ``level`` on the raw windows, z-scored, the two highest averaged;
- ``mixture-window``: the mixture that ``embedder: window`` gives ``argus serve``: LOF and
  self-similarity (mean) on the raw windows and the level expert, z-scored, the two highest averaged;
- ``mixture-novelty``, ``mixture-window-novelty``: the same with the novelty expert
  (``detector.novelty: true``);
- ``ssm-spectral``, ``ssm-mean``, ``ssm-topk``: SelfSimilarityScorer (window 64, top-k 5, rank 2:
  WindowStats vectors have 4 dimensions and the spectral score needs rank < dim) on WindowStats
  vectors, all three from one pass (their seconds are that pass's);
- with ``--raw``, also ``lof-raw`` and ``ssm-*-raw`` (rank 5) on z-normalised raw windows.

The metrics and ``--out`` take finite scores: there a series' NaN scores become its lowest
finite score. Metrics (evaluation/): VUS-PR (window 100), PATE (buffers 100 + 100) and AUC-PR per series, the
mean over the series that have labelled windows (52 of the 58: ``argus evaluate`` counts PATE
as 0 on the other 6, so its overall PATE is 52/58 of this one); the NAB standard score over the corpus with NAB's
threshold optimisation (one threshold for the corpus, on the raw scores: every point at or above
it is a detection, so a run of high scores outside a window costs one false positive a point);
the NAB standard score of the alerts one corpus-wide threshold raises (a run of scores at or
above it is one alert, opened at its first point, as ``argus serve`` publishes them), at the best
of 120 thresholds at the corpus scores' quantiles 0.9 to 0.99999; and the NAB standard
score of the alerts that SPOT (detectors.spot; q ``--spot-q``, default 1e-3, calibrated on a
series' first 500 scores at level 0.97) raises on each series' scores, one detection where each
alert opens (consecutive anomalous readings are one alert, as ``argus serve`` publishes them),
with the rate of anomalous readings SPOT realised: what an operator would actually see, no
threshold tuned on the labels. SPOT gets the
scores with their NaNs and skips those, as in ``argus serve``, so it calibrates on a series'
first 500 scores with an opinion and never alerts without one. Seconds are the
detectors' own (embedding included, metrics not). ``--out`` writes each detector's scores as
``<out>/<detector>/<category>/<name>.csv`` (``timestamp,anomaly_score``), which
``argus evaluate --scores <out>/<detector> --labels .../combined_windows.json`` reads.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from river import anomaly, compose, preprocessing
from sklearn.neighbors import LocalOutlierFactor

from argus.config import AlertConfig
from detectors.base import Verdict
from detectors.halfspace import HalfSpaceTreesScorer
from detectors.level import LevelScorer
from detectors.lof import LOFScorer
from detectors.raw_window import RawWindowEmbedder
from detectors.mixture import MixtureOfExperts
from detectors.no_opinion import fill_no_opinion
from detectors.novelty import NoveltyScorer
from detectors.self_similarity import SCORES, SelfSimilarityScorer
from detectors.spot import SPOTThreshold
from detectors.window_stats import WindowStatsEmbedder
from evaluation.auc import auc_pr
from evaluation.dataset import label_intervals
from evaluation.inputs import load_labels, load_series
from evaluation.nab import nab_score, probation_length
from evaluation.pate import pate
from evaluation.vus import vus_pr
from streams.alerts import AlertTracker

NAB = Path(__file__).resolve().parents[2] / "shared" / "data" / "NAB"
LOF_K, LOF_MEMORY, LOF_REFIT = 20, 1000, 64
SSM_WINDOW, SSM_TOP_K = 64, 5
METRICS = ("vus_pr", "pate", "auc_pr")
SPOT_CALIBRATION, SPOT_LEVEL = 500, 0.97  # calibrated inside NAB's probation on most series
ALERT_QUANTILES = np.linspace(0.9, 0.99999, 120)  # corpus score quantiles tried as the one alert threshold

NAB_CONTRACT = False  # --nab-contract: the novelty expert gets each file's range and probation (novelty_scorer)
Runner = Callable[[np.ndarray, int], dict[str, np.ndarray]]  # values, L -> {detector: window scores}


def windows_of(values: np.ndarray, length: int) -> np.ndarray:
    """(N - L + 1, L) windows of a series, window i ending at point i + L - 1."""
    return np.lib.stride_tricks.sliding_window_view(values.astype(np.float64), length)


def series_windows(values: np.ndarray, length: int) -> torch.Tensor:
    """(N - L + 1, 1, L): the windows as ``argus serve`` hands them to embedders (one channel)."""
    return torch.from_numpy(windows_of(values, length)[:, None, :].copy())


def window_stats(values: np.ndarray, length: int) -> torch.Tensor:
    return WindowStatsEmbedder().embed(series_windows(values, length))


def z_normalised(values: np.ndarray, length: int) -> np.ndarray:
    """Each window less its mean over its std (flat windows become zeros)."""
    w = windows_of(values, length)
    std = w.std(axis=1, keepdims=True)
    return (w - w.mean(axis=1, keepdims=True)) / np.where(std > 0, std, 1)


def run_hst(values: np.ndarray, length: int) -> dict[str, np.ndarray]:
    return {"hst": HalfSpaceTreesScorer().score_and_learn(window_stats(values, length))}


def run_river_hst(values: np.ndarray, length: int) -> dict[str, np.ndarray]:
    """river's own pipeline, one raw value at a time; returns one score per point."""
    model = compose.Pipeline(preprocessing.MinMaxScaler(), anomaly.HalfSpaceTrees(seed=42))
    scores = np.zeros(values.size)
    for i, value in enumerate(values.tolist()):
        x = {"value": value}
        scores[i] = model.score_one(x)
        model.learn_one(x)
    return {"river-hst": scores}


def run_sklearn_lof(values: np.ndarray, length: int) -> dict[str, np.ndarray]:
    """scikit-learn's novelty LOF on raw windows: the first k + 1 windows score NaN (no opinion
    yet, as LOFScorer's), then each block of LOF_REFIT windows is scored by a LOF fitted on the
    last LOF_MEMORY before it."""
    w = windows_of(values, length)
    scores = np.full(len(w), np.nan)
    start = LOF_K + 1
    while start < len(w):
        model = LocalOutlierFactor(n_neighbors=LOF_K, novelty=True).fit(w[max(0, start - LOF_MEMORY):start])
        scores[start:start + LOF_REFIT] = -model.score_samples(w[start:start + LOF_REFIT])
        start += LOF_REFIT
    return {"sklearn-lof": scores}


def lof_scorer() -> LOFScorer:
    return LOFScorer(k=LOF_K, capacity=LOF_MEMORY, refit_every=LOF_REFIT)


def mean_ssm_scorer(rank: int) -> SelfSimilarityScorer:
    """The self-similarity expert of the mixtures (the mean score does not depend on ``rank``)."""
    return SelfSimilarityScorer(window=SSM_WINDOW, rank=rank, top_k=SSM_TOP_K, score="mean")


def raw_windows(values: np.ndarray, length: int) -> torch.Tensor:
    return RawWindowEmbedder().embed(series_windows(values, length))


def lof_scores(vectors, name: str) -> dict[str, np.ndarray]:
    return {name: lof_scorer().score_and_learn(vectors)}


def ssm_scores(vectors, rank: int, suffix: str) -> dict[str, np.ndarray]:
    """The three self-similarity scores from one pass (rank < the vectors' width)."""
    scorer = SelfSimilarityScorer(window=SSM_WINDOW, rank=rank, top_k=SSM_TOP_K)
    return {f"ssm-{name}{suffix}": s for name, s in scorer.scores_and_learn(vectors).items()}


def run_lof(values: np.ndarray, length: int) -> dict[str, np.ndarray]:
    return lof_scores(window_stats(values, length), "lof")


def run_ssm(values: np.ndarray, length: int) -> dict[str, np.ndarray]:
    return ssm_scores(window_stats(values, length), rank=2, suffix="")


def novelty_scorer(values: np.ndarray) -> NoveltyScorer:
    """The novelty expert as ``argus serve`` makes it (the range of a stream's first 750 values),
    or with ``--nab-contract`` given what NAB gives every detector before a file's first value:
    the file's minimum and maximum (its range) and its probationary period (the warm-up; the
    rest is a fifth of it, as CAD-OSE's)."""
    if not NAB_CONTRACT:
        return NoveltyScorer()
    probation = int(probation_length(values.size))
    return NoveltyScorer(warmup=probation, rest=probation // 5, ranges={"": (float(values.min()), float(values.max()))})


def run_novelty(values: np.ndarray, length: int) -> dict[str, np.ndarray]:
    """The novelty expert alone: values new in their context, over the levels of the series' range."""
    return {"novelty": novelty_scorer(values).score_and_learn(series_windows(values, length))}


def run_level(values: np.ndarray, length: int) -> dict[str, np.ndarray]:
    """The level expert alone: each window's latest value against the series' history."""
    return {"level": LevelScorer().score_and_learn(series_windows(values, length))}


def window_stats_mixture(values: np.ndarray, length: int, novelty: bool) -> np.ndarray:
    """Argus's mixture (unsupervised gate) of the three experts above, on window statistics,
    and the level expert on the raw windows (as ``argus serve``'s default mixture); with
    ``novelty``, the novelty expert too (``detector.novelty: true``)."""
    experts = {"hst": HalfSpaceTreesScorer(), "lof": lof_scorer(), "ssm": mean_ssm_scorer(rank=2), "level": LevelScorer()}
    return mixture_scores(experts, WindowStatsEmbedder(), values, length, novelty)


def raw_window_mixture(values: np.ndarray, length: int, novelty: bool) -> np.ndarray:
    """The mixture of `embedder: window` (argus.wiring): the per-stream experts on raw windows;
    with ``novelty``, the novelty expert too."""
    experts = {"lof": lof_scorer(), "self_similarity": mean_ssm_scorer(rank=5), "level": LevelScorer()}
    return mixture_scores(experts, RawWindowEmbedder(), values, length, novelty)


def mixture_scores(experts: dict, embedder, values: np.ndarray, length: int, novelty: bool) -> np.ndarray:
    """The unsupervised mixture of ``experts`` (and the novelty expert, with ``novelty``) over the
    series' windows, embedded by ``embedder``."""
    if novelty:
        experts = {**experts, "novelty": novelty_scorer(values)}
    windows = series_windows(values, length)
    return MixtureOfExperts(experts).score_and_learn(embedder.embed(windows), windows=windows)


def run_mixture(values: np.ndarray, length: int) -> dict[str, np.ndarray]:
    return {"mixture": window_stats_mixture(values, length, novelty=False)}


def run_mixture_novelty(values: np.ndarray, length: int) -> dict[str, np.ndarray]:
    return {"mixture-novelty": window_stats_mixture(values, length, novelty=True)}


def run_lof_window(values: np.ndarray, length: int) -> dict[str, np.ndarray]:
    return lof_scores(raw_windows(values, length), "lof-window")


def run_ssm_window(values: np.ndarray, length: int) -> dict[str, np.ndarray]:
    return ssm_scores(raw_windows(values, length), rank=5, suffix="-window")


def run_mixture_window(values: np.ndarray, length: int) -> dict[str, np.ndarray]:
    return {"mixture-window": raw_window_mixture(values, length, novelty=False)}


def run_mixture_window_novelty(values: np.ndarray, length: int) -> dict[str, np.ndarray]:
    return {"mixture-window-novelty": raw_window_mixture(values, length, novelty=True)}


def run_lof_raw(values: np.ndarray, length: int) -> dict[str, np.ndarray]:
    return lof_scores(z_normalised(values, length), "lof-raw")


def run_ssm_raw(values: np.ndarray, length: int) -> dict[str, np.ndarray]:
    return ssm_scores(z_normalised(values, length), rank=5, suffix="-raw")


RUNNERS: dict[str, Runner] = {"hst": run_hst, "river-hst": run_river_hst, "sklearn-lof": run_sklearn_lof,
                              "lof": run_lof, "ssm": run_ssm, "level": run_level, "novelty": run_novelty,
                              "mixture": run_mixture, "mixture-novelty": run_mixture_novelty,
                              "lof-window": run_lof_window, "ssm-window": run_ssm_window,
                              "mixture-window": run_mixture_window, "mixture-window-novelty": run_mixture_window_novelty}
RAW_RUNNERS: dict[str, Runner] = {"lof-raw": run_lof_raw, "ssm-raw": run_ssm_raw}


def aligned(scores: np.ndarray, n: int) -> np.ndarray:
    """Window scores placed at each window's last point; the first points (no full window) NaN."""
    out = np.full(n, np.nan)
    out[n - scores.size:] = scores
    return out


def metric_row(y_true: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """Per-series metrics; NaN where the series has no labelled point."""
    if not y_true.any():
        return {"vus_pr": math.nan, "pate": math.nan, "auc_pr": math.nan}
    return {"vus_pr": vus_pr(y_true, scores), "pate": pate(y_true, scores), "auc_pr": auc_pr(y_true, scores)}


def spot_alerts(scores: np.ndarray, q: float) -> tuple[np.ndarray, np.ndarray]:
    """(anomalous, opened) per point of a series: 1.0 where SPOT (target alert rate q) judges its
    score anomalous (never at a NaN), and where ``argus serve`` would publish an alert on those
    verdicts (streams.alerts.AlertTracker with the config's defaults: a run of anomalous
    readings is one alert, opened at its first, until ``quiet_readings`` normal ones close it)."""
    spot = SPOTThreshold(q=q, calibration=SPOT_CALIBRATION, level=SPOT_LEVEL)
    settings = AlertConfig()
    tracker = AlertTracker("bench", settings.min_run, settings.quiet_readings)
    anomalous, opened = np.zeros(scores.size), np.zeros(scores.size)
    for i, score in enumerate(scores.tolist()):
        threshold, anomalous[i] = spot.judge("", score)
        alert = tracker.observe("", float(i), Verdict(score, threshold, bool(anomalous[i]), {}))
        opened[i] = alert is not None and alert.status == "open"
    return anomalous, opened


def alert_openings(scores: np.ndarray, threshold: float, quiet: int) -> np.ndarray:
    """1.0 where ``argus serve`` would open an alert if every score at or above ``threshold`` were
    anomalous: AlertTracker with a minimum run of 1 opens one at an anomalous reading with none in
    the ``quiet`` readings before it (an open alert takes ``quiet`` normal readings to close). A
    NaN (no opinion) is never anomalous."""
    above = np.nan_to_num(scores, nan=-np.inf) >= threshold
    recent = np.convolve(above, np.ones(quiet, dtype=np.int64))[:above.size]  # anomalous in [t - quiet + 1, t]
    before = np.concatenate(([0], recent[:-1]))
    return (above & (before == 0)).astype(np.float64)


def best_alert_nab(windows: dict[str, list], scores: dict[str, np.ndarray]) -> float:
    """The NAB standard score of the alerts that one corpus-wide threshold raises (one detection
    where each alert opens), at the best of the thresholds at the corpus scores' quantiles
    ``ALERT_QUANTILES``: NAB's threshold optimisation, applied to what serve publishes."""
    settings = AlertConfig()
    if settings.min_run != 1:
        raise ValueError(f"alert_openings models alerts that open at their first anomalous reading, "
                         f"not after {settings.min_run}")
    values = np.concatenate([s[np.isfinite(s)] for s in scores.values()])
    return max(nab_score(windows, {name: alert_openings(s, t, settings.quiet_readings) for name, s in scores.items()},
                         profile="standard", threshold=0.5).score
               for t in np.unique(np.quantile(values, ALERT_QUANTILES)))


def load_corpus(root: Path, patterns: list[str], limit: int | None) -> list[tuple[str, np.ndarray, np.ndarray, list]]:
    """(name, times, values, label intervals) of the NAB series whose name holds any pattern."""
    series = load_series(root / "data")
    labels = load_labels(root / "labels" / "combined_windows.json")
    names = [n for n in sorted(series) if not patterns or any(p in n for p in patterns)][:limit]
    if not names:
        raise SystemExit(f"no NAB series under {root / 'data'} match {patterns}")
    return [(n, series[n][0], series[n][1], label_intervals(n, labels.get(n, []), series[n][0], series[n][2]))
            for n in names]


def write_scores(out: Path, detector: str, name: str, times: np.ndarray, scores: np.ndarray) -> None:
    path = out / detector / name
    path.parent.mkdir(parents=True, exist_ok=True)
    stamps = np.datetime_as_string((times * 1e6).astype("datetime64[us]"), unit="s")
    rows = "\n".join(f"{t.replace('T', ' ')},{s!r}" for t, s in zip(stamps, scores.tolist()))
    path.write_text(f"timestamp,anomaly_score\n{rows}\n")


def benchmark(corpus: list, runners: dict[str, Runner], length: int, out: Path | None,
              spot_q: float) -> dict[str, dict[str, float]]:
    """{detector: {metric: value, 'seconds': s}} over the corpus."""
    per_series: dict[str, list[dict[str, float]]] = {}
    scores: dict[str, dict[str, np.ndarray]] = {}
    raw: dict[str, dict[str, np.ndarray]] = {}  # with their NaNs, as serve's thresholds see them
    alerts: dict[str, dict[str, np.ndarray]] = {}
    flagged: dict[str, dict[str, np.ndarray]] = {}
    seconds: dict[str, float] = {}
    for name, times, values, intervals in corpus:
        y_true = np.zeros(values.size, dtype=np.int64)
        for start, end in intervals:
            y_true[start:end + 1] = 1
        for runner_name, runner in runners.items():
            started = time.perf_counter()
            results = runner(values, length)
            spent = time.perf_counter() - started
            for detector, window_scores in results.items():
                series_scores = aligned(window_scores, values.size)
                seconds[detector] = seconds.get(detector, 0.0) + spent
                raw.setdefault(detector, {})[name] = series_scores
                flagged.setdefault(detector, {})[name], alerts.setdefault(detector, {})[name] = \
                    spot_alerts(series_scores, spot_q)  # SPOT skips the NaNs
                finite = fill_no_opinion(series_scores)  # the metrics and score files take finite scores only
                scores.setdefault(detector, {})[name] = finite
                per_series.setdefault(detector, []).append(metric_row(y_true, finite))
                if out is not None:
                    write_scores(out, detector, name, times, finite)
        print(f"  {name} ({values.size} points)", flush=True)
    windows = {name: intervals for name, _, _, intervals in corpus}
    table = {}
    for detector, rows in per_series.items():
        table[detector] = {m: float(np.nanmean([row[m] for row in rows])) for m in METRICS}
        table[detector]["nab"] = nab_score(windows, scores[detector], profile="standard").score
        table[detector]["nab_alerts"] = best_alert_nab(windows, raw[detector])
        table[detector]["nab_spot"] = nab_score(windows, alerts[detector], profile="standard", threshold=0.5).score
        table[detector]["alert_rate"] = float(np.mean(np.concatenate(list(flagged[detector].values()))))
        table[detector]["seconds"] = seconds[detector]
    return table


def markdown(table: dict[str, dict[str, float]], shared: dict[str, str], spot_q: float) -> str:
    lines = [f"| detector | VUS-PR | PATE | AUC-PR | NAB standard | NAB, alerts at the best threshold "
             f"| NAB, SPOT alerts (q={spot_q:g}) | alert rate | seconds |", "|---|---|---|---|---|---|---|---|---|"]
    for detector, row in table.items():
        note = f" ({shared[detector]})" if detector in shared else ""
        lines.append(f"| {detector} | {row['vus_pr']:.4f} | {row['pate']:.4f} | {row['auc_pr']:.4f} | "
                     f"{row['nab']:.2f} | {row['nab_alerts']:.2f} | {row['nab_spot']:.2f} | {row['alert_rate']:.4f} | "
                     f"{row['seconds']:.1f}{note} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=NAB, help="the NAB folder (data/, labels/)")
    parser.add_argument("--window", type=int, default=32, help="window length L")
    parser.add_argument("--series", nargs="*", default=[], help="only series whose name holds one of these")
    parser.add_argument("--limit", type=int, default=None, help="only the first N series (sorted by name)")
    parser.add_argument("--detectors", nargs="*", default=list(RUNNERS),
                        help=f"runners to run (default all of {', '.join(RUNNERS)}; also {', '.join(RAW_RUNNERS)})")
    parser.add_argument("--raw", action="store_true", help="also run LOF and self-similarity on z-normalised windows")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--spot-q", type=float, default=1e-3, help="SPOT's target alert rate for the alerts column")
    parser.add_argument("--nab-contract", action="store_true",
                        help="give the novelty expert what NAB gives every detector: each file's min, max and probation")
    parser.add_argument("--out", type=Path, default=None, help="write per-detector per-series scores here")
    args = parser.parse_args()
    known = {**RUNNERS, **RAW_RUNNERS}
    unknown = [d for d in args.detectors if d not in known]
    if unknown:
        parser.error(f"unknown detector {unknown[0]!r} (known: {', '.join(known)})")
    if args.window < 4:
        parser.error(f"--window must be at least 4, got {args.window}")
    chosen = {name: known[name] for name in args.detectors}
    if args.raw:
        chosen.update(RAW_RUNNERS)
    global NAB_CONTRACT
    NAB_CONTRACT = args.nab_contract
    torch.set_num_threads(args.threads)
    corpus = load_corpus(args.data, args.series, args.limit)
    print(f"{len(corpus)} series, {sum(v.size for _, _, v, _ in corpus)} points, L = {args.window}", flush=True)
    started = time.perf_counter()
    table = benchmark(corpus, chosen, args.window, args.out, args.spot_q)
    shared = {f"ssm-{s}{tail}": f"one pass for the three ssm{tail}" for s in SCORES for tail in ("", "-raw", "-window")}
    print()
    print(markdown(table, shared, args.spot_q))
    print(f"\n{len(corpus)} series, L = {args.window}, {time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()
