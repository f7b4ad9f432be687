"""domain/planner.py: the decisions of the key lifecycle, with explicit clocks.

A scenario is a keyset's history run pass by pass the way the executor runs it (planning.step),
ending with the pass under test. The tables name what that pass must decide, one outcome per
table, so a case reads as a sentence and a new case is one row. Random histories close the module:
Hypothesis drives them through the planner and checks the invariants after each step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyturn.domain import jwks, record
from keyturn.domain.model import (
    MATERIAL_STATES,
    TRANSITIONS,
    AnalysisResult,
    KeyState,
    Operation,
    Ring,
    Trigger,
)
from keyturn.domain.planner import Emergency, Move, Observations, Plan, Requests, plan
from keyturn.domain.propagation import Share, percent
from keyturn.domain.reasons import Reason
from keyturn.domain.spec import Revocation, Spec
from planning import T0, initialized, spec, step

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

Scenario = Callable[[], Plan]
Replay = Callable[[], tuple[Plan, Plan]]


def states(ring: Ring) -> dict[str, str]:
    return {k.kid: str(k.state) for k in ring.keys}


# ---------------------------------------------------------------------- scenarios: schedule


def first_plan() -> Plan:
    """A new keyset's first plan, before any key exists."""
    return plan(spec(), Ring(), T0)


def first_pass() -> Plan:
    return step(spec(), Ring(), T0)


def scheduled_rotation() -> Plan:
    the_spec, ring = initialized()
    return step(the_spec, ring, T0 + DAY)


YOUNG_NEXT = spec(rotation={"interval": "1h", "publishAhead": "2h", "gracePeriod": "2d", "retention": "3d"})


def rotation_due_with_a_young_next_key() -> Plan:
    """A 1h interval with a 2h publishAhead: at 1h the next key has not been published long enough."""
    the_spec, ring = initialized(YOUNG_NEXT)
    return plan(the_spec, ring, T0 + HOUR)


def rotation_due_with_a_next_key_published_long_enough() -> Plan:
    the_spec, ring = initialized(YOUNG_NEXT)
    return step(the_spec, ring, T0 + 2 * HOUR)


def grace_period_over() -> Plan:
    the_spec, ring = initialized()
    ring = step(the_spec, ring, T0 + DAY).ring
    return step(the_spec, ring, T0 + 3 * DAY)


def retention_over() -> Plan:
    return step(spec(), grace_period_over().ring, T0 + 4 * DAY)


def manual_rotation() -> Plan:
    the_spec, ring = initialized()
    return step(the_spec, ring, T0 + 2 * HOUR, Requests(rotate="now-1"))


def manual_rotation_asked_again() -> Plan:
    return step(spec(), manual_rotation().ring, T0 + 4 * HOUR, Requests(rotate="now-1"))


def manual_rotation_of_a_young_next_key() -> Plan:
    the_spec, ring = initialized()
    return step(the_spec, ring, T0 + timedelta(minutes=10), Requests(rotate="now-1"))


def emergency_during_a_waiting_manual_rotation() -> Plan:
    """A manual rotation waits for publishAhead; an emergency revokes the current key meanwhile."""
    the_spec, ring = initialized()
    asked = Requests(rotate="now-1", emergency=Emergency("inc-7"))
    ring = step(the_spec, ring, T0 + timedelta(minutes=10), asked).ring
    return step(the_spec, ring, T0 + timedelta(minutes=10), asked)


def rotation_due_while_verifiers_lag() -> Plan:
    the_spec, ring = initialized()
    return step(the_spec, ring, T0 + DAY, observed=Observations(verifiers_ready=False))


def suspended_and_overdue() -> Plan:
    the_spec, ring = initialized(spec(suspend=True))
    return step(the_spec, ring, T0 + 5 * DAY)


def suspended_with_a_manual_rotation() -> Plan:
    the_spec, ring = initialized(spec(suspend=True))
    return step(the_spec, ring, T0 + 5 * DAY, Requests(rotate="x"))


WINDOW = spec(
    rotation={
        "interval": "1d",
        "publishAhead": "1h",
        "gracePeriod": "2d",
        "retention": "3d",
        "timeZone": "Europe/Paris",
        "window": {"start": "02:00", "end": "04:00"},
    }
)


def rotation_due_outside_the_window() -> Plan:
    _, ring = initialized(WINDOW)  # T0 is 13:00 in Paris
    return step(WINDOW, ring, T0 + DAY)


def rotation_inside_the_window() -> Plan:
    _, ring = initialized(WINDOW)
    return step(WINDOW, ring, datetime(2026, 3, 3, 1, 30, tzinfo=UTC))


def cron_first_pass() -> Plan:
    cron_spec = spec(
        rotation={"schedule": "0 2 1 */3 *", "publishAhead": "1h", "gracePeriod": "2d", "retention": "3d"}
    )
    return step(cron_spec, Ring(), T0)


# ---------------------------------------------------------------------- scenarios: revocations

INC_1 = Requests(emergency=Emergency("inc-1", "key_compromise"))


def emergency_revoking_the_current_key() -> Plan:
    the_spec, ring = initialized()
    return step(the_spec, ring, T0 + HOUR, INC_1)


def emergency_planned_with_a_prepared_next_key() -> Plan:
    the_spec, ring = initialized()
    return plan(the_spec, ring, T0 + HOUR, Requests(emergency=Emergency("inc-1")))


def emergency_second_pass() -> Plan:
    """The pass the first one asked for at once (requeue): it prepares the next key."""
    return step(spec(), emergency_revoking_the_current_key().ring, T0 + HOUR, INC_1)


def emergency_replayed() -> tuple[Plan, Plan]:
    handled = emergency_second_pass()
    return handled, step(spec(), handled.ring, T0 + 2 * HOUR, Requests(emergency=Emergency("inc-1")))


def emergency_revoking_all() -> Plan:
    the_spec, ring = initialized()
    ring = step(the_spec, ring, T0 + DAY).ring  # k1 previous, k2 current, k3 next
    return step(the_spec, ring, T0 + DAY + HOUR, Requests(emergency=Emergency("inc-2", revoke_all=True)))


def emergency_revoking_all_second_pass() -> Plan:
    return step(spec(), emergency_revoking_all().ring, T0 + DAY + HOUR)


def emergency_naming_an_unknown_kid() -> Plan:
    the_spec, ring = initialized()
    return step(the_spec, ring, T0 + HOUR, Requests(emergency=Emergency("inc-3", revoke_kids=("nope",))))


