"""The Chronos-Bolt model that ships with Argus, its training script and its synthetic data."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from argus.config import load_config
from argus.wiring import make_embedder
from detectors.chronos_embedder import ChronosEmbedder
from detectors.chronos_models import shipped_model_path
from training import synthetic_series, train_bolt


def _noisy_sines(count: int, length: int, period: int, noise: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    phase = rng.uniform(0, 2 * np.pi, (count, 1))
    return 10 + 3 * np.sin(2 * np.pi * t / period + phase) + rng.normal(0, noise, (count, length))


def test_the_shipped_folder_is_a_small_self_described_bolt_checkpoint():
    folder = shipped_model_path()
    config = json.loads((folder / "config.json").read_text())
    recipe = json.loads((folder / "recipe.json").read_text())
    assert config["architectures"] == ["ChronosBoltModelForForecasting"]
    assert config["chronos_pipeline_class"] == "ChronosBoltPipeline"
    assert (folder / "model.safetensors").stat().st_size < 20 * 1024 * 1024
    assert recipe["data"]["real_data"] == "none" and recipe["steps"] > 0 and np.isfinite(recipe["final_held_out_loss"])


def test_it_loads_offline_and_beats_seasonal_naive_on_noisy_sines(monkeypatch):
    """Seasonal naive with the true period carries each point's noise plus the noise of the point
    it copies (an MAE of about 1.13 noise sd here); a model that has learned the cycle and smooths
    the noise does better (0.8 sd at best)."""
    from chronos import BaseChronosPipeline
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # any hub access would fail
    pipeline = BaseChronosPipeline.from_pretrained(str(shipped_model_path()), device_map="cpu", dtype=torch.float32)
    period, horizon, context = 24, 64, 512
    series = _noisy_sines(16, context + horizon, period, noise=1.0)
    past, future = series[:, :context], series[:, context:]
    quantiles = pipeline.predict(torch.tensor(past, dtype=torch.float32), prediction_length=horizon)
    median = quantiles[:, quantiles.shape[1] // 2].numpy()
    naive = past[:, context - period + np.arange(horizon) % period]
    model_mae, naive_mae = np.abs(median - future).mean(), np.abs(naive - future).mean()
    assert model_mae < 0.95 * naive_mae, (model_mae, naive_mae)


def test_embeddings_of_two_regimes_are_further_apart_than_windows_of_one_regime():
    """Windows one or more cycles apart in a calm cycle are one regime; the same cycle under a
    noise burst, and a random walk, are others. Windows start in phase, so only the regime differs."""
    embedder = ChronosEmbedder(shipped_model_path())
    rng = np.random.default_rng(1)
    t = np.arange(1024)
    cycle = 10 + np.sin(2 * np.pi * t / 16)
    regimes = {"calm": cycle + rng.normal(0, 0.1, t.size), "burst": cycle + rng.normal(0, 1.0, t.size),
               "walk": 10 + np.cumsum(rng.normal(0, 0.3, t.size))}
    starts = 16 * np.arange(0, 60, 12)
    vectors = {name: embedder.embed(torch.tensor(np.stack([x[s:s + 64] for s in starts])[:, None, :])).numpy()
               for name, x in regimes.items()}

    def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.linalg.norm(a[:, None] - b[None], axis=-1)

    within = distances(vectors["calm"], vectors["calm"]).max()
    for other in ("burst", "walk"):
        between = distances(vectors["calm"], vectors[other]).min()
        assert between > 2 * within, (other, between, within)


def test_the_training_script_trains_saves_and_the_checkpoint_loads(tmp_path):
    from chronos import BaseChronosPipeline

    out = tmp_path / "bolt"
    run = subprocess.run([sys.executable, "-m", "training.train_bolt", "--config", "smoke", "--out", str(out),
                          "--minutes", "0.3", "--seed", "3"], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert "done:" in run.stdout
    recipe = json.loads((out / "recipe.json").read_text())
    assert recipe["seed"] == 3 and recipe["config_name"] == "smoke" and recipe["steps"] > 10
    assert np.isfinite(recipe["final_held_out_loss"]) and recipe["versions"]["torch"] == torch.__version__
    pipeline = BaseChronosPipeline.from_pretrained(str(out))
    forecast = pipeline.predict(torch.tensor(_noisy_sines(2, 100, 12, 0.1), dtype=torch.float32))
    assert forecast.shape == (2, 9, 64) and torch.isfinite(forecast).all()


@pytest.mark.parametrize("flags, message", [
    (["--config", "huge", "--out", "x"], "invalid choice: 'huge'"),
    (["--config", "smoke", "--out", "x", "--minutes", "0"], "--minutes must be positive"),
    (["--config", "smoke", "--out", "x", "--steps", "-1"], "--steps must be at least 1"),
    (["--config", "smoke", "--out", "x", "--device", "cuda:9"], "--device"),
])
def test_bad_training_flags_are_one_line_errors(flags, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        train_bolt.main(flags)
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert exit_.value.code == 2 and message in last


def test_the_generator_is_seeded_finite_and_varied():
    a, b = synthetic_series.generate(64, 300, seed=7), synthetic_series.generate(64, 300, seed=7)
    other = synthetic_series.generate(64, 300, seed=8)
    assert np.array_equal(a, b) and not np.array_equal(a, other)
    assert np.isfinite(a).all() and np.isfinite(other).all()
    spread = a.std(axis=1) / (np.abs(a).mean(axis=1) + 1e-9)
    assert (spread > 1e-3).mean() > 0.9  # almost no flat series
    assert len({round(float(np.log10(s)), 0) for s in a.std(axis=1) if s > 0}) >= 4  # many scales


def test_kernel_synth_periodic_samples_repeat_with_their_period():
    rng = np.random.default_rng(0)
    t = np.arange(2000, dtype=np.float64)
    x = synthetic_series.periodic(rng, t)
    periods = [p for p in synthetic_series.PERIODS if np.allclose(x[p:], x[:-p], atol=1e-8 * np.abs(x).max())]
    assert len(periods) >= 1 and np.std(x) > 0


def test_an_empty_chronos_model_gives_an_embedder_on_the_shipped_weights():
    embedder = make_embedder(load_config(None, {"detector.embedder": "chronos"}))
    assert isinstance(embedder, ChronosEmbedder) and embedder.model == str(shipped_model_path())
    vectors = embedder.embed(torch.from_numpy(_noisy_sines(3, 32, 8, 0.1)[:, None, :]))
    assert vectors.shape == (3, embedder.dimension_per_channel) and torch.isfinite(vectors).all()
