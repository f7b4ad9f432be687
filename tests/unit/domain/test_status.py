"""domain/status.py: the status subresource projected from the ring, the plan and what a pass saw.

A situation is what one pass hands to `status.build`; the table says which phase and which
conditions it must show. kstatus wants exactly one of Ready, Reconciling and Stalled True, so each
row names that one with its reason and message; RolledBack and Degraded describe the keys and
their targets beside it. Then: when lastTransitionTime moves, and how the answer to an emergency is
merged into the request a person wrote in status.emergency.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from keyturn.domain import propagation, status
from keyturn.domain.model import AckResult, AnalysisResult, EmergencyAck, Ring
from keyturn.domain.planner import Emergency, Observations, Plan, Requests, plan
from keyturn.domain.propagation import Share
from keyturn.domain.reasons import Reason, Violation
from keyturn.domain.record import timestamp
from keyturn.domain.status import AnalysisView, Measurement, Observed, Phase, RolloutView
from keyturn.domain.targets import Role, TargetState, TargetView
from planning import T0, initialized, spec, step

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
EARLIER = T0 - DAY  # when the conditions a pass finds in status were last changed
GENERATION = 7
KSTATUS = ("Ready", "Reconciling", "Stalled")


@dataclass(frozen=True)
class Pass:
    """What one pass hands to status.build."""

    ring: Ring
    plan: Plan | None
    now: datetime
    violations: tuple[Violation, ...] = ()
    observed: Observed = field(default_factory=Observed)


def build(the_pass: Pass, existing: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return status.build(
        generation=GENERATION,
        ring=the_pass.ring,
        plan=the_pass.plan,
        violations=the_pass.violations,
        observed=the_pass.observed,
        existing=existing or {},
        now=the_pass.now,
    )


def conditions(built: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in built["conditions"]}


def settled(the_plan: Plan, now: datetime, **fields: Any) -> Pass:
    return Pass(the_plan.ring, the_plan, now, **fields)


# ---------------------------------------------------------------------- situations


def ready() -> Pass:
    the_spec, ring = initialized()
    return settled(plan(the_spec, ring, T0 + HOUR), T0 + HOUR)


def without_keys() -> Pass:
    return settled(plan(spec(), Ring(), T0), T0)


def awaiting_publish_ahead() -> Pass:
    the_spec, ring = initialized()
    now = T0 + timedelta(minutes=10)
    return settled(step(the_spec, ring, now, Requests(rotate="now-1")), now)


def awaiting_verifiers() -> Pass:
    the_spec, ring = initialized()
    return settled(step(the_spec, ring, T0 + DAY, observed=Observations(verifiers_ready=False)), T0 + DAY)


GATED = spec(propagation={"prometheus": {"address": "http://prom:9090"}})
# A `reload: none` verifier waits for the same share as the gate.
WAITING_FOR_ITS_PROCESSES = RolloutView(
    revision="r2",
    targets=(TargetView("web", Role.VERIFIER, TargetState.PENDING, "waiting for its processes"),),
    in_progress=True,
)


def awaiting_propagation() -> Pass:
    _, ring = initialized(GATED)
    assert ring.next is not None
    shares = {ring.next.kid: Share(T0 + DAY, 2 / 3)}
    the_plan = step(GATED, ring, T0 + DAY, observed=Observations(propagation=shares))
    return settled(
        the_plan,
        T0 + DAY,
        observed=Observed(
            rollout=WAITING_FOR_ITS_PROCESSES,
            propagation=propagation.view(GATED.propagation, the_plan.ring, shares),
        ),
    )


ROLLING = RolloutView(
    revision="r2",
    targets=(
        TargetView("api", Role.SIGNER, TargetState.ROLLING, "1/2 updated"),
        TargetView("web", Role.VERIFIER, TargetState.PENDING),
    ),
    in_progress=True,
)


def rolling_out() -> Pass:
    the_spec, ring = initialized()
    return settled(step(the_spec, ring, T0 + DAY), T0 + DAY, observed=Observed(rollout=ROLLING))


def rolled_back() -> Plan:
    the_spec, ring = initialized()
    ring = step(the_spec, ring, T0 + DAY).ring
    return step(the_spec, ring, T0 + DAY + HOUR, Requests(rollback="undo-1"))


def rolling_back() -> Pass:
    return settled(rolled_back(), T0 + DAY + HOUR, observed=Observed(rollout=ROLLING))


def rolled_back_and_settled() -> Pass:
    return settled(rolled_back(), T0 + DAY + HOUR)


ANALYSED = spec(analysis={"prometheus": {"address": "http://prom:9090", "query": "up"}, "count": 3})
ANALYSIS_VIEW = AnalysisView(
    phase="Running",
    success_rate=0.97,
    measurements=(
        Measurement(T0 + DAY + HOUR, 0.97, "Successful"),
        Measurement(T0 + DAY + 2 * HOUR, None, "NoData"),
    ),
)


def analysing() -> Pass:
    _, ring = initialized(ANALYSED)
    ring = step(ANALYSED, ring, T0 + DAY).ring
    now = T0 + DAY + 2 * HOUR
    return settled(plan(ANALYSED, ring, now), now, observed=Observed(analysis=ANALYSIS_VIEW))


def stalled() -> Pass:
    problems = (
        Violation.of(Reason.GRACE_TOO_SHORT, "gracePeriod 1h is shorter than the token lifetime"),
        Violation.of(Reason.UNKNOWN_KID, "revokedKids names k9, which this keyset never had"),
    )
    return settled(plan(*initialized(), T0 + HOUR), T0 + HOUR, violations=problems)


def paused_by_an_inconclusive_analysis() -> Pass:
    _, ring = initialized(ANALYSED)
    ring = step(ANALYSED, ring, T0 + DAY).ring
    ring = step(ANALYSED, ring, T0 + DAY + HOUR).ring
    now = T0 + DAY + 2 * HOUR
    return settled(
        step(ANALYSED, ring, now, observed=Observations(analysis=AnalysisResult.INCONCLUSIVE)), now
    )


def paused_with_nothing_to_roll_back_to() -> Pass:
    the_spec, ring = initialized()
    ring = step(the_spec, ring, T0 + DAY, observed=Observations(signer_targets=True)).ring
    rolling = Observations(signers_ready=False, signer_targets=True)
    revoke_k1 = Requests(emergency=Emergency("inc-10", revoke_kids=("k1",)))
    ring = step(the_spec, ring, T0 + DAY, revoke_k1, rolling).ring
    failing = Observations(signer_failure="api: timeout", signer_targets=True)
    return settled(step(the_spec, ring, T0 + DAY + HOUR, observed=failing), T0 + DAY + HOUR)


def paused_by_a_failed_rollout() -> Pass:
    the_spec, ring = initialized()
    failed = RolloutView(revision="r2", failure="deployment api: rollout timed out")
    return settled(plan(the_spec, ring, T0 + HOUR), T0 + HOUR, observed=Observed(rollout=failed))


TARGET_FAILED = Violation.of(Reason.TARGET_FAILED, "deployment api: rollout timed out")
UNREADABLE = Violation.of(Reason.TARGETS_UNREADABLE, "listing Deployments failed: 503")


def degraded() -> Pass:
    the_spec, ring = initialized()
    problems = (TARGET_FAILED, UNREADABLE)
    return settled(plan(the_spec, ring, T0 + HOUR), T0 + HOUR, observed=Observed(degraded=problems))


def paused_and_degraded() -> Pass:
    paused = paused_by_an_inconclusive_analysis()
    return Pass(paused.ring, paused.plan, paused.now, observed=Observed(degraded=(UNREADABLE,)))


@dataclass(frozen=True)
class Shows:
    phase: Phase
    kstatus: tuple[str, str, str]  # the one True of Ready / Reconciling / Stalled: type, reason, message
    rolled_back: str | None = None  # RolledBack's message when True
    degraded: tuple[str, str] | None = None  # Degraded's reason and message when True


HEALTHY = ("KeysReady", "all keys and targets healthy")
SITUATIONS = [
    pytest.param(
        ready, Shows(Phase.READY, ("Ready", "KeysReady", "k1 signs")), id="a keyset whose key signs is Ready"
    ),
    pytest.param(
        without_keys,
        Shows(Phase.PENDING, ("Reconciling", "Initializing", "generating keys")),
        id="a keyset without keys yet is Pending while it generates them",
    ),
    pytest.param(
        awaiting_publish_ahead,
        Shows(
            Phase.PUBLISHING,
            (
                "Reconciling",
                "AwaitingPublishAhead",
                "the next key is published; it signs once publishAhead has passed",
            ),
        ),
        id="a due activation waiting for publishAhead is Publishing",
    ),
    pytest.param(
        awaiting_verifiers,
        Shows(
            Phase.PUBLISHING,
            (
                "Reconciling",
                "AwaitingVerifiers",
                "waiting for verifiers to load the next key before it signs",
            ),
        ),
        id="a due activation waiting for the verifiers is Publishing",
    ),
    pytest.param(
        awaiting_propagation,
        Shows(
            Phase.PUBLISHING,
            (
                "Reconciling",
                "AwaitingPropagation",
                "66.6% of consumers accept k2; it signs once 100% do (spec.propagation; asked again "
                "every 15s)",
            ),
        ),
        id="a due activation waiting for consumers to accept the key is Publishing, with the share",
    ),
    pytest.param(
        rolling_out,
        Shows(Phase.ROLLING_OUT, ("Reconciling", "RolloutProgressing", "rolling api (Rolling)")),
        id="a rotation rolling through its targets is RollingOut, naming the busy ones",
    ),
    pytest.param(
        rolling_back,
        Shows(
            Phase.ROLLING_BACK,
            ("Reconciling", "RolloutProgressing", "rolling api (Rolling)"),
            rolled_back="rolled back to k1: requested with keyturn.dev/rollback",
        ),
        id="a rollback rolling through its targets is RollingBack and RolledBack",
    ),
    pytest.param(
        rolled_back_and_settled,
        Shows(
            Phase.READY,
            ("Ready", "KeysReady", "k1 signs"),
            rolled_back="rolled back to k1: requested with keyturn.dev/rollback",
        ),
        id="a rollback that settled is Ready and still RolledBack",
    ),
    pytest.param(
        analysing,
        Shows(
            Phase.ANALYZING,
            ("Reconciling", "AnalysisRunning", "measuring token validation after the rotation"),
        ),
        id="a rotated key under analysis is Analyzing",
    ),
    pytest.param(
        stalled,
        Shows(
            Phase.FAILED,
            (
                "Stalled",
                "GracePeriodTooShort",
                "gracePeriod 1h is shorter than the token lifetime; "
                "revokedKids names k9, which this keyset never had",
            ),
        ),
        id="violations stall the keyset with the first reason and every message",
    ),
    pytest.param(
        paused_by_an_inconclusive_analysis,
        Shows(
            Phase.PAUSED,
            ("Stalled", "AnalysisInconclusive", "analysis of k2: Inconclusive"),
            degraded=("AnalysisInconclusive", "analysis of k2: Inconclusive"),
        ),
        id="a pause by the planner is Paused, Stalled and Degraded with the planner's reason",
    ),
    pytest.param(
        paused_with_nothing_to_roll_back_to,
        Shows(
            Phase.PAUSED,
            (
                "Stalled",
                "RollbackImpossible",
                "api: timeout; no previous key is left to roll back to",
            ),
            degraded=(
                "RollbackImpossible",
                "api: timeout; no previous key is left to roll back to",
            ),
        ),
        id="a signer failure with no previous key left pauses with RollbackImpossible",
    ),
    pytest.param(
        paused_by_a_failed_rollout,
        Shows(
            Phase.PAUSED,
            ("Stalled", "RolloutPaused", "deployment api: rollout timed out"),
            degraded=("RolloutPaused", "deployment api: rollout timed out"),
        ),
        id="a failed rollout the planner did not pause for is Paused as RolloutPaused",
    ),
    pytest.param(
        degraded,
        Shows(
            Phase.READY,
            ("Ready", "KeysReady", "k1 signs"),
            degraded=("TargetFailed", "deployment api: rollout timed out; listing Deployments failed: 503"),
        ),
        id="problems with the targets degrade a Ready keyset, first reason and every message",
    ),
    pytest.param(
        paused_and_degraded,
        Shows(
            Phase.PAUSED,
            ("Stalled", "AnalysisInconclusive", "analysis of k2: Inconclusive"),
            degraded=("TargetsUnreadable", "listing Deployments failed: 503"),
        ),
        id="Degraded names the problems seen over the reason of a pause",
    ),
]


@pytest.mark.parametrize(("situation", "shows"), SITUATIONS)
def test_the_phase(situation: Callable[[], Pass], shows: Shows) -> None:
    assert build(situation())["phase"] == shows.phase


@pytest.mark.parametrize(("situation", "shows"), SITUATIONS)
def test_exactly_one_of_ready_reconciling_and_stalled_is_true(
    situation: Callable[[], Pass], shows: Shows
) -> None:
    found = conditions(build(situation()))
    kind, reason, message = shows.kstatus
    assert [t for t in KSTATUS if found[t]["status"] == "True"] == [kind]
    for t in KSTATUS:  # all three carry the same reason and message
        assert (found[t]["reason"], found[t]["message"]) == (reason, message)


@pytest.mark.parametrize(("situation", "shows"), SITUATIONS)
def test_rolled_back(situation: Callable[[], Pass], shows: Shows) -> None:
    found = conditions(build(situation()))["RolledBack"]
    if shows.rolled_back is None:
        assert (found["status"], found["reason"], found["message"]) == (
            "False",
            "KeysReady",
            "no rollback in effect",
        )
    else:
        assert (found["status"], found["reason"], found["message"]) == (
            "True",
            "RolledBack",
            shows.rolled_back,
        )


@pytest.mark.parametrize(("situation", "shows"), SITUATIONS)
def test_degraded(situation: Callable[[], Pass], shows: Shows) -> None:
    found = conditions(build(situation()))["Degraded"]
    if shows.degraded is None:
        assert (found["status"], found["reason"], found["message"]) == ("False", *HEALTHY)
    else:
        assert (found["status"], found["reason"], found["message"]) == ("True", *shows.degraded)


@pytest.mark.parametrize("situation", [pytest.param(p.values[0], id=p.id) for p in SITUATIONS])
def test_every_condition_names_the_generation_and_a_time(situation: Callable[[], Pass]) -> None:
    the_pass = situation()
    built = build(the_pass)
    assert [c["type"] for c in built["conditions"]] == [*KSTATUS, "RolledBack", "Degraded"]
    for found in built["conditions"]:
        assert found["observedGeneration"] == built["observedGeneration"] == GENERATION
        assert found["lastTransitionTime"] == timestamp(the_pass.now)  # nothing before: all new


# ---------------------------------------------------------------------- lastTransitionTime


def found_earlier(situation: Callable[[], Pass]) -> dict[str, Any]:
    """The status a pass finds: what `situation` showed, its conditions last changed EARLIER."""
    built = build(situation())
    for c in built["conditions"]:
        c["lastTransitionTime"] = timestamp(EARLIER)
    return built


def after_a_reconcile_error(situation: Callable[[], Pass]) -> Callable[[], dict[str, Any]]:
    """What report.failure leaves: Degraded True with ReconcileError since EARLIER, the rest as before."""

    def existing() -> dict[str, Any]:
        built = found_earlier(situation)
        built["conditions"] = [
            {**c, "status": "True", "reason": "ReconcileError", "message": "a pass failed with KeyError"}
            if c["type"] == "Degraded"
            else c
            for c in built["conditions"]
        ]
        return built

    return existing


@pytest.mark.parametrize(
    ("existing", "situation", "changed"),
    [
        pytest.param(
            lambda: found_earlier(ready), ready, set(), id="a pass that changes no condition keeps every time"
        ),
        pytest.param(
            lambda: found_earlier(ready),
            stalled,
            {"Ready", "Stalled"},
            id="a keyset that stalls changes the time of the conditions that flipped only",
        ),
        pytest.param(
            lambda: found_earlier(ready),
            degraded,
            {"Degraded"},
            id="a keyset that degrades changes the time of Degraded only",
        ),
        pytest.param(
            lambda: found_earlier(degraded),
            paused_and_degraded,
            {"Ready", "Stalled"},
            id="Degraded keeps its time when only its reason changes",
        ),
        pytest.param(
            after_a_reconcile_error(ready),
            degraded,
            set(),
            id="a ReconcileError followed by other problems keeps Degraded's time",
        ),
        pytest.param(
            after_a_reconcile_error(ready),
            ready,
            {"Degraded"},
            id="a pass that succeeds after a ReconcileError clears Degraded",
        ),
    ],
)
def test_last_transition_time_moves_only_when_the_status_changes(
    existing: Callable[[], dict[str, Any]], situation: Callable[[], Pass], changed: set[str]
) -> None:
    the_pass = situation()
    found = conditions(build(the_pass, existing()))
    assert {t for t, c in found.items() if c["lastTransitionTime"] != timestamp(EARLIER)} == changed
    for t in changed:
        assert found[t]["lastTransitionTime"] == timestamp(the_pass.now)


def test_reconcile_error_is_replaced_by_what_the_pass_saw() -> None:
    found = conditions(build(degraded(), after_a_reconcile_error(ready)()))["Degraded"]
    assert (found["status"], found["reason"]) == ("True", "TargetFailed")


# ---------------------------------------------------------------------- fields from the ring


def test_the_keys_and_their_times_come_from_the_ring_never_their_material() -> None:
    built = build(ready())
    assert (built["currentKid"], built["nextKid"]) == ("k1", "k2")
    assert built["nextRotationAt"] == timestamp(T0 + DAY)
    assert built["lastRotationAt"] == timestamp(T0)  # k1's activation: no rotation yet
    keys = {k["kid"]: k for k in built["keys"]}
    assert {kid: k["state"] for kid, k in keys.items()} == {"k1": "current", "k2": "next"}
    assert (keys["k1"]["activatedAt"], keys["k1"]["fingerprint"]) == (timestamp(T0), "f1")
    assert "activatedAt" not in keys["k2"]
    assert {"privateKey", "pem", "d", "k"}.isdisjoint(key for k in built["keys"] for key in k)
    assert built["analysis"] is None  # cleared once no key has an analysis to show


def test_handled_tokens_and_the_last_rotation_follow_a_rollback() -> None:
    built = build(rolled_back_and_settled())
    assert (built["lastHandledRotate"], built["lastHandledRollback"]) == (None, "undo-1")
    assert built["lastRotationAt"] == timestamp(T0 + DAY + HOUR)
    assert built["history"][-1]["operation"] == "rollback"


def test_the_analysis_shows_its_rate_and_measurements_as_text() -> None:
    analysis = build(analysing())["analysis"]
    assert analysis == {
        "phase": "Running",
        "successRate": "0.9700",
        "measurements": [
            {"at": timestamp(T0 + DAY + HOUR), "result": "Successful", "value": "0.9700"},
            {"at": timestamp(T0 + DAY + 2 * HOUR), "result": "NoData"},
        ],
    }


def test_the_rollout_shows_its_targets_without_empty_fields() -> None:
    rollout = build(rolling_out())["rollout"]
    assert rollout == {
        "revision": "r2",
        "targets": [
            {
                "name": "api",
                "role": "signer",
                "state": "Rolling",
                "message": "1/2 updated",
                "kind": "Deployment",
            },
            {"name": "web", "role": "verifier", "state": "Pending", "kind": "Deployment"},
        ],
    }


# ---------------------------------------------------------------------- status.emergency


def emergency_handled() -> Pass:
    """inc-1 revoked k1 (the current key); k2 signs."""
    the_spec, ring = initialized()
    asked = Requests(emergency=Emergency("inc-1", "key_compromise"))
    ring = step(the_spec, ring, T0 + HOUR, asked).ring
    return settled(step(the_spec, ring, T0 + HOUR, asked), T0 + HOUR)


def rejected_without_a_record() -> Pass:
    """A pass that could not read the record answered inc-3 itself (Observed.ack)."""
    ack = EmergencyAck("inc-3", T0 + HOUR, AckResult.REJECTED, None, "the keyset's Secret cannot be read")
    return Pass(Ring(), None, T0 + HOUR, observed=Observed(ack=ack))


HANDLED_AT = timestamp(T0 + HOUR)
ALREADY_USED = (
    f"requestId inc-1 was already used for another request (handled {HANDLED_AT}); nothing was done: "
    "send this one with a new requestId"
)


@pytest.mark.parametrize(
    ("situation", "asked", "shown"),
    [
        pytest.param(ready, None, None, id="without a request status has no emergency"),
        pytest.param(
            ready,
            {"requestId": "inc-9"},
            None,
            id="a request not answered yet is left as written",
        ),
        pytest.param(
            emergency_handled,
            {"requestId": "inc-1", "reason": "key_compromise"},
            {
                "requestId": "inc-1",
                "reason": "key_compromise",
                "handledAt": HANDLED_AT,
                "result": "Revoked",
                "newKid": "k2",
                "message": "revoked k1; k2 signs now",
            },
            id="the answer is merged into the request",
        ),
        pytest.param(
            emergency_handled,
            {"requestId": "inc-1", "revokeAll": True},
            {
                "requestId": "inc-1",
                "revokeAll": True,
                "handledAt": HANDLED_AT,
                "result": "Rejected",
                "message": ALREADY_USED,
            },
            id="a reused requestId asking for something else is Rejected",
        ),
        pytest.param(
            emergency_handled,
            {"requestId": "inc-1", "revokeAll": True, "result": "Revoked", "newKid": "k2"},
            {
                "requestId": "inc-1",
                "revokeAll": True,
                "handledAt": HANDLED_AT,
                "result": "Rejected",
                "newKid": None,
                "message": ALREADY_USED,
            },
            id="a Rejected answer clears the newKid an earlier answer left",
        ),
        pytest.param(
            rejected_without_a_record,
            {"requestId": "inc-3"},
            {
                "requestId": "inc-3",
                "handledAt": HANDLED_AT,
                "result": "Rejected",
                "message": "the keyset's Secret cannot be read",
            },
            id="a request rejected without a readable record is answered from the pass",
        ),
        pytest.param(
            rejected_without_a_record,
            {"requestId": "inc-4"},
            None,
            id="the pass's answer to another request is not shown",
        ),
    ],
)
def test_the_answer_to_an_emergency(
    situation: Callable[[], Pass], asked: dict[str, Any] | None, shown: dict[str, Any] | None
) -> None:
    built = build(situation(), {"emergency": asked} if asked is not None else {})
    assert built.get("emergency") == shown


def test_status_propagation_shows_the_share_of_the_next_key_while_it_is_asked() -> None:
    waiting = awaiting_propagation()
    shown = build(waiting)["propagation"]
    assert shown == {
        "kid": "k2",
        "share": "0.6667",
        "threshold": "1",
        "result": "Below",
        "message": "66.6% of consumers accept k2",
        "heldSince": timestamp(T0 + DAY),
    }
    without_data = Observed(
        propagation=propagation.view(
            GATED.propagation, waiting.ring, {"k2": Share(T0 + DAY, None, "prometheus unreachable")}
        )
    )
    shown = build(Pass(waiting.ring, waiting.plan, waiting.now, observed=without_data))["propagation"]
    assert "share" not in shown
    assert (shown["result"], shown["message"]) == (
        "NoData",
        "the share of consumers that accept k2 is unknown (prometheus unreachable)",
    )
    # Not asked about (not due, or activated): cleared by the merge patch.
    assert build(ready())["propagation"] is None
