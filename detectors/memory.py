"""What the keyed scorers share: checked input rows, rows grouped by key, state files.

A state file is one safetensors file: the tensors, plus a small JSON document (configuration,
keys, counters) in the file's text metadata. Loading it runs no code, unlike a pickle.

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "state.safetensors")
>>> save_state(path, {"a": torch.ones(2)}, {"k": 3})
>>> tensors, meta = load_state(path)
>>> tensors["a"].tolist(), meta
([1.0, 1.0], {'k': 3})
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

_META_FIELD = "argus"


# Scorers compute in float64 on every device: exact enough to match scikit-learn to 1e-5, and the
# same scores on CPU and GPU. On the lent H200, float64 LOF ran as fast as float32 (data-centre
# GPUs have fast float64); pass dtype=torch.float32 to a scorer for a GPU whose float64 is slow,
# knowing that nearly parallel vectors (cosine near 1, a large common offset) then lose digits.
DEFAULT_DTYPE = torch.float64


def as_rows(vectors: torch.Tensor | np.ndarray, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``vectors`` as a finite (B, D) tensor on ``device``; a one-line ValueError otherwise."""
    if not isinstance(vectors, torch.Tensor):
        vectors = torch.as_tensor(np.asarray(vectors, dtype=np.float64))
    if vectors.dim() != 2 or vectors.shape[1] == 0:
        raise ValueError(f"expected vectors of shape (batch, dim), got shape {tuple(vectors.shape)}")
    rows = vectors.to(device=device, dtype=dtype)
    if not bool(torch.isfinite(rows).all()):
        raise ValueError("vectors contain NaN or infinite values")
    return rows


def rows_by_key(keys: Sequence[str] | None, count: int) -> dict[str, torch.Tensor]:
    """Row indices of each key, in row order; one shared key ``""`` when ``keys`` is None.

    >>> {k: v.tolist() for k, v in rows_by_key(["a", "b", "a"], 3).items()}
    {'a': [0, 2], 'b': [1]}
    """
    if keys is None:
        return {"": torch.arange(count)}
    if len(keys) != count:
        raise ValueError(f"got {len(keys)} keys for {count} vectors; give one key per row")
    groups: dict[str, list[int]] = {}
    for row, key in enumerate(keys):
        groups.setdefault(str(key), []).append(row)
    return {key: torch.tensor(rows) for key, rows in groups.items()}


def save_state(path: str | os.PathLike, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Write tensors (moved to CPU) and a JSON document to one safetensors file, atomically."""
    tmp = f"{os.fspath(path)}.tmp"
    save_file({name: t.detach().cpu().contiguous() for name, t in tensors.items()}, tmp,
              metadata={_META_FIELD: json.dumps(meta)})
    os.replace(tmp, path)


def load_state(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[dict[str, torch.Tensor], dict]:
    """The tensors (on ``device``) and the JSON document that ``save_state`` wrote."""
    with safe_open(os.fspath(path), framework="pt", device=str(device)) as f:
        meta = (f.metadata() or {}).get(_META_FIELD)
        if meta is None:
            raise ValueError(f"{path} is not an Argus state file (no '{_META_FIELD}' metadata)")
        return {name: f.get_tensor(name) for name in f.keys()}, json.loads(meta)


def dtype_name(dtype: torch.dtype) -> str:
    """'float64' for torch.float64: how a config names a dtype in JSON."""
    return str(dtype).removeprefix("torch.")


KeyState = tuple[dict[str, torch.Tensor], dict]  # one key's tensors and small counters


def keyed_state(scorer: str, config: dict, states: dict[str, KeyState]) -> dict:
    """A keyed scorer's ``state_dict``: nested dicts of numpy arrays and JSON values (the shape
    the pipeline's checkpoints store), naming the scorer and its constructor arguments."""
    return {"scorer": scorer, "config": config, "keys": {
        key: {"tensors": {name: t.detach().cpu().numpy() for name, t in tensors.items()}, "counters": counters}
        for key, (tensors, counters) in states.items()}}


def unpack_keyed_state(state: dict, scorer: str, config: dict, device: torch.device, dtype: torch.dtype,
                       ) -> dict[str, KeyState]:
    """Each key's tensors (on ``device``, in ``dtype``) and counters from a ``keyed_state`` of
    ``scorer`` made with the same constructor arguments (the dtype aside)."""
    if state.get("scorer") != scorer:
        raise ValueError(f"the state is a {state.get('scorer')!r} scorer's, not a {scorer} scorer's")
    theirs, ours = (dict(c, dtype=None) for c in (state["config"], config))
    if theirs != ours:
        raise ValueError(f"the state was made with {state['config']}, this scorer has {config}")
    return {key: ({name: torch.as_tensor(a).to(device=device, dtype=dtype) for name, a in entry["tensors"].items()},
                  dict(entry["counters"]))
            for key, entry in state["keys"].items()}


def save_keyed_state(path: str | os.PathLike, state: dict) -> None:
    """A ``keyed_state`` to one safetensors file."""
    tensors, keys = {}, []
    for i, (key, entry) in enumerate(state["keys"].items()):
        tensors.update({f"{i}.{name}": torch.from_numpy(a) for name, a in entry["tensors"].items()})
        keys.append(dict(key=key, counters=entry["counters"]))
    save_state(path, tensors, dict(scorer=state["scorer"], config=state["config"], keys=keys))


def load_keyed_state(path: str | os.PathLike, scorer: str) -> tuple[dict, dict]:
    """The ``keyed_state`` of ``scorer`` that ``save_keyed_state`` wrote, and its constructor
    arguments with the dtype as a torch dtype; a ValueError for any other file."""
    tensors, meta = load_state(path)
    if meta.get("scorer") != scorer:
        raise ValueError(f"{path} holds a {meta.get('scorer')!r} state, not a {scorer} scorer's")
    keys = {}
    for i, entry in enumerate(meta["keys"]):
        prefix = f"{i}."
        keys[entry["key"]] = {"tensors": {name.removeprefix(prefix): t.numpy() for name, t in tensors.items()
                                          if name.startswith(prefix)}, "counters": entry["counters"]}
    state = dict(scorer=meta["scorer"], config=meta["config"], keys=keys)
    return state, dict(meta["config"], dtype=getattr(torch, meta["config"]["dtype"]))


class StateFile:
    """``save(path)`` and ``load(path, device)`` for a keyed scorer with ``state_name``,
    ``state_dict()``, ``load_state_dict()`` and constructor arguments ``config()``."""

    state_name = ""

    def save(self, path: str | os.PathLike) -> None:
        """The ``state_dict`` to one safetensors file."""
        save_keyed_state(path, self.state_dict())

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu"):
        """A scorer in the state ``save`` wrote, on ``device``."""
        state, config = load_keyed_state(path, cls.state_name)
        scorer = cls(device=device, **config)
        scorer.load_state_dict(state)
        return scorer
