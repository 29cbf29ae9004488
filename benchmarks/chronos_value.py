"""What the shipped Chronos-Bolt (argus-bolt) is worth on NAB, against random weights and no model.

    nice -n 19 .venv/bin/python benchmarks/chronos_value.py [--series 10] [--window 32] [--threads 1]

The model never saw NAB (it is trained on synthetic series only), so all of NAB is held out.
Two parts, in one run:

(a) Forecasting. Each series is cut at ``--origins`` origins, the starts of its last
    ``--origins`` blocks of ``--horizon`` points (64); each origin is forecast from the (up to
    512) points before it. Three forecasters: the shipped model, the same configuration with
    random weights, and seasonal naive (the value one season earlier; the season is one day at
    the series' median time step, or the last value where a day does not fit). MASE is the mean
    absolute error of the median over the in-sample seasonal-naive error of everything before
    the origin; CRPS is approximated by the weighted quantile loss, WQL = mean over the 9
    quantiles of 2 x the pinball loss summed over the horizon, over the sum of |y| (a point
    forecast, seasonal naive, puts all 9 quantiles on the point, so its WQL is its WAPE). Both
    are averaged over origins; "rel." columns are geometric means of the ratio to seasonal
    naive, origin by origin (origins where either error is 0 are left out of those).
(b) Detection. nab_quality.py's protocol and metrics (its functions are reused), on windows of
    ``--window`` points: LOF, self-similarity and the unsupervised mixture on three embedders,
    the weight-free ``window_stats``, the shipped model, and its random-weight twin
    (``--pooling`` mean by default, as ``argus serve``). On Chronos vectors the mixture's
    half-space trees get running min-max scaling, as ``argus serve`` does.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nab_quality import (LOF_K, LOF_MEMORY, LOF_REFIT, NAB, SSM_TOP_K, SSM_WINDOW, benchmark,  # noqa: E402
                         load_corpus, lof_scores, markdown, series_windows, ssm_scores, window_stats)

from detectors.chronos_embedder import ChronosEmbedder  # noqa: E402
from detectors.chronos_models import random_like, shipped_model_path  # noqa: E402
from detectors.halfspace import HalfSpaceTreesScorer  # noqa: E402
from detectors.level import LevelScorer  # noqa: E402
from detectors.lof import LOFScorer  # noqa: E402
from detectors.mixture import MixtureOfExperts  # noqa: E402
from detectors.scaling import MinMaxScaled  # noqa: E402
from detectors.self_similarity import SelfSimilarityScorer  # noqa: E402

DAY = 86400.0
EMBED_BATCH = 2048


# ---------------------------------------------------------------- (a) forecasting

def season_of(times: np.ndarray, context: int) -> int:
    """Points per day at the median time step; 1 (naive) where a day does not fit in the context."""
    step = float(np.median(np.diff(times))) if times.size > 1 else 0.0
    season = int(round(DAY / step)) if step > 0 else 1
    return season if 2 <= season <= context else 1


def seasonal_naive(history: np.ndarray, season: int, horizon: int) -> np.ndarray:
    """Each future point is the last observed value one (or more) seasons before it."""
    h = np.arange(horizon)
    return history[history.size + h - season * (h // season + 1)]


def origin_scores(history: np.ndarray, target: np.ndarray, quantiles: np.ndarray, season: int) -> tuple[float, float]:
    """(MASE, WQL) of a (9, H) quantile forecast; NaN where the scale is 0."""
    scale = np.mean(np.abs(history[season:] - history[:-season])) if history.size > season else 0.0
    mase = np.mean(np.abs(target - quantiles[quantiles.shape[0] // 2])) / scale if scale > 0 else math.nan
    levels = np.linspace(0.1, 0.9, quantiles.shape[0])[:, None]
    error = target[None, :] - quantiles
    pinball = np.maximum(levels * error, (levels - 1) * error).sum(axis=1)
    total = np.abs(target).sum()
    return float(mase), float(2 * pinball.mean() / total) if total > 0 else math.nan


def forecast_tasks(corpus: list, horizon: int, context: int,
                   origins: int) -> list[tuple[str, np.ndarray, np.ndarray, int]]:
    """(series, history before the origin, target, season) at each series' last origins."""
    tasks = []
    for name, times, values, _ in corpus:
        season = season_of(times, context)
        for k in range(origins, 0, -1):
            origin = values.size - k * horizon
            if origin > max(2 * season, 64):
                tasks.append((name, values[:origin].astype(np.float64), values[origin:origin + horizon], season))
    return tasks


