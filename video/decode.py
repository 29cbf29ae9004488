"""Decoding clips with decord, from bytes in memory or a path, into sampled uint8 frames.

decord's ``VideoReader`` reads a file-like object (it copies the bytes once and decodes from
memory, no temporary file), so inline Kafka clips and files take the same road. Frames can be
sampled by ``stride`` (every n-th frame) or by a target ``fps``, and resized on decode.

Anything that cannot give frames raises :class:`ClipError` with a machine-readable ``reason``
(the dead-letter reason) and a ``detail`` that carries the decoder's own message. decord's
errors are ordinary Python exceptions, but when it fails to *open* a clip the exception only
says "Error reading N bytes"; FFmpeg's reason ("moov atom not found", "Invalid data found")
goes to the native stderr, so it is captured there (see :func:`_native_stderr`). Before decord
sees a clip its container header is checked: an unknown container is ``unsupported`` without
ever reaching FFmpeg (which would echo a non-file "name" to stderr), and an MP4 whose boxes
run past the end of the data is ``truncated``.

>>> decode_clip(b"")
Traceback (most recent call last):
...
video.decode.ClipError: empty: the clip has no bytes
>>> sample_indices(30, 30.0, fps=5.0).tolist()
[0, 6, 12, 18, 24]
"""

from __future__ import annotations

import io
import os
import struct
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

# Reasons a clip is rejected (the dead-letter reason).
EMPTY = "empty"
CORRUPT = "corrupt"
TRUNCATED = "truncated"
UNSUPPORTED = "unsupported"
TOO_LARGE = "too_large"

DEFAULT_MAX_BYTES = 64 * 1024 * 1024  # encoded clip
DEFAULT_MAX_DECODED_BYTES = 1024 * 1024 * 1024  # sampled frames, T * H * W * 3
_STDERR_KEPT = 4000  # characters of the decoder's log kept in a ClipError's detail


