"""Chronos embeddings from models saved to disk and loaded through from_pretrained."""

import numpy as np
import pytest
import torch

from detectors.chronos_embedder import ChronosEmbedder
from detectors.chronos_models import FAMILIES, save_random_model


@pytest.fixture(scope="module", params=FAMILIES)
def model_folder(request, tmp_path_factory):
    return request.param, save_random_model(request.param, "test", tmp_path_factory.mktemp(request.param))


def _windows(batch: int = 4, channels: int = 2, length: int = 64) -> torch.Tensor:
    t = torch.arange(length, dtype=torch.float64)
    phase = torch.arange(batch * channels, dtype=torch.float64).reshape(batch, channels, 1)
    return torch.sin(2 * torch.pi * t / 16 + phase) * (1 + phase) + 10


@pytest.mark.parametrize("pooling", ["mean", "token"])
def test_embeds_every_family_per_channel_into_one_vector(model_folder, pooling):
    family, folder = model_folder
    embedder = ChronosEmbedder(folder, pooling=pooling)
    vectors = embedder.embed(_windows())
    assert vectors.shape == (4, 2 * embedder.dimension_per_channel)
    assert torch.isfinite(vectors).all()
    torch.testing.assert_close(embedder.embed(_windows()), vectors)  # deterministic (eval mode)


def test_batch_members_do_not_affect_each_other(model_folder):
    family, folder = model_folder
    embedder = ChronosEmbedder(folder)
    windows = _windows(batch=5)
    alone = torch.cat([embedder.embed(windows[i:i + 1]) for i in range(5)])
    torch.testing.assert_close(embedder.embed(windows), alone, atol=1e-5, rtol=1e-4)


def test_different_windows_get_different_vectors_and_pooling_matters(model_folder):
    family, folder = model_folder
    windows = torch.cat([_windows(batch=1), torch.from_numpy(np.random.default_rng(0).normal(10, 3, (1, 2, 64)))])
    mean, token = ChronosEmbedder(folder, pooling="mean").embed(windows), ChronosEmbedder(folder, pooling="token").embed(windows)
    assert not torch.allclose(mean[0], mean[1]) and not torch.allclose(mean, token)


def test_a_missing_model_is_one_clear_error(tmp_path):
    with pytest.raises(ValueError, match="cannot load the Chronos model") as info:
        ChronosEmbedder(tmp_path / "nowhere")
    assert "\n" not in str(info.value)


def test_unknown_pooling_and_family_are_refused(tmp_path):
    with pytest.raises(ValueError, match="pooling"):
        ChronosEmbedder(tmp_path, pooling="max")
    with pytest.raises(ValueError, match="unknown Chronos family"):
        save_random_model("lstm", "test", tmp_path)
