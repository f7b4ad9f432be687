"""Rolling reloads of annotated workloads and the analysis gate, around the planner.

`observe` runs before planning (are verifiers ready? did a signer fail? what does the metric
say?), `advance` after the Secret and JWKS are written (restart the next target). Decisions are
the pure functions of domain.targets and domain.analysis; this module only does their I/O.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from keyturn import propagation
from keyturn.adapters import health as health_probe
from keyturn.adapters import prometheus
from keyturn.adapters.workload_index import WorkloadIndex
from keyturn.adapters.workloads import BadTarget, Workloads, targeted_keysets, to_target
from keyturn.domain import analysis as gate
from keyturn.domain.annotations import HEALTH_ANNOTATION
from keyturn.domain.egress import EgressPolicy, Refused, health_url, shorten
from keyturn.domain.model import AnalysisResult, Operation, Ring
from keyturn.domain.propagation import Share
from keyturn.domain.propagation import loaded as accepted_by
from keyturn.domain.reasons import Reason
from keyturn.domain.schedule import earliest
from keyturn.domain.spec import Spec
from keyturn.domain.status import AnalysisView, Measurement, RolloutView
from keyturn.domain.targets import (
    SIGNING_ROLES,
    Decision,
    Health,
    Role,
    Target,
    WorkloadKind,
    decide,
    revisions,
)

log = logging.getLogger("keyturn")


@dataclass(frozen=True)
class RolloutEvent:
    reason: Reason
    message: str
    warning: bool = False


@dataclass
class RolloutResult:
    verifiers_ready: bool = True
    signers_ready: bool = True
    signer_targets: bool = False
    signer_failure: str | None = None
    analysis_verdict: AnalysisResult | None = None
    analysis_message: str = ""
    view: RolloutView = field(default_factory=RolloutView)
    analysis: AnalysisView | None = None
    degraded: tuple[Reason, str] | None = None
    events: list[RolloutEvent] = field(default_factory=list)
    wake_at: datetime | None = None
    targets: list[Target] = field(default_factory=list)
    health: dict[str, Health] = field(default_factory=dict)
    # The propagation gate's answers of this pass, by kid: what `reload: none` targets have loaded.
    shares: Mapping[str, Share] = field(default_factory=dict)


SampleKey = tuple[str, str, str, datetime]  # namespace, keyset, kid, analysis start
MAX_LISTED = 5  # a Degraded message names this many faulty targets, then counts the rest

_egress = EgressPolicy()


def configure_egress(policy: EgressPolicy) -> None:
    """Set once at start (`keyturn run --egress-allow`): the hosts every Rollouts may request,
    and the propagation gate too."""
    global _egress  # noqa: PLW0603 - one process-wide setting, written before any keyset runs
    _egress = policy
    propagation.configure_egress(policy)


class TargetsNotListed(RuntimeError):
    """The operator's index of workloads is not filled yet: no target can count as loaded."""


def _why(exc: BaseException) -> str:
    """A failed API or HTTP call in a few words: the status for the API server, else the kind."""
    if isinstance(exc, ApiException):
        return f"HTTP {exc.status} {shorten(str(exc.reason or ''), 60)}".strip()
    return type(exc).__name__


def _joined(messages: list[str]) -> str:
    shown = "; ".join(messages[:MAX_LISTED])
    return shown if len(messages) <= MAX_LISTED else f"{shown}; and {len(messages) - MAX_LISTED} more"


