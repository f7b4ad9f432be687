"""domain/model.py: the key state machine (exactly the moves in model.TRANSITIONS are possible,
nothing else) and the rollback-target rule, the one the planner acts on and the CLI checks with."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from keyturn.domain.model import (
    TRANSITIONS,
    IllegalTransition,
    Key,
    KeyState,
    check_transition,
    rollback_target,
    transition,
)
from unit.domain.rollback_cases import CASES, Case, keys_of

T0 = datetime(2026, 1, 1, tzinfo=UTC)
STATES: list[KeyState | None] = [None, *KeyState]
PAIRS = [(a, b) for a, b in itertools.product(STATES, STATES) if a != b]


def _id(pair: tuple[KeyState | None, KeyState | None]) -> str:
    return f"{pair[0] or 'none'} -> {pair[1] or 'none'}"


@pytest.mark.parametrize("pair", PAIRS, ids=[_id(p) for p in PAIRS])
def test_a_move_is_allowed_exactly_when_the_table_lists_it(
    pair: tuple[KeyState | None, KeyState | None],
) -> None:
    old, new = pair
    if pair in TRANSITIONS:
        check_transition("k", old, new)
        if old is not None and new is not None:
            assert transition(Key("k", old, "ES256", 1, T0), new).state is new
    else:
        with pytest.raises(IllegalTransition, match="not a lifecycle transition"):
            check_transition("k", old, new)


@pytest.mark.parametrize(
    "dead_end",
    [KeyState.FAILED, KeyState.RETIRED, KeyState.REVOKED],
    ids=lambda s: f"a {s} key never signs again",
)
def test_no_key_signs_again_once_failed_retired_or_revoked(dead_end: KeyState) -> None:
    assert (dead_end, KeyState.CURRENT) not in TRANSITIONS
    assert (dead_end, KeyState.NEXT) not in TRANSITIONS


def test_a_revoked_key_only_leaves_the_record() -> None:
    assert {new for old, new in TRANSITIONS if old is KeyState.REVOKED} == {None}


def test_state_changes_cannot_bypass_the_table() -> None:
    key = Key("k", KeyState.REVOKED, "ES256", 1, T0)
    with pytest.raises(IllegalTransition):
        key.evolve(state=KeyState.CURRENT)
    assert key.evolve(reason="x").reason == "x"


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_rollback_restores_the_most_recently_demoted_previous_key(case: Case) -> None:
    target = rollback_target(keys_of(case))
    assert (target.kid if target else None) == case.target
