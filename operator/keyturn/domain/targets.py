"""Rolling reloads of target workloads, decided from what the workloads themselves record.

Nothing about a rollout's progress is stored anywhere but on the targets: each one carries, on its
pod template, the revision of the keys it was last restarted for. So a crash mid-rollout resumes
exactly where it stopped, and a GitOps tool sees one annotation change per restart.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from keyturn.domain.durations import format_duration
from keyturn.domain.egress import shorten
from keyturn.domain.model import Ring
from keyturn.domain.spec import RolloutSpec


class Role(StrEnum):
    VERIFIER = "verifier"
    SIGNER = "signer"
    BOTH = "both"


class WorkloadKind(StrEnum):
    """The kinds a target can be; each is restarted the way its controller rolls it."""

    DEPLOYMENT = "Deployment"
    STATEFULSET = "StatefulSet"
    DAEMONSET = "DaemonSet"


class Reload(StrEnum):
    """keyturn.dev/reload: how a target picks up new keys."""

    RESTART = "restart"  # Keyturn restarts it (a pod-template annotation), one target at a time
    NONE = "none"  # never restarted: it re-reads its mounted files (the propagation gate tells when)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def revisions(ring: Ring) -> dict[Role, str]:
    """What each role must have loaded: verifiers the verification set, signers the current key."""
    verify = ",".join(sorted(k.kid for k in ring.verifying()))
    current = ring.current.kid if ring.current else ""
    return {
        Role.VERIFIER: f"v-{_digest('verify', verify)}",
        Role.SIGNER: f"s-{_digest('sign', current)}",
        Role.BOTH: f"b-{_digest('verify', verify, 'sign', current)}",
    }


@dataclass(frozen=True)
class Target:
    """A workload as the decision needs it: identity, what it runs, whether it is done."""

    name: str
    role: Role
    order: int
    revision: str | None  # the revision on its pod template, if Keyturn ever stamped it
    stamped_at: datetime | None
    complete: bool  # observedGeneration caught up, every replica updated and available
    deadline_exceeded: bool  # the Deployment controller gave up (ProgressDeadlineExceeded)
    progress: str  # "2/3 updated, 1 available", for messages
    health_url: str | None = None
    verified: str | None = None  # the revision that last passed the gate (complete and healthy)
    verified_at: datetime | None = None
    # Keyturn's own annotations on it that a person damaged: ignored, reported (BadTarget).
    damaged: tuple[str, ...] = ()
    kind: WorkloadKind = WorkloadKind.DEPLOYMENT
    reload: Reload = Reload.RESTART

    @property
    def key(self) -> str:
        """Unique among a keyset's targets (a Deployment and a StatefulSet may share a name)."""
        return f"{self.kind}/{self.name}"

    @property
    def label(self) -> str:
        """How messages name it: `deployment web`, `statefulset db`."""
        return f"{self.kind.lower()} {self.name}"


@dataclass(frozen=True)
class Health:
    ok: bool
    message: str


class TargetState(StrEnum):
    PENDING = "Pending"
    ROLLING = "Rolling"
    CHECKING = "Checking"
    READY = "Ready"
    FAILED = "Failed"


@dataclass(frozen=True)
class TargetView:
    name: str
    role: Role
    state: TargetState
    message: str = ""
    kind: WorkloadKind = WorkloadKind.DEPLOYMENT


@dataclass(frozen=True)
class Decision:
    stamp: Target | None = None
    stamp_revision: str = ""
    views: tuple[TargetView, ...] = ()
    failure: Target | None = None
    failure_message: str = ""
    verifiers_ready: bool = True
    signers_ready: bool = True
    in_progress: bool = False
    wake_at: datetime | None = None
    # Targets that are complete and need their health URL probed before the decision can move on.
    probe: tuple[Target, ...] = field(default=())
    # Targets that just passed the gate: record it on them, so it is never asked again.
    mark: tuple[Target, ...] = field(default=())


SIGNING_ROLES = (Role.SIGNER, Role.BOTH)
VERIFYING_ROLES = (Role.VERIFIER, Role.BOTH)


def ordered(targets: Sequence[Target]) -> list[Target]:
    """Signers first (they must stop using a revoked or replaced key first), then verifiers."""
    rank = {Role.SIGNER: 0, Role.BOTH: 0, Role.VERIFIER: 1}
    return sorted(targets, key=lambda t: (rank[t.role], t.order, t.name))


