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
from datetime import datetime

from keyturn.domain.inputs import Observations
from keyturn.domain.lifecycle.revocation import Revocations
from keyturn.domain.lifecycle.rollback import Rollbacks
from keyturn.domain.lifecycle.rotation import Rotations
from keyturn.domain.model import EMERGENCY_MEMORY, HISTORY_LIMIT, FreshKey, Handled, Ring
from keyturn.domain.plan import Move, Notice, Plan, PlanMode
from keyturn.domain.requests import Emergency, Requests
from keyturn.domain.spec import Spec

__all__ = ["Emergency", "Move", "Notice", "Observations", "Plan", "PlanMode", "Requests", "plan"]

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


class _Planner(Revocations, Rollbacks, Rotations):
    """One pass: the rules in their order (see the module docstring)."""

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
            waiting_message=self.waiting_message,
            paused=self.paused,
            paused_message=self.paused_message,
            requeue=self.revoked_current,
            moves=tuple(self.moves),
            degraded=tuple(self.degraded),
        )
