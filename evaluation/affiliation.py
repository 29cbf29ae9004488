"""Affiliation precision and recall (Huet, Navarro and Rossi, KDD 2022).

"Local Evaluation of Time Series Anomaly Detection Algorithms".

Point ``i`` of a series stands for the time interval ``[i, i + 1)``. The series ``[0, n)`` is
cut into one affiliation zone per labelled event ``J`` (borders half-way between neighbouring
events); each zone is scored alone and the zones are averaged:

- precision of zone ``E``: the mean, over the predicted time ``x`` that falls in ``E``, of
  ``P(dist(X, J) >= dist(x, J))`` for ``X`` uniform on ``E``: how unusually close to the event
  the predictions are. A zone without prediction has no precision and is left out of the mean.
- recall of zone ``E``: the mean, over ``y`` in ``J``, of ``P(|X - y| >= dist(y, predictions in E))``
  for ``X`` uniform on ``E``: how unusually close the nearest prediction comes to each labelled
  moment. A zone without prediction has recall 0.

The integrals have closed forms (piecewise quadratic in the distance), so a call costs
O(events + predicted ranges). The numbers equal the authors' ``affiliation`` package as TSB-AD
ships it (fixtures in ``tests/fixtures/vus``). Precision is NaN when nothing is predicted (as
there), and both are NaN without a labelled event.

>>> y_true = [0, 0, 0, 0, 1, 1, 0, 0, 0, 0]
>>> affiliation(y_true, y_true)
Affiliation(precision=1.0, recall=1.0)
>>> # one step late: precision (8 - 2 * 1.5) / 10, recall 1 - 2 * 2 / 10 (tests/test_evaluation_metrics.py)
>>> affiliation(y_true, [0, 0, 0, 0, 0, 0, 0, 1, 0, 0])
Affiliation(precision=0.5, recall=0.6)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from evaluation._pate_weights import Events
from evaluation._validate import as_binary, labels_and


class Affiliation(NamedTuple):
    """Affiliation precision and recall."""

    precision: float
    recall: float


def affiliation(y_true: ArrayLike, y_pred: ArrayLike) -> Affiliation:
    """Affiliation precision and recall of 0/1 predictions against 0/1 labels."""
    labels, predicted = labels_and(y_true, y_pred, "y_pred", as_binary)
    truth, guesses = Events.from_labels(labels), Events.from_labels(predicted)
    if truth.starts.size == 0:
        return Affiliation(float("nan"), float("nan"))
    j_start, j_end = truth.starts.astype(float), truth.ends + 1.0
    g_start, g_end = guesses.starts.astype(float), guesses.ends + 1.0
    middles = (j_end[:-1] + j_start[1:]) / 2
    zone_start = np.concatenate(([0.0], middles))
    zone_end = np.concatenate((middles, [float(labels.size)]))
    precisions, recalls = [], []
    for k in range(j_start.size):
        zone = (zone_start[k], zone_end[k])
        event = (j_start[k], j_end[k])
        lo = np.searchsorted(g_end, zone[0], side="right")
        hi = np.searchsorted(g_start, zone[1], side="left")
        pieces = [(max(a, zone[0]), min(b, zone[1])) for a, b in zip(g_start[lo:hi], g_end[lo:hi])]
        pieces = [(a, b) for a, b in pieces if b > a]
        if pieces:
            precisions.append(sum(_precision_mass(piece, event, zone) for piece in pieces)
                              / sum(b - a for a, b in pieces))
        recalls.append(_recall_mass(pieces, event, zone) / (event[1] - event[0]))
    precision = float(np.mean(precisions)) if precisions else float("nan")
    return Affiliation(precision, float(np.mean(recalls)))


def _precision_mass(piece: tuple[float, float], event: tuple[float, float], zone: tuple[float, float]) -> float:
    """Integral over ``piece`` of P(dist(X, event) >= dist(x, event)), X uniform on ``zone``."""
    (a, b), (s, e), (zs, ze) = piece, event, zone
    room_left, room_right, width = s - zs, ze - e, ze - zs

    def survival_integral(near: float, far: float) -> float:  # over distances near..far (> 0)
        return (_ramp_integral(room_left, near, far) + _ramp_integral(room_right, near, far)) / width

    mass = max(0.0, min(b, e) - max(a, s))  # inside the event: probability 1
    if a < s:
        mass += survival_integral(s - min(b, s), s - a)
    if b > e:
        mass += survival_integral(max(a, e) - e, b - e)
    return mass


def _ramp_integral(room: float, near: float, far: float) -> float:
    """Integral of max(0, room - d) for d from ``near`` to ``far``."""

    def antiderivative(d: float) -> float:
        d = min(d, room)
        return room * d - d * d / 2

    return antiderivative(far) - antiderivative(near)


def _recall_mass(pieces: list[tuple[float, float]], event: tuple[float, float], zone: tuple[float, float]) -> float:
    """Integral over ``event`` of P(|X - y| >= dist(y, pieces)), X uniform on ``zone`` (0 without pieces)."""
    (s, e), (zs, ze) = event, zone
    width = ze - zs
    mass = 0.0
    borders = [zs] + [(pieces[i][1] + pieces[i + 1][0]) / 2 for i in range(len(pieces) - 1)] + [ze]
    for (a, b), near_from, near_to in zip(pieces, borders[:-1], borders[1:]):
        lo, hi = max(s, near_from), min(e, near_to)  # the part of the event nearest this piece
        if hi <= lo:
            continue
        mass += max(0.0, min(hi, b) - max(lo, a))
        if lo < a:  # before the piece: distance a - y, the ball reaches back to 2y - a
            mass += _ball_integral(a - min(hi, a), a - lo, a - zs, width)
        if hi > b:  # after the piece: distance y - b
            mass += _ball_integral(max(lo, b) - b, hi - b, ze - b, width)
    return mass


def _ball_integral(near: float, far: float, room: float, width: float) -> float:
    """Integral of 1 - min(2 t, room) / width for t from ``near`` to ``far``."""

    def antiderivative(t: float) -> float:
        return t * t if 2 * t <= room else room * t - room * room / 4

    return (far - near) - (antiderivative(far) - antiderivative(near)) / width
