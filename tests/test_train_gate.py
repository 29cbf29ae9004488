"""`argus train-gate` on real NAB series, and the gate used through the config."""

import json
from pathlib import Path

import numpy as np
import pytest

from argus.cli import main
from argus.config import ConfigError, load_config
from argus.wiring import detector_factory
from detectors.mixture import MIN_HISTORY

NAB = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "NAB"


def test_a_gate_trained_on_nab_series_loads_into_the_mixture(tmp_path, capsys):
    # a short NAB series with a labelled window, cut so the test stays quick
    source = NAB / "data" / "realKnownCause" / "ec2_request_latency_system_failure.csv"
    lines = source.read_text().splitlines()
    (tmp_path / "ec2.csv").write_text("\n".join(lines[:2600]) + "\n")
    labels = json.loads((NAB / "labels" / "combined_windows.json").read_text())
    (tmp_path / "labels.json").write_text(json.dumps({"ec2": labels["realKnownCause/ec2_request_latency_system_failure.csv"]}))
    gate = tmp_path / "gate.safetensors"
    assert main(["train-gate", "--csv", str(tmp_path / "ec2.csv"), "--labels", str(tmp_path / "labels.json"),
                 "--out", str(gate), "--epochs", "30"]) == 0
    assert "gate written" in capsys.readouterr().out
    trained = detector_factory(load_config(None, {"detector.name": "mixture", "detector.gate": str(gate)}))()
    plain = detector_factory(load_config(None, {"detector.name": "mixture"}))()
    assert trained.scorer.gate is not None and plain.scorer.gate is None
    n = MIN_HISTORY + 64  # the experts' scores count once each has MIN_HISTORY of them
    windows = np.random.default_rng(0).normal(size=(n, 1, 32)).astype(np.float32)
    ids, channels = ["s"] * n, [("value",)] * n
    assert [v.score for v in trained.judge(ids, channels, windows)] != [v.score for v in plain.judge(ids, channels, windows)]


def test_a_missing_gate_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no gate file"):
        detector_factory(load_config(None, {"detector.name": "mixture", "detector.gate": str(tmp_path / "none")}))
