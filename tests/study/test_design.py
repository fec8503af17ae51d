"""The study design: who reads what, and in which order."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from medattn.benchmark import FINDINGS
from medattn.errors import StudyError
from medattn.study.design import Arm, SyntheticCaseSet, all_arms, reading_order

ARMS = ["none", "attention", "gradcam+probabilities"]


@pytest.mark.parametrize("cases", [2, 7, 12])
def test_every_reader_reads_every_case_once_per_arm(cases):
    for reader in range(4):
        order = reading_order(cases, ARMS, reader, seed=3)
        assert Counter(order) == Counter((c, arm) for c in range(cases) for arm in ARMS)


def test_two_readings_of_a_case_are_more_than_half_a_block_apart():
    cases = 12
    for reader in range(3):
        order = reading_order(cases, ARMS, reader, seed=5)
        places = {}
        for place, (case, _) in enumerate(order):
            places.setdefault(case, []).append(place)
        assert min(min(np.diff(p)) for p in places.values()) > cases // 2


def test_arms_are_counterbalanced_across_readers_and_orders_differ():
    cases = 9
    orders = [reading_order(cases, ARMS, reader, seed=1) for reader in range(len(ARMS))]
    for block in range(len(ARMS)):
        # Across as many readers as arms, each case meets each arm exactly once in every block.
        seen = Counter(order[block * cases + i] for order in orders for i in range(cases))
        assert set(seen.values()) == {1}
    for case in range(cases):  # so no arm is always read first: each reader meets a case first in another arm
        firsts = [next(arm for c, arm in order if c == case) for order in orders]
        assert sorted(firsts) == sorted(ARMS)
    assert orders[0] != orders[1]


def test_the_case_set_has_the_asked_prevalence_and_is_drawn_the_same_again():
    case_set = SyntheticCaseSet(seed=11, size=64, count=10, prevalence=0.3, findings=("nodule",))
    indices = case_set.indices()
    positives = [bool(case_set.case(i).labels[FINDINGS.index("nodule")]) for i in indices]
    assert len(set(indices)) == 10 and sum(positives) == 3
    assert case_set.indices() == indices


@pytest.mark.parametrize(
    "changes, message",
    [({"count": 1}, "between 2"), ({"prevalence": 0.01}, "no positive"), ({"findings": ("fracture",)}, "Choose")],
)
def test_an_unusable_case_set_is_refused_with_the_reason(changes, message):
    fields = {"seed": 1, "size": 64, "count": 10, "prevalence": 0.5, "findings": ("nodule",)} | changes
    with pytest.raises(StudyError, match=message):
        SyntheticCaseSet(**fields).validated()


def test_arms_round_trip_by_name_and_an_unknown_arm_is_refused():
    assert [Arm.parse(name).name for name in all_arms()] == all_arms()
    assert Arm.parse("occlusion+probabilities") == Arm("occlusion", True)
    with pytest.raises(StudyError, match="not an arm"):
        Arm.parse("magic")
