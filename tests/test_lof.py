"""Torch LOF against scikit-learn's novelty LOF, and the streaming scorer's update policy."""

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.neighbors import LocalOutlierFactor

from detectors import nearest
from detectors.lof import LOFScorer, fit_lof, lof_scores
from detectors.nearest import _SLACK, METRICS, k_nearest
from detectors.window_stats import WindowStatsEmbedder

NAB = Path("/work/shared/data/NAB/data")
RTOL = 1e-5


def nab_values(name: str, count: int) -> np.ndarray:
    return np.loadtxt(NAB / name, delimiter=",", skiprows=1, usecols=1)[:count]


def sliding(x: np.ndarray, length: int) -> np.ndarray:
    return np.lib.stride_tricks.sliding_window_view(x, length).copy()


def inject(x: np.ndarray, kind: str, start: int) -> np.ndarray:
    """A copy of x with a spike (4 std), level shift (2 std) or added noise (0.5 std) at start."""
    x, spread = x.copy(), x.std()
    if kind == "spike":
        x[start] += 4 * spread
    elif kind == "level":
        x[start:] += 2 * spread
    else:
        x[start:] += np.random.default_rng(0).normal(0, 0.5 * spread, len(x) - start)
    return x


def injected(kind: str, length: int = 32, start: int = 1900) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Difference windows (in units of the series' usual step) of machine temperature's first,
    anomaly-free 2300 points with an anomaly injected at ``start``; and masks of the windows
    that reach the anomaly within a window length, and of settled normal windows before it."""
    x = nab_values("realKnownCause/machine_temperature_system_failure.csv", 2300)
    windows = sliding(np.diff(inject(x, kind, start)) / np.diff(x[:1000]).std(), length)
    end = np.arange(len(windows)) + length  # index in x of each window's last point
    return windows, (end >= start) & (end < start + length), (end > 600) & (end < start)


@pytest.fixture(autouse=True, params=["tree", "brute", "batched"])
def search(request, monkeypatch):
    """Every test runs with each search of ``nearest.search_method``: the k-d tree (CPU, up to 15
    dimensions), the chunked brute force (CPU), and the batched search (GPUs) forced on CPU."""
    if request.param == "brute":
        monkeypatch.setattr(nearest, "search_method", lambda reference: "blocks")
    elif request.param == "batched":
        monkeypatch.setattr(nearest, "search_method", lambda reference: "batched")
    return request.param


def sklearn_scores(reference, queries, k, metric="euclidean", algorithm="auto") -> np.ndarray:
    model = LocalOutlierFactor(n_neighbors=k, novelty=True, metric=metric, algorithm=algorithm)
    return -model.fit(reference).score_samples(queries)


def torch_scores(reference, queries, k, metric="euclidean", **chunks) -> np.ndarray:
    fitted = fit_lof(torch.as_tensor(reference), k, metric, **chunks)
    return lof_scores(fitted, torch.as_tensor(queries)).numpy()


def max_relative_error(ours: np.ndarray, expected: np.ndarray) -> float:
    return float(np.max(np.abs(ours - expected) / np.abs(expected)))


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("k, dim", [(1, 3), (5, 8), (20, 24)])
def test_random_data_matches_sklearn_with_chunks_smaller_than_the_data(metric, k, dim):
    rng = np.random.default_rng(k)
    reference = rng.standard_normal((600, dim)) * rng.uniform(0.5, 3, dim) + 5
    queries = np.vstack([rng.standard_normal((150, dim)) * 2 + 5, reference[:20]])
    ours = torch_scores(reference, queries, k, metric, query_chunk=37, reference_chunk=50)
    assert max_relative_error(ours, sklearn_scores(reference, queries, k, metric)) < RTOL


@pytest.mark.parametrize("metric", METRICS)
def test_nab_windows_match_sklearn(metric):
    """Raw windows of a real series whose values are ~1e4 (the shortlist's |a|^2 + |b|^2 - 2ab
    would lose digits without centring); the queries cover a labelled anomaly."""
    windows = sliding(nab_values("realKnownCause/nyc_taxi.csv", 7000), 24)[::3]
    reference, queries = windows[:1200], windows[1200:]
    for k in (5, 30):
        ours = torch_scores(reference, queries, k, metric, reference_chunk=256)
        assert max_relative_error(ours, sklearn_scores(reference, queries, k, metric)) < RTOL


@pytest.mark.parametrize("k", [2, 5, 9])
def test_duplicates_match_sklearn_even_beyond_k_copies(k):
    """A noise-free daily series repeats exactly: every 8th window has ~11 exact copies in the
    reference, so k-distances are 0 and densities hit scikit-learn's 1e-10 guard; queries
    include copies too. kd_tree: scikit-learn's brute force computes |a|^2 + |b|^2 - 2ab, which
    leaves copies of a window at distances of ~1e-4 instead of 0 and so scores noise."""
    windows = sliding(nab_values("artificialNoAnomaly/art_daily_no_noise.csv", 4032), 8)[::8]
    rng = np.random.default_rng(k)
    reference = np.vstack([windows[:400], rng.standard_normal((50, 8)) * 5 + 40])
    reference = np.vstack([reference, reference[-10:]])  # copies of random points as well
    queries = np.vstack([windows[400:], reference[-30:], rng.standard_normal((40, 8)) * 20 + 40])
    fitted = fit_lof(torch.as_tensor(reference), k)
    assert int((fitted.k_distance == 0).sum()) >= 400  # the duplicate regime is exercised
    ours = lof_scores(fitted, torch.as_tensor(queries)).numpy()
    assert max_relative_error(ours, sklearn_scores(reference, queries, k, algorithm="kd_tree")) < RTOL


def _lowest_index_lof(reference: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """LOF by brute force, ties at the k-th distance to the lowest index."""
    def nearest(distances):
        order = np.lexsort((np.broadcast_to(np.arange(len(reference)), distances.shape), distances), axis=1)[:, :k]
        return np.take_along_axis(distances, order, 1), order

    own = np.sqrt(((reference[:, None] - reference[None]) ** 2).sum(-1))
    np.fill_diagonal(own, np.inf)
    dist, idx = nearest(own)
    k_distance = dist[:, -1]
    density = 1 / (np.maximum(dist, k_distance[idx]).mean(1) + 1e-10)
    dist, idx = nearest(np.sqrt(((queries[:, None] - reference[None]) ** 2).sum(-1)))
    return (density[idx] * (np.maximum(dist, k_distance[idx]).mean(1, keepdims=True) + 1e-10)).mean(1)


def test_ties_between_distinct_points_go_to_the_lowest_index():
    """Points on an integer grid: many distinct neighbours tie at the k-th distance. scikit-learn
    itself has no single answer there (kd_tree and brute force disagree); ours is the LOF that
    breaks ties by lowest index."""
    rng = np.random.default_rng(1)
    cells = rng.choice(400, size=120, replace=False)
    reference = np.stack([cells // 20, cells % 20], 1).astype(float)
    queries = rng.integers(0, 20, (300, 2)) + rng.choice([0.0, 0.5], (300, 2))
    k = 3
    tree, brute = (sklearn_scores(reference, queries, k, algorithm=a) for a in ("kd_tree", "brute"))
    assert not np.allclose(tree, brute)
    ours = torch_scores(reference, queries, k, query_chunk=64, reference_chunk=32)
    np.testing.assert_allclose(ours, _lowest_index_lof(reference, queries, k), rtol=1e-12)


def test_k_nearest_excludes_only_the_row_itself():
    reference = torch.tensor([[0.0], [0.0], [1.0], [3.0]], dtype=torch.float64)
    distances, indices = k_nearest(reference, reference, 2, exclude_self=True, reference_chunk=3)
    assert indices.tolist() == [[1, 2], [0, 2], [0, 1], [2, 0]]
    assert distances.tolist() == [[0.0, 1.0], [0.0, 1.0], [1.0, 1.0], [2.0, 3.0]]


@pytest.mark.parametrize("dim", [3, 20])
def test_no_queries_give_no_scores(dim):
    fitted = fit_lof(torch.randn(50, dim, dtype=torch.float64), 5)
    assert lof_scores(fitted, torch.zeros(0, dim, dtype=torch.float64)).shape == (0,)


@pytest.mark.parametrize("metric", METRICS)
def test_shortlists_that_might_miss_a_neighbour_are_searched_again(search, metric, monkeypatch):
    """Tight clusters (spread 1e-3) far apart (1e4): float32 products cannot order a cluster's
    members, so its rows are searched again in float64; clusters of more than k + 8 members
    tie beyond any shortlist even then, and their rows take exact distances to every row.
    The result is scikit-learn's (kd-tree: its brute force rounds such distances too)."""
    rng = np.random.default_rng(5)
    k, dim = 5, 20
    sizes = [k + 3] * 6 + [40] * 2  # settled by the float64 shortlist, and by exact distances to all
    centres = rng.standard_normal((len(sizes), dim)) * 1e4
    reference = np.vstack([c + rng.standard_normal((n, dim)) * 1e-3 for c, n in zip(centres, sizes)])
    queries = centres + rng.standard_normal(centres.shape) * 1e-3
    seen = []
    refine = nearest._refine
    monkeypatch.setattr(nearest, "_refine", lambda q, r, candidates, *a, **kw: (
        seen.append(candidates.shape[1]), refine(q, r, candidates, *a, **kw))[1])
    ours = torch_scores(reference, queries, k, metric)
    algorithm = "kd_tree" if metric == "euclidean" else "brute"
    assert max_relative_error(ours, sklearn_scores(reference, queries, k, metric, algorithm)) < RTOL
    if search != "batched":
        assert k + _SLACK in seen and len(reference) in seen  # both searches again were needed

def _stream(scorer: LOFScorer, x: np.ndarray, sizes, keys=None) -> np.ndarray:
    out, start = [], 0
    for size in sizes:
        out.append(scorer.score_and_learn(x[start:start + size], None if keys is None else keys[start:start + size]))
        start += size
    return np.concatenate(out)


def _random_sizes(rng, total: int, high: int) -> list[int]:
    sizes = []
    while sum(sizes) < total:
        sizes.append(int(rng.integers(1, high)))
    return sizes


def test_stream_scores_equal_sklearn_fitted_on_the_memory_at_the_last_refit():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((400, 4)) + np.linspace(0, 3, 400)[:, None]  # drifts, so the ring rolls
    k, capacity, every = 5, 100, 10
    scores = _stream(LOFScorer(k, capacity, every), x, _random_sizes(rng, 400, 40))
    assert np.isnan(scores[:k + 1]).all() and np.isfinite(scores[k + 1:]).all()
    for t in range(k + 1, 400):
        refit = k + 1 + (t - k - 1) // every * every  # vectors admitted at the last refit
        memory = x[max(0, refit - capacity):refit]
        np.testing.assert_allclose(scores[t], sklearn_scores(memory, x[t:t + 1], k)[0], rtol=1e-9)


@pytest.mark.parametrize("admit_below", [None, 0.5])
def test_each_key_has_no_opinion_exactly_for_its_first_k_plus_one_vectors(admit_below):
    rng = np.random.default_rng(11)
    keys = list(rng.permutation(np.array(["a"] * 50 + ["b"] * 9 + ["c"] * 4)))  # c never gets k + 1 = 6
    rows = rng.standard_normal((len(keys), 3))
    scores = _stream(LOFScorer(5, 20, 4, admit_below=admit_below), rows, _random_sizes(rng, len(keys), 12), keys)
    for key in "abc":
        mine = scores[np.array(keys) == key]
        assert np.isnan(mine[:6]).all() and np.isfinite(mine[6:]).all(), key


@pytest.mark.parametrize("admit_below", [None, 1.3])
def test_batches_of_any_size_give_the_scores_of_one_vector_at_a_time(admit_below):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((300, 3))
    x[::17] *= 6  # outliers, which admit_below keeps out of the memory
    one_by_one = _stream(LOFScorer(4, 60, 7, admit_below=admit_below), x, [1] * 300)
    batched = _stream(LOFScorer(4, 60, 7, admit_below=admit_below), x, _random_sizes(rng, 300, 50))
    whole = LOFScorer(4, 60, 7, admit_below=admit_below).score_and_learn(x)
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-12)
    np.testing.assert_allclose(whole, one_by_one, rtol=1e-12)


