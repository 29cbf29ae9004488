"""Per-stream sliding windows: the last L readings of each stream, checked for order."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from streams.records import CHANNEL_MISMATCH, DUPLICATE_TIMESTAMP, OUT_OF_ORDER, Reading, RecordError


@dataclass
class StreamWindow:
    """A ring buffer of one stream's last ``length`` readings over fixed channels.

    Each reading is written twice, at i and i + length, so the window in time order is always
    one contiguous slice of the buffer: no copy per reading.
    """

    channels: tuple[str, ...]
    length: int
    last_ts: float = float("-inf")
    seen: int = 0
    buffer: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.buffer = np.zeros((len(self.channels), 2 * self.length), dtype=np.float32)

    def push(self, reading: Reading) -> None:
        """Append a reading, or RecordError if it is late, a duplicate, or has other channels."""
        if reading.ts < self.last_ts:
            raise RecordError(OUT_OF_ORDER, f"ts {reading.ts} is before the stream's last ts {self.last_ts}")
        if reading.ts == self.last_ts:
            raise RecordError(DUPLICATE_TIMESTAMP, f"ts {reading.ts} was already seen for this stream")
        if tuple(reading.values) != self.channels:
            raise RecordError(
                CHANNEL_MISMATCH,
                f"channels {sorted(reading.values)} differ from the stream's {list(self.channels)}",
            )
        at = self.seen % self.length
        self.buffer[:, at] = self.buffer[:, at + self.length] = list(reading.values.values())
        self.seen += 1
        self.last_ts = reading.ts

    def state_dict(self) -> dict:
        return {"channels": list(self.channels), "last_ts": self.last_ts, "seen": self.seen, "buffer": self.buffer}

    @classmethod
    def from_state(cls, state: dict) -> "StreamWindow":
        window = cls(tuple(state["channels"]), state["buffer"].shape[1] // 2, state["last_ts"], state["seen"])
        window.buffer = state["buffer"].copy()
        return window

    @property
    def full(self) -> bool:
        return self.seen >= self.length

    def values(self) -> np.ndarray:
        """The window in time order, shape (C, L): a view, valid until the next push."""
        start = self.seen % self.length
        return self.buffer[:, start:start + self.length]


class WindowStore:
    """Windows keyed by stream id; a stream's channels are fixed by its first reading."""

    def __init__(self, length: int):
        self.length = length
        self.windows: dict[str, StreamWindow] = {}

    def push(self, reading: Reading) -> StreamWindow:
        """Add a reading to its stream's window and return the window."""
        window = self.windows.get(reading.stream_id)
        if window is None:
            window = StreamWindow(tuple(reading.values), self.length)
            self.windows[reading.stream_id] = window
        window.push(reading)
        return window

    def state_dict(self) -> dict:
        return {"windows": {sid: w.state_dict() for sid, w in self.windows.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.windows = {sid: StreamWindow.from_state(w) for sid, w in state["windows"].items()}
