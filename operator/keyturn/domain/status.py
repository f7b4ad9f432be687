"""The status subresource as a pure projection of the ring, the plan and what the executor saw.

Status is never a source of truth: everything here is recomputed from the Secret on every pass, so
a crash between the Secret write and the status write loses nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from keyturn.domain import propagation as propagation_view
from keyturn.domain.model import AckResult, EmergencyAck, Operation, Ring
from keyturn.domain.planner import Plan
from keyturn.domain.reasons import Reason, Violation
from keyturn.domain.record import ack_to_dict, history_to_dict, timestamp
from keyturn.domain.requests import read_emergency
from keyturn.domain.targets import TargetView


class Phase(StrEnum):
    PENDING = "Pending"
    PUBLISHING = "Publishing"
    ROLLING_OUT = "RollingOut"
    ANALYZING = "Analyzing"
    ROLLING_BACK = "RollingBack"
    READY = "Ready"
    PAUSED = "Paused"
    FAILED = "Failed"


class ConditionType(StrEnum):
    """kstatus's three (exactly one is True), plus two that describe the keys and their targets."""

    READY = "Ready"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"
    ROLLED_BACK = "RolledBack"
    DEGRADED = "Degraded"


STATUS_KEY_FIELDS = (
    ("createdAt", "created_at"),
    ("publishedAt", "published_at"),
    ("activatedAt", "activated_at"),
    ("demotedAt", "demoted_at"),
    ("removeFromJwksAt", "remove_from_jwks_at"),
    ("purgeAt", "purge_at"),
    ("revokedAt", "revoked_at"),
)


@dataclass(frozen=True)
class RolloutView:
    revision: str = ""
    targets: tuple[TargetView, ...] = ()
    in_progress: bool = False
    failure: str | None = None


@dataclass(frozen=True)
class Measurement:
    at: datetime
    value: float | None
    result: str


@dataclass(frozen=True)
class AnalysisView:
    phase: str
    success_rate: float | None = None
    measurements: tuple[Measurement, ...] = ()


@dataclass(frozen=True)
class Observed:
    rollout: RolloutView = field(default_factory=RolloutView)
    analysis: AnalysisView | None = None
    # Problems that degrade the keyset (targets, health, Prometheus, a failing pass), in check order.
    degraded: tuple[Violation, ...] = ()
    # An emergency acknowledged without a readable record (then it is Rejected; status is its only trace).
    ack: EmergencyAck | None = None
    # The propagation gate's latest answer about the next kid, while it is asked (status.propagation).
    propagation: propagation_view.View | None = None


def phase_of(ring: Ring, plan: Plan | None, violations: Sequence[Violation], observed: Observed) -> Phase:
    current = ring.current
    if violations:
        return Phase.FAILED
    if current is None or plan is None:
        return Phase.PENDING
    if plan.paused is not None or observed.rollout.failure is not None:
        return Phase.PAUSED
    # `reload: none` targets wait for the same share the gate does: the gate's reason says more.
    if observed.rollout.in_progress and plan.waiting is not Reason.AWAITING_PROPAGATION:
        return Phase.ROLLING_BACK if current.activation is Operation.ROLLBACK else Phase.ROLLING_OUT
    if current.awaits_analysis and observed.analysis is not None:
        return Phase.ANALYZING
    if plan.waiting is not None:
        return Phase.PUBLISHING
    return Phase.READY


