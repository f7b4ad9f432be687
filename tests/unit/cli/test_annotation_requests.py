"""cli/annotation_requests.py: rotate and rollback, and the local check before a rollback."""

from __future__ import annotations

from typing import Any

import pytest

from keyturn.cli import annotation_requests
from keyturn.cli.errors import CliError, ExitCode
from keyturn.domain import status as projection
from keyturn.domain.model import Ring
from unit.cli.samples import OLD, STATUS
from unit.domain.rollback_cases import CASES, T0, Case, keys_of


def test_rollback_needs_a_previous_key() -> None:
    assert annotation_requests.rollback_target(STATUS, "api-keys") == OLD
    without = {**STATUS, "keys": [k for k in STATUS["keys"] if k["state"] != "previous"]}
    with pytest.raises(CliError) as caught:
        annotation_requests.rollback_target(without, "api-keys")
    assert caught.value.code == ExitCode.REJECTED and "no previous key" in caught.value.message


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_the_cli_checks_a_rollback_with_keyturns_own_rule(case: Case) -> None:
    """The keys of the domain's table, projected into status as Keyturn writes it, give the CLI the
    key the planner would restore, or a refusal when the planner would have none."""
    ring = Ring(keys=tuple(keys_of(case)))
    status = projection.build(
        generation=1,
        ring=ring,
        plan=None,
        violations=(),
        observed=projection.Observed(),
        existing={},
        now=T0,
    )
    if case.target is None:
        with pytest.raises(CliError) as caught:
            annotation_requests.rollback_target(status, "api-keys")
        assert caught.value.code == ExitCode.REJECTED
    else:
        assert annotation_requests.rollback_target(status, "api-keys") == case.target


@pytest.mark.parametrize(
    "status",
    [
        pytest.param({"currentKid": "k", "keys": "junk"}, id="keys is not a list"),
        pytest.param({"currentKid": "k", "keys": [7, {"kid": "p"}, {"state": "previous"}]}, id="junk keys"),
        pytest.param({"currentKid": "k", "keys": [{"kid": "p", "state": "Previous"}]}, id="a state misspelt"),
    ],
)
def test_a_status_without_a_readable_previous_key_refuses_a_rollback(status: dict[str, Any]) -> None:
    with pytest.raises(CliError) as caught:
        annotation_requests.rollback_target(status, "api-keys")
    assert caught.value.code == ExitCode.REJECTED and "no previous key" in caught.value.message