def emergency_revoking_the_next_key() -> Plan:
    the_spec, ring = initialized()
    return step(the_spec, ring, T0 + HOUR, Requests(emergency=Emergency("inc-4", revoke_kids=("k2",))))


def emergency_naming_only_revoked_kids() -> Plan:
    the_spec, ring = initialized()
    ring = step(the_spec, ring, T0, Requests(emergency=Emergency("inc-8", revoke_kids=("k2",)))).ring
    return step(the_spec, ring, T0 + HOUR, Requests(emergency=Emergency("inc-9", revoke_kids=("k2",))))


REVOKED_K1 = spec(revokedKids=[{"kid": "k1", "reason": "key_compromise"}])


def declarative_revocation_of_the_current_key() -> Plan:
    _, ring = initialized()
    result = step(REVOKED_K1, ring, T0 + HOUR)
    return step(REVOKED_K1, result.ring, T0 + HOUR)


def declarative_revocation_seen_again() -> tuple[Plan, Plan]:
    done = declarative_revocation_of_the_current_key()
    return done, step(REVOKED_K1, done.ring, T0 + 2 * HOUR)


def revoked_key_past_retention() -> Plan:
    the_spec, ring = initialized()
    ring = step(the_spec, ring, T0, Requests(emergency=Emergency("inc-5"))).ring
    return step(the_spec, ring, T0 + 3 * DAY + timedelta(seconds=1))


# ---------------------------------------------------------------------- scenarios: rollbacks


def manual_rollback() -> Plan:
    the_spec, ring = initialized()
    ring = step(the_spec, ring, T0 + DAY).ring
    return step(the_spec, ring, T0 + DAY + HOUR, Requests(rollback="undo-1"))


def rollback_with_only_a_revoked_previous_key() -> Plan:
    the_spec, ring = initialized()
    ring = step(the_spec, ring, T0 + DAY).ring  # k1 previous
    ring = step(the_spec, ring, T0 + DAY, Requests(emergency=Emergency("inc-6", revoke_kids=("k1",)))).ring
    return step(the_spec, ring, T0 + DAY + HOUR, Requests(rollback="undo-2"))


SIGNERS = Observations(signer_targets=True)  # signer Deployments exist and have loaded the key
SIGNER_FAILURE = Observations(signer_failure="deployment web: rollout timed out", signer_targets=True)


def rotation_with_signers() -> Plan:
    the_spec, ring = initialized()
    return step(the_spec, ring, T0 + DAY, observed=SIGNERS)


def signer_failure_during_the_wave() -> Plan:
    return step(spec(), rotation_with_signers().ring, T0 + DAY + HOUR, observed=SIGNER_FAILURE)


def signer_failure_during_the_wave_with_on_failure_pause() -> Plan:
    pause_spec = spec(rollout={"onFailure": "Pause"})
    return step(pause_spec, rotation_with_signers().ring, T0 + DAY + HOUR, observed=SIGNER_FAILURE)


def signer_wave_over() -> Plan:
    """The signers loaded k2 in the pass after the rotation: its wave is over."""
    return step(spec(), rotation_with_signers().ring, T0 + DAY + HOUR, observed=SIGNERS)


def signer_failure_after_the_wave() -> Plan:
    late = Observations(signer_failure="new-app: timeout", signer_targets=True)
    return step(spec(), signer_wave_over().ring, T0 + DAY + 5 * HOUR, observed=late)


def signer_failures_with_nothing_to_roll_back_to() -> tuple[Plan, Plan]:
    the_spec, ring = initialized()
    ring = step(the_spec, ring, T0 + DAY, observed=SIGNERS).ring
    rolling = Observations(signers_ready=False, signer_targets=True)  # k2's signer wave is under way
    ring = step(
        the_spec, ring, T0 + DAY, Requests(emergency=Emergency("inc-10", revoke_kids=("k1",))), rolling
    ).ring
    failing = Observations(signer_failure="api: timeout", signer_targets=True)
    first = step(the_spec, ring, T0 + DAY + HOUR, observed=failing)
    second = step(the_spec, first.ring, T0 + DAY + 2 * HOUR, observed=failing)
    return first, second


def signer_failure_with_nothing_to_roll_back_to() -> Plan:
    first, _ = signer_failures_with_nothing_to_roll_back_to()
    return first


ANALYSIS = {"prometheus": {"address": "http://prom:9090", "query": "up"}, "count": 3, "failureLimit": 1}
ANALYSED = spec(analysis=ANALYSIS)


def analysed_rotation_before_the_signers_load() -> Plan:
    _, ring = initialized(ANALYSED)
    return step(ANALYSED, ring, T0 + DAY, observed=Observations(signers_ready=False, signer_targets=True))


def analysed_rotation_once_the_signers_load() -> Plan:
    return step(ANALYSED, analysed_rotation_before_the_signers_load().ring, T0 + DAY + HOUR, observed=SIGNERS)


def analysis_running_while_a_rotation_is_overdue() -> Plan:
    return step(ANALYSED, analysed_rotation_once_the_signers_load().ring, T0 + 3 * DAY)


def analysis_failed() -> Plan:
    failed = Observations(analysis=AnalysisResult.FAILED, analysis_message="rate 0.5 < 0.95")
    return step(
        ANALYSED, analysed_rotation_once_the_signers_load().ring, T0 + DAY + 2 * HOUR, observed=failed
    )


def analysis_inconclusive() -> Plan:
    _, ring = initialized(ANALYSED)
    ring = step(ANALYSED, ring, T0 + DAY).ring
    ring = step(ANALYSED, ring, T0 + DAY + HOUR).ring
    return step(
        ANALYSED, ring, T0 + DAY + 2 * HOUR, observed=Observations(analysis=AnalysisResult.INCONCLUSIVE)
    )


def analysis_inconclusive_days_later() -> Plan:
    return step(ANALYSED, analysis_inconclusive().ring, T0 + 5 * DAY)


def emergency_activation_with_failing_analysis_and_signers() -> Plan:
    _, ring = initialized(ANALYSED)
    ring = step(ANALYSED, ring, T0 + HOUR, Requests(emergency=Emergency("inc-7"))).ring
    failing = Observations(analysis=AnalysisResult.FAILED, signer_failure="web: timeout")
    return step(ANALYSED, ring, T0 + 2 * HOUR, observed=failing)


