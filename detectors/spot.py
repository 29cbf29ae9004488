"""SPOT and DSPOT: per-stream thresholds from extreme value theory (Siffer et al., KDD 2017).

A stream's threshold z_q is the score exceeded with probability ``q`` (the target alert rate),
estimated from the stream's tail. The excesses of scores over a high initial threshold t (its
``level`` quantile) follow, asymptotically, a Generalised Pareto distribution GPD(gamma, sigma)
(Pickands-Balkema-de Haan), so

    z_q = t + sigma / gamma * ((q * n / N_t) ** -gamma - 1)      (t - sigma * log(q n / N_t) at gamma = 0)

with n the scores learned and N_t those above t.

- Calibration: a stream raises nothing until it has ``calibration`` scores (DSPOT: ``depth``
  more first). Then t is their ``level`` quantile (the order statistic with
  floor(calibration * (1 - level)) of them above it), the excesses over t are the first peaks and the GPD is fitted. If fewer than ``MIN_PEAKS`` scores lie above t (ties: a scorer
  still warming up gives a run of equal scores), calibration goes on over the latest
  ``calibration`` scores and is tried again every ``RETRY_EVERY`` scores.
- Streaming (SPOT): a score above z_q is an alert and is *not* learned (an anomaly must not
  widen the tail it is judged by); a score in (t, z_q] adds a peak; every learned score counts
  in n. t stays fixed.
- Drift (DSPOT, ``depth`` > 0): every test above applies to the score less the mean of the
  stream's last ``depth`` learned scores, and the returned threshold is z_q plus that mean, so
  the threshold follows a drifting level. Alerts do not enter the moving window.
- Refit policy, bounded cost: the GPD is refitted after every ``refit_every`` new peaks, on the
  latest ``max_peaks`` peaks only (a ring); n and N_t keep counting the whole history, so
  N_t / n still estimates P(score > t). A refit costs O(max_peaks) per grid point and
  bisection step (below): about a millisecond at max_peaks = 1000.
- Non-finite scores are neither judged (never anomalous) nor learned.

The GPD is fitted by Grimshaw's method (Grimshaw 1993, as in the paper): the likelihood's
stationary points are the roots theta = gamma / sigma of
w(theta) = u(theta) v(theta) - 1, u = 1 + mean log(1 + theta Y), v = mean 1 / (1 + theta Y),
in (-1 / max Y, 0) and (0, 2 (mean - min) / min^2); each root gives
gamma = u - 1, sigma = gamma / theta. Here the roots are bracketed by sign changes of w on a
fixed geometric grid over both intervals and refined by bisection (no random starts, no
optimiser: a replay gives the same thresholds bit for bit); the candidate of highest likelihood,
the exponential fit (gamma = 0, sigma = mean) included, wins.

>>> spot = SPOTThreshold(q=1e-3, calibration=500)
>>> rng = np.random.default_rng(0)
>>> verdicts = [spot.judge("node-1", s) for s in rng.exponential(size=5000)]
>>> round(verdicts[-1][0], 1)  # exp(1)'s 1 - 1e-3 quantile is log(1000) = 6.9
6.9
>>> spot.judge("node-1", 12.0)[1], spot.judge("node-2", 12.0)  # node-2 is still calibrating
(True, (inf, False))
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MIN_PEAKS = 10  # the fewest excesses a GPD is fitted to
RETRY_EVERY = 16  # scores between calibration attempts when too few scores lie above t
_GRID = 64  # grid points per root interval
_BISECTIONS = 48  # halvings of a bracket (in log |theta|): relative precision 2^-48 of its width


@dataclass
class _Stream:
    """One stream's tail: calibration scores, then the peak ring and the fitted GPD."""

    calibration: np.ndarray  # ring of the latest relative scores, until calibrated
    peaks: np.ndarray  # ring of the latest excesses over t (empty until calibrated)
    recent: np.ndarray  # DSPOT: ring of the last `depth` learned raw scores
    learned: int = 0  # scores ever learned (window fill and calibration included)
    n: int = 0  # scores learned since calibration began (the paper's n)
    peak_count: int = 0  # peaks ever (the paper's N_t)
    since_refit: int = 0
    calibrated: bool = False
    t: float = 0.0
    gamma: float = 0.0
    sigma: float = 0.0
    z: float = math.inf  # extreme quantile of the relative score


