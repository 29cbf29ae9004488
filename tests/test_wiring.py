"""The composition root: the config picks the embedder and device; partitions share one model."""

import numpy as np
import pytest

from argus.config import ConfigError, load_config
from argus.wiring import detector_factory
from detectors.chronos_models import save_random_model
from detectors.window_stats import WindowStatsEmbedder
from streams.checkpoints import CheckpointStore


@pytest.fixture(scope="module")
def bolt_folder(tmp_path_factory):
    return save_random_model("bolt", "test", tmp_path_factory.mktemp("bolt"))


def test_default_is_the_weight_free_embedder():
    detector = detector_factory(load_config())()
    assert isinstance(detector.embedder, WindowStatsEmbedder)


def test_chronos_detectors_share_one_model_and_checkpoint_without_its_weights(bolt_folder, tmp_path):
    config = load_config(None, {"detector.embedder": "chronos", "detector.chronos_model": str(bolt_folder),
                                "detector.device": "auto"})
    make = detector_factory(config)
    first, second = make(), make()
    assert first.embedder is second.embedder
    windows = np.random.default_rng(0).normal(size=(6, 2, 32)).astype(np.float32)
    verdicts = first.judge([f"s{i}" for i in range(6)], [("a", "b")] * 6, windows)
    assert len(verdicts) == 6 and all(np.isfinite(v.score) for v in verdicts)
    store = CheckpointStore(tmp_path, "g")
    store.save("t", 0, first.state_dict())
    second.load_state_dict(store.load("t", 0))  # what it learned, without the model's weights
    assert (tmp_path / "g" / "t-0.safetensors").stat().st_size < 500_000
    again = [first.judge(["s0"], [("a", "b")], windows[:1])[0], second.judge(["s0"], [("a", "b")], windows[:1])[0]]
    assert again[0] == again[1]


@pytest.mark.parametrize("overrides, message", [
    ({"detector.embedder": "chronos", "detector.chronos_model": "amazon/no-such-model"}, "cannot load the Chronos model"),
    ({"detector.embedder": "chronos", "detector.chronos_model": "/no/such/model"}, "cannot load the Chronos model"),
    ({"detector.embedder": "rocket"}, "unknown embedder 'rocket'"),
    ({"detector.embedder": "window"}, "detector 'halfspace' serves all streams"),  # raw values: per-stream scorers
    ({"detector.device": "cuda:7"}, "detector.device"),
    ({"detector.device": "gpu"}, "is not a device"),
])
def test_bad_detector_options_are_one_line_config_errors(overrides, message):
    with pytest.raises(ConfigError, match=message) as info:
        detector_factory(load_config(None, overrides))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("overrides", [{"detector.name": "lof"}, {"detector.name": "self_similarity"},
                                       {"detector.name": "mixture"},
                                       # stream a with a configured range, b still learning its own in its warm-up
                                       {"detector.name": "mixture", "detector.novelty": True,
                                        "detector.value_ranges": {"a": [-3, 3]}}])
def test_other_scorers_keep_a_memory_per_stream_and_checkpoint(overrides, tmp_path):
    make = detector_factory(load_config(None, overrides))
    detector = make()
    rng = np.random.default_rng(1)
    # past every warm-up: 300 scores of the mixture's experts, 64 windows of self-similarity, and
    # with novelty each stream's 750 values
    for _ in range(40 if "detector.novelty" in overrides else 9):
        detector.judge(["a", "b"] * 20, [("x",)] * 40, rng.normal(size=(40, 1, 32)).astype(np.float32))
    store = CheckpointStore(tmp_path, "g")
    store.save("t", 0, detector.state_dict())
    restored = make()
    restored.load_state_dict(store.load("t", 0))
    windows = rng.normal(size=(6, 1, 32)).astype(np.float32)
    scores = [v.score for v in detector.judge(["a", "b"] * 3, [("x",)] * 6, windows)]
    assert np.isfinite(scores).all()
    assert [v.score for v in restored.judge(["a", "b"] * 3, [("x",)] * 6, windows)] == scores
    if "detector.novelty" in overrides:  # its z-scores wait for 300 of its scores: compare the expert itself
        original, copy = detector.scorer.experts["novelty"], restored.scorer.experts["novelty"]
        assert copy.streams["a"].low.tolist() == [-3.0] != copy.streams["b"].low.tolist()  # configured, learned
        probe, keys = np.zeros((400, 1, 32)), ["a", "b"] * 200  # 199 zeros each, past any rest (150), then 10
        probe[-2:, 0, -1] = 10.0
        novel = copy.score_and_learn(probe, keys)
        assert not np.isnan(novel).any() and novel[-2:].tolist() == [1.0, 1.0]
        np.testing.assert_array_equal(novel, original.score_and_learn(probe, keys))


