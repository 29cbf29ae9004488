"""`argus evaluate`: wires the evaluator (evaluation/) to files or to the alerts topic (streams/)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from argus.config import load_config
from evaluation.errors import EvaluationInputError

if TYPE_CHECKING:
    from evaluation.inputs import ScoreSet

METRIC_NAMES = ("auc_roc auc_pr vus_roc vus_pr pate pate_f1 pa_f1 range_precision range_recall range_f1 "
                "affiliation_precision affiliation_recall event_recall detection_delay nab")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The subcommand's options."""
    p.add_argument("--labels", required=True, help="labelled intervals: NAB-style JSON or CSV (series,start,end)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--scores", help="scores or 0/1 predictions: CSV or JSON file, or a folder of per-series files")
    src.add_argument("--alerts", help="alerts file: JSON list or JSON lines (as `argus alerts --json` prints)")
    src.add_argument("--alerts-topic", nargs="?", const="", metavar="TOPIC",
                     help="read alerts from this Kafka topic (default: the config's alerts topic)")
    p.add_argument("--series", help="timestamp,value CSV file or folder: the time axis for alerts, values for plots")
    p.add_argument("--metrics", nargs="+", default=["all"], metavar="METRIC",
                   help=f"metrics to compute, space- or comma-separated (default all): {METRIC_NAMES}")
    p.add_argument("--threshold", type=float, help="detection threshold on the scores (default: mean + 3 std per "
                                                   "series; NAB optimises its own unless this is given)")
    p.add_argument("--window", type=int, default=100, help="VUS: largest soft-border window (default 100)")
    p.add_argument("--early-buffer", type=int, default=100, help="PATE early buffer (default 100)")
    p.add_argument("--delay-buffer", type=int, default=100, help="PATE delay buffer (default 100)")
    p.add_argument("--nab-profile", default="standard",
                   choices=["standard", "reward_low_FP_rate", "reward_low_FN_rate"])
    p.add_argument("--format", choices=["table", "json", "html"], default="table")
    p.add_argument("--out", help="write the report to this file (default: standard output)")
    p.add_argument("--config", help="YAML config file, for --alerts-topic")
    p.add_argument("--bootstrap-servers", help="Kafka bootstrap servers, overriding the config")
    p.add_argument("--idle-timeout", type=float, default=5.0, help="--alerts-topic: stop after this many idle seconds")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Read, match, evaluate and write the report (the evaluator is imported only here: it is heavy)."""
    from evaluation.dataset import attach_values, match_alerts, match_scores
    from evaluation.inputs import load_alerts, load_labels, load_scores, load_series
    from evaluation.report import METRICS, Options, evaluate, to_json, to_table

    labels = load_labels(args.labels)
    timelines = load_series(args.series) if args.series else {}
    if args.scores:
        data, notes = match_scores(labels, without_no_opinion(load_scores(args.scores)))
        attach_values(data, timelines)
    else:
        if not timelines:
            raise EvaluationInputError("alerts need --series: the series' files give the time axis they fall on")
        alerts = load_alerts(args.alerts) if args.alerts else read_alerts_topic(args)
        data, notes = match_alerts(labels, alerts, timelines)
    metrics = list(METRICS) if args.metrics == ["all"] else [m for arg in args.metrics for m in arg.split(",") if m]
    options = Options(threshold=args.threshold, window=args.window, early_buffer=args.early_buffer,
                      delay_buffer=args.delay_buffer, nab_profile=args.nab_profile)
    result = evaluate(data, metrics, options, notes, progress=not args.quiet)
    if args.format == "html":
        from evaluation.html_report import render_html

        text = render_html(result, data, progress=not args.quiet)
    else:
        text = to_json(result) if args.format == "json" else to_table(result)
    if args.out:
        Path(args.out).write_text(text + "\n")
        print(f"wrote {args.format} report on {len(data)} series to {args.out}", file=sys.stderr)
    else:
        print(text)
    return 0


def without_no_opinion(scores: ScoreSet) -> ScoreSet:
    """The score set with each series' NaN scores (a scorer's "no opinion yet") as its lowest
    finite score, since the metrics take finite scores only; a note says how many there were."""
    from detectors.no_opinion import fill_no_opinion

    filled = {}
    for name, series in scores.series.items():
        if not series.binary and np.isnan(series.values).any():
            filled[name] = int(np.isnan(series.values).sum())
            series.values = fill_no_opinion(series.values)
    if filled:
        scores.notes.append(f"{sum(filled.values())} NaN scores (no opinion yet) in {len(filled)} series count as "
                            "their series' lowest score")
    return scores


def read_alerts_topic(args: argparse.Namespace) -> list[dict]:
    """Every alert on the topic so far, as plain dicts (the topic is read until idle)."""
    from streams.alert_feed import follow_alerts

    overrides = {"kafka.bootstrap_servers": args.bootstrap_servers} if args.bootstrap_servers else {}
    config = load_config(args.config, overrides)
    topic = args.alerts_topic or config.topics.alerts
    feed = follow_alerts(config.kafka, topic, from_beginning=True, idle_timeout_s=args.idle_timeout)
    return [dataclasses.asdict(alert) for alert in feed]
