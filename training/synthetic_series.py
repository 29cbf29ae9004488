"""Seeded synthetic series for pretraining Chronos-Bolt; random numbers only, no real data.

Four kinds of series, then TSMixup and a random level and scale:

- ``kernel_synth``: KernelSynth-style Gaussian-process samples. One to five kernels from a bank
  (linear, RBF and rational quadratic at several length scales, periodic at several periods,
  white noise, constant) are joined with random ``+`` and ``*``. Stationary kernels are drawn
  with random Fourier features (RBF: Gaussian frequencies; rational quadratic: a Gamma scale
  mixture of them), the periodic kernel from its Fourier series (Bessel weights; the constant
  term dropped, the rest scaled to unit variance), so a sample costs O(features x length), no
  Cholesky. A ``+`` adds independent samples (exactly the
  sum kernel); a ``*`` multiplies them, whose covariance is the product kernel (not Gaussian).
- ``structural``: a trend (linear, piecewise linear, exponential or saturating) plus one to
  three seasonalities with harmonics, plus a noise model.
- ``regime_switch``: a structural series cut into two to five regimes, each with its own level,
  scale and noise.
- noise models: Gaussian, Student-t, heteroscedastic (a slowly varying or seasonal scale) and
  AR(1); sometimes a few spikes, sometimes values rounded to a coarse resolution.
- ``tsmixup``: convex mixes (Dirichlet weights) of two or three series, each scaled to unit
  mean absolute value first.

NAB and every other evaluation corpus are never read here.

>>> a, b = generate(8, 256, seed=3), generate(8, 256, seed=3)
>>> a.shape, a.dtype.name, bool(np.array_equal(a, b)), bool(np.isfinite(a).all())
((8, 256), 'float32', True, True)
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter
from scipy.special import ive

PERIODS = (4, 7, 12, 24, 48, 60, 96, 144, 168, 288, 336)
RBF_SCALES = (10.0, 30.0, 100.0, 300.0, 1000.0)
RQ_SCALES = (10.0, 50.0, 200.0)
RQ_ALPHAS = (0.1, 1.0, 10.0)
FEATURES = 96  # random Fourier features per stationary kernel
MAX_HARMONICS = 24  # Fourier terms of the periodic kernel
KINDS = {"kernel_synth": 0.3, "structural": 0.55, "regime_switch": 0.15}
MIX_FRACTION = 0.2  # share of the output that is a TSMixup of other generated series


def rbf(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """A GP sample with an RBF kernel of a random length scale (random Fourier features)."""
    return _fourier(rng, t, rng.normal(0.0, 1.0 / rng.choice(RBF_SCALES), FEATURES))


def rational_quadratic(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """A GP sample with a rational-quadratic kernel: RBF frequencies with Gamma precisions."""
    scale, alpha = rng.choice(RQ_SCALES), rng.choice(RQ_ALPHAS)
    precision = rng.gamma(alpha, 1.0 / (alpha * scale**2), FEATURES)
    return _fourier(rng, t, rng.normal(0.0, 1.0, FEATURES) * np.sqrt(precision))


def periodic(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """A GP sample with the exp-sine-squared kernel of a period from PERIODS, drawn from its
    Fourier series exp(z cos x) = I0(z) + 2 sum_k Ik(z) cos(kx), z = 1 / l^2 (without I0, unit variance)."""
    period, z = rng.choice(PERIODS), 1.0 / rng.choice([0.5, 1.0, 2.0]) ** 2
    k = np.arange(1, max(2, min(MAX_HARMONICS, period // 2)) + 1)
    weights = np.sqrt(2.0 * ive(k, z))
    angle = 2 * np.pi * np.outer(k, t) / period
    coef = rng.normal(size=(2, k.size)) * weights / np.sqrt(np.sum(weights**2))  # unit variance
    return coef[0] @ np.cos(angle) + coef[1] @ np.sin(angle)


def linear(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """A GP sample with a linear kernel: a random line through a random point."""
    return rng.normal() * (t - rng.uniform(0, t[-1] + 1)) / (t[-1] + 1) * 2


def white(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    return rng.choice([0.05, 0.1, 0.3]) * rng.normal(size=t.size)


def constant(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    return np.full(t.size, rng.normal())


KERNELS = {"linear": linear, "rbf": rbf, "rational_quadratic": rational_quadratic, "periodic": periodic,
           "white": white, "constant": constant}
KERNEL_WEIGHTS = {"linear": 0.12, "rbf": 0.22, "rational_quadratic": 0.12, "periodic": 0.34, "white": 0.1,
                  "constant": 0.1}


def kernel_synth(rng: np.random.Generator, length: int, max_kernels: int = 5) -> np.ndarray:
    """KernelSynth: 1 to max_kernels kernels from the bank, joined left to right by + or *."""
    t = np.arange(length, dtype=np.float64)
    names = list(KERNELS)
    picks = rng.choice(names, size=rng.integers(1, max_kernels + 1), p=[KERNEL_WEIGHTS[n] for n in names])
    x = KERNELS[picks[0]](rng, t)
    for name in picks[1:]:
        sample = KERNELS[name](rng, t)
        x = x + sample if rng.random() < 0.6 else x * sample
    return x


def structural(rng: np.random.Generator, length: int) -> np.ndarray:
    """Trend + one to three seasonalities (with harmonics) + a noise model."""
    t = np.arange(length, dtype=np.float64)
    x = _trend(rng, t)
    for period in rng.choice(PERIODS, size=rng.integers(1, 4), replace=False):
        x = x + _seasonality(rng, t, period)
    return add_noise(rng, x, rng.choice([0.02, 0.1, 0.2, 0.4, 0.8]))


def regime_switch(rng: np.random.Generator, length: int) -> np.ndarray:
    """A structural series whose level, scale and noise change at two to five random points."""
    x = structural(rng, length)
    cuts = np.sort(rng.choice(np.arange(16, length - 16), size=rng.integers(1, 5), replace=False))
    for start, end in zip(np.r_[0, cuts], np.r_[cuts, length]):
        piece = x[start:end]
        piece *= rng.lognormal(0.0, 0.5)
        piece += rng.normal(0.0, 2.0)
        if rng.random() < 0.5:
            x[start:end] = add_noise(rng, piece, rng.choice([0.1, 0.5, 1.0]))
    return x


def add_noise(rng: np.random.Generator, x: np.ndarray, level: float) -> np.ndarray:
    """x plus noise of one model (Gaussian, Student-t, heteroscedastic, AR(1)) at a scale of
    level times x's spread; sometimes spikes, sometimes rounding."""
    n, spread = x.size, max(float(np.std(x)), 1e-3)
    model = rng.choice(["gaussian", "student_t", "heteroscedastic", "ar1"])
    if model == "gaussian":
        noise = rng.normal(size=n)
    elif model == "student_t":
        noise = rng.standard_t(rng.choice([3.0, 5.0, 10.0]), size=n)
    elif model == "heteroscedastic":
        envelope = rbf(rng, np.arange(n, dtype=np.float64)) if rng.random() < 0.5 else _seasonality(
            rng, np.arange(n, dtype=np.float64), rng.choice(PERIODS))
        envelope = (envelope - envelope.mean()) / max(float(np.std(envelope)), 1e-6)
        noise = rng.normal(size=n) * np.exp(0.5 * np.clip(envelope, -3.0, 3.0))
    else:
        noise = lfilter([1.0], [1.0, -rng.uniform(0.3, 0.95)], rng.normal(size=n))
    y = x + level * spread * noise / max(float(np.std(noise)), 1e-6)
    if rng.random() < 0.15:
        at = rng.integers(0, n, size=rng.integers(1, 4))
        y[at] += rng.choice([-1, 1], size=at.size) * rng.uniform(3, 8, size=at.size) * spread
    if rng.random() < 0.1:
        step = spread * rng.choice([0.05, 0.2, 0.5])
        y = np.round(y / step) * step
    return y


