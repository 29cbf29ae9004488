"""Partition state through a safetensors checkpoint: same verdicts after, and no code in the file."""

import numpy as np
import pytest

from argus.config import load_config
from argus.wiring import detector_factory
from streams.alerts import AlertTracker
from streams.checkpoints import CheckpointError, CheckpointStore
from streams.series_pipeline import SeriesState
from streams.worker import PartitionState
from streams.records import Reading
from streams.windows import WindowStore


def _state() -> SeriesState:
    config = load_config(None, {"detector.window_size": 20, "threshold.warmup": 30, "threshold.quantile": 0.9,
                                "threshold.margin": 0.0})
    detector = detector_factory(config)()
    return SeriesState(WindowStore(8), detector, AlertTracker(detector.name, 1, 3))


def _feed(state: SeriesState, readings: list[Reading]) -> list:
    out = []
    for r in readings:
        window = state.windows.push(r)
        if window is not None:
            verdict = state.detector.judge([r.stream_id], [tuple(r.values)], window[None])[0]
            out.append((verdict, state.tracker.observe(r.stream_id, r.ts, verdict)))
    return out


def _readings(start: int, stop: int) -> list[Reading]:
    rng = np.random.default_rng(start)
    out = []
    for t in range(start, stop):
        for node in ("a", "b"):
            value = rng.normal() + (25.0 if t in (130, 131) and node == "a" else 0.0)
            out.append(Reading(node, float(t), {"cpu": value, "mem": rng.normal()}))
    return out


def test_a_restored_state_judges_exactly_like_the_original(tmp_path):
    original = PartitionState(_state(), next_offset=240)
    _feed(original.work, _readings(0, 120))
    store = CheckpointStore(tmp_path, "group")
    store.save("series", 3, original.state_dict())
    restored = PartitionState(_state())
    restored.load_state_dict(store.load("series", 3))
    assert restored.next_offset == 240
    later = _readings(120, 200)
    assert _feed(restored.work, later) == _feed(original.work, later)
    assert any(alert for _, alert in _feed(_state(), _readings(0, 200)))  # the comparison covers alerts


def test_a_file_that_is_not_a_checkpoint_is_refused_with_its_path(tmp_path):
    store = CheckpointStore(tmp_path, "group")
    (tmp_path / "group" / "series-0.safetensors").write_bytes(b"\x80\x04 a pickle, or anything else")
    with pytest.raises(CheckpointError, match="series-0.safetensors is not an Argus checkpoint"):
        store.load("series", 0)
    assert store.load("series", 1) is None


def test_an_uncalibrated_threshold_is_written_as_strict_json_and_comes_back(tmp_path):
    import json

    from safetensors import safe_open

    store = CheckpointStore(tmp_path, "group")
    state = {"z": float("inf"), "low": float("-inf"), "missing": float("nan"), "q": 1e-3}
    store.save("series", 0, state)
    with safe_open(str(tmp_path / "group" / "series-0.safetensors"), "np") as f:
        header = f.metadata()["state"]

    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    json.loads(header, parse_constant=refuse)  # no Infinity or NaN literals
    back = store.load("series", 0)
    assert back["z"] == float("inf") and back["low"] == float("-inf") and back["q"] == 1e-3
    assert back["missing"] != back["missing"]  # NaN
