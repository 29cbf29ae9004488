"""Pretrain a Chronos-Bolt model from scratch on synthetic series (training.synthetic_series).

    python -m training.train_bolt --config cpu --out detectors/weights/argus-bolt --minutes 45 --seed 0

The model is chronos-forecasting's own ChronosBoltModelForForecasting, trained on its own
forward loss (the quantile loss on instance-normalised targets). Each step takes a batch of
random crops of a pool of generated series (part of the pool is regenerated as training goes
on). One context length per batch: the model's ``context_length`` for ``full_context`` of the
batches, else log-uniform from ``min_context`` up (lengths that are not a multiple of the patch
are NaN-padded by the model, as at inference); ``mix_fraction`` of each batch is TSMixup of
other members. Curriculum: the first ``curriculum`` share of the run sees structural series
only (trend + seasonality + noise), where seasonality is plain to see; a small model trained on
the whole mixture from the start learns to continue cycles much later. The learning rate warms
up, then follows a cosine to a tenth of its peak over the run, which ends at ``--steps`` or
after ``--minutes``, whichever comes first. The folder it writes (config.json,
model.safetensors, recipe.json) loads with ``BaseChronosPipeline.from_pretrained(folder)``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

from detectors.chronos_models import build_bolt
from training import synthetic_series


@dataclass(frozen=True)
class TrainConfig:
    """A model shape and its training run."""

    d_model: int
    d_ff: int
    layers: int
    heads: int
    context_length: int
    batch_size: int
    pool: int  # series held in memory
    lr: float = 1e-3
    prediction_length: int = 64
    min_context: int = 32
    dropout: float = 0.0
    refresh_every: int = 200  # steps between pool refreshes
    refresh_fraction: float = 0.05  # share of the pool regenerated at each refresh
    mix_fraction: float = 0.1  # share of a batch replaced by TSMixup of batch members
    full_context: float = 0.25  # share of batches at the full context length
    curriculum: float = 0.3  # share of the run on structural series only (clear seasonality) first
    warmup: float = 0.03  # share of the run spent warming the learning rate up
    eval_series: int = 256

    @property
    def series_length(self) -> int:
        """Pool series are longer than one example, so crops of them differ."""
        return 2 * (self.context_length + self.prediction_length)


CURRICULUM_KINDS = {"structural": 1.0}

CONFIGS = {
    # seconds: end-to-end checks only
    "smoke": TrainConfig(d_model=32, d_ff=64, layers=1, heads=2, context_length=128, batch_size=16, pool=256,
                         refresh_every=50, eval_series=32),
    # a few minutes on one CPU thread
    "small": TrainConfig(d_model=64, d_ff=256, layers=2, heads=4, context_length=256, batch_size=32, pool=4000,
                         lr=3e-3),
    # the shipped model: under an hour on one CPU thread, under 10 MB in fp32
    "cpu": TrainConfig(d_model=128, d_ff=512, layers=2, heads=4, context_length=512, batch_size=32, pool=20000,
                       lr=2e-3),
    # Chronos-Bolt-small-like shape for one GPU (not run here)
    "gpu": TrainConfig(d_model=512, d_ff=2048, layers=6, heads=8, context_length=2048, batch_size=256,
                       pool=100000, lr=5e-4, dropout=0.1, refresh_every=500, eval_series=1024, curriculum=0.1),
}


def new_model(config: TrainConfig) -> torch.nn.Module:
    """A randomly initialised ChronosBoltModelForForecasting of the config's shape."""
    return build_bolt(config.d_model, config.d_ff, config.layers, config.heads, config.d_model // config.heads,
                      config.context_length, config.prediction_length, config.dropout)


