"""The evaluate step: a chain of named, pure checks over one pass's Inputs.

Each check looks at the gathered inputs and returns the problems it finds, each with its scope
(see `reasons.Scope`). `evaluate` runs the chain in order and turns the result into a Verdict:
how the planner may run, whether a key may be generated, what the status reports and when to look
again. Adding a rule is adding a function to CHECKS; nothing else needs to know.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta

from keyturn.domain.annotations import KEYSET_LABEL, MANAGED_BY, STATE_ANNOTATION
from keyturn.domain.durations import format_duration
from keyturn.domain.inputs import ConfigMapSnapshot, Inputs, SecretSnapshot
from keyturn.domain.jwks import kids_of as jwks_kids
from keyturn.domain.layout import material_item
from keyturn.domain.model import Ring
from keyturn.domain.reasons import RECHECK, Reason, Scope, Violation
from keyturn.domain.spec import HMAC_ALGORITHMS, KidStrategy, Spec

__all__ = ["CHECKS", "Reason", "Scope", "Verdict", "Violation", "evaluate", "recheck_after", "timing_rules"]

Check = Callable[[Inputs], Iterable[Violation]]


@dataclass(frozen=True)
class Verdict:
    """What the checks decided for this pass."""

    # Problems that hold the keyset Stalled (scope KEYSET or ROTATIONS), in check order.
    violations: tuple[Violation, ...]
    # Problems that only degrade it (targets, health, Prometheus, a failing pass).
    degraded: tuple[Violation, ...]
    # The Secret can be written: it is Keyturn's (or absent) and its record was read.
    secret_writable: bool
    # The JWKS ConfigMap can be written: it is Keyturn's (or absent) and was read.
    jwks_writable: bool

    @property
    def stalled(self) -> bool:
        return bool(self.violations)

    @property
    def generate(self) -> bool:
        """A key may be generated: nothing of KEYSET scope stands in the way."""
        return not any(v.scope is Scope.KEYSET for v in self.violations)

    @property
    def recheck(self) -> timedelta | None:
        return recheck_after(self.violations)


def recheck_after(violations: Iterable[Violation]) -> timedelta | None:
    """How soon to look again when a problem is fixed outside the JwtKeySet (no event tells)."""
    return min((RECHECK[v.reason] for v in violations if v.reason in RECHECK), default=None)


# ---------------------------------------------------------------------------------------- checks
def spec_parses(inputs: Inputs) -> Iterator[Violation]:
    if inputs.spec_problem is not None:
        yield inputs.spec_problem


def secret_readable(inputs: Inputs) -> Iterator[Violation]:
    if isinstance(inputs.secret, Violation):
        yield inputs.secret


def secret_is_ours(inputs: Inputs) -> Iterator[Violation]:
    secret = inputs.secret
    if not isinstance(secret, SecretSnapshot) or secret.managed_for(inputs.name):
        return
    owner = secret.owner()
    if owner == inputs.name:  # this keyset's label, its record gone: Keyturn's own Secret, damaged
        yield Violation.of(
            Reason.SECRET_CORRUPT,
            f"Secret {secret.name} carries this keyset's label but no record (annotation "
            f"{STATE_ANNOTATION}, removed by hand?); restore the Secret from a backup (Keyturn writes "
            "nothing over it)",
        )
        return
    why = f"belongs to JwtKeySet {owner}" if owner else "is not managed by Keyturn"
    yield Violation.of(
        Reason.SECRET_CONFLICT,
        f"Secret {secret.name} already exists and {why}; Keyturn never overwrites a Secret it did not "
        "create: remove that Secret if it is not needed, or recreate this JwtKeySet with an unused "
        "spec.secret.name (it cannot change once set)",
    )


def record_readable(inputs: Inputs) -> Iterator[Violation]:
    if isinstance(inputs.ring, Violation) and _ours(inputs):
        yield inputs.ring


def items_are_text(inputs: Inputs) -> Iterator[Violation]:
    secret = inputs.secret
    if isinstance(secret, SecretSnapshot) and secret.binary and _ours(inputs):
        names = ", ".join(sorted(secret.binary))
        yield Violation.of(
            Reason.SECRET_CONFLICT,
            f"Secret {secret.name} holds binary item(s) Keyturn did not write: {names}; Keyturn keeps "
            "them as they are and rotates no key until they are removed",
            Scope.ROTATIONS,
        )


def material_present(inputs: Inputs) -> Iterator[Violation]:
    unusable = missing_material(inputs)
    if unusable:
        secret = inputs.secret
        name = secret.name if isinstance(secret, SecretSnapshot) else inputs.acting.secret.name
        why = "; ".join(f"{kid}: {unusable[kid]}" for kid in sorted(unusable))
        yield Violation.of(
            Reason.SECRET_CORRUPT,
            f"Secret {name} was edited by hand: {why}; restore the Secret from a backup, or revoke the "
            "kid (kubectl keyturn revoke)",
        )


def jwks_is_ours(inputs: Inputs) -> Iterator[Violation]:
    jwks = inputs.jwks
    if isinstance(jwks, Violation):
        yield Violation.of(jwks.reason, jwks.message, Scope.ROTATIONS)
    elif isinstance(jwks, ConfigMapSnapshot) and not publishes_this_keyset(jwks, inputs):
        yield Violation.of(
            Reason.JWKS_CONFLICT,
            f"ConfigMap {inputs.acting.jwks_config_map} already exists and is not this keyset's JWKS; "
            "set spec.jwks.configMapName to an unused name (Keyturn never overwrites it)",
        )


def issuer_unique(inputs: Inputs) -> Iterator[Violation]:
    spec = inputs.spec
    if spec is not None and spec.jwks_issuer is not None and inputs.issuer_rival is not None:
        yield Violation.of(
            Reason.ISSUER_CONFLICT,
            f"spec.jwks.issuer {spec.jwks_issuer} is already claimed by JwtKeySet {inputs.issuer_rival}, "
            "created before this one; an issuer names one key set: set another issuer (or remove it) "
            "on one of the two. Revocations still run; the JWKS is published without the issuer",
        )


def passphrase_present(inputs: Inputs) -> Iterator[Violation]:
    if isinstance(inputs.passphrase, Violation):
        yield inputs.passphrase


def timings(inputs: Inputs) -> Iterator[Violation]:
    if inputs.spec is not None:
        yield from timing_rules(inputs.spec)


def kid_template_numbered(inputs: Inputs) -> Iterator[Violation]:
    spec = inputs.spec
    template = spec.kid_template if spec is not None and spec.kid_strategy is KidStrategy.TEMPLATE else None
    if template and "{n}" not in template:
        yield Violation.of(
            Reason.INVALID_SPEC,
            f"kid.template {template!r} must contain {{n}} so that every key gets a unique kid",
        )


def revoked_kids_known(inputs: Inputs) -> Iterator[Violation]:
    spec, ring = inputs.spec, inputs.ring
    if spec is None or not isinstance(ring, Ring) or not ring.keys:
        # A keyset starting over (new, or its Secret lost) cannot know old kids: the list is then only
        # a deny-list for new kids (see keys/new_keys.py), not a typo to stop for.
        return
    unknown = [r.kid for r in spec.revoked if not ring.known(r.kid)]
    if unknown:
        yield Violation.of(
            Reason.UNKNOWN_KID,
            f"revokedKids names kid(s) this keyset never had: {', '.join(unknown)}; check the kid "
            f"(`kubectl keyturn status {spec.name}` lists them) or remove the entry",
        )


def observed_degradations(inputs: Inputs) -> Iterator[Violation]:
    yield from inputs.degraded


CHECKS: tuple[Check, ...] = (
    spec_parses,
    secret_readable,
    secret_is_ours,
    record_readable,
    items_are_text,
    material_present,
    jwks_is_ours,
    issuer_unique,
    passphrase_present,
    kid_template_numbered,
    timings,
    revoked_kids_known,
    observed_degradations,
)


def evaluate(inputs: Inputs, checks: Iterable[Check] = CHECKS) -> Verdict:
    found = [v for check in checks for v in check(inputs)]
    jwks = inputs.jwks
    return Verdict(
        violations=tuple(v for v in found if v.blocking),
        degraded=tuple(v for v in found if not v.blocking),
        secret_writable=_ours(inputs) and isinstance(inputs.ring, Ring),
        jwks_writable=not inputs.acting.symmetric
        and (jwks is None or (isinstance(jwks, ConfigMapSnapshot) and publishes_this_keyset(jwks, inputs))),
    )


# ---------------------------------------------------------------------------------------- rules
def timing_rules(spec: Spec) -> list[Violation]:
    """The rules between durations that the CRD cannot express."""
    found: list[Violation] = []
    rotation, tokens = spec.rotation, spec.tokens
    cache_ttl = tokens.verifier_cache_ttl or timedelta(0)
    if tokens.max_lifetime is not None or tokens.verifier_cache_ttl is not None:
        needed = (tokens.max_lifetime or timedelta(0)) + cache_ttl
        if rotation.grace_period < needed:
            found.append(
                Violation.of(
                    Reason.GRACE_TOO_SHORT,
                    f"rotation.gracePeriod {format_duration(rotation.grace_period)} is shorter than "
                    f"tokens.maxLifetime + tokens.verifierCacheTTL ({format_duration(needed)}): tokens "
                    f"signed just before a rotation would be rejected; raise gracePeriod to at least "
                    f"{format_duration(needed)}",
                )
            )
        if rotation.publish_ahead < cache_ttl:
            found.append(
                Violation.of(
                    Reason.PUBLISH_AHEAD_TOO_SHORT,
                    f"rotation.publishAhead {format_duration(rotation.publish_ahead)} is shorter than "
                    f"tokens.verifierCacheTTL {format_duration(cache_ttl)}: verifiers with a cached JWKS "
                    f"would reject the new key; raise publishAhead to at least {format_duration(cache_ttl)}",
                )
            )
    if rotation.retention < rotation.grace_period:
        found.append(
            Violation.of(
                Reason.RETENTION_TOO_SHORT,
                f"rotation.retention {format_duration(rotation.retention)} is shorter than "
                f"rotation.gracePeriod {format_duration(rotation.grace_period)}: private keys would be "
                f"deleted while their public keys are still published; raise retention",
            )
        )
    return found


def missing_material(inputs: Inputs) -> dict[str, str]:
    """Kids the record says have private material that the Secret does not hold usable: why."""
    secret, ring = inputs.secret, inputs.ring
    if not isinstance(secret, SecretSnapshot) or not isinstance(ring, Ring) or not _ours(inputs):
        return {}
    absent = {
        k.kid: "its private key item is missing"
        for k in ring.keys
        if k.has_material and material_item(k.kid, k.algorithm in HMAC_ALGORITHMS) not in secret.data
    }
    return {**inputs.damaged, **absent}


def publishes_this_keyset(snapshot: ConfigMapSnapshot, inputs: Inputs) -> bool:
    """Whether the JWKS ConfigMap is this keyset's own, so Keyturn may write it.

    Its keyset label decides. Without one (a person stripped the labels), it is this keyset's when
    the document it holds publishes only kids this keyset knows; an empty document only when it
    still carries Keyturn's managed-by label. Anything else was written by someone else.
    """
    owner = snapshot.labels.get(KEYSET_LABEL)
    if owner is not None:
        return owner == inputs.name
    kids = jwks_kids(snapshot.data.get(inputs.acting.jwks_key))
    if kids is None:
        return False
    if not kids:
        return all(snapshot.labels.get(k) == v for k, v in MANAGED_BY.items())
    ring = inputs.ring
    return isinstance(ring, Ring) and all(ring.known(kid) for kid in kids)


def _ours(inputs: Inputs) -> bool:
    """The Secret is absent (to be created) or Keyturn's own for this keyset."""
    secret = inputs.secret
    return secret is None or (isinstance(secret, SecretSnapshot) and secret.managed_for(inputs.name))
