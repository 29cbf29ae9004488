"""Clip records: inline and claim-check URIs, and every way a clip source is refused."""

import http.server
import os
import threading
from functools import partial

import pytest

from streams.clip_records import (EMPTY_CLIP, URI_NOT_ALLOWED, URI_UNREADABLE, ClipPolicy, encode_clip_message,
                                  parse_clip_message, read_clip)
from streams.records import MISSING_FIELD, MISSING_KEY, OVERSIZE, WRONG_TYPE, RecordError

CLIP = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4


@pytest.fixture
def served(tmp_path):
    """A real HTTP server on loopback serving tmp_path/www."""
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "clip.mp4").write_bytes(CLIP)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "www"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _parsed(policy, **message):
    return parse_clip_message(*encode_clip_message("cam", 1.7e9, 5.0, **message), policy)


def test_inline_and_file_and_http_clips_read_back_the_same_bytes(tmp_path, served):
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "a.mp4").write_bytes(CLIP)
    policy = ClipPolicy(roots=(str(tmp_path / "clips"),), hosts=(served,))
    for message in ({"data": CLIP}, {"uri": str(tmp_path / "clips" / "a.mp4")},
                    {"uri": f"file://{tmp_path / 'clips' / 'a.mp4'}"}, {"uri": f"http://{served}/clip.mp4"}):
        record = _parsed(policy, **message)
        assert (record.camera, record.start, record.fps) == ("cam", 1.7e9, 5.0)
        assert read_clip(record, policy) == CLIP


def test_uris_outside_the_allowed_roots_and_hosts_are_refused_unread(tmp_path, served):
    (tmp_path / "clips").mkdir()
    (tmp_path / "secret.mp4").write_bytes(CLIP)
    os.symlink(tmp_path / "secret.mp4", tmp_path / "clips" / "link.mp4")
    policy = ClipPolicy(roots=(str(tmp_path / "clips"),), hosts=(served,))
    for uri in (str(tmp_path / "secret.mp4"), str(tmp_path / "clips" / ".." / "secret.mp4"),
                str(tmp_path / "clips" / "link.mp4"), "http://example.org/clip.mp4", "http://127.0.0.1:1/clip.mp4",
                "ftp://127.0.0.1/clip.mp4", "/etc/passwd"):
        with pytest.raises(RecordError) as info:
            _parsed(policy, uri=uri)
        assert info.value.reason == URI_NOT_ALLOWED, uri


@pytest.mark.parametrize("key, value, headers, reason", [
    (None, CLIP, [("argus.start", b"1"), ("argus.fps", b"5")], MISSING_KEY),
    (b"cam", CLIP, [("argus.fps", b"5")], MISSING_FIELD),
    (b"cam", CLIP, [("argus.start", b"soon"), ("argus.fps", b"5")], WRONG_TYPE),
    (b"cam", CLIP, [("argus.start", b"1"), ("argus.fps", b"0")], WRONG_TYPE),
    (b"cam", CLIP, [("argus.start", b"nan"), ("argus.fps", b"5")], WRONG_TYPE),
    (b"cam", CLIP, [("argus.start", b"1"), ("argus.fps", b"5"), ("argus.frames", b"ten")], WRONG_TYPE),
    (b"cam", b"", [("argus.start", b"1"), ("argus.fps", b"5")], EMPTY_CLIP),
    (b"cam", CLIP, [("argus.start", b"1"), ("argus.fps", b"5"), ("argus.uri", b"/x.mp4")], WRONG_TYPE),
])
def test_malformed_clip_messages_get_their_reason(key, value, headers, reason):
    with pytest.raises(RecordError) as info:
        parse_clip_message(key, value, headers, ClipPolicy())
    assert info.value.reason == reason


def test_size_limits_and_unreadable_sources(tmp_path, served):
    policy = ClipPolicy(roots=(str(tmp_path),), hosts=(served,), max_bytes=100)
    with pytest.raises(RecordError) as info:
        _parsed(policy, data=CLIP)
    assert info.value.reason == OVERSIZE
    (tmp_path / "big.mp4").write_bytes(CLIP)
    with pytest.raises(RecordError) as info:
        read_clip(_parsed(policy, uri=str(tmp_path / "big.mp4")), policy)
    assert info.value.reason == OVERSIZE
    for uri in (str(tmp_path / "missing.mp4"), f"http://{served}/missing.mp4"):
        with pytest.raises(RecordError) as info:
            read_clip(_parsed(policy, uri=uri), policy)
        assert info.value.reason == URI_UNREADABLE, uri


def test_a_message_carries_data_or_a_uri_not_both():
    with pytest.raises(ValueError):
        encode_clip_message("cam", 1.0, 5.0, data=CLIP, uri="/x.mp4")
