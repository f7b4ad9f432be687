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

from keyturn.domain.inputs import ConfigMapSnapshot
from keyturn.domain.layout import material_item
from keyturn.executor import Executor, Outcome
from unit.executor.fakes import Clock, FakeConfigMaps, FakeEvents, FakeKeysets, FakeRollouts, FakeSecrets

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

    def __post_init__(self) -> None:
        self.executor = Executor(
            keysets=self.keysets,
            secrets=self.secrets,
            configmaps=self.configmaps,
            events=self.events,
            rollouts=self.rollouts,
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
