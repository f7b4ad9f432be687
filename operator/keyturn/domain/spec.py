"""The JwtKeySet spec as typed values: the algorithms, the choices, and the defaults.

`domain.spec_parser.parse_spec` turns a spec of any shape into these, or a SpecError.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from keyturn.keys.algorithms import FAMILY, RSA_KEY_SIZES, hash_size

# One table of algorithms (keys/algorithms.py, a leaf module); these are its views for the spec.
RSA_ALGORITHMS = frozenset(a for a, f in FAMILY.items() if f == "RSA")
EC_ALGORITHMS = frozenset(a for a, f in FAMILY.items() if f == "EC")
HMAC_ALGORITHMS = frozenset(a for a, f in FAMILY.items() if f == "HMAC")
ALGORITHMS = frozenset(FAMILY)
HMAC_MIN_BYTES = {a: hash_size(a) for a in sorted(HMAC_ALGORITHMS)}
HMAC_MAX_BYTES = 1024  # the CRD's maximum of secretLength
RSA_SIZES = RSA_KEY_SIZES
MAX_ANALYSIS_COUNT = 100
MAX_SCHEDULE_LENGTH = 128

# Defaults of the fields people set most: spec_parser applies them, `kubectl keyturn` shows them.
DEFAULT_ALGORITHM = "RS256"
DEFAULT_RSA_SIZE = 2048
DEFAULT_INTERVAL = "90d"
DEFAULT_PUBLISH_AHEAD = "1h"
DEFAULT_GRACE_PERIOD = "30d"
DEFAULT_RETENTION = "180d"
DEFAULT_JWKS_KEY = "jwks.json"
# The propagation gate's defaults: the share of scraped instances that accept the kid.
DEFAULT_PROPAGATION_QUERY = (
    'count(jwt_keys_loaded{kid="$kid"}) / count(count by (instance) (jwt_keys_loaded))'
)
DEFAULT_PROPAGATION_THRESHOLD = "1"
DEFAULT_PROPAGATION_INTERVAL = "15s"
DEFAULT_PROPAGATION_TIMEOUT = "1h"
MAX_PROPAGATION_QUERY = 4096


class SpecError(ValueError):
    """The spec cannot be acted on; the message says which field and how to fix it."""


class KidStrategy(StrEnum):
    THUMBPRINT = "Thumbprint"
    TEMPLATE = "Template"


class DeletionPolicy(StrEnum):
    RETAIN = "Retain"
    DELETE = "Delete"


class OnFailure(StrEnum):
    """rollout.onFailure and analysis.onFailure."""

    ROLLBACK = "Rollback"
    PAUSE = "Pause"


class OnNoData(StrEnum):
    PASS = "Pass"  # noqa: S105 - a verdict, not a password
    FAIL = "Fail"
    INCONCLUSIVE = "Inconclusive"


class Slot(StrEnum):
    CURRENT = "current"
    PREVIOUS = "previous"
    NEXT = "next"


class ItemFormat(StrEnum):
    PEM = "pem"
    PUBLIC_PEM = "public-pem"
    JWK = "jwk"
    RAW = "raw"
    KID = "kid"
    JWKS = "jwks"


@dataclass(frozen=True)
class SecretItem:
    key: str
    format: ItemFormat
    slot: Slot = Slot.CURRENT


@dataclass(frozen=True)
class Window:
    start: tuple[int, int]
    end: tuple[int, int]


@dataclass(frozen=True)
class Rotation:
    interval: timedelta | None
    schedule: str | None
    time_zone: ZoneInfo
    window: Window | None
    publish_ahead: timedelta
    grace_period: timedelta
    retention: timedelta


@dataclass(frozen=True)
class Tokens:
    max_lifetime: timedelta | None = None
    verifier_cache_ttl: timedelta | None = None


@dataclass(frozen=True)
class PassphraseRef:
    name: str
    key: str


@dataclass(frozen=True)
class SecretSpec:
    name: str
    deletion_policy: DeletionPolicy
    items: tuple[SecretItem, ...]
    passphrase: PassphraseRef | None


@dataclass(frozen=True)
class RolloutSpec:
    timeout: timedelta = timedelta(minutes=10)
    pause_between: timedelta = timedelta(seconds=10)
    on_failure: OnFailure = OnFailure.ROLLBACK


@dataclass(frozen=True)
class AnalysisSpec:
    address: str
    query: str
    success_threshold: float
    initial_delay: timedelta
    interval: timedelta
    count: int
    failure_limit: int
    on_no_data: OnNoData
    on_failure: OnFailure

    @property
    def window(self) -> timedelta:
        """At most MAX_DURATION: parse_spec refuses longer analyses."""
        return self.initial_delay + self.interval * self.count


@dataclass(frozen=True)
class PropagationSpec:
    """spec.propagation: a due activation waits until `query` for the next kid reaches `threshold`."""

    address: str
    query: str  # with $kid (and maybe $namespace, $keyset) inside quoted strings; see domain.propagation
    threshold: float
    interval: timedelta
    timeout: timedelta


@dataclass(frozen=True)
class Revocation:
    kid: str
    reason: str


@dataclass(frozen=True)
class Spec:
    name: str
    namespace: str
    algorithm: str
    key_size: int | None
    secret_length: int | None
    kid_strategy: KidStrategy
    kid_template: str | None
    rotation: Rotation
    tokens: Tokens
    secret: SecretSpec
    jwks_config_map: str
    jwks_key: str
    rollout: RolloutSpec
    analysis: AnalysisSpec | None
    revoked: tuple[Revocation, ...] = field(default=())
    suspend: bool = False
    propagation: PropagationSpec | None = None
    # spec.jwks.issuer, as written (domain.issuer parses it); asymmetric keysets only.
    jwks_issuer: str | None = None

    @property
    def symmetric(self) -> bool:
        return self.algorithm in HMAC_ALGORITHMS


def default_jwks_config_map(keyset: str) -> str:
    """spec.jwks.configMapName when unset."""
    return f"{keyset}-jwks"


def default_items(algorithm: str) -> tuple[SecretItem, ...]:
    """Env-var-friendly names, so `envFrom` works without an items list."""
    if algorithm in HMAC_ALGORITHMS:
        # HMAC verifiers hold every accepted secret themselves, so each one comes with its kid.
        return (
            SecretItem("JWT_SECRET", ItemFormat.RAW, Slot.CURRENT),
            SecretItem("JWT_KID", ItemFormat.KID, Slot.CURRENT),
            SecretItem("JWT_SECRET_PREVIOUS", ItemFormat.RAW, Slot.PREVIOUS),
            SecretItem("JWT_KID_PREVIOUS", ItemFormat.KID, Slot.PREVIOUS),
            SecretItem("JWT_SECRET_NEXT", ItemFormat.RAW, Slot.NEXT),
            SecretItem("JWT_KID_NEXT", ItemFormat.KID, Slot.NEXT),
        )
    return (
        SecretItem("JWT_PRIVATE_KEY", ItemFormat.PEM, Slot.CURRENT),
        SecretItem("JWT_PUBLIC_KEY", ItemFormat.PUBLIC_PEM, Slot.CURRENT),
        SecretItem("JWT_KID", ItemFormat.KID, Slot.CURRENT),
    )
