"""The JWKS ConfigMap's annotations for `keyturn serve-jwks`, and one issuer per keyset.

The annotations are written with the document and compared like it, so a pass with nothing due
still writes nothing; a keyset whose issuer an older keyset claims is Stalled (IssuerConflict),
its revocations still run and its JWKS is published without the issuer.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keyturn.executor import Executor
from keyturn.executor.issuers import IssuerIndex, issuer_of
from unit.executor.fakes import Clock, FakeConfigMaps, FakeEvents, FakeKeysets, FakeRollouts, FakeSecrets

NS = "ns"
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ISSUER = "https://auth.example.com"
SPEC: dict[str, Any] = {
    "algorithm": "ES256",
    "rotation": {"interval": "30d", "publishAhead": "1h", "gracePeriod": "7d", "retention": "14d"},
    "tokens": {"verifierCacheTTL": "5m"},
    "jwks": {"issuer": ISSUER},
}


class World:
    def __init__(self, issuers: IssuerIndex | None = None) -> None:
        self.clock = Clock(T0)
        self.keysets = FakeKeysets()
        self.secrets = FakeSecrets()
        self.configmaps = FakeConfigMaps()
        self.events = FakeEvents()
        self.executor = Executor(
            keysets=self.keysets,
            secrets=self.secrets,
            configmaps=self.configmaps,
            events=self.events,
            rollouts=FakeRollouts(),
            clock=self.clock,
            issuers=issuers,
        )

    def run(self, name: str) -> None:
        asyncio.run(self.executor.reconcile(NS, name))

    def annotations(self, name: str) -> dict[str, str]:
        return dict(self.configmaps.maps[(NS, f"{name}-jwks")].annotations)

    def condition(self, name: str, kind: str) -> dict[str, Any]:
        return self.keysets.condition(NS, name, kind)


def test_the_jwks_carries_issuer_next_change_and_ttl_and_an_idle_pass_writes_nothing() -> None:
    world = World()
    world.keysets.add(NS, "keys", SPEC)
    world.run("keys")
    world.run("keys")
    assert world.annotations("keys") == {
        "keyturn.dev/issuer": ISSUER,
        "keyturn.dev/next-change": "2026-07-01T12:00:00Z",  # the first key signs for 30 days
        "keyturn.dev/cache-ttl": "300",
    }
    writes = len(world.configmaps.writes)
    world.clock.now += timedelta(days=3)  # nothing due
    world.run("keys")
    assert len(world.configmaps.writes) == writes


def test_a_changed_annotation_alone_is_written() -> None:
    world = World()
    world.keysets.add(NS, "keys", SPEC)
    world.run("keys")
    document = world.configmaps.maps[(NS, "keys-jwks")].data
    world.keysets.objects[(NS, "keys")]["spec"]["tokens"] = {"verifierCacheTTL": "1m"}
    world.run("keys")
    assert world.annotations("keys")["keyturn.dev/cache-ttl"] == "60"
    assert world.configmaps.maps[(NS, "keys-jwks")].data == document
    del world.keysets.objects[(NS, "keys")]["spec"]["jwks"]
    world.run("keys")
    assert "keyturn.dev/issuer" not in world.annotations("keys")


def test_a_rotation_moves_the_next_change() -> None:
    world = World()
    world.keysets.add(NS, "keys", SPEC)
    world.run("keys")
    world.run("keys")
    world.clock.now = T0 + timedelta(days=30)
    world.run("keys")
    assert world.annotations("keys")["keyturn.dev/next-change"] == "2026-07-08T12:00:00Z"  # grace over


def claimed(index: IssuerIndex, name: str, created: str, spec: dict[str, Any] = SPEC) -> None:
    index.update(NS, name, issuer_of(spec), created)


def test_the_later_keyset_claiming_an_issuer_is_stalled_and_its_jwks_published_without_it() -> None:
    index = IssuerIndex()
    world = World(index)
    claimed(index, "first", "2026-01-01T00:00:00Z")
    world.keysets.add(NS, "first", SPEC)
    unclaimed = {k: v for k, v in SPEC.items() if k != "jwks"}
    world.keysets.add(NS, "second", unclaimed)
    world.keysets.objects[(NS, "second")]["metadata"]["creationTimestamp"] = "2026-01-02T00:00:00Z"
    for name in ("first", "second", "first", "second"):
        world.run(name)
    assert world.condition("second", "Ready")["status"] == "True"
    # The second keyset claims the issuer too.
    world.keysets.objects[(NS, "second")]["spec"]["jwks"] = {"issuer": ISSUER}
    claimed(index, "second", "2026-01-02T00:00:00Z")
    world.run("second")
    assert world.condition("first", "Ready")["status"] == "True"
    stalled = world.condition("second", "Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == "IssuerConflict"
    assert f"already claimed by JwtKeySet {NS}/first" in stalled["message"]
    assert world.annotations("first")["keyturn.dev/issuer"] == ISSUER
    assert "keyturn.dev/issuer" not in world.annotations("second")
    # Revocations still run (scope rotations): the current key of the second keyset is revoked.
    current = world.keysets.status(NS, "second")["currentKid"]
    world.keysets.objects[(NS, "second")]["spec"]["revokedKids"] = [{"kid": current}]
    world.run("second")
    assert world.keysets.status(NS, "second")["currentKid"] != current
    # The first lets the issuer go: the second gets it.
    index.forget(NS, "first")
    world.run("second")
    assert world.condition("second", "Stalled")["status"] == "False"
    assert world.annotations("second")["keyturn.dev/issuer"] == ISSUER


SPELLINGS = {
    "the same URL": ("https://auth.example.com", "https://auth.example.com", True),
    "the host's case": ("https://auth.example.com", "https://AUTH.example.com", True),
    "a final slash": ("https://auth.example.com/t", "https://auth.example.com/t/", True),
    "another path": ("https://auth.example.com/a", "https://auth.example.com/b", False),
    "another port": ("https://auth.example.com", "https://auth.example.com:8443", False),
}


@pytest.mark.parametrize(("one", "other", "conflict"), SPELLINGS.values(), ids=SPELLINGS.keys())
def test_one_issuer_whatever_its_spelling(one: str, other: str, conflict: bool) -> None:
    index = IssuerIndex()
    index.update(NS, "a", one, "2026-01-01T00:00:00Z")
    assert (index.rival(other, NS, "b", "2026-01-02T00:00:00Z") == f"{NS}/a") is conflict


def test_the_older_claim_wins_then_the_name() -> None:
    index = IssuerIndex()
    assert index.update("x", "b", ISSUER, "2026-01-01T00:00:00Z") == set()
    assert index.update("x", "a", ISSUER, "2026-01-01T00:00:00Z") == {("x", "b")}  # b is told
    assert index.rival(ISSUER, "x", "b", "2026-01-01T00:00:00Z") == "x/a"  # same second: the name
    assert index.rival(ISSUER, "x", "a", "2026-01-01T00:00:00Z") is None
    assert index.update("w", "old", ISSUER, "2025-01-01T00:00:00Z") == {("x", "a"), ("x", "b")}
    assert index.rival(ISSUER, "x", "a", "2026-01-01T00:00:00Z") == "w/old"
    assert index.forget("w", "old") == {("x", "a"), ("x", "b")}
    # A keyset not indexed yet (its event not seen) is judged by the timestamp it gives.
    assert index.rival(ISSUER, "y", "new", "2027-01-01T00:00:00Z") == "x/a"


ISSUERS_OF = {
    "a valid issuer": ({"jwks": {"issuer": ISSUER}}, ISSUER),
    "none": ({}, None),
    "an invalid one claims nothing": ({"jwks": {"issuer": "http://x"}}, None),
    "an HMAC keyset claims nothing": ({"algorithm": "HS256", "jwks": {"issuer": ISSUER}}, None),
    "not a mapping": (["jwks"], None),
    "not a string": ({"jwks": {"issuer": 3}}, None),
}


@pytest.mark.parametrize(("spec", "expected"), ISSUERS_OF.values(), ids=ISSUERS_OF.keys())
def test_issuer_of_a_raw_spec(spec: object, expected: str | None) -> None:
    assert issuer_of(spec) == expected
