"""status.history's vocabulary (operations, triggers, results) wherever the docs and the CRD list it,
and the metrics that count history entries (metrics.record_plan) against the history table."""

from __future__ import annotations

import ast
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY

from keyturn import metrics
from keyturn.domain.model import HistoryEntry, HistoryResult, Operation, Ring, Trigger
from keyturn.domain.plan import Plan
from keyturn.domain.reasons import Reason
from keyturn.domain.spec_parser import parse_spec
from unit.docs.sources import (
    ROOT,
    between,
    crd_node,
    described_values,
    doc,
    section,
    strip_parens,
    tables,
    ticked,
)

NOW = datetime(2026, 11, 22, tzinfo=UTC)
VOCABULARIES: dict[str, set[str]] = {
    "operation": {str(v) for v in Operation},
    "trigger": {str(v) for v in Trigger},
    "result": {str(v) for v in HistoryResult},
}


def history_table() -> dict[str, dict[str, set[str]]]:
    """api.md's status.history table: operation -> {"trigger": {...}, "result": {...}}."""
    (rows,) = tables(section(doc("api.md"), "`status.history`"))
    table = {}
    for operation, _when, triggers, results in rows:
        (name,) = ticked(operation)
        table[name] = {
            "trigger": set(ticked(strip_parens(triggers))),
            "result": set(ticked(strip_parens(results))),
        }
    return table


def listed_in_table(column: str) -> set[str]:
    table = history_table()
    return set(table) if column == "operation" else {v for row in table.values() for v in row[column]}


def audit_trail(column: str) -> set[str]:
    (rows,) = [t for t in tables(section(doc("security.md"), "Audit trail"))]
    (row,) = [r for r in rows if r[0].startswith("`status.history`")]
    label = {"operation": "Operations: ", "trigger": "Triggers: ", "result": "Results: "}[column]
    return set(ticked(between(strip_parens(row[1]) + " ", label, ". ")))


def in_the_crd(column: str) -> set[str]:
    return described_values(crd_node(f"status.history.{column}")["description"])


WHERE = {"api.md history table": listed_in_table, "security.md audit trail": audit_trail, "CRD": in_the_crd}


@pytest.mark.parametrize("column", sorted(VOCABULARIES))
@pytest.mark.parametrize("where", sorted(WHERE))
def test_every_history_value_is_listed_and_nothing_else(where: str, column: str) -> None:
    listed = WHERE[where](column)
    actual = VOCABULARIES[column]
    assert not actual - listed, f"{where} does not list the {column}s {sorted(actual - listed)}"
    assert not listed - actual, f"{where} lists {column}s the code never writes: {sorted(listed - actual)}"


# ------------------------------------------------------------------------------------------ metrics
COUNTERS = ("keyturn_rotations_total", "keyturn_revocations_total", "keyturn_rollbacks_total")


def counted_operation(counter: str) -> Operation:
    """The one operation whose history entries `counter` counts, found by feeding record_plan each one."""
    spec = parse_spec("docs", "docs", {})
    found = []
    for operation in Operation:
        name = f"counted-{operation}"
        entry = HistoryEntry(NOW, operation, ("k",), Trigger.MANUAL, "", HistoryResult.SUCCEEDED)
        if operation is Operation.ROLLBACK:
            entry = HistoryEntry(NOW, operation, ("k",), Trigger.MANUAL, "", HistoryResult.ROLLED_BACK)
        labels = {"namespace": "docs", "keyset": name, "trigger": "manual"}
        before = REGISTRY.get_sample_value(counter, labels) or 0.0
        metrics.record_plan("docs", name, Ring(), Plan(ring=Ring(history=(entry,))), spec)
        metrics.forget("docs", name)
        if (REGISTRY.get_sample_value(counter, labels) or 0.0) > before:
            found.append(operation)
    assert len(found) == 1, f"{counter} counts {found}"
    return found[0]


def metric_row(name: str) -> str:
    (rows,) = tables(section(doc("metrics.md"), "Every metric"))[:1]
    (row,) = [r for r in rows if r[0] == f"`{name}`"]
    return strip_parens(row[3]) + " "


@pytest.mark.parametrize("counter", COUNTERS)
def test_a_counter_s_triggers_are_those_of_the_history_entries_it_counts(counter: str) -> None:
    documented = set(ticked(between(metric_row(counter), "Triggers: ", ". ")))
    operation = counted_operation(counter)
    assert documented == history_table()[str(operation)]["trigger"], (
        f"metrics.md's {counter} and api.md's `{operation}` history row name different triggers"
    )


def failure_reasons_in_code() -> set[str]:
    """Every `Reason.X` passed to `metrics.FAILURES.labels(...)` anywhere in the operator."""
    found = set()
    for path in (ROOT / "operator" / "keyturn").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "labels"
                and ast.unparse(node.func.value).endswith("FAILURES")
            ):
                for arg in ast.walk(node):
                    if isinstance(arg, ast.Attribute) and ast.unparse(arg.value) == "Reason":
                        found.add(str(Reason[arg.attr]))
    return found


def test_the_failure_reasons_are_those_the_operator_counts() -> None:
    in_code = failure_reasons_in_code()
    assert len(in_code) >= 2
    documented = set(ticked(between(metric_row("keyturn_failures_total"), "Reasons: ", ". ")))
    assert documented == in_code
