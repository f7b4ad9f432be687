"""The lifecycle planner: plan(spec, ring, now, ...) -> Plan, with no I/O and no clock of its own.

Every decision about a key (publish, activate, demote, retire, purge, revoke, roll back) is made
here, from the Secret's record and the time passed in, so the rules can be tested with explicit
clocks and replayed after a crash. Every state change goes through `model.transition`, which
refuses any move that is not in `model.TRANSITIONS`:

           publish          activate            rotate             grace over         retention over
  (none) ──────────▶ next ──────────▶ current ──────────▶ previous ──────────▶ retired ──────────▶ (none)
    │                 │               ▲  │  ▲   rollback     │                   ▲
    │ first key, or   │               │  │  └────────────────┘                   │ grace over
    └─ fresh after ───┼───────────────┘  └──── rollback ───▶ failed ─────────────┘
       a revocation   │                  │                     │
                      └─ revoke ─────────┴─ revoke ────────────┴─ revoke (also retired) ─▶ revoked ─▶ (none)

A revoked key leaves the JWKS and the Secret at once, and its kid is never used again.

A pass runs the rules in this order: declarative revocations, the emergency request, the first
key, the analysis verdict, a failed signer wave, a manual rollback, the next key, a due rotation,
expiry, and the schedule. In `PlanMode.EMERGENCY` (the keyset is Stalled) only the first two run:
revoking a kid and promoting the prepared key need nothing but the record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from keyturn.domain.inputs import Observations
from keyturn.domain.model import (
    EMERGENCY_MEMORY,
    HISTORY_LIMIT,
    MATERIAL_STATES,
    AckResult,
    AnalysisResult,
    EmergencyAck,
    FreshKey,
    Handled,
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
from keyturn.domain.reasons import Reason
from keyturn.domain.requests import Emergency, Requests
from keyturn.domain.schedule import align_to_window, due_after, in_window
from keyturn.domain.spec import OnFailure, Spec

__all__ = ["Emergency", "Move", "Notice", "Observations", "Plan", "PlanMode", "Requests", "plan"]


class PlanMode(StrEnum):
    """FULL: every rule. EMERGENCY: the keyset is Stalled; only revocations and emergencies run."""

    FULL = "full"
    EMERGENCY = "emergency"


@dataclass(frozen=True)
class Notice:
    """An Event to post; `kids` are for the log line, never key material."""

    reason: Reason
    message: str
    warning: bool = False
    kids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Move:
    """One state change of a key in a pass (None: not in the record before / after)."""

    kid: str
    old: KeyState | None
    new: KeyState | None


@dataclass(frozen=True)
class Plan:
    ring: Ring
    # When > 0, the planner needs that many fresh keys: generate them and plan again.
    needs_fresh: int = 0
    notices: tuple[Notice, ...] = ()
    wake_at: datetime | None = None
    next_rotation_at: datetime | None = None
    # Why a due rotation has not happened yet (for the phase and the Reconciling condition).
    waiting: Reason | None = None
    # The current key's analysis wants a person: Pause or Inconclusive.
    paused: Reason | None = None
    paused_message: str = ""
    # Plan again at once: after a revocation the next key is prepared in a second pass, so that
    # generating it (up to a second for RSA-4096) never delays the revocation itself.
    requeue: bool = False
    # Every state change of the pass, in order; each one is in model.TRANSITIONS.
    moves: tuple[Move, ...] = ()


NO_REQUESTS = Requests()
ALL_READY = Observations()


def plan(
    spec: Spec,
    ring: Ring,
    now: datetime,
    requests: Requests = NO_REQUESTS,
    observed: Observations = ALL_READY,
    fresh: Sequence[FreshKey] = (),
    *,
    mode: PlanMode = PlanMode.FULL,
    generate: bool = True,
) -> Plan:
    """Decide the next state of the keyset. Deterministic in its arguments.

    `generate=False`: no fresh key can be made now (no usable spec or passphrase); a revocation
    then promotes the prepared key if it can, and otherwise leaves no key signing.
    """
    return _Planner(spec, ring, now, requests, observed, fresh, mode, generate).run()


@dataclass
class _Planner:
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
    paused: Reason | None = None
    paused_message: str = ""
    last_trigger: Trigger = Trigger.SCHEDULED
    revoked_current: bool = False
    # Keys made current in this pass: the observations were taken before they signed.
    activated_here: set[str] = field(default_factory=set)
    moves: list[Move] = field(default_factory=list)

    def run(self) -> Plan:
        self.keys = list(self.ring.keys)
        self.history = list(self.ring.history)
        self.revoked_kids = list(self.ring.revoked_kids)
        self.acks = list(self.ring.handled.emergencies)
        self.handled_rotate = self.ring.handled.rotate
        self.handled_rollback = self.ring.handled.rollback
        self.serial = self.ring.serial

        self._declarative_revocations()
        self._emergency()
        if self.mode is PlanMode.FULL:
            self._initial()
            self._analysis()
            self._rollout_failure()
            self._manual_rollback()
            self._ensure_next()
            self._rotation()
            self._ensure_next()
            self._expire()
            self._schedule()

        if self.fresh_missing:
            return Plan(ring=self.ring, needs_fresh=self.fresh_used + self.fresh_missing)
        new_ring = Ring(
            keys=tuple(sorted(self.keys, key=lambda k: (k.serial, k.created_at), reverse=True)),
            serial=self.serial,
            revoked_kids=tuple(self.revoked_kids),
            handled=Handled(
                rotate=self.handled_rotate,
                rollback=self.handled_rollback,
                emergencies=tuple(self.acks[-EMERGENCY_MEMORY:]),
            ),
            history=tuple(self.history[-HISTORY_LIMIT:]),
        )
        future = [w for w in self.wakes if w > self.now]
        return Plan(
            ring=new_ring,
            notices=tuple(self.notices),
            wake_at=min(future, default=None),
            next_rotation_at=self.next_rotation_at,
            waiting=self.waiting,
            paused=self.paused,
            paused_message=self.paused_message,
            requeue=self.revoked_current,
            moves=tuple(self.moves),
        )

    # ----------------------------------------------------------------------------- helpers
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

    # ----------------------------------------------------------------------------- revocation
    def _revoke(self, kid: str, reason: str, trigger: Trigger) -> bool:
        key = next((k for k in self.keys if k.kid == kid), None)
        if key is None or key.state is KeyState.REVOKED:
            return False
        self._move(
            key,
            KeyState.REVOKED,
            revoked_at=self.now,
            reason=reason,
            remove_from_jwks_at=self.now,
            purge_at=self.now,
        )
        if kid not in self.revoked_kids:
            self.revoked_kids.append(kid)
        self._record(Operation.REVOKE, [kid], trigger, reason, HistoryResult.REVOKED)
        self._notice(Reason.KEY_REVOKED, f"key {kid} revoked ({trigger}): {reason}", [kid], warning=True)
        return True

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

    def _declarative_revocations(self) -> None:
        if not self.ring.keys:
            # Starting over (a new keyset, or its Secret lost): kids listed from an earlier life are
            # remembered as revoked, so none is ever generated again and they stay known.
            for revocation in self.spec.revoked:
                if revocation.kid not in self.revoked_kids:
                    self.revoked_kids.append(revocation.kid)
        revoked_any = False
        for revocation in self.spec.revoked:
            revoked_any |= self._revoke(revocation.kid, revocation.reason, Trigger.DECLARATIVE)
        if revoked_any:
            self._replace_current(Trigger.DECLARATIVE)

    def _emergency(self) -> None:
        request = self.requests.emergency
        if request is None or self.ring.handled.emergency(request.request_id) is not None:
            return
        if request.problem is not None:
            message = f"the request cannot be read: {request.problem}"
            self._ack(request, AckResult.REJECTED, None, message)
            self._notice(
                Reason.EMERGENCY_REJECTED, f"emergency {request.request_id}: {message}", [], warning=True
            )
            return
        live = [k for k in self.keys if k.state in MATERIAL_STATES]
        current = self._find(KeyState.CURRENT)
        if request.revoke_all:
            kids = [k.kid for k in live]
        elif request.revoke_kids:
            kids = list(request.revoke_kids)
        else:
            kids = [current.kid] if current else []
        unknown = [kid for kid in kids if kid not in {k.kid for k in self.keys} | set(self.revoked_kids)]
        if unknown or not {k.kid for k in live} & set(kids):
            if unknown:
                message = f"unknown kid(s): {', '.join(unknown)}"
            elif kids:
                message = f"already revoked: {', '.join(kids)}; nothing changed"
            else:
                message = "there is no key to revoke"
            self._ack(request, AckResult.REJECTED, None, message)
            self._notice(
                Reason.EMERGENCY_REJECTED, f"emergency {request.request_id}: {message}", unknown, warning=True
            )
            return
        for kid in kids:
            self._revoke(kid, request.reason, Trigger.EMERGENCY)
        signing = self._replace_current(Trigger.EMERGENCY, fresh_only=request.revoke_all)
        new_kid = signing.kid if signing is not None else None
        signs = f"{new_kid} signs now" if new_kid else "no key signs until the keyset is no longer Stalled"
        message = f"revoked {', '.join(kids)}; {signs}"
        self._ack(request, AckResult.REVOKED, new_kid, message)
        self._notice(
            Reason.EMERGENCY_HANDLED,
            f"emergency {request.request_id}: {message}",
            [*kids, *([new_kid] if new_kid else [])],
            warning=True,
        )

    def _ack(self, request: Emergency, result: AckResult, new_kid: str | None, message: str) -> None:
        self.acks.append(EmergencyAck(request.request_id, self.now, result, new_kid, message))

    # ----------------------------------------------------------------------------- creation
    def _initial(self) -> None:
        if any(k.state is KeyState.CURRENT for k in self.keys):
            return
        if any(k.state is not KeyState.REVOKED for k in self.keys):
            self._replace_current(Trigger.INITIAL)
            return
        key = self._take_fresh(KeyState.CURRENT, Trigger.INITIAL)
        self._notice(Reason.INITIALIZED, f"generated the first signing key {key.kid}", [key.kid])

    def _ensure_next(self) -> None:
        if self._find(KeyState.CURRENT) is None or self._find(KeyState.NEXT) is not None:
            return
        if self.revoked_current:
            return  # the revocation is written first; the next pass prepares the next key
        key = self._take_fresh(KeyState.NEXT, self.last_trigger)
        self._notice(Reason.KEY_PUBLISHED, f"published the next key {key.kid}", [key.kid])

    # ----------------------------------------------------------------------------- rollback
    def _rollback(self, trigger: Trigger, reason: str) -> None:
        current = self._find(KeyState.CURRENT)
        demoted = [k for k in self.keys if k.state is KeyState.PREVIOUS]
        target = max(demoted, key=lambda k: (k.demoted_at or k.created_at, k.serial), default=None)
        if current is None or target is None:
            message = (
                "no previous key is left to roll back to (revoked, retired and failed keys never sign again)"
            )
            self._record(
                Operation.ROLLBACK, [current.kid] if current else [], trigger, reason, HistoryResult.REJECTED
            )
            self._notice(Reason.ROLLBACK_IMPOSSIBLE, message, [], warning=True)
            return
        self._demote(current, KeyState.FAILED, reason)
        restored = self._activate(target, Operation.ROLLBACK, trigger)
        self._record(
            Operation.ROLLBACK, [restored.kid, current.kid], trigger, reason, HistoryResult.ROLLED_BACK
        )
        self._notice(
            Reason.ROLLED_BACK,
            f"rolled back ({trigger}: {reason}): {restored.kid} signs again, {current.kid} is failed",
            [restored.kid, current.kid],
            warning=True,
        )

    def _manual_rollback(self) -> None:
        token = self.requests.rollback
        if token is None or token == self.handled_rollback:
            return
        self.handled_rollback = token
        self._rollback(Trigger.MANUAL, "requested with keyturn.dev/rollback")

    def _rollout_failure(self) -> None:
        """Only the signer wave of a rotation can be undone, and only onto a key still `previous`."""
        failure = self.observed.signer_failure
        current = self._find(KeyState.CURRENT)
        if failure is None or current is None:
            return
        undoable = (
            current.activation is Operation.ROTATE
            and current.signers_ready_at is None
            and current.analysis_result is None
        )
        has_previous = any(k.state is KeyState.PREVIOUS for k in self.keys)
        rollback = self.spec.rollout.on_failure is OnFailure.ROLLBACK
        if rollback and undoable and has_previous:
            self._rollback(Trigger.ROLLOUT, failure)
        elif rollback and undoable:
            self.paused = Reason.ROLLBACK_IMPOSSIBLE
            self.paused_message = f"{failure}; no previous key is left to roll back to"
        else:
            self.paused, self.paused_message = Reason.ROLLOUT_PAUSED, failure

    # ----------------------------------------------------------------------------- analysis
    def _analysis(self) -> None:
        analysis = self.spec.analysis
        current = self._find(KeyState.CURRENT)
        if current is None:
            return
        result = current.analysis_result
        if result in (AnalysisResult.INCONCLUSIVE, AnalysisResult.FAILED):
            self.paused = (
                Reason.ANALYSIS_INCONCLUSIVE
                if result is AnalysisResult.INCONCLUSIVE
                else Reason.ANALYSIS_FAILED
            )
            self.paused_message = (
                f"analysis of {current.kid} was {result}; rotate or roll back with "
                "keyturn.dev/rotate or keyturn.dev/rollback once you have looked"
            )
            return
        if current.signers_ready_at is None:
            # The signer wave of this activation is over: from now on a failing target no longer
            # undoes the key, and the analysis (if any) measures from here.
            ready = self.observed.signers_ready and self.observed.signer_failure is None
            if ready and current.kid not in self.activated_here:
                self._replace(current, current.evolve(signers_ready_at=self.now))
            return
        if analysis is None or not self._analysing(current):
            return
        verdict = self.observed.analysis
        if verdict is None:
            return
        current = self._replace(current, current.evolve(analysis_result=verdict))
        message = self.observed.analysis_message or f"analysis of {current.kid}: {verdict}"
        self._record(
            Operation.ANALYSIS, [current.kid], Trigger.ANALYSIS, message, HistoryResult(verdict.value)
        )
        if verdict is AnalysisResult.PASSED:
            self._notice(Reason.ANALYSIS_PASSED, message, [current.kid])
        elif verdict is AnalysisResult.FAILED and analysis.on_failure is OnFailure.ROLLBACK:
            self._notice(Reason.ANALYSIS_FAILED, message, [current.kid], warning=True)
            self._rollback(Trigger.ANALYSIS, message)
        else:
            reason = (
                Reason.ANALYSIS_FAILED if verdict is AnalysisResult.FAILED else Reason.ANALYSIS_INCONCLUSIVE
            )
            self._notice(reason, message, [current.kid], warning=True)
            self.paused, self.paused_message = reason, message

    # ----------------------------------------------------------------------------- rotation
    def _pending_token(self) -> str | None:
        token = self.requests.rotate
        return token if token and token != self.handled_rotate else None

    def _analysing(self, key: Key) -> bool:
        return self.spec.analysis is not None and key.awaits_analysis

    def _due(self, current: Key, nxt: Key) -> tuple[datetime | None, bool]:
        """When `nxt` may activate, and whether now is inside the window that allows it."""
        rotation = self.spec.rotation
        ready_at = (nxt.published_at or nxt.created_at) + rotation.publish_ahead
        if self._pending_token() is not None:
            return ready_at, True  # a person asked: no schedule, no window, but publishAhead holds
        if self.spec.suspend or self.paused is not None or self._analysing(current):
            return None, False
        due = due_after(rotation, current.activated_at or current.created_at)
        scheduled = align_to_window(rotation, max(due, ready_at))
        allowed_now = in_window(rotation.window, self.now.astimezone(rotation.time_zone))
        if scheduled <= self.now and not allowed_now:
            return align_to_window(rotation, self.now), False
        return scheduled, allowed_now

    def _rotation(self) -> None:
        current, nxt = self._find(KeyState.CURRENT), self._find(KeyState.NEXT)
        if current is None or nxt is None:
            return
        at, allowed_now = self._due(current, nxt)
        if at is None or at > self.now or not allowed_now:
            return
        if not self.observed.verifiers_ready:
            self.waiting = Reason.AWAITING_VERIFIERS
            return
        token = self._pending_token()
        trigger = Trigger.MANUAL if token is not None else Trigger.SCHEDULED
        if token is not None:
            self.handled_rotate = token
        self._demote(current, KeyState.PREVIOUS)
        activated = self._activate(nxt, Operation.ROTATE, trigger)
        self._record(
            Operation.ROTATE, [activated.kid, current.kid], trigger, "rotation", HistoryResult.SUCCEEDED
        )
        self._notice(
            Reason.ROTATED,
            f"{activated.kid} signs now ({trigger}); {current.kid} is previous",
            [activated.kid, current.kid],
        )

    def _schedule(self) -> None:
        """The next activation of the final state, for status.nextRotationAt and the wake-up."""
        current, nxt = self._find(KeyState.CURRENT), self._find(KeyState.NEXT)
        if current is None or nxt is None:
            return
        at, _ = self._due(current, nxt)
        self.next_rotation_at = at
        if at is not None and at > self.now:
            self.wakes.append(at)
            if self._pending_token() is not None:
                self.waiting = Reason.AWAITING_PUBLISH_AHEAD

    # ----------------------------------------------------------------------------- expiry
    def _expire(self) -> None:
        retention = self.spec.rotation.retention
        for original in list(self.keys):
            key = original
            leave_at = key.remove_from_jwks_at
            if key.state in (KeyState.PREVIOUS, KeyState.FAILED) and leave_at is not None:
                if leave_at <= self.now:
                    key = self._move(key, KeyState.RETIRED)
                    self._record(
                        Operation.RETIRE,
                        [key.kid],
                        Trigger.EXPIRY,
                        "grace period over",
                        HistoryResult.SUCCEEDED,
                    )
                    self._notice(Reason.KEY_RETIRED, f"{key.kid} left the JWKS: grace period over", [key.kid])
                else:
                    self.wakes.append(leave_at)
            if key.state is KeyState.RETIRED and key.purge_at:
                if key.purge_at <= self.now:
                    self._remove(key)
                    self._record(
                        Operation.PURGE, [key.kid], Trigger.EXPIRY, "retention over", HistoryResult.SUCCEEDED
                    )
                    self._notice(
                        Reason.KEY_PURGED, f"{key.kid} private key deleted: retention over", [key.kid]
                    )
                else:
                    self.wakes.append(key.purge_at)
            if key.state is KeyState.REVOKED and key.revoked_at:
                forget_at = key.revoked_at + retention
                if forget_at <= self.now:
                    self._remove(key)
                else:
                    self.wakes.append(forget_at)