def test_admit_below_keeps_high_scores_out_of_the_memory():
    scorer = LOFScorer(k=3, capacity=50, refit_every=1, admit_below=2.0)
    scorer.score_and_learn(np.sin(np.arange(30.0))[:, None])
    assert scorer.score_and_learn(np.array([[40.0]]))[0] > 2.0
    assert 40.0 not in scorer.contents("")


def test_keys_keep_independent_memories():
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((120, 3)), rng.standard_normal((90, 3)) * 4 + 10
    keys = rng.permutation(np.array(["a"] * 120 + ["b"] * 90))  # the two streams interleaved
    rows = np.empty((210, 3))
    rows[keys == "a"], rows[keys == "b"] = a, b
    mixed = _stream(LOFScorer(5, 40, 8), rows, _random_sizes(rng, 210, 30), list(keys))
    alone = {"a": LOFScorer(5, 40, 8).score_and_learn(a), "b": LOFScorer(5, 40, 8).score_and_learn(b)}
    for key in "ab":
        np.testing.assert_allclose(mixed[keys == key], alone[key], rtol=1e-12)


@pytest.mark.parametrize("kind", ["spike", "level", "variance"])
def test_injected_anomalies_score_above_every_normal_window(kind):
    windows, anomalous, normal = injected(kind)
    scores = LOFScorer(k=20, capacity=500, refit_every=16).score_and_learn(windows)
    assert scores[anomalous].max() > 1.2 * scores[normal].max()


