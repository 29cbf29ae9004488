"""The mixture of experts: exact streaming normalisation, a gate that learns whom to trust, state."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from detectors.halfspace import HalfSpaceTreesScorer
from detectors.lof import LOFScorer
from detectors.mixture import MIN_HISTORY, MixtureOfExperts, RunningNormaliser
from streams.checkpoints import CheckpointStore


class Column:
    """An expert that reports one column of the vectors (and learns nothing)."""

    def __init__(self, column: int):
        self.column = column

    def score_and_learn(self, vectors, keys=None):
        return np.asarray(vectors)[:, self.column].astype(np.float64)

    def state_dict(self):
        return {"column": self.column}

    def load_state_dict(self, state):
        self.column = state["column"]


def test_normalisation_is_the_z_score_against_earlier_values_in_any_batching():
    x = np.random.default_rng(0).normal(size=(MIN_HISTORY + 90, 2)) * [1.0, 50.0] + [0.0, 7.0]
    whole = RunningNormaliser(2)(x)
    pieces = RunningNormaliser(2)
    split = np.vstack([pieces(x[:1]), pieces(x[1:45]), pieces(x[45:])])
    np.testing.assert_allclose(split, whole, atol=1e-12)
    i = MIN_HISTORY + 50  # by hand: row i against rows 0..i-1
    np.testing.assert_allclose(whole[i], (x[i] - x[:i].mean(0)) / x[:i].std(0, ddof=1), rtol=1e-7, atol=1e-9)
    assert not whole[:MIN_HISTORY].any() and whole[MIN_HISTORY].all()  # no opinion until then


def _labelled_windows(n: int = 3000, seed: int = 1):
    """Column 0 carries the anomalies, column 1 is noise; column 2 tells which regime a row is in."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.03).astype(int)
    vectors = rng.normal(size=(n, 3))
    vectors[:, 0] += 4.0 * labels
    return vectors, labels


def test_a_trained_gate_learns_to_trust_the_informative_expert():
    vectors, labels = _labelled_windows()
    train = MixtureOfExperts({"signal": Column(0), "noise": Column(1)})
    z = train.expert_scores(vectors)
    losses = train.fit_gate(z, vectors, labels, epochs=150)
    assert losses[-1] < losses[0]
    test_vectors, test_labels = _labelled_windows(seed=2)
    unsupervised = MixtureOfExperts({"signal": Column(0), "noise": Column(1)})
    trained = MixtureOfExperts({"signal": Column(0), "noise": Column(1)})
    trained.load_state_dict(train.state_dict())
    auc_trained = roc_auc_score(test_labels[MIN_HISTORY:], trained.score_and_learn(test_vectors)[MIN_HISTORY:])
    auc_mean = roc_auc_score(test_labels[MIN_HISTORY:], unsupervised.score_and_learn(test_vectors)[MIN_HISTORY:])
    auc_noise = roc_auc_score(test_labels[MIN_HISTORY:], test_vectors[MIN_HISTORY:, 1])
    assert auc_trained > auc_mean > auc_noise
    assert auc_trained > 0.95


def test_real_experts_restore_through_a_checkpoint(tmp_path):
    rng = np.random.default_rng(3)
    make = lambda: MixtureOfExperts({"trees": HalfSpaceTreesScorer(window_size=50), "lof": LOFScorer(k=5, capacity=100)})
    mixture = make()
    vectors = rng.random((300, 4))
    z = mixture.expert_scores(vectors[:200], keys=["a", "b"] * 100)
    mixture.fit_gate(z, vectors[:200], (np.arange(200) % 25 == 0).astype(int), epochs=20)
    store = CheckpointStore(tmp_path, "g")
    store.save("t", 0, mixture.state_dict())
    restored = make()
    restored.load_state_dict(store.load("t", 0))
    keys = ["a", "b"] * 50
    np.testing.assert_allclose(restored.score_and_learn(vectors[200:], keys), mixture.score_and_learn(vectors[200:], keys))


def test_bad_training_input_is_refused():
    mixture = MixtureOfExperts({"signal": Column(0)})
    with pytest.raises(ValueError, match="both normal"):
        mixture.fit_gate(np.zeros((10, 1)), np.zeros((10, 3)), np.zeros(10))
    with pytest.raises(ValueError, match="shape"):
        mixture.fit_gate(np.zeros((10, 2)), np.zeros((10, 3)), np.ones(10))
    with pytest.raises(ValueError, match="at least one expert"):
        MixtureOfExperts({})
