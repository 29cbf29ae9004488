"""SPOT and DSPOT: per-stream thresholds from extreme value theory (Siffer et al., KDD 2017).

A stream's threshold z_q is the score exceeded with probability ``q`` (the target alert rate),
estimated from the stream's tail. The excesses of scores over a high initial threshold t (its
``level`` quantile) follow, asymptotically, a Generalised Pareto distribution GPD(gamma, sigma)
(Pickands-Balkema-de Haan), so

    z_q = t + sigma / gamma * ((q * n / N_t) ** -gamma - 1)      (t - sigma * log(q n / N_t) at gamma = 0)

with n the scores judged since calibration began and N_t those above t.

- Calibration: a stream raises nothing until it has ``calibration`` scores (DSPOT: ``depth``
  more first). Then t is their ``level`` quantile (the order statistic with
  floor(calibration * (1 - level)) of them above it), the excesses over t are the first
  peaks and the GPD is fitted. If fewer than ``MIN_PEAKS`` scores lie above t (ties: a flat
  stretch of a stream gives a run of equal scores), calibration goes on over the latest
  ``calibration`` scores and is tried again every ``RETRY_EVERY`` scores.
- Streaming (SPOT): every score after calibration counts in n; one above t is a peak. A score
  above z_q is an alert and enters the peaks *censored*: as "at least z_q", its size unused.
  So the fit sees how often the tail is passed, which keeps the realised alert rate near q on
  i.i.d. scores, while an anomaly's magnitude never widens the tail it is judged by. (The
  paper's code drops alerts altogether; the tail it then fits is cut at z_q, the fitted gamma
  falls, z_q with it, and on exponential scores the alert rate settles at 3-5 times q.) t stays
  fixed.
- Drift (DSPOT, ``depth`` > 0): every test above applies to the score less the mean of the
  stream's last ``depth`` learned scores, and the returned threshold is z_q plus that mean, so
  the threshold follows a drifting level. Alerts do not enter the moving window.
- Refit policy, bounded cost: the GPD is refitted after every ``refit_every`` new peaks, on the
  latest ``max_peaks`` peaks only (a ring); n and N_t keep counting the whole history, so
  N_t / n still estimates P(score > t). A refit costs O(max_peaks) per grid point and
  bisection step (below): about 1.5 ms at 1000 peaks, 0.4 ms at 50; with the defaults (level
  0.98, refit every 8 peaks) that is one refit per ~400 scores, ~6 us per score on average.
- Non-finite scores (NaN: the scorer's "no opinion yet") are neither judged (never anomalous)
  nor learned, and do not count towards calibration; they get the stream's current threshold.

The GPD is fitted by Grimshaw's method (Grimshaw 1993, as in the paper), extended to censored
peaks: with theta = gamma / sigma the likelihood's best gamma has a closed form,
gamma = (sum log(1 + theta y) + sum log(1 + theta c)) / m (y the m peaks, c the censored ones),
which leaves a one-dimensional profile likelihood in theta; its stationary points (without
censored peaks: the roots of Grimshaw's w = u v - 1) lie in (-1 / max Y, 0) and
(0, 2 (mean - min) / min^2). They are bracketed by sign changes of the profile's slope on a
fixed geometric grid over both intervals and refined by bisection: no random starts and no
general optimiser, so a replay gives the same thresholds bit for bit. The candidate of highest
likelihood wins, the exponential fit (gamma = 0) and the bounded-tail limit (gamma = -1)
included (see ``fit_gpd``).

>>> spot = SPOTThreshold(q=1e-3, calibration=500)
>>> rng = np.random.default_rng(0)
>>> verdicts = [spot.judge("node-1", s) for s in rng.exponential(size=20000)]
>>> round(verdicts[-1][0], 2)  # exp(1)'s 1 - 1e-3 quantile is log(1000) = 6.91
6.88
>>> spot.judge("node-1", 12.0)[1], spot.judge("node-2", 12.0)  # node-2 is still calibrating
(True, (inf, False))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from detectors.thresholds import judge_each

MIN_PEAKS = 10  # the fewest excesses a GPD is fitted to
RETRY_EVERY = 16  # scores between calibration attempts when too few scores lie above t
_GRID = 64  # grid points per root interval
_BISECTIONS = 24  # halvings of a bracket in log |theta|: theta to ~1e-7 relative, ample for z_q


@dataclass
class _Stream:
    """One stream's tail: calibration scores, then the peak ring and the fitted GPD."""

    calibration: np.ndarray  # ring of the latest relative scores, until calibrated
    peaks: np.ndarray  # ring of the latest excesses over t (empty until calibrated)
    censored: np.ndarray  # 1 where the peak was an alert: its excess is at least that
    recent: np.ndarray  # DSPOT: ring of the last `depth` learned raw scores
    learned: int = 0  # scores that entered the DSPOT window (all but alerts and non-finite ones)
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
                 max_peaks: int = 1000, refit_every: int = 8):
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

    def judge_many(self, stream_ids: Sequence[str], scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``judge`` of each score in order."""
        return judge_each(self, stream_ids, scores)

    def judge(self, stream_id: str, score: float) -> tuple[float, bool]:
        """(threshold, is the score above it) for this stream, then learn the score."""
        s = self.streams.get(stream_id)
        if s is None:
            s = self.streams[stream_id] = _Stream(np.zeros(self.calibration), np.zeros(0), np.zeros(0, np.uint8),
                                                  np.zeros(self.depth))
        score = float(score)
        ready = s.learned >= self.depth
        drift = float(s.recent.mean()) if self.depth and ready else 0.0
        threshold = s.z + drift if s.calibrated else math.inf
        if not math.isfinite(score):
            return threshold, False
        relative = score - drift
        if s.calibrated:
            alert = relative > s.z
            self._learn(s, s.z if alert else relative, censored=alert)
            if alert:
                return threshold, True
        elif ready:
            s.calibration[s.n % self.calibration] = relative
            s.n += 1
            if s.n >= self.calibration and (s.n - self.calibration) % RETRY_EVERY == 0:
                self._calibrate(s)
        if self.depth:
            s.recent[s.learned % self.depth] = score
        s.learned += 1
        return threshold, False

    def _learn(self, s: _Stream, relative: float, censored: bool) -> None:
        """Count a judged score in n, and in the peaks when it is above t."""
        s.n += 1
        if relative <= s.t:
            return
        slot = s.peak_count % self.max_peaks
        s.peaks[slot], s.censored[slot] = relative - s.t, censored
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
        s.peaks, s.censored = np.zeros(self.max_peaks), np.zeros(self.max_peaks, np.uint8)
        s.peaks[:kept.size] = kept
        s.peak_count = excesses.size
        if excesses.size > kept.size:  # ring order: the newest peak just before the next slot
            s.peaks = np.roll(s.peaks, s.peak_count % self.max_peaks)
        self._refit(s)

    def _refit(self, s: _Stream) -> None:
        held = slice(0, min(s.peak_count, self.max_peaks))
        peaks, censored = s.peaks[held], s.censored[held].astype(bool)
        if (~censored).sum() >= 2:  # else (alerts only, lately) keep the last fit
            s.gamma, s.sigma = fit_gpd(peaks[~censored], peaks[censored])
            tail = self.q * s.n / s.peak_count  # >= 1 once scores above t grow rarer than q: z = t
            s.z = s.t + max(0.0, gpd_excess_quantile(s.gamma, s.sigma, tail))
        s.since_refit = 0

    _COUNTERS = ("learned", "n", "peak_count", "since_refit", "calibrated", "t", "gamma", "sigma", "z")

    def config(self) -> dict:
        return dict(q=self.q, calibration=self.calibration, level=self.level, depth=self.depth,
                    max_peaks=self.max_peaks, refit_every=self.refit_every)

    def state_dict(self) -> dict:
        """Config and every stream's rings and counters: numpy arrays and JSON values."""
        return {"config": self.config(), "streams": {
            sid: {"calibration": s.calibration, "peaks": s.peaks, "censored": s.censored, "recent": s.recent,
                  **{name: getattr(s, name) for name in self._COUNTERS}}
            for sid, s in self.streams.items()}}

    def load_state_dict(self, state: dict) -> None:
        """Take the streams of a ``state_dict`` made with the same arguments."""
        if state.get("config") != self.config():
            raise ValueError(f"SPOT state was made with {state.get('config')}, this threshold has {self.config()}")
        self.streams = {sid: _Stream(*(np.array(h[name]) for name in ("calibration", "peaks", "censored", "recent")),
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


def gpd_log_likelihood(gamma: float, sigma: float, excesses: np.ndarray, censored: np.ndarray | None = None) -> float:
    """Log-likelihood of GPD(gamma, sigma) for ``excesses`` (densities) and ``censored``
    excesses (survival: known only to be at least that large); -inf outside the support.

    >>> round(gpd_log_likelihood(0.0, 2.0, np.array([1.0, 3.0]), np.array([2.0])), 4)  # exponential
    -4.3863
    """
    y = np.asarray(excesses, dtype=np.float64)
    c = np.zeros(0) if censored is None else np.asarray(censored, dtype=np.float64)
    if sigma <= 0:
        return -math.inf
    if gamma == 0:
        return float(-y.size * math.log(sigma) - (y.sum() + c.sum()) / sigma)
    with np.errstate(divide="ignore", invalid="ignore"):
        ly, lc = np.log1p(gamma / sigma * y), np.log1p(gamma / sigma * c)
    if np.isnan(ly).any() or np.isnan(lc).any():
        return -math.inf
    return float(-y.size * math.log(sigma) - (1 + 1 / gamma) * ly.sum() - lc.sum() / gamma)


def fit_gpd(excesses: np.ndarray, censored: np.ndarray | None = None) -> tuple[float, float]:
    """(gamma, sigma): the GPD of highest likelihood for positive ``excesses``, by Grimshaw's
    method; ``censored`` are excesses known only to be at least that large.

    The candidates are the profile likelihood's stationary points (Grimshaw's roots), the
    exponential fit (gamma = 0) and, for bounded tails, the uniform limit gamma = -1, sigma =
    the largest excess (below gamma = -1 the likelihood is unbounded, so no estimate goes there).

    >>> y = np.random.default_rng(1).pareto(4.0, 20000)  # Lomax: GPD(gamma=1/4, sigma=1/4)
    >>> [round(v, 2) for v in fit_gpd(y)]
    [0.25, 0.25]
    >>> cut = np.minimum(y, 1.0)  # the same sample, its largest 3% censored at 1.0
    >>> [round(v, 2) for v in fit_gpd(cut[y < 1.0], cut[y >= 1.0])]
    [0.25, 0.25]
    """
    y = np.asarray(excesses, dtype=np.float64)
    c = np.zeros(0) if censored is None else np.asarray(censored, dtype=np.float64)
    if y.size < 2 or y.min() <= 0 or (c.size and c.min() <= 0):
        raise ValueError(f"need at least 2 excesses, all positive; got {y.size}, smallest {y.min(initial=0.0)}")
    scale = (y.sum() + c.sum()) / y.size  # the exponential fit's sigma; the fit runs on y / scale
    y, c = y / scale, c / scale
    top = max(y.max(), c.max(initial=0.0)) * (1 + 1e-9)
    candidates = [(0.0, 1.0), (-1.0, top)]
    for theta in _stationary_points(y, c):
        gamma = (np.log1p(theta * y).sum() + np.log1p(theta * c).sum()) / y.size  # best at this theta
        if gamma != 0:
            candidates.append((float(gamma), float(gamma / theta)))
    gamma, sigma = max(candidates, key=lambda gs: gpd_log_likelihood(gs[0], gs[1], y, c))
    return gamma, sigma * float(scale)


def _profile_slope(y: np.ndarray, c: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """A positive multiple of d/dtheta of the profile log-likelihood, for each theta.

    With a = sum log(1 + theta y), b = sum log(1 + theta c) and m = len(y), the likelihood is
    highest over gamma at gamma = (a + b) / m, which leaves the profile
    -m log((a + b) / (m theta)) - a - m; its slope times theta (a + b) / m > 0 is what is
    returned. With nothing censored its roots are those of Grimshaw's w = u v - 1.
    """
    def sums(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = 1 + theta[:, None] * values[None, :]
        return np.log(s).sum(1), (values / s).sum(1)

    a, da = sums(y)
    b, db = sums(c)
    return (a + b) - theta * (da + db) - theta * da * (a + b) / y.size


def _stationary_points(y: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The non-zero stationary points of the profile likelihood in theta = gamma / sigma,
    bracketed on a geometric grid and bisected in log |theta| (data in units of its scale)."""
    low, high = float(y.min()), float(max(y.max(), c.max(initial=0.0)))
    if high - low <= 1e-12 * high:  # equal excesses: only the exponential fit
        return np.zeros(0)
    # left: theta = -p / max with p in (0, 1), dense towards both ends; right: up to Grimshaw's
    # bound 2 (mean - min) / min^2 (the paper's code also bounds positive roots from below, by
    # 2 (mean - min) / (mean min), but a heavy tail has its root far under that)
    p = np.concatenate([np.geomspace(1e-6, 0.5, _GRID // 2), 1 - np.geomspace(0.5, 1e-8, _GRID // 2)[1:]])
    top = 2 * max(1.0, high) / max(low, 1e-9) ** 2  # finite even for a peak just above t
    roots = []
    for grid in (-p / high, np.geomspace(1e-6 / high, top, _GRID)):
        values = _profile_slope(y, c, grid)
        cross = np.flatnonzero(np.sign(values[:-1]) * np.sign(values[1:]) < 0)
        if cross.size == 0:
            continue
        sign = np.sign(grid[0])
        lo, hi = np.log(np.abs(grid[cross])), np.log(np.abs(grid[cross + 1]))
        lo_value = values[cross]
        for _ in range(_BISECTIONS):
            mid = (lo + hi) / 2
            mid_value = _profile_slope(y, c, sign * np.exp(mid))
            same = np.sign(mid_value) == np.sign(lo_value)
            lo, lo_value, hi = np.where(same, mid, lo), np.where(same, mid_value, lo_value), np.where(same, hi, mid)
        roots.append(sign * np.exp((lo + hi) / 2))
    return np.concatenate(roots) if roots else np.zeros(0)