@pytest.mark.parametrize("kind", ["spike", "level", "variance"])
def test_injected_anomalies_rank_high_on_window_stats_embeddings(kind):
    """The same on nyc_taxi's first 2400 points through the weight-free embedder."""
    start = 2000
    x = inject(nab_values("realKnownCause/nyc_taxi.csv", 2400), kind, start)
    vectors = WindowStatsEmbedder().embed(torch.from_numpy(sliding(x, 32)[:, None, :]))
    end = np.arange(len(vectors)) + 31
    scores = LOFScorer(k=20, capacity=500, refit_every=16).score_and_learn(vectors)
    assert scores[(end >= start) & (end < start + 8)].max() > scores[(end > 600) & (end < start)].max()


def assert_restored_scorer_scores_the_same(original, x: np.ndarray, keys: list[str], path: Path) -> None:
    """Feed half, save, load; the restored and the original scorer then score the rest alike."""
    half = len(x) // 2
    original.score_and_learn(x[:half], keys[:half])
    original.save(path)
    restored = type(original).load(path)
    assert restored.config() == original.config()
    np.testing.assert_array_equal(restored.score_and_learn(x[half:], keys[half:]),
                                  original.score_and_learn(x[half:], keys[half:]))


def test_a_state_from_before_the_kept_frame_still_loads():
    """Checkpoints made before the memories kept each reference's frame (its centre and the rows'
    squared distances from it) hold no such tensors; the frame is worked out again on loading."""
    x = np.random.default_rng(7).standard_normal((400, 20)) + 50
    keys = [f"node-{i % 4}" for i in range(400)]
    original = LOFScorer(k=5, capacity=60, refit_every=7)
    original.score_and_learn(x[:200], keys[:200])
    state = original.state_dict()
    for entry in state["keys"].values():
        assert {"center", "bias"} <= set(entry["tensors"])
        del entry["tensors"]["center"], entry["tensors"]["bias"]
    restored = LOFScorer(k=5, capacity=60, refit_every=7)
    restored.load_state_dict(state)
    np.testing.assert_allclose(restored.score_and_learn(x[200:], keys[200:]),
                               original.score_and_learn(x[200:], keys[200:]), rtol=1e-12)


