"""What the signer answers, as pure functions of the keyset's spec, its ring and the time.

- which keys verify (FetchKeys): the ring's verifying keys, exactly what the operator publishes
  in the JWKS ConfigMap: current, next (published ahead of its activation), previous and failed
  (until their grace is over); a revoked or retired key is not there;
- the refresh hint: when kube-apiserver should ask again, from the schedule;
- the header of a signed token and the longest token lifetime the keyset allows.

kube-apiserver verifies RS256 and ES256/384/512 tokens only (k8s.io/externaljwt's contract), so
a keyset of any other algorithm is refused here, before anything is served.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from typing import Final

from keyturn.domain.durations import format_duration
from keyturn.domain.model import Key, KeyState, Ring
from keyturn.domain.schedule import activation_time
from keyturn.domain.spec import Spec
from keyturn.keys.material import b64url
from keyturn.sasigner.errors import KeysetRefused

# The algorithms kube-apiserver accepts from an external signer (its plugin refuses the others).
SUPPORTED_ALGORITHMS: Final = ("RS256", "ES256", "ES384", "ES512")
# kube-apiserver refuses a signer whose tokens may live less than this (validation.MinTokenAgeSec).
MIN_TOKEN_EXPIRATION: Final = timedelta(minutes=10)
# The refresh hint never exceeds this: a revocation is never on the schedule, and the apiserver
# only drops a revoked key from its own cache when it asks again (its fallback after an error is
# 10 s too). It asks over a local socket and the answer comes from memory: asking often is cheap.
MAX_REFRESH_HINT: Final = 10
MIN_REFRESH_HINT: Final = 1
# Asked this long after a scheduled change, the apiserver sees the operator's write of it.
REFRESH_SLACK: Final = 1


def check_servable(spec: Spec) -> None:
    """KeysetRefused unless kube-apiserver can use the keyset's tokens and lifetimes."""
    if spec.algorithm not in SUPPORTED_ALGORITHMS:
        raise KeysetRefused(
            f"JwtKeySet {spec.namespace}/{spec.name}: spec.algorithm {spec.algorithm} cannot sign "
            f"ServiceAccount tokens: kube-apiserver accepts only {', '.join(SUPPORTED_ALGORITHMS)}"
        )
    max_token_expiration_seconds(spec)


def max_token_expiration_seconds(spec: Spec) -> int:
    """Metadata's max_token_expiration_seconds: tokens.maxLifetime, which the keyset must set.

    Without it nothing bounds how long a token outlives its key's grace period (the operator
    checks gracePeriod >= maxLifetime + verifierCacheTTL only when it is set), so it is required.
    """
    lifetime = spec.tokens.max_lifetime
    where = f"JwtKeySet {spec.namespace}/{spec.name}: spec.tokens.maxLifetime"
    if lifetime is None:
        raise KeysetRefused(
            f"{where} is not set: the signer tells kube-apiserver the longest token lifetime it "
            "allows, and Keyturn checks rotation.gracePeriod against it; set it (e.g. 24h)"
        )
    if lifetime < MIN_TOKEN_EXPIRATION:
        raise KeysetRefused(
            f"{where} {format_duration(lifetime)} is shorter than the "
            f"{format_duration(MIN_TOKEN_EXPIRATION)} kube-apiserver requires of a signer"
        )
    return int(lifetime.total_seconds())


def verifying_keys(ring: Ring) -> tuple[Key, ...]:
    """FetchKeys' keys, in JWKS order; keys of an algorithm the apiserver cannot use are left out
    (no token the signer issues can be signed by one)."""
    return tuple(k for k in ring.verifying() if k.algorithm in SUPPORTED_ALGORITHMS)


def signing_key(ring: Ring) -> Key | None:
    """The key that signs: the current one, and only if the apiserver accepts its algorithm."""
    current = ring.current
    return current if current is not None and current.algorithm in SUPPORTED_ALGORITHMS else None


def refresh_hint_seconds(spec: Spec, ring: Ring, now: datetime) -> int:
    """Seconds until kube-apiserver should call FetchKeys again.

    Just after the next scheduled change of the key set (a demoted key's grace ends, or the next
    key activates, after which the operator publishes a fresh next key), and never later than
    MAX_REFRESH_HINT: unscheduled changes (a revocation, a manual rotation) must reach it soon.
    A change already overdue (held by analysis, propagation or a window) gives no hint.
    """
    changes = [
        k.remove_from_jwks_at
        for k in ring.keys
        if k.state in (KeyState.PREVIOUS, KeyState.FAILED) and k.remove_from_jwks_at is not None
    ]
    current, nxt = ring.current, ring.next
    if current is not None and nxt is not None and not spec.suspend:
        at, _ = activation_time(spec.rotation, current, nxt, now, manual=False, held=False)
        if at is not None:
            changes.append(at)
    upcoming = [moment - now for moment in changes if moment > now]
    if not upcoming:
        return MAX_REFRESH_HINT
    seconds = math.ceil(min(upcoming).total_seconds()) + REFRESH_SLACK
    return max(MIN_REFRESH_HINT, min(MAX_REFRESH_HINT, seconds))


def header(algorithm: str, kid: str) -> str:
    """The token's header, base64url: exactly alg, kid and typ JWT (the apiserver refuses any other
    member, and a kid longer than 1024 characters)."""
    if algorithm not in SUPPORTED_ALGORITHMS:
        raise ValueError(f"{algorithm} is not an algorithm kube-apiserver accepts")
    if not kid or len(kid) > 1024:
        raise ValueError("a kid must have 1 to 1024 characters")
    document = {"alg": algorithm, "kid": kid, "typ": "JWT"}
    return b64url(json.dumps(document, separators=(",", ":")).encode("utf-8"))