# ---------------------------------------------------------------------- the tables


@pytest.mark.parametrize(
    ("scenario", "kids"),
    [
        pytest.param(
            first_pass,
            {"k1": "current", "k2": "next"},
            id="a new keyset gets a current and a prepared next key",
        ),
        pytest.param(
            scheduled_rotation,
            {"k1": "previous", "k2": "current", "k3": "next"},
            id="a scheduled rotation promotes the next key and prepares another",
        ),
        pytest.param(
            emergency_revoking_the_current_key,
            {"k1": "revoked", "k2": "current"},
            id="an emergency promotes the prepared key without waiting for a new one",
        ),
        pytest.param(
            emergency_second_pass,
            {"k1": "revoked", "k2": "current", "k3": "next"},
            id="the pass after an emergency prepares the next key",
        ),
        pytest.param(
            emergency_revoking_all,
            {"k1": "revoked", "k2": "revoked", "k3": "revoked", "k4": "current"},
            id="revoking all keys signs with a fresh key at once",
        ),
        pytest.param(
            emergency_revoking_all_second_pass,
            {"k1": "revoked", "k2": "revoked", "k3": "revoked", "k4": "current", "k5": "next"},
            id="the pass after revoking all keys prepares the next key",
        ),
        pytest.param(
            emergency_naming_an_unknown_kid,
            {"k1": "current", "k2": "next"},
            id="an emergency naming an unknown kid changes no key",
        ),
        pytest.param(
            emergency_revoking_the_next_key,
            {"k1": "current", "k2": "revoked", "k3": "next"},
            id="revoking the next key prepares another",
        ),
        pytest.param(
            declarative_revocation_of_the_current_key,
            {"k1": "revoked", "k2": "current", "k3": "next"},
            id="a current kid listed in revokedKids is revoked and replaced",
        ),
        pytest.param(
            manual_rollback,
            {"k1": "current", "k2": "failed", "k3": "next"},
            id="a manual rollback restores the previous key and fails the new one",
        ),
        pytest.param(
            analysis_failed,
            {"k1": "current", "k2": "failed", "k3": "next"},
            id="a failed analysis rolls back to the previous key",
        ),
    ],
)
def test_the_state_of_every_key_after_the_pass(scenario: Scenario, kids: dict[str, str]) -> None:
    assert states(scenario().ring) == kids


@pytest.mark.parametrize(
    ("scenario", "kid"),
    [
        pytest.param(
            rotation_due_with_a_young_next_key,
            "k1",
            id="a due rotation waits while the next key is younger than publishAhead",
        ),
        pytest.param(
            rotation_due_with_a_next_key_published_long_enough,
            "k2",
            id="the next key signs once it has been published for publishAhead",
        ),
        pytest.param(manual_rotation, "k2", id="a manual rotation ignores the interval"),
        pytest.param(manual_rotation_asked_again, "k2", id="a manual rotation token is handled once"),
        pytest.param(
            manual_rotation_of_a_young_next_key, "k1", id="a manual rotation waits for publishAhead"
        ),
        pytest.param(rotation_due_while_verifiers_lag, "k1", id="a rotation waits for the verifiers"),
        pytest.param(suspended_and_overdue, "k1", id="suspend stops scheduled rotations"),
        pytest.param(suspended_with_a_manual_rotation, "k2", id="suspend does not stop a manual rotation"),
        pytest.param(
            rollback_with_only_a_revoked_previous_key, "k2", id="a rollback never picks a revoked key"
        ),
        pytest.param(
            analysis_running_while_a_rotation_is_overdue,
            "k2",
            id="no scheduled rotation while the analysis runs, even when overdue",
        ),
        pytest.param(analysis_inconclusive, "k2", id="an inconclusive analysis never rolls back"),
        pytest.param(
            analysis_inconclusive_days_later,
            "k2",
            id="an inconclusive analysis waits for a person, however long",
        ),
        pytest.param(
            emergency_activation_with_failing_analysis_and_signers,
            "k2",
            id="an emergency activation is never analysed or rolled back",
        ),
        pytest.param(signer_failure_during_the_wave, "k1", id="a signer failure during the wave rolls back"),
        pytest.param(
            signer_failure_during_the_wave_with_on_failure_pause,
            "k2",
            id="a signer failure during the wave with onFailure Pause keeps the new key",
        ),
        pytest.param(
            signer_failure_after_the_wave,
            "k2",
            id="a signer failure after the wave never undoes an established key",
        ),
        pytest.param(
            rotation_due_outside_the_window, "k1", id="a rotation due outside the window waits for it"
        ),
        pytest.param(rotation_inside_the_window, "k2", id="the rotation happens once the window opens"),
    ],
)
def test_the_key_that_signs_after_the_pass(scenario: Scenario, kid: str) -> None:
    current = scenario().ring.current
    assert current is not None and current.kid == kid


@pytest.mark.parametrize(
    ("scenario", "reason"),
    [
        pytest.param(
            manual_rotation_of_a_young_next_key,
            Reason.AWAITING_PUBLISH_AHEAD,
            id="a manual rotation of a young next key waits for publishAhead",
        ),
        pytest.param(
            rotation_due_while_verifiers_lag,
            Reason.AWAITING_VERIFIERS,
            id="a rotation whose verifiers lag waits for them",
        ),
    ],
)
def test_why_a_due_activation_waits(scenario: Scenario, reason: Reason) -> None:
    assert scenario().waiting is reason


@pytest.mark.parametrize(
    ("scenario", "reason", "words"),
    [
        pytest.param(
            analysis_inconclusive,
            Reason.ANALYSIS_INCONCLUSIVE,
            (),
            id="an inconclusive analysis pauses",
        ),
        pytest.param(
            analysis_inconclusive_days_later,
            Reason.ANALYSIS_INCONCLUSIVE,
            (),
            id="an inconclusive analysis stays paused: a person decides",
        ),
        pytest.param(
            emergency_activation_with_failing_analysis_and_signers,
            Reason.ROLLOUT_PAUSED,
            (),
            id="a signer failure after an emergency activation pauses",
        ),
        pytest.param(
            signer_failure_during_the_wave_with_on_failure_pause,
            Reason.ROLLOUT_PAUSED,
            (),
            id="a signer failure with onFailure Pause pauses",
        ),
        pytest.param(
            signer_failure_after_the_wave,
            Reason.ROLLOUT_PAUSED,
            (),
            id="a signer failure after the wave pauses",
        ),
        pytest.param(
            signer_failure_with_nothing_to_roll_back_to,
            Reason.ROLLBACK_IMPOSSIBLE,
            ("no previous key",),
            id="a signer failure with nothing to roll back to pauses and says why",
        ),
    ],
)
def test_why_the_keyset_is_paused(scenario: Scenario, reason: Reason, words: tuple[str, ...]) -> None:
    result = scenario()
    assert result.paused is reason
    for word in words:
        assert word in result.paused_message


