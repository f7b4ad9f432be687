"""The state of one planning pass, and the primitives every rule changes it with.

Every state change of a key goes through `_move` (checked against model.TRANSITIONS, recorded in
`moves`), every new key through `_take_fresh`, every deletion from the record through `_remove`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from keyturn.domain.inputs import Observations
from keyturn.domain.model import (
    AckResult,
    EmergencyAck,
    FreshKey,
    HistoryEntry,
    HistoryResult,
    Key,
    KeyState,
    Operation,
    Ring,
    Trigger,
    check_transition,
    transition,
)
from keyturn.domain.plan import Move, Notice, PlanMode
from keyturn.domain.reasons import Reason, Violation
from keyturn.domain.requests import Emergency, Requests
from keyturn.domain.spec import Spec


@dataclass
class PassState:
    """What one pass reads (the arguments of `plan`) and builds up (everything after `generate`)."""

    spec: Spec
    ring: Ring
    now: datetime
    requests: Requests
    observed: Observations
    fresh: Sequence[FreshKey]
    mode: PlanMode = PlanMode.FULL
    generate: bool = True
    keys: list[Key] = field(default_factory=list)
    history: list[HistoryEntry] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    revoked_kids: list[str] = field(default_factory=list)
    acks: list[EmergencyAck] = field(default_factory=list)
    handled_rotate: str | None = None
    handled_rollback: str | None = None
    fresh_used: int = 0
    fresh_missing: int = 0
    serial: int = 0
    wakes: list[datetime] = field(default_factory=list)
    next_rotation_at: datetime | None = None
    waiting: Reason | None = None
    waiting_message: str = ""
    degraded: list[Violation] = field(default_factory=list)
    paused: Reason | None = None
    paused_message: str = ""
    last_trigger: Trigger = Trigger.SCHEDULED
    revoked_current: bool = False
    # Keys made current in this pass: the observations were taken before they signed.
    activated_here: set[str] = field(default_factory=set)
    moves: list[Move] = field(default_factory=list)

    def _find(self, state: KeyState) -> Key | None:
        return next((k for k in self.keys if k.state is state), None)

    def _replace(self, old: Key, new: Key) -> Key:
        self.keys[self.keys.index(old)] = new
        return new

    def _record(
        self, operation: Operation, kids: Sequence[str], trigger: Trigger, reason: str, result: HistoryResult
    ) -> None:
        self.history.append(HistoryEntry(self.now, operation, tuple(kids), trigger, reason, result))

    def _notice(self, reason: Reason, message: str, kids: Sequence[str], *, warning: bool = False) -> None:
        self.notices.append(Notice(reason, message, warning, tuple(kids)))

    def _move(self, key: Key, state: KeyState, **changes: Any) -> Key:
        """Every state change of a pass goes through here: checked against TRANSITIONS, recorded."""
        moved = self._replace(key, transition(key, state, **changes))
        self.moves.append(Move(key.kid, key.state, state))
        return moved

    def _remove(self, key: Key) -> None:
        check_transition(key.kid, key.state, None)
        self.keys.remove(key)
        self.moves.append(Move(key.kid, key.state, None))

    def _take_fresh(self, state: KeyState, trigger: Trigger) -> Key:
        """Place the next fresh key; without one, count it so the executor generates enough."""
        check_transition("(fresh)", None, state)
        if self.fresh_used < len(self.fresh):
            made = self.fresh[self.fresh_used]
            self.fresh_used += 1
        else:
            # Plan on with a stand-in so the count covers keys that depend on this one.
            self.fresh_missing += 1
            made = FreshKey(f"pending-{self.fresh_missing}", self.spec.algorithm, 0, None, "")
        self.serial = max(self.serial, made.serial)
        active = state is KeyState.CURRENT
        key = Key(
            kid=made.kid,
            state=state,
            algorithm=made.algorithm,
            serial=made.serial,
            created_at=self.now,
            published_at=self.now,
            activated_at=self.now if active else None,
            activation=Operation.GENERATE if active else None,
            activated_by=trigger if active else None,
            signers_ready_at=self._wave_over_at() if active else None,
            public_jwk=made.public_jwk,
            fingerprint=made.fingerprint,
        )
        self.keys.append(key)
        self.moves.append(Move(key.kid, None, state))
        self._record(Operation.GENERATE, [key.kid], trigger, f"published as {state}", HistoryResult.SUCCEEDED)
        self.last_trigger = trigger
        if active:
            self.activated_here.add(key.kid)
        return key

    def _demote(self, key: Key, state: KeyState, reason: str | None = None) -> Key:
        rotation = self.spec.rotation
        return self._move(
            key,
            state,
            demoted_at=self.now,
            remove_from_jwks_at=self.now + rotation.grace_period,
            purge_at=self.now + rotation.retention,
            reason=reason or key.reason,
        )

    def _wave_over_at(self) -> datetime | None:
        """No target signs: nothing restarts, so the signer wave ends as the key activates."""
        return None if self.observed.signer_targets else self.now

    def _activate(self, key: Key, operation: Operation, trigger: Trigger) -> Key:
        self.last_trigger = trigger
        self.activated_here.add(key.kid)
        return self._move(
            key,
            KeyState.CURRENT,
            activated_at=self.now,
            activation=operation,
            activated_by=trigger,
            demoted_at=None,
            remove_from_jwks_at=None,
            purge_at=None,
            signers_ready_at=self._wave_over_at(),
            analysis_result=None,
        )

    def _replace_current(self, trigger: Trigger, *, fresh_only: bool = False) -> Key | None:
        """After the current key is revoked: the prepared key signs at once, or a fresh one.

        None when neither is possible (no usable prepared key, and no key can be generated now):
        revoking the compromised key matters more than having a key that signs.
        """
        current = self._find(KeyState.CURRENT)
        if current is not None:
            return current
        self.revoked_current = True
        nxt = None if fresh_only else self._find(KeyState.NEXT)
        if nxt is not None and nxt.kid not in self.observed.unusable:
            # A pending keyturn.dev/rotate asked for exactly this: the prepared key signs. It is
            # answered, or the key prepared next would rotate in too (two rotations for one ask).
            if self.requests.rotate and self.requests.rotate != self.handled_rotate:
                self.handled_rotate = self.requests.rotate
            promoted = self._activate(nxt, Operation.REVOKE, trigger)
            self._record(
                Operation.ROTATE,
                [promoted.kid],
                trigger,
                "promoted after revocation",
                HistoryResult.SUCCEEDED,
            )
            return promoted
        if not self.generate:
            self._notice(
                Reason.NO_SIGNING_KEY,
                "no key signs: no prepared key could be promoted and no key can be generated until the "
                "Stalled condition is resolved",
                [],
                warning=True,
            )
            return None
        return self._take_fresh(KeyState.CURRENT, trigger)

    def _ack(self, request: Emergency, result: AckResult, new_kid: str | None, message: str) -> None:
        self.acks.append(EmergencyAck(request.request_id, self.now, result, new_kid, message, request.digest))

    def _analysing(self, key: Key) -> bool:
        return self.spec.analysis is not None and key.awaits_analysis
