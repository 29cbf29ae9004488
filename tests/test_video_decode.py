"""Decoding clips: bytes equal files, sampling, and every kind of bad clip named by its reason."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from video.clips import cut_clips, encode_frames
from video.decode import (CORRUPT, EMPTY, TOO_LARGE, TRUNCATED, UNSUPPORTED, ClipError, VideoSource,
                          decode_clip, sample_indices, sniff_container)
from video.isolated import IsolatedDecoder

VIDEO = Path(__file__).resolve().parents[2] / "shared" / "data" / "video"
BOTTLES = VIDEO / "bottle-detection.mp4"



@pytest.fixture(scope="module")
def clip() -> bytes:
    """A real 1-s clip (30 frames), cut and re-encoded at 96 x 64, as a camera would publish it."""
    return next(cut_clips(BOTTLES, 1.0, width=96, height=64)).data


def test_bytes_and_file_decode_to_the_same_frames(clip, tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_bytes(clip)
    from_bytes, from_file = decode_clip(clip), decode_clip(path)
    assert from_bytes.frames.shape == (30, 64, 96, 3) and from_bytes.frames.dtype == np.uint8
    assert np.array_equal(from_bytes.frames, from_file.frames)
    assert np.array_equal(from_bytes.timestamps, from_file.timestamps)


def test_the_original_file_decodes_the_same_from_bytes():
    options = dict(width=160, height=96, stride=40)
    from_file = decode_clip(BOTTLES, **options)
    from_bytes = decode_clip(BOTTLES.read_bytes(), **options)
    assert np.array_equal(from_file.frames, from_bytes.frames)
    assert from_file.indices.tolist() == list(range(0, from_file.frame_count, 40))


def test_sampling_by_stride_and_by_fps(clip):
    source = VideoSource(clip)
    assert source.frame_count == 30 and source.fps == pytest.approx(29.83, abs=0.01)
    by_stride = decode_clip(clip, stride=7)
    assert by_stride.indices.tolist() == [0, 7, 14, 21, 28]
    by_fps = decode_clip(clip, fps=5.0)
    assert by_fps.indices.tolist() == [0, 5, 11, 17, 23, 29]  # the frames showing at 0, 0.2, ..., 1.0 s
    assert np.allclose(by_fps.timestamps, by_fps.indices / source.fps, atol=1e-3)
    assert np.array_equal(by_fps.frames, decode_clip(clip).frames[by_fps.indices])
    assert len(decode_clip(clip, fps=100.0).indices) == 30
    assert decode_clip(clip, stride=2, max_frames=3).indices.tolist() == [0, 2, 4]


def test_sample_indices_rejects_bad_options():
    with pytest.raises(ValueError):
        sample_indices(10, 10.0, stride=2, fps=2.0)
    with pytest.raises(ValueError):
        sample_indices(10, 10.0, stride=0)
    assert sample_indices(25, 12.5, fps=5.0).tolist() == [0, 2, 5, 7, 10, 12, 15, 17, 20, 22]


def test_resize_on_decode(clip):
    assert decode_clip(clip, width=40, height=30, max_frames=2).frames.shape == (2, 30, 40, 3)
    with pytest.raises(ValueError):
        decode_clip(clip, width=40)
    with pytest.raises(ValueError, match="cannot resize"):  # a decord bug at some widths: not the clip's fault
        decode_clip(clip, width=48, height=32)


def _audio_only_mp4() -> bytes:
    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as output:
        stream = output.add_stream("aac", rate=8000)
        for i in range(4):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 8000, i * 1024
            output.mux(stream.encode(frame))
        output.mux(stream.encode())
    return buffer.getvalue()


def _bad_clips(clip: bytes) -> dict[str, tuple[bytes, str]]:
    moov = clip.index(b"moov") - 4
    return {
        "empty": (b"", EMPTY),
        "text": (b"this is not a video " * 50, UNSUPPORTED),
        "png": (b"\x89PNG\r\n\x1a\n" + bytes(200), UNSUPPORTED),
        "audio only": (_audio_only_mp4(), UNSUPPORTED),
        "cut in the frames": (clip[:len(clip) // 2], TRUNCATED),
        "cut before the index": (clip[:moov], TRUNCATED),
        "cut in the index": (clip[:moov + 40], TRUNCATED),
        "cut in a box header": (clip[:moov + 4], TRUNCATED),
        "garbled box": (clip[:moov + 4] + b"\x00\xff\x13\x07" + clip[moov + 8:], CORRUPT),
        "garbage in a container": (clip[:40] + bytes(len(clip) - 40), CORRUPT),
    }


@pytest.mark.parametrize("name", ["empty", "text", "png", "audio only", "cut in the frames", "cut before the index",
                                  "cut in the index", "cut in a box header", "garbled box", "garbage in a container"])
def test_bad_clip_raises_clip_error_with_its_reason(clip, name):
    data, reason = _bad_clips(clip)[name]
    with pytest.raises(ClipError) as caught:
        decode_clip(data)
    assert caught.value.reason == reason, caught.value
    assert caught.value.detail


def test_unsupported_codec_carries_the_decoders_message():
    av1 = encode_frames(np.zeros((4, 64, 64, 3), np.uint8), 10.0, codec="libsvtav1")  # PyAV's wheels carry SVT-AV1
    with pytest.raises(ClipError) as caught:
        decode_clip(av1)
    assert caught.value.reason == UNSUPPORTED
    assert "video stream" in caught.value.detail  # decord's own words


def test_too_large(clip):
    with pytest.raises(ClipError) as caught:
        decode_clip(clip, max_bytes=1000)
    assert caught.value.reason == TOO_LARGE
    with pytest.raises(ClipError) as caught:
        decode_clip(clip, max_decoded_bytes=10 * 96 * 64 * 3)
    assert caught.value.reason == TOO_LARGE
    frames = len(decode_clip(clip, width=32, height=16).frames)  # resized on decode: the size asked for counts
    assert len(decode_clip(clip, width=32, height=16, max_decoded_bytes=frames * 16 * 32 * 3).frames) == frames
    with pytest.raises(ClipError) as caught:
        decode_clip(clip, width=32, height=16, max_decoded_bytes=frames * 16 * 32 * 3 - 1)
    assert caught.value.reason == TOO_LARGE and "32x16" in caught.value.detail


def test_a_missing_file_is_a_clip_error(tmp_path):
    with pytest.raises(ClipError) as caught:
        decode_clip(tmp_path / "nowhere.mp4")
    assert caught.value.reason == UNSUPPORTED


def test_sniff_container():
    assert sniff_container(b"\x1a\x45\xdf\xa3rest") == "matroska/webm"
    assert sniff_container(b"RIFF\x00\x00\x00\x00AVI LIST") == "avi"
    assert sniff_container(b"\x00\x00\x00\x18ftypmp42") == "mp4"
    assert sniff_container(b"hello") is None


def test_isolated_decoder_survives_a_crashing_decoder(clip):
    with IsolatedDecoder(target="faulthandler:_sigsegv") as crashing:
        with pytest.raises(ClipError) as caught:
            crashing.decode(False)
        assert caught.value.reason == CORRUPT and "SIGSEGV" in caught.value.detail
        with pytest.raises(ClipError):
            crashing.decode(False)  # a fresh child takes the next clip
        assert crashing.restarts == 2


def test_isolated_decoder_stops_a_hung_decoder():
    with IsolatedDecoder(timeout_s=0.5, target="time:sleep") as hanging:
        with pytest.raises(ClipError) as caught:
            hanging.decode(30)
        assert caught.value.reason == CORRUPT and "took more than" in caught.value.detail


def test_isolated_decoder_decodes_and_rejects_like_in_process(clip):
    with IsolatedDecoder() as decoder:
        assert np.array_equal(decoder.decode(clip, stride=5).frames, decode_clip(clip, stride=5).frames)
        for data, reason in list(_bad_clips(clip).values())[:6]:
            with pytest.raises(ClipError) as caught:
                decoder.decode(data)
            assert caught.value.reason == reason
        with pytest.raises(ValueError):
            decoder.decode(clip, stride=2, fps=3.0)  # a caller's mistake stays the caller's exception
        assert decoder.restarts == 0