@pytest.mark.parametrize(
    ("scenario", "due"),
    [
        pytest.param(first_pass, T0 + DAY, id="a new keyset's first rotation is one interval away"),
        pytest.param(suspended_and_overdue, None, id="a suspended keyset has no next rotation"),
        pytest.param(manual_rollback, T0 + 2 * DAY + HOUR, id="the next rotation counts from a rollback"),
        pytest.param(
            rotation_due_outside_the_window,
            datetime(2026, 3, 3, 1, 0, tzinfo=UTC),  # the window opens 02:00 Paris = 01:00 UTC on March 3
            id="a rotation due outside the window is due when the window opens",
        ),
        pytest.param(
            cron_first_pass,
            datetime(2026, 4, 1, 2, 0, tzinfo=UTC),
            id="a cron schedule names the next rotation",
        ),
    ],
)
def test_when_the_next_rotation_is_due(scenario: Scenario, due: datetime | None) -> None:
    assert scenario().next_rotation_at == due


@pytest.mark.parametrize(
    ("scenario", "wake_at"),
    [
        pytest.param(first_pass, T0 + DAY, id="a new keyset wakes for its first rotation"),
        pytest.param(
            manual_rotation_of_a_young_next_key,
            T0 + HOUR,
            id="a manual rotation waiting for publishAhead wakes when it has passed",
        ),
    ],
)
def test_when_the_keyset_wakes(scenario: Scenario, wake_at: datetime) -> None:
    assert scenario().wake_at == wake_at


@pytest.mark.parametrize(
    ("scenario", "kid", "field", "expected"),
    [
        pytest.param(first_pass, None, "activated_at", T0, id="the first key signs from the first pass"),
        pytest.param(
            scheduled_rotation, "k1", "demoted_at", T0 + DAY, id="a rotation demotes the current key"
        ),
        pytest.param(
            scheduled_rotation,
            "k1",
            "remove_from_jwks_at",
            T0 + 3 * DAY,  # grace 2d
            id="a demoted key leaves the JWKS after the grace period",
        ),
        pytest.param(
            scheduled_rotation,
            "k1",
            "purge_at",
            T0 + 4 * DAY,  # retention 3d
            id="a demoted key is purged after the retention",
        ),
        pytest.param(
            grace_period_over, "k1", "state", KeyState.RETIRED, id="a key whose grace period is over retires"
        ),
        pytest.param(
            manual_rollback,
            "k2",
            "remove_from_jwks_at",
            T0 + 3 * DAY + HOUR,
            id="a key failed by a rollback stays in the JWKS for the grace period",
        ),
        pytest.param(
            manual_rollback, None, "activation", Operation.ROLLBACK, id="the restored key signs by a rollback"
        ),
        pytest.param(
            analysed_rotation_before_the_signers_load,
            None,
            "signers_ready_at",
            None,
            id="the signer wave of a new key is not over before the signers load it",
        ),
        pytest.param(
            analysed_rotation_once_the_signers_load,
            None,
            "signers_ready_at",
            T0 + DAY + HOUR,
            id="the analysis starts once the signers load the new key",
        ),
        pytest.param(
            signer_wave_over,
            None,
            "signers_ready_at",
            T0 + DAY + HOUR,
            id="the signer wave is over once the signers load the new key",
        ),
    ],
)
def test_what_the_record_says_of_a_key(
    scenario: Scenario, kid: str | None, field: str, expected: Any
) -> None:
    ring = scenario().ring
    key = ring.current if kid is None else ring.find(kid)
    assert key is not None
    assert getattr(key, field) == expected


@pytest.mark.parametrize(
    ("scenario", "index", "expected"),
    [
        pytest.param(
            scheduled_rotation, -2, Operation.ROTATE, id="a scheduled rotation is recorded as a rotation"
        ),
        pytest.param(
            scheduled_rotation, -2, Trigger.SCHEDULED, id="a scheduled rotation records its trigger"
        ),
        pytest.param(retention_over, -1, Operation.PURGE, id="a purge is recorded"),
        pytest.param(
            declarative_revocation_of_the_current_key,
            -3,
            Trigger.DECLARATIVE,
            id="a revocation from revokedKids is recorded as declarative",
        ),
        pytest.param(analysis_failed, -1, Trigger.ANALYSIS, id="a rollback after a failed analysis says so"),
        pytest.param(
            signer_failure_during_the_wave,
            -1,
            Trigger.ROLLOUT,
            id="a rollback after a signer failure says so",
        ),
    ],
)
def test_what_the_history_records(scenario: Scenario, index: int, expected: Operation | Trigger) -> None:
    entry = scenario().ring.history[index]
    assert (entry.operation if isinstance(expected, Operation) else entry.trigger) is expected


@pytest.mark.parametrize(
    ("scenario", "kid", "published"),
    [
        pytest.param(grace_period_over, "k1", False, id="a retired key leaves the JWKS"),
        pytest.param(emergency_second_pass, "k1", False, id="a revoked key leaves the JWKS at once"),
        pytest.param(
            manual_rollback, "k2", True, id="a key failed by a rollback stays: tokens were signed with it"
        ),
    ],
)
def test_which_kids_the_jwks_publishes(scenario: Scenario, kid: str, published: bool) -> None:
    assert (kid in {k["kid"] for k in jwks.build(scenario().ring)["keys"]}) is published


@pytest.mark.parametrize(
    ("scenario", "kid"),
    [
        pytest.param(retention_over, "k1", id="a retired key is purged after the retention"),
        pytest.param(
            revoked_key_past_retention, "k1", id="a revoked key's record is forgotten after the retention"
        ),
    ],
)
def test_keys_the_record_forgets(scenario: Scenario, kid: str) -> None:
    assert scenario().ring.find(kid) is None


