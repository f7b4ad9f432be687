"""Named safety checks and the Reason vocabulary.

A Reason is at once a condition reason, an Event reason and a metric label, so an alert, a
`kubectl describe` and a dashboard all speak the same words.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from keyturn.domain.durations import format_duration
from keyturn.domain.model import Ring
from keyturn.domain.schedule import cron_is_valid
from keyturn.domain.spec import Spec


class Reason(StrEnum):
    # Steady state and progress.
    READY = "KeysReady"
    INITIALIZED = "KeysInitialized"
    KEY_PUBLISHED = "KeyPublished"
    ROTATED = "KeyRotated"
    AWAITING_PUBLISH_AHEAD = "AwaitingPublishAhead"
    AWAITING_VERIFIERS = "AwaitingVerifiers"
    KEY_RETIRED = "KeyRetired"
    KEY_PURGED = "KeyPurged"
    # Revocation.
    KEY_REVOKED = "KeyRevoked"
    EMERGENCY_HANDLED = "EmergencyHandled"
    EMERGENCY_REJECTED = "EmergencyRejected"
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
    # Stalled: the spec or the cluster needs a person.
    INVALID_SPEC = "InvalidSpec"
    GRACE_TOO_SHORT = "GracePeriodTooShort"
    PUBLISH_AHEAD_TOO_SHORT = "PublishAheadTooShort"
    RETENTION_TOO_SHORT = "RetentionTooShort"
    UNKNOWN_KID = "UnknownKid"
    PASSPHRASE_MISSING = "PassphraseMissing"
    SECRET_CONFLICT = "SecretConflict"
    JWKS_CONFLICT = "JwksConflict"
    SECRET_CORRUPT = "SecretCorrupt"
    KEY_GENERATION_FAILED = "KeyGenerationFailed"
    SECRET_LOST = "SecretLost"


@dataclass(frozen=True)
class Violation:
    reason: Reason
    message: str


def check(spec: Spec, ring: Ring) -> list[Violation]:
    """Every rule the CRD cannot express; any violation holds the keyset Stalled."""
    found: list[Violation] = []
    rotation, tokens = spec.rotation, spec.tokens
    cache_ttl = tokens.verifier_cache_ttl or timedelta(0)
    if tokens.max_lifetime is not None or tokens.verifier_cache_ttl is not None:
        needed = (tokens.max_lifetime or timedelta(0)) + cache_ttl
        if rotation.grace_period < needed:
            found.append(
                Violation(
                    Reason.GRACE_TOO_SHORT,
                    f"rotation.gracePeriod {format_duration(rotation.grace_period)} is shorter than "
                    f"tokens.maxLifetime + tokens.verifierCacheTTL ({format_duration(needed)}): tokens "
                    f"signed just before a rotation would be rejected; raise gracePeriod to at least "
                    f"{format_duration(needed)}",
                )
            )
        if rotation.publish_ahead < cache_ttl:
            found.append(
                Violation(
                    Reason.PUBLISH_AHEAD_TOO_SHORT,
                    f"rotation.publishAhead {format_duration(rotation.publish_ahead)} is shorter than "
                    f"tokens.verifierCacheTTL {format_duration(cache_ttl)}: verifiers with a cached JWKS "
                    f"would reject the new key; raise publishAhead to at least {format_duration(cache_ttl)}",
                )
            )
    if rotation.retention < rotation.grace_period:
        found.append(
            Violation(
                Reason.RETENTION_TOO_SHORT,
                f"rotation.retention {format_duration(rotation.retention)} is shorter than "
                f"rotation.gracePeriod {format_duration(rotation.grace_period)}: private keys would be "
                f"deleted while their public keys are still published; raise retention",
            )
        )
    if rotation.schedule is not None and not cron_is_valid(rotation.schedule):
        found.append(
            Violation(
                Reason.INVALID_SPEC,
                f"rotation.schedule {rotation.schedule!r} is not a valid 5-field cron expression",
            )
        )
    if spec.kid_strategy == "Template" and spec.kid_template and "{n}" not in spec.kid_template:
        found.append(
            Violation(
                Reason.INVALID_SPEC,
                f"kid.template {spec.kid_template!r} must contain {{n}} so that every key gets a unique kid",
            )
        )
    # A keyset starting over (new, or its Secret lost) cannot know old kids: the list is then only a
    # deny-list for new kids (see keygen), not a typo to stop for.
    unknown = [r.kid for r in spec.revoked if not ring.known(r.kid)] if ring.keys else []
    if unknown:
        found.append(
            Violation(
                Reason.UNKNOWN_KID,
                f"revokedKids names kid(s) this keyset never had: {', '.join(unknown)}; "
                f"check the kid (`kubectl keyturn status {spec.name}` lists them) or remove the entry",
            )
        )
    return found
