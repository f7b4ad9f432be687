"""The Reason vocabulary, the scope of a problem, and the reason sets kept next to the enum.

A Reason is at once a condition reason, an Event reason and a metric label, so an alert, a
`kubectl describe` and a dashboard all speak the same words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Final


class Reason(StrEnum):
    # Steady state and progress.
    READY = "KeysReady"
    INITIALIZING = "Initializing"
    INITIALIZED = "KeysInitialized"
    KEY_PUBLISHED = "KeyPublished"
    ROTATED = "KeyRotated"
    AWAITING_PUBLISH_AHEAD = "AwaitingPublishAhead"
    AWAITING_VERIFIERS = "AwaitingVerifiers"
    AWAITING_PROPAGATION = "AwaitingPropagation"
    KEY_RETIRED = "KeyRetired"
    KEY_PURGED = "KeyPurged"
    # Revocation.
    KEY_REVOKED = "KeyRevoked"
    EMERGENCY_HANDLED = "EmergencyHandled"
    EMERGENCY_REJECTED = "EmergencyRejected"
    NO_SIGNING_KEY = "NoSigningKey"
    # Rollback.
    ROLLED_BACK = "RolledBack"
    ROLLBACK_IMPOSSIBLE = "RollbackImpossible"
    # Rollout and analysis.
    ROLLOUT_PROGRESSING = "RolloutProgressing"
    ROLLOUT_COMPLETE = "RolloutComplete"
    TARGET_FAILED = "TargetFailed"
    BAD_TARGET = "BadTarget"
    TARGETS_UNREADABLE = "TargetsUnreadable"
    ROLLOUT_PAUSED = "RolloutPaused"
    ANALYSIS_RUNNING = "AnalysisRunning"
    ANALYSIS_PASSED = "AnalysisPassed"
    ANALYSIS_FAILED = "AnalysisFailed"
    ANALYSIS_INCONCLUSIVE = "AnalysisInconclusive"
    # The propagation gate: consumers have not accepted the next key within spec.propagation.timeout.
    PROPAGATION_TIMEOUT = "PropagationTimeout"
    # Stalled: the spec or the cluster needs a person.
    INVALID_SPEC = "InvalidSpec"
    GRACE_TOO_SHORT = "GracePeriodTooShort"
    PUBLISH_AHEAD_TOO_SHORT = "PublishAheadTooShort"
    RETENTION_TOO_SHORT = "RetentionTooShort"
    UNKNOWN_KID = "UnknownKid"
    PASSPHRASE_MISSING = "PassphraseMissing"
    SECRET_CONFLICT = "SecretConflict"
    JWKS_CONFLICT = "JwksConflict"
    ISSUER_CONFLICT = "IssuerConflict"
    SECRET_CORRUPT = "SecretCorrupt"
    KEY_GENERATION_FAILED = "KeyGenerationFailed"
    SECRET_LOST = "SecretLost"
    READ_FAILED = "ReadFailed"
    # Degraded: something around the keyset misbehaves; the keys are fine.
    RECONCILE_ERROR = "ReconcileError"
    # Log lines only (never a condition): what a pass wrote, and why it starts over.
    SECRET_WRITTEN = "SecretWritten"
    JWKS_PUBLISHED = "JwksPublished"
    WRITE_CONFLICT = "Conflict"
    STARTING = "Starting"


class Scope(StrEnum):
    """What a problem holds back. The emergency path (revocations, status.emergency) runs under all."""

    KEYSET = "keyset"  # nothing but the emergency path runs, and it generates no key
    ROTATIONS = "rotations"  # nothing but the emergency path runs; it may generate a key
    DEGRADED = "degraded"  # everything runs; the keyset shows Degraded


# The scope a reason has unless the check that found it says otherwise.
SCOPES: Final[Mapping[Reason, Scope]] = {
    Reason.INVALID_SPEC: Scope.KEYSET,
    Reason.SECRET_CONFLICT: Scope.KEYSET,
    Reason.SECRET_CORRUPT: Scope.KEYSET,
    Reason.PASSPHRASE_MISSING: Scope.KEYSET,
    Reason.KEY_GENERATION_FAILED: Scope.KEYSET,
    Reason.READ_FAILED: Scope.KEYSET,
    Reason.GRACE_TOO_SHORT: Scope.ROTATIONS,
    Reason.PUBLISH_AHEAD_TOO_SHORT: Scope.ROTATIONS,
    Reason.RETENTION_TOO_SHORT: Scope.ROTATIONS,
    Reason.UNKNOWN_KID: Scope.ROTATIONS,
    Reason.JWKS_CONFLICT: Scope.ROTATIONS,
    Reason.ISSUER_CONFLICT: Scope.ROTATIONS,
}

# Problems fixed outside the JwtKeySet, which no watch event reports: looked at again this often.
RECHECK: Final[Mapping[Reason, timedelta]] = {
    Reason.PASSPHRASE_MISSING: timedelta(seconds=10),
    Reason.SECRET_CONFLICT: timedelta(seconds=10),
    Reason.JWKS_CONFLICT: timedelta(seconds=10),
    # The older keyset may let the issuer go (edited or deleted); its events also wake this one.
    Reason.ISSUER_CONFLICT: timedelta(seconds=30),
    Reason.SECRET_CORRUPT: timedelta(seconds=10),
    Reason.READ_FAILED: timedelta(seconds=10),
    # A failed key generation (e.g. a kid template that cannot yield a new kid) is retried this often.
    Reason.KEY_GENERATION_FAILED: timedelta(minutes=1),
}


@dataclass(frozen=True)
class Violation:
    """A named problem: its reason, a message that says what to do, and what it holds back."""

    reason: Reason
    message: str
    scope: Scope = field(default=Scope.DEGRADED)

    @classmethod
    def of(cls, reason: Reason, message: str, scope: Scope | None = None) -> Violation:
        """A violation with its reason's usual scope (SCOPES), unless one is given."""
        return cls(reason, message, scope or SCOPES.get(reason, Scope.DEGRADED))

    @property
    def blocking(self) -> bool:
        return self.scope is not Scope.DEGRADED