def test_a_restored_scorer_gives_the_same_scores(tmp_path):
    x = np.random.default_rng(6).standard_normal((500, 5))
    original = LOFScorer(k=6, capacity=80, refit_every=9, metric="cosine", admit_below=1.5)
    assert_restored_scorer_scores_the_same(original, x, [f"node-{i % 3}" for i in range(500)], tmp_path / "lof.st")


@pytest.mark.parametrize("call, message", [
    (lambda: LOFScorer().score_and_learn(np.zeros(4)), "shape"),
    (lambda: LOFScorer().score_and_learn(np.full((2, 3), np.nan)), "NaN"),
    (lambda: LOFScorer(k=10, capacity=10), "k < capacity"),
    (lambda: fit_lof(torch.zeros(5, 2), k=5), "needs at least 6"),
    (lambda: LOFScorer(metric="manhattan"), "metric"),
    (lambda: LOFScorer().score_and_learn(np.zeros((3, 2)), keys=["a"]), "one key per row"),
])
def test_bad_input_raises_a_one_line_value_error(call, message):
    with pytest.raises(ValueError, match=message) as error:
        call()
    assert "\n" not in str(error.value)


def test_a_key_keeps_its_dimension():
    scorer = LOFScorer(k=2, capacity=10)
    scorer.score_and_learn(np.zeros((3, 2)), keys=["a"] * 3)
    with pytest.raises(ValueError, match="dim 2"):
        scorer.score_and_learn(np.zeros((1, 3)), keys=["a"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_scores_equal_cpu_scores():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3000, 16)) * 3 + 100
    keys = [f"s{i % 4}" for i in range(3000)]
    for metric in METRICS:
        cpu = LOFScorer(k=10, capacity=500, refit_every=32, metric=metric).score_and_learn(x, keys)
        gpu = LOFScorer(k=10, capacity=500, refit_every=32, metric=metric, device="cuda").score_and_learn(x, keys)
        np.testing.assert_allclose(gpu, cpu, rtol=1e-4)


