"""A context memory: how new the latest value is, given what came before it (CAD-OSE's).

This is the memory of the Contextual Anomaly Detector (CAD-OSE, M. Smirnov 2016, 69.9 on
NAB's scoreboard), written afresh: on NAB, with the same inputs, it gives CAD-OSE's scores
exactly, bar one choice (``step``'s tie-break), which moves NAB standard from 69.96 to 69.66.

Each value arrives as a small set of *facts* (integers; the novelty expert gives three per
value, one per bit of its level). A *context* pairs a left set of facts (what was true before:
the previous value's facts and the contexts active then) with a right set (the facts of the value
that followed). Each step:

1. The pair (everything true before, the new value's facts) is looked up, and stored if new:
   the zero-level context.
2. Every stored context whose left side lay wholly inside what was true before is *selected*;
   of those, the ones whose right side lies wholly inside the new value's facts are *active*.
3. If the zero-level context was new, the partial matches of contexts that were once zero-level
   are stored as new, smaller contexts (their left sides at most ``MAX_LEFT`` facts): the memory
   generalises from whole situations to their parts.
4. The ``MAX_ACTIVE`` most often active contexts become facts themselves (*neurons*) of the
   next step's left side, which is how the memory sees more than one step back.

The score of the step is ``(1 - active / selected + added / candidates) / 2``: high when little
of what the memory expected came true and much of what it saw was new. A step into a whole
situation the memory has been in before adds nothing, so it scores 0.5 at most (CAD-OSE's
novelty threshold is 0.75).

The memory stops storing contexts once it holds ``MAX_CONTEXTS`` (then it scores against what
it has): a step into a situation it knows visits only the contexts whose left side held (found
by their largest fact); a step into a new one visits those and every context whose left set
ever held a whole situation and shares a fact with what came before, so time and memory grow
with the memory. On NAB's 58 files the largest holds 12,470
contexts after 18,050 values, bar pure noise (``art_noisy``: 63,000 after 4,032 values).

>>> memory = ContextMemory()
>>> low, high, middle = (0, 2, 4), (1, 3, 5), (1, 2, 4)  # the facts of levels 0, 7 and 3
>>> scores = [memory.step(facts) for facts in [low, high] * 8 + [middle, high]]
>>> [round(score, 2) for score in scores[-6:]]  # swinging low-high, then a middle value
[0.5, 0.5, 0.5, 0.5, 1.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

NEURON = 2 ** 31  # facts at or above this stand for active contexts, below it for values
MAX_ACTIVE = 15  # contexts that become facts of the next step (CAD-OSE's)
MAX_LEFT = 7  # the most facts a context generalised from a partial match keeps on its left
MAX_CONTEXTS = 20_000  # stored per memory, then no more (see the module doc)

Facts = tuple[int, ...]


class _Side:
    """One side's distinct fact sets (semi-contexts), numbered in order of arrival."""

    __slots__ = ("ids", "facts", "index", "by_top")

    def __init__(self):
        self.ids: dict[Facts, int] = {}
        self.facts: list[Facts] = []
        self.index: dict[int, list[int]] = {}  # fact -> the sets holding it
        self.by_top: dict[int, list[int]] = {}  # fact -> the sets whose largest fact it is

    def id_of(self, facts: Facts) -> int:
        found = self.ids.get(facts)
        if found is None:
            found = self.ids[facts] = len(self.facts)
            self.facts.append(facts)
            for fact in facts:
                self.index.setdefault(fact, []).append(found)
            self.by_top.setdefault(facts[-1], []).append(found)
        return found

    def inside(self, facts: Facts) -> list[int]:
        """The stored sets lying wholly inside ``facts`` (sorted), found by their largest fact."""
        within = set(facts)
        return [found for fact in facts for found in self.by_top.get(fact, ())
                if within.issuperset(self.facts[found])]


