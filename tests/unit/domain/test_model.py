"""domain/model.py: the rollback-target rule, the one the planner acts on and the CLI checks with."""

from __future__ import annotations

import pytest

from keyturn.domain.model import rollback_target
from unit.domain.rollback_cases import CASES, Case, keys_of


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_rollback_restores_the_most_recently_demoted_previous_key(case: Case) -> None:
    target = rollback_target(keys_of(case))
    assert (target.kid if target else None) == case.target
