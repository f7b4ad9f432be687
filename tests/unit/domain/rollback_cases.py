"""The rollback-target table: keys in their states, and the key a rollback makes sign again.

One table for both readers of the rule: the planner's keys (tests/unit/domain/test_model.py) and the
CLI's view of them through status.keys (tests/unit/cli/test_annotation_requests.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from keyturn.domain.model import Key, KeyState

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class K:
    """A key of the table: its state, and its creation and demotion as days after T0."""

    kid: str
    state: KeyState
    created: int
    demoted: int | None = None


@dataclass(frozen=True)
class Case:
    keys: tuple[K, ...]  # in creation order, as the record and status.keys list them
    target: str | None


CURRENT = K("cur", KeyState.CURRENT, 30)
CASES = {
    "no keys at all: nothing to roll back to": Case((), None),
    "only a current and a next key: nothing to roll back to": Case(
        (CURRENT, K("nxt", KeyState.NEXT, 31)), None
    ),
    "failed, retired and revoked keys never sign again": Case(
        (
            K("ret", KeyState.RETIRED, 1, 2),
            K("rev", KeyState.REVOKED, 3, 4),
            K("fail", KeyState.FAILED, 5, 29),
            CURRENT,
        ),
        None,
    ),
    "the one previous key": Case((K("prev", KeyState.PREVIOUS, 10, 30), CURRENT), "prev"),
    "the most recently demoted previous key, not the youngest": Case(
        (K("older", KeyState.PREVIOUS, 1, 20), K("younger", KeyState.PREVIOUS, 10, 15), CURRENT), "older"
    ),
    "a previous key without a demotion time counts from its creation": Case(
        (K("demoted", KeyState.PREVIOUS, 1, 12), K("undated", KeyState.PREVIOUS, 14), CURRENT), "undated"
    ),
    "a tie on the time goes to the key created last": Case(
        (K("first", KeyState.PREVIOUS, 1, 20), K("second", KeyState.PREVIOUS, 5, 20), CURRENT), "second"
    ),
    "a newer failed key does not hide an older previous one": Case(
        (K("prev", KeyState.PREVIOUS, 1, 10), K("fail", KeyState.FAILED, 20, 29), CURRENT), "prev"
    ),
}


def keys_of(case: Case) -> list[Key]:
    """The table's keys as the record holds them: serials in creation order."""
    return [
        Key(
            kid=k.kid,
            state=k.state,
            algorithm="ES256",
            serial=serial,
            created_at=T0 + k.created * DAY,
            demoted_at=None if k.demoted is None else T0 + k.demoted * DAY,
        )
        for serial, k in enumerate(case.keys, start=1)
    ]