def build(
    *,
    generation: int,
    ring: Ring,
    plan: Plan | None,
    violations: Sequence[Violation],
    observed: Observed,
    existing: Mapping[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """The fields Keyturn owns; `existing` only supplies lastTransitionTime and the emergency request."""
    phase = phase_of(ring, plan, violations, observed)
    current, nxt = ring.current, ring.next
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "phase": str(phase),
        "conditions": _conditions(phase, ring, plan, violations, observed, existing, generation, now),
        "currentKid": current.kid if current else None,
        "nextKid": nxt.kid if nxt else None,
        "nextRotationAt": timestamp(plan.next_rotation_at) if plan and plan.next_rotation_at else None,
        "lastRotationAt": _last_rotation(ring),
        "lastHandledRotate": ring.handled.rotate,
        "lastHandledRollback": ring.handled.rollback,
        "keys": [_key_status(k) for k in ring.keys],
        "history": [history_to_dict(h) for h in ring.history],
        "rollout": {
            "revision": observed.rollout.revision,
            "targets": [{k: v for k, v in vars(t).items() if v != ""} for t in observed.rollout.targets],
        },
    }
    status["analysis"] = None  # cleared once no key has an analysis to show
    if observed.analysis is not None:
        view = observed.analysis
        status["analysis"] = {
            "phase": view.phase,
            **({"successRate": _number(view.success_rate)} if view.success_rate is not None else {}),
            "measurements": [
                {
                    "at": timestamp(m.at),
                    "result": m.result,
                    **({"value": _number(m.value)} if m.value is not None else {}),
                }
                for m in view.measurements
            ],
        }
    status["propagation"] = None  # cleared once the next kid is no longer asked about
    if observed.propagation is not None:
        gate = observed.propagation
        status["propagation"] = {
            "kid": gate.kid,
            **({"share": _number(gate.share)} if gate.share is not None else {}),
            "threshold": f"{gate.threshold:g}",
            "result": str(gate.result),
            "message": gate.message,
            **({"heldSince": timestamp(gate.held_since)} if gate.held_since is not None else {}),
        }
    request = read_emergency(existing.get("emergency"))
    if request is not None:
        ack = ring.handled.emergency(request.request_id) or (
            observed.ack if observed.ack and observed.ack.request_id == request.request_id else None
        )
        if ack is not None and ack.request and ack.request != request.digest:
            ack = EmergencyAck(
                request.request_id,
                ack.handled_at,
                AckResult.REJECTED,
                None,
                f"requestId {request.request_id} was already used for another request (handled "
                f"{timestamp(ack.handled_at)}); nothing was done: send this one with a new requestId",
            )
        if ack is not None:
            emergency = existing.get("emergency")
            assert isinstance(emergency, Mapping)  # read_emergency found a request in it
            answered = {**emergency, **ack_to_dict(ack)}
            if ack.new_kid is None and "newKid" in emergency:
                answered["newKid"] = None  # a merge patch clears what an earlier answer left
            status["emergency"] = answered
    return status


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _last_rotation(ring: Ring) -> str | None:
    rotations = [h.at for h in ring.history if h.operation in (Operation.ROTATE, Operation.ROLLBACK)]
    activations = [k.activated_at for k in ring.keys if k.activated_at is not None]
    latest = max([*rotations, *activations], default=None)
    return timestamp(latest) if latest else None


def _key_status(key: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"kid": key.kid, "state": str(key.state), "algorithm": key.algorithm}
    for name, attr in STATUS_KEY_FIELDS:
        value = getattr(key, attr)
        if value is not None:
            out[name] = timestamp(value)
    if key.reason:
        out["reason"] = key.reason
    if key.fingerprint:
        out["fingerprint"] = key.fingerprint  # SHA-256 prefix for audits; never the key itself
    return out


def _conditions(
    phase: Phase,
    ring: Ring,
    plan: Plan | None,
    violations: Sequence[Violation],
    observed: Observed,
    existing: Mapping[str, Any],
    generation: int,
    now: datetime,
) -> list[dict[str, Any]]:
    current = ring.current
    paused = _pause(plan, observed) if phase is Phase.PAUSED else None
    # kstatus: exactly one of Ready / Reconciling / Stalled is True, all three carry the same reason.
    if violations:
        ready, reconciling, stalled = False, False, True
        reason, message = str(violations[0].reason), "; ".join(v.message for v in violations)
    elif paused is not None:
        ready, reconciling, stalled = False, False, True
        reason, message = paused
    elif phase is Phase.READY:
        ready, reconciling, stalled = True, False, False
        reason, message = str(Reason.READY), f"{current.kid} signs" if current else ""
    else:
        ready, reconciling, stalled = False, True, False
        reason, message = _progress(phase, plan, observed)
    wanted: list[tuple[ConditionType, bool, str, str]] = [
        (ConditionType.READY, ready, reason, message),
        (ConditionType.RECONCILING, reconciling, reason, message),
        (ConditionType.STALLED, stalled, reason, message),
    ]
    rolled_back = current is not None and current.activation is Operation.ROLLBACK
    last_rollback = next((h for h in reversed(ring.history) if h.operation is Operation.ROLLBACK), None)
    wanted.append(
        (
            ConditionType.ROLLED_BACK,
            rolled_back,
            str(Reason.ROLLED_BACK) if rolled_back else str(Reason.READY),
            f"rolled back to {current.kid}: {last_rollback.reason}"
            if rolled_back and current and last_rollback
            else "no rollback in effect",
        )
    )
    degraded = (
        (str(observed.degraded[0].reason), "; ".join(v.message for v in observed.degraded))
        if observed.degraded
        else paused
    )
    wanted.append(
        (
            ConditionType.DEGRADED,
            degraded is not None,
            degraded[0] if degraded else str(Reason.READY),
            degraded[1] if degraded else "all keys and targets healthy",
        )
    )
    old = {c.get("type"): c for c in existing.get("conditions") or ()}
    out = []
    for kind, flag, reason, message in wanted:
        value = "True" if flag else "False"
        previous = old.get(kind)
        since = previous.get("lastTransitionTime") if previous and previous.get("status") == value else None
        out.append(
            {
                "type": str(kind),
                "status": value,
                "reason": reason,
                "message": message,
                "lastTransitionTime": since or timestamp(now),
                "observedGeneration": generation,
            }
        )
    return out


def _pause(plan: Plan | None, observed: Observed) -> tuple[str, str]:
    if plan is not None and plan.paused is not None:  # the planner's reason says what it did about it
        return str(plan.paused), plan.paused_message
    if observed.rollout.failure is not None:
        return str(Reason.ROLLOUT_PAUSED), observed.rollout.failure
    return str(Reason.ROLLOUT_PAUSED), "paused"


def _progress(phase: Phase, plan: Plan | None, observed: Observed) -> tuple[str, str]:
    if phase in (Phase.ROLLING_OUT, Phase.ROLLING_BACK):
        busy = [t for t in observed.rollout.targets if t.state not in ("Ready", "Pending")]
        names = ", ".join(f"{t.name} ({t.state})" for t in busy) or "targets"
        return str(Reason.ROLLOUT_PROGRESSING), f"rolling {names}"
    if phase is Phase.ANALYZING:
        return str(Reason.ANALYSIS_RUNNING), "measuring token validation after the rotation"
    if phase is Phase.PUBLISHING and plan is not None and plan.waiting is not None:
        if plan.waiting is Reason.AWAITING_VERIFIERS:
            return str(plan.waiting), "waiting for verifiers to load the next key before it signs"
        if plan.waiting_message:
            return str(plan.waiting), plan.waiting_message
        return str(plan.waiting), "the next key is published; it signs once publishAhead has passed"
    return str(Reason.INITIALIZING), "generating keys"
