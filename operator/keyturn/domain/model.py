"""The vocabulary of the key lifecycle: keys, their states, the legal moves between them, and the
record the Secret carries."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, Protocol, TypeVar


class KeyState(StrEnum):
    NEXT = "next"
    CURRENT = "current"
    PREVIOUS = "previous"
    FAILED = "failed"
    RETIRED = "retired"
    REVOKED = "revoked"


# Every change of a key's state the lifecycle allows; None is "no key" (before creation, after
# deletion from the record). `transition` refuses anything else, so a planner bug cannot, say, make
# a revoked or failed key sign again (invariant 5).
TRANSITIONS: Final[frozenset[tuple[KeyState | None, KeyState | None]]] = frozenset(
    {
        (None, KeyState.NEXT),  # publish: prepared ahead of its activation
        (None, KeyState.CURRENT),  # the first key, or a fresh one when no prepared key can sign
        (KeyState.NEXT, KeyState.CURRENT),  # activate: scheduled, manual, or promoted by a revocation
        (KeyState.CURRENT, KeyState.PREVIOUS),  # rotate: demoted, still verifies for the grace period
        (KeyState.CURRENT, KeyState.FAILED),  # rolled back: verifies for the grace, never signs again
        (KeyState.PREVIOUS, KeyState.CURRENT),  # roll back onto the key it replaced
        (KeyState.PREVIOUS, KeyState.RETIRED),  # grace over: out of the JWKS, material kept
        (KeyState.FAILED, KeyState.RETIRED),
        (KeyState.NEXT, KeyState.REVOKED),  # revoke: out of the JWKS and the Secret at once
        (KeyState.CURRENT, KeyState.REVOKED),
        (KeyState.PREVIOUS, KeyState.REVOKED),
        (KeyState.FAILED, KeyState.REVOKED),
        (KeyState.RETIRED, KeyState.REVOKED),
        (KeyState.RETIRED, None),  # purged: retention over
        (KeyState.REVOKED, None),  # forgotten: retention over (its kid stays in revokedKids)
    }
)


class IllegalTransition(RuntimeError):
    """A state change outside TRANSITIONS was attempted: a bug, never a user error."""


# States whose public key is in the JWKS, i.e. that verifiers must accept.
VERIFYING_STATES = frozenset({KeyState.CURRENT, KeyState.NEXT, KeyState.PREVIOUS, KeyState.FAILED})
# States whose private material is still in the Secret.
MATERIAL_STATES = VERIFYING_STATES | {KeyState.RETIRED}


class Trigger(StrEnum):
    INITIAL = "initial"
    SCHEDULED = "scheduled"
    MANUAL = "manual"
    EMERGENCY = "emergency"
    DECLARATIVE = "declarative"
    ANALYSIS = "analysis"
    ROLLOUT = "rollout"
    EXPIRY = "expiry"


class Operation(StrEnum):
    GENERATE = "generate"
    ROTATE = "rotate"
    ROLLBACK = "rollback"
    REVOKE = "revoke"
    RETIRE = "retire"
    PURGE = "purge"
    ANALYSIS = "analysis"


class AnalysisResult(StrEnum):
    PASSED = "Passed"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"


class HistoryResult(StrEnum):
    """How an operation in status.history ended (analysis entries carry the analysis verdict)."""

    SUCCEEDED = "Succeeded"
    REVOKED = "Revoked"
    REJECTED = "Rejected"
    ROLLED_BACK = "RolledBack"
    PASSED = AnalysisResult.PASSED.value
    FAILED = AnalysisResult.FAILED.value
    INCONCLUSIVE = AnalysisResult.INCONCLUSIVE.value


class AckResult(StrEnum):
    """status.emergency.result: what Keyturn did about an emergency request."""

    REVOKED = "Revoked"
    REJECTED = "Rejected"


@dataclass(frozen=True)
class Key:
    """One signing key's public facts. Private material never lives in this object."""

    kid: str
    state: KeyState
    algorithm: str
    serial: int
    created_at: datetime
    published_at: datetime | None = None
    activated_at: datetime | None = None
    demoted_at: datetime | None = None
    remove_from_jwks_at: datetime | None = None
    purge_at: datetime | None = None
    revoked_at: datetime | None = None
    reason: str | None = None
    # The public JWK (None for HMAC keys); kept here so the JWKS never needs the private key.
    public_jwk: Mapping[str, str] | None = None
    fingerprint: str = ""
    # Analysis bookkeeping for the key while it is current (crash-safe: it lives in the Secret).
    activation: Operation | None = None
    activated_by: Trigger | None = None
    # When every signer target had loaded the key (its signer wave ended); analysis measures from here.
    signers_ready_at: datetime | None = None
    analysis_result: AnalysisResult | None = None
    # The propagation gate, for a prepared key: when it first held the key's activation (its
    # timeout counts from there), and when the PropagationTimeout Warning was posted (only once).
    propagation_held_at: datetime | None = None
    propagation_warned_at: datetime | None = None

    def evolve(self, **changes: Any) -> Key:
        """Change facts of the key; its state changes only through `transition`."""
        if "state" in changes and changes["state"] is not self.state:
            raise IllegalTransition(f"{self.kid}: state changes go through transition()")
        return dataclasses.replace(self, **changes)

    @property
    def verifies(self) -> bool:
        return self.state in VERIFYING_STATES

    @property
    def has_material(self) -> bool:
        return self.state in MATERIAL_STATES

    @property
    def awaits_analysis(self) -> bool:
        """Only a rotation is gated: emergencies and rollbacks must never be undone by a metric."""
        return (
            self.state is KeyState.CURRENT
            and self.activation is Operation.ROTATE
            and self.analysis_result is None
        )


