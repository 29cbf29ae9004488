import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from argus.cli import main
from argus.config import Config, ConfigError, load_config
from streams.broker import SHARED_SETTINGS, LocalBroker
from streams.kafka_clients import MAX_MESSAGE_BYTES

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_need_no_file_and_a_file_overrides_parts(tmp_path):
    assert load_config() == Config()
    path = tmp_path / "c.yaml"
    path.write_text("kafka: {bootstrap_servers: 'h:1', security_protocol: SASL_SSL}\nthreshold: {quantile: 0.9}\n")
    config = load_config(path)
    assert config.kafka == {"bootstrap_servers": "h:1", "security_protocol": "SASL_SSL"}
    assert config.threshold.quantile == 0.9 and config.threshold.warmup == Config().threshold.warmup


@pytest.mark.parametrize("text, message", [
    ("detector: {windw: 3}", "unknown option 'detector.windw'"),
    ("threshold: {quantile: high}", "option 'threshold.quantile' must be float"),
    ("commit_interval_s: -1", "must not be negative"),
    ("kafka: {bootstrap: x}", "unknown kafka-python setting 'kafka.bootstrap'"),
    ("detector: [1, 2]", "detector must be a mapping"),
    ("a: [", "is not valid YAML at line"),
])
def test_bad_options_are_refused_naming_the_option(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_config(path)


def test_cli_prints_one_line_errors_not_tracebacks(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("detector: {name: nope}")
    done = subprocess.run([sys.executable, "-m", "argus", "serve", "--config", str(path)], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip() == "argus serve: error: unknown detector 'nope' (known: halfspace, lof, self_similarity, mixture)"
    assert main(["replay", "--csv", str(tmp_path / "missing.csv")]) == 2


def test_docker_compose_mirrors_the_local_broker():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    kafka, argus = compose["services"]["kafka"], compose["services"]["argus"]
    env = kafka["environment"]
    for key, value in SHARED_SETTINGS.items():
        assert env["KAFKA_" + key.upper().replace(".", "_")] == value, key
    assert env["KAFKA_MESSAGE_MAX_BYTES"] == str(MAX_MESSAGE_BYTES)
    assert f"{LocalBroker('.').port}:9092" in kafka["ports"]
    assert env["KAFKA_PROCESS_ROLES"] == LocalBroker(".").properties()["process.roles"]
    assert kafka["image"].startswith("apache/kafka:")
    assert argus["command"][:2] == ["argus", "serve"]
    internal = argus["command"][argus["command"].index("--bootstrap-servers") + 1]
    assert f"INTERNAL://{internal}" in env["KAFKA_ADVERTISED_LISTENERS"]
    topics = Config().topics
    for name in (topics.series, topics.alerts, topics.dead_letter):
        assert name in (ROOT / "docker-compose.yml").read_text()
