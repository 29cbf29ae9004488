"""Chronos encoder embeddings of windows: (B, C, L) -> (B, C * d).

Loads any Chronos checkpoint through chronos-forecasting's own
``BaseChronosPipeline.from_pretrained`` (a hub id where a hub is reachable, or a local folder):
the original T5 family, Chronos-Bolt and Chronos-2 all work, and calls the pipeline's ``embed``.

Pooling, per channel: ``"mean"`` averages the encoder's outputs over the window's own
positions (time steps for T5, patches for Bolt and Chronos-2); ``"token"`` takes the special
summary token instead (T5's EOS, Bolt's and Chronos-2's [REG]), where the model has one.
Channels: T5 and Bolt embed each channel as its own series, all in one batch; Chronos-2 gets
each window as one multivariate series, so its channels attend to each other. The channel
vectors are concatenated, so a stream's vector width is ``channels * d_model``.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

POOLINGS = ("mean", "token")


class ChronosEmbedder:
    """(B, C, L) windows -> (B, C * d_model) vectors through a Chronos model's encoder."""

    def __init__(self, model: str | Path, device: str | torch.device = "cpu", pooling: str = "mean"):
        self.model = str(model)
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        from chronos import BaseChronosPipeline
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.device = torch.device(device)
        try:
            self.pipeline = BaseChronosPipeline.from_pretrained(str(model), device_map=self.device, dtype=torch.float32)
        except (OSError, ValueError) as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(f"cannot load the Chronos model {str(model)!r}: {first_line}") from None
        self.family = type(self.pipeline).__name__
        self.has_summary_token, self.dimension_per_channel = _summary_token_and_width(self.pipeline)
        if pooling == "token" and not self.has_summary_token:
            raise ValueError(f"pooling 'token' needs a model with an EOS/[REG] token; {model} has none")
        self.pooling = pooling

    @torch.inference_mode()
    def embed(self, windows: torch.Tensor) -> torch.Tensor:
        batch, channels, length = windows.shape
        x = windows.detach().to("cpu", torch.float32)
        if self.family == "Chronos2Pipeline":
            per_window, _ = self.pipeline.embed(x, batch_size=max(1, batch * channels))
            tokens = torch.stack(per_window)  # (B, C, positions + [REG] + future patch, d)
            positions, summary = tokens[:, :, :-2], tokens[:, :, -2]
        else:
            tokens, _ = self.pipeline.embed(x.reshape(batch * channels, length))
            tokens = tokens.reshape(batch, channels, *tokens.shape[1:])
            own = tokens.shape[2] - self.has_summary_token
            positions, summary = tokens[:, :, :own], tokens[:, :, -1]
        pooled = positions.mean(dim=2) if self.pooling == "mean" else summary
        return pooled.reshape(batch, channels * pooled.shape[-1]).to(self.device)


@functools.lru_cache(maxsize=None)
def shared_chronos_embedder(model: str, device: str = "cpu", pooling: str = "mean") -> ChronosEmbedder:
    """One loaded model per (model, device, pooling) in a process, shared by all partitions."""
    return ChronosEmbedder(model, device, pooling)


def _summary_token_and_width(pipeline) -> tuple[bool, int]:
    """Whether the encoder appends a summary token (EOS or [REG]), and its d_model."""
    if type(pipeline).__name__ == "ChronosPipeline":  # T5: a ChronosConfig around a HF model
        return bool(pipeline.model.config.use_eos_token), pipeline.model.model.config.d_model
    config = pipeline.model.config
    return bool(config.chronos_config.get("use_reg_token", False)), config.d_model
