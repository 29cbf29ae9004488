"""A mixture of expert scorers (GS-MoE-inspired): normalised expert scores, combined by a gate.

Each expert (half-space trees, LOF, self-similarity, ...) scores the same vectors, except one
whose class says ``reads = "windows"`` (the level expert, :mod:`detectors.level`): it scores the
raw windows the vectors were embedded from, which the caller passes as ``windows``. An expert
whose scores are ratio-like (its class says ``score_scale = "log"``: LOF, a density ratio, and
self-similarity, a dissimilarity near 0) is read as the log of its scores (floored at
``LOG_FLOOR``), so that one huge score, a LOF of 1e8 over duplicates say, does not swamp its
spread for good. On NAB that lifted the raw-window mixture from VUS-PR / PATE / AUC-PR 0.268 /
0.265 / 0.241 to 0.280 / 0.274 / 0.250 and the window-stats one from 0.195 / 0.183 / 0.164 to
0.198 / 0.185 / 0.165 (README, Measured). Then its scores are
put on one scale by a running normalisation per expert: the z-score against the mean and
standard deviation of all the expert's earlier finite scores (Welford), computed so that a batch
gives the same values as its rows one at a time. An expert's NaN ("no opinion yet", e.g. a LOF
memory still warming up) is skipped: it neither counts nor moves the mean, and its z is NaN. A
z is NaN too until there are ``min_history`` earlier finite scores (``MIN_HISTORY``, 300, by
default: a threshold's warm-up). A z-score against a short history comes out inflated, and
those early scores then outrank real anomalies: on NAB, the window-stats mixture's VUS-PR /
PATE / AUC-PR were 0.180 / 0.166 / 0.149 waiting for 30 scores and 0.193 / 0.181 / 0.163 waiting
for 300 (30, 100, 300 and 500 were tried, before the log scale, with warm-up zeros then in place
of NaN).

The gate turns the E normalised scores of a row into one score:

- unsupervised (no gate trained): top-2 routing, as sparse mixtures route: the mean of the two
  highest normalised scores among the experts that have an opinion (of the one, where only one
  has). An anomaly that two experts see clearly is not averaged away by the others. On NAB
  (README, Measured) it beat the plain mean on VUS-PR, PATE, AUC-PR and NAB with SPOT alerts for
  both mixtures, and on NAB standard for the raw-window one (42.2 against 40.1; the
  window-stats one fell from 41.3 to 40.6); the largest score alone ranked about as well but
  raised more false alerts on the synthetic cluster;
- trained (:meth:`MixtureOfExperts.fit_gate`, from labelled windows): a small torch network
  that reads the normalised scores (a NaN as 0) and the embedding and gives softmax weights over
  the experts; the score is the weighted sum. It is trained with a logistic loss on
  ``scale * score + bias`` against the labels, and saved with the rest of the state.

An expert whose class says ``score_scale = "event"`` (the novelty expert,
:mod:`detectors.novelty`) does not grade windows: it scores 1.0 where something happened that
never had before, else 0.0. Its scores are not z-scored (a z-score of rare ones is huge and
shifts with their rate), and the unsupervised gate leaves it out of the top-2 average: a window
where it fires scores ``EVENT_SCORE`` (100, far above any z the thresholds alert at) plus the
graded score (at least 0), so every event alerts and events rank among themselves by what the
other experts see. On NAB, with the simpler novelty expert of before, that took the raw-window
mixture from NAB standard 53.7, alerts 59.7, SPOT 45.6 (the expert z-scored and in the top 2)
to 56.1, 60.2 and 47.9, and with NAB's file ranges from 60.0 to 67.5, above the expert alone
(67.0); with the context-memory expert and the file ranges it scores 70.04 (README).

Either way a row on which no expert has an opinion scores NaN.

>>> rng = np.random.default_rng(0)
>>> class Noise:
...     def score_and_learn(self, vectors, keys=None): return rng.normal(size=len(vectors))
...     def state_dict(self): return {}
...     def load_state_dict(self, state): pass
>>> class Norm:
...     def score_and_learn(self, vectors, keys=None): return np.linalg.norm(np.asarray(vectors), axis=1)
...     def state_dict(self): return {}
...     def load_state_dict(self, state): pass
>>> moe = MixtureOfExperts({"noise": Noise(), "norm": Norm()})
>>> scores = moe.score_and_learn(np.vstack([rng.normal(size=(400, 3)), [[9.0, 9.0, 9.0]]]))
>>> int(np.isnan(scores).sum()), int(np.nanargmax(scores))  # no opinion before 300 scores of an expert
(300, 400)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from detectors.memory import load_state, save_state

_EPS = 1e-6  # the spread under which an expert's scores count as rounding noise (scores are ~0.01-10)
_ROUNDING = 1e-9  # a deviation from the running mean this small, relative to the mean, is rounding: z = 0
MIN_HISTORY = 300  # earlier finite scores an expert needs before its z-scores count (a threshold's warm-up)
LOG_FLOOR = 1e-6  # log-scaled scores below this are rounding noise (about float32's step near 1)
TOP_K = 2  # the unsupervised gate averages this many of the highest normalised scores
EVENT_SCORE = 100.0  # added to the graded score where an event expert fires (see the module doc)


def reads_windows(expert: object) -> bool:
    """Whether this expert scores raw windows (B, C, L) rather than embeddings."""
    return getattr(expert, "reads", "vectors") == "windows"


def raises_events(expert: object) -> bool:
    """Whether this expert's scores are events, 1.0 or 0.0, read as they are (see the module doc)."""
    return getattr(expert, "score_scale", "linear") == "event"


