"""Hypothesis drives random histories through the planner and checks the invariants after each step.

Steps: time passing, manual rotations, rollbacks, emergencies (one kid, the current key, all
keys), declarative revocations, analysis verdicts, signer failures, restarts (the ring reloaded
from its JSON, as from the Secret) and crashes (a plan computed and then lost before its write).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

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
from keyturn.domain.spec import Revocation, Spec
from planning import spec as make_spec
from planning import step as run_step

T0 = datetime(2026, 1, 1, tzinfo=UTC)


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
)

specs = st.sampled_from(
    [
        make_spec(),
        make_spec(rotation={"interval": "6h", "publishAhead": "2h", "gracePeriod": "12h", "retention": "1d"}),
        make_spec(
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
        make_spec(
            rotation={
                "schedule": "0 */4 * * *",
                "publishAhead": "1h",
                "gracePeriod": "8h",
                "retention": "16h",
            },
            rollout={"onFailure": "Pause"},
        ),
        make_spec(algorithm="HS256", suspend=True),
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


def check_invariants(the_spec: Spec, before: Ring, after: Ring, now: datetime) -> None:
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
    now = T0
    ring = run_step(the_spec, Ring(), now).ring
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
        if revoked:
            spec_now = dataclasses.replace(
                the_spec, revoked=tuple(Revocation(kid, "key_compromise") for kid in revoked)
            )
        result = run_step(spec_now, ring, now, requests, observed)
        passes: list[Plan] = [result]
        if result.requeue:  # the executor plans again at once (the next key after a revocation)
            result = run_step(spec_now, result.ring, now, requests, observed)
            assert not result.requeue
            passes.append(result)
        if action.kind == "crash":
            continue  # computed, never written: the next pass starts from the old Secret
        check_transitions(ring, result.ring, [m for p in passes for m in p.moves])
        check_invariants(spec_now, ring, result.ring, now)
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
