"""What people asked for, read totally from the JwtKeySet object: annotation tokens and the
emergency request in status.

Both come from anyone who can patch the object, so nothing here trusts a type or a shape: a value
that cannot be read becomes a request that is rejected with a message, never an exception.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

from keyturn.domain.annotations import ROLLBACK_ANNOTATION, ROTATE_ANNOTATION

DEFAULT_EMERGENCY_REASON = "key_compromise"
# The CRD bounds these too; a bypassed schema must not make Keyturn store megabytes in its record.
MAX_TOKEN = 253
MAX_KIDS = 64
MAX_TEXT = 256


@dataclass(frozen=True)
class Emergency:
    """status.emergency as a person (or `kubectl keyturn revoke`) wrote it."""

    request_id: str
    reason: str = DEFAULT_EMERGENCY_REASON
    revoke_kids: tuple[str, ...] = ()
    revoke_all: bool = False
    # Set when the request cannot be acted on as written: it is acknowledged as Rejected with this.
    problem: str | None = None

    @property
    def digest(self) -> str:
        """What was asked, in a few characters: a reused requestId asking for more is caught by it."""
        asked = json.dumps([self.reason, sorted(self.revoke_kids), self.revoke_all, self.problem])
        return hashlib.sha256(asked.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Requests:
    """What people asked for: annotation tokens and the emergency request."""

    rotate: str | None = None
    rollback: str | None = None
    emergency: Emergency | None = None


def read_requests(obj: object) -> Requests:
    """The requests of a keyset object of any shape."""
    meta = _mapping(_get(obj, "metadata"))
    annotations = _mapping(meta.get("annotations"))
    status = _mapping(_get(obj, "status"))
    return Requests(
        rotate=_token(annotations.get(ROTATE_ANNOTATION)),
        rollback=_token(annotations.get(ROLLBACK_ANNOTATION)),
        emergency=read_emergency(status.get("emergency")),
    )


def read_emergency(raw: object) -> Emergency | None:
    """None without a usable requestId (nothing could acknowledge it); otherwise a request, with
    `problem` set when its other fields cannot be read."""
    request = _mapping(raw)
    request_id = request.get("requestId")
    if isinstance(request_id, bool) or not isinstance(request_id, str | int):
        return None
    request_id = str(request_id)
    if not request_id or len(request_id) > MAX_TOKEN:
        return None
    problems: list[str] = []
    reason = request.get("reason")
    if reason is None or reason == "":
        reason = DEFAULT_EMERGENCY_REASON
    elif not isinstance(reason, str) or len(reason) > MAX_TEXT:
        problems.append("reason must be a string of at most 256 characters")
        reason = DEFAULT_EMERGENCY_REASON
    kids = request.get("revokeKids")
    revoke_kids: tuple[str, ...] = ()
    if kids is not None:
        if not isinstance(kids, list | tuple) or len(kids) > MAX_KIDS:
            problems.append(f"revokeKids must be a list of at most {MAX_KIDS} kids")
        elif not all(isinstance(k, str) and 0 < len(k) <= MAX_TOKEN for k in kids):
            problems.append("every revokeKids entry must be a non-empty kid")
        else:
            revoke_kids = tuple(dict.fromkeys(kids))
    revoke_all = request.get("revokeAll", False)
    if revoke_all is None:
        revoke_all = False
    if not isinstance(revoke_all, bool):
        problems.append("revokeAll must be true or false")
        revoke_all = False
    return Emergency(
        request_id=request_id,
        reason=reason,
        revoke_kids=revoke_kids,
        revoke_all=revoke_all,
        problem="; ".join(problems) or None,
    )


def read_revocations(raw_spec: object) -> tuple[tuple[str, str], ...]:
    """spec.revokedKids as (kid, reason) pairs, readable even when the rest of the spec is not:
    a declarative revocation must work while the keyset is Stalled on an unrelated field."""
    entries = _get(raw_spec, "revokedKids")
    if not isinstance(entries, list | tuple):
        return ()
    out: dict[str, str] = {}
    for entry in entries[: MAX_KIDS * 16]:
        item = _mapping(entry)
        kid, reason = item.get("kid"), item.get("reason")
        if isinstance(kid, str) and 0 < len(kid) <= MAX_TOKEN and kid not in out:
            out[kid] = reason if isinstance(reason, str) and reason else "unspecified"
    return tuple(out.items())


def _get(obj: object, key: str) -> object:
    return obj.get(key) if isinstance(obj, Mapping) else None


def _mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _token(value: object) -> str | None:
    if isinstance(value, str) and value:
        return value[:MAX_TOKEN]
    return None


def urgent(obj: object) -> bool:
    """A revocation waits on this keyset: an emergency request without an answer, or a revokedKids
    entry whose key status does not show revoked yet. Such a keyset's pass jumps the queue."""
    status = _mapping(_get(obj, "status"))
    request = _mapping(status.get("emergency"))
    if request.get("requestId") and not request.get("result"):
        return True
    keys = status.get("keys")
    states = (
        {_mapping(k).get("kid"): _mapping(k).get("state") for k in keys} if isinstance(keys, list) else {}
    )
    return any(kid in states and states[kid] != "revoked" for kid, _ in read_revocations(_get(obj, "spec")))