def log_scaled(expert: object) -> bool:
    """Whether the mixture reads this expert's scores on a log scale (see the module doc)."""
    return getattr(expert, "score_scale", "linear") == "log"


class RunningNormaliser:
    """z-scores of each column against the mean and std of that column's earlier finite values;
    a NaN is skipped (its z is NaN), and so is a z with fewer than ``min_history`` values before it.
    A value within rounding (``_ROUNDING``, relative) of the running mean has z = 0, so a constant
    column gives exact zeros, not noise.

    >>> norm = RunningNormaliser(2, min_history=2)
    >>> norm(np.array([[1.0, np.nan], [3.0, 5.0], [np.nan, 7.0], [8.0, 9.0]])).round(2).tolist()
    [[nan, nan], [nan, nan], [nan, nan], [4.24, 2.12]]
    """

    def __init__(self, width: int, min_history: int = MIN_HISTORY):
        self.min_history = min_history
        self.count = np.zeros(width, dtype=np.int64)  # finite values seen, per column
        self.mean = np.zeros(width)
        self.m2 = np.zeros(width)  # sum of squared deviations (Welford)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Normalise the rows of x in order (each against the rows before it), then learn them."""
        finite = ~np.isnan(x)
        n = self.count + np.cumsum(finite, axis=0)  # finite values including each row
        total = self.mean * self.count + np.cumsum(np.where(finite, x, 0.0), axis=0)
        mean_after = total / np.maximum(n, 1)
        # the mean and variance before each row: shift the running values by one row
        mean_before = np.vstack([self.mean, mean_after[:-1]])
        deviations = x - mean_before
        m2_after = self.m2 + np.cumsum(np.where(finite, deviations * (x - mean_after), 0.0), axis=0)
        m2_before = np.vstack([self.m2, m2_after[:-1]])
        count_before = n - finite
        std_before = np.sqrt(m2_before / np.maximum(count_before - 1, 1))
        # a constant expert (a flat stream) deviates from its running mean by rounding alone, and
        # z-scoring that noise would hand the thresholds a distribution to alert on
        rounding = np.abs(deviations) <= _ROUNDING * np.maximum(1.0, np.abs(mean_before))
        z = np.where(rounding, 0.0, deviations / np.maximum(std_before, _EPS))
        z = np.where(finite & (count_before >= self.min_history), z, np.nan)
        self.count, self.mean, self.m2 = n[-1], mean_after[-1], m2_after[-1]
        return z

    def state_dict(self) -> dict:
        return {"count": self.count, "mean": self.mean, "m2": self.m2}

    def load_state_dict(self, state: dict) -> None:
        # a state from before NaN scores were skipped holds one count for every column
        self.count = np.broadcast_to(np.asarray(state["count"], dtype=np.int64), self.mean.shape).copy()
        self.mean, self.m2 = state["mean"].copy(), state["m2"].copy()


class Gate(nn.Module):
    """Softmax weights over E experts from their normalised scores and the embedding."""

    def __init__(self, experts: int, embedding: int, hidden: int = 32):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(experts + embedding, hidden), nn.ReLU(), nn.Linear(hidden, experts))
        self.scale = nn.Parameter(torch.ones(()))
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, z: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(self.net(torch.cat([z, embedding], dim=1)), dim=1)
        return (weights * z).sum(dim=1)


