"""One reconcile pass: gather -> evaluate -> plan -> apply -> report.

- gather (gather.py): every input through the ports, each a value or a named problem;
- evaluate (domain.policies): a pure chain of named checks, each problem with its scope;
- plan (domain.planner): the lifecycle decision, in full or, while Stalled, emergency-only mode;
- apply (apply.py): fresh keys, Secret, JWKS, then the targets, in the crash-safe order;
- report (report.py): status, Events, metrics.

The emergency path (status.emergency, spec.revokedKids) needs only the keyset object and the
Secret's record, so it runs whatever else is wrong: an unparsable spec, a foreign JWKS ConfigMap, a
missing passphrase, misbehaving targets or Prometheus, and every Stalled reason.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from keyturn import failpoints, metrics
from keyturn.domain import policies, propagation
from keyturn.domain import status as status_view
from keyturn.domain.inputs import ConfigMapSnapshot, Inputs, SecretSnapshot
from keyturn.domain.model import AckResult, EmergencyAck, Ring
from keyturn.domain.planner import Plan, PlanMode, plan
from keyturn.domain.reasons import Reason, Violation
from keyturn.domain.record import parse_timestamp
from keyturn.domain.schedule import earliest
from keyturn.domain.spec import Spec
from keyturn.executor.apply import Writer, fresh_keys
from keyturn.executor.gather import Gathered, Gatherer
from keyturn.executor.issuers import IssuerIndex
from keyturn.executor.ports import (
    Clock,
    ConfigMapPort,
    EventPort,
    IssuerPort,
    KeysetPort,
    PropagationPort,
    RolloutPort,
    SecretPort,
)
from keyturn.executor.report import Reporter
from keyturn.keys.secret_data import MissingMaterial
from keyturn.keys.self_test import KeySelfTestError
from keyturn.propagation import PropagationGate
from keyturn.rollout import RolloutResult

log = logging.getLogger("keyturn")

# A keyset with nothing due still wakes up about this often, to notice a lost watch event; spread
# by +-10 % so that keysets started together (a restart) do not all wake in the same second.
MAX_SLEEP = timedelta(hours=1)


def spread() -> float:
    return 0.9 + random.random() / 5  # noqa: S311 - jitter, not crypto


@dataclass
class Outcome:
    """What the daemon needs to know after a pass: when to come back."""

    wake_at: datetime | None = None


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class Executor:
    def __init__(
        self,
        *,
        keysets: KeysetPort,
        secrets: SecretPort,
        configmaps: ConfigMapPort,
        events: EventPort,
        rollouts: RolloutPort,
        propagation: PropagationPort | None = None,
        clock: Clock = utcnow,
        jitter: Callable[[], float] = spread,
        issuers: IssuerPort | None = None,
    ) -> None:
        self.clock = clock
        self.jitter = jitter
        self.propagation = propagation if propagation is not None else PropagationGate()
        # Without an index (unit tests), no other keyset is known to claim an issuer.
        self.issuers = issuers if issuers is not None else IssuerIndex()
        self.gatherer = Gatherer(keysets, secrets, configmaps, rollouts, self.propagation, self.issuers)
        self.writer = Writer(secrets, configmaps)
        self.reporter = Reporter(keysets, events)
        self.rollouts = rollouts

    async def reconcile(self, namespace: str, name: str) -> Outcome:
        started = time.perf_counter()
        try:
            outcome = await self._reconcile(namespace, name)
        finally:
            await self.reporter.flush(namespace, name)  # the pass's Events, all at once, after status
            metrics.RECONCILE_SECONDS.observe(time.perf_counter() - started)
        self.reporter.recovered(namespace, name)
        return outcome

    async def report_failure(self, namespace: str, name: str, exc: BaseException) -> None:
        """A pass raised: say so in status (Degraded / ReconcileError), an Event and a metric."""
        await self.reporter.failure(namespace, name, exc, self.clock())

    async def _reconcile(self, namespace: str, name: str) -> Outcome:
        now = self.clock()
        gathered = await self.gatherer.gather(namespace, name, now)
        if gathered is None:
            metrics.forget(namespace, name)
            self.propagation.forget(namespace, name)
            return Outcome()
        inputs = gathered.inputs
        verdict = policies.evaluate(inputs)
        violations = list(verdict.violations)
        if not verdict.secret_writable or not isinstance(inputs.ring, Ring):
            return await self._unwritable(gathered, violations, verdict.degraded, now)
        ring = inputs.ring
        secret = inputs.secret if isinstance(inputs.secret, SecretSnapshot) else None
        stored = dict(secret.data) if secret else {}
        spec = inputs.spec or inputs.acting
        mode = PlanMode.EMERGENCY if violations else PlanMode.FULL
        observed = dataclasses.replace(
            inputs.observations, unusable=frozenset(policies.missing_material(inputs))
        )

        def decide(mode: PlanMode, generate: bool) -> Plan:
            return plan(spec, ring, now, inputs.requests, observed, mode=mode, generate=generate)

        the_plan = decide(mode, verdict.generate)
        if the_plan.needs_fresh:
            passphrase = inputs.passphrase if isinstance(inputs.passphrase, bytes) else None
            try:
                fresh = await fresh_keys(spec, ring, the_plan.needs_fresh, now, passphrase, stored)
                the_plan = plan(spec, ring, now, inputs.requests, observed, fresh, mode=mode)
                if the_plan.needs_fresh:
                    raise RuntimeError("the planner asked for more fresh keys than it counted")  # a bug
            except (ValueError, RuntimeError, KeySelfTestError) as exc:  # messages carry no material
                violations.append(
                    Violation.of(Reason.KEY_GENERATION_FAILED, f"generating a key failed: {exc}")
                )
                mode = PlanMode.EMERGENCY
                the_plan = decide(mode, False)

        # ------------------------------------------------------------------------------ apply
        if secret is None and not the_plan.ring.keys:
            # Nothing to hold yet (a new keyset that is Stalled): create no Secret and no JWKS.
            return await self._unwritable(gathered, violations, verdict.degraded, now)
        try:
            wrote = await self.writer.write_secret(
                gathered.obj, spec, the_plan.ring, secret, stored, lenient=mode is PlanMode.EMERGENCY
            )
        except MissingMaterial as exc:  # the checks should have seen it; never crash on it
            violations.append(
                Violation.of(
                    Reason.SECRET_CORRUPT, f"{exc}; restore the Secret from a backup, or revoke that kid"
                )
            )
            return await self._unwritable(gathered, violations, verdict.degraded, now)
        if wrote:
            failpoints.hit("after-secret-write")
        if verdict.jwks_writable:
            jwks = inputs.jwks if isinstance(inputs.jwks, ConfigMapSnapshot) else None
            # Published under its issuer only when the spec parses and no older keyset claims it.
            issuer = inputs.spec.jwks_issuer if inputs.spec and inputs.issuer_rival is None else None
            await self.writer.write_jwks(gathered.obj, spec, the_plan.ring, jwks, issuer=issuer)
        await self._notices(gathered, inputs, the_plan, secret)
        metrics.record_plan(namespace, name, ring, the_plan, spec)
        shares = inputs.observations.propagation
        metrics.record_propagation(namespace, name, shares)
        rollout, degraded = await self._advance(gathered, spec, the_plan.ring, now)

        # ------------------------------------------------------------------------------ report
        if violations:
            self.reporter.stalled(gathered.obj, violations)
        gate = inputs.spec.propagation if inputs.spec else None
        view = status_view.Observed(
            rollout=rollout.view if rollout else status_view.RolloutView(),
            analysis=rollout.analysis if rollout else None,
            degraded=(*verdict.degraded, *degraded, *the_plan.degraded),
            propagation=propagation.view(gate, the_plan.ring, shares),
        )
        await self.reporter.status(gathered.obj, the_plan.ring, the_plan, violations, view, now)
        soon = now if the_plan.requeue else None
        return Outcome(
            wake_at=earliest(
                soon,
                the_plan.wake_at,
                rollout.wake_at if rollout else None,
                propagation.next_question(gate, shares, now) if mode is PlanMode.FULL else None,
                _recheck(violations, now),
                self._idle(now),
            )
        )

    async def _advance(
        self, gathered: Gathered, spec: Spec, ring: Ring, now: datetime
    ) -> tuple[RolloutResult | None, tuple[Violation, ...]]:
        """Targets roll only after the Secret and the JWKS hold the keys they must load."""
        if gathered.rollout is None:
            return None, ()
        try:
            result = await self.rollouts.advance(gathered.obj, spec, ring, now, gathered.rollout)
        except Exception as exc:  # peripheral: a target that cannot be patched degrades, never stops
            message = f"rolling the targets failed ({type(exc).__name__}); retrying"
            return gathered.rollout, (Violation.of(Reason.TARGET_FAILED, message),)
        for event in result.events:
            self.reporter.announce(gathered.obj, event.reason, event.message, warning=event.warning)
        degraded = () if result.degraded is None else (Violation.of(*result.degraded),)
        return result, tuple(v for v in degraded if v not in gathered.inputs.degraded)

    async def _notices(
        self, gathered: Gathered, inputs: Inputs, the_plan: Plan, secret: SecretSnapshot | None
    ) -> None:
        obj = gathered.obj
        if secret is None and inputs.status.get("currentKid"):
            self.reporter.announce(
                obj,
                Reason.SECRET_LOST,
                f"Secret {inputs.acting.secret.name} was deleted: every private key is gone; generated "
                "new keys (tokens signed before are no longer valid)",
                warning=True,
            )
        for notice in the_plan.notices:
            self.reporter.announce(
                obj, notice.reason, notice.message, warning=notice.warning, kids=notice.kids
            )

    async def _unwritable(
        self,
        gathered: Gathered,
        violations: list[Violation],
        degraded: tuple[Violation, ...],
        now: datetime,
    ) -> Outcome:
        """No record Keyturn may act on (foreign, unreadable, damaged Secret): report, write nothing.

        A pending emergency is still answered, Rejected with the reason, in status only.
        """
        inputs = gathered.inputs
        self.reporter.stalled(gathered.obj, violations)
        view = status_view.Observed(degraded=degraded, ack=_rejected(inputs, violations, now))
        ring = inputs.ring if isinstance(inputs.ring, Ring) else Ring()
        await self.reporter.status(gathered.obj, ring, None, violations, view, now)
        return Outcome(wake_at=earliest(_recheck(violations, now), self._idle(now)))

    def _idle(self, now: datetime) -> datetime:
        return now + MAX_SLEEP * self.jitter()


def _recheck(violations: list[Violation], now: datetime) -> datetime | None:
    delay = policies.recheck_after(violations)
    return now + delay if delay is not None else None


def _rejected(inputs: Inputs, violations: list[Violation], now: datetime) -> EmergencyAck | None:
    """The answer to an emergency that cannot be acted on; stable across passes (no status churn)."""
    request = inputs.requests.emergency
    if request is None or not violations:
        return None
    previous = inputs.status.get("emergency")
    handled_at = now
    if isinstance(previous, Mapping) and previous.get("result"):
        if previous.get("result") != str(AckResult.REJECTED):
            return None  # answered while the record was readable; the CRD makes a new request replace it
        try:
            handled_at = parse_timestamp(str(previous.get("handledAt")))
        except ValueError:
            handled_at = now
    first = violations[0]
    return EmergencyAck(
        request_id=request.request_id,
        handled_at=handled_at,
        result=AckResult.REJECTED,
        new_kid=None,
        message=(
            f"nothing was revoked yet: {first.reason}: {first.message}; the request runs once that is fixed"
        ),
    )