@pytest.mark.parametrize(
    ("scenario", "kid"),
    [
        pytest.param(emergency_second_pass, "k1", id="an emergency remembers the revoked kid"),
        pytest.param(
            revoked_key_past_retention,
            "k1",
            id="a revoked kid never returns, even once its record is forgotten",
        ),
    ],
)
def test_kids_that_stay_revoked(scenario: Scenario, kid: str) -> None:
    assert kid in scenario().ring.revoked_kids


@pytest.mark.parametrize(
    ("scenario", "request_", "token"),
    [
        pytest.param(manual_rotation, "rotate", "now-1", id="a manual rotation marks its token handled"),
        pytest.param(
            manual_rotation_of_a_young_next_key,
            "rotate",
            None,
            id="a manual rotation still waiting leaves its token unhandled",
        ),
        pytest.param(
            rollback_with_only_a_revoked_previous_key,
            "rollback",
            "undo-2",
            id="an impossible rollback marks its token handled",
        ),
        pytest.param(
            emergency_during_a_waiting_manual_rotation,
            "rotate",
            "now-1",
            id="an emergency that promotes the prepared key answers a waiting manual rotation",
        ),
    ],
)
def test_which_request_tokens_are_handled(scenario: Scenario, request_: str, token: str | None) -> None:
    assert getattr(scenario().ring.handled, request_) == token


@pytest.mark.parametrize(
    ("scenario", "request_id", "expected", "words"),
    [
        pytest.param(
            emergency_second_pass,
            "inc-1",
            {"result": "Revoked", "new_kid": "k2"},
            (),
            id="an emergency is answered Revoked with the key that signs now",
        ),
        pytest.param(
            emergency_revoking_all,
            "inc-2",
            {"new_kid": "k4"},
            (),
            id="revoking all keys answers with the fresh key",
        ),
        pytest.param(
            emergency_naming_an_unknown_kid,
            "inc-3",
            {"result": "Rejected"},
            ("nope",),
            id="an emergency naming an unknown kid is rejected, naming it",
        ),
        pytest.param(
            emergency_naming_only_revoked_kids,
            "inc-9",
            {"result": "Rejected"},
            ("already revoked",),
            id="an emergency naming only revoked kids is rejected",
        ),
    ],
)
def test_the_answer_to_an_emergency(
    scenario: Scenario, request_id: str, expected: dict[str, str], words: tuple[str, ...]
) -> None:
    ack = scenario().ring.handled.emergency(request_id)
    assert ack is not None
    assert {field: getattr(ack, field) for field in expected} == expected
    for word in words:
        assert word in ack.message


@pytest.mark.parametrize(
    ("scenario", "which", "reasons"),
    [
        pytest.param(
            first_pass,
            slice(None),
            [Reason.INITIALIZED, Reason.KEY_PUBLISHED],
            id="a new keyset announces its initialization and its published key",
        ),
        pytest.param(
            rollback_with_only_a_revoked_previous_key,
            slice(-1, None),
            [Reason.ROLLBACK_IMPOSSIBLE],
            id="an impossible rollback is announced",
        ),
    ],
)
def test_what_the_pass_announces(scenario: Scenario, which: slice, reasons: list[Reason]) -> None:
    assert [n.reason for n in scenario().notices][which] == reasons


@pytest.mark.parametrize(
    ("scenario", "count"),
    [
        pytest.param(first_plan, 2, id="a new keyset asks for both its keys in one pass"),
        pytest.param(
            emergency_planned_with_a_prepared_next_key,
            0,
            id="an emergency with a prepared next key revokes without waiting for a fresh one",
        ),
    ],
)
def test_how_many_fresh_keys_a_pass_asks_for(scenario: Scenario, count: int) -> None:
    assert scenario().needs_fresh == count


@pytest.mark.parametrize(
    ("scenario", "requeue"),
    [
        pytest.param(
            emergency_revoking_the_current_key,
            True,
            id="a revocation plans again at once to prepare the next key",
        ),
        pytest.param(emergency_second_pass, False, id="the pass that prepared the next key does not"),
    ],
)
def test_which_passes_plan_again_at_once(scenario: Scenario, requeue: bool) -> None:
    assert scenario().requeue is requeue


@pytest.mark.parametrize(
    "replay",
    [
        pytest.param(emergency_replayed, id="an emergency already answered is not run again"),
        pytest.param(declarative_revocation_seen_again, id="a revocation already done is not done again"),
        pytest.param(
            signer_failures_with_nothing_to_roll_back_to,
            id="a pause with nothing to roll back to adds no history entry per pass",
        ),
    ],
)
def test_a_pass_with_nothing_new_writes_the_same_record(replay: Replay) -> None:
    before, after = replay()
    assert record.dumps(after.ring) == record.dumps(before.ring)


@pytest.mark.parametrize(
    "moment",
    [T0, T0 + HOUR, T0 + DAY - timedelta(seconds=1)],
    ids=["right after the first pass", "an hour later", "a second before the rotation is due"],
)
def test_nothing_due_changes_nothing(moment: datetime) -> None:
    the_spec, ring = initialized()
    result = plan(the_spec, ring, moment)
    assert result.needs_fresh == 0
    assert record.dumps(result.ring) == record.dumps(ring)
    assert result.notices == ()


def test_the_revocation_scenario_reads_its_kid_from_the_spec() -> None:
    assert REVOKED_K1.revoked == (Revocation("k1", "key_compromise"),)


def test_template_kids_use_the_serial() -> None:
    # kids are assigned by the executor; the planner keeps the serial so {n} never repeats
    ring = scheduled_rotation().ring
    assert ring.serial == 3
    assert sorted(k.serial for k in ring.keys) == [1, 2, 3]


# ---------------------------------------------------------------------- the propagation gate
# A due activation waits until the share of consumers that accept the next kid reaches the
# threshold (spec.propagation); the executor hands the share in as Observations.propagation.

GATE = {"propagation": {"prometheus": {"address": "http://prometheus:9090"}, "timeout": "1h"}}
GATED = spec(**GATE)
DUE = T0 + DAY  # when the first scheduled rotation of `initialized` is due
INTERVAL = timedelta(seconds=15)


def answered(kid: str, value: float | None, at: datetime) -> Observations:
    return Observations(propagation={kid: Share(at, value, "" if value is not None else "no data")})


def gated(**overrides: Any) -> tuple[Spec, Ring, str]:
    the_spec, ring = initialized(spec(**{**GATE, **overrides}))
    assert ring.next is not None
    return the_spec, ring, ring.next.kid