def chronos_forecasts(folder: str | Path, tasks: list, context: int, horizon: int) -> tuple[list[np.ndarray], float]:
    """(9, H) quantile forecasts of a Chronos-Bolt folder for every task, and the seconds it took."""
    from chronos import BaseChronosPipeline

    pipeline = BaseChronosPipeline.from_pretrained(str(folder), device_map="cpu", dtype=torch.float32)
    started = time.perf_counter()
    out = []
    for start in range(0, len(tasks), 64):
        contexts = [torch.tensor(history[-context:], dtype=torch.float32)
                    for _, history, _, _ in tasks[start:start + 64]]
        out.extend(pipeline.predict(contexts, prediction_length=horizon).numpy().astype(np.float64))
    return out, time.perf_counter() - started


def forecast_table(tasks: list, forecasts: dict[str, list[np.ndarray]], seconds: dict[str, float]) -> str:
    """Markdown: each forecaster's mean MASE and WQL, geometric means relative to seasonal naive."""
    scores = {model: np.array([origin_scores(history, target, f, season)
                               for (_, history, target, season), f in zip(tasks, per_task)])
              for model, per_task in forecasts.items()}
    base = scores["seasonal naive"]
    lines = ["| forecaster | MASE | WQL (~CRPS) | MASE rel. s-naive | WQL rel. s-naive | beats s-naive (MASE) "
             "| seconds |", "|---|---|---|---|---|---|---|"]
    for model, s in scores.items():
        rel = [_relative(s[:, i], base[:, i]) for i in (0, 1)]
        comparable = np.isfinite(s[:, 0]) & np.isfinite(base[:, 0])
        wins = int((s[comparable, 0] < base[comparable, 0]).sum())
        lines.append(f"| {model} | {np.nanmean(s[:, 0]):.3f} | {np.nanmean(s[:, 1]):.3f} | {rel[0]:.3f} | "
                     f"{rel[1]:.3f} | {wins}/{int(comparable.sum())} | {seconds[model]:.2f} |")
    return "\n".join(lines) + "\n\n" + _by_category(tasks, scores)


