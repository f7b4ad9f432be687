"""domain/policies.py: the checks that hold a keyset Stalled, and what they let through."""

from __future__ import annotations

from keyturn.domain.model import Ring
from keyturn.domain.reasons import Reason
from planning import T0, initialized, spec, step, violations


def test_revoked_kids_of_a_keyset_starting_over_are_a_deny_list_not_a_stall() -> None:
    listed = spec(revokedKids=[{"kid": "old-1", "reason": "key_compromise"}])
    assert violations(listed, Ring()) == []  # new keyset, or its Secret was lost
    started = step(listed, Ring(), T0).ring
    assert "old-1" in started.revoked_kids  # remembered: known from now on, never generated
    assert violations(listed, started) == []
    _, ring = initialized()
    assert [v.reason for v in violations(listed, ring)] == [Reason.UNKNOWN_KID]