def batch(pool: np.ndarray, rng: np.random.Generator, config: TrainConfig,
          context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(context, target) tensors: random crops of pool rows, part of them mixed (TSMixup)."""
    length = context + config.prediction_length
    rows = rng.integers(0, len(pool), config.batch_size)
    starts = rng.integers(0, pool.shape[1] - length + 1, config.batch_size)
    crops = pool[rows[:, None], starts[:, None] + np.arange(length)].astype(np.float64)
    mixed = np.flatnonzero(rng.random(config.batch_size) < config.mix_fraction)
    if config.batch_size >= 3 and mixed.size:
        crops[mixed] = [synthetic_series.tsmixup(rng, crops, int(rng.integers(2, 4))) * rng.lognormal(0, 2)
                        for _ in mixed]
    crops = torch.from_numpy(crops.astype(np.float32))
    past, future = crops[:, :context], crops[:, context:].clone()
    # a (near) flat context scales the target by ~1/eps: such rows would swamp the loss
    future[past.std(dim=1) <= 1e-3 * crops.std(dim=1)] = torch.nan
    return past, future


def context_length(rng: np.random.Generator, config: TrainConfig) -> int:
    """The model's context length, or (1 - full_context of the time) log-uniform from min_context up."""
    if rng.random() < config.full_context:
        return config.context_length
    return int(round(math.exp(rng.uniform(math.log(config.min_context), math.log(config.context_length)))))


def learning_rate(config: TrainConfig, progress: float) -> float:
    """Linear warm-up, then a cosine from lr to lr / 10, over progress in [0, 1]."""
    if progress < config.warmup:
        return config.lr * max(progress / config.warmup, 0.01)
    done = (progress - config.warmup) / (1 - config.warmup)
    return config.lr * (0.1 + 0.45 * (1 + math.cos(math.pi * min(done, 1.0))))


@torch.no_grad()
def evaluate(model: torch.nn.Module, series: np.ndarray, config: TrainConfig, device: torch.device) -> float:
    """The model's own loss on held-out synthetic series, at the full context length."""
    model.eval()
    losses = []
    for start in range(0, len(series), 64):
        chunk = torch.from_numpy(series[start:start + 64]).to(device)
        out = model(context=chunk[:, :config.context_length], target=chunk[:, config.context_length:])
        losses.append(float(out.loss) * len(chunk))
    model.train()
    return sum(losses) / len(series)


def train(config_name: str, out: Path, minutes: float, seed: int, steps: int | None = None, device: str = "cpu",
          report_every_s: float = 30.0) -> dict:
    """Train, save the model and recipe.json in out, and return the recipe."""
    config = CONFIGS[config_name]
    started = time.perf_counter()
    torch.manual_seed(seed)
    pool_seed, eval_seed, batch_seed = np.random.SeedSequence(seed).spawn(3)
    rng = np.random.default_rng(batch_seed)
    in_curriculum = config.curriculum > 0
    pool = synthetic_series.generate(config.pool, config.series_length, np.random.default_rng(pool_seed),
                                     kinds=CURRICULUM_KINDS if in_curriculum else None)
    held_out = synthetic_series.generate(config.eval_series, config.context_length + config.prediction_length,
                                         np.random.default_rng(eval_seed))
    print(f"{config_name}: pool of {len(pool)} series generated in {time.perf_counter() - started:.0f} s", flush=True)
    target = torch.device(device)
    model = new_model(config).to(target)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)
    budget = minutes * 60.0
    train_started = time.perf_counter()
    step, ema, last_report, progress = 0, math.nan, train_started, 0.0
    while progress < 1.0:
        context, future = batch(pool, rng, config, context_length(rng, config))
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, progress)
        loss = model(context=context.to(target), target=future.to(target)).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        value = loss.item()
        ema = value if math.isnan(ema) else 0.98 * ema + 0.02 * value
        elapsed = time.perf_counter() - train_started
        progress = max(elapsed / budget, step / steps if steps else 0.0)
        if in_curriculum and progress >= config.curriculum:  # from here on, the whole mixture
            in_curriculum = False
            pool = synthetic_series.generate(config.pool, config.series_length, rng)
            print(f"step {step}: curriculum over, pool regenerated with every kind of series", flush=True)
        elif step % config.refresh_every == 0:
            fresh = rng.choice(len(pool), int(config.refresh_fraction * len(pool)), replace=False)
            pool[fresh] = synthetic_series.generate(fresh.size, config.series_length, rng,
                                                    kinds=CURRICULUM_KINDS if in_curriculum else None)
        if time.perf_counter() - last_report >= report_every_s:
            last_report = time.perf_counter()
            print(f"step {step} ({100 * progress:.0f}%): loss {ema:.4f}, lr {learning_rate(config, progress):.2e}, "
                  f"{step / elapsed:.2f} steps/s", flush=True)
    final = evaluate(model, held_out, config, target)
    wall = time.perf_counter() - started
    print(f"done: {step} steps, train loss {ema:.4f}, held-out loss {final:.4f}, {wall / 60:.1f} min", flush=True)
    model.to("cpu").save_pretrained(out)
    recipe = {
        "model": "ChronosBoltModelForForecasting, trained from scratch", "config_name": config_name,
        "config": dataclasses.asdict(config), "seed": seed, "steps": step, "examples": step * config.batch_size,
        "minutes_budget": minutes, "steps_budget": steps, "wall_seconds": round(wall, 1),
        "final_train_loss_ema": round(ema, 5), "final_held_out_loss": round(final, 5),
        "held_out": f"{config.eval_series} synthetic series from the seed's own stream, context "
                    f"{config.context_length}, horizon {config.prediction_length}",
        "data": synthetic_series.recipe(), "device": str(target), "torch_threads": torch.get_num_threads(),
        "versions": {"torch": torch.__version__, "transformers": version("transformers"),
                     "chronos-forecasting": version("chronos-forecasting"), "numpy": np.__version__,
                     "python": sys.version.split()[0]},
        "command": f"python -m training.train_bolt --config {config_name} --out {out} --minutes {minutes:g} "
                   f"--seed {seed}" + (f" --steps {steps}" if steps else ""),
    }
    (out / "recipe.json").write_text(json.dumps(recipe, indent=2) + "\n")
    return recipe


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, choices=list(CONFIGS), help="model shape and run settings")
    parser.add_argument("--out", required=True, type=Path,
                        help="folder for config.json, model.safetensors and recipe.json")
    parser.add_argument("--minutes", type=float, default=45.0, help="wall-clock budget of the training loop")
    parser.add_argument("--steps", type=int, default=None, help="stop after this many steps (if sooner)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--report-every", type=float, default=30.0, help="seconds between progress lines")
    args = parser.parse_args(argv)
    if not args.minutes > 0:
        parser.error(f"--minutes must be positive, got {args.minutes:g}")
    if args.steps is not None and args.steps < 1:
        parser.error(f"--steps must be at least 1, got {args.steps}")
    if args.seed < 0:
        parser.error(f"--seed must not be negative, got {args.seed}")
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    try:
        device = torch.device(args.device)
    except RuntimeError:
        parser.error(f"--device {args.device!r} is not a torch device")
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda, but torch sees no CUDA device here")
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out} is a file, not a folder")
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    train(args.config, args.out, args.minutes, args.seed, args.steps, args.device, args.report_every)


if __name__ == "__main__":
    main()