class SPOTThreshold:
    """SPOT per stream (``depth=0``) or DSPOT (``depth > 0``); a drop-in for
    RollingQuantileThreshold: ``judge(stream_id, score) -> (threshold, anomalous)``."""

    def __init__(self, q: float = 1e-3, calibration: int = 1000, level: float = 0.98, depth: int = 0,
                 max_peaks: int = 1000, refit_every: int = 1):
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), got {level}")
        if not 0 < q < 1 - level:
            raise ValueError(f"q must be in (0, 1 - level) = (0, {1 - level:g}), got {q}")
        self.calibration_peaks = int(calibration * (1 - level) + 1e-9)  # scores above t, ties aside
        if self.calibration_peaks < MIN_PEAKS:
            raise ValueError(f"calibration * (1 - level) must be >= {MIN_PEAKS} (peaks to fit), "
                             f"got {calibration} * {1 - level:g}")
        if depth < 0 or max_peaks < MIN_PEAKS or refit_every < 1:
            raise ValueError(f"need depth >= 0, max_peaks >= {MIN_PEAKS}, refit_every >= 1; "
                             f"got depth={depth}, max_peaks={max_peaks}, refit_every={refit_every}")
        self.q, self.calibration, self.level, self.depth = q, calibration, level, depth
        self.max_peaks, self.refit_every = max_peaks, refit_every
        self.streams: dict[str, _Stream] = {}

    def judge(self, stream_id: str, score: float) -> tuple[float, bool]:
        """(threshold, is the score above it) for this stream, then learn the score if normal."""
        s = self.streams.get(stream_id)
        if s is None:
            s = self.streams[stream_id] = _Stream(np.zeros(self.calibration), np.zeros(0), np.zeros(self.depth))
        score = float(score)
        ready = s.learned >= self.depth
        drift = float(s.recent.mean()) if self.depth and ready else 0.0
        threshold = s.z + drift if s.calibrated else math.inf
        if not math.isfinite(score):
            return threshold, False
        relative = score - drift
        if s.calibrated and relative > s.z:
            return threshold, True
        if s.calibrated:
            self._learn_peak(s, relative)
        elif ready:
            s.calibration[s.n % self.calibration] = relative
            s.n += 1
            if s.n >= self.calibration and (s.n - self.calibration) % RETRY_EVERY == 0:
                self._calibrate(s)
        if self.depth:
            s.recent[s.learned % self.depth] = score
        s.learned += 1
        return threshold, False

    def _learn_peak(self, s: _Stream, relative: float) -> None:
        s.n += 1
        if relative <= s.t:
            return
        s.peaks[s.peak_count % self.max_peaks] = relative - s.t
        s.peak_count += 1
        s.since_refit += 1
        if s.since_refit >= self.refit_every:
            self._refit(s)

    def _calibrate(self, s: _Stream) -> None:
        """Fix t from the latest ``calibration`` scores and fit the first peaks, if enough."""
        start = s.n % self.calibration
        ordered = np.concatenate([s.calibration[start:], s.calibration[:start]])  # oldest first
        t = float(np.sort(ordered)[-self.calibration_peaks - 1])
        excesses = ordered[ordered > t] - t
        if excesses.size < MIN_PEAKS:
            return
        s.calibrated, s.t, s.n, s.calibration = True, t, self.calibration, np.zeros(0)
        kept = excesses[-self.max_peaks:]
        s.peaks = np.zeros(self.max_peaks)
        s.peaks[:kept.size] = kept
        s.peak_count = excesses.size
        if excesses.size > kept.size:  # ring order: the newest peak just before the next slot
            s.peaks = np.roll(s.peaks, s.peak_count % self.max_peaks)
        self._refit(s)

    def _refit(self, s: _Stream) -> None:
        held = s.peaks[:min(s.peak_count, self.max_peaks)]
        s.gamma, s.sigma = fit_gpd(held)
        s.z = s.t + gpd_excess_quantile(s.gamma, s.sigma, self.q * s.n / s.peak_count)
        s.since_refit = 0

    _COUNTERS = ("learned", "n", "peak_count", "since_refit", "calibrated", "t", "gamma", "sigma", "z")

    def config(self) -> dict:
        return dict(q=self.q, calibration=self.calibration, level=self.level, depth=self.depth,
                    max_peaks=self.max_peaks, refit_every=self.refit_every)

    def state_dict(self) -> dict:
        """Config and every stream's rings and counters: numpy arrays and JSON values."""
        return {"config": self.config(), "streams": {
            sid: {"calibration": s.calibration, "peaks": s.peaks, "recent": s.recent,
                  **{name: getattr(s, name) for name in self._COUNTERS}}
            for sid, s in self.streams.items()}}

    def load_state_dict(self, state: dict) -> None:
        """Take the streams of a ``state_dict`` made with the same arguments."""
        if state.get("config") != self.config():
            raise ValueError(f"SPOT state was made with {state.get('config')}, this threshold has {self.config()}")
        self.streams = {sid: _Stream(np.array(h["calibration"], dtype=np.float64), np.array(h["peaks"], dtype=np.float64),
                                     np.array(h["recent"], dtype=np.float64),
                                     **{name: h[name] for name in self._COUNTERS})
                        for sid, h in state["streams"].items()}


