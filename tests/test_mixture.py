"""The mixture of experts: exact streaming normalisation, a gate that learns whom to trust, state."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from detectors.halfspace import HalfSpaceTreesScorer
from detectors.lof import LOFScorer
from detectors.mixture import EVENT_SCORE, MIN_HISTORY, MixtureOfExperts, RunningNormaliser
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


class Ratio(Column):
    """A ratio-like expert (a LOF, say): the mixture reads it on a log scale."""

    score_scale = "log"


class Event(Column):
    """An event expert (the novelty expert, say): 1.0 where something new happened, else 0.0."""

    score_scale = "event"


def test_an_event_expert_is_read_as_it_is_and_every_event_scores_the_event_score_plus_the_graded():
    rng = np.random.default_rng(3)
    x = np.column_stack([rng.normal(size=(MIN_HISTORY + 50, 2)), np.zeros(MIN_HISTORY + 50)])
    x[[10, MIN_HISTORY + 10, MIN_HISTORY + 30], 2] = 1.0  # events: one while the others warm up
    x[MIN_HISTORY + 30, 0] = 500.0  # an event where a graded expert is off the scale too
    graded = MixtureOfExperts({"a": Column(0), "b": Column(1)})
    mixture = MixtureOfExperts({"a": Column(0), "b": Column(1), "new": Event(2)})
    z = mixture.expert_scores(x)
    np.testing.assert_array_equal(z[:, 2], x[:, 2])  # not z-scored
    scores, plain = MixtureOfExperts(mixture.experts).score_and_learn(x), graded.score_and_learn(x)
    events = x[:, 2] == 1.0
    np.testing.assert_array_equal(scores[~events], plain[~events])  # elsewhere: the top-2 mean of the graded
    assert scores[10] == EVENT_SCORE  # no graded opinion yet, and still an alert
    assert scores[MIN_HISTORY + 10] == EVENT_SCORE + max(plain[MIN_HISTORY + 10], 0.0)
    assert scores[MIN_HISTORY + 30] == EVENT_SCORE + plain[MIN_HISTORY + 30] > scores[MIN_HISTORY + 10]  # ranked by the graded
    assert mixture.state_dict()["scales"] == ["linear", "linear", "event"]


def test_a_ratio_expert_is_read_on_a_log_scale_so_one_huge_score_does_not_swamp_it():
    rng = np.random.default_rng(0)
    x = np.exp(rng.normal(0, 0.1, (MIN_HISTORY + 100, 1)))  # ratios near 1
    x[MIN_HISTORY + 20] = 1e8  # one degenerate score (duplicates make LOF's density guard do this)
    x[MIN_HISTORY + 90] = 5.0  # a real anomaly after it
    z = lambda expert: MixtureOfExperts({"e": expert}).score_and_learn(x)[MIN_HISTORY + 90]
    assert z(Ratio(0)) > 1.0  # log 5 against logs near 0, the one huge log counted once
    assert z(Column(0)) < 0.1  # read linearly, 1e8 sets the mean and the spread: 5 sits below the mean


def test_normalisation_is_the_z_score_against_earlier_values_in_any_batching():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(MIN_HISTORY + 90, 2)) * [1.0, 50.0] + [0.0, 7.0]
    x[:20, 1] = np.nan  # column 1 warms up for 20 rows, then has no opinion now and then
    x[rng.choice(np.arange(20, len(x)), 40, replace=False), 1] = np.nan
    whole = RunningNormaliser(2)(x)
    for cuts in ([1, 45], [7, 8, 200, 331], list(range(1, len(x)))):  # one at a time too
        pieces = RunningNormaliser(2)
        split = np.vstack([pieces(part) for part in np.split(x, cuts)])
        np.testing.assert_allclose(split, whole, atol=1e-12)
        np.testing.assert_array_equal(np.isnan(split), np.isnan(whole))
    i = MIN_HISTORY + 50  # by hand: row i against rows 0..i-1
    np.testing.assert_allclose(whole[i, 0], (x[i, 0] - x[:i, 0].mean()) / x[:i, 0].std(ddof=1), rtol=1e-7, atol=1e-9)
    assert not np.isnan(whole[MIN_HISTORY:, 0]).any() and np.isnan(whole[:MIN_HISTORY, 0]).all()  # no opinion until then
    finite = np.flatnonzero(~np.isnan(x[:, 1]))  # column 1: z against its earlier finite values only
    assert np.isnan(whole[:finite[MIN_HISTORY], 1]).all()
    j = finite[MIN_HISTORY + 5]
    earlier = x[finite[finite < j], 1]
    np.testing.assert_allclose(whole[j, 1], (x[j, 1] - earlier.mean()) / earlier.std(ddof=1), rtol=1e-7)
    assert np.isnan(whole[np.isnan(x[:, 1]), 1]).all()


class Warming(Column):
    """A column expert with no opinion (NaN) for its first ``warmup`` rows."""

    def __init__(self, column: int, warmup: int):
        super().__init__(column)
        self.seen, self.warmup = 0, warmup

    def score_and_learn(self, vectors, keys=None):
        scores = super().score_and_learn(vectors, keys)
        scores[:max(0, self.warmup - self.seen)] = np.nan
        self.seen += len(scores)
        return scores


def test_the_mixture_ignores_a_warming_expert_and_has_no_opinion_when_none_has_one():
    vectors = np.random.default_rng(5).normal(size=(80, 3))
    mixture = MixtureOfExperts({"a": Column(0), "b": Column(1), "late": Warming(2, 40)}, min_history=10)
    scores = np.concatenate([mixture.score_and_learn(vectors[:25]), mixture.score_and_learn(vectors[25:])])
    alone = MixtureOfExperts({"a": Column(0), "b": Column(1)}, min_history=10).score_and_learn(vectors)
    assert np.isnan(scores[:10]).all()  # no expert has 10 earlier scores
    np.testing.assert_allclose(scores[10:50], alone[10:50], rtol=1e-12)  # "late" has no opinion: a and b's mean
    z_late = RunningNormaliser(1, 10)(np.where(np.arange(80) < 40, np.nan, vectors[:, 2])[:, None])[:, 0]
    z_ab = RunningNormaliser(2, 10)(vectors[:, :2])
    every = np.column_stack([z_ab, z_late])[50:]  # all three have an opinion: the mean of the top two
    np.testing.assert_allclose(scores[50:], np.sort(every, axis=1)[:, 1:].mean(axis=1), rtol=1e-12)
    trainer, gated = (MixtureOfExperts({"a": Column(0), "b": Column(1), "late": Warming(2, 40)}, min_history=10)
                      for _ in range(2))
    trainer.fit_gate(trainer.expert_scores(vectors), vectors, (np.arange(80) % 9 == 0).astype(int), epochs=5)
    gated.gate = trainer.gate
    gated_scores = gated.score_and_learn(vectors)
    assert np.isnan(gated_scores[:10]).all() and np.isfinite(gated_scores[10:]).all()


def test_the_gate_trains_only_on_rows_with_an_opinion():
    z = np.full((40, 2), np.nan)
    z[20:] = np.random.default_rng(6).normal(size=(20, 2))
    labels = np.zeros(40, int)
    labels[:20:3] = 1  # anomalies only where no expert has an opinion: nothing to learn from
    with pytest.raises(ValueError, match="both normal"):
        MixtureOfExperts({"a": Column(0), "b": Column(1)}).fit_gate(z, np.zeros((40, 3)), labels)
    labels[25] = 1
    z[30, 0] = np.nan  # one expert without an opinion: the row counts, its NaN read as 0
    losses = MixtureOfExperts({"a": Column(0), "b": Column(1)}).fit_gate(z, np.zeros((40, 3)), labels, epochs=3)
    assert np.isfinite(losses).all()


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
    make = lambda: MixtureOfExperts({"trees": HalfSpaceTreesScorer(window_size=50), "lof": LOFScorer(k=5, capacity=100)},
                                    min_history=50)
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


def test_a_state_from_before_the_log_scale_restarts_the_normalisation_of_its_experts():
    x = np.exp(np.random.default_rng(4).normal(0, 0.1, (40, 2)))
    mixture = MixtureOfExperts({"ratio": Ratio(0), "plain": Column(1)}, min_history=10)
    mixture.score_and_learn(x)
    state = mixture.state_dict()
    older = {key: value for key, value in state.items() if key != "scales"}  # linear means and spreads
    restored, stale = (MixtureOfExperts({"ratio": Ratio(0), "plain": Column(1)}, min_history=10) for _ in range(2))
    restored.load_state_dict(state)
    stale.load_state_dict(older)
    assert restored.normaliser.count.tolist() == [40, 40]
    assert stale.normaliser.count.tolist() == [0, 0]


def test_bad_training_input_is_refused():
    mixture = MixtureOfExperts({"signal": Column(0)})
    with pytest.raises(ValueError, match="both normal"):
        mixture.fit_gate(np.zeros((10, 1)), np.zeros((10, 3)), np.zeros(10))
    with pytest.raises(ValueError, match="shape"):
        mixture.fit_gate(np.zeros((10, 2)), np.zeros((10, 3)), np.ones(10))
    with pytest.raises(ValueError, match="at least one expert"):
        MixtureOfExperts({})


def test_a_state_from_before_the_level_expert_restores_the_others_and_starts_the_level_fresh():
    from detectors.level import LevelScorer

    rng = np.random.default_rng(5)
    windows = rng.normal(size=(60, 1, 8))
    vectors = windows[:, 0, :]
    older = MixtureOfExperts({"a": Column(0), "b": Column(1)}, min_history=10)
    older.score_and_learn(vectors)
    newer = MixtureOfExperts({"a": Column(0), "b": Column(1), "level": LevelScorer(warmup=4)}, min_history=10)
    newer.load_state_dict(older.state_dict())
    assert newer.normaliser.count.tolist() == [0, 0, 0]  # three columns now: the z-scores start afresh
    assert np.isnan(newer.score_and_learn(vectors[:5], windows=windows[:5])).all()
    with pytest.raises(ValueError, match="pass windows="):
        newer.score_and_learn(vectors[:5])


def test_a_flat_stream_gives_exact_zeros_and_no_alert_not_rounding_noise():
    from detectors.spot import SPOTThreshold

    flat = np.full((3000, 1), np.log(1e-6))  # a log-scaled expert on a flat line: one value forever
    normaliser = RunningNormaliser(1, min_history=10)
    z = np.concatenate([normaliser(flat[i:i + 64]) for i in range(0, len(flat), 64)])[10:, 0]
    assert (z == 0).all()  # summed in batches, the running mean drifts by ~1e-13: that is not a deviation
    spot = SPOTThreshold(q=1e-3, calibration=500)
    assert not any(spot.judge("flat", float(score))[1] for score in z)