class MixtureOfExperts:
    """Scorers combined by an unsupervised or a trained gate; see the module doc."""

    def __init__(self, experts: Mapping[str, object], min_history: int = MIN_HISTORY):
        if not experts:
            raise ValueError("a mixture needs at least one expert")
        self.experts = dict(experts)
        self.normaliser = RunningNormaliser(len(self.experts), min_history)
        self.log_columns = np.array([log_scaled(e) for e in self.experts.values()])
        self.event_columns = np.array([raises_events(e) for e in self.experts.values()])
        self.gate: Gate | None = None

    @property
    def needs_windows(self) -> bool:
        """Whether some expert scores the raw windows (pass them as ``windows``)."""
        return any(reads_windows(e) for e in self.experts.values())

    def expert_scores(self, vectors: torch.Tensor | np.ndarray, keys: Sequence[str] | None = None,
                      windows: torch.Tensor | np.ndarray | None = None) -> np.ndarray:
        """(B, E) normalised scores of every expert (an event expert's as they are), each expert
        scoring then learning the rows; ``windows``: the raw windows (B, C, L) of the vectors,
        for experts that read them."""
        if windows is None and self.needs_windows:
            raise ValueError("this mixture has an expert that scores raw windows: pass windows=")
        raw = np.column_stack([np.asarray(e.score_and_learn(windows if reads_windows(e) else vectors, keys),
                                          dtype=np.float64) for e in self.experts.values()])
        logs = self.log_columns
        if logs.any():
            raw[:, logs] = np.log(np.maximum(raw[:, logs], LOG_FLOOR))  # NaN stays NaN
        z = self.normaliser(raw)
        events = self.event_columns
        z[:, events] = raw[:, events]
        return z

    def score_and_learn(self, vectors: torch.Tensor | np.ndarray, keys: Sequence[str] | None = None,
                        windows: torch.Tensor | np.ndarray | None = None) -> np.ndarray:
        """The gate's score of each row (NaN where no expert has an opinion yet), then learned."""
        z = self.expert_scores(vectors, keys, windows)
        opinions = (~np.isnan(z)).sum(axis=1)
        if self.gate is None:
            events = self.event_columns
            combined = _top_mean(z[:, ~events], TOP_K)
            fired = (z[:, events] > 0).any(axis=1)  # NaN (no opinion) is no event
            combined = np.where(fired, EVENT_SCORE + np.fmax(combined, 0.0), combined)
        else:
            with torch.no_grad():
                combined = self.gate(_gate_input(z), _as_tensor(vectors)).double().numpy()
        return np.where(opinions > 0, combined, np.nan)

    def fit_gate(self, z: np.ndarray, vectors: torch.Tensor | np.ndarray, labels: np.ndarray,
                 epochs: int = 200, lr: float = 0.01, seed: int = 0) -> list[float]:
        """Train the gate on (B, E) normalised expert scores, their vectors and 0/1 labels.

        Rows on which no expert has an opinion (all NaN) are left out. Positives are weighted up
        to balance the classes. Returns the loss per epoch.
        """
        labels = np.asarray(labels, dtype=np.float32)
        if z.ndim != 2 or z.shape[1] != len(self.experts) or len(labels) != len(z):
            raise ValueError(f"need z of shape (B, {len(self.experts)}) and B labels, got {z.shape} and {len(labels)}")
        opinion = has_opinion(z)
        z, labels, x = z[opinion], labels[opinion], _as_tensor(vectors)[torch.from_numpy(opinion)]
        if not 0 < labels.sum() < len(labels):
            raise ValueError("the labels need both normal (0) and anomalous (1) windows with an expert's opinion")
        torch.manual_seed(seed)
        gate = Gate(z.shape[1], x.shape[1])
        optimiser = torch.optim.Adam(gate.parameters(), lr=lr)
        target = torch.from_numpy(labels)
        balance = torch.tensor((len(labels) - labels.sum()) / labels.sum())
        z_t = _gate_input(z)
        losses = []
        for _ in range(epochs):
            optimiser.zero_grad()
            logits = gate.scale * gate(z_t, x) + gate.bias
            loss = nn.functional.binary_cross_entropy_with_logits(logits, target, pos_weight=balance)
            loss.backward()
            optimiser.step()
            losses.append(float(loss.detach()))
        self.gate = gate.eval()
        return losses

    def save_gate(self, path: str | Path) -> None:
        """The trained gate alone, as one safetensors file (to ship to every worker)."""
        if self.gate is None:
            raise ValueError("no gate has been trained (fit_gate) yet")
        meta = {"experts": list(self.experts), "scales": self._scales(),
                "shape": [self.gate.net[0].in_features, self.gate.net[0].out_features]}
        save_state(path, dict(self.gate.state_dict()), meta)

    def load_gate(self, path: str | Path) -> None:
        """A gate saved by :meth:`save_gate` for a mixture of the same experts, read on the same
        scales (a gate file without scales is from before the log scale: all linear)."""
        tensors, meta = load_state(path)
        if meta.get("experts") != list(self.experts):
            raise ValueError(f"{path} is a gate for experts {meta.get('experts')}, not {list(self.experts)}")
        scales = meta.get("scales", ["linear"] * len(self.experts))
        if scales != self._scales():
            raise ValueError(f"{path} was trained on expert scores read on scales {scales}, and this mixture "
                             f"reads them on {self._scales()}: train the gate again (argus train-gate)")
        inputs, hidden = meta["shape"]
        gate = Gate(len(self.experts), inputs - len(self.experts), hidden)
        gate.load_state_dict(tensors)
        self.gate = gate.eval()

    def state_dict(self) -> dict:
        gate = None
        if self.gate is not None:
            gate = {"shape": [self.gate.net[0].in_features, self.gate.net[0].out_features],
                    "parameters": {k: v.detach().numpy().copy() for k, v in self.gate.state_dict().items()}}
        return {"experts": {name: e.state_dict() for name, e in self.experts.items()},
                "normaliser": self.normaliser.state_dict(), "scales": self._scales(), "gate": gate}

    def load_state_dict(self, state: dict) -> None:
        """Restore a saved state. An expert the state lacks (added since, e.g. the level expert)
        starts fresh, and then so does the normalisation (as for a state from before the log
        scale, whose means and spreads are linear); the state's gate is then not restored, and a
        gate loaded from the config stays."""
        for name, expert in self.experts.items():
            if name in state["experts"]:
                expert.load_state_dict(state["experts"][name])
        same = list(state["experts"]) == list(self.experts)
        self.normaliser = RunningNormaliser(len(self.experts), self.normaliser.min_history)
        if same and state.get("scales", ["linear"] * len(self.experts)) == self._scales():
            self.normaliser.load_state_dict(state["normaliser"])
        if not same:  # the gate loaded from the config, if any, stays
            return
        self.gate = None
        if state["gate"] is not None:
            inputs, hidden = state["gate"]["shape"]
            gate = Gate(len(self.experts), inputs - len(self.experts), hidden)
            gate.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state["gate"]["parameters"].items()})
            self.gate = gate.eval()

    def _scales(self) -> list[str]:
        """How the mixture reads each expert's scores: "log", "linear" or "event"."""
        return ["event" if event else "log" if log else "linear"
                for log, event in zip(self.log_columns.tolist(), self.event_columns.tolist())]


