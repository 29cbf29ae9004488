"""Self-similarity scores: incremental == batch, keys, anomalies, state, bad input."""

import numpy as np
import pytest
import torch

from detectors.self_similarity import SCORES, SelfSimilarityScorer, self_similarity_scores
from test_lof import assert_restored_scorer_scores_the_same, injected


def _stream(scorer: SelfSimilarityScorer, x, sizes, keys=None) -> dict[str, np.ndarray]:
    parts, start = [], 0
    for size in sizes:
        parts.append(scorer.scores_and_learn(x[start:start + size], None if keys is None else keys[start:start + size]))
        start += size
    return {name: np.concatenate([p[name] for p in parts]) for name in SCORES}


@pytest.mark.parametrize("window, rank, top_k, chunk", [(16, 2, 3, 5), (40, 8, 10, 1024), (9, 5, 1, 64)])
def test_incremental_scores_equal_the_batch_form(window, rank, top_k, chunk):
    rng = np.random.default_rng(window)
    x = torch.from_numpy(rng.standard_normal((260, 12)) + np.sin(np.arange(260) / 5)[:, None])
    sizes = [1, 2, 30, 1, 7, 100, 3, 116]
    ours = _stream(SelfSimilarityScorer(window, rank, top_k, chunk=chunk), x, sizes)
    batch = self_similarity_scores(x, window, rank, top_k)
    for name in SCORES:
        assert np.isnan(ours[name][:window - 1]).all() and np.isfinite(ours[name][window - 1:]).all()
        np.testing.assert_allclose(ours[name][window - 1:], batch[name].numpy(), rtol=1e-9, atol=1e-12)


def test_keys_keep_independent_windows():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((90, 6)), rng.standard_normal((70, 6)) + 2
    keys = rng.permutation(np.array(["a"] * 90 + ["b"] * 70))
    rows = np.empty((160, 6))
    rows[keys == "a"], rows[keys == "b"] = a, b
    mixed = _stream(SelfSimilarityScorer(window=12, rank=3, chunk=17), rows, [50, 1, 109], list(keys))
    for key, alone in (("a", a), ("b", b)):
        expected = SelfSimilarityScorer(window=12, rank=3).scores_and_learn(alone)
        for name in SCORES:
            np.testing.assert_allclose(mixed[name][keys == key], expected[name], rtol=1e-9, atol=1e-12)


def test_each_key_has_no_opinion_exactly_until_its_window_fills():
    rng = np.random.default_rng(4)
    keys = list(rng.permutation(np.array(["a"] * 40 + ["b"] * 12 + ["c"] * 5)))  # c never fills W - 1 = 7
    scores = _stream(SelfSimilarityScorer(window=8, rank=2, top_k=2, chunk=6), rng.standard_normal((57, 4)),
                     [20, 1, 36], keys)
    for name in SCORES:
        for key in "abc":
            mine = scores[name][np.array(keys) == key]
            assert np.isnan(mine[:7]).all() and np.isfinite(mine[7:]).all(), (name, key)


def test_spectral_residual_is_zero_inside_the_span_and_one_orthogonal_to_it():
    basis = torch.eye(6, dtype=torch.float64)
    plane = torch.rand(7, 2, dtype=torch.float64) @ basis[:2]  # seven older vectors spanning a plane
    for newest, residual in ((basis[2], 1.0), (basis[0] - 3 * basis[1], 0.0)):
        scores = self_similarity_scores(torch.cat([plane, newest[None]]), window=8, rank=2)["spectral"]
        assert scores.tolist() == pytest.approx([residual], abs=1e-7)


@pytest.mark.parametrize("kind", ["spike", "level", "variance"])
def test_injected_anomalies_score_above_every_normal_window(kind):
    """Difference windows of a real series, with one constant coordinate added: cosine similarity
    ignores length, and the anchor turns a burst of large steps into a change of direction."""
    windows, anomalous, normal = injected(kind)
    vectors = np.hstack([np.full((len(windows), 1), 2 * np.sqrt(windows.shape[1])), windows])
    scores = SelfSimilarityScorer(window=96, rank=5, top_k=5).scores_and_learn(vectors)
    for name in SCORES:
        assert scores[name][anomalous].max() > 1.2 * scores[name][normal].max(), name


def test_a_restored_scorer_gives_the_same_scores(tmp_path):
    x = np.random.default_rng(2).standard_normal((300, 8))
    keys = [f"cam-{i % 3}" for i in range(300)]
    for score in SCORES:
        original = SelfSimilarityScorer(window=20, rank=4, top_k=3, score=score, chunk=50)
        assert_restored_scorer_scores_the_same(original, x, keys, tmp_path / f"{score}.st")


def test_state_dict_round_trips_into_a_scorer_with_the_same_arguments():
    x = np.random.default_rng(3).standard_normal((120, 6))
    original = SelfSimilarityScorer(window=10, rank=3)
    original.score_and_learn(x[:70])
    copy = SelfSimilarityScorer(window=10, rank=3)
    copy.load_state_dict(original.state_dict())
    np.testing.assert_array_equal(copy.score_and_learn(x[70:]), original.score_and_learn(x[70:]))
    with pytest.raises(ValueError, match="made with"):
        SelfSimilarityScorer(window=11, rank=3).load_state_dict(original.state_dict())


def test_a_state_file_of_another_scorer_is_refused(tmp_path):
    from detectors.lof import LOFScorer

    LOFScorer(k=2, capacity=5).save(tmp_path / "lof.safetensors")
    with pytest.raises(ValueError, match="not a self_similarity scorer"):
        SelfSimilarityScorer.load(tmp_path / "lof.safetensors")


@pytest.mark.parametrize("call, message", [
    (lambda: SelfSimilarityScorer().score_and_learn(np.zeros((2, 3, 4))), "shape"),
    (lambda: SelfSimilarityScorer().score_and_learn(np.array([[1.0, np.inf]])), "NaN"),
    (lambda: SelfSimilarityScorer(window=8, rank=8), "rank"),
    (lambda: SelfSimilarityScorer(window=8, top_k=9), "top_k"),
    (lambda: SelfSimilarityScorer(score="median"), "score"),
    (lambda: SelfSimilarityScorer().score_and_learn(np.zeros((3, 2)), keys=["a", "b"]), "one key per row"),
])
def test_bad_input_raises_a_one_line_value_error(call, message):
    with pytest.raises(ValueError, match=message) as error:
        call()
    assert "\n" not in str(error.value)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_scores_equal_cpu_scores():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2000, 32)) + np.sin(np.arange(2000) / 7)[:, None]
    keys = [f"s{i % 5}" for i in range(2000)]
    cpu = SelfSimilarityScorer(window=48, rank=4).scores_and_learn(x, keys)
    gpu = SelfSimilarityScorer(window=48, rank=4, device="cuda").scores_and_learn(x, keys)
    for name in SCORES:
        np.testing.assert_allclose(gpu[name], cpu[name], rtol=1e-4, atol=1e-4)
