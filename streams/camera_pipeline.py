"""The camera pipeline: clip records in, decoded clips judged per camera, camera alerts out.

A :class:`CameraProcessor` handles one partition's clip records for a
:class:`~streams.worker.PartitionedWorker` (delivery, checkpoints). Each record is parsed
(:mod:`streams.clip_records`: inline bytes, or a URI read only under the allowed roots and
hosts), and the clips of a poll are decoded together by the ``decode_all`` function it is handed
(child processes side by side). Every refusal — a bad record, a URI outside the policy, a clip
the decoder rejects or crashes on — is a RecordError, so the clip goes to the dead-letter topic
with its reason and the consumer carries on.

A poll is handled in slices of ``decode_batch`` records, decoded one slice ahead: while the
detector judges a slice (one encoder batch per frame shape, in offset order), the decoders are
already at work on the next, so decoding (CPU) and judging (GPU, or the other core) overlap.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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
    decode_batch: int = 16  # records decoded together, one slice ahead of the judging


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


class CameraProcessor:
    """Clip records -> decoded clips -> verdicts -> camera alerts (see the module doc).

    ``decode_all(list of clip bytes)`` returns, for each clip, its sampled frames with their
    frame numbers and times (a :class:`video.decode.DecodedClip`) or a RecordError with the
    decoder's reason.
    """

    def __init__(self, settings: CameraSettings, decode_all: Callable[[list[bytes]], list],
                 detector_factory: Callable[[], Any], outbox: Outbox):
        self.settings = settings
        self.decode_all = decode_all
        self.detector_factory = detector_factory
        self.outbox = outbox
        self.ahead = ThreadPoolExecutor(1, thread_name_prefix="clip-read")  # the next slice's decoding

    def new_state(self) -> CameraState:
        detector = self.detector_factory()
        tracker = AlertTracker(detector.name, self.settings.min_run, self.settings.quiet_clips, modality="video")
        return CameraState(detector, tracker)

    def process(self, state: CameraState, records: list) -> None:
        size = max(1, self.settings.decode_batch)
        slices = [records[i:i + size] for i in range(0, len(records), size)]
        pending = self.ahead.submit(self._read_and_decode, slices[0]) if slices else None
        for number, piece in enumerate(slices):
            outcomes = pending.result()
            if number + 1 < len(slices):
                pending = self.ahead.submit(self._read_and_decode, slices[number + 1])
            self._judge(state, piece, outcomes)

    def _read_and_decode(self, records: list) -> list:
        """Per record, (clip record, decoded clip) or the RecordError that refuses it."""
        policy = self.settings.policy
        outcomes: list = []
        for record in records:
            try:
                outcomes.append(parse_clip_message(record.key, record.value, record.headers, policy))
            except RecordError as exc:
                outcomes.append(exc)
        readable = []
        for i, clip in enumerate(outcomes):
            if not isinstance(clip, RecordError):
                try:
                    readable.append((i, clip.data if clip.uri is None else read_clip(clip, policy)))
                except RecordError as exc:
                    outcomes[i] = exc
        for (i, _), decoded in zip(readable, self.decode_all([data for _, data in readable])):
            outcomes[i] = decoded if isinstance(decoded, RecordError) else (outcomes[i], decoded)
        return outcomes

    def _judge(self, state: CameraState, records: list, outcomes: list) -> None:
        """Dead letters and verdicts of a slice, in offset order."""
        cameras, starts, clips = [], [], []
        for record, outcome in zip(records, outcomes):
            if isinstance(outcome, RecordError):
                self.outbox.dead_letter(record, record.value, outcome)
                continue
            clip, decoded = outcome
            cameras.append(clip.camera)
            starts.append(clip.start)
            clips.append(decoded)
        self.outbox.counters.readings += len(clips)
        if not clips:
            return
        for camera, start, verdict in zip(cameras, starts, state.detector.judge(cameras, starts, clips)):
            alert = state.tracker.observe(camera, start, verdict)
            if alert is not None:
                self.outbox.alert(alert)
        self.outbox.counters.scored += len(clips)
