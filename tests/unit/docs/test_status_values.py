"""Every list of a status value in the docs and the CRD, against the code that writes the value.

Phase and conditions (domain/status.py), key states (domain/model.py), target states
(domain/targets.py), the analysis phase and measurement results (domain/analysis.py, rollout.py),
the emergency answer (domain/model.AckResult).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from keyturn.domain import analysis as gate
from keyturn.domain.model import AckResult, AnalysisResult, Key, KeyState, Operation, Ring
from keyturn.domain.spec_parser import parse_spec
from keyturn.domain.status import ConditionType, Phase
from keyturn.domain.targets import TargetState
from keyturn.rollout import RolloutResult, Rollouts
from unit.docs.sources import (
    between,
    crd_enum,
    crd_node,
    described_values,
    doc,
    run_after,
    section,
    strip_parens,
    tables,
    ticked,
)

NOW = datetime(2026, 11, 22, tzinfo=UTC)
SPEC = parse_spec(
    "docs",
    "default",
    {
        "analysis": {
            "prometheus": {"address": "http://prometheus:9090", "query": "up"},
            "initialDelay": "0s",
            "interval": "1m",
            "count": 3,
            "failureLimit": 2,
        }
    },
)


def measurement_results() -> set[str]:
    """What domain/analysis.assess writes for a good value, a bad one and no data."""
    assert SPEC.analysis is not None
    times = gate.schedule(SPEC.analysis, NOW)
    samples = dict(zip(times, [gate.Sample(1.0), gate.Sample(0.0), gate.Sample(None)], strict=True))
    return {
        point.result for point in gate.assess(SPEC.analysis, NOW, NOW + timedelta(hours=1), samples).points
    }


def running_phase() -> str:
    """What status.analysis.phase says while no verdict is in (rollout.Rollouts writes it)."""
    key = Key(
        kid="k1",
        state=KeyState.CURRENT,
        algorithm="RS256",
        serial=1,
        created_at=NOW,
        activated_at=NOW,
        activation=Operation.ROTATE,
        signers_ready_at=NOW,
    )
    result = RolloutResult()
    asyncio.run(Rollouts(api=None)._analyse(SPEC, Ring(keys=(key,)), NOW, result, query=False))
    assert result.analysis is not None
    return result.analysis.phase


def analysis_phases() -> set[str]:
    return {running_phase()} | {str(r) for r in AnalysisResult}


def status_row(field: str) -> str:
    """The meaning cell of a field in api.md's status table."""
    (table,) = [
        t for t in tables(section(doc("api.md"), "`status`")) if t and t[0][0] == "`observedGeneration`"
    ]
    (row,) = [r for r in table if r[0] == f"`{field}`"]
    return row[2]


def first_sentence(text: str) -> str:
    return text.split(". ", 1)[0]


CASES: list[tuple[str, Callable[[], set[str]], Callable[[], set[str]]]] = [
    # (where, what the docs list, what the code writes)
    (
        "api.md status table: phase",
        lambda: set(ticked(strip_parens(status_row("phase")))),
        lambda: set(Phase),
    ),
    (
        "api.md status table: conditions",
        lambda: set(ticked(first_sentence(status_row("conditions[]")))),
        lambda: set(ConditionType),
    ),
    (
        "api.md status table: key states",
        lambda: set(ticked(between(status_row("keys[]"), "`state` (required; ", ")"))),
        lambda: set(KeyState),
    ),
    (
        "api.md status table: target states",
        lambda: set(run_after(status_row("rollout"), "`state` is one of")),
        lambda: set(TargetState),
    ),
    (
        "api.md status table: analysis phase",
        lambda: set(ticked(between(status_row("analysis"), "`phase` (", ")"))),
        analysis_phases,
    ),
    (
        "api.md status table: measurement results",
        lambda: set(run_after(status_row("analysis"), "`result` one of")),
        measurement_results,
    ),
    (
        "api.md status.emergency: result",
        lambda: set(run_after(section(doc("api.md"), "`status.emergency`"), "`result` is")),
        lambda: set(AckResult),
    ),
    (
        "operations.md: phases",
        lambda: set(ticked(strip_parens(between(doc("operations.md"), "Phases: ", "Every condition")))),
        lambda: set(Phase),
    ),
    (
        "operations.md: conditions table",
        lambda: {ticked(row[0])[0] for row in tables(section(doc("operations.md"), "Watching a keyset"))[0]},
        lambda: set(ConditionType),
    ),
    (
        "rollouts.md: target states",
        lambda: set(run_after(doc("rollouts.md"), "each with `state` (")),
        lambda: set(TargetState),
    ),
    (
        "rollouts.md: analysis phase",
        lambda: set(ticked(between(doc("rollouts.md"), "`status.analysis.phase` is", "Each of"))),
        analysis_phases,
    ),
    (
        "rollouts.md: measurement results",
        lambda: set(run_after(doc("rollouts.md"), "and `result`:")),
        measurement_results,
    ),
    (
        "metrics.md: the state label",
        lambda: set(run_after(doc("metrics.md"), "`state` is a key state (")),
        lambda: set(KeyState),
    ),
    ("CRD: phase enum", lambda: crd_enum("status.phase"), lambda: set(Phase)),
    (
        "CRD: phase description",
        lambda: described_values(crd_node("status.phase")["description"]),
        lambda: set(Phase),
    ),
    (
        "CRD: condition types",
        lambda: described_values(crd_node("status.conditions")["items"]["description"]),
        lambda: set(ConditionType),
    ),
    ("CRD: key state enum", lambda: crd_enum("status.keys.state"), lambda: set(KeyState)),
    (
        "CRD: key state description",
        lambda: described_values(crd_node("status.keys.state")["description"]),
        lambda: set(KeyState),
    ),
    (
        "CRD: target state",
        lambda: described_values(crd_node("status.rollout.targets.state")["description"]),
        lambda: set(TargetState),
    ),
    (
        "CRD: analysis phase",
        lambda: described_values(crd_node("status.analysis.phase")["description"]),
        analysis_phases,
    ),
    (
        "CRD: measurement result",
        lambda: described_values(crd_node("status.analysis.measurements.result")["description"]),
        measurement_results,
    ),
    (
        "CRD: emergency result",
        lambda: described_values(crd_node("status.emergency.result")["description"]),
        lambda: set(AckResult),
    ),
]


@pytest.mark.parametrize(("where", "documented", "written"), CASES, ids=[c[0] for c in CASES])
def test_the_docs_list_exactly_the_values_the_code_writes(
    where: str, documented: Callable[[], set[str]], written: Callable[[], set[str]]
) -> None:
    listed, actual = documented(), {str(v) for v in written()}
    assert listed, f"{where}: no values found (did the sentence change?)"
    assert not actual - listed, f"{where} does not list {sorted(actual - listed)}"
    assert not listed - actual, f"{where} lists values the code never writes: {sorted(listed - actual)}"


def test_the_behaviours_read_for_the_code_s_side_yield_distinct_values() -> None:
    """A good value, a bad one and no data are three results; "running" is no verdict."""
    assert len(measurement_results()) == 3
    assert running_phase() not in {str(r) for r in AnalysisResult}
