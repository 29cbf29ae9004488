"""Frame-level scores inside a clip: which frames are odd, so an alert can name a frame range
and a keyframe.

A frame's novelty is the distance of its features (an encoder's ``frame_features``:
appearance and motion) to what is normal, in units of the clip's typical distance:

- with no reference, normal is the clip itself: the distance to the clip's per-feature
  median frame, which a minority of odd frames cannot move;
- with a ``reference`` (the camera's normal frames, e.g. those of its recent normal clips),
  the distance to the nearest reference frame, so motion the camera often shows is normal.

Scores are divided by the median score of the clip (floored at ``floor`` times the median
feature spread, so a perfectly still clip does not divide by zero): a typical frame scores
about 1.

>>> features = torch.zeros(10, 3); features[4:7] = 5.0
>>> scores = frame_novelty(features)
>>> odd_frames(scores)
FrameSpan(start=4, end=7, keyframe=4, score=...)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class FrameSpan:
    """Frames [start, end) of a clip (sampled-frame positions) and its most novel one."""

    start: int
    end: int
    keyframe: int
    score: float

    def __repr__(self) -> str:  # the score's digits vary with the encoder; the doctest skips them
        return f"FrameSpan(start={self.start}, end={self.end}, keyframe={self.keyframe}, score=...)"


def frame_novelty(features: torch.Tensor, reference: torch.Tensor | None = None, floor: float = 1e-3) -> torch.Tensor:
    """(T, F) or (B, T, F) frame features -> (T,) or (B, T) novelty scores (see the module);
    ``reference``: (N, F) normal frame features of the same camera and encoder."""
    batch = features[None] if features.ndim == 2 else features
    batch = batch.double()
    if reference is None:
        centre = batch.median(dim=1, keepdim=True).values
        distances = (batch - centre).norm(dim=-1)
    else:
        reference = reference.to(batch.device, torch.float64)
        distances = torch.stack([torch.cdist(clip, reference).amin(1) for clip in batch])
    spread = (batch - batch.median(dim=1, keepdim=True).values).abs().median(dim=1).values.norm(dim=-1)
    typical = torch.maximum(distances.median(dim=1).values, floor * (1 + spread))
    scores = distances / typical[:, None]
    return scores[0] if features.ndim == 2 else scores


def odd_frames(scores: torch.Tensor, threshold: float | None = None) -> FrameSpan:
    """The run of consecutive frames around the highest-scoring one (the keyframe) whose scores
    exceed ``threshold``; by default half-way between the clip's median score and its top."""
    scores = scores.double().cpu()
    keyframe = int(scores.argmax())
    top = float(scores[keyframe])
    if threshold is None:
        threshold = (float(scores.median()) + top) / 2
    above = (scores > threshold).tolist()
    start = keyframe
    while start > 0 and above[start - 1]:
        start -= 1
    end = keyframe + 1
    while end < len(above) and above[end]:
        end += 1
    return FrameSpan(start, end, keyframe, top)


def still_run(motion: torch.Tensor, level: float) -> tuple[int, int]:
    """The longest run [start, end) of frames whose ``motion`` (T,), the change since the previous
    frame, is under ``level``: frames that repeat frame ``start - 1``. Frame 0 has no previous
    frame and never counts; (0, 0) when no frame is still."""
    best, start = (0, 0), None
    for t, still in enumerate((motion[1:] < level).tolist(), 1):
        if still and start is None:
            start = t
        if start is not None and (not still or t == len(motion) - 1):
            end = t + 1 if still else t
            best = max(best, (start, end), key=lambda run: run[1] - run[0])
            start = None
    return best


class FrameReference:
    """A camera's recent normal frames (features), and how far each was from those before it.

    ``novelty(features)`` is each frame's distance to its nearest reference frame in units of
    the median such distance of normal frames when they joined (measured against the frames
    before their clip, so a clip's own neighbours do not shrink it); ``bar`` is the largest
    normal frame's novelty in those units: frames above it are odder than anything normal seen.
    It also counts the normal clips it has learned and the longest still run (frames repeating
    their predecessor, :func:`still_run`) any of them held.

    The frames are kept in float32, in a ring of ``capacity`` rows that a new clip overwrites
    oldest first (nearest-frame distances do not care about order): a normal clip costs one
    distance search and no copy of the reference.
    """

    def __init__(self, capacity: int = 200):
        self.capacity = capacity
        self.ring: torch.Tensor | None = None  # (capacity, F) float32; made at the first clip
        self.count = 0  # frames ever learned; rows [0, min(count, capacity)) of the ring hold frames
        self.distances = torch.zeros(0, dtype=torch.float64)  # (<= capacity,)
        self.clips = 0
        self.longest_still = 0

    @property
    def frames(self) -> torch.Tensor | None:
        """The frames held, (<= capacity, F), in ring order."""
        return None if self.ring is None else self.ring[:min(self.count, self.capacity)]

    def learn(self, features: torch.Tensor, still: int = 0) -> None:
        """Add a normal clip's (T, F) frame features; ``still``: its longest still run, in frames."""
        self.clips += 1
        self.longest_still = max(self.longest_still, still)
        features = features.detach().float().cpu()
        if self.ring is not None:
            self.distances = torch.cat([self.distances, self._nearest(features)])[-self.capacity:]
        self._hold(features)

    def _hold(self, frames: torch.Tensor) -> None:
        """Write (T, F) float32 frames into the ring, over the oldest."""
        frames = frames[-self.capacity:]
        if self.ring is None:
            self.ring = frames.new_empty((self.capacity, frames.shape[1]))
        self.ring[(self.count + torch.arange(len(frames))) % self.capacity] = frames
        self.count += len(frames)

    def _nearest(self, features: torch.Tensor) -> torch.Tensor:
        """(T, F) -> (T,) float64 distance of each frame to its nearest held frame."""
        return torch.cdist(features.detach().float().cpu(), self.frames).amin(1).double()

    @property
    def ready(self) -> bool:
        return self.distances.numel() > 0

    def _typical(self) -> float:
        return max(float(self.distances.median()), 1e-9)

    def novelty(self, features: torch.Tensor) -> torch.Tensor:
        """(T, F) -> (T,) novelty of each frame (see the class doc); needs ``ready``."""
        return self._nearest(features) / self._typical()

    @property
    def bar(self) -> float:
        return float(self.distances.max()) / self._typical()

    def state_dict(self) -> dict:
        """Frames oldest first (as checkpoints held them before the ring)."""
        frames = self.frames if self.frames is not None else torch.zeros(0, 0)
        if self.count > self.capacity:
            frames = frames.roll(-(self.count % self.capacity), 0)
        return {"frames": frames.numpy(), "distances": self.distances.numpy(), "clips": self.clips,
                "longest_still": self.longest_still}

    def load_state_dict(self, state: dict) -> None:
        frames = torch.from_numpy(np.array(state["frames"], dtype=np.float32))
        self.ring, self.count = None, 0
        if frames.numel():
            self._hold(frames)
        self.distances = torch.from_numpy(np.array(state["distances"], dtype=np.float64))
        self.clips = int(state.get("clips", 0))  # checkpoints from before the frozen-picture check
        self.longest_still = int(state.get("longest_still", 0))
