"""Builds the parts named by a Config: the detector factory and the series pipeline."""

from __future__ import annotations

from collections.abc import Callable

import torch

from argus.config import Config, ConfigError
from detectors.halfspace import HalfSpaceTreesScorer
from detectors.series_detector import SeriesDetector
from detectors.thresholds import RollingQuantileThreshold
from detectors.window_stats import WindowStatsEmbedder
from streams.checkpoints import CheckpointStore
from streams.kafka_clients import make_consumer, make_producer
from streams.pipeline import PipelineSettings, SeriesPipeline

DETECTORS = ("halfspace",)


def detector_factory(config: Config) -> Callable[[], SeriesDetector]:
    """A function that makes a fresh detector (one per Kafka partition)."""
    d, t = config.detector, config.threshold
    if d.name not in DETECTORS:
        raise ConfigError(f"unknown detector '{d.name}' (known: {', '.join(DETECTORS)})")
    if d.cpu_threads < 1:
        raise ConfigError(f"detector.cpu_threads must be at least 1, got {d.cpu_threads}")

    def make() -> SeriesDetector:
        return SeriesDetector(
            d.name, WindowStatsEmbedder(d.device),
            HalfSpaceTreesScorer(d.n_trees, d.height, d.window_size, d.seed),
            RollingQuantileThreshold(t.quantile, t.margin, t.history, t.warmup),
        )

    return make


def build_pipeline(config: Config) -> SeriesPipeline:
    torch.set_num_threads(config.detector.cpu_threads)
    settings = PipelineSettings(
        series_topic=config.topics.series, alerts_topic=config.topics.alerts,
        dead_letter_topic=config.topics.dead_letter, window=config.detector.window,
        max_record_bytes=config.max_record_bytes, commit_interval_s=config.commit_interval_s,
        min_run=config.alert.min_run, quiet_readings=config.alert.quiet_readings,
    )
    factory = detector_factory(config)
    consumer = make_consumer(config.kafka, group_id=config.group_id)
    producer = make_producer(config.kafka)
    return SeriesPipeline(consumer, producer, settings, factory, CheckpointStore(config.state_dir, config.group_id))
