"""Alerts: one record per anomalous interval, with an id that a replay reproduces.

Consecutive anomalous readings of a stream merge into one interval. An interval opens once
``min_run`` anomalous readings come in a row (isolated outliers of noisy sensors raise
nothing) and closes after ``quiet_readings`` normal readings in a row. An alert is published when its interval opens
(status ``open``, so it arrives within one poll of the anomaly) and again when it closes
(status ``closed``, with its final end and peak score). Both carry the same id,
``sha1(stream | detector | start)``, and the id is the Kafka key, so the alerts topic can be
compacted to the final state of each alert.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace

from detectors.base import Verdict


def alert_id(source: str, detector: str, start: float) -> str:
    """The deterministic id of the alert that starts at ``start``."""
    return hashlib.sha1(f"{source}|{detector}|{start!r}".encode()).hexdigest()[:20]


@dataclass
class Alert:
    id: str
    source: str
    modality: str
    start: float
    end: float
    score: float
    threshold: float
    detector: str
    status: str
    explanation: dict = field(default_factory=dict)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    def describe(self) -> str:
        """One human-readable line."""
        from datetime import datetime, timezone

        when = datetime.fromtimestamp(self.start, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        what = ", ".join(f"{k}={_short(v)}" for k, v in self.explanation.items())
        span = f"{self.end - self.start:.0f}s" if self.status == "closed" else "ongoing"
        return (f"[{self.status:6}] {self.source} at {when} UTC ({span}) score {self.score:.3f} > "
                f"{self.threshold:.3f} [{what}] id={self.id}")

    @classmethod
    def from_json(cls, raw: bytes) -> "Alert":
        return cls(**json.loads(raw))


def _short(value: object) -> str:
    """A dict (e.g. deviations by channel) as its first three items, anything else as is."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {v}" for k, v in list(value.items())[:3]) + (", ...}" if len(value) > 3 else "}")
    return str(value)


@dataclass
class _Interval:
    alert: Alert
    run: int = 1
    quiet: int = 0
    opened: bool = False


class AlertTracker:
    """Turns a stream of verdicts into opened and closed alerts."""

    def __init__(self, detector: str, min_run: int = 2, quiet_readings: int = 5, modality: str = "series"):
        self.detector = detector
        self.min_run = min_run
        self.quiet_readings = quiet_readings
        self.modality = modality
        self.intervals: dict[str, _Interval] = {}

    def state_dict(self) -> dict:
        return {"intervals": {source: {"alert": asdict(i.alert), "run": i.run, "quiet": i.quiet, "opened": i.opened}
                              for source, i in self.intervals.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.intervals = {source: _Interval(Alert(**i["alert"]), i["run"], i["quiet"], i["opened"])
                          for source, i in state["intervals"].items()}

    def observe(self, source: str, ts: float, verdict: Verdict) -> Alert | None:
        """The alert to publish after this verdict (a newly opened or a closed one), or None.

        The interval covers ``ts``, or the verdict's ``span`` where it has one (a clip's odd frames).
        """
        current = self.intervals.get(source)
        if verdict.anomalous:
            start, end = verdict.span or (ts, ts)
            if current is None:
                current = self.intervals[source] = _Interval(Alert(
                    id=alert_id(source, self.detector, start), source=source, modality=self.modality,
                    start=start, end=end, score=verdict.score, threshold=verdict.threshold,
                    detector=self.detector, status="open", explanation=verdict.explanation,
                ))
            else:
                current.run += 1
                current.quiet = 0
                current.alert.end = end
                if verdict.score > current.alert.score:
                    current.alert.score = verdict.score
                    current.alert.threshold = verdict.threshold
                    current.alert.explanation = verdict.explanation
            if not current.opened and current.run >= self.min_run:
                current.opened = True
                return replace(current.alert)
            return None
        if current is None:
            return None
        if not current.opened:
            del self.intervals[source]
            return None
        current.quiet += 1
        if current.quiet < self.quiet_readings:
            return None
        del self.intervals[source]
        return replace(current.alert, status="closed")