class Rollouts:
    """Total: no Deployment, URL, Prometheus answer or failing API call makes observe/advance raise.

    A fault of one target is that target's fault (BadTarget, an unhealthy target, a TargetFailed
    patch); a fault of the listing holds activations that need the targets (TargetsUnreadable).
    Either way the pass goes on, so an emergency is never held by a peripheral fault.
    """

    def __init__(
        self, api: Any, egress: EgressPolicy | None = None, index: WorkloadIndex | None = None
    ) -> None:
        self.workloads = Workloads(api)
        # The targets come from the watch (the operator's index); without one, from a LIST per pass.
        self.index = index
        self.egress = egress if egress is not None else _egress
        self._samples: dict[SampleKey, dict[datetime, gate.Sample]] = {}
        self._announced: dict[tuple[str, str], str] = {}  # (namespace/keyset, what) -> last announced
        self._rolling: dict[str, str] = {}  # namespace/keyset -> revision this process started rolling
        self._views: dict[str, RolloutView] = {}  # namespace/keyset -> last view, shown while unreadable

    # ------------------------------------------------------------------------------ before the plan
    async def observe(
        self,
        obj: Mapping[str, Any],
        spec: Spec,
        ring: Ring,
        now: datetime,
        shares: Mapping[str, Share] | None = None,
    ) -> RolloutResult:
        """`shares`: the propagation gate's answers of this pass (what `reload: none` targets loaded)."""
        result = RolloutResult(shares=dict(shares or {}))
        key = f"{spec.namespace}/{spec.name}"
        try:
            raw = await self._targets(spec.namespace, spec.name)
        except Exception as exc:  # a peripheral fault: reported, never raised
            log.warning(
                "listing target workloads failed",
                exc_info=not isinstance(exc, ApiException),
                extra={"namespace": spec.namespace, "keyset": spec.name},
            )
            # Unknown targets: nothing may count as loaded, and no wave may be called over.
            result.verifiers_ready = result.signers_ready = False
            result.signer_targets = True
            result.view = self._views.get(key, RolloutView())
            result.degraded = (
                Reason.TARGETS_UNREADABLE,
                f"listing the workloads in {spec.namespace} failed ({_why(exc)}): no target is "
                "restarted and activations wait until it works; revocations go on",
            )
            await self._analyse(spec, ring, now, result, query=True)
            return result
        problems: list[str] = []
        for body in raw:
            try:
                target = to_target(body, spec.name)
            except BadTarget as exc:
                problems.append(str(exc))
                continue
            except Exception as exc:  # to_target is total; this is the last line of defence
                log.exception("reading a target workload failed", extra={"keyset": spec.name})
                name = shorten(str((body.get("metadata") or {}).get("name", "?")), 60)
                problems.append(f"workload {name} cannot be read ({type(exc).__name__}); left out")
                continue
            result.targets.append(target)
            problems.extend(target.damaged)
            if target.health_url:
                try:
                    health_url(target.health_url, self.egress)
                except Refused as refused:
                    problems.append(
                        f"{target.label}: {HEALTH_ANNOTATION} {shorten(target.health_url)!r} "
                        f"refused ({refused}); its health check fails until the annotation is fixed"
                    )
        if problems:
            message = _joined(problems)
            result.degraded = (Reason.BAD_TARGET, message)
            if self._announce_once(key, "bad", message):
                result.events.append(RolloutEvent(Reason.BAD_TARGET, message, warning=True))
        else:
            self._announced.pop((key, "bad"), None)
        result.signer_targets = any(t.role in SIGNING_ROLES for t in result.targets)
        if ring.current is not None and result.targets:
            # The planner's view: the gate holds the activation itself, with its own reason, so
            # `reload: none` verifiers are left to it; signers count once they accept the key.
            accepted = accepted_by(spec.propagation, ring, result.shares, verifiers=False)
            decision = await self._decide(spec, ring, now, result, accepted)
            result.verifiers_ready = decision.verifiers_ready
            result.signers_ready = decision.signers_ready
            if decision.failure is not None:
                self._report_failure(spec, decision.failure_message, result)
                if decision.failure.role in SIGNING_ROLES:
                    result.signer_failure = decision.failure_message
        await self._analyse(spec, ring, now, result, query=True)
        return result

    # ------------------------------------------------------------------------------ after the writes
    async def advance(
        self, obj: Mapping[str, Any], spec: Spec, ring: Ring, now: datetime, prior: RolloutResult
    ) -> RolloutResult:
        result = RolloutResult(
            targets=prior.targets,
            health=prior.health,
            degraded=prior.degraded,
            events=list(prior.events),
            view=prior.view,
            shares=prior.shares,
        )
        await self._analyse(spec, ring, now, result, query=False)
        if ring.current is None or not prior.targets:
            return result
        decision = await self._decide(
            spec, ring, now, result, accepted_by(spec.propagation, ring, result.shares)
        )
        views = list(decision.views)
        key = f"{spec.namespace}/{spec.name}"
        desired = revisions(ring)
        revision = desired[Role.BOTH]
        for target in decision.mark:
            # Not recorded: the target is probed again next pass, nothing else depends on it.
            await self._patch(
                spec,
                result,
                f"{target.label}: recording that it passed the gate",
                self.workloads.mark_verified(target, spec.namespace, spec.name, desired[target.role], now),
            )
        if decision.failure is not None:
            message = decision.failure_message
            result.view = RolloutView(revision, tuple(views), True, message)
            self._report_failure(spec, message, result)
        elif decision.stamp is not None:
            target = decision.stamp
            restart = target.revision != decision.stamp_revision
            done = await self._patch(
                spec,
                result,
                f"{target.label}: {'restarting' if restart else 'stamping'} it",
                self.workloads.stamp(target, spec.namespace, spec.name, decision.stamp_revision, now),
            )
            if done and restart:
                message = f"restarting {target.label} ({target.role}) for revision {decision.stamp_revision}"
                result.events.append(RolloutEvent(Reason.ROLLOUT_PROGRESSING, message))
            elif done:
                log.info(
                    f"stamped {target.label} again (no usable stamp); rollout.timeout counts from now",
                    extra={"namespace": spec.namespace, "keyset": spec.name, "reason": "RolloutProgressing"},
                )
            if done:
                self._rolling[key] = revision
        elif not decision.in_progress and self._rolling.pop(key, None) == revision:
            names = ", ".join(v.name for v in views)
            result.events.append(
                RolloutEvent(Reason.ROLLOUT_COMPLETE, f"every target reloaded the keys: {names}")
            )
        if decision.failure is None:
            self._announced.pop((key, "failure"), None)
            result.view = RolloutView(revision, tuple(views), decision.in_progress, None)
        self._views[key] = result.view
        result.wake_at = earliest(decision.wake_at, result.wake_at)
        return result

    async def _targets(self, namespace: str, keyset: str) -> list[Mapping[str, Any]]:
        """The workloads naming the keyset: from the watch's index, or (without one) a LIST of each kind."""
        if self.index is not None:
            if not self.index.listed:
                raise TargetsNotListed("the workload index has not been listed yet")
            return list(self.index.targets(namespace, keyset))
        found: list[Mapping[str, Any]] = []
        for kind in WorkloadKind:
            found += [b for b in await self.workloads.list(kind, namespace) if keyset in targeted_keysets(b)]
        return found

    async def _patch(self, spec: Spec, result: RolloutResult, what: str, call: Awaitable[None]) -> bool:
        """One workload write; a failure is this target's fault (TargetFailed), never the pass's."""
        try:
            await call
        except Exception as exc:  # a peripheral fault: reported, never raised
            if isinstance(exc, ApiException) and exc.status == 404:
                return False  # deleted since it was listed: the next pass no longer sees it
            log.warning(
                f"{what} failed", exc_info=not isinstance(exc, ApiException), extra={"keyset": spec.name}
            )
            self._report_failure(spec, f"{what} failed ({_why(exc)})", result)
            return False
        return True

    async def _decide(
        self,
        spec: Spec,
        ring: Ring,
        now: datetime,
        result: RolloutResult,
        loaded: Mapping[Role, bool] | None = None,
    ) -> Decision:
        """Probes the health URLs the decision asks about, then decides again with the answers."""
        desired = revisions(ring)
        decision = decide(result.targets, desired, now, spec.rollout, result.health, loaded)
        if decision.probe:
            answers = await asyncio.gather(
                *(health_probe.probe(t.health_url or "", self.egress) for t in decision.probe),
                return_exceptions=True,
            )
            for target, answer in zip(decision.probe, answers, strict=True):
                result.health[target.key] = (
                    answer
                    if isinstance(answer, Health)
                    else Health(False, f"probe failed: {type(answer).__name__}")
                )
            decision = decide(result.targets, desired, now, spec.rollout, result.health, loaded)
        return decision

    def _report_failure(self, spec: Spec, message: str, result: RolloutResult) -> None:
        """Degraded while it lasts; one Warning Event per distinct failure, not one per pass."""
        result.degraded = (Reason.TARGET_FAILED, message)
        if self._announce_once(f"{spec.namespace}/{spec.name}", "failure", message):
            result.events.append(RolloutEvent(Reason.TARGET_FAILED, message, warning=True))

    def _announce_once(self, key: str, what: str, value: str) -> bool:
        if self._announced.get((key, what)) == value:
            return False
        self._announced[(key, what)] = value
        return True

    # ------------------------------------------------------------------------------ analysis
    async def _analyse(
        self, spec: Spec, ring: Ring, now: datetime, result: RolloutResult, *, query: bool
    ) -> None:
        settings = spec.analysis
        # The analysis on show is the newest one: the current key's, or the one that just failed.
        analysed = [
            k for k in ring.keys if k.signers_ready_at is not None and k.activation is Operation.ROTATE
        ]
        current = max(analysed, key=lambda k: k.signers_ready_at or now, default=None)
        if settings is None or current is None or current.signers_ready_at is None:
            return
        started = current.signers_ready_at
        cache = self._samples.setdefault((spec.namespace, spec.name, current.kid, started), {})
        assessment = gate.assess(settings, started, now, cache)
        if query and assessment.due and current.analysis_result is None and current is ring.current:
            answers = await asyncio.gather(
                *(
                    prometheus.query(settings.address, settings.query, at, self.egress)
                    for at in assessment.due
                ),
                return_exceptions=True,
            )
            for at, answer in zip(assessment.due, answers, strict=True):
                cache[at] = (
                    answer
                    if isinstance(answer, gate.Sample)
                    else gate.Sample(None, f"query failed: {type(answer).__name__}")
                )
            assessment = gate.assess(settings, started, now, cache)
        phase = (
            str(current.analysis_result) if current.analysis_result else str(assessment.verdict or "Running")
        )
        values = [p.value for p in assessment.points if p.value is not None]
        result.analysis = AnalysisView(
            phase=phase,
            success_rate=values[-1] if values else None,
            measurements=tuple(Measurement(p.at, p.value, p.result) for p in assessment.points),
        )
        if current.analysis_result is None and current is ring.current:
            result.analysis_verdict = assessment.verdict
            result.analysis_message = f"analysis of {current.kid}: {assessment.message}"
            result.wake_at = earliest(result.wake_at, assessment.next_at)
