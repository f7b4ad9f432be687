"""Revocations: declarative (spec.revokedKids) and emergencies (status.emergency).

These are the emergency path: the only rules that run while the keyset is Stalled.
"""

from __future__ import annotations

from keyturn.domain.lifecycle.state import PassState
from keyturn.domain.model import (
    MATERIAL_STATES,
    AckResult,
    HistoryResult,
    KeyState,
    Operation,
    Trigger,
)
from keyturn.domain.propagation import accepted
from keyturn.domain.reasons import Reason


class Revocations(PassState):
    """Revoke named kids and promote the prepared key; answer emergency requests."""

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
        if signing is not None and self.spec.propagation is not None:
            # Never waited for: the share is what was known when the key was promoted.
            if signing.activation is Operation.GENERATE:
                message += f"; {signing.kid} is a fresh key: no consumer had it before"
            else:
                share = self.observed.propagation.get(signing.kid)
                message += f"; {accepted(signing.kid, share, 'already accepted')}"
        self._ack(request, AckResult.REVOKED, new_kid, message)
        self._notice(
            Reason.EMERGENCY_HANDLED,
            f"emergency {request.request_id}: {message}",
            [*kids, *([new_kid] if new_kid else [])],
            warning=True,
        )
