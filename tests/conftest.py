"""Shared fixtures: a real local Kafka broker for the whole session, fresh topics per test."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from streams.broker import LocalBroker, free_port_pair

# scripts that run in the PATE reference's own venv, not in this one
collect_ignore_glob = ["fixtures/*"]


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory):
    """A real KRaft broker on a free port, started once for the session."""
    broker = LocalBroker(tmp_path_factory.mktemp("broker"), free_port_pair())
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def argus_config(kafka_broker, tmp_path):
    """Config overrides with topics, group and state folder of this test alone."""
    tag = uuid.uuid4().hex[:8]
    return {
        "kafka": {"bootstrap_servers": kafka_broker.bootstrap},
        "topics": {"series": f"series-{tag}", "alerts": f"alerts-{tag}", "dead_letter": f"dead-{tag}", "partitions": 2},
        "group_id": f"group-{tag}",
        "state_dir": str(tmp_path / "state"),
        "commit_interval_s": 0.5,
    }


def write_config(path: Path, overrides: dict) -> Path:
    path.write_text(yaml.safe_dump(overrides))
    return path


def start_serve(config_file: Path, log_file: Path) -> subprocess.Popen:
    """`argus serve` as a separate process, as an operator runs it."""
    return subprocess.Popen([sys.executable, "-m", "argus", "serve", "--config", str(config_file)],
                            stdout=subprocess.DEVNULL, stderr=open(log_file, "a"))
