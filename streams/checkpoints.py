"""Checkpoints: each partition's processing state with the offset it is valid at.

A checkpoint is written after the partition's alerts and dead letters are acknowledged and
before its offset is committed, so a restarted worker resumes from a state that matches its
position exactly: a replay recomputes the same alerts instead of starting blind.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any


class CheckpointStore:
    """Pickled partition states in a folder (point several workers at one shared folder)."""

    def __init__(self, folder: str | Path, group: str):
        self.folder = Path(folder) / group
        self.folder.mkdir(parents=True, exist_ok=True)

    def _path(self, topic: str, partition: int) -> Path:
        return self.folder / f"{topic}-{partition}.pkl"

    def save(self, topic: str, partition: int, state: Any) -> None:
        path = self._path(topic, partition)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        with open(tmp, "wb") as f:
            pickle.dump(state, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)

    def load(self, topic: str, partition: int) -> Any | None:
        path = self._path(topic, partition)
        if not path.exists():
            return None
        with open(path, "rb") as f:
            return pickle.load(f)
