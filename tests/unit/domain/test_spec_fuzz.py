"""Hypothesis against parse_spec: any JSON value gives a Spec or a SpecError naming a field, and every
spec the CRD admits either parses or is refused, and once parsed survives planner passes at any
clock a record can hold (no overflow, no crash, a record that reads back)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from hostile import FULL_SPEC, SPEC_FIELD_NAMES, admitted_specs, json_values, one_field_hostile
from keyturn.domain import analysis as gate
from keyturn.domain import record
from keyturn.domain.durations import MAX_DURATION
from keyturn.domain.model import AnalysisResult, Ring
from keyturn.domain.planner import Emergency, Observations, Requests
from keyturn.domain.spec import Spec, SpecError
from keyturn.domain.spec_parser import parse_spec
from keyturn.domain.targets import Role, Target, decide, revisions
from planning import step

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# The latest clock whose "now + the longest span" a record still holds.
LAST_CLOCK = record.LATEST - MAX_DURATION - timedelta(seconds=1)
clocks = st.sampled_from([record.EARLIEST, datetime(2026, 5, 1, tzinfo=UTC), LAST_CLOCK]) | st.datetimes(
    min_value=record.EARLIEST.replace(tzinfo=None),
    max_value=LAST_CLOCK.replace(tzinfo=None),
    timezones=st.just(UTC),
)
jumps = st.sampled_from(
    [
        timedelta(0),
        timedelta(seconds=1),
        timedelta(days=1),
        timedelta(days=90),
        MAX_DURATION,
        timedelta(days=10**6),
    ]
) | st.timedeltas(min_value=timedelta(0), max_value=MAX_DURATION)


def parse(raw: object) -> Spec | None:
    """The spec, or None when refused; a refusal must name a field of the spec."""
    try:
        return parse_spec("keys", "ns", raw)
    except SpecError as exc:
        message = str(exc)
    assert message.startswith("spec"), message
    assert len(message) < 1000  # a message for a condition, not a dump of the input
    return None


@FAST
@given(json_values(SPEC_FIELD_NAMES))
def test_any_json_value_parses_or_is_a_spec_error(raw: Any) -> None:
    parse(raw)


@FAST
@given(st.dictionaries(st.sampled_from(SPEC_FIELD_NAMES), json_values(SPEC_FIELD_NAMES, max_leaves=10)))
def test_any_object_of_spec_fields_parses_or_is_a_spec_error(raw: dict[str, Any]) -> None:
    parse(raw)


@FAST
@given(one_field_hostile(FULL_SPEC, SPEC_FIELD_NAMES))
def test_one_hostile_field_in_a_valid_spec(case: tuple[tuple[Any, ...], Any]) -> None:
    _, raw = case
    parse(raw)


def test_the_full_spec_is_valid() -> None:
    """So that the hostile-field test above starts from a spec that parses."""
    assert parse(FULL_SPEC) is not None


@dataclass(frozen=True)
class Pass:
    requests: Requests
    observed: Observations
    jump: timedelta


passes = st.builds(
    Pass,
    st.sampled_from(
        [
            Requests(),
            Requests(rotate="r"),
            Requests(rollback="b"),
            Requests(emergency=Emergency("e")),
            Requests(emergency=Emergency("all", revoke_all=True)),
        ]
    ),
    st.sampled_from(
        [
            Observations(),
            Observations(signers_ready=False, signer_targets=True),
            Observations(signer_failure="api: rollout timed out", signer_targets=True),
            Observations(verifiers_ready=False),
            *(Observations(analysis=verdict) for verdict in AnalysisResult),
        ]
    ),
    jumps,
)


def check_times(spec: Spec, ring: Ring, now: datetime) -> None:
    """Everything computed from the ring and the spec at this clock is a time, not an overflow."""
    for key in ring.keys:
        for moment in (key.created_at, key.activated_at, key.remove_from_jwks_at, key.purge_at):
            if moment is not None:
                assert record.EARLIEST <= moment < record.LATEST
    current = ring.current
    if spec.analysis is not None and current is not None and current.signers_ready_at is not None:
        times = gate.schedule(spec.analysis, current.signers_ready_at)
        assert times[-1] - current.signers_ready_at <= MAX_DURATION
        gate.assess(spec.analysis, current.signers_ready_at, now, {})
    for stamped in (now, record.LATEST - timedelta(seconds=1)):
        target = Target("api", Role.SIGNER, 0, "old", stamped, False, False, None, "0/1 updated")
        decide([target], revisions(ring), now, spec.rollout, {})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(admitted_specs(), clocks, st.lists(passes, min_size=1, max_size=5))
def test_admitted_specs_parse_or_refuse_and_then_plan_at_any_clock(
    raw: dict[str, Any], start: datetime, steps: list[Pass]
) -> None:
    spec = parse(raw)
    event("refused" if spec is None else "planned")
    if spec is None:
        return
    rotation = spec.rotation
    for span in (rotation.interval, rotation.publish_ahead, rotation.grace_period, rotation.retention):
        assert span is None or timedelta(0) <= span <= MAX_DURATION
    assert spec.analysis is None or spec.analysis.window <= MAX_DURATION
    ring, now = Ring(), start
    for i, the_pass in enumerate(steps):
        requests = the_pass.requests
        if requests.rotate:
            requests = Requests(rotate=f"{requests.rotate}{i}")
        result = step(spec, ring, now, requests, the_pass.observed)
        if result.requeue:
            result = step(spec, result.ring, now, requests, the_pass.observed)
        for moment in (result.wake_at, result.next_rotation_at):
            if moment is not None:
                record.timestamp(moment)  # the status can show it
                assert moment > now or moment == result.next_rotation_at
        ring = record.loads(record.dumps(result.ring))  # what was written reads back
        check_times(spec, ring, now)
        now += min(the_pass.jump, LAST_CLOCK - now)
