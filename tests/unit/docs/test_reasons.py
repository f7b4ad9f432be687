"""troubleshooting.md and design-decisions.md against the Reason vocabulary (domain/reasons.py)."""

from __future__ import annotations

import re
from datetime import timedelta

from keyturn.domain.reasons import RECHECK, SCOPES, Reason, Scope
from unit.docs.sources import between, doc, section, tables, ticked

REASONS = {str(r) for r in Reason}


def reason_rows() -> dict[str, list[str]]:
    """The rows of the Reasons table and of "Other words", by every reason their first cell names."""
    text = section(doc("troubleshooting.md"), "Reasons")
    rows: dict[str, list[str]] = {}
    for table in tables(text):
        for row in table:
            for name in ticked(row[0]):
                assert name not in rows, f"{name} has two rows"
                rows[name] = row
    return rows


def test_every_reason_has_a_row_and_every_row_is_a_reason() -> None:
    documented = set(reason_rows())
    assert not REASONS - documented, f"reasons troubleshooting.md does not explain: {REASONS - documented}"
    assert not documented - REASONS, (
        f"troubleshooting.md explains reasons the code lacks: {documented - REASONS}"
    )


def test_the_table_names_the_module_that_defines_the_reasons() -> None:
    text = section(doc("troubleshooting.md"), "Reasons")
    assert f"`operator/keyturn/{Reason.__module__.removeprefix('keyturn.').replace('.', '/')}.py`" in text


AGAIN = re.compile(r"(?:checked|tried) again every (10 s|30 s|minute)", re.IGNORECASE)
SPOKEN = {"10 s": timedelta(seconds=10), "30 s": timedelta(seconds=30), "minute": timedelta(minutes=1)}


def test_the_rechecks_the_rows_promise_are_the_code_s() -> None:
    promised = {}
    for name, row in reason_rows().items():
        found = {SPOKEN[m] for m in AGAIN.findall(" ".join(row))}
        assert len(found) <= 1, f"{name}: two different re-check times"
        if found:
            promised[Reason(name)] = found.pop()
    assert promised == dict(RECHECK)


def decision(number: int) -> str:
    text = doc("design-decisions.md")
    return " ".join(between(text, f"\n{number}. ", f"\n{number + 1}. ").split())


def test_decision_40_lists_every_recheck() -> None:
    named = {Reason(t) for t in ticked(decision(40)) if t in REASONS}
    assert named == set(RECHECK)


def test_decision_13_lists_the_keyset_scope() -> None:
    text = decision(13)
    keyset = {Reason(t) for t in ticked(between(text, "`keyset` (", ")"))}
    rotations = {Reason(t) for t in ticked(between(text, "`rotations` (", ")")) if t in REASONS}
    assert keyset == {r for r, s in SCOPES.items() if s is Scope.KEYSET}
    assert rotations <= {r for r, s in SCOPES.items() if s is Scope.ROTATIONS}
