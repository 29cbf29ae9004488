"""Per-stream sliding windows: the last L readings of each stream, checked for order.

Streams with the same channel names share one array of windows, ``(streams, C, L)`` in time
order, so a poll's readings can be windowed in a few numpy calls (``push_many``) and a
checkpoint holds a few arrays, not one per stream. ``push`` takes one reading of any shape.

>>> store = WindowStore(3)
>>> [store.push(Reading("a", float(t), {"x": float(t)})) is not None for t in range(4)]
[False, False, True, True]
>>> store.push(Reading("a", 4.0, {"x": 4.0})).tolist()
[[2.0, 3.0, 4.0]]
>>> windows, full = store.push_many(["a", "b"], np.array([5.0, 1.0]), np.array([5.0, 7.0]), ("x",))
>>> windows[0, 0].tolist(), full.tolist()
([3.0, 4.0, 5.0], [True, False])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from detectors.runs import key_runs
from streams.records import CHANNEL_MISMATCH, DUPLICATE_TIMESTAMP, OUT_OF_ORDER, Reading, RecordError


class _Group:
    """The windows of every stream with one tuple of channels; row i belongs to ``ids[i]``."""

    def __init__(self, channels: tuple[str, ...], length: int, capacity: int = 64):
        self.channels = channels
        self.ids: list[str] = []
        self.index: dict[str, int] = {}
        self.windows = np.zeros((capacity, len(channels), length), dtype=np.float32)
        self.seen = np.zeros(capacity, dtype=np.int64)
        self.last_ts = np.full(capacity, -np.inf)

    def reserve(self, rows: int) -> None:
        """Room for ``rows`` streams in all (doubling), keeping what is there."""
        capacity = self.windows.shape[0]
        if rows <= capacity:
            return
        grown = max(rows, 2 * capacity)
        self.windows = np.concatenate([self.windows, np.zeros((grown - capacity, *self.windows.shape[1:]), np.float32)])
        self.seen = np.concatenate([self.seen, np.zeros(grown - capacity, np.int64)])
        self.last_ts = np.concatenate([self.last_ts, np.full(grown - capacity, -np.inf)])

    def add(self, stream_id: str) -> int:
        row = len(self.ids)
        self.reserve(row + 1)
        self.ids.append(stream_id)
        self.index[stream_id] = row
        return row


class WindowStore:
    """Windows keyed by stream id; a stream's channels are fixed by its first reading."""

    def __init__(self, length: int):
        self.length = length
        self.groups: dict[tuple[str, ...], _Group] = {}
        self.group_of: dict[str, _Group] = {}

    def _group(self, channels: tuple[str, ...]) -> _Group:
        group = self.groups.get(channels)
        if group is None:
            group = self.groups[channels] = _Group(channels, self.length)
        return group

    def push(self, reading: Reading) -> np.ndarray | None:
        """Add a reading; its stream's window (C, L), a copy, once it holds L readings, else
        None. RecordError if the reading is late, a duplicate, or has other channels."""
        group = self.group_of.get(reading.stream_id)
        if group is None:
            group = self.group_of[reading.stream_id] = self._group(tuple(reading.values))
            group.add(reading.stream_id)
        row = group.index[reading.stream_id]
        last = float(group.last_ts[row])
        if reading.ts < last:
            raise RecordError(OUT_OF_ORDER, f"ts {reading.ts} is before the stream's last ts {last}")
        if reading.ts == last:
            raise RecordError(DUPLICATE_TIMESTAMP, f"ts {reading.ts} was already seen for this stream")
        if tuple(reading.values) != group.channels:
            raise RecordError(CHANNEL_MISMATCH,
                              f"channels {sorted(reading.values)} differ from the stream's {list(group.channels)}")
        window = group.windows[row]
        window[:, :-1] = window[:, 1:]
        window[:, -1] = list(reading.values.values())
        group.seen[row] += 1
        group.last_ts[row] = reading.ts
        return window.copy() if group.seen[row] >= self.length else None

    def push_many(self, stream_ids: Sequence[str], ts: np.ndarray, values: np.ndarray,
                  channels: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray] | None:
        """One-channel readings in order, all at once: (each reading's window (B, 1, L) as
        ``push`` would leave it, and whether it is full (B,)). None, with nothing changed, if
        any reading would be refused (late, duplicate, a stream with other channels): then
        ``push`` them one by one to learn which."""
        group = self._group(channels)
        count = len(stream_ids)
        rows = list(map(group.index.get, stream_ids))
        if None in rows:  # new streams (provisional rows) or streams of another shape
            provisional: dict[str, int] = {}
            for i, row in enumerate(rows):
                if row is None:
                    if stream_ids[i] in self.group_of:
                        return None
                    rows[i] = provisional.setdefault(stream_ids[i], len(group.ids) + len(provisional))
            group.reserve(len(group.ids) + len(provisional))
        else:
            provisional = {}
        runs = key_runs(np.asarray(rows, dtype=np.int64))  # readings by stream, in arrival order within each
        order, by_row, rank, last = runs.order, runs.keys, runs.rank, runs.last
        ts_sorted = ts[order]
        before = np.where(runs.first, group.last_ts[by_row], np.roll(ts_sorted, 1))
        if not (ts_sorted > before).all():
            return None
        age = self.length - 1 - np.arange(self.length)  # of each window column: 0 = the reading itself
        in_batch = age[None, :] <= rank[:, None]
        batch_values = values[order].astype(np.float32)[np.clip(np.arange(count)[:, None] - age[None, :], 0, None)]
        history = group.windows[by_row, 0, :]
        earlier = np.take_along_axis(history, np.clip(self.length - age[None, :] + rank[:, None], None, self.length - 1), 1)
        windows_sorted = np.where(in_batch, batch_values, earlier)
        full_sorted = group.seen[by_row] + rank + 1 >= self.length
        for stream_id, row in provisional.items():
            group.add(stream_id)
            self.group_of[stream_id] = group
        group.windows[by_row[last], 0, :] = windows_sorted[last]
        group.seen[by_row[last]] += rank[last] + 1
        group.last_ts[by_row[last]] = ts_sorted[last]
        windows, full = np.empty_like(windows_sorted), np.empty_like(full_sorted)
        windows[order], full[order] = windows_sorted, full_sorted
        return windows[:, None, :], full

    def seen(self, stream_id: str) -> int:
        """Readings taken from the stream so far (0 for a stream never seen)."""
        group = self.group_of.get(stream_id)
        return 0 if group is None else int(group.seen[group.index[stream_id]])

    def state_dict(self) -> dict:
        return {"groups": [{"channels": list(g.channels), "ids": list(g.ids), "windows": g.windows[:len(g.ids)],
                            "seen": g.seen[:len(g.ids)], "last_ts": g.last_ts[:len(g.ids)]}
                           for g in self.groups.values()]}

    def load_state_dict(self, state: dict) -> None:
        self.groups, self.group_of = {}, {}
        for saved in state["groups"]:
            group = self._group(tuple(saved["channels"]))
            group.reserve(len(saved["ids"]))
            for stream_id in saved["ids"]:
                group.add(stream_id)
                self.group_of[stream_id] = group
            n = len(saved["ids"])
            group.windows[:n] = saved["windows"]
            group.seen[:n] = saved["seen"]
            group.last_ts[:n] = saved["last_ts"]
