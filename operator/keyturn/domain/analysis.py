"""The metric gate after an activation: when to measure, and what the measurements add up to.

Measurement times are fixed by the analysis start (recorded in the Secret) and the spec, and each
one is a Prometheus instant query *at that time*, so after a restart the same points are measured
again with the same answers instead of starting the window over.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from keyturn.domain.model import AnalysisResult
from keyturn.domain.spec import AnalysisSpec, OnNoData


@dataclass(frozen=True)
class Sample:
    """One query answer: a value, or None when the query returned no data (or NaN)."""

    value: float | None
    error: str = ""


@dataclass(frozen=True)
class Point:
    at: datetime
    value: float | None
    result: str  # Pass | Fail | NoData


@dataclass(frozen=True)
class Assessment:
    verdict: AnalysisResult | None  # None: still running
    points: tuple[Point, ...]
    due: tuple[datetime, ...]  # measurement times that have come and have no sample yet
    next_at: datetime | None
    message: str


def schedule(spec: AnalysisSpec, started_at: datetime) -> list[datetime]:
    """The measurement times; those past the end of `datetime` (absurd durations) never come."""
    times: list[datetime] = []
    for i in range(spec.count):
        try:
            times.append(started_at + spec.initial_delay + spec.interval * i)
        except OverflowError:
            break
    return times


def assess(
    spec: AnalysisSpec, started_at: datetime, now: datetime, samples: Mapping[datetime, Sample]
) -> Assessment:
    """Fail as soon as more than failureLimit points are below the threshold; otherwise wait for all."""
    times = schedule(spec, started_at)
    points: list[Point] = []
    due: list[datetime] = []
    failures = no_data = 0
    why = ""  # the latest reason for no data (Prometheus down, a refused address, a bad answer)
    for at in times:
        if at > now:
            break
        sample = samples.get(at)
        if sample is None:
            due.append(at)
            continue
        value = sample.value
        if value is None or math.isnan(value):
            no_data += 1
            why = sample.error or why
            points.append(Point(at, None, "NoData"))
            if spec.on_no_data == OnNoData.FAIL:
                failures += 1
            continue
        passed = value >= spec.success_threshold
        failures += 0 if passed else 1
        points.append(Point(at, value, "Pass" if passed else "Fail"))
    pending = [at for at in times if at > now]
    below = f"{failures} of {len(points)} measurements below {spec.success_threshold:g}"
    if why:
        below += f" ({no_data} without data, the latest: {why})"
    if failures > spec.failure_limit:
        return Assessment(
            AnalysisResult.FAILED,
            tuple(points),
            (),
            None,
            f"success rate below threshold: {below} (failureLimit {spec.failure_limit})",
        )
    if pending or due:
        return Assessment(
            None, tuple(points), tuple(due), pending[0] if pending else None, f"measuring: {below}"
        )
    if no_data and spec.on_no_data == OnNoData.INCONCLUSIVE:
        return Assessment(
            AnalysisResult.INCONCLUSIVE,
            tuple(points),
            (),
            None,
            f"{no_data} of {len(points)} measurements had no data (onNoData: Inconclusive)"
            + (f"; the latest: {why}" if why else ""),
        )
    return Assessment(AnalysisResult.PASSED, tuple(points), (), None, f"passed: {below}")