def tsmixup(rng: np.random.Generator, series: np.ndarray, k: int) -> np.ndarray:
    """A convex mix (Dirichlet(1.5) weights) of k random rows of series, each scaled to unit
    mean absolute value first (TSMixup)."""
    rows = series[rng.choice(len(series), size=k, replace=False)]
    scale = np.abs(rows).mean(axis=1, keepdims=True)
    return rng.dirichlet(np.full(k, 1.5)) @ (rows / np.where(scale > 0, scale, 1.0))


def generate(n: int, length: int, seed: int | np.random.Generator = 0,
             kinds: dict[str, float] | None = None) -> np.ndarray:
    """(n, length) float32 series: kinds (default KINDS) in their proportions, MIX_FRACTION of
    them TSMixups of the others, each with a random level and a scale between 1e-2 and 1e4."""
    rng = np.random.default_rng(seed)
    kinds = KINDS if kinds is None else kinds
    makers = {"kernel_synth": kernel_synth, "structural": structural, "regime_switch": regime_switch}
    picks = rng.choice(list(kinds), size=n, p=np.array(list(kinds.values())) / sum(kinds.values()))
    out = np.stack([makers[kind](rng, length) for kind in picks]) if n else np.zeros((0, length))
    out = (out - out.mean(axis=1, keepdims=True)) / np.maximum(out.std(axis=1, keepdims=True), 1e-6)
    if n >= 3:
        mixed = np.flatnonzero(rng.random(n) < MIX_FRACTION)
        if mixed.size:
            out[mixed] = [tsmixup(rng, out, int(rng.integers(2, 4))) for _ in mixed]
    scale = 10.0 ** rng.uniform(-2, 4, (n, 1))
    level = scale * rng.normal(0.0, 1.0, (n, 1)) * rng.choice([0.0, 1.0, 10.0], (n, 1))
    return (out * scale + level).astype(np.float32)


