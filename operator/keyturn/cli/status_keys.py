"""status.keys read totally: what the CLI checks locally before it asks Keyturn for anything.

Anyone allowed to patch the status subresource can write status.keys, so nothing here trusts a
type or a shape: an entry that cannot be read is left out, never an exception. Keyturn itself
decides from its own record in the Secret; these reads only spare a round trip for a request that
Keyturn would refuse anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from keyturn.cli.output import parse_time
from keyturn.domain.model import KeyState

# A createdAt that cannot be read orders before every real time: the key is still a candidate.
UNKNOWN_TIME = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class StatusKey:
    """One readable entry of status.keys: what `domain.model.rollback_target` needs."""

    kid: str
    state: KeyState
    created_at: datetime
    demoted_at: datetime | None
    # Its place in status.keys: Keyturn lists keys in the order it created them, as serials go.
    serial: int


def _entries(status: object) -> list[Any]:
    keys = status.get("keys") if isinstance(status, Mapping) else None
    return keys if isinstance(keys, list) else []


def read_status_keys(status: object) -> tuple[StatusKey, ...]:
    """The entries of status.keys with a kid and a known state, of a status of any shape."""
    out = []
    for place, entry in enumerate(_entries(status)):
        if not isinstance(entry, Mapping):
            continue
        kid, state = entry.get("kid"), entry.get("state")
        if not isinstance(kid, str) or not kid or not isinstance(state, str):
            continue
        try:
            known = KeyState(state)
        except ValueError:
            continue
        created = parse_time(entry.get("createdAt")) or UNKNOWN_TIME
        out.append(StatusKey(kid, known, created, parse_time(entry.get("demotedAt")), place))
    return tuple(out)


def keys_by_kid(status: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The entries of status.keys that are objects, by kid as text, as status has them."""
    return {str(k.get("kid")): k for k in _entries(status) if isinstance(k, Mapping)}
