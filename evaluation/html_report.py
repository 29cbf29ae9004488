"""A self-contained HTML report: the metric tables and one plot per series (PNG, embedded as base64).

Each plot shows the series' values (when given), its scores and threshold, the labelled
intervals shaded and the detections marked.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from evaluation.dataset import SeriesData  # noqa: E402
from evaluation.report import Evaluation  # noqa: E402

STYLE = """body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}td:first-child,th:first-child{text-align:left}
tr.overall{font-weight:bold;background:#f3f3f3}img{max-width:100%}h2{margin-top:2em}.note{color:#666}"""


def render_html(result: Evaluation, data: Sequence[SeriesData], progress: bool = False) -> str:
    """The whole report as one HTML document."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Argus evaluation</title>"
             f"<style>{STYLE}</style></head><body><h1>Argus evaluation</h1>",
             f"<p>{len(data)} series; options: {html.escape(str(vars(result.options)))}</p>"]
    if result.nab:
        parts.append(f"<p>NAB ({html.escape(result.nab['profile'])}): <b>{result.nab['score']:.4f}</b> "
                     f"(raw {result.nab['raw']:.4f}, threshold {result.nab['threshold']:g})</p>")
    parts += [f"<p class='note'>note: {html.escape(note)}</p>" for note in result.notes]
    parts.append(_table(result))
    for item in tqdm(data, desc="plotting", unit="series", disable=not progress or len(data) < 10):
        image = plot_png(item, result.thresholds[item.name], result.predictions[item.name])
        parts.append(f"<h2 id='{html.escape(item.name)}'>{html.escape(item.name)}</h2>"
                     f"<img alt='{html.escape(item.name)}' src='data:image/png;base64,{image}'>")
    parts.append("</body></html>")
    return "\n".join(parts)


def plot_png(item: SeriesData, threshold: float, predicted: np.ndarray) -> str:
    """One series' plot as base64 PNG."""
    axis = _axis(item)
    panels = 2 if item.values is not None else 1
    fig, axes = plt.subplots(panels, 1, figsize=(11, 2.4 * panels + 0.6), sharex=True, squeeze=False)
    axes = axes[:, 0]
    if item.values is not None:
        axes[0].plot(axis, item.values, lw=0.7, color="#333")
        axes[0].set_ylabel("value")
    scores_ax = axes[-1]
    scores_ax.plot(axis, item.scores, lw=0.7, color="#1f77b4", label="score")
    if math.isfinite(threshold) and not item.binary:
        scores_ax.axhline(threshold, color="#d62728", lw=0.8, ls="--", label=f"threshold {threshold:.3g}")
    hits = np.flatnonzero(predicted)
    scores_ax.scatter(axis[hits], item.scores[hits], s=8, color="#d62728", zorder=3, label="detection")
    for ax in axes:
        for start, end in item.intervals:
            ax.axvspan(axis[start], axis[end], color="#ff7f0e", alpha=0.25, lw=0)
    scores_ax.set_ylabel("score")
    scores_ax.legend(loc="upper left", fontsize=8, ncol=3)
    axes[0].set_title(f"{item.name} (labelled intervals shaded)", fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _axis(item: SeriesData) -> np.ndarray:
    if item.timed:
        return (item.times * 1e6).astype(np.int64).astype("datetime64[us]")
    return item.times


def _table(result: Evaluation) -> str:
    head = "".join(f"<th>{html.escape(m)}</th>" for m in ["series"] + result.metrics)
    rows = [_row(name, values, result.metrics) for name, values in result.series.items()]
    rows.append(_row("overall", result.overall, result.metrics, css="overall"))
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _row(name: str, values: dict, metrics: list[str], css: str = "") -> str:
    cells = "".join(f"<td>{'-' if math.isnan(values[m]) else f'{values[m]:.4f}'}</td>" for m in metrics)
    link = html.escape(name) if css else f"<a href='#{html.escape(name)}'>{html.escape(name)}</a>"
    return f"<tr class='{css}'><td>{link}</td>{cells}</tr>"
