"""The gather step: every input of a pass read through the ports, each a value or a named problem.

Nothing here decides anything, and nothing here raises for a fault in one input: a Secret that
cannot be read, a foreign ConfigMap, a damaged record or misbehaving targets all become values the
checks in `domain.policies` weigh. Only a failure to read the JwtKeySet itself ends the pass.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from keyturn.domain import record
from keyturn.domain.inputs import ConfigMapSnapshot, Inputs, Observations, SecretSnapshot
from keyturn.domain.model import Ring
from keyturn.domain.propagation import Share, kids_to_ask
from keyturn.domain.reasons import Reason, Scope, Violation
from keyturn.domain.requests import Requests, read_requests, read_revocations
from keyturn.domain.salvage import acting_spec
from keyturn.domain.spec import Spec, SpecError
from keyturn.domain.spec_parser import parse_spec
from keyturn.executor.ports import (
    ConfigMapPort,
    IssuerPort,
    KeysetPort,
    PropagationPort,
    RolloutPort,
    SecretPort,
)
from keyturn.keys.secret_data import material_problems
from keyturn.propagation import EMERGENCY_TIMEOUT, QUERY_TIMEOUT
from keyturn.rollout import RolloutResult

log = logging.getLogger("keyturn")


@dataclass(frozen=True)
class Gathered:
    """The inputs, plus what the apply step needs again: the object and the rollout observation."""

    obj: Mapping[str, Any]
    inputs: Inputs
    rollout: RolloutResult | None


class Gatherer:
    def __init__(
        self,
        keysets: KeysetPort,
        secrets: SecretPort,
        configmaps: ConfigMapPort,
        rollouts: RolloutPort,
        propagation: PropagationPort,
        issuers: IssuerPort,
    ) -> None:
        self.keysets = keysets
        self.secrets = secrets
        self.configmaps = configmaps
        self.rollouts = rollouts
        self.propagation = propagation
        self.issuers = issuers

    async def gather(self, namespace: str, name: str, now: datetime) -> Gathered | None:
        """None when the keyset is gone or being deleted."""
        obj = await self.keysets.get(namespace, name)
        if obj is None or _mapping(obj.get("metadata")).get("deletionTimestamp"):
            return None
        raw_spec = obj.get("spec")
        spec, spec_problem = _parse(name, namespace, raw_spec)
        # Where the keys live is needed before the record says which algorithm they have.
        locating = spec or acting_spec(name, namespace, _with_revocations(raw_spec), None)
        if spec is not None:  # every name is known: the three reads go out together
            secret, jwks, passphrase = await asyncio.gather(
                self._read_secret(namespace, spec.secret.name),
                self._read_jwks_of(namespace, spec),
                self._read_passphrase(namespace, spec),
            )
            ring = _ring(secret, name)
            acting = spec
        else:
            secret = await self._read_secret(namespace, locating.secret.name)
            ring = _ring(secret, name)
            acting = acting_spec(
                name, namespace, _with_revocations(raw_spec), ring if isinstance(ring, Ring) else None
            )
            jwks, passphrase = await self._read_jwks_of(namespace, acting), None
        damaged: dict[str, str] = {}
        if isinstance(ring, Ring) and isinstance(secret, SecretSnapshot) and secret.managed_for(name):
            key = passphrase if isinstance(passphrase, bytes) else None
            damaged = await asyncio.to_thread(material_problems, ring, secret.data, key)
        rollout: RolloutResult | None = None
        degraded: tuple[Violation, ...] = ()
        shares: dict[str, Share] = {}
        requests = read_requests(obj)
        if isinstance(ring, Ring) and _ours(secret, name):
            rollout, degraded, shares = await self._observe_and_ask(obj, spec, acting, ring, requests, now)
        observations = _observations(rollout, shares)
        status = obj.get("status")
        rival = None
        if spec is not None and spec.jwks_issuer is not None:
            created = str(_mapping(obj.get("metadata")).get("creationTimestamp") or "")
            rival = self.issuers.rival(spec.jwks_issuer, namespace, name, created)
        inputs = Inputs(
            namespace=namespace,
            name=name,
            generation=_int(_mapping(obj.get("metadata")).get("generation")),
            requests=requests,
            spec=spec,
            spec_problem=spec_problem,
            acting=acting,
            secret=secret,
            ring=ring,
            jwks=jwks,
            passphrase=passphrase,
            damaged=damaged,
            observations=observations,
            degraded=degraded,
            status=status if isinstance(status, Mapping) else {},
            issuer_rival=rival,
        )
        return Gathered(obj, inputs, rollout)

    async def _read_secret(self, namespace: str, name: str) -> SecretSnapshot | Violation | None:
        try:
            return await self.secrets.read(namespace, name)
        except Exception as exc:  # any failure is this input's problem, not the pass's
            return Violation.of(Reason.READ_FAILED, f"reading Secret {name} failed: {_describe(exc)}")

    async def _read_jwks_of(self, namespace: str, spec: Spec) -> ConfigMapSnapshot | Violation | None:
        return None if spec.symmetric else await self._read_jwks(namespace, spec.jwks_config_map)

    async def _read_jwks(self, namespace: str, name: str) -> ConfigMapSnapshot | Violation | None:
        try:
            return await self.configmaps.read(namespace, name)
        except Exception as exc:
            return Violation.of(
                Reason.READ_FAILED, f"reading ConfigMap {name} failed: {_describe(exc)}", Scope.ROTATIONS
            )

    async def _read_passphrase(self, namespace: str, spec: Spec | None) -> bytes | Violation | None:
        ref = spec.secret.passphrase if spec is not None else None
        if ref is None:
            return None
        try:
            value = await self.secrets.passphrase(namespace, ref.name, ref.key)
        except Exception as exc:
            return Violation.of(
                Reason.READ_FAILED, f"reading the passphrase Secret {ref.name} failed: {_describe(exc)}"
            )
        if value is None:
            return Violation.of(
                Reason.PASSPHRASE_MISSING,
                f"secret.encryption.passphraseSecretRef: Secret {ref.name} with key {ref.key} not found in "
                f"{namespace}; create it (nothing is generated until then)",
            )
        return value

    async def _observe_and_ask(
        self,
        obj: Mapping[str, Any],
        spec: Spec | None,
        acting: Spec,
        ring: Ring,
        requests: Requests,
        now: datetime,
    ) -> tuple[RolloutResult | None, tuple[Violation, ...], dict[str, Share]]:
        """The targets, and the propagation gate's answers they and the planner need.

        A pending emergency never waits for the gate: the share of the key it promotes is asked
        at the same time as the targets are observed, with a short timeout, and the
        acknowledgement says "unknown" when no answer came in time.
        """
        if spec is None or spec.propagation is None:
            rollout, degraded = await self._observe(obj, acting, ring, now, {})
            return rollout, degraded, {}
        manual = requests.rotate is not None and requests.rotate != ring.handled.rotate
        kids = kids_to_ask(spec, ring, now, manual=manual)
        promoted = _promoted_by_emergency(requests, ring)
        if promoted is not None:
            asked = (*kids, promoted) if promoted else kids
            # Observed before any answer: the kids in question count as not yet accepted, so no
            # `reload: none` signer is taken for ready on the strength of a question not asked.
            unknown = {kid: Share(now, None, "asked beside an emergency") for kid in kids}
            (rollout, degraded), shares = await asyncio.gather(
                self._observe(obj, acting, ring, now, unknown),
                self._ask(spec, asked, now, EMERGENCY_TIMEOUT),
            )
            return rollout, degraded, shares
        shares = await self._ask(spec, kids, now, QUERY_TIMEOUT)
        rollout, degraded = await self._observe(obj, acting, ring, now, shares)
        return rollout, degraded, shares

    async def _ask(self, spec: Spec, kids: Sequence[str], now: datetime, within: float) -> dict[str, Share]:
        try:
            return await self.propagation.ask(spec, kids, now, within=within)
        except Exception as exc:  # the gate is peripheral: without an answer it holds, never crashes
            log.warning(
                "asking the propagation gate failed: %s",
                type(exc).__name__,
                extra={"namespace": spec.namespace, "keyset": spec.name},
            )
            return {kid: Share(now, None, f"asking failed ({_describe(exc)})") for kid in kids}

    async def _observe(
        self, obj: Mapping[str, Any], spec: Spec, ring: Ring, now: datetime, shares: Mapping[str, Share]
    ) -> tuple[RolloutResult | None, tuple[Violation, ...]]:
        try:
            result = await self.rollouts.observe(obj, spec, ring, now, shares)
        except Exception as exc:  # targets and Prometheus are peripheral: they never stop a pass
            log.warning(
                "observing targets failed: %s",
                type(exc).__name__,
                extra={"namespace": spec.namespace, "keyset": spec.name, "reason": str(Reason.TARGET_FAILED)},
            )
            message = f"observing the targets failed ({_describe(exc)}); retrying"
            return None, (Violation.of(Reason.TARGET_FAILED, message),)
        degraded = () if result.degraded is None else (Violation.of(*result.degraded),)
        return result, degraded


def _parse(name: str, namespace: str, raw: object) -> tuple[Spec | None, Violation | None]:
    try:
        return parse_spec(name, namespace, raw if isinstance(raw, Mapping) else {}), None
    except SpecError as exc:
        return None, Violation.of(Reason.INVALID_SPEC, str(exc))
    except Exception as exc:  # a parser bug must not hold emergencies: the keyset is Stalled instead
        return None, Violation.of(Reason.INVALID_SPEC, f"the spec cannot be read ({type(exc).__name__})")


def _with_revocations(raw: object) -> dict[str, object]:
    """The raw spec with revokedKids normalised, so the salvaged spec keeps every revocation."""
    sections = dict(raw) if isinstance(raw, Mapping) else {}
    sections["revokedKids"] = [{"kid": kid, "reason": reason} for kid, reason in read_revocations(raw)]
    return sections


def _ring(secret: SecretSnapshot | Violation | None, keyset: str) -> Ring | Violation:
    if not isinstance(secret, SecretSnapshot) or not secret.managed_for(keyset):
        return Ring()  # no Secret yet (or it cannot be read, or it is foreign: the checks say so)
    try:
        return record.loads(secret.record or "")
    except record.RecordError as exc:
        return Violation.of(Reason.SECRET_CORRUPT, f"Secret {secret.name}: {exc}")


def _ours(secret: SecretSnapshot | Violation | None, keyset: str) -> bool:
    return secret is None or (isinstance(secret, SecretSnapshot) and secret.managed_for(keyset))


def _promoted_by_emergency(requests: Requests, ring: Ring) -> str | None:
    """With an emergency pending: the kid it would promote ("" for none, or a fresh key); else None."""
    request = requests.emergency
    if request is None or request.problem is not None or ring.handled.emergency(request.request_id):
        return None
    current, nxt = ring.current, ring.next
    takes_current = current is not None and (not request.revoke_kids or current.kid in request.revoke_kids)
    if request.revoke_all or not takes_current or nxt is None or nxt.kid in request.revoke_kids:
        return ""
    return nxt.kid


def _observations(result: RolloutResult | None, shares: Mapping[str, Share]) -> Observations:
    if result is None:  # targets unseen: no rotation may count on them having loaded anything
        return Observations(verifiers_ready=False, signers_ready=False, propagation=shares)
    return Observations(
        verifiers_ready=result.verifiers_ready,
        signers_ready=result.signers_ready,
        signer_targets=result.signer_targets,
        signer_failure=result.signer_failure,
        analysis=result.analysis_verdict,
        analysis_message=result.analysis_message,
        propagation=shares,
    )


def _describe(exc: BaseException) -> str:
    """The exception's type and, for API errors, the HTTP status: never a message that could hold data."""
    status = getattr(exc, "status", None)
    reason = getattr(exc, "reason", None)
    if isinstance(status, int):
        return f"{type(exc).__name__} {status}" + (f" {reason}" if isinstance(reason, str) else "")
    return type(exc).__name__


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
