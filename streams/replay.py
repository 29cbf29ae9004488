"""Replay: publish recorded or synthetic series to the series topic, and camera clips to the
clips topic, at a chosen rate.

Sources are ``timestamp,value`` CSV files (NAB's shape; the stream id is the file's path under
the folder given, without ``.csv``), folders of them, and the synthetic HPC cluster. Labels
(``{stream: [[start, end], ...]}`` in epoch seconds) are written beside for evaluation.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from urllib.parse import quote

from kafka import KafkaProducer
from tqdm import tqdm

from streams.clip_records import encode_clip_message
from streams.records import RecordError, encode_reading, parse_timestamp

Series = list[tuple[float, float]]


class ReplayError(ValueError):
    """A replay input that cannot be read; the message names the file and line."""


def read_csv_series(path: Path) -> Series:
    """(ts, value) rows of a ``timestamp,value`` CSV file."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except OSError as exc:
        raise ReplayError(f"cannot read {path}: {exc.strerror}") from None
    if not rows or [c.strip().lower() for c in rows[0][:2]] != ["timestamp", "value"]:
        raise ReplayError(f"{path}: the first line must be the header 'timestamp,value'")
    series = []
    for line, row in enumerate(rows[1:], start=2):
        try:
            series.append((parse_timestamp(row[0]), float(row[1])))
        except (IndexError, ValueError, RecordError):
            raise ReplayError(f"{path}:{line}: expected 'timestamp,value', got {','.join(row)!r}") from None
    return series


def collect_csv_series(paths: Iterable[Path]) -> dict[str, Series]:
    """Series by stream id from files and folders (folders are searched for ``*.csv``)."""
    found: dict[str, Series] = {}
    for path in paths:
        path = Path(path)
        if path.is_dir():
            files = sorted(path.rglob("*.csv"))
            if not files:
                raise ReplayError(f"{path}: no .csv files in this folder")
            for file in files:
                found[file.relative_to(path).with_suffix("").as_posix()] = read_csv_series(file)
        elif path.is_file():
            found[path.with_suffix("").name] = read_csv_series(path)
        else:
            raise ReplayError(f"{path}: no such file or folder")
    return found


def nab_labels(stream_ids: Iterable[str], labels_file: Path) -> dict[str, list[list[float]]]:
    """NAB's combined windows for the given NAB stream ids, in epoch seconds."""
    windows = json.loads(Path(labels_file).read_text())
    return {
        sid: [[parse_timestamp(a), parse_timestamp(b)] for a, b in windows[f"{sid}.csv"]]
        for sid in stream_ids if f"{sid}.csv" in windows
    }


def interleave(series: dict[str, Series]) -> Iterator[tuple[str, float, dict[str, float]]]:
    """Readings of all series, round-robin by index, so every stream advances together."""
    longest = max((len(s) for s in series.values()), default=0)
    for i in range(longest):
        for sid, rows in series.items():
            if i < len(rows):
                yield sid, rows[i][0], {"value": rows[i][1]}


def publish(
    producer: KafkaProducer, topic: str, readings: Iterable[tuple[str, float, dict[str, float]]],
    total: int | None = None, rate: float = 0.0, progress: bool = True,
) -> int:
    """Send readings as one-reading messages, at most ``rate`` per second (0 = no limit)."""
    messages = ((stream_id.encode(), encode_reading(ts, values), []) for stream_id, ts, values in readings)
    return _send_all(producer, topic, messages, total, rate, progress, "rec")


def publish_clips(producer: KafkaProducer, topic: str, clips: Sequence, rate: float = 0.0, progress: bool = True,
                  uri_dir: Path | None = None) -> int:
    """Send camera clips (objects with camera, start, fps, frames, data), inline or, with
    ``uri_dir``, written there and sent by URI (claim check); at most ``rate`` clips a second."""
    def messages():
        for clip in clips:
            if uri_dir is None:
                yield encode_clip_message(clip.camera, clip.start, clip.fps, data=clip.data, frames=clip.frames)
                continue
            path = Path(uri_dir) / quote(clip.camera, safe="") / f"{int(round(clip.start * 1000))}.mp4"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(clip.data)
            yield encode_clip_message(clip.camera, clip.start, clip.fps, uri=str(path.resolve()), frames=clip.frames)

    return _send_all(producer, topic, messages(), len(clips), rate, progress, "clip")


def _send_all(producer: KafkaProducer, topic: str, messages: Iterable[tuple[bytes, bytes, list]],
              total: int | None, rate: float, progress: bool, unit: str) -> int:
    started = time.monotonic()
    sent = 0
    with tqdm(total=total, unit=unit, disable=not progress, desc=f"replay -> {topic}") as bar:
        for key, value, headers in messages:
            producer.send(topic, key=key, value=value, headers=headers)
            sent += 1
            bar.update()
            if rate > 0:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
    producer.flush()
    return sent