def _crossed(index: dict[int, list[int]], facts: Iterable[int]) -> dict[int, list[int]]:
    """Each set in ``index`` (fact -> the sets holding it) sharing a fact with ``facts``
    (sorted): the facts it shares, in order."""
    shared: dict[int, list[int]] = {}
    for fact in facts:
        for found in index.get(fact, ()):
            shared.setdefault(found, []).append(fact)
    return shared


class ContextMemory:
    """One channel's contexts; ``step`` learns a value's facts and scores how new they were."""

    def __init__(self, max_contexts: int = MAX_CONTEXTS):
        self.max_contexts = max_contexts
        self.left, self.right = _Side(), _Side()
        self.links: list[dict[int, int]] = []  # per left set: right set -> context
        self.context_left: list[int] = []
        self.activations: list[int] = []
        self.zero_level: list[bool] = []  # ever a whole situation, not only a part of one
        self.whole_index: dict[int, list[int]] = {}  # fact -> the left sets of once-whole contexts holding it
        self.whole_lefts: set[int] = set()
        self.before: Facts = ()  # what is true before the next value: its facts and neurons

    def __len__(self) -> int:
        return len(self.activations)

    def step(self, facts: Iterable[int]) -> float:
        """Score the value whose facts these are against what came before it, then learn it."""
        current = tuple(sorted(set(facts)))
        new_whole = None
        if self.before:
            context, added = self._store(self.before, current, zero_level=True)
            new_whole = context if added else None
        right_crossed = _crossed(self.right.index, current)
        whole_right = {right_id for right_id, shared in right_crossed.items()
                       if len(shared) == len(self.right.facts[right_id])}
        if new_whole is None:
            active, selected = self._expected(whole_right)
            parts: list[tuple[Facts, Facts]] = []
        else:
            active, selected, parts = self._expected_and_parts(right_crossed, whole_right, new_whole)
        for context in active:
            self.activations[context] += 1
        share_active = len(active) / selected if selected else 0.0
        share_added = 0.0
        if new_whole is not None:
            added = 1 + sum(self._store(left, right, zero_level=False)[1] for left, right in dict.fromkeys(parts))
            share_added = added / len({*parts, (self.before, current)})
        active.sort(key=lambda context: (self.activations[context], context))  # ties: the newest last
        neurons = {NEURON + context for context in active[-MAX_ACTIVE:]}
        self.before = tuple(sorted(set(current) | neurons))
        return (1.0 - share_active + share_added) / 2.0

    def _expected(self, whole_right: set[int]) -> tuple[list[int], int]:
        """(active, selected) of a step whose whole situation was known: only contexts whose
        left side lies wholly inside ``before`` count, so only those are visited. Context 0 sits
        out (CAD-OSE's, as in ``_expected_and_parts``). ``whole_right``: the right sets lying
        wholly inside the new value's facts."""
        active: list[int] = []
        selected = 0
        for left_id in self.left.inside(self.before):
            links = self.links[left_id]
            selected += len(links) - (left_id == self.context_left[0])
            for right_id in whole_right:
                context = links.get(right_id)
                if context:  # neither absent nor context 0
                    active.append(context)
        return active, selected

    def _expected_and_parts(self, right_crossed: dict[int, list[int]], whole_right: set[int], new_whole: int
                            ) -> tuple[list[int], int, list[tuple[Facts, Facts]]]:
        """(active, selected, parts) of a step whose whole situation was new (``new_whole``,
        which sits out). Parts come only from contexts that were once whole situations, so the
        left sets holding one are visited wherever they share a fact with ``before``, the others
        only where they lie wholly inside it."""
        active: list[int] = []
        selected = 0
        parts: list[tuple[Facts, Facts]] = []
        inside = set(self.left.inside(self.before))
        shared_by = _crossed(self.whole_index, self.before)
        for left_id in sorted(inside | shared_by.keys()):
            links = self.links[left_id]
            whole_left = left_id in inside
            left_shared = shared_by.get(left_id)
            if left_shared is None:  # no once-whole context: it can only be selected and active
                selected += len(links)
                active.extend(context for right_id in whole_right
                              if (context := links.get(right_id)) is not None)
                continue
            for right_id, context in links.items():
                if context == new_whole:
                    continue
                right_shared = right_crossed.get(right_id)
                if whole_left:
                    selected += 1
                    if right_id in whole_right:
                        active.append(context)
                        continue
                if right_shared and self.zero_level[context] and len(left_shared) <= MAX_LEFT:
                    parts.append((tuple(left_shared), tuple(right_shared)))
        return active, selected, parts

    def _store(self, left: Facts, right: Facts, zero_level: bool) -> tuple[int, bool]:
        """The context (left, right) and whether it was added now; -1 if new and the memory is full."""
        left_id, right_id = self.left.ids.get(left), self.right.ids.get(right)
        if left_id is not None and right_id is not None:
            context = self.links[left_id].get(right_id)
            if context is not None:
                if zero_level:
                    self._mark_whole(context)
                return context, False
        if len(self) >= self.max_contexts:
            return -1, True
        left_id, right_id = self.left.id_of(left), self.right.id_of(right)
        if left_id == len(self.links):
            self.links.append({})
        context = self.links[left_id][right_id] = len(self.activations)
        self.context_left.append(left_id)
        self.activations.append(0)
        self.zero_level.append(False)
        if zero_level:
            self._mark_whole(context)
        return context, True

    def _mark_whole(self, context: int) -> None:
        self.zero_level[context] = True
        left_id = self.context_left[context]
        if left_id not in self.whole_lefts:
            self.whole_lefts.add(left_id)
            for fact in self.left.facts[left_id]:
                self.whole_index.setdefault(fact, []).append(left_id)

    def state_dict(self) -> dict:
        """Arrays only: each side's sets (flattened, with their lengths), the contexts, ``before``."""
        context_right = np.empty(len(self), dtype=np.int64)
        for links in self.links:
            for right_id, context in links.items():
                context_right[context] = right_id
        return {"left": _flat(self.left.facts), "left_lengths": _lengths(self.left.facts),
                "right": _flat(self.right.facts), "right_lengths": _lengths(self.right.facts),
                "context_left": np.asarray(self.context_left, dtype=np.int64),
                "context_right": context_right,
                "activations": np.asarray(self.activations, dtype=np.int64),
                "zero_level": np.asarray(self.zero_level, dtype=np.uint8),
                "before": np.asarray(self.before, dtype=np.int64)}

    @classmethod
    def from_state(cls, state: dict, max_contexts: int = MAX_CONTEXTS) -> ContextMemory:
        memory = cls(max_contexts)
        for side, name in ((memory.left, "left"), (memory.right, "right")):
            for facts in _unflat(state[name], state[f"{name}_lengths"]):
                side.id_of(facts)
        memory.links = [{} for _ in memory.left.facts]
        memory.context_left = np.asarray(state["context_left"]).astype(int).tolist()
        context_right = np.asarray(state["context_right"]).astype(int).tolist()
        for context, (left_id, right_id) in enumerate(zip(memory.context_left, context_right)):
            memory.links[left_id][right_id] = context
        memory.activations = np.asarray(state["activations"]).astype(int).tolist()
        memory.zero_level = [False] * len(memory.activations)
        for context in np.flatnonzero(np.asarray(state["zero_level"])).tolist():
            memory._mark_whole(context)
        memory.before = tuple(np.asarray(state["before"]).astype(int).tolist())
        return memory


def _flat(sets: list[Facts]) -> np.ndarray:
    return np.fromiter((fact for facts in sets for fact in facts), dtype=np.int64)


def _lengths(sets: list[Facts]) -> np.ndarray:
    return np.fromiter((len(facts) for facts in sets), dtype=np.int64, count=len(sets))


def _unflat(flat: np.ndarray, lengths: np.ndarray) -> list[Facts]:
    values = np.asarray(flat).astype(int).tolist()
    ends = np.cumsum(np.asarray(lengths, dtype=np.int64)).tolist()
    return [tuple(values[end - length:end]) for end, length in zip(ends, np.asarray(lengths).astype(int).tolist())]
