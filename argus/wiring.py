"""Builds the parts named by a Config: the detector factory and the series pipeline."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch

from argus.config import Config, ConfigError
from detectors.chronos_embedder import shared_chronos_embedder
from detectors.chronos_models import shipped_model_path
from detectors.halfspace import HalfSpaceTreesScorer
from detectors.level import LevelScorer
from detectors.lof import LOFScorer
from detectors.mixture import MixtureOfExperts
from detectors.novelty import NoveltyScorer
from detectors.self_similarity import SelfSimilarityScorer
from detectors.scaling import MinMaxScaled
from detectors.series_detector import SeriesDetector
from detectors.spot import SPOTThreshold
from detectors.thresholds import RollingQuantileThreshold
from detectors.raw_window import RawWindowEmbedder
from detectors.window_stats import WindowStatsEmbedder
from streams.checkpoints import CheckpointStore
from streams.kafka_clients import make_consumer, make_producer
from streams.camera_pipeline import CameraProcessor, CameraSettings
from streams.clip_records import ClipPolicy
from streams.records import RecordError
from streams.series_pipeline import SeriesProcessor, SeriesSettings
from streams.worker import Outbox, PartitionedWorker
from video.camera_detector import CameraDetector
from video.decode import ClipError
from video.encoders import EfficientNetLiteEncoder, StatsEncoder, TorchvisionEncoder
from video.isolated import IsolatedDecoderPool

DETECTORS = ("halfspace", "lof", "self_similarity", "mixture")
EMBEDDERS = ("window_stats", "window", "chronos")
SHARED_SCALE_DETECTORS = ("halfspace",)  # one forest for all streams: raw windows do not suit it
THRESHOLDS = ("rolling", "spot", "dspot")
CLIP_ENCODERS = ("stats", "efficientnet", "torchvision:<model>")
CAMERA_SCORERS = ("lof", "self_similarity", "mixture")


def detector_factory(config: Config) -> Callable[[], SeriesDetector]:
    """A function that makes a fresh detector (one per Kafka partition)."""
    d, t = config.detector, config.threshold
    if d.name not in DETECTORS:
        raise ConfigError(f"unknown detector '{d.name}' (known: {', '.join(DETECTORS)})")
    if d.gate and not Path(d.gate).is_file():
        raise ConfigError(f"detector.gate: no gate file at {d.gate} (make one with `argus train-gate`)")
    if t.kind not in THRESHOLDS:
        raise ConfigError(f"unknown threshold.kind '{t.kind}' (known: {', '.join(THRESHOLDS)})")

    def threshold():
        if t.kind == "rolling":
            return RollingQuantileThreshold(t.quantile, t.margin, t.history, t.warmup)
        return SPOTThreshold(q=t.q, calibration=t.calibration, level=t.level, depth=t.depth if t.kind == "dspot" else 0)

    try:
        threshold()  # bad threshold options fail here, before any connection
    except ValueError as exc:
        raise ConfigError(f"threshold: {exc}") from None
    if d.cpu_threads < 1:
        raise ConfigError(f"detector.cpu_threads must be at least 1, got {d.cpu_threads}")

    embedder = make_embedder(config)
    device = resolve_device(d.device)
    ranges = value_ranges(d.value_ranges)
    if d.novelty and d.name != "mixture":
        raise ConfigError(f"detector.novelty adds an expert to the mixture, and detector.name is '{d.name}': "
                          "set detector.name: mixture")
    if ranges and not d.novelty:
        raise ConfigError("detector.value_ranges are read by the novelty expert alone: "
                          "set detector.novelty: true (with detector.name: mixture), or remove them")

    def trees():
        forest = HalfSpaceTreesScorer(d.n_trees, d.height, d.window_size, d.seed)
        return forest if isinstance(embedder, WindowStatsEmbedder) else MinMaxScaled(forest)

    def self_similarity():  # the mean score ranks best of the three on NAB (window stats, raw windows, argus-bolt)
        return SelfSimilarityScorer(score="mean", device=device)

    def scorer():
        if d.name == "lof":  # per-stream memories of recent vectors
            return LOFScorer(device=device)
        if d.name == "self_similarity":
            return self_similarity()
        if d.name == "mixture":  # the experts above, normalised, then averaged or gated
            experts = {"lof": LOFScorer(device=device), "self_similarity": self_similarity(), "level": LevelScorer()}
            if not isinstance(embedder, RawWindowEmbedder):  # raw windows: the per-stream experts only
                experts = {"halfspace": trees(), **experts}
            if d.novelty:
                experts["novelty"] = NoveltyScorer(ranges=ranges)
            mixture = MixtureOfExperts(experts)
            if d.gate:
                try:
                    mixture.load_gate(d.gate)
                except ValueError as exc:
                    raise ConfigError(f"detector.gate: {exc}") from None
            return mixture
        return trees()

    def make() -> SeriesDetector:
        return SeriesDetector(d.name, embedder, scorer(), threshold())

    return make


def value_ranges(raw: object) -> dict[str, tuple[float, float]]:
    """detector.value_ranges checked: {stream id: (low, high)}, numbers with low <= high."""
    if not isinstance(raw, dict):
        raise ConfigError(f"detector.value_ranges must map stream ids to [low, high], got {raw!r}")
    ranges = {}
    for stream, bounds in raw.items():
        numbers = isinstance(bounds, (list, tuple)) and len(bounds) == 2 and all(
            isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b) for b in bounds)
        if not numbers or bounds[0] > bounds[1]:
            raise ConfigError(f"detector.value_ranges.{stream} must be [low, high], two numbers with low <= high, "
                              f"got {bounds!r}")
        ranges[str(stream)] = (float(bounds[0]), float(bounds[1]))
    return ranges


def resolve_device(name: str) -> str:
    """'auto' is CUDA where there is a GPU, else CPU; anything else must be a torch device."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"detector.device: '{name}' is not a device (cpu, cuda, cuda:N or auto)") from None
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ConfigError(f"detector.device is '{name}' but torch sees {torch.cuda.device_count()} CUDA device(s) "
                          "here (use cpu or auto)")
    return name