@pytest.mark.parametrize(
    ("share", "activates"),
    [
        pytest.param(1.0, True, id="every consumer accepts the next key: it signs"),
        pytest.param(0.999, False, id="one consumer short of the threshold: it waits"),
        pytest.param(0.0, False, id="no consumer accepts it: it waits"),
        pytest.param(None, False, id="no data: it waits"),
    ],
)
def test_a_scheduled_activation_waits_for_the_share(share: float | None, activates: bool) -> None:
    the_spec, ring, nxt = gated()
    result = step(the_spec, ring, DUE, observed=answered(nxt, share, DUE))
    assert (result.ring.current is not None and result.ring.current.kid == nxt) is activates
    if activates:
        assert result.waiting is None
        return
    assert result.waiting is Reason.AWAITING_PROPAGATION
    assert result.ring.next is not None and result.ring.next.kid == nxt
    assert result.ring.next.propagation_held_at == DUE
    assert result.wake_at == DUE + INTERVAL  # asked again one interval later, not before
    assert result.next_rotation_at == DUE
    expected = "no data" if share is None else f"{percent(share)} of consumers accept {nxt}"
    assert expected in result.waiting_message
    assert not [n for n in result.notices if n.reason is Reason.ROTATED]


def test_a_kid_not_asked_about_is_held_like_no_data() -> None:
    the_spec, ring, nxt = gated()
    result = step(the_spec, ring, DUE, observed=Observations())
    assert result.waiting is Reason.AWAITING_PROPAGATION
    assert f"accept {nxt} is unknown (not measured)" in result.waiting_message


def test_a_share_of_another_kid_does_not_count() -> None:
    the_spec, ring, _ = gated()
    assert ring.current is not None
    result = step(the_spec, ring, DUE, observed=answered(ring.current.kid, 1.0, DUE))
    assert result.waiting is Reason.AWAITING_PROPAGATION


def test_the_held_key_activates_once_the_share_reaches_the_threshold() -> None:
    the_spec, ring, nxt = gated()
    held = step(the_spec, ring, DUE, observed=answered(nxt, 0.5, DUE))
    later = DUE + INTERVAL
    result = step(the_spec, held.ring, later, observed=answered(nxt, 1.0, later))
    assert result.ring.current is not None and result.ring.current.kid == nxt
    assert result.ring.current.activated_at == later
    assert [h.trigger for h in result.ring.history if h.operation is Operation.ROTATE] == [Trigger.SCHEDULED]


def test_a_lower_threshold_lets_a_share_below_one_pass() -> None:
    the_spec, ring, nxt = gated(propagation={**GATE["propagation"], "threshold": "0.6"})
    result = step(the_spec, ring, DUE, observed=answered(nxt, 2 / 3, DUE))
    assert result.ring.current is not None and result.ring.current.kid == nxt


def test_waiting_with_the_same_answer_writes_nothing_new() -> None:
    the_spec, ring, nxt = gated()
    held = step(the_spec, ring, DUE, observed=answered(nxt, 0.5, DUE))
    again = step(the_spec, held.ring, DUE + 5 * INTERVAL, observed=answered(nxt, 0.5, DUE + 5 * INTERVAL))
    assert record.dumps(again.ring) == record.dumps(held.ring)
    assert again.waiting_message == held.waiting_message
    assert again.notices == ()


def test_verifiers_still_rolling_come_first() -> None:
    the_spec, ring, nxt = gated()
    observed = dataclasses.replace(answered(nxt, 1.0, DUE), verifiers_ready=False)
    result = step(the_spec, ring, DUE, observed=observed)
    assert result.waiting is Reason.AWAITING_VERIFIERS
    assert result.ring.next is not None and result.ring.next.propagation_held_at is None


def test_a_manual_rotation_waits_too_and_stays_pending() -> None:
    the_spec, ring, nxt = gated()
    now = T0 + 2 * HOUR
    held = step(the_spec, ring, now, Requests(rotate="go"), answered(nxt, 0.5, now))
    assert held.waiting is Reason.AWAITING_PROPAGATION
    assert held.ring.handled.rotate is None  # still to do
    later = now + INTERVAL
    done = step(the_spec, held.ring, later, Requests(rotate="go"), answered(nxt, 1.0, later))
    assert done.ring.current is not None and done.ring.current.kid == nxt
    assert done.ring.handled.rotate == "go"
    assert [h.trigger for h in done.ring.history if h.operation is Operation.ROTATE] == [Trigger.MANUAL]


def test_past_the_timeout_a_warning_once_and_the_key_keeps_waiting() -> None:
    the_spec, ring, nxt = gated()
    held = step(the_spec, ring, DUE, observed=answered(nxt, 0.5, DUE))
    before = DUE + HOUR - timedelta(seconds=1)
    quiet = step(the_spec, held.ring, before, observed=answered(nxt, 0.5, before))
    assert quiet.notices == () and quiet.degraded == ()
    assert quiet.wake_at == DUE + HOUR  # the deadline is a wake-up of its own
    at = DUE + HOUR
    timed_out = step(the_spec, quiet.ring, at, observed=answered(nxt, 0.5, at))
    assert [(n.reason, n.warning) for n in timed_out.notices] == [(Reason.PROPAGATION_TIMEOUT, True)]
    assert "50% of consumers accept" in timed_out.notices[0].message
    assert [v.reason for v in timed_out.degraded] == [Reason.PROPAGATION_TIMEOUT]
    assert timed_out.ring.current is not None and timed_out.ring.current.kid != nxt
    assert timed_out.ring.next is not None and timed_out.ring.next.propagation_warned_at == at
    later = at + 3 * HOUR
    still = step(the_spec, timed_out.ring, later, observed=answered(nxt, 0.5, later))
    assert still.notices == ()  # once
    assert [v.reason for v in still.degraded] == [Reason.PROPAGATION_TIMEOUT]  # Degraded while it lasts
    assert still.waiting is Reason.AWAITING_PROPAGATION
    assert record.dumps(still.ring) == record.dumps(timed_out.ring)


def test_the_timeout_counts_from_the_first_hold_across_a_restart() -> None:
    the_spec, ring, nxt = gated()
    held = step(the_spec, ring, DUE, observed=answered(nxt, 0.5, DUE))
    restarted = record.loads(record.dumps(held.ring))
    at = DUE + HOUR
    result = step(the_spec, restarted, at, observed=answered(nxt, 0.5, at))
    assert [n.reason for n in result.notices] == [Reason.PROPAGATION_TIMEOUT]