def recipe() -> dict:
    """The generator's settings, for a checkpoint's recipe.json."""
    return {"kinds": KINDS, "kernels": KERNEL_WEIGHTS, "max_kernels": 5, "periods": list(PERIODS),
            "rbf_length_scales": list(RBF_SCALES), "rq_length_scales": list(RQ_SCALES), "rq_alphas": list(RQ_ALPHAS),
            "fourier_features": FEATURES, "noise_models": ["gaussian", "student_t", "heteroscedastic", "ar1"],
            "tsmixup_fraction": MIX_FRACTION, "tsmixup_k": [2, 3], "scale_log10": [-2, 4], "real_data": "none"}


def _fourier(rng: np.random.Generator, t: np.ndarray, freq: np.ndarray) -> np.ndarray:
    phase = rng.uniform(0, 2 * np.pi, freq.size)
    return np.sqrt(2.0 / freq.size) * (rng.normal(size=freq.size) @ np.cos(np.outer(freq, t) + phase[:, None]))


def _trend(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    u = t / t[-1]
    kind = rng.choice(["none", "linear", "piecewise", "exponential", "saturating"])
    if kind == "linear":
        return rng.normal() * u
    if kind == "piecewise":
        knots = np.sort(rng.uniform(0, 1, rng.integers(1, 4)))
        return rng.normal() * u + sum(rng.normal() * np.maximum(u - k, 0) for k in knots)
    if kind == "exponential":
        return np.expm1(rng.uniform(-3, 3) * u)
    if kind == "saturating":
        return rng.normal() * np.tanh(rng.uniform(1, 10) * (u - rng.uniform(0, 1)))
    return np.zeros_like(t)


def _seasonality(rng: np.random.Generator, t: np.ndarray, period: int) -> np.ndarray:
    harmonics = np.arange(1, rng.integers(1, 5) + 1)
    amplitude = rng.normal(size=(2, harmonics.size)) / harmonics
    angle = 2 * np.pi * np.outer(harmonics, t) / period
    x = amplitude[0] @ np.cos(angle) + amplitude[1] @ np.sin(angle)
    if rng.random() < 0.3:  # a slowly changing amplitude
        x = x * (1 + 0.5 * np.sin(2 * np.pi * t / rng.uniform(2, 10) / period + rng.uniform(0, 2 * np.pi)))
    return rng.lognormal(0.0, 0.5) * x