def _interleaved(keys: list[str], rng) -> list[int]:
    """Row positions in a random order that keeps each key's own rows in order."""
    queues: dict[str, list[int]] = {}
    for j, key in enumerate(keys):
        queues.setdefault(key, []).append(j)
    turns = rng.permutation(np.repeat(list(queues), [len(q) for q in queues.values()]))
    return [queues[key].pop(0) for key in turns]


@pytest.mark.parametrize("admit_below", [None, 1.2])
def test_many_keys_in_one_batch_score_as_each_key_alone(admit_below):
    """Keys at different stages (warming up, freshly fitted, full and rolling) share each step."""
    rng = np.random.default_rng(8)
    streams = [rng.standard_normal((int(rng.integers(3, 90)), 4)) * (1 + i % 3) + i for i in range(40)]
    alone = [LOFScorer(5, 30, 6, admit_below=admit_below).score_and_learn(x) for x in streams]
    together = LOFScorer(5, 30, 6, admit_below=admit_below)
    position = [0] * len(streams)
    got: list[list[float]] = [[] for _ in streams]
    while any(p < len(x) for p, x in zip(position, streams)):
        rows, keys = [], []
        for i, x in enumerate(streams):  # each key sends 0-4 rows a batch
            n = min(int(rng.integers(0, 5)), len(x) - position[i])
            rows += list(x[position[i]:position[i] + n])
            keys += [f"k{i}"] * n
            position[i] += n
        if not rows:
            continue
        order = _interleaved(keys, rng)
        scores = together.score_and_learn(np.array(rows)[order], [keys[j] for j in order])
        for j, score in zip(order, scores):
            got[int(keys[j][1:])].append(score)
    for i in range(len(streams)):
        np.testing.assert_allclose(got[i], alone[i], rtol=1e-12)