@pytest.mark.parametrize(
    ("share", "says"),
    [
        pytest.param(Share(DUE, 0.5), "50% of consumers already accepted {kid}", id="measured"),
        pytest.param(
            Share(DUE, None, "prometheus unreachable"), "unknown (prometheus unreachable)", id="no-data"
        ),
        pytest.param(None, "unknown (not measured)", id="not-asked"),
    ],
)
def test_an_emergency_never_waits_and_its_answer_says_the_share(share: Share | None, says: str) -> None:
    the_spec, ring, nxt = gated()
    held = step(the_spec, ring, DUE, observed=answered(nxt, 0.5, DUE))
    observed = Observations(propagation={nxt: share} if share is not None else {})
    result = step(the_spec, held.ring, DUE + INTERVAL, Requests(emergency=Emergency("inc-1")), observed)
    assert result.ring.current is not None and result.ring.current.kid == nxt
    (ack,) = result.ring.handled.emergencies
    assert ack.new_kid == nxt
    assert says.format(kid=nxt) in ack.message


def test_an_emergency_revoking_every_key_says_the_fresh_key_is_new_to_consumers() -> None:
    the_spec, ring, nxt = gated()
    result = step(the_spec, ring, DUE, Requests(emergency=Emergency("inc-1", revoke_all=True)))
    (ack,) = result.ring.handled.emergencies
    assert ack.new_kid is not None and ack.new_kid != nxt
    assert f"{ack.new_kid} is a fresh key: no consumer had it before" in ack.message


def test_without_a_gate_the_answer_says_nothing_of_shares() -> None:
    the_spec, ring = initialized()
    result = step(the_spec, ring, DUE, Requests(emergency=Emergency("inc-1")))
    (ack,) = result.ring.handled.emergencies
    assert "consumers" not in ack.message


def test_an_hmac_keyset_is_gated_the_same_way() -> None:
    the_spec, ring, nxt = gated(algorithm="HS256")
    assert the_spec.symmetric
    held = step(the_spec, ring, DUE, observed=answered(nxt, 0.5, DUE))
    assert held.waiting is Reason.AWAITING_PROPAGATION
    done = step(the_spec, held.ring, DUE + INTERVAL, observed=answered(nxt, 1.0, DUE + INTERVAL))
    assert done.ring.current is not None and done.ring.current.kid == nxt


def test_a_share_reached_before_the_activation_is_due_changes_nothing() -> None:
    the_spec, ring, nxt = gated()
    result = plan(the_spec, ring, T0 + HOUR, observed=answered(nxt, 1.0, T0 + HOUR))
    assert record.dumps(result.ring) == record.dumps(ring)
    assert result.waiting is None


# ---------------------------------------------------------------------- random histories
# Steps: time passing, manual rotations, rollbacks, emergencies (one kid, the current key, all
# keys), declarative revocations, analysis verdicts, signer failures, restarts (the ring reloaded
# from its JSON, as from the Secret) and crashes (a plan computed and then lost before its write).

HISTORY_START = datetime(2026, 1, 1, tzinfo=UTC)
ALL_READY = Observations()


@dataclass(frozen=True)
class Action:
    kind: str
    value: Any = None


actions = st.one_of(
    st.builds(Action, st.just("wait"), st.integers(min_value=1, max_value=60 * 60 * 60)),
    st.builds(Action, st.just("rotate")),
    st.builds(Action, st.just("rollback")),
    st.builds(Action, st.just("emergency"), st.sampled_from(["current", "all", "pick"])),
    st.builds(Action, st.just("declare"), st.integers(min_value=0, max_value=5)),
    st.builds(Action, st.just("verdict"), st.sampled_from(list(AnalysisResult))),
    st.builds(Action, st.just("signer_failure")),
    st.builds(Action, st.just("verifiers_not_ready")),
    st.builds(Action, st.just("signers_rolling")),
    st.builds(Action, st.just("restart")),
    st.builds(Action, st.just("crash")),
    st.builds(Action, st.just("share"), st.sampled_from([0.0, 0.5, 1.0, None])),
)

specs = st.sampled_from(
    [
        spec(),
        spec(rotation={"interval": "6h", "publishAhead": "2h", "gracePeriod": "12h", "retention": "1d"}),
        spec(
            rotation={
                "interval": "1d",
                "publishAhead": "1h",
                "gracePeriod": "1d",
                "retention": "2d",
                "window": {"start": "22:00", "end": "02:00"},
                "timeZone": "America/New_York",
            },
            analysis={"prometheus": {"address": "http://p:9090", "query": "up"}},
        ),
        spec(
            rotation={
                "schedule": "0 */4 * * *",
                "publishAhead": "1h",
                "gracePeriod": "8h",
                "retention": "16h",
            },
            rollout={"onFailure": "Pause"},
        ),
        spec(algorithm="HS256", suspend=True),
        spec(propagation={"prometheus": {"address": "http://p:9090"}, "interval": "1m", "timeout": "2h"}),
        spec(
            algorithm="HS256",
            rotation={"interval": "6h", "publishAhead": "2h", "gracePeriod": "12h", "retention": "1d"},
            propagation={"prometheus": {"address": "http://p:9090"}, "threshold": "0.5"},
        ),
    ]
)


def jwks_kids(ring: Ring) -> set[str]:
    return {k.kid for k in ring.verifying()}


def check_transitions(before: Ring, after: Ring, moves: list[Move]) -> None:
    """Every observed change of a key's state is in the lifecycle's table, and the recorded moves
    account for all of them (no state changed behind `transition`'s back)."""
    states: dict[str, KeyState | None] = {k.kid: k.state for k in before.keys}
    for move in moves:
        assert (move.old, move.new) in TRANSITIONS, f"{move.kid}: {move.old} -> {move.new}"
        assert states.get(move.kid) == move.old, (
            f"{move.kid} moved from {move.old}, was {states.get(move.kid)}"
        )
        states[move.kid] = move.new
    observed = {k.kid: k.state for k in after.keys}
    assert {kid: state for kid, state in states.items() if state is not None} == observed