def make_embedder(config: Config):
    """The embedder the config names; one instance, shared by every partition's detector."""
    d = config.detector
    device = resolve_device(d.device)
    if d.embedder == "window_stats":
        return WindowStatsEmbedder(device)
    if d.embedder == "window":
        if d.name in SHARED_SCALE_DETECTORS:
            raise ConfigError(f"embedder 'window' gives each stream's raw values, which streams do not share; "
                              f"detector '{d.name}' serves all streams with one model: use lof, self_similarity "
                              f"or mixture")
        return RawWindowEmbedder(device)
    if d.embedder == "chronos":  # an empty chronos_model means the model that ships with Argus
        model = d.chronos_model or str(shipped_model_path())
        try:
            return shared_chronos_embedder(model, device, d.pooling)
        except ValueError as exc:
            raise ConfigError(f"detector.chronos_model: {exc}") from None
    raise ConfigError(f"unknown embedder '{d.embedder}' (known: {', '.join(EMBEDDERS)})")


def build_pipeline(config: Config) -> PartitionedWorker:
    """The series worker: the series topic in, alerts and dead letters out."""
    torch.set_num_threads(config.detector.cpu_threads)
    settings = SeriesSettings(window=config.detector.window, max_record_bytes=config.max_record_bytes,
                              min_run=config.alert.min_run, quiet_readings=config.alert.quiet_readings)
    factory = detector_factory(config)
    outbox = Outbox(make_producer(config.kafka), config.topics.alerts, config.topics.dead_letter)
    return PartitionedWorker(make_consumer(config.kafka, group_id=config.group_id), outbox, config.topics.series,
                             SeriesProcessor(settings, factory, outbox), CheckpointStore(config.state_dir, config.group_id),
                             commit_interval_s=config.commit_interval_s)


