"""Chronos models with random weights in chronos-forecasting's own model classes.

No weights can be downloaded where Argus is built and tested, so tests and speed benchmarks
build models themselves: ``save_random_model(family, size, folder)`` writes a folder that
``BaseChronosPipeline.from_pretrained(folder)`` loads exactly as it loads a published
checkpoint. ``size="test"`` is tiny (fast tests); the other sizes follow the published
configurations, so the compute of a benchmark on them is honest (only the weights are random).
``random_like(folder, out)`` gives any saved checkpoint's exact configuration random weights.

Argus also ships one pretrained model, ``shipped_model_path()``: a small Chronos-Bolt trained
from scratch on synthetic series only (``python -m training.train_bolt``; its recipe.json says how).

>>> import tempfile
>>> from chronos import BaseChronosPipeline
>>> folder = save_random_model("bolt", "test", tempfile.mkdtemp())
>>> type(BaseChronosPipeline.from_pretrained(folder)).__name__
'ChronosBoltPipeline'
"""

from __future__ import annotations

from pathlib import Path

import torch

FAMILIES = ("t5", "bolt", "chronos2")

# (d_model, d_ff, num_layers, num_heads, d_kv) of the published checkpoints, plus a tiny one
SIZES = {
    "test": (16, 32, 1, 2, 8),
    "tiny": (256, 1024, 4, 4, 64),
    "mini": (384, 1536, 4, 8, 64),
    "small": (512, 2048, 6, 8, 64),
    "base": (768, 3072, 12, 12, 64),
}
_QUANTILES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
SHIPPED = Path(__file__).resolve().parent / "weights" / "argus-bolt"


def shipped_model_path() -> Path:
    """The folder of the Chronos-Bolt model that ships with Argus (the chronos embedder's default)."""
    return SHIPPED


def random_like(folder: str | Path, out: str | Path, seed: int = 0) -> Path:
    """Save, in out, a randomly initialised model with the configuration of the checkpoint in folder."""
    from chronos.chronos_bolt import ChronosBoltModelForForecasting
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(folder))
    if config.architectures != ["ChronosBoltModelForForecasting"]:
        raise ValueError(f"random_like handles Chronos-Bolt checkpoints only, {folder} is {config.architectures}")
    torch.manual_seed(seed)
    out = Path(out)
    ChronosBoltModelForForecasting(config).save_pretrained(out)
    return out


def save_random_model(family: str, size: str, folder: str | Path, seed: int = 0) -> Path:
    """Build a randomly initialised Chronos model of a family and size and save it to folder."""
    if family not in FAMILIES:
        raise ValueError(f"unknown Chronos family {family!r} (known: {', '.join(FAMILIES)})")
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r} (known: {', '.join(SIZES)})")
    torch.manual_seed(seed)
    model = {"t5": _t5, "bolt": build_bolt, "chronos2": _chronos2}[family](*SIZES[size])
    folder = Path(folder)
    model.save_pretrained(folder)
    return folder


def _t5_shape(d_model: int, d_ff: int, layers: int, heads: int, d_kv: int, dropout: float = 0.1) -> dict:
    return dict(d_model=d_model, d_ff=d_ff, num_layers=layers, num_decoder_layers=layers, num_heads=heads,
                d_kv=d_kv, feed_forward_proj="relu", dropout_rate=dropout, pad_token_id=0, decoder_start_token_id=0)


def _t5(*shape: int):
    from transformers import T5Config, T5ForConditionalGeneration

    n_tokens = 4096
    config = T5Config(**_t5_shape(*shape), vocab_size=n_tokens, eos_token_id=1)
    config.architectures = ["T5ForConditionalGeneration"]
    config.chronos_config = {
        "tokenizer_class": "MeanScaleUniformBins", "tokenizer_kwargs": {"low_limit": -15.0, "high_limit": 15.0},
        "n_tokens": n_tokens, "n_special_tokens": 2, "pad_token_id": 0, "eos_token_id": 1, "use_eos_token": True,
        "model_type": "seq2seq", "context_length": 512, "prediction_length": 64, "num_samples": 20,
        "temperature": 1.0, "top_k": 50, "top_p": 1.0,
    }
    return T5ForConditionalGeneration(config)


def build_bolt(d_model: int, d_ff: int, layers: int, heads: int, d_kv: int, context_length: int = 2048,
               prediction_length: int = 64, dropout: float = 0.1):
    """A randomly initialised ChronosBoltModelForForecasting (patches of 16, 9 quantiles, [REG])."""
    from chronos.chronos_bolt import ChronosBoltModelForForecasting
    from transformers import T5Config

    config = T5Config(**_t5_shape(d_model, d_ff, layers, heads, d_kv, dropout), vocab_size=2, reg_token_id=1)
    config.architectures = ["ChronosBoltModelForForecasting"]
    config.chronos_pipeline_class = "ChronosBoltPipeline"
    config.chronos_config = {"context_length": context_length, "input_patch_size": 16, "input_patch_stride": 16,
                             "prediction_length": prediction_length, "quantiles": _QUANTILES, "use_reg_token": True}
    return ChronosBoltModelForForecasting(config)


def _chronos2(d_model: int, d_ff: int, layers: int, heads: int, d_kv: int):
    from chronos.chronos2.config import Chronos2CoreConfig
    from chronos.chronos2.model import Chronos2Model

    config = Chronos2CoreConfig(d_model=d_model, d_ff=d_ff, num_layers=layers, num_heads=heads, d_kv=d_kv)
    config.architectures = ["Chronos2Model"]
    config.chronos_pipeline_class = "Chronos2Pipeline"
    config.chronos_config = {"context_length": 8192, "input_patch_size": 16, "input_patch_stride": 16,
                             "output_patch_size": 16, "max_output_patches": 64, "quantiles": _QUANTILES,
                             "use_arcsinh": True, "use_reg_token": True, "time_encoding_scale": 8192}
    return Chronos2Model(config)
