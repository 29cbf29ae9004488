"""A camera detector: decoded clips of many cameras -> one verdict per clip, with its odd frames.

Per batch: the encoder describes every sampled frame (appearance and motion) and pools them into
clip vectors; the scorer (LOF, self-similarity, mixture: the series scorers, keyed by camera)
scores each clip against its camera's memory of recent clips; a per-camera threshold judges the
score (a camera's first clips score NaN, the scorer's "no opinion yet": never anomalous, and
their frames join the camera's normal frames). An anomalous clip is then looked at frame by frame: each frame's novelty against the
camera's recent *normal* frames (:class:`video.frame_scores.FrameReference`) gives the frame
range (the frames odder than any normal frame seen, around the oddest) and the keyframe, which is written as a PNG under ``keyframe_dir`` (named by camera, clip start and
frame, so a replay rewrites the same file). A normal clip's frames join that reference.

A frozen picture (a stuck camera or encoder) changes no feature much, so it is judged apart: a
clip is also anomalous when its longest run of sampled frames that repeat their predecessor
(motion under ``FROZEN_LEVEL``; an encoder keeps refining a repeated picture for a while, so
not exactly 0) is ``FROZEN_MARGIN`` frames longer than any of the camera's normal
clips held, at least ``FROZEN_MIN``; its frame range is that run. A camera whose footage
often stands still thus learns to let short stills pass.

The verdict's ``span`` is the time of the first and last odd frame; its explanation names the
frame range (frame numbers in the clip), the keyframe, its time and file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

import numpy as np
import torch

from detectors.base import Scorer, Threshold, Verdict
from video.decode import DecodedClip
from video.encoders import ClipEncoder, motion_level, pool_clip
from video.frame_scores import FrameReference, FrameSpan, frame_novelty, odd_frames, still_run

FROZEN_LEVEL = motion_level(0.05)  # a step under 0.05 grey levels: the picture stood still
FROZEN_MIN = 3  # sampled frames in a row repeating their predecessor, at the least, for a frozen picture
FROZEN_MARGIN = 2  # ... and this many more than the longest such run in the camera's normal clips
FROZEN_WARMUP = 10  # normal clips of a camera before a frozen picture is judged


class CameraDetector:
    """Judges clips of many cameras at once; its learned state round-trips through state_dict."""

    def __init__(self, name: str, encoder: ClipEncoder, scorer: Scorer, threshold: Threshold,
                 reference_frames: int = 200, keyframe_dir: str | Path | None = None):
        self.name = name
        self.encoder = encoder
        self.scorer = scorer
        self.threshold = threshold
        self.reference_frames = reference_frames
        self.keyframe_dir = Path(keyframe_dir) if keyframe_dir else None
        self.references: dict[str, FrameReference] = {}  # camera -> its recent normal frames

    def judge(self, cameras: Sequence[str], starts: Sequence[float], clips: Sequence[DecodedClip]) -> list[Verdict]:
        """One verdict per clip, in order; ``starts`` are the clips' start times (epoch seconds)."""
        features, vectors = self._describe(clips)
        scores = self.scorer.score_and_learn(vectors, keys=list(cameras))
        verdicts = []
        for camera, start, clip, frame_features, score in zip(cameras, starts, clips, features, scores.tolist()):
            threshold, anomalous = self.threshold.judge(camera, score)
            still = still_run(frame_features[:, self.encoder.appearance_dim], FROZEN_LEVEL)
            frozen = self._frozen(camera, still)
            if anomalous or frozen:
                verdicts.append(self._locate(camera, start, clip, frame_features, score, threshold, still if frozen else None))
            else:
                self._remember(camera, frame_features, still[1] - still[0])
                verdicts.append(Verdict(score, threshold, False, {}, (start, start + float(clip.timestamps[-1]))))
        return verdicts

    def _frozen(self, camera: str, still: tuple[int, int]) -> bool:
        """Whether the clip's longest still run is a frozen picture: ``FROZEN_MARGIN`` frames longer
        than any of the camera's normal clips held (at least ``FROZEN_MIN``), once it has
        ``FROZEN_WARMUP`` normal clips to go by."""
        reference = self.references.get(camera)
        if reference is None or reference.clips < FROZEN_WARMUP:
            return False
        return still[1] - still[0] >= max(FROZEN_MIN, reference.longest_still + FROZEN_MARGIN)

    def _describe(self, clips: Sequence[DecodedClip]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Each clip's frame features (T, F + M), float64 on the host, and the clip vectors
        (B, D) on the encoder's device; clips of one shape are encoded and pooled as one batch,
        and come to the host in one copy."""
        features: list[torch.Tensor] = [None] * len(clips)  # type: ignore[list-item]
        pooled, order = [], []
        for members in _by_shape(clips).values():
            batch = self.encoder.frame_features(np.stack([clips[i].frames for i in members]))
            pooled.append(pool_clip(batch.float(), self.encoder.appearance_dim))
            order.extend(members)
            for i, clip_features in zip(members, batch.detach().double().cpu()):
                features[i] = clip_features
        vectors = torch.cat(pooled)
        if order != sorted(order):  # clips of several shapes: back to the order they came in
            vectors = vectors[torch.as_tensor(np.argsort(order), device=vectors.device)]
        return features, vectors

    def _locate(self, camera: str, start: float, clip: DecodedClip, frame_features: torch.Tensor,
                score: float, threshold: float, frozen: tuple[int, int] | None = None) -> Verdict:
        """The verdict of an anomalous clip: which frames, which keyframe; ``frozen``: the still
        run that makes it a frozen picture (those frames, the first of them the keyframe)."""
        reference = self.references.get(camera)
        if frozen is not None:
            span = FrameSpan(frozen[0], frozen[1], frozen[0], float("nan"))
        elif reference is not None and reference.ready:
            span = odd_frames(reference.novelty(frame_features), reference.bar)
        else:  # nothing normal known yet: the frames that stand out in the clip itself
            span = odd_frames(frame_novelty(frame_features))
        times = start + clip.timestamps
        explanation = {
            "frames": [int(clip.indices[span.start]), int(clip.indices[span.end - 1])],
            "keyframe": int(clip.indices[span.keyframe]),
            "keyframe_time": round(float(times[span.keyframe]), 3),
        }
        if frozen is not None:
            explanation["frozen_frames"] = frozen[1] - frozen[0]
        else:
            explanation["frame_score"] = round(span.score, 3)
        if self.keyframe_dir is not None:
            explanation["keyframe_file"] = str(self._save_keyframe(camera, start, explanation["keyframe"],
                                                                   clip.frames[span.keyframe]))
        return Verdict(score, threshold, True, explanation, (float(times[span.start]), float(times[span.end - 1])))

    def _remember(self, camera: str, frame_features: torch.Tensor, still: int) -> None:
        if camera not in self.references:
            self.references[camera] = FrameReference(self.reference_frames)
        self.references[camera].learn(frame_features, still)

    def _save_keyframe(self, camera: str, start: float, frame: int, pixels: np.ndarray) -> Path:
        from PIL import Image

        folder = self.keyframe_dir / quote(camera, safe="")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{int(round(start * 1000))}-{frame}.png"
        Image.fromarray(pixels).save(path, compress_level=1)  # 3.6x faster than the default 6, files 10% larger
        return path

    def state_dict(self) -> dict:
        """What it has learned (the encoder is configuration, not state)."""
        return {"scorer": self.scorer.state_dict(), "threshold": self.threshold.state_dict(),
                "references": {camera: reference.state_dict() for camera, reference in self.references.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.scorer.load_state_dict(state["scorer"])
        self.threshold.load_state_dict(state["threshold"])
        self.references = {}
        for camera, saved in state["references"].items():
            self.references[camera] = FrameReference(self.reference_frames)
            self.references[camera].load_state_dict(saved)


def _by_shape(clips: Sequence[DecodedClip]) -> dict[tuple, list[int]]:
    groups: dict[tuple, list[int]] = {}
    for i, clip in enumerate(clips):
        groups.setdefault(clip.frames.shape, []).append(i)
    return groups
