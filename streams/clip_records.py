"""The video clip record: one camera clip per Kafka message, inline or by URI (claim check).

Key: the camera id. Headers: ``argus.start`` (epoch seconds of the first frame), ``argus.fps``,
and optionally ``argus.codec`` and ``argus.frames``. The clip is either the value itself
(encoded bytes, within the broker's raised message limit) or, for larger clips, named by an
``argus.uri`` header with an empty value: a file path (or ``file://`` URI) under one of the
configured roots, or an ``http(s)://`` URL on a configured loopback host. Anything else — other
paths, ``..`` or symlinks out of a root, other hosts — is refused with ``uri_not_allowed`` and
never read. Every refusal is a :class:`RecordError`, so the pipeline dead-letters it.

>>> key, value, headers = encode_clip_message("cam-1", 1700000000.0, 5.0, data=b"\\x00\\x00\\x00\\x18ftypmp42")
>>> clip = parse_clip_message(key, value, headers, ClipPolicy())
>>> clip.camera, clip.fps, len(clip.data)
('cam-1', 5.0, 12)
"""

from __future__ import annotations

import math
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from streams.records import MISSING_FIELD, MISSING_KEY, OVERSIZE, WRONG_TYPE, RecordError

URI_NOT_ALLOWED = "uri_not_allowed"
URI_UNREADABLE = "uri_unreadable"
EMPTY_CLIP = "empty_clip"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class ClipPolicy:
    """Where clips may come from, and how big they may be."""

    roots: tuple[str, ...] = ()  # folders whose files may be named by URI
    hosts: tuple[str, ...] = ()  # loopback host[:port]s whose http(s) URLs may be fetched
    max_bytes: int = 64 * 1024 * 1024
    timeout_s: float = 10.0


@dataclass(frozen=True)
class ClipRecord:
    camera: str
    start: float
    fps: float
    codec: str = ""
    frames: int | None = None
    data: bytes | None = field(default=None, repr=False)
    uri: str | None = None


def encode_clip_message(camera: str, start: float, fps: float, data: bytes | None = None, uri: str | None = None,
                        codec: str = "", frames: int | None = None) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of a clip message: the clip inline (``data``) or by ``uri``."""
    if (data is None) == (uri is None):
        raise ValueError("a clip message carries either data or a uri")
    headers = [("argus.start", repr(float(start)).encode()), ("argus.fps", repr(float(fps)).encode())]
    headers += [("argus.codec", codec.encode())] if codec else []
    headers += [("argus.frames", str(frames).encode())] if frames is not None else []
    headers += [("argus.uri", uri.encode())] if uri is not None else []
    return camera.encode(), data or b"", headers


def parse_clip_message(key: bytes | None, value: bytes | None, headers: list, policy: ClipPolicy) -> ClipRecord:
    """The clip record of one message, or RecordError naming what is wrong with it."""
    if not key:
        raise RecordError(MISSING_KEY, "the message has no key (the camera id)")
    meta = {name: raw.decode("utf-8", "replace") for name, raw in headers or []}
    start = _number(meta, "argus.start")
    fps = _number(meta, "argus.fps")
    if fps <= 0:
        raise RecordError(WRONG_TYPE, f"argus.fps must be positive, got {fps}")
    frames = meta.get("argus.frames")
    if frames is not None and not frames.isdigit():
        raise RecordError(WRONG_TYPE, f"argus.frames must be a whole number, got {frames!r}")
    common = dict(camera=key.decode("utf-8", "replace"), start=start, fps=fps, codec=meta.get("argus.codec", ""),
                  frames=int(frames) if frames is not None else None)
    uri = meta.get("argus.uri")
    if uri is not None:
        if value:
            raise RecordError(WRONG_TYPE, "a clip named by argus.uri must have an empty value")
        check_uri(uri, policy)
        return ClipRecord(**common, uri=uri)
    if not value:
        raise RecordError(EMPTY_CLIP, "the message carries neither clip bytes nor an argus.uri header")
    if len(value) > policy.max_bytes:
        raise RecordError(OVERSIZE, f"the clip is {len(value)} bytes, over the limit of {policy.max_bytes}")
    return ClipRecord(**common, data=value)


def check_uri(uri: str, policy: ClipPolicy) -> None:
    """RecordError(uri_not_allowed) unless the URI is a file under a root or a URL on an allowed host."""
    parsed = urlparse(uri)
    if parsed.scheme in ("http", "https"):
        host = parsed.hostname or ""
        if host not in LOOPBACK or parsed.netloc not in policy.hosts:
            raise RecordError(URI_NOT_ALLOWED, f"{uri}: host {parsed.netloc!r} is not among the allowed hosts")
        return
    if parsed.scheme not in ("", "file"):
        raise RecordError(URI_NOT_ALLOWED, f"{uri}: scheme {parsed.scheme!r} is not file or http(s)")
    _allowed_file(parsed.path if parsed.scheme == "file" else uri, policy)


def read_clip(record: ClipRecord, policy: ClipPolicy) -> bytes:
    """The clip's bytes: inline, or read from its (checked) URI within the size limit."""
    if record.data is not None:
        return record.data
    check_uri(record.uri, policy)
    parsed = urlparse(record.uri)
    try:
        if parsed.scheme in ("http", "https"):
            with urllib.request.urlopen(record.uri, timeout=policy.timeout_s) as response:
                data = response.read(policy.max_bytes + 1)
        else:
            with open(_allowed_file(parsed.path if parsed.scheme == "file" else record.uri, policy), "rb") as f:
                data = f.read(policy.max_bytes + 1)
    except (OSError, urllib.error.URLError) as exc:
        raise RecordError(URI_UNREADABLE, f"{record.uri}: {exc}") from None
    if len(data) > policy.max_bytes:
        raise RecordError(OVERSIZE, f"{record.uri} is over the limit of {policy.max_bytes} bytes")
    if not data:
        raise RecordError(EMPTY_CLIP, f"{record.uri} is empty")
    return data


def _allowed_file(path: str, policy: ClipPolicy) -> Path:
    if ".." in Path(path).parts:
        raise RecordError(URI_NOT_ALLOWED, f"{path}: '..' is not allowed in a clip path")
    resolved = Path(path).resolve()  # symlinks followed: a link out of a root is refused
    for root in policy.roots:
        if resolved.is_relative_to(Path(root).resolve()):
            return resolved
    raise RecordError(URI_NOT_ALLOWED, f"{path} is not under an allowed root")


def _number(meta: dict[str, str], name: str) -> float:
    if name not in meta:
        raise RecordError(MISSING_FIELD, f"a clip needs the header {name}")
    try:
        number = float(meta[name])
    except ValueError:
        raise RecordError(WRONG_TYPE, f"{name} must be a number, got {meta[name]!r}") from None
    if not math.isfinite(number):
        raise RecordError(WRONG_TYPE, f"{name} is {meta[name]}")
    return number