class ClipError(ValueError):
    """A clip that cannot be decoded; ``reason`` is one of the constants above."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class DecodedClip:
    """Sampled frames of one clip and where they sit in it."""

    frames: np.ndarray  # (T, H, W, 3) uint8, RGB
    indices: np.ndarray  # (T,) int64, frame numbers in the clip
    timestamps: np.ndarray  # (T,) float64, seconds from the clip's start to each frame
    fps: float  # the clip's own average frame rate
    frame_count: int  # frames in the whole clip


def sample_indices(frame_count: int, source_fps: float, *, stride: int | None = None,
                   fps: float | None = None, max_frames: int | None = None) -> np.ndarray:
    """Frame numbers to decode: every ``stride``-th frame, or one frame per 1 / ``fps`` seconds
    (the frame showing at each instant k / fps; all frames when ``fps`` >= the clip's), or all
    frames when neither is given; at most ``max_frames`` of them, from the start.

    >>> sample_indices(10, 12.5, stride=3).tolist()
    [0, 3, 6, 9]
    >>> sample_indices(13, 12.5, fps=5.0).tolist()
    [0, 2, 5, 7, 10, 12]
    """
    if stride is not None and fps is not None:
        raise ValueError("give stride or fps, not both")
    if stride is not None and stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if fps is not None and not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if fps is not None and source_fps > 0 and fps < source_fps:
        instants = np.arange(int(np.ceil(frame_count * fps / source_fps))) / fps
        indices = np.floor(instants * source_fps + 1e-6).astype(np.int64)
        indices = np.unique(indices[indices < frame_count])
    else:
        indices = np.arange(0, frame_count, stride or 1, dtype=np.int64)
    return indices if max_frames is None else indices[:max_frames]


# Container signatures: (offset, bytes) pairs that must all match.
_SIGNATURES = {
    "matroska/webm": ((0, b"\x1a\x45\xdf\xa3"),),
    "avi": ((0, b"RIFF"), (8, b"AVI ")),
    "flv": ((0, b"FLV"),),
    "ogg": ((0, b"OggS"),),
    "mpeg-ps": ((0, b"\x00\x00\x01\xba"),),
    "mpeg-ts": ((0, b"\x47"), (188, b"\x47")),
    "annex-b": ((0, b"\x00\x00\x00\x01"),),  # raw H.264 / H.265 elementary stream
}
_ISO_TOP_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"styp", b"moof", b"sidx"}


def sniff_container(head: bytes) -> str | None:
    """The container family that ``head`` (a clip's first bytes) starts like, or None.

    >>> sniff_container(b"\\x00\\x00\\x00\\x20ftypisom")
    'mp4'
    >>> sniff_container(b"GIF89a") is None
    True
    """
    if len(head) >= 8 and head[4:8] in _ISO_TOP_BOXES:
        return "mp4"
    for name, parts in _SIGNATURES.items():
        if all(head[at:at + len(magic)] == magic for at, magic in parts):
            return name
    return None


def _iso_problem(stream: BinaryIO, size: int) -> tuple[str, str] | None:
    """(reason, detail) when an ISO-BMFF (MP4/MOV) file's top-level boxes cannot be whole, or
    None: a box type that is not four printable characters (corrupt), a box that runs past the
    end of the data, or no ``moov`` box (the index, written last by most muxers, so the first
    thing a cut-short file loses) (truncated)."""
    offset, seen = 0, set()
    while offset + 8 <= size:
        stream.seek(offset)
        header = stream.read(16)
        box_size, box_type = struct.unpack(">I4s", header[:8])
        if not all(32 <= c < 127 for c in box_type):
            return CORRUPT, f"bytes {box_type!r} at byte {offset} are no box type"
        if box_size == 1:
            if len(header) < 16:
                return TRUNCATED, f"the {box_type!r} box header at byte {offset} is cut short"
            box_size = struct.unpack(">Q", header[8:16])[0]
        elif box_size == 0:  # runs to the end of the file
            box_size = size - offset
        if box_size < 8:
            return CORRUPT, f"the {box_type!r} box at byte {offset} has an impossible size {box_size}"
        if offset + box_size > size:
            return TRUNCATED, (f"the {box_type!r} box at byte {offset} needs {box_size} bytes, "
                               f"the data ends after {size - offset}")
        seen.add(box_type)
        offset += box_size
    if offset < size:
        return TRUNCATED, f"the data ends {size - offset} bytes into a box header at byte {offset}"
    if b"moov" not in seen:
        return TRUNCATED, "no 'moov' box (the index of the frames): the data ends before it"
    return None


def check_container(stream: BinaryIO, size: int, max_bytes: int | None = DEFAULT_MAX_BYTES) -> str:
    """The container of a clip of ``size`` bytes read from ``stream``; ClipError when it is
    empty, too large, of no known container, or a visibly cut-short MP4."""
    if size == 0:
        raise ClipError(EMPTY, "the clip has no bytes")
    if max_bytes is not None and size > max_bytes:
        raise ClipError(TOO_LARGE, f"the clip has {size} bytes, more than the limit of {max_bytes}")
    stream.seek(0)
    head = stream.read(512)
    container = sniff_container(head)
    if container is None:
        raise ClipError(UNSUPPORTED, f"not a known video container (starts with {head[:16].hex(' ')})")
    if container == "mp4":
        problem = _iso_problem(stream, size)
        if problem:
            raise ClipError(*problem)
    return container


_stderr_lock = threading.Lock()


@contextmanager
def _native_stderr() -> Iterator[list[str]]:
    """Capture what native code writes to file descriptor 2 while the block runs (into an
    in-memory file), then write it through to the real stderr, so nothing is lost. Yields a
    list that holds the captured text afterwards. One capture at a time (a lock)."""
    captured: list[str] = []
    with _stderr_lock:
        sys.stderr.flush()
        saved = os.dup(2)
        sink = os.memfd_create("argus-decoder-log")
        os.dup2(sink, 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.lseek(sink, 0, os.SEEK_SET)
            with os.fdopen(sink, "rb") as log:
                text = log.read()
            if text:
                os.write(2, text)
            captured.append(text.decode("utf-8", "replace"))


def _decoder_message(exc: BaseException, log: str = "") -> str:
    """The decoder's own words: the exception text plus the last of what it logged."""
    message = str(exc).strip() or type(exc).__name__
    log = log.strip()
    if log:
        message = f"{message} | decoder log: {log[-_STDERR_KEPT:]}"
    return message


class _Source:
    """A file-like view of in-memory bytes, read whole by decord (it takes anything with
    ``read``); a memoryview, so no copy is made before decord's own."""

    def __init__(self, data: bytes | bytearray | memoryview):
        self.data = memoryview(data)

    def read(self) -> memoryview:
        return self.data


class VideoSource:
    """An open clip: its frame count and rate, and sampled, resized frames on demand.

    ``source`` is the encoded clip (bytes) or a path to it. ``width`` and ``height`` resize
    on decode (both or neither). ``num_threads`` is decord's decoding threads (0 = auto).
    Raises ClipError for a clip that cannot be opened.
    """

    def __init__(self, source: bytes | bytearray | memoryview | str | os.PathLike, *, width: int = -1,
                 height: int = -1, num_threads: int = 1, max_bytes: int | None = DEFAULT_MAX_BYTES):
        if (width == -1) != (height == -1):
            raise ValueError("give both width and height, or neither")
        import decord

        if isinstance(source, (bytes, bytearray, memoryview)):
            self.container = check_container(io.BytesIO(source), len(source), max_bytes)
            target: object = _Source(source)
        else:
            path = Path(source)
            try:
                size = path.stat().st_size
                with path.open("rb") as stream:
                    self.container = check_container(stream, size, max_bytes)
            except OSError as exc:
                raise ClipError(UNSUPPORTED, f"cannot read {path}: {exc}") from None
            target = str(path)
        with _native_stderr() as log:
            try:
                self._reader = decord.VideoReader(target, ctx=decord.cpu(0), width=width, height=height,
                                                  num_threads=num_threads)
                error = None
            except (decord.DECORDError, RuntimeError, AssertionError) as exc:
                error = exc
        if error is not None:
            text = log[0] if log else ""
            reason = EMPTY if isinstance(error, AssertionError) else _open_failure_reason(text)
            raise ClipError(reason, _decoder_message(error, text))
        self.frame_count = len(self._reader)
        self.fps = float(self._reader.get_avg_fps())
        self.resized_to = (height, width) if width != -1 else None

    def read(self, indices: np.ndarray, max_decoded_bytes: int | None = DEFAULT_MAX_DECODED_BYTES) -> DecodedClip:
        """The frames at ``indices`` (sorted frame numbers below ``frame_count``)."""
        import decord

        indices = np.asarray(indices, dtype=np.int64)
        if indices.size == 0:
            raise ClipError(EMPTY, f"no frames sampled from a clip of {self.frame_count} frames")
        if indices[0] < 0 or indices[-1] >= self.frame_count:
            raise ValueError(f"frame numbers must lie in [0, {self.frame_count}), got {indices.min()}..{indices.max()}")
        try:
            if max_decoded_bytes is not None:  # the native size is known only by decoding a frame
                height, width = self.resized_to or _as_numpy(self._reader[int(indices[0])]).shape[:2]
                _check_decoded_size(len(indices), height, width, max_decoded_bytes)
            frames = _as_numpy(self._reader.get_batch(indices.tolist()))
            timestamps = self._reader.get_frame_timestamp(indices.tolist())[:, 0].astype(np.float64)
        except (decord.DECORDError, RuntimeError) as exc:
            if "DECORDArrayCopyFromTo" in str(exc):  # decord 0.6.0 fails on some widths (16, 24, 48, 72, ...)
                raise ValueError(f"decord cannot resize frames to this width; pick another "
                                 f"({_decoder_message(exc)})") from None
            raise ClipError(CORRUPT, _decoder_message(exc)) from None
        return DecodedClip(frames, indices, timestamps, self.fps, self.frame_count)


def _as_numpy(array: object) -> np.ndarray:
    """A decord batch as numpy, whichever bridge (native or torch) decord is set to."""
    return array.asnumpy() if hasattr(array, "asnumpy") else array.numpy()


def _check_decoded_size(count: int, height: int, width: int, limit: int) -> None:
    size = count * height * width * 3
    if size > limit:
        raise ClipError(TOO_LARGE, f"{count} frames of {width}x{height} take {size} bytes, "
                                   f"more than the limit of {limit}")


def _open_failure_reason(log: str) -> str:
    """The reason for a clip FFmpeg would not open, from what it logged."""
    lowered = log.lower()
    if "moov atom not found" in lowered or "end of file" in lowered:
        return TRUNCATED
    if "invalid data" in lowered:
        return CORRUPT
    return UNSUPPORTED


def decode_clip(source: bytes | bytearray | memoryview | str | os.PathLike, *, stride: int | None = None,
                fps: float | None = None, max_frames: int | None = None, width: int = -1, height: int = -1,
                num_threads: int = 1, max_bytes: int | None = DEFAULT_MAX_BYTES,
                max_decoded_bytes: int | None = DEFAULT_MAX_DECODED_BYTES) -> DecodedClip:
    """Decode a clip (bytes or a path), sampled by ``stride`` or ``fps`` (see
    :func:`sample_indices`) and resized to ``width`` x ``height``; ClipError if it cannot."""
    video = VideoSource(source, width=width, height=height, num_threads=num_threads, max_bytes=max_bytes)
    indices = sample_indices(video.frame_count, video.fps, stride=stride, fps=fps, max_frames=max_frames)
    return video.read(indices, max_decoded_bytes)