def gpd_excess_quantile(gamma: float, sigma: float, tail: float) -> float:
    """The excess over t exceeded with probability ``tail`` (relative to the peaks) under GPD(gamma, sigma).

    >>> round(gpd_excess_quantile(0.0, 1.0, 0.01), 4), round(gpd_excess_quantile(1e-12, 1.0, 0.01), 4)
    (4.6052, 4.6052)
    """
    log_tail = math.log(tail)
    if gamma == 0:
        return -sigma * log_tail
    return sigma / gamma * math.expm1(-gamma * log_tail)


def gpd_log_likelihood(excesses: np.ndarray, gamma: float, sigma: float) -> float:
    """Log-likelihood of excesses (> 0) under GPD(gamma, sigma); -inf outside its support."""
    y = np.asarray(excesses, dtype=np.float64)
    if sigma <= 0:
        return -math.inf
    if gamma == 0:
        return float(-y.size * math.log(sigma) - y.sum() / sigma)
    z = 1 + gamma / sigma * y
    if np.any(z <= 0):
        return -math.inf
    return float(-y.size * math.log(sigma) - (1 + 1 / gamma) * np.log(z).sum())


def fit_gpd(excesses: np.ndarray) -> tuple[float, float]:
    """(gamma, sigma) of the GPD that best fits positive ``excesses``, by Grimshaw's method.

    >>> y = np.random.default_rng(1).pareto(4.0, 20000)  # Lomax: GPD(gamma=1/4, sigma=1/4)
    >>> [round(v, 2) for v in fit_gpd(y)]
    [0.25, 0.25]
    """
    y = np.asarray(excesses, dtype=np.float64)
    mean = float(y.mean())
    if y.size < 2 or mean <= 0:
        raise ValueError(f"need at least 2 positive excesses, got {y.size} with mean {mean}")
    x = y / mean  # scale-free: theta * mean is what matters; sigma scales back by mean
    best = (0.0, 1.0, gpd_log_likelihood(x, 0.0, 1.0))
    for theta in _w_roots(x):
        gamma = float(np.log1p(theta * x).mean())
        if gamma == 0:
            continue
        likelihood = gpd_log_likelihood(x, gamma, gamma / theta)
        if likelihood > best[2]:
            best = (gamma, gamma / theta, likelihood)
    return float(best[0]), float(best[1] * mean)


def _w(x: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Grimshaw's w(theta) = u v - 1 for each theta (a column of thetas against the row x)."""
    s = 1 + theta[:, None] * x[None, :]
    return (1 + np.log(s).mean(1)) * (1 / s).mean(1) - 1


def _w_roots(x: np.ndarray) -> np.ndarray:
    """The non-zero roots of w, bracketed on a geometric grid and bisected in log |theta|."""
    low, high = float(x.min()), float(x.max())
    spread = 1 - low  # mean(x) = 1
    if spread <= 1e-12:  # equal excesses: only the exponential fit
        return np.zeros(0)
    # left: theta = -p / max with p in (0, 1), dense towards both ends; right: up to Grimshaw's
    # bound (the paper's code also bounds positive roots below, by 2 (mean - min) / (mean min),
    # but a heavy tail has its root under that: Lomax(4) samples put it 1e6 times lower)
    p = np.concatenate([np.geomspace(1e-8, 0.5, _GRID // 2), 1 - np.geomspace(0.5, 1e-8, _GRID // 2)[1:]])
    low = max(low, 1e-9)  # a peak just above t: keep the right bound finite
    grids = [-p / high, np.geomspace(1e-8 / high, 2 * spread / low**2, _GRID)]
    roots = []
    for grid in grids:
        values = _w(x, grid)
        cross = np.flatnonzero(np.sign(values[:-1]) * np.sign(values[1:]) < 0)
        if cross.size == 0:
            continue
        sign = np.sign(grid[0])
        lo, hi = np.log(np.abs(grid[cross])), np.log(np.abs(grid[cross + 1]))
        lo_value = values[cross]
        for _ in range(_BISECTIONS):
            mid = (lo + hi) / 2
            mid_value = _w(x, sign * np.exp(mid))
            same = np.sign(mid_value) == np.sign(lo_value)
            lo, lo_value, hi = np.where(same, mid, lo), np.where(same, mid_value, lo_value), np.where(same, hi, mid)
        roots.append(sign * np.exp((lo + hi) / 2))
    return np.concatenate(roots) if roots else np.zeros(0)
