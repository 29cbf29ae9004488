"""The context memory behind the novelty expert (CAD-OSE's): what it learns, its bound, its state."""

import numpy as np

from detectors.contexts import ContextMemory
from detectors.novelty import THRESHOLD, value_facts
from streams.checkpoints import CheckpointStore


def _facts(levels) -> list[tuple[int, ...]]:
    return value_facts(np.asarray(levels, dtype=np.int64))


def test_a_learned_cycle_scores_low_and_a_value_new_to_it_high():
    memory = ContextMemory()
    cycle = _facts([0, 2, 5, 7, 5, 2])
    scores = [memory.step(facts) for _ in range(40) for facts in cycle]
    assert max(scores[:6]) >= THRESHOLD  # everything is new at first
    assert max(scores[-60:]) < THRESHOLD  # ten cycles after thirty: nothing new
    assert memory.step(_facts([4])[0]) >= THRESHOLD  # a level the cycle never visits
    assert all(0.0 <= score <= 1.0 for score in scores)


def test_a_familiar_value_out_of_its_usual_place_is_new():
    memory = ContextMemory()
    for _ in range(40):
        for facts in _facts([0, 7, 3]):
            memory.step(facts)
    scores = [memory.step(facts) for facts in _facts([0, 7, 0])]
    # 0 and 7 as in the cycle, then 0 straight after 7: a context the cycle never had
    assert max(scores[:2]) < THRESHOLD <= scores[2]


def test_the_memory_stops_growing_when_full_and_goes_on_scoring():
    rng = np.random.default_rng(0)
    memory = ContextMemory(max_contexts=50)
    scores = [memory.step(facts) for facts in _facts(rng.integers(0, 8, size=500))]
    assert len(memory) == 50
    assert all(0.0 <= score <= 1.0 for score in scores)
    unbounded = ContextMemory()
    for facts in _facts(rng.integers(0, 8, size=500)):
        unbounded.step(facts)
    assert len(unbounded) > 50


def test_a_memory_restored_from_a_checkpoint_scores_like_the_original(tmp_path):
    rng = np.random.default_rng(1)
    levels = np.clip(np.round(rng.normal(size=600).cumsum() / 3), -1, 8).astype(np.int64)  # a walk, off the range too
    store = CheckpointStore(tmp_path, "g")
    store.save("t", 0, {"empty": ContextMemory().state_dict()})
    assert len(ContextMemory.from_state(store.load("t", 0)["empty"])) == 0
    original = ContextMemory()
    for facts in value_facts(levels[:300]):
        original.step(facts)
    store.save("t", 0, {"memory": original.state_dict()})
    restored = ContextMemory.from_state(store.load("t", 0)["memory"])
    assert len(restored) == len(original) > 0
    after = value_facts(levels[300:])
    assert [restored.step(f) for f in after] == [original.step(f) for f in after]


def test_a_step_into_a_situation_met_before_scores_at_most_one_half():
    rng = np.random.default_rng(2)
    memory = ContextMemory()
    known_scores = []
    for facts in _facts(rng.integers(0, 3, size=800)):  # three levels: situations recur
        left, right = memory.left.ids.get(memory.before), memory.right.ids.get(facts)
        known = left is not None and right is not None and right in memory.links[left]
        score = memory.step(facts)
        if known:
            known_scores.append(score)
    assert len(known_scores) > 100
    assert max(known_scores) <= 0.5 < THRESHOLD
