"""Labelled camera anomalies made from real clips, for tests, demos and evaluation.

Each maker takes a clip's frames (T, H, W, 3) uint8 and a frame range [start, end), and
returns new frames with the anomaly in that range (the input is not changed):

- ``splice``: frames from another video (a scene change, a swapped feed);
- ``freeze``: the frame before the range repeats through it (a stuck encoder);
- ``blackout``: black frames (a lost signal, a covered lens);
- ``motion``: a bright square flies across the picture, a frame-width in a few frames;
- ``shake``: the picture jumps by a large random shift each frame (a knocked camera).

:func:`inject` picks one by name and returns the label with the frames.

>>> frames = np.full((6, 8, 8, 3), 100, np.uint8)
>>> out, label = inject("blackout", frames, 2, 4)
>>> label, out[:, 0, 0, 0].tolist()
(AnomalyLabel(kind='blackout', start=2, end=4), [100, 100, 0, 0, 100, 100])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS = ("splice", "freeze", "blackout", "motion", "shake")


@dataclass(frozen=True)
class AnomalyLabel:
    """What was injected, in frames [start, end) of the clip."""

    kind: str
    start: int
    end: int


def _check_range(frames: np.ndarray, start: int, end: int) -> None:
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3), got {frames.shape}")
    if not 0 <= start < end <= len(frames):
        raise ValueError(f"need 0 <= start < end <= {len(frames)}, got [{start}, {end})")


def splice(frames: np.ndarray, start: int, end: int, other: np.ndarray) -> np.ndarray:
    """Frames [start, end) replaced by the first ``end - start`` frames of ``other`` (same H, W)."""
    _check_range(frames, start, end)
    if other.shape[1:] != frames.shape[1:] or len(other) < end - start:
        raise ValueError(f"other must hold {end - start} frames of {frames.shape[1:]}, got {other.shape}")
    out = frames.copy()
    out[start:end] = other[:end - start]
    return out


def freeze(frames: np.ndarray, start: int, end: int) -> np.ndarray:
    """Frames [start, end) all equal to frame ``start - 1`` (frame 0 when start is 0)."""
    _check_range(frames, start, end)
    out = frames.copy()
    out[start:end] = frames[max(start - 1, 0)]
    return out


def blackout(frames: np.ndarray, start: int, end: int, level: int = 0) -> np.ndarray:
    """Frames [start, end) a flat grey ``level`` (0: black)."""
    _check_range(frames, start, end)
    out = frames.copy()
    out[start:end] = level
    return out


def moving_object(frames: np.ndarray, start: int, end: int, rng: np.random.Generator | None = None,
                  size: float = 0.3, colour: tuple[int, int, int] = (255, 40, 200)) -> np.ndarray:
    """A square of side ``size`` times the frame height, in a saturated ``colour``, crossing the
    frame from one side to the other over frames [start, end) at a random height."""
    _check_range(frames, start, end)
    rng = rng or np.random.default_rng()
    height, width = frames.shape[1:3]
    side = max(2, int(size * height))
    top = int(rng.integers(0, height - side + 1))
    lefts = np.linspace(-side, width, end - start).astype(int)
    if rng.random() < 0.5:
        lefts = lefts[::-1]
    out = frames.copy()
    for frame, left in zip(out[start:end], lefts):
        frame[top:top + side, max(left, 0):max(left + side, 0)] = colour
    return out


def shake(frames: np.ndarray, start: int, end: int, rng: np.random.Generator | None = None,
          fraction: float = 0.2) -> np.ndarray:
    """Frames [start, end) shifted (wrapping round) by random offsets of up to ``fraction`` of
    the frame size, a different one each frame."""
    _check_range(frames, start, end)
    rng = rng or np.random.default_rng()
    height, width = frames.shape[1:3]
    out = frames.copy()
    for i in range(start, end):
        dy, dx = (rng.uniform(0.5, 1, 2) * fraction * np.array([height, width]) * rng.choice([-1, 1], 2)).astype(int)
        out[i] = np.roll(frames[i], (dy, dx), axis=(0, 1))
    return out


def inject(kind: str, frames: np.ndarray, start: int, end: int, *, other: np.ndarray | None = None,
           rng: np.random.Generator | None = None) -> tuple[np.ndarray, AnomalyLabel]:
    """The frames with a ``kind`` anomaly (one of KINDS) in [start, end), and its label;
    ``splice`` needs ``other``, the frames to splice in."""
    if kind == "splice":
        if other is None:
            raise ValueError("a splice needs the other video's frames")
        out = splice(frames, start, end, other)
    elif kind == "freeze":
        out = freeze(frames, start, end)
    elif kind == "blackout":
        out = blackout(frames, start, end)
    elif kind == "motion":
        out = moving_object(frames, start, end, rng)
    elif kind == "shake":
        out = shake(frames, start, end, rng)
    else:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return out, AnomalyLabel(kind, start, end)