def camera_detector_factory(config: Config) -> Callable[[], CameraDetector]:
    """A function that makes a fresh camera detector (one per partition of the clips topic)."""
    v = config.video
    if v.scorer not in CAMERA_SCORERS:
        raise ConfigError(f"unknown video.scorer '{v.scorer}' (known: {', '.join(CAMERA_SCORERS)})")
    encoder = make_clip_encoder(config)
    device = resolve_device(config.detector.device)

    def scorer():  # per-camera memories: a camera sends a clip every few seconds, not every second
        lof = LOFScorer(k=10, capacity=500, refit_every=1, admit_below=1.5, device=device)
        if v.scorer == "lof":
            return lof
        ssm = SelfSimilarityScorer(window=32, device=device)
        if v.scorer == "self_similarity":
            return ssm
        return MixtureOfExperts({"lof": lof, "self_similarity": ssm}, min_history=v.warmup)  # clips are few

    def make() -> CameraDetector:
        threshold = RollingQuantileThreshold(v.quantile, v.margin, v.history, v.warmup, refresh_every=1,
                                             remember_anomalies=False)
        return CameraDetector(f"camera-{v.scorer}", encoder, scorer(), threshold, keyframe_dir=v.keyframe_dir)

    return make


def make_clip_encoder(config: Config):
    """The clip encoder the config names; one instance, shared by every partition's detector."""
    device = resolve_device(config.detector.device)
    encoder, weights = config.video.encoder, config.video.encoder_weights or None
    if encoder == "stats":
        return StatsEncoder(device)
    if encoder.startswith("torchvision:") and weights is None:
        raise ConfigError(f"video.encoder '{encoder}' needs video.encoder_weights: a state-dict file, or a "
                          "torchvision weights name such as DEFAULT (fetched once into the torch hub cache)")
    try:
        if encoder == "efficientnet":
            return EfficientNetLiteEncoder(device, weights=weights)
        if encoder.startswith("torchvision:"):
            return TorchvisionEncoder(encoder.removeprefix("torchvision:"), weights, device)
    except ValueError as exc:
        raise ConfigError(f"video.encoder '{encoder}': {exc}") from None
    raise ConfigError(f"unknown video.encoder '{encoder}' (known: {', '.join(CLIP_ENCODERS)})")


def clip_decoder(config: Config) -> Callable[[list[bytes]], Callable[[], list]]:
    """Decodes a batch of clips in ``video.decoders`` child processes side by side (a decoder
    crash is a dead letter, not a dead worker), sampled and resized as the config says.
    ``start(clips)`` starts the work and returns at once; calling what it returns waits for
    the results: for each clip a DecodedClip, or a RecordError with the decoder's reason."""
    v = config.video
    if v.decoders < 1:
        raise ConfigError(f"video.decoders must be at least 1, got {v.decoders}")
    pool = IsolatedDecoderPool(v.decoders, timeout_s=v.decode_timeout_s)
    options = dict(fps=v.sample_fps, width=v.width or -1, height=v.height or -1, max_bytes=v.max_clip_bytes)

    def start(clips: list[bytes]) -> Callable[[], list]:
        futures = pool.submit_all(clips, **options)

        def results() -> list:
            return [RecordError(r.reason, r.detail) if isinstance(r, ClipError) else r
                    for r in (future.result() for future in futures)]

        return results

    return start


def build_camera_pipeline(config: Config) -> PartitionedWorker:
    """The camera worker: the clips topic in (its own consumer group, ``<group_id>.video``)."""
    v = config.video
    factory = camera_detector_factory(config)
    settings = CameraSettings(ClipPolicy(tuple(v.roots), tuple(v.hosts), v.max_clip_bytes, v.decode_timeout_s),
                              min_run=config.alert.min_run, quiet_clips=v.quiet_clips)
    group = f"{config.group_id}.video"
    outbox = Outbox(make_producer(config.kafka), config.topics.alerts, config.topics.dead_letter)
    processor = CameraProcessor(settings, clip_decoder(config), factory, outbox)
    return PartitionedWorker(make_consumer(config.kafka, group_id=group), outbox, config.topics.clips, processor,
                             CheckpointStore(config.state_dir, group), commit_interval_s=config.commit_interval_s,
                             poll_max_records=64)
