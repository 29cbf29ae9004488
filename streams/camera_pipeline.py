"""The camera pipeline: clip records in, decoded clips judged per camera, camera alerts out.

A :class:`CameraProcessor` handles one partition's clip records for a
:class:`~streams.worker.PartitionedWorker` (delivery, checkpoints). Each record is parsed
(:mod:`streams.clip_records`: inline bytes, or a URI read only under the allowed roots and
hosts), and the clips of a poll are decoded together by the ``start_decoding`` function it is
handed (child processes side by side), while the worker judges the poll before it. Every
refusal — a bad record, a URI outside the policy, a clip the decoder rejects or crashes on —
is a RecordError, so the clip goes to the dead-letter topic with its reason and the consumer
carries on. The good clips of a poll are judged in one detector
call (one encoder batch per frame shape), in offset order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from streams.alerts import AlertTracker
from streams.clip_records import ClipPolicy, parse_clip_message, read_clip
from streams.records import RecordError
from streams.worker import Outbox


@dataclass(frozen=True)
class CameraSettings:
    policy: ClipPolicy = field(default_factory=ClipPolicy)
    min_run: int = 1  # anomalous clips in a row before an alert opens
    quiet_clips: int = 1  # normal clips in a row that close it


@dataclass
class CameraState:
    """A partition's camera detector and open alerts."""

    detector: Any
    tracker: AlertTracker

    def state_dict(self) -> dict:
        return {"detector": self.detector.state_dict(), "tracker": self.tracker.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.detector.load_state_dict(state["detector"])
        self.tracker.load_state_dict(state["tracker"])


@dataclass
class PreparedClips:
    """A poll's records parsed and read, their decoding under way (``CameraProcessor.prepare``)."""

    outcomes: list  # per record: its clip record, or the RecordError that refuses it
    readable: list[int]  # the records whose clips are decoding, in order
    decoded: Callable[[], list]  # waits for their decoded clips (or RecordErrors)


class CameraProcessor:
    """Clip records -> decoded clips -> verdicts -> camera alerts (see the module doc).

    ``start_decoding(list of clip bytes)`` starts decoding and returns at once; what it returns
    waits for, and gives, each clip's sampled frames with their frame numbers and times (a
    :class:`video.decode.DecodedClip`) or a RecordError with the decoder's reason.

    ``prepare`` does a poll's work that needs no camera state (parsing, reading, decoding),
    so the worker can start it for the next poll while this one is judged; ``process`` judges
    and publishes, in offset order.
    """

    def __init__(self, settings: CameraSettings, start_decoding: Callable[[list[bytes]], Callable[[], list]],
                 detector_factory: Callable[[], Any], outbox: Outbox):
        self.settings = settings
        self.start_decoding = start_decoding
        self.detector_factory = detector_factory
        self.outbox = outbox

    def new_state(self) -> CameraState:
        detector = self.detector_factory()
        tracker = AlertTracker(detector.name, self.settings.min_run, self.settings.quiet_clips, modality="video")
        return CameraState(detector, tracker)

    def prepare(self, records: list) -> PreparedClips:
        """Parse and read the records and start decoding their clips; publishes nothing."""
        policy = self.settings.policy
        outcomes: list = []
        for record in records:
            try:
                outcomes.append(parse_clip_message(record.key, record.value, record.headers, policy))
            except RecordError as exc:
                outcomes.append(exc)
        readable, data = [], []
        for i, clip in enumerate(outcomes):
            if not isinstance(clip, RecordError):
                try:
                    data.append(clip.data if clip.uri is None else read_clip(clip, policy))
                    readable.append(i)
                except RecordError as exc:
                    outcomes[i] = exc
        return PreparedClips(outcomes, readable, self.start_decoding(data))

    def process(self, state: CameraState, records: list, prepared: PreparedClips | None = None) -> None:
        """Judge the records (``prepared`` by ``prepare`` from these records, or here and now)."""
        prepared = prepared or self.prepare(records)
        outcomes = prepared.outcomes
        decoded = dict(zip(prepared.readable, prepared.decoded()))
        cameras, starts, clips = [], [], []
        for i, record in enumerate(records):  # dead letters and clips in offset order
            problem = outcomes[i] if isinstance(outcomes[i], RecordError) else decoded[i]
            if isinstance(problem, RecordError):
                self.outbox.dead_letter(record, record.value, problem)
                continue
            cameras.append(outcomes[i].camera)
            starts.append(outcomes[i].start)
            clips.append(decoded[i])
        self.outbox.counters.readings += len(clips)
        if not clips:
            return
        for camera, start, verdict in zip(cameras, starts, state.detector.judge(cameras, starts, clips)):
            alert = state.tracker.observe(camera, start, verdict)
            if alert is not None:
                self.outbox.alert(alert)
        self.outbox.counters.scored += len(clips)
