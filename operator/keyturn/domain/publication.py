"""What the JWKS ConfigMap carries besides the document: the annotations `keyturn serve-jwks` reads.

They are derived from the spec and the ring only (never from the clock), so they change only when
one of those does: a pass with nothing due writes nothing (invariant 7).
"""

from __future__ import annotations

from datetime import datetime

from keyturn.domain.annotations import CACHE_TTL_ANNOTATION, ISSUER_ANNOTATION, NEXT_CHANGE_ANNOTATION
from keyturn.domain.model import KeyState, Ring
from keyturn.domain.record import timestamp
from keyturn.domain.schedule import END_OF_TIME, earliest, scheduled_activation
from keyturn.domain.spec import Spec


def next_change(spec: Spec, ring: Ring) -> datetime | None:
    """When the published document is next due to change, or None when nothing is scheduled.

    The earliest of the next scheduled activation (the document then gains a new next key) and the
    end of every demoted key's grace period (it then leaves). Revocations, manual rotations and
    rollbacks are not scheduled: verifiers bound their staleness by max-age, which the cache TTL
    and the server's cap keep short. When the activation is overdue (held by a rollout, a paused
    analysis) the instant is in the past and the server answers max-age=0 until it happens.
    """
    moments: list[datetime | None] = [
        k.remove_from_jwks_at
        for k in ring.keys
        if k.state in (KeyState.PREVIOUS, KeyState.FAILED) and k.remove_from_jwks_at is not None
    ]
    current, nxt = ring.current, ring.next
    if current is not None and nxt is not None and not spec.suspend:
        moments.append(scheduled_activation(spec.rotation, current, nxt))
    soonest = earliest(*moments)
    return None if soonest is None or soonest >= END_OF_TIME else soonest


def jwks_annotations(spec: Spec, ring: Ring, *, issuer: str | None) -> dict[str, str]:
    """The annotations the JWKS ConfigMap must carry; `issuer` is None while another keyset holds it."""
    out: dict[str, str] = {}
    if issuer is not None:
        out[ISSUER_ANNOTATION] = issuer
    moment = next_change(spec, ring)
    if moment is not None:
        out[NEXT_CHANGE_ANNOTATION] = timestamp(moment)
    ttl = spec.tokens.verifier_cache_ttl
    if ttl is not None:
        out[CACHE_TTL_ANNOTATION] = str(int(ttl.total_seconds()))
    return out
