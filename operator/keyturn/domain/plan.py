"""What the planner decides: the Plan of one pass, and the vocabulary it is written in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from keyturn.domain.model import KeyState, Ring
from keyturn.domain.reasons import Reason, Violation


class PlanMode(StrEnum):
    """FULL: every rule. EMERGENCY: the keyset is Stalled; only revocations and emergencies run."""

    FULL = "full"
    EMERGENCY = "emergency"


@dataclass(frozen=True)
class Notice:
    """An Event to post; `kids` are for the log line, never key material."""

    reason: Reason
    message: str
    warning: bool = False
    kids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Move:
    """One state change of a key in a pass (None: not in the record before / after)."""

    kid: str
    old: KeyState | None
    new: KeyState | None


@dataclass(frozen=True)
class Plan:
    ring: Ring
    # When > 0, the planner needs that many fresh keys: generate them and plan again.
    needs_fresh: int = 0
    notices: tuple[Notice, ...] = ()
    wake_at: datetime | None = None
    next_rotation_at: datetime | None = None
    # Why a due rotation has not happened yet (for the phase and the Reconciling condition), and
    # the condition's message when the reason needs one (the measured share of the propagation gate).
    waiting: Reason | None = None
    waiting_message: str = ""
    # The current key's analysis wants a person: Pause or Inconclusive.
    paused: Reason | None = None
    paused_message: str = ""
    # Plan again at once: after a revocation the next key is prepared in a second pass, so that
    # generating it (up to a second for RSA-4096) never delays the revocation itself.
    requeue: bool = False
    # Every state change of the pass, in order; each one is in model.TRANSITIONS.
    moves: tuple[Move, ...] = ()
    # Problems the planner found around the keyset (a propagation timeout): Degraded, never blocking.
    degraded: tuple[Violation, ...] = ()