def check_invariants(
    the_spec: Spec, before: Ring, after: Ring, now: datetime, observed: Observations = ALL_READY
) -> None:
    # 1. exactly one current key, and (asymmetric) its public key is in the JWKS
    current = [k for k in after.keys if k.state is KeyState.CURRENT]
    assert len(current) == 1
    if not the_spec.symmetric:
        assert current[0].kid in {k["kid"] for k in jwks.build(after)["keys"]}
    # at most one prepared key
    assert len([k for k in after.keys if k.state is KeyState.NEXT]) <= 1
    # 2. a scheduled (or manual) activation only after publishAhead in the JWKS
    new_history = after.history[len(before.history) :] if len(after.history) >= len(before.history) else []
    for entry in after.history:
        if (
            entry.operation is Operation.ROTATE
            and entry.trigger in (Trigger.SCHEDULED, Trigger.MANUAL)
            and entry in new_history
        ):
            key = after.find(entry.kids[0])
            assert key is not None and key.published_at is not None
            assert key.published_at + the_spec.rotation.publish_ahead <= entry.at
            # with the propagation gate, only once the share of the kid reached the threshold
            gate = the_spec.propagation
            if gate is not None:
                share = observed.propagation.get(key.kid)
                assert share is not None and share.value is not None and share.value >= gate.threshold
    # 3. a key leaves the JWKS only when revoked or when its grace is over
    for kid in jwks_kids(before) - jwks_kids(after):
        key = after.find(kid)
        if key is None:  # gone in one step: revoked and forgotten, or retired and purged
            old = before.find(kid)
            assert old is not None
            assert kid in after.revoked_kids or (old.remove_from_jwks_at or now) <= now
            continue
        assert key.state in (KeyState.REVOKED, KeyState.RETIRED)
        if key.state is KeyState.RETIRED:
            assert key.remove_from_jwks_at is not None and key.remove_from_jwks_at <= now
    # 4. private material is deleted only for revoked keys or after retention
    had = {k.kid for k in before.keys if k.state in MATERIAL_STATES}
    has = {k.kid for k in after.keys if k.state in MATERIAL_STATES}
    for kid in had - has:
        key = after.find(kid)
        if key is None:
            old = before.find(kid)
            assert old is not None and old.purge_at is not None and old.purge_at <= now
        else:
            assert key.state is KeyState.REVOKED
    # 5. a revoked kid never signs or is published again; rollback restores only a previous key
    for key in after.keys:
        if key.kid in after.revoked_kids:
            assert key.state is KeyState.REVOKED
    assert set(before.revoked_kids) <= set(after.revoked_kids)
    for entry in new_history:
        if entry.operation is Operation.ROLLBACK and entry.result == "RolledBack":
            restored = before.find(entry.kids[0])
            assert restored is not None and restored.state is KeyState.PREVIOUS
            if entry.trigger is Trigger.ROLLOUT:  # only during the signer wave of a rotation
                undone = before.find(entry.kids[1])
                assert undone is not None and undone.activation is Operation.ROTATE
                assert undone.signers_ready_at is None
    # status never carries material: public JWKs only
    for key in after.keys:
        if key.public_jwk is not None:
            assert not set(key.public_jwk) & jwks.PRIVATE_MEMBERS


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(the_spec=specs, script=st.lists(actions, min_size=1, max_size=40), data=st.data())
def test_invariants_hold_through_random_histories(
    the_spec: Spec, script: list[Action], data: st.DataObject
) -> None:
    now = HISTORY_START
    ring = step(the_spec, Ring(), now).ring
    counter = 0
    revoked: list[str] = []
    for action in script:
        counter += 1
        requests = Requests()
        observed = Observations()
        spec_now = the_spec
        if action.kind == "wait":
            now += timedelta(seconds=action.value)
        elif action.kind == "rotate":
            requests = Requests(rotate=f"r{counter}")
        elif action.kind == "rollback":
            requests = Requests(rollback=f"b{counter}")
        elif action.kind == "emergency":
            live = [k.kid for k in ring.keys if k.state in MATERIAL_STATES]
            if action.value == "all":
                requests = Requests(emergency=Emergency(f"e{counter}", revoke_all=True))
            elif action.value == "pick" and live:
                kid = data.draw(st.sampled_from(live))
                requests = Requests(emergency=Emergency(f"e{counter}", revoke_kids=(kid,)))
            else:
                requests = Requests(emergency=Emergency(f"e{counter}"))
        elif action.kind == "declare":
            known = [k.kid for k in ring.keys]
            if known:
                revoked.append(known[action.value % len(known)])
        elif action.kind == "verdict":
            observed = Observations(analysis=action.value)
        elif action.kind == "signer_failure":
            observed = Observations(signer_failure="web: rollout timed out", signer_targets=True)
        elif action.kind == "signers_rolling":
            observed = Observations(signers_ready=False, signer_targets=True)
        elif action.kind == "verifiers_not_ready":
            observed = Observations(verifiers_ready=False)
        elif action.kind == "restart":
            ring = record.loads(record.dumps(ring))
        elif action.kind == "share":
            observed = Observations(propagation={k.kid: Share(now, action.value) for k in ring.keys})
        if revoked:
            spec_now = dataclasses.replace(
                the_spec, revoked=tuple(Revocation(kid, "key_compromise") for kid in revoked)
            )
        result = step(spec_now, ring, now, requests, observed)
        passes: list[Plan] = [result]
        if result.requeue:  # the executor plans again at once (the next key after a revocation)
            result = step(spec_now, result.ring, now, requests, observed)
            assert not result.requeue
            passes.append(result)
        if action.kind == "crash":
            continue  # computed, never written: the next pass starts from the old Secret
        check_transitions(ring, result.ring, [m for p in passes for m in p.moves])
        check_invariants(spec_now, ring, result.ring, now, observed)
        # 7. with nothing due, planning again at the same instant writes nothing
        if requests.emergency is None and observed == Observations():
            settled = plan(spec_now, result.ring, now, requests, Observations())
            assert settled.needs_fresh == 0
            if record.dumps(settled.ring) != record.dumps(result.ring):
                # one legitimate follow-up: the end of the signer wave is recorded in the pass after
                # the activation (signers are only seen on the new key once it is written)
                current = settled.ring.current
                assert current is not None and current.signers_ready_at == now
                again = plan(spec_now, settled.ring, now, requests, Observations())
                assert record.dumps(again.ring) == record.dumps(settled.ring)
                result = settled
        # and nothing happens before the announced wake-up time
        if result.wake_at is not None and requests == Requests() and observed == Observations():
            quiet = plan(spec_now, result.ring, result.wake_at - timedelta(seconds=1), requests, observed)
            assert record.dumps(quiet.ring) == record.dumps(result.ring)
        ring = result.ring
