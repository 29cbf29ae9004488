"""The `argus serve` configuration: defaults for everything, a YAML file overrides any part.

Unknown options and wrong types are refused with a one-line message naming the option.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from streams.kafka_clients import KNOWN_CONNECTION_KEYS


class ConfigError(ValueError):
    """A bad configuration file or option; the message names it."""


@dataclass
class Topics:
    series: str = "argus.series"
    alerts: str = "argus.alerts"
    dead_letter: str = "argus.deadletter"
    clips: str = "argus.clips"  # camera clips (served when video.enabled)
    partitions: int = 4


@dataclass
class DetectorConfig:
    name: str = "halfspace"
    window: int = 32
    n_trees: int = 10
    height: int = 8
    window_size: int = 250
    seed: int = 42
    embedder: str = "window_stats"  # or "chronos"
    chronos_model: str = ""  # embedder: chronos; a hub id or a local folder (empty: the shipped argus-bolt)
    pooling: str = "mean"  # chronos: "mean" of the window's positions or the summary "token"
    gate: str = ""  # mixture: a gate file from `argus train-gate` (empty: the unsupervised mean)
    device: str = "cpu"  # cpu, cuda, cuda:N, or auto (cuda when there is one)
    # torch's CPU threads per worker; 1 leaves the cores to the Kafka client and to more
    # workers (scale out with processes in one group); raise it for heavy embedders on CPU
    cpu_threads: int = 1
    # mixture: add the novelty expert (a step between value levels a stream never took), for
    # streams whose new territory is news; off by default, since a cluster whose jobs move load
    # to new plateaus gets false alerts from it (README, Measured)
    novelty: bool = False
    # novelty: each stream's expected value range, {stream id: [low, high]}; a stream not named
    # takes the range of its first 750 values
    value_ranges: dict[str, Any] = field(default_factory=dict)


@dataclass
class ThresholdConfig:
    kind: str = "rolling"  # rolling (quantile + margin), spot or dspot (extreme value theory)
    quantile: float = 0.995  # rolling
    margin: float = 1.0  # rolling
    history: int = 2000  # rolling
    warmup: int = 300  # rolling
    q: float = 0.001  # spot/dspot: target alert rate
    calibration: int = 1000  # spot/dspot: scores before the first threshold
    level: float = 0.98  # spot/dspot: quantile above which scores are peaks
    depth: int = 20  # dspot: scores in the moving average that is subtracted


@dataclass
class AlertConfig:
    min_run: int = 1
    quiet_readings: int = 5


@dataclass
class VideoConfig:
    enabled: bool = False  # serve the clips topic as well as the series topic
    encoder: str = "stats"  # stats (weight-free), efficientnet (ImageNet weights shipped in a package), torchvision:<model>
    encoder_weights: str = ""  # a state-dict file; torchvision: or a weights name (DEFAULT: fetched once to the hub cache)
    scorer: str = "lof"  # lof, self_similarity or mixture (of the two), per camera
    sample_fps: float = 5.0  # frames taken from each clip per second
    width: int = 160  # frames are resized on decode to width x height
    height: int = 96
    roots: list = field(default_factory=list)  # folders whose clips may be named by URI (claim check)
    hosts: list = field(default_factory=list)  # loopback host[:port]s whose http(s) clip URLs may be fetched
    max_clip_bytes: int = 64 * 1024 * 1024
    decoders: int = 2  # child processes that decode clips side by side
    decode_timeout_s: float = 30.0  # a clip the decoder spends longer on is dead-lettered as corrupt
    keyframe_dir: str = ".argus/keyframes"  # the most anomalous frame of each camera alert, as PNG
    quantile: float = 0.95  # per camera: threshold = Q_q + margin (Q_q - median) of its recent clip scores
    margin: float = 0.5
    history: int = 500
    warmup: int = 19  # scored clips of a camera before it can alert (LOF scores from its 12th: it alerts from its 31st)
    quiet_clips: int = 1  # normal clips that close a camera alert


@dataclass
class Config:
    kafka: dict[str, Any] = field(default_factory=lambda: {"bootstrap_servers": "127.0.0.1:9092"})
    topics: Topics = field(default_factory=Topics)
    group_id: str = "argus"
    state_dir: str = ".argus/state"
    commit_interval_s: float = 1.0
    max_record_bytes: int = 1024 * 1024
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    threshold: ThresholdConfig = field(default_factory=ThresholdConfig)
    alert: AlertConfig = field(default_factory=AlertConfig)
    video: VideoConfig = field(default_factory=VideoConfig)


def _build(cls: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where or 'the file'} must be a mapping of options, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in raw.items():
        name = f"{where}.{key}" if where else str(key)
        if key not in fields:
            raise ConfigError(f"unknown option '{name}' (known: {', '.join(fields)})")
        default = fields[key].default_factory() if fields[key].default_factory is not dataclasses.MISSING else fields[key].default
        values[key] = _coerce(default, value, name)
    return cls(**values)


def _coerce(default: Any, value: Any, name: str) -> Any:
    if dataclasses.is_dataclass(default):
        return _build(type(default), value, name)
    if name == "kafka":
        if not isinstance(value, dict):
            raise ConfigError("option 'kafka' must be a mapping of kafka-python client settings")
        unknown = sorted(set(value) - KNOWN_CONNECTION_KEYS)
        if unknown:
            raise ConfigError(f"unknown kafka-python setting 'kafka.{unknown[0]}'")
        return {**default, **value}
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"option '{name}' must be true or false, got {value!r}")
        return value
    if not isinstance(default, (int, float, str)):
        return value
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not type(default):
        raise ConfigError(f"option '{name}' must be {type(default).__name__}, got {value!r}")
    if isinstance(value, (int, float)) and value < 0:
        raise ConfigError(f"option '{name}' must not be negative, got {value!r}")
    return value


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Defaults, then the YAML file at ``path`` (if any), then ``overrides`` (dotted keys)."""
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}" if mark else ""
            raise ConfigError(f"config file {path} is not valid YAML{at}") from None
    for dotted, value in (overrides or {}).items():
        node = raw
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    config = _build(Config, raw, "")
    if not 0 < config.threshold.quantile <= 1:
        raise ConfigError(f"option 'threshold.quantile' must be in (0, 1], got {config.threshold.quantile}")
    for name in ("roots", "hosts"):
        value = getattr(config.video, name)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"option 'video.{name}' must be a list of strings, got {value!r}")
    if not 0 < config.video.quantile <= 1:
        raise ConfigError(f"option 'video.quantile' must be in (0, 1], got {config.video.quantile}")
    if config.detector.window < 4:
        raise ConfigError(f"option 'detector.window' must be at least 4, got {config.detector.window}")
    return config
