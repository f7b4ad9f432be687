"""domain/analysis.py: the analysis gate's schedule and verdicts, with explicit clocks."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from keyturn.domain import analysis as gate
from keyturn.domain.model import AnalysisResult
from keyturn.domain.spec import AnalysisSpec, OnFailure, OnNoData

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)
ANALYSIS = AnalysisSpec(
    address="http://p",
    query="q",
    success_threshold=0.95,
    initial_delay=60 * S,
    interval=30 * S,
    count=4,
    failure_limit=1,
    on_no_data=OnNoData.INCONCLUSIVE,
    on_failure=OnFailure.ROLLBACK,
)


def samples(*values: float | None) -> dict[datetime, gate.Sample]:
    times = gate.schedule(ANALYSIS, NOW)
    return {at: gate.Sample(v) for at, v in zip(times, values, strict=False)}


def test_analysis_schedule_and_running_state() -> None:
    assert gate.schedule(ANALYSIS, NOW) == [NOW + 60 * S, NOW + 90 * S, NOW + 120 * S, NOW + 150 * S]
    early = gate.assess(ANALYSIS, NOW, NOW + 10 * S, {})
    assert early.verdict is None and early.next_at == NOW + 60 * S and early.due == ()
    due = gate.assess(ANALYSIS, NOW, NOW + 95 * S, {})
    assert due.due == (NOW + 60 * S, NOW + 90 * S)


@pytest.mark.parametrize(
    ("values", "verdict"),
    [
        ((0.99, 0.97, 0.96, 1.0), AnalysisResult.PASSED),
        ((0.99, 0.5, 0.99, 0.99), AnalysisResult.PASSED),  # one failure tolerated (failureLimit 1)
        ((0.5, 0.4), AnalysisResult.FAILED),  # fails as soon as the limit is exceeded
        ((0.99, None, 0.99, 0.99), AnalysisResult.INCONCLUSIVE),
    ],
)
def test_analysis_verdicts(values: tuple[float | None, ...], verdict: AnalysisResult) -> None:
    end = NOW + 10 * 60 * S
    assert gate.assess(ANALYSIS, NOW, end, samples(*values)).verdict is verdict


def test_no_data_policies() -> None:
    end = NOW + 10 * 60 * S
    data = samples(None, None, 0.99, 0.99)
    assert (
        gate.assess(dataclasses.replace(ANALYSIS, on_no_data=OnNoData.PASS), NOW, end, data).verdict
        is AnalysisResult.PASSED
    )
    assert (
        gate.assess(dataclasses.replace(ANALYSIS, on_no_data=OnNoData.FAIL), NOW, end, data).verdict
        is AnalysisResult.FAILED
    )


def test_analysis_schedule_past_the_end_of_time_never_comes() -> None:
    huge = dataclasses.replace(ANALYSIS, interval=timedelta(days=999_999_999))
    assert gate.schedule(huge, NOW) == [NOW + 60 * S]
    assert gate.assess(huge, NOW, NOW + 61 * S, {}).due == (NOW + 60 * S,)


def test_the_latest_no_data_reason_is_in_the_verdict() -> None:
    times = gate.schedule(ANALYSIS, NOW)
    data = {at: gate.Sample(0.99) for at in times}
    data[times[1]] = gate.Sample(None, "prometheus unreachable: timed out")
    verdict = gate.assess(ANALYSIS, NOW, NOW + 10 * 60 * S, data)
    assert verdict.verdict is AnalysisResult.INCONCLUSIVE and "prometheus unreachable" in verdict.message
