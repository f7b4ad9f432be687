"""The reconcile pass with in-memory ports: each row is one fault around a keyset, and the pass
must still answer an emergency, keep the keys safe and say what is wrong.

The integration suite (tests/integration/test_faults.py) runs the same faults against the real
kube-apiserver; these rows pin the decisions down fast and without a cluster.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from keyturn.domain.inputs import ConfigMapSnapshot
from keyturn.domain.layout import material_item
from keyturn.domain.propagation import Share
from keyturn.executor import Executor, Outcome
from keyturn.propagation import EMERGENCY_TIMEOUT
from unit.executor.fakes import (
    Clock,
    FakeConfigMaps,
    FakeEvents,
    FakeKeysets,
    FakePropagation,
    FakeRollouts,
    FakeSecrets,
)

NS, NAME = "ns", "keys"
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SPEC: dict[str, Any] = {
    "algorithm": "ES256",
    "rotation": {"interval": "30d", "publishAhead": "1h", "gracePeriod": "7d", "retention": "14d"},
}


@dataclass
class World:
    clock: Clock = field(default_factory=lambda: Clock(T0))
    keysets: FakeKeysets = field(default_factory=FakeKeysets)
    secrets: FakeSecrets = field(default_factory=FakeSecrets)
    configmaps: FakeConfigMaps = field(default_factory=FakeConfigMaps)
    events: FakeEvents = field(default_factory=FakeEvents)
    rollouts: FakeRollouts = field(default_factory=FakeRollouts)
    propagation: FakePropagation = field(default_factory=FakePropagation)

    def __post_init__(self) -> None:
        self.executor = Executor(
            keysets=self.keysets,
            secrets=self.secrets,
            configmaps=self.configmaps,
            events=self.events,
            rollouts=self.rollouts,
            propagation=self.propagation,
            clock=self.clock,
        )

    def run(self) -> Outcome:
        return asyncio.run(self.executor.reconcile(NS, NAME))

    @property
    def obj(self) -> dict[str, Any]:
        return self.keysets.objects[(NS, NAME)]

    @property
    def status(self) -> dict[str, Any]:
        return self.keysets.status(NS, NAME)

    def condition(self, kind: str) -> dict[str, Any]:
        return self.keysets.condition(NS, NAME, kind)

    def record(self) -> dict[str, Any]:
        record: dict[str, Any] = json.loads(self.secrets.secrets[(NS, NAME)].annotations["keyturn.dev/state"])
        return record

    def states(self) -> dict[str, str]:
        return {k["kid"]: k["state"] for k in self.record()["keys"]}

    def secret_items(self) -> set[str]:
        return set(self.secrets.secrets[(NS, NAME)].data)

    def jwks_kids(self) -> list[str]:
        document = json.loads(self.configmaps.maps[(NS, f"{NAME}-jwks")].data["jwks.json"])
        return [k["kid"] for k in document["keys"]]

    def emergency(self, request: dict[str, Any]) -> None:
        self.obj.setdefault("status", {})["emergency"] = request


def ready_world(spec: dict[str, Any] | None = None) -> World:
    world = World()
    world.keysets.add(NS, NAME, spec or SPEC)
    world.run()
    world.run()  # the pass after the first records the end of the (empty) signer wave
    assert world.condition("Ready")["status"] == "True"
    return world


# ------------------------------------------------------------------------------------ the faults
def spec_unparsable(world: World) -> None:
    world.obj["spec"]["rotation"]["timeZone"] = "America"  # a directory of the tz database, not a zone


def spec_of_wrong_shape(world: World) -> None:
    world.obj["spec"]["rotation"] = ["not", "a", "mapping"]


def jwks_foreign(world: World) -> None:
    world.configmaps.maps[(NS, f"{NAME}-jwks")] = ConfigMapSnapshot({"jwks.json": "{}"}, {}, (), "99")


def jwks_labels_stripped(world: World) -> None:
    old = world.configmaps.maps[(NS, f"{NAME}-jwks")]
    world.configmaps.maps[(NS, f"{NAME}-jwks")] = ConfigMapSnapshot(old.data, {}, (), "98")


def passphrase_gone(world: World) -> None:
    world.secrets.passphrases.clear()


def targets_unobservable(world: World) -> None:
    world.rollouts.fail = TimeoutError()


def binary_item(world: World) -> None:
    world.secrets.edit(NS, NAME, binary={"blob": base64.b64encode(b"\xff\xfe\x00").decode()})


def current_material_deleted(world: World) -> None:
    secret = world.secrets.secrets[(NS, NAME)]
    current = world.status["currentKid"]
    data = {k: v for k, v in secret.data.items() if k != material_item(current, False)}
    world.secrets.edit(NS, NAME, data=data)


def timing_rule_broken(world: World) -> None:
    world.obj["spec"]["tokens"] = {"maxLifetime": "30d"}  # longer than the 7d grace period


@dataclass(frozen=True)
class Fault:
    inject: Callable[[World], None]
    stalled: str | None  # the Stalled reason the keyset must show, if any
    degraded: str | None = None
    jwks_untouched: bool = False
    spec: dict[str, Any] | None = None


ENCRYPTED = {**SPEC, "secret": {"encryption": {"passphraseSecretRef": {"name": "pp", "key": "k"}}}}

FAULTS = {
    "the spec no longer parses (a time zone that is a directory)": Fault(spec_unparsable, "InvalidSpec"),
    "the spec has the wrong shape": Fault(spec_of_wrong_shape, "InvalidSpec"),
    "the JWKS ConfigMap was replaced by a foreign one": Fault(
        jwks_foreign, "JwksConflict", jwks_untouched=True
    ),
    "the JWKS ConfigMap's labels were stripped": Fault(jwks_labels_stripped, None),
    "the passphrase Secret is gone": Fault(passphrase_gone, "PassphraseMissing", spec=ENCRYPTED),
    "the targets cannot be observed": Fault(targets_unobservable, None, degraded="TargetFailed"),
    "a binary item was added to the Secret": Fault(binary_item, "SecretConflict"),
    "the current key's material was deleted by hand": Fault(current_material_deleted, "SecretCorrupt"),
    "a timing rule is broken": Fault(timing_rule_broken, "GracePeriodTooShort"),
}


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
def test_an_emergency_is_answered_whatever_else_is_wrong(fault: Fault) -> None:
    world = _encrypted_world(fault.spec) if fault.spec else ready_world()
    old, nxt = world.status["currentKid"], world.status["nextKid"]
    fault.inject(world)
    world.emergency({"requestId": "inc-1", "reason": "key_compromise"})
    jwks_writes = len(world.configmaps.writes)
    world.clock.now += timedelta(seconds=5)
    world.run()

    ack = world.status["emergency"]
    assert ack["result"] == "Revoked" and ack["newKid"] == nxt, ack
    assert world.states()[old] == "revoked"
    assert material_item(old, False) not in world.secret_items()
    assert world.secrets.secrets[(NS, NAME)].data["JWT_KID"] == nxt
    if fault.jwks_untouched:
        assert len(world.configmaps.writes) == jwks_writes  # never overwrites what is not Keyturn's
    else:
        assert old not in world.jwks_kids() and world.jwks_kids()[0] == nxt
        assert world.configmaps.maps[(NS, f"{NAME}-jwks")].labels["keyturn.dev/keyset"] == NAME
    if fault.stalled is not None:
        assert world.condition("Stalled")["status"] == "True"
        assert world.condition("Stalled")["reason"] == fault.stalled
    if fault.degraded is not None:
        assert world.condition("Degraded")["status"] == "True"
        assert world.condition("Degraded")["reason"] == fault.degraded
    assert "EmergencyHandled" in world.events.reasons()


def _encrypted_world(spec: dict[str, Any]) -> World:
    world = World()
    world.secrets.passphrases[(NS, "pp", "k")] = b"correct horse battery staple"
    world.keysets.add(NS, NAME, spec)
    world.run()
    world.run()
    return world


# ------------------------------------------------------------------------------------ no record
UNREADABLE = {
    "a Secret of the same name that Keyturn did not create": {"labels": {}, "record": None},
    "a damaged record": {"labels": None, "record": '{"version": 1, "keys": {"not": "a list"}}'},
    "a record of another version": {"labels": None, "record": '{"version": 99}'},
}


@pytest.mark.parametrize("damage", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_an_emergency_without_a_readable_record_is_rejected_and_nothing_is_written(
    damage: dict[str, Any],
) -> None:
    world = ready_world()
    secret = world.secrets.secrets[(NS, NAME)]
    annotations = dict(secret.annotations)
    if damage["record"] is None:
        annotations.pop("keyturn.dev/state")
    else:
        annotations["keyturn.dev/state"] = damage["record"]
    world.secrets.edit(
        NS, NAME, annotations=annotations, labels=secret.labels if damage["labels"] is None else {}
    )
    writes = len(world.secrets.writes)
    world.emergency({"requestId": "inc-2"})
    world.run()
    assert world.status["emergency"]["result"] == "Rejected"
    assert "nothing was revoked" in world.status["emergency"]["message"]
    assert world.condition("Stalled")["status"] == "True"
    assert world.condition("Stalled")["reason"] in ("SecretConflict", "SecretCorrupt")
    assert len(world.secrets.writes) == writes
    handled_at = world.status["emergency"]["handledAt"]
    patches = len(world.keysets.status_patches)
    world.clock.now += timedelta(seconds=30)
    world.run()
    assert world.status["emergency"]["handledAt"] == handled_at  # a stable answer: no status churn
    assert len(world.keysets.status_patches) == patches


# ------------------------------------------------------------------------------------ requests
MALFORMED = {
    "revokeKids is a string": {"requestId": "r1", "revokeKids": "abc"},
    "revokeAll is a string": {"requestId": "r2", "revokeAll": "yes"},
    "a kid is a number": {"requestId": "r3", "revokeKids": [42]},
}


@pytest.mark.parametrize("request_", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_emergency_is_rejected_with_a_message(request_: dict[str, Any]) -> None:
    world = ready_world()
    current = world.status["currentKid"]
    world.emergency(request_)
    world.run()
    assert world.status["emergency"]["result"] == "Rejected"
    assert "cannot be read" in world.status["emergency"]["message"]
    assert world.status["currentKid"] == current


def test_revoke_all_without_a_way_to_generate_leaves_no_key_signing() -> None:
    world = _encrypted_world(ENCRYPTED)
    passphrase_gone(world)
    world.emergency({"requestId": "all", "revokeAll": True})
    world.run()
    assert world.status["emergency"]["result"] == "Revoked"
    assert world.status.get("currentKid") is None
    assert set(world.states().values()) == {"revoked"}
    assert world.jwks_kids() == []
    assert "NoSigningKey" in world.events.reasons()
    # Once the passphrase is back, a fresh key signs again.
    world.secrets.passphrases[(NS, "pp", "k")] = b"correct horse battery staple"
    world.run()
    world.run()
    assert world.condition("Ready")["status"] == "True"


def test_a_declarative_revocation_runs_while_the_spec_does_not_parse() -> None:
    world = ready_world()
    old = world.status["currentKid"]
    spec_unparsable(world)
    world.obj["spec"]["revokedKids"] = [{"kid": old, "reason": "key_compromise"}]
    world.run()
    assert world.states()[old] == "revoked"
    assert old not in world.jwks_kids()
    assert world.condition("Stalled")["reason"] == "InvalidSpec"


def test_a_stalled_new_keyset_creates_nothing() -> None:
    world = World()
    world.keysets.add(NS, NAME, {**SPEC, "tokens": {"maxLifetime": "30d"}})
    world.run()
    assert world.secrets.writes == [] and world.configmaps.writes == []
    assert world.condition("Stalled")["reason"] == "GracePeriodTooShort"


def test_nothing_due_writes_nothing() -> None:
    world = ready_world()
    before = (len(world.secrets.writes), len(world.configmaps.writes), len(world.keysets.status_patches))
    world.clock.now += timedelta(minutes=5)
    outcome = world.run()
    assert (
        len(world.secrets.writes),
        len(world.configmaps.writes),
        len(world.keysets.status_patches),
    ) == before
    assert outcome.wake_at is not None and outcome.wake_at > world.clock.now


def test_a_failing_pass_is_reported_as_degraded_with_its_type_only() -> None:
    world = ready_world()
    secret_text = "-----BEGIN PRIVATE KEY----- pretend"
    asyncio.run(world.executor.report_failure(NS, NAME, KeyError(secret_text)))
    degraded = world.condition("Degraded")
    assert degraded["status"] == "True" and degraded["reason"] == "ReconcileError"
    assert "KeyError" in degraded["message"] and "PRIVATE" not in degraded["message"]
    assert world.condition("Ready")["status"] == "True"  # the other conditions are kept
    asyncio.run(world.executor.report_failure(NS, NAME, KeyError(secret_text)))
    assert world.events.reasons().count("ReconcileError") == 1  # rate-limited
    world.clock.now += timedelta(seconds=1)
    world.run()  # the next good pass clears it
    assert world.condition("Degraded")["status"] == "False"


# ------------------------------------------------------------------------------------ the propagation gate
GATED = {**SPEC, "propagation": {"prometheus": {"address": "http://prometheus:9090"}, "timeout": "1h"}}
DUE = T0 + timedelta(days=30)  # the first scheduled rotation of ready_world
INTERVAL = timedelta(seconds=15)


def held_world(share: float | None = 0.5) -> tuple[World, str, str]:
    world = ready_world(GATED)
    assert world.propagation.asked == []  # nothing is asked before an activation is due
    current, nxt = world.status["currentKid"], world.status["nextKid"]
    world.propagation.share = share
    world.clock.now = DUE
    world.run()
    return world, current, nxt


def writes(world: World) -> tuple[int, int, int, int]:
    return (
        len(world.secrets.writes),
        len(world.configmaps.writes),
        len(world.keysets.status_patches),
        len(world.events.posted),
    )


def ratio(kid: str) -> float | None:
    return REGISTRY.get_sample_value(
        "keyturn_propagation_ratio", {"namespace": NS, "keyset": NAME, "kid": kid}
    )


def test_a_due_rotation_waits_with_the_share_in_its_condition() -> None:
    world, current, nxt = held_world(2 / 3)
    assert world.status["currentKid"] == current and world.status["nextKid"] == nxt
    assert world.propagation.asked == [(nxt, DUE)]
    reconciling = world.condition("Reconciling")
    assert (reconciling["status"], reconciling["reason"]) == ("True", "AwaitingPropagation")
    assert f"66.6% of consumers accept {nxt}" in reconciling["message"]
    assert world.status["phase"] == "Publishing"
    assert world.status["propagation"]["share"] == "0.6667"
    assert world.status["propagation"]["heldSince"] == "2026-07-01T12:00:00Z"
    assert ratio(nxt) == pytest.approx(2 / 3)


def test_while_it_waits_it_asks_once_per_interval_and_writes_nothing_new() -> None:
    world, _, nxt = held_world()
    before = writes(world)
    world.clock.now = DUE + timedelta(seconds=5)  # a watch event wakes it before the interval is over
    outcome = world.run()
    assert writes(world) == before
    assert len(world.propagation.asked) == 1
    assert outcome.wake_at == DUE + INTERVAL
    world.clock.now = DUE + INTERVAL
    world.run()
    assert world.propagation.asked[-1] == (nxt, DUE + INTERVAL)
    assert writes(world) == before  # the same share: the same status


def test_the_key_signs_in_the_pass_after_consumers_accept_it() -> None:
    world, current, nxt = held_world()
    world.propagation.share = 1.0
    world.clock.now = DUE + INTERVAL
    world.run()
    assert world.status["currentKid"] == nxt
    assert world.states()[current] == "previous"
    assert world.condition("Reconciling")["reason"] != "AwaitingPropagation"
    assert "KeyRotated" in world.events.reasons()
    world.clock.now += timedelta(seconds=1)
    world.run()
    assert world.status.get("propagation") is None
    assert ratio(nxt) is None  # no longer asked about: no series


def test_no_data_holds_the_key_and_says_why() -> None:
    world, current, nxt = held_world(None)
    assert world.status["currentKid"] == current
    assert f"accept {nxt} is unknown (no data)" in world.condition("Reconciling")["message"]
    assert world.status["propagation"]["result"] == "NoData"
    assert ratio(nxt) is None


def test_a_gate_that_fails_to_ask_holds_the_key_and_the_pass_goes_on() -> None:
    world = ready_world(GATED)
    current = world.status["currentKid"]
    world.propagation.fail = RuntimeError("boom")
    world.clock.now = DUE
    world.run()
    assert world.status["currentKid"] == current
    reconciling = world.condition("Reconciling")
    assert (
        reconciling["reason"] == "AwaitingPropagation"
        and "asking failed (RuntimeError)" in reconciling["message"]
    )


def test_past_the_timeout_one_warning_and_degraded() -> None:
    world, current, nxt = held_world()
    world.clock.now = DUE + timedelta(hours=1)
    world.run()
    world.clock.now += INTERVAL
    world.run()
    assert world.events.reasons().count("PropagationTimeout") == 1
    assert [warning for reason, _, warning in world.events.posted if reason == "PropagationTimeout"] == [True]
    degraded = world.condition("Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "PropagationTimeout")
    assert world.status["currentKid"] == current
    assert world.condition("Reconciling")["reason"] == "AwaitingPropagation"
    world.propagation.share = 1.0
    world.clock.now += INTERVAL
    world.run()
    assert world.status["currentKid"] == nxt
    assert world.condition("Degraded")["status"] == "False"


def test_an_emergency_during_the_hold_is_not_delayed_and_says_the_share() -> None:
    world, current, nxt = held_world(0.5)
    world.emergency({"requestId": "inc-7", "reason": "key_compromise"})
    world.clock.now = DUE + timedelta(seconds=2)  # within the interval: the remembered answer
    world.run()
    ack = world.status["emergency"]
    assert (ack["result"], ack["newKid"]) == ("Revoked", nxt)
    assert f"50% of consumers already accepted {nxt}" in ack["message"]
    assert world.states()[current] == "revoked"


def test_beside_an_emergency_the_rollouts_take_no_kid_in_question_as_accepted() -> None:
    """The targets are observed while the gate is asked: a `reload: none` signer must not count as
    having the key before the answer is in."""
    world, _, nxt = held_world(0.5)
    world.emergency({"requestId": "inc-9", "reason": "key_compromise"})
    world.clock.now = DUE + INTERVAL  # the next question is due
    world.run()
    assert {nxt: Share(world.clock.now, None, "asked beside an emergency")} in world.rollouts.shares


def test_an_emergency_asks_with_a_short_timeout() -> None:
    world = ready_world(GATED)
    nxt = world.status["nextKid"]
    world.propagation.share = 1.0
    world.emergency({"requestId": "inc-8"})
    world.clock.now += timedelta(hours=2)  # no activation due: only the emergency asks
    world.run()
    assert world.propagation.asked == [(nxt, world.clock.now)]
    assert world.propagation.within == [EMERGENCY_TIMEOUT]
    assert f"100% of consumers already accepted {nxt}" in world.status["emergency"]["message"]


def test_an_hmac_keyset_is_gated_too() -> None:
    world = ready_world({**GATED, "algorithm": "HS256"})
    current, nxt = world.status["currentKid"], world.status["nextKid"]
    world.propagation.share = 0.5
    world.clock.now = DUE
    world.run()
    assert world.status["currentKid"] == current
    assert world.condition("Reconciling")["reason"] == "AwaitingPropagation"
    world.propagation.share = 1.0
    world.clock.now += INTERVAL
    world.run()
    assert world.status["currentKid"] == nxt


def test_the_rollouts_see_the_shares_of_the_pass() -> None:
    world, _, nxt = held_world(0.5)
    assert world.rollouts.shares[-1] == {nxt: Share(DUE, 0.5)}