def decide(
    targets: Sequence[Target],
    desired: dict[Role, str],
    now: datetime,
    rollout: RolloutSpec,
    health: Mapping[str, Health],
    loaded: Mapping[Role, bool] | None = None,
) -> Decision:
    """One step of the one-at-a-time rollout: which target to restart, wait on, or report failed.

    `health` is keyed by Target.key. `loaded` says, per role, whether the processes of `reload: none`
    targets accept what that role needs (the propagation gate); without an entry they do (no gate).
    """
    views: list[TargetView] = []
    stamp: Target | None = None
    failure: Target | None = None
    failure_message = ""
    blocked = False  # an earlier target is still rolling (or failed): later ones wait
    wakes: list[datetime] = []
    probe: list[Target] = []
    mark: list[Target] = []
    last_done: datetime | None = None
    for target in ordered(targets):
        want = desired[target.role]

        if target.reload is Reload.NONE:
            # Never restarted, and never in the way of the targets after it: it re-reads its files.
            if (loaded or {}).get(target.role, True):
                views.append(_view(target, TargetState.READY, "reloads by itself"))
            else:
                views.append(_view(target, TargetState.PENDING, "waiting for its processes to load the keys"))
            continue
        if blocked:
            state = (
                TargetState.READY
                if target.revision == want and target.verified == want
                else TargetState.PENDING
            )
            views.append(_view(target, state))
            continue
        if target.revision != want:
            ready_at = _plus(last_done, rollout.pause_between) if last_done else now
            if ready_at > now:
                wakes.append(ready_at)
                views.append(_view(target, TargetState.PENDING, "pause between targets"))
            else:
                stamp = target
                views.append(_view(target, TargetState.ROLLING, "restarting"))
            blocked = True
            continue
        if target.verified == want:
            views.append(_view(target, TargetState.READY))
            # A time in the future (a damaged annotation, a skewed clock) counts as now.
            last_done = _latest(last_done, min(target.verified_at, now) if target.verified_at else None)
            continue
        if target.stamped_at is None or target.stamped_at > _plus(now, CLOCK_SKEW):
            # On the right revision but no usable stamp (removed, damaged, or from the future): stamp it
            # again. The revision does not change, so nothing restarts; the timeout counts from now.
            stamp = target
            views.append(_view(target, TargetState.ROLLING, "stamping again: no usable stamp"))
            blocked = True
            continue
        deadline = _plus(target.stamped_at, rollout.timeout)
        if not target.complete:
            if target.deadline_exceeded or now >= deadline:
                why = (
                    "ProgressDeadlineExceeded"
                    if target.deadline_exceeded
                    else f"not complete after {format_duration(rollout.timeout)}"
                )
                failure, failure_message = (target, f"{target.label}: rollout {why} ({target.progress})")
                views.append(_view(target, TargetState.FAILED, failure_message))
            else:
                wakes.append(deadline)
                views.append(_view(target, TargetState.ROLLING, target.progress))
            blocked = True
            continue
        if target.health_url:
            result = health.get(target.key)
            if result is None:
                probe.append(target)
                views.append(_view(target, TargetState.CHECKING, shorten(target.health_url)))
                blocked = True
                continue
            if not result.ok:
                if now >= deadline:
                    failure = target
                    url = shorten(target.health_url)
                    failure_message = f"{target.label}: health check {url} {result.message}"
                    views.append(_view(target, TargetState.FAILED, failure_message))
                else:
                    wakes.append(min(deadline, _plus(now, HEALTH_RETRY)))
                    views.append(_view(target, TargetState.CHECKING, result.message))
                blocked = True
                continue
        mark.append(target)
        views.append(_view(target, TargetState.READY))
        last_done = _latest(last_done, now)

    def all_done(roles: tuple[Role, ...]) -> bool:
        named = {f"{v.kind}/{v.name}": v for v in views}
        return all(named[t.key].state is TargetState.READY for t in targets if t.role in roles)

    return Decision(
        stamp=stamp,
        stamp_revision=desired[stamp.role] if stamp else "",
        views=tuple(views),
        failure=failure,
        failure_message=failure_message,
        verifiers_ready=all_done(VERIFYING_ROLES),
        signers_ready=all_done(SIGNING_ROLES),
        in_progress=any(v.state is not TargetState.READY for v in views),
        wake_at=min(wakes, default=None),
        probe=tuple(probe),
        mark=tuple(mark),
    )


def _view(target: Target, state: TargetState, message: str = "") -> TargetView:
    return TargetView(target.name, target.role, state, message, target.kind)


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return max((m for m in (a, b) if m is not None), default=None)


def _plus(at: datetime, delta: timedelta) -> datetime:
    """`at + delta`, saturating at the end of time: a far stamp and a long timeout never overflow."""
    try:
        return at + delta
    except OverflowError:
        return END_OF_TIME if delta > timedelta(0) else START_OF_TIME


HEALTH_RETRY = timedelta(seconds=3)
CLOCK_SKEW = timedelta(minutes=5)  # a stamp this far ahead of the clock is still believed
END_OF_TIME = datetime.max.replace(tzinfo=UTC)
START_OF_TIME = datetime.min.replace(tzinfo=UTC)