def test_raw_window_lof_is_scikit_learns_lof_on_each_streams_own_windows():
    from sklearn.neighbors import LocalOutlierFactor

    detector = detector_factory(load_config(None, {"detector.name": "lof", "detector.embedder": "window"}))()
    rng = np.random.default_rng(2)
    levels = {"a": 0.0, "b": 1000.0}  # far apart: a shared memory would score b's windows as outliers of a's
    history = {key: (level + rng.normal(size=(40, 1, 8))).astype(np.float32) for key, level in levels.items()}
    for i in range(40):  # interleaved, as a poll brings them
        detector.judge(["a", "b"], [("x",)] * 2, np.stack([history["a"][i], history["b"][i]]))
    probe = {key: (level + rng.normal(size=(1, 1, 8)) * 3).astype(np.float32) for key, level in levels.items()}
    scores = [v.score for v in detector.judge(["a", "b"], [("x",)] * 2, np.concatenate([probe["a"], probe["b"]]))]
    for key, score in zip(levels, scores):  # the memory was fitted when it held k + 1 = 21 windows
        reference = history[key].reshape(40, 8).astype(np.float64)[:21]
        expected = -LocalOutlierFactor(n_neighbors=20, novelty=True).fit(reference).score_samples(
            probe[key].reshape(1, 8).astype(np.float64))[0]
        assert score == pytest.approx(expected, rel=1e-9)


def test_on_raw_windows_the_mixture_holds_only_the_per_stream_experts():
    detector = detector_factory(load_config(None, {"detector.name": "mixture", "detector.embedder": "window"}))()
    assert list(detector.scorer.experts) == ["lof", "self_similarity", "level"]
    assert detector.scorer.experts["self_similarity"].score == "mean"
    plain = detector_factory(load_config(None, {"detector.name": "mixture"}))()
    assert list(plain.scorer.experts) == ["halfspace", "lof", "self_similarity", "level"]
    novel = detector_factory(load_config(None, {"detector.name": "mixture", "detector.novelty": True}))()
    assert list(novel.scorer.experts) == ["halfspace", "lof", "self_similarity", "level", "novelty"]


def test_configured_value_ranges_reach_the_novelty_expert(tmp_path):
    path = tmp_path / "argus.yaml"
    path.write_text("detector:\n  name: mixture\n  novelty: true\n  value_ranges:\n    node-1/cpu: [0, 100]\n")
    detector = detector_factory(load_config(path))()
    novelty = detector.scorer.experts["novelty"]
    assert novelty.ranges == {"node-1/cpu": (0.0, 100.0)}
    window = np.full((1, 1, 32), 50.0)
    detector.assess(["node-1/cpu"], window)
    assert novelty.streams["node-1/cpu"].low.tolist() == [0.0]  # known from the first value, not learned


@pytest.mark.parametrize("ranges, says", [({"a": [5, 1]}, "value_ranges.a must be [low, high]"),
                                          ({"a": [0, "x"]}, "value_ranges.a must be [low, high]"),
                                          ({"a": [0, 1, 2]}, "value_ranges.a must be [low, high]"),
                                          ([0, 1], "must map stream ids to")])
def test_bad_value_ranges_are_refused_naming_the_stream(ranges, says):
    overrides = {"detector.name": "mixture", "detector.novelty": True, "detector.value_ranges": ranges}
    with pytest.raises(ConfigError, match=says.replace("[", r"\[").replace("]", r"\]")):
        detector_factory(load_config(None, overrides))


def test_the_novelty_options_outside_a_mixture_with_novelty_are_refused():
    with pytest.raises(ConfigError, match="read by the novelty expert alone"):
        detector_factory(load_config(None, {"detector.name": "mixture", "detector.value_ranges": {"a": [0, 1]}}))
    with pytest.raises(ConfigError, match="adds an expert to the mixture, and detector.name is 'lof'"):
        detector_factory(load_config(None, {"detector.name": "lof", "detector.novelty": True}))


@pytest.mark.parametrize("kind", ["spot", "dspot"])
def test_extreme_value_thresholds_come_from_the_config(kind):
    config = load_config(None, {"threshold.kind": kind, "threshold.calibration": 100, "threshold.level": 0.9,
                                "threshold.q": 0.01})
    detector = detector_factory(config)()
    rng = np.random.default_rng(4)
    verdicts = detector.judge(["s"] * 300, [("x",)] * 300, rng.normal(size=(300, 1, 32)).astype(np.float32))
    assert np.isinf(verdicts[0].threshold) and np.isfinite(verdicts[-1].threshold)  # calibrated after 100 scores
    assert (detector.threshold.depth > 0) == (kind == "dspot")


def test_bad_threshold_options_are_one_line_config_errors():
    with pytest.raises(ConfigError, match="unknown threshold.kind 'evt'"):
        detector_factory(load_config(None, {"threshold.kind": "evt"}))
    with pytest.raises(ConfigError, match="threshold:"):
        detector_factory(load_config(None, {"threshold.kind": "spot", "threshold.q": 2.0}))