def _by_category(tasks: list, scores: dict[str, np.ndarray]) -> str:
    """Markdown: MASE relative to seasonal naive (geometric mean) per NAB category."""
    categories = sorted({name.split("/")[0] for name, *_ in tasks})
    where = np.array([name.split("/")[0] for name, *_ in tasks])
    models = [m for m in scores if m != "seasonal naive"]
    lines = ["| category | origins | " + " | ".join(f"{m}: MASE rel. s-naive" for m in models) + " |",
             "|---|---|" + "---|" * len(models)]
    for category in categories:
        rows = where == category
        cells = [f"{_relative(scores[m][rows, 0], scores['seasonal naive'][rows, 0]):.3f}" for m in models]
        lines.append(f"| {category} | {int(rows.sum())} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _relative(errors: np.ndarray, baseline: np.ndarray) -> float:
    """Geometric mean of errors / baseline over the origins where both are finite and positive."""
    kept = np.isfinite(errors) & np.isfinite(baseline) & (errors > 0) & (baseline > 0)
    return float(np.exp(np.log(errors[kept] / baseline[kept]).mean())) if kept.any() else math.nan


# ---------------------------------------------------------------- (b) detection

def scorers_on(vectors, windows: torch.Tensor, tag: str, rank: int, scaled_trees: bool) -> dict[str, np.ndarray]:
    """LOF, the three self-similarity scores and the mixture (with the level expert on the raw
    windows, as in ``argus serve``) on one embedder's vectors."""
    trees = MinMaxScaled(HalfSpaceTreesScorer()) if scaled_trees else HalfSpaceTreesScorer()
    mixture = MixtureOfExperts({
        "hst": trees, "lof": LOFScorer(k=LOF_K, capacity=LOF_MEMORY, refit_every=LOF_REFIT),
        "ssm": SelfSimilarityScorer(window=SSM_WINDOW, rank=rank, top_k=SSM_TOP_K, score="mean"),
        "level": LevelScorer(),
    })
    return {**lof_scores(vectors, f"lof / {tag}"), **ssm_scores(vectors, rank, f" / {tag}"),
            f"mixture / {tag}": mixture.score_and_learn(vectors, windows=windows)}


def chronos_vectors(embedder: ChronosEmbedder, windows: torch.Tensor) -> torch.Tensor:
    return torch.cat([embedder.embed(windows[i:i + EMBED_BATCH]) for i in range(0, len(windows), EMBED_BATCH)])


def window_stats_runner(values: np.ndarray, length: int) -> dict[str, np.ndarray]:
    return scorers_on(window_stats(values, length), series_windows(values, length), "window_stats", rank=2,
                      scaled_trees=False)


def chronos_runner(embedder: ChronosEmbedder, tag: str) -> Callable[[np.ndarray, int], dict[str, np.ndarray]]:
    def run(values: np.ndarray, length: int) -> dict[str, np.ndarray]:
        windows = series_windows(values, length)
        return scorers_on(chronos_vectors(embedder, windows), windows, tag, rank=5, scaled_trees=True)

    return run


def by_scorer(table: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Rows grouped by scorer, embedders side by side."""
    order = list(dict.fromkeys(name.split(" / ")[0] for name in table))
    return {name: table[name] for scorer in order for name in table if name.split(" / ")[0] == scorer}


# ---------------------------------------------------------------- run

def subset(corpus: list, n: int | None) -> list:
    """n series spread evenly over the sorted corpus (all of them when n is None)."""
    if n is None or n >= len(corpus):
        return corpus
    return [corpus[i] for i in np.linspace(0, len(corpus) - 1, n).round().astype(int)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=NAB, help="the NAB folder (data/, labels/)")
    parser.add_argument("--model", type=Path, default=shipped_model_path(), help="a Chronos-Bolt folder")
    parser.add_argument("--series", type=int, default=None, help="only N series, spread over the corpus")
    parser.add_argument("--window", type=int, default=32, help="detection window length L")
    parser.add_argument("--horizon", type=int, default=64, help="forecast horizon")
    parser.add_argument("--origins", type=int, default=3, help="forecast origins per series")
    parser.add_argument("--pooling", default="mean", choices=["mean", "token"], help="Chronos embedding pooling")
    parser.add_argument("--parts", nargs="+", default=["forecast", "detect"], choices=["forecast", "detect"])
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--spot-q", type=float, default=1e-3, help="SPOT's target alert rate for the alerts column")
    args = parser.parse_args()
    if args.series is not None and args.series < 1:
        parser.error(f"--series must be at least 1, got {args.series}")
    if args.window < 4 or args.horizon < 1 or args.origins < 1:
        parser.error("--window must be at least 4, --horizon and --origins at least 1")
    if not (args.model / "config.json").is_file():
        parser.error(f"--model {args.model}: no config.json there")
    torch.set_num_threads(args.threads)
    name = args.model.resolve().name  # argus-bolt for the shipped model
    corpus = subset(load_corpus(args.data, [], None), args.series)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="argus-random-bolt-") as scratch:
        random_folder = random_like(args.model, scratch, seed=0)
        print(f"{len(corpus)} series, {sum(v.size for _, _, v, _ in corpus)} points; model {args.model}", flush=True)
        if "forecast" in args.parts:
            context = json.loads((args.model / "config.json").read_text())["chronos_config"]["context_length"]
            tasks = forecast_tasks(corpus, args.horizon, context, args.origins)
            t = time.perf_counter()
            naive = [np.repeat(seasonal_naive(h, s, args.horizon)[None], 9, axis=0) for _, h, _, s in tasks]
            seconds = {"seasonal naive": time.perf_counter() - t}
            forecasts = {"seasonal naive": naive}
            for label, folder in ((name, args.model), ("random weights", random_folder)):
                forecasts[label], seconds[label] = chronos_forecasts(folder, tasks, context, args.horizon)
            print(f"\n## (a) forecasting: {len(tasks)} origins, horizon {args.horizon}, context up to {context}\n")
            print(forecast_table(tasks, forecasts, seconds), flush=True)
        if "detect" in args.parts:
            runners = {"window_stats": window_stats_runner,
                       name: chronos_runner(ChronosEmbedder(args.model, pooling=args.pooling), name),
                       "random": chronos_runner(ChronosEmbedder(random_folder, pooling=args.pooling), "random")}
            table = by_scorer(benchmark(corpus, runners, args.window, None, args.spot_q))
            shared = {name: "one pass: embedding + every scorer" for name in table}
            print(f"\n## (b) detection: L = {args.window}, pooling {args.pooling}\n")
            print(markdown(table, shared, args.spot_q))
    print(f"\n{len(corpus)} series, {time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()