@dataclass(frozen=True)
class FreshKey:
    """A key generated (and self-tested) by the executor, offered to the planner to place."""

    kid: str
    algorithm: str
    serial: int
    public_jwk: Mapping[str, str] | None
    fingerprint: str


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    operation: Operation
    kids: tuple[str, ...]
    trigger: Trigger
    reason: str
    result: HistoryResult


@dataclass(frozen=True)
class EmergencyAck:
    request_id: str
    handled_at: datetime
    result: AckResult
    new_kid: str | None
    message: str
    # A digest of what was asked (reason, kids, revokeAll), so a reused requestId asking for
    # something else is told so instead of being shown this answer ("" in records before it).
    request: str = ""


@dataclass(frozen=True)
class Handled:
    """Tokens and request ids already acted on, so a replay after a crash is a no-op."""

    rotate: str | None = None
    rollback: str | None = None
    emergencies: tuple[EmergencyAck, ...] = ()

    def emergency(self, request_id: str) -> EmergencyAck | None:
        return next((e for e in self.emergencies if e.request_id == request_id), None)


HISTORY_LIMIT = 20
EMERGENCY_MEMORY = 20


@dataclass(frozen=True)
class Ring:
    """Everything Keyturn must remember about a keyset; persisted on the Secret, the source of truth."""

    keys: tuple[Key, ...] = ()
    serial: int = 0
    revoked_kids: tuple[str, ...] = ()
    handled: Handled = field(default_factory=Handled)
    history: tuple[HistoryEntry, ...] = ()

    def evolve(self, **changes: Any) -> Ring:
        return dataclasses.replace(self, **changes)

    def find(self, kid: str) -> Key | None:
        return next((k for k in self.keys if k.kid == kid), None)

    @property
    def current(self) -> Key | None:
        return next((k for k in self.keys if k.state is KeyState.CURRENT), None)

    @property
    def next(self) -> Key | None:
        return next((k for k in self.keys if k.state is KeyState.NEXT), None)

    @property
    def previous(self) -> Key | None:
        """The most recently demoted key verifiers still accept (the Secret's `previous` slot)."""
        demoted = [k for k in self.keys if k.state in (KeyState.PREVIOUS, KeyState.FAILED)]
        return max(demoted, key=_demoted_order, default=None)

    def verifying(self) -> tuple[Key, ...]:
        """Keys in the JWKS, in publication order: current, next, then demoted ones newest first."""
        order = {KeyState.CURRENT: 0, KeyState.NEXT: 1, KeyState.PREVIOUS: 2, KeyState.FAILED: 2}
        demoted_first = sorted((k for k in self.keys if k.verifies), key=_demoted_order, reverse=True)
        return tuple(sorted(demoted_first, key=lambda k: order[k.state]))

    def known(self, kid: str) -> bool:
        return kid in self.revoked_kids or self.find(kid) is not None


def transition(key: Key, state: KeyState, **changes: Any) -> Key:
    """The one way a key changes state: refuses any move that is not in TRANSITIONS."""
    check_transition(key.kid, key.state, state)
    return dataclasses.replace(key, state=state, **changes)


def check_transition(kid: str, old: KeyState | None, new: KeyState | None) -> None:
    if old != new and (old, new) not in TRANSITIONS:
        raise IllegalTransition(
            f"key {kid}: {old or 'none'} -> {new or 'none'} is not a lifecycle transition"
        )


class Demotable(Protocol):
    """What the rollback rule reads of a key: a `Key`, or a key as the CLI reads it from status."""

    @property
    def state(self) -> KeyState: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def demoted_at(self) -> datetime | None: ...
    @property
    def serial(self) -> int: ...


K = TypeVar("K", bound=Demotable)


def rollback_target(keys: Iterable[K]) -> K | None:
    """The key a rollback makes sign again: the most recently demoted key still `previous`.

    Revoked, retired and failed keys never sign again, so None means there is nothing to roll
    back to. The planner acts on it; `kubectl keyturn rollback` checks it before asking.
    """
    return max((k for k in keys if k.state is KeyState.PREVIOUS), key=_demoted_order, default=None)


def _demoted_order(key: Demotable) -> tuple[datetime, int]:
    return (key.demoted_at or key.created_at, key.serial)
