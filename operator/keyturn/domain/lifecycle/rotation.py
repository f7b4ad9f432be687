"""Creation, rotation, expiry and the schedule: the rules of a keyset that is not Stalled."""

from __future__ import annotations

from datetime import datetime

from keyturn.domain.durations import format_duration
from keyturn.domain.lifecycle.state import PassState
from keyturn.domain.model import (
    HistoryResult,
    Key,
    KeyState,
    Operation,
    Trigger,
)
from keyturn.domain.propagation import MIN_RECHECK, accepted, percent, reached, waiting_message
from keyturn.domain.reasons import Reason, Violation
from keyturn.domain.record import timestamp
from keyturn.domain.schedule import activation_time, later


class Rotations(PassState):
    """Make the first key, keep a prepared key, activate it when due, expire old keys."""

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

    def _pending_token(self) -> str | None:
        token = self.requests.rotate
        return token if token and token != self.handled_rotate else None

    def _due(self, current: Key, nxt: Key) -> tuple[datetime | None, bool]:
        """When `nxt` may activate, and whether now is inside the window that allows it."""
        held = self.spec.suspend or self.paused is not None or self._analysing(current)
        return activation_time(
            self.spec.rotation,
            current,
            nxt,
            self.now,
            manual=self._pending_token() is not None,
            held=held,
        )

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
        if not self._propagated(nxt):
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

    def _propagated(self, nxt: Key) -> bool:
        """The propagation gate: True when it is off or the next kid's share reached its threshold.

        Otherwise the activation waits (AwaitingPropagation, with the share), the gate asks again
        one interval after its last answer, and once `timeout` has passed since it first held this
        key, a Warning is posted once; the key never activates early. No data never passes.
        """
        gate = self.spec.propagation
        if gate is None:
            return True
        share = self.observed.propagation.get(nxt.kid)
        if reached(share, gate.threshold):
            return True
        if nxt.propagation_held_at is None:
            nxt = self._replace(nxt, nxt.evolve(propagation_held_at=self.now))
        held_at = nxt.propagation_held_at or self.now
        self.waiting = Reason.AWAITING_PROPAGATION
        self.waiting_message = waiting_message(nxt.kid, share, gate)
        asked = share.at if share is not None else self.now
        self.wakes.append(max(later(asked, gate.interval), later(self.now, MIN_RECHECK)))
        deadline = later(held_at, gate.timeout)
        if deadline > self.now:
            self.wakes.append(deadline)
            return False
        message = (
            f"{nxt.kid} is not accepted by enough consumers after spec.propagation.timeout "
            f"({format_duration(gate.timeout)}, held since {timestamp(held_at)}): "
            f"{accepted(nxt.kid, share)}, {percent(gate.threshold)} needed; it keeps waiting and "
            "never signs early. Find the consumers without it (jwt_keys_loaded) or fix the query"
        )
        self.degraded.append(Violation.of(Reason.PROPAGATION_TIMEOUT, message))
        if nxt.propagation_warned_at is None:
            self._replace(nxt, nxt.evolve(propagation_warned_at=self.now))
            self._notice(Reason.PROPAGATION_TIMEOUT, message, [nxt.kid], warning=True)
        return False

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