def _top_mean(z: np.ndarray, k: int) -> np.ndarray:
    """(B,) mean of each row's k highest finite values (fewer where fewer are finite; NaN for none).

    >>> _top_mean(np.array([[1.0, 5.0, 3.0], [np.nan, 2.0, np.nan], [np.nan, np.nan, np.nan]]), 2).tolist()
    [4.0, 2.0, nan]
    """
    ranked = -np.sort(-np.where(np.isnan(z), -np.inf, z), axis=1)[:, :k]  # highest first, NaN last
    finite = np.isfinite(ranked)
    with np.errstate(invalid="ignore"):
        return np.where(finite, ranked, 0.0).sum(axis=1) / finite.sum(axis=1)


def has_opinion(z: np.ndarray) -> np.ndarray:
    """(B,) whether some expert has an opinion (a finite normalised score) on each row of z."""
    return ~np.isnan(z).all(axis=1)


def _gate_input(z: np.ndarray) -> torch.Tensor:
    """Normalised scores as the gate reads them: an expert without an opinion (NaN) as 0."""
    return torch.from_numpy(np.nan_to_num(z, nan=0.0)).float()


def _as_tensor(vectors: torch.Tensor | np.ndarray) -> torch.Tensor:
    if isinstance(vectors, torch.Tensor):
        return vectors.detach().to("cpu", torch.float32)
    return torch.from_numpy(np.asarray(vectors, dtype=np.float32))
