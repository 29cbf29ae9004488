"""Cutting a video into short clips of encoded bytes, as a camera would publish them.

decord only reads, so clips are written with PyAV (the ``av`` package, FFmpeg's libraries):
frames are decoded with decord, resized on decode if asked, and re-encoded (H.264 in MP4 by
default). Re-encoding, not stream copy, so every clip starts on a key frame and stands alone.
The MP4 index (``moov``) comes last: FFmpeg moves it first only by reopening a named file,
and a clip here is whole bytes, never read progressively.

>>> frames = np.zeros((4, 32, 48, 3), np.uint8)
>>> data = encode_frames(frames, fps=10.0)
>>> data[4:8]
b'ftyp'
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from video.decode import VideoSource


@dataclass(frozen=True)
class Clip:
    """One encoded clip cut from a longer video."""

    data: bytes  # the encoded clip (MP4)
    start_frame: int  # the clip's first frame, as a frame number of the source video
    frame_count: int
    start_time: float  # seconds from the source's start to the clip's first frame
    fps: float
    codec: str


def encode_frames(frames: np.ndarray, fps: float, codec: str = "libx264", crf: int = 20,
                  container: str = "mp4") -> bytes:
    """Encode (T, H, W, 3) uint8 RGB frames as one clip; H and W must be even (4:2:0 chroma).
    ``crf`` is the constant-quality setting of the x264/x265 encoders (lower = better)."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"frames must be a non-empty (T, H, W, 3) uint8 array, got {frames.shape} {frames.dtype}")
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:
        raise ValueError(f"frame width and height must be even, got {width}x{height}")
    import av

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container) as output:
        stream = output.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec in ("libx264", "libx265"):
            stream.options = {"crf": str(crf), "preset": "veryfast"}
        for frame in frames:
            output.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        output.mux(stream.encode())
    return buffer.getvalue()


def cut_clips(path: str | os.PathLike, seconds: float, *, width: int = -1, height: int = -1,
              codec: str = "libx264", crf: int = 20, max_clips: int | None = None) -> Iterator[Clip]:
    """Successive ``seconds``-long clips of the video at ``path`` (a shorter last piece is
    dropped), each re-encoded at the source's frame rate, resized to ``width`` x ``height``."""
    if not seconds > 0:
        raise ValueError(f"seconds must be > 0, got {seconds}")
    video = VideoSource(path, width=width, height=height, max_bytes=None)
    per_clip = max(1, round(seconds * video.fps))
    count = video.frame_count // per_clip
    for number in range(count if max_clips is None else min(count, max_clips)):
        start = number * per_clip
        decoded = video.read(np.arange(start, start + per_clip), max_decoded_bytes=None)
        yield Clip(encode_frames(decoded.frames, video.fps, codec, crf), start, per_clip,
                   float(decoded.timestamps[0]), video.fps, codec)
