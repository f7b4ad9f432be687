"""One reconcile pass: read -> check -> plan -> write Secret -> write JWKS -> roll -> write status.

The write order is the crash-safety argument (invariant 6): the Secret carries the whole record,
so whatever is lost after it (JWKS, Events, status) is recomputed from it on the next pass.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from keyturn import crypto, failpoints, keygen, metrics, secret_render
from keyturn.adapters.configmaps import ConfigMaps, ConfigMapSnapshot
from keyturn.adapters.events import Events
from keyturn.adapters.keysets import Keysets, owner_reference
from keyturn.adapters.kube import KEYSET_LABEL, MANAGED_BY
from keyturn.adapters.secrets import STATE_ANNOTATION, Secrets, SecretSnapshot, SecretWrite
from keyturn.domain import jwks, policies, record
from keyturn.domain import status as status_view
from keyturn.domain.layout import kid_of_material_item, material_item
from keyturn.domain.model import Ring
from keyturn.domain.planner import Emergency, Observations, Plan, Requests, plan
from keyturn.domain.policies import Reason, Violation
from keyturn.domain.schedule import earliest
from keyturn.domain.spec import Spec, SpecError, parse_spec
from keyturn.rollout import RolloutResult, Rollouts

log = logging.getLogger("keyturn")

ROTATE_ANNOTATION = "keyturn.dev/rotate"
ROLLBACK_ANNOTATION = "keyturn.dev/rollback"
# Violations that only concern timings: they hold rotations, never an emergency revocation.
TIMING_REASONS = frozenset(
    {Reason.GRACE_TOO_SHORT, Reason.PUBLISH_AHEAD_TOO_SHORT, Reason.RETENTION_TOO_SHORT, Reason.UNKNOWN_KID}
)
# Stalls fixed outside the JwtKeySet (no event reaches Keyturn for them) are re-checked this often.
EXTERNAL_REASONS = frozenset(
    {Reason.PASSPHRASE_MISSING, Reason.SECRET_CONFLICT, Reason.JWKS_CONFLICT, Reason.SECRET_CORRUPT}
)
# A failed key generation (e.g. a kid template that cannot yield a new kid) is retried this often.
GENERATION_RETRY = timedelta(minutes=1)
STALLED_RECHECK = timedelta(seconds=10)
# A keyset with nothing due still wakes up this often, to notice a lost watch event.
MAX_SLEEP = timedelta(hours=1)


@dataclass
class Outcome:
    """What the daemon needs to know after a pass: when to come back."""

    wake_at: datetime | None = None


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def requests_from(obj: Mapping[str, Any]) -> Requests:
    annotations = obj.get("metadata", {}).get("annotations") or {}
    emergency = (obj.get("status") or {}).get("emergency") or {}
    request = None
    if emergency.get("requestId"):
        request = Emergency(
            request_id=str(emergency["requestId"]),
            reason=str(emergency.get("reason") or "key_compromise"),
            revoke_kids=tuple(str(k) for k in emergency.get("revokeKids") or ()),
            revoke_all=bool(emergency.get("revokeAll", False)),
        )
    return Requests(
        rotate=annotations.get(ROTATE_ANNOTATION) or None,
        rollback=annotations.get(ROLLBACK_ANNOTATION) or None,
        emergency=request,
    )


class Executor:
    def __init__(self, api: Any, rollouts: Rollouts | None = None) -> None:
        self.keysets = Keysets(api)
        self.secrets = Secrets(api)
        self.configmaps = ConfigMaps(api)
        self.events = Events(api)
        self.rollouts = rollouts or Rollouts(api)

    async def reconcile(self, namespace: str, name: str) -> Outcome:
        started = time.perf_counter()
        try:
            return await self._reconcile(namespace, name)
        finally:
            metrics.RECONCILE_SECONDS.observe(time.perf_counter() - started)

    async def _reconcile(self, namespace: str, name: str) -> Outcome:
        now = utcnow()
        obj = await self.keysets.get(namespace, name)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            metrics.forget(namespace, name)
            return Outcome()
        try:
            spec = parse_spec(name, namespace, obj.get("spec") or {})
        except SpecError as exc:
            await self._stalled(obj, Ring(), [Violation(Reason.INVALID_SPEC, str(exc))], now)
            return Outcome(wake_at=now + MAX_SLEEP)

        snapshot = await self.secrets.read(namespace, spec.secret.name)
        ring, violations = self._load_ring(spec, snapshot)
        published = None if spec.symmetric else await self.configmaps.read(namespace, spec.jwks_config_map)
        if published is not None and not _ours(published.labels, spec.name):
            violations.append(
                Violation(
                    Reason.JWKS_CONFLICT,
                    f"ConfigMap {spec.jwks_config_map} already exists and is not this keyset's JWKS; "
                    "set spec.jwks.configMapName to an unused name (Keyturn never overwrites it)",
                )
            )
        passphrase = None
        if spec.secret.passphrase is not None:
            ref = spec.secret.passphrase
            passphrase = await self.secrets.passphrase(namespace, ref.name, ref.key)
            if passphrase is None:
                violations.append(
                    Violation(
                        Reason.PASSPHRASE_MISSING,
                        f"secret.encryption.passphraseSecretRef: Secret {ref.name} with key {ref.key} "
                        f"not found in {namespace}; create it (nothing is generated until then)",
                    )
                )
        violations += policies.check(spec, ring)
        requests = requests_from(obj)
        pending_emergency = (
            requests.emergency is not None and ring.handled.emergency(requests.emergency.request_id) is None
        )
        blocking = [v for v in violations if v.reason not in TIMING_REASONS]
        if blocking or (violations and not pending_emergency):
            await self._stalled(obj, ring, violations, now)
            # A missing passphrase Secret or a foreign Secret is fixed outside the JwtKeySet: look again.
            external = any(v.reason in EXTERNAL_REASONS for v in violations)
            return Outcome(wake_at=now + (STALLED_RECHECK if external else MAX_SLEEP))

        rollout_state = await self.rollouts.observe(obj, spec, ring, now)
        observed = self._observations(rollout_state)
        outcome = Outcome()
        stored = dict(snapshot.data) if snapshot else {}
        the_plan = plan(spec, ring, now, requests, observed)
        if the_plan.needs_fresh:
            try:
                the_plan = await self._with_fresh_keys(
                    spec, ring, now, requests, observed, the_plan, stored, passphrase
                )
            except (ValueError, RuntimeError, crypto.KeySelfTestError) as exc:  # messages carry no material
                violation = Violation(Reason.KEY_GENERATION_FAILED, f"generating a key failed: {exc}")
                await self._stalled(obj, ring, [violation], now)
                return Outcome(wake_at=now + GENERATION_RETRY)

        lost = snapshot is None and bool((obj.get("status") or {}).get("currentKid"))
        try:
            wrote = await self._write_secret(obj, spec, the_plan.ring, snapshot, stored)
        except secret_render.MissingMaterial as exc:  # someone edited the Secret's data by hand
            message = f"{exc}; restore the Secret from a backup, or revoke that kid (kubectl keyturn revoke)"
            await self._stalled(obj, ring, [Violation(Reason.SECRET_CORRUPT, message)], now)
            return Outcome(wake_at=now + STALLED_RECHECK)
        if wrote:
            failpoints.hit("after-secret-write")
        await self._write_jwks(obj, spec, the_plan.ring, published)
        if lost:
            await self._announce(
                obj,
                Reason.SECRET_LOST,
                f"Secret {spec.secret.name} was deleted: every private "
                "key is gone; generated new keys (tokens signed before are no longer valid)",
                warning=True,
                kids=(),
            )
        for notice in the_plan.notices:
            await self._announce(obj, notice.reason, notice.message, warning=notice.warning, kids=notice.kids)
        metrics.record_plan(namespace, name, ring, the_plan, spec)

        # Targets roll only after the Secret and the JWKS hold the keys they must load.
        rollout_state = await self.rollouts.advance(obj, spec, the_plan.ring, now, rollout_state)
        for event in rollout_state.events:
            await self._announce(obj, event.reason, event.message, warning=event.warning, kids=())

        view = status_view.Observed(
            rollout=rollout_state.view,
            analysis=rollout_state.analysis,
            degraded=rollout_state.degraded,
        )
        await self._write_status(obj, the_plan.ring, the_plan, [], view, now)
        soon = now if the_plan.requeue else None
        outcome.wake_at = earliest(soon, the_plan.wake_at, rollout_state.wake_at, now + MAX_SLEEP)
        return outcome

    # ------------------------------------------------------------------------------------ reads
    def _load_ring(self, spec: Spec, snapshot: SecretSnapshot | None) -> tuple[Ring, list[Violation]]:
        if snapshot is None:
            return Ring(), []
        if not snapshot.managed_for(spec.name):
            owner = snapshot.labels.get("keyturn.dev/keyset")
            why = (
                f"belongs to JwtKeySet {owner}"
                if owner and owner != spec.name
                else "is not managed by Keyturn"
            )
            return Ring(), [
                Violation(
                    Reason.SECRET_CONFLICT,
                    f"Secret {spec.secret.name} already exists and {why}; Keyturn never overwrites a "
                    "Secret it did not create: remove that Secret if it is not needed, or recreate this "
                    "JwtKeySet with an unused spec.secret.name (it cannot change once set)",
                )
            ]
        try:
            ring = record.loads(snapshot.annotations[STATE_ANNOTATION])
        except record.RecordError as exc:
            return Ring(), [Violation(Reason.SECRET_CORRUPT, f"Secret {spec.secret.name}: {exc}")]
        return ring, []

    @staticmethod
    def _observations(state: RolloutResult) -> Observations:
        return Observations(
            verifiers_ready=state.verifiers_ready,
            signers_ready=state.signers_ready,
            signer_targets=state.signer_targets,
            signer_failure=state.signer_failure,
            analysis=state.analysis_verdict,
            analysis_message=state.analysis_message,
        )

    async def _with_fresh_keys(
        self,
        spec: Spec,
        ring: Ring,
        now: datetime,
        requests: Requests,
        observed: Observations,
        first: Plan,
        stored: dict[str, str],
        passphrase: bytes | None,
    ) -> Plan:
        taken = {k.kid for k in ring.keys} | set(ring.revoked_kids) | {r.kid for r in spec.revoked}
        generated = await asyncio.to_thread(
            keygen.generate,
            spec,
            first_serial=ring.serial + 1,
            count=first.needs_fresh,
            now=now,
            passphrase=passphrase,
            taken=taken,
        )
        for item in generated:
            stored[material_item(item.fresh.kid, crypto.is_symmetric(item.fresh.algorithm))] = item.stored
        result = plan(spec, ring, now, requests, observed, [g.fresh for g in generated])
        if result.needs_fresh:
            raise RuntimeError("the planner asked for more fresh keys than it counted")  # a planner bug
        return result

    # ------------------------------------------------------------------------------------ writes
    async def _write_secret(
        self,
        obj: Mapping[str, Any],
        spec: Spec,
        ring: Ring,
        snapshot: SecretSnapshot | None,
        stored: dict[str, str],
    ) -> bool:
        data = secret_render.render(spec, ring, stored)
        text = record.dumps(ring)
        owner = owner_reference(obj) if spec.secret.deletion_policy == "Delete" else None
        owner_uids = (owner["uid"],) if owner else ()
        if (
            snapshot is not None
            and snapshot.record == text
            and dict(snapshot.data) == data
            and snapshot.owner_uids == owner_uids
        ):
            return False
        purged = sorted(
            kid
            for item in (snapshot.data if snapshot else {})
            if (kid := kid_of_material_item(item)) and item not in data
        )
        await self.secrets.write(
            spec.namespace,
            SecretWrite(name=spec.secret.name, data=data, record=text, keyset=spec.name, owner=owner),
            snapshot,
        )
        log.info(
            "secret written",
            extra=_fields(
                spec, reason="SecretWritten", kid=ring.current.kid if ring.current else None, purged=purged
            ),
        )
        return True

    async def _write_jwks(
        self, obj: Mapping[str, Any], spec: Spec, ring: Ring, current: ConfigMapSnapshot | None
    ) -> None:
        if spec.symmetric:
            return  # an HMAC key is never published; verifiers read it from the Secret
        owner = owner_reference(obj) if spec.secret.deletion_policy == "Delete" else None
        owner_uids = (owner["uid"],) if owner else ()
        text = jwks.render(jwks.build(ring))
        if (
            current is not None
            and dict(current.data) == {spec.jwks_key: text}
            and current.owner_uids == owner_uids
        ):
            return
        await self.configmaps.write(
            spec.namespace, spec.jwks_config_map, {spec.jwks_key: text}, spec.name, owner, current
        )
        log.info(
            "jwks published",
            extra=_fields(spec, reason="JwksPublished", kid=ring.current.kid if ring.current else None),
        )

    async def _announce(
        self, obj: Mapping[str, Any], reason: Reason, message: str, *, warning: bool, kids: tuple[str, ...]
    ) -> None:
        meta = obj["metadata"]
        log.log(
            logging.WARNING if warning else logging.INFO,
            message,
            extra={
                "namespace": meta["namespace"],
                "keyset": meta["name"],
                "reason": str(reason),
                "kid": ",".join(kids) or None,
            },
        )
        await self.events.post(obj, str(reason), message, warning=warning)

    async def _stalled(
        self, obj: Mapping[str, Any], ring: Ring, violations: list[Violation], now: datetime
    ) -> None:
        old_status = obj.get("status") or {}
        stalled_before = any(
            c.get("type") == "Stalled"
            and c.get("status") == "True"
            and c.get("reason") == str(violations[0].reason)
            for c in old_status.get("conditions") or ()
        )
        if not stalled_before:
            for violation in violations:
                await self._announce(obj, violation.reason, violation.message, warning=True, kids=())
        await self._write_status(obj, ring, None, violations, status_view.Observed(), now)

    async def _write_status(
        self,
        obj: Mapping[str, Any],
        ring: Ring,
        the_plan: Plan | None,
        violations: list[Violation],
        observed: status_view.Observed,
        now: datetime,
    ) -> None:
        meta = obj["metadata"]
        existing = obj.get("status") or {}
        desired = status_view.build(
            generation=int(meta.get("generation", 0)),
            ring=ring,
            plan=the_plan,
            violations=violations,
            observed=observed,
            existing=existing,
            now=now,
        )
        stalled = any(c["type"] == "Stalled" and c["status"] == "True" for c in desired["conditions"])
        metrics.STALLED.labels(meta["namespace"], meta["name"]).set(1 if stalled else 0)  # also when Paused
        diff = {k: v for k, v in desired.items() if _differs(existing.get(k), v)}
        if diff:
            await self.keysets.patch_status(meta["namespace"], meta["name"], diff)


def _ours(labels: Mapping[str, str], keyset: str) -> bool:
    """Keyturn's own object for this keyset, even if a person dropped one of its two labels."""
    owner = labels.get(KEYSET_LABEL)
    if owner is not None:
        return owner == keyset
    return all(labels.get(k) == v for k, v in MANAGED_BY.items())


def _differs(old: Any, new: Any) -> bool:
    if new is None:
        return old is not None
    return bool(old != new)


def _fields(spec: Spec, **extra: Any) -> dict[str, Any]:
    return {"namespace": spec.namespace, "keyset": spec.name, **extra}
