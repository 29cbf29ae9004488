"""A labelled camera feed from a real video: the clips a fixed camera would publish, with
injected anomalies and their time intervals, for `argus replay`, the demo, tests and benchmarks.

The video is decoded once at the feed's frame rate and size, played ``loops`` times (a fixed
camera's footage repeats its scene), and cut into ``seconds``-long clips, each encoded on its
own (H.264 in MP4). Every ``anomaly_every``-th clip after ``normal_clips`` gets one anomaly of
:mod:`video.anomalies` (kinds in turn) over its middle frames; its label is the time interval of
those frames, in epoch seconds from ``start``.

>>> feed = make_feed(VIDEO_DIR / "car-detection.mp4", "cam-1", start=0.0, max_clips=3, width=64, height=48)
>>> len(feed.clips), feed.clips[1].start, feed.labels
(3, 2.0, [])
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from video.anomalies import inject
from video.clips import encode_frames
from video.decode import ClipError, decode_clip

VIDEO_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "video"
FEED_KINDS = ("splice", "blackout", "shake")  # those the weight-free encoder catches at clip level


@dataclass(frozen=True)
class FeedClip:
    camera: str
    start: float  # epoch seconds of its first frame
    fps: float
    frames: int
    data: bytes = field(repr=False)


@dataclass
class CameraFeed:
    camera: str
    clips: list[FeedClip]
    labels: list[tuple[float, float, str]]  # (start, end, kind) in epoch seconds


def make_feed(path: str | os.PathLike, camera: str, *, start: float = 1_700_000_000.0, seconds: float = 2.0,
              fps: float = 5.0, width: int = 160, height: int = 96, loops: int = 1, normal_clips: int = 40,
              anomaly_every: int = 8, kinds: Sequence[str] = FEED_KINDS, other: str | os.PathLike | None = None,
              max_clips: int | None = None, seed: int = 0) -> CameraFeed:
    """The feed of one camera (see the module doc); ``other`` is the video splices come from."""
    frames = decode_clip(path, fps=fps, width=width, height=height, max_decoded_bytes=None).frames
    frames = np.concatenate([frames] * loops)
    per_clip = max(2, round(seconds * fps))
    count = len(frames) // per_clip if max_clips is None else min(len(frames) // per_clip, max_clips)
    spliced = None  # the other video's frames, decoded when a splice first needs them
    rng = np.random.default_rng(seed)
    clips, labels = [], []
    for number in range(count):
        clip = frames[number * per_clip:(number + 1) * per_clip]
        clip_start = start + number * per_clip / fps
        if number >= normal_clips and (number - normal_clips) % anomaly_every == anomaly_every - 1:
            kind = kinds[len(labels) % len(kinds)]
            if kind == "splice" and spliced is None:
                spliced = _splice_source(other, fps, width, height, per_clip)
            first, last = per_clip // 4, per_clip - per_clip // 4
            clip, _ = inject(kind, clip, first, last, other=spliced, rng=rng)
            labels.append((clip_start + first / fps, clip_start + (last - 1) / fps, kind))
        clips.append(FeedClip(camera, clip_start, fps, per_clip, encode_frames(clip, fps)))
    return CameraFeed(camera, clips, labels)


def camera_feeds(paths: Sequence[str | os.PathLike], cameras: int = 1, progress: bool = False,
                 **options) -> list[CameraFeed]:
    """The feeds of ``cameras`` cameras per video file (ids: the file's stem, plus ``-NNN`` when
    several share a file); splices come from the next file (none with a single file)."""
    from tqdm import tqdm

    feeds = []
    for number, path in enumerate(tqdm(paths, desc="cutting clips", unit="video", disable=not progress)):
        stem = Path(path).stem
        other = paths[(number + 1) % len(paths)] if len(paths) > 1 else None
        kinds = FEED_KINDS if other is not None else tuple(k for k in FEED_KINDS if k != "splice")
        try:
            feed = make_feed(path, stem, other=other, kinds=kinds, **options)
        except ClipError as exc:
            raise ClipError(exc.reason, f"{path}: {exc.detail}") from None
        if cameras == 1:
            feeds.append(feed)
            continue
        for copy in range(cameras):
            camera = f"{stem}-{copy:03d}"
            feeds.append(CameraFeed(camera, [replace(clip, camera=camera) for clip in feed.clips], list(feed.labels)))
    return feeds


def _splice_source(other: str | os.PathLike | None, fps: float, width: int, height: int, count: int) -> np.ndarray:
    if other is None:
        raise ValueError("splice anomalies need another video (other=...)")
    return decode_clip(other, fps=fps, width=width, height=height, max_frames=count).frames
