"""Checkpoints: each partition's processing state with the offset it is valid at.

A checkpoint is written after the partition's alerts and dead letters are acknowledged and
before its offset is committed, so a restarted worker resumes from a state that matches its
position exactly: a replay recomputes the same alerts instead of starting blind.

The file is safetensors: the state's arrays as tensors, everything else as JSON in the
header's metadata. Loading one runs no code, so a state file from elsewhere is only data.
States are nested dicts (``state_dict()`` of the parts) of arrays and JSON values; a float that
JSON cannot hold (infinity, NaN: a threshold not yet calibrated) is written as
``{"__float__": "inf"}``, so the header is strict JSON that any parser reads.

>>> import tempfile
>>> store = CheckpointStore(tempfile.mkdtemp(), "group")
>>> store.save("topic", 0, {"offset": 7, "window": {"a/b": np.arange(3.0)}})
>>> state = store.load("topic", 0)
>>> state["offset"], state["window"]["a/b"].tolist()
(7, [0.0, 1.0, 2.0])
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file, save_file

_TENSOR = "__tensor__"
_FLOAT = "__float__"


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be read as one."""


class CheckpointStore:
    """Partition states in a folder (point workers that take over each other's partitions at one)."""

    def __init__(self, folder: str | Path, group: str):
        self.folder = Path(folder) / group
        self.folder.mkdir(parents=True, exist_ok=True)

    def _path(self, topic: str, partition: int) -> Path:
        return self.folder / f"{topic}-{partition}.safetensors"

    def save(self, topic: str, partition: int, state: dict[str, Any]) -> None:
        tensors: dict[str, np.ndarray] = {}
        skeleton = _split(state, tensors)
        path = self._path(topic, partition)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        save_file(tensors, str(tmp), metadata={"state": json.dumps(skeleton, allow_nan=False)})
        os.replace(tmp, path)

    def load(self, topic: str, partition: int) -> dict[str, Any] | None:
        path = self._path(topic, partition)
        if not path.exists():
            return None
        try:
            with safe_open(str(path), "np") as f:
                skeleton = json.loads((f.metadata() or {})["state"])
            tensors = load_file(str(path))
        except (SafetensorError, KeyError, ValueError, OSError) as exc:
            raise CheckpointError(f"{path} is not an Argus checkpoint ({exc}); move it away to start cold") from None
        return _join(skeleton, tensors)


def _split(value: Any, tensors: dict[str, np.ndarray]) -> Any:
    """The JSON skeleton of a state, its arrays moved into ``tensors`` under generated names."""
    if isinstance(value, np.ndarray):
        name = f"t{len(tensors)}"
        tensors[name] = np.ascontiguousarray(value)
        return {_TENSOR: name}
    if isinstance(value, dict):
        return {str(k): _split(v, tensors) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_split(v, tensors) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return {_FLOAT: repr(value)}
    return value


def _join(skeleton: Any, tensors: dict[str, np.ndarray]) -> Any:
    if isinstance(skeleton, dict):
        if set(skeleton) == {_TENSOR} and isinstance(skeleton[_TENSOR], str):
            return tensors[skeleton[_TENSOR]]
        if set(skeleton) == {_FLOAT}:
            return float(skeleton[_FLOAT])
        return {k: _join(v, tensors) for k, v in skeleton.items()}
    if isinstance(skeleton, list):
        return [_join(v, tensors) for v in skeleton]
    return skeleton
