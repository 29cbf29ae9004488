"""`argus train-gate` on real NAB series, and the gate used through the config."""

import json
import re
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
    printed = capsys.readouterr().out
    assert "gate written" in printed
    trained_on, skipped = re.search(r"trained on (\d+) windows .*; (\d+) more had no expert's opinion", printed).groups()
    assert int(trained_on) > 0 and int(skipped) > 0  # the warm-up windows are counted apart
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


def test_a_gate_trained_on_other_score_scales_is_refused_in_one_line(tmp_path):
    from detectors.memory import load_state, save_state

    mixture = detector_factory(load_config(None, {"detector.name": "mixture"}))().scorer
    rng = np.random.default_rng(0)
    z, vectors = rng.normal(size=(64, len(mixture.experts))), rng.normal(size=(64, 4)).astype(np.float32)
    mixture.fit_gate(z, vectors, (np.arange(64) % 8 == 0).astype(int), epochs=2)
    gate = tmp_path / "gate.safetensors"
    mixture.save_gate(gate)
    detector_factory(load_config(None, {"detector.name": "mixture", "detector.gate": str(gate)}))()  # loads
    tensors, meta = load_state(gate)
    del meta["scales"]  # as a gate file written before the mixture read LOF and self-similarity on a log scale
    save_state(gate, tensors, meta)
    with pytest.raises(ConfigError, match="detector.gate: .* train the gate again"):
        detector_factory(load_config(None, {"detector.name": "mixture", "detector.gate": str(gate)}))()
