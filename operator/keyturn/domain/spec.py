"""The JwtKeySet spec as typed values, with every default applied in this one place."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from keyturn.domain.durations import parse_duration

RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
EC_ALGORITHMS = frozenset({"ES256", "ES384", "ES512"})
HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
ALGORITHMS = RSA_ALGORITHMS | EC_ALGORITHMS | HMAC_ALGORITHMS | {"EdDSA"}
HMAC_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
RSA_SIZES = (2048, 3072, 4096)


class SpecError(ValueError):
    """The spec cannot be acted on; the message says which field and how to fix it."""


@dataclass(frozen=True)
class SecretItem:
    key: str
    format: str
    slot: str = "current"


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
    deletion_policy: str
    items: tuple[SecretItem, ...]
    passphrase: PassphraseRef | None


@dataclass(frozen=True)
class RolloutSpec:
    timeout: timedelta = timedelta(minutes=10)
    pause_between: timedelta = timedelta(seconds=10)
    on_failure: str = "Rollback"


@dataclass(frozen=True)
class AnalysisSpec:
    address: str
    query: str
    success_threshold: float
    initial_delay: timedelta
    interval: timedelta
    count: int
    failure_limit: int
    on_no_data: str
    on_failure: str

    @property
    def window(self) -> timedelta:
        return self.initial_delay + self.interval * self.count


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
    kid_strategy: str
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

    @property
    def symmetric(self) -> bool:
        return self.algorithm in HMAC_ALGORITHMS


def default_items(algorithm: str) -> tuple[SecretItem, ...]:
    """Env-var-friendly names, so `envFrom` works without an items list."""
    if algorithm in HMAC_ALGORITHMS:
        # HMAC verifiers hold every accepted secret themselves, so each one comes with its kid.
        return (
            SecretItem("JWT_SECRET", "raw", "current"),
            SecretItem("JWT_KID", "kid", "current"),
            SecretItem("JWT_SECRET_PREVIOUS", "raw", "previous"),
            SecretItem("JWT_KID_PREVIOUS", "kid", "previous"),
            SecretItem("JWT_SECRET_NEXT", "raw", "next"),
            SecretItem("JWT_KID_NEXT", "kid", "next"),
        )
    return (
        SecretItem("JWT_PRIVATE_KEY", "pem", "current"),
        SecretItem("JWT_PUBLIC_KEY", "public-pem", "current"),
        SecretItem("JWT_KID", "kid", "current"),
    )


def parse_spec(name: str, namespace: str, raw: Mapping[str, Any]) -> Spec:
    """Type the spec. The CRD already rejects most bad input; this catches what it cannot."""
    algorithm = str(raw.get("algorithm") or "RS256")
    if algorithm not in ALGORITHMS:
        raise SpecError(f"spec.algorithm {algorithm!r} is not one of {', '.join(sorted(ALGORITHMS))}")
    key_size = _opt_int(raw.get("keySize"))
    if algorithm in RSA_ALGORITHMS:
        key_size = key_size or 2048
        if key_size not in RSA_SIZES:
            raise SpecError(f"spec.keySize {key_size} is not one of 2048, 3072, 4096")
    elif key_size is not None:
        raise SpecError("spec.keySize applies only to RSA algorithms (RS*/PS*)")
    secret_length = _opt_int(raw.get("secretLength"))
    if algorithm in HMAC_ALGORITHMS:
        minimum = HMAC_MIN_BYTES[algorithm]
        secret_length = secret_length or minimum
        if secret_length < minimum:
            raise SpecError(f"spec.secretLength must be at least {minimum} bytes for {algorithm}")
    elif secret_length is not None:
        raise SpecError("spec.secretLength applies only to HMAC algorithms (HS*)")

    kid = raw.get("kid") or {}
    strategy = str(kid.get("strategy") or "Thumbprint")
    template = kid.get("template")
    if strategy == "Template" and not template:
        raise SpecError("spec.kid.template is required when spec.kid.strategy is Template")

    secret_raw = raw.get("secret") or {}
    items = tuple(
        SecretItem(str(i["key"]), str(i["format"]), str(i.get("slot") or "current"))
        for i in secret_raw.get("items") or ()
    ) or default_items(algorithm)
    encryption = (secret_raw.get("encryption") or {}).get("passphraseSecretRef")
    passphrase = PassphraseRef(str(encryption["name"]), str(encryption["key"])) if encryption else None
    secret = SecretSpec(
        name=str(secret_raw.get("name") or name),
        deletion_policy=str(secret_raw.get("deletionPolicy") or "Retain"),
        items=items,
        passphrase=passphrase,
    )
    jwks = raw.get("jwks") or {}
    return Spec(
        name=name,
        namespace=namespace,
        algorithm=algorithm,
        key_size=key_size,
        secret_length=secret_length,
        kid_strategy=strategy,
        kid_template=str(template) if template else None,
        rotation=_rotation(raw.get("rotation") or {}),
        tokens=_tokens(raw.get("tokens") or {}),
        secret=secret,
        jwks_config_map=str(jwks.get("configMapName") or f"{name}-jwks"),
        jwks_key=str(jwks.get("key") or "jwks.json"),
        rollout=_rollout(raw.get("rollout") or {}),
        analysis=_analysis(raw.get("analysis")),
        revoked=tuple(
            Revocation(str(r["kid"]), str(r.get("reason") or "unspecified"))
            for r in raw.get("revokedKids") or ()
        ),
        suspend=bool(raw.get("suspend", False)),
    )


def _rotation(raw: Mapping[str, Any]) -> Rotation:
    schedule = raw.get("schedule") or None
    interval = raw.get("interval")
    if schedule and interval:
        raise SpecError("set either spec.rotation.interval or spec.rotation.schedule, not both")
    zone_name = str(raw.get("timeZone") or "UTC")
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SpecError(f"spec.rotation.timeZone {zone_name!r} is not a known IANA time zone") from exc
    window = raw.get("window")
    return Rotation(
        interval=None if schedule else _duration(interval or "90d", "rotation.interval", positive=True),
        schedule=str(schedule) if schedule else None,
        time_zone=zone,
        window=Window(_clock(window["start"]), _clock(window["end"])) if window else None,
        publish_ahead=_duration(raw.get("publishAhead") or "1h", "rotation.publishAhead"),
        grace_period=_duration(raw.get("gracePeriod") or "30d", "rotation.gracePeriod"),
        retention=_duration(raw.get("retention") or "180d", "rotation.retention"),
    )


def _tokens(raw: Mapping[str, Any]) -> Tokens:
    lifetime, ttl = raw.get("maxLifetime"), raw.get("verifierCacheTTL")
    return Tokens(
        max_lifetime=_duration(lifetime, "tokens.maxLifetime") if lifetime else None,
        verifier_cache_ttl=_duration(ttl, "tokens.verifierCacheTTL") if ttl else None,
    )


def _rollout(raw: Mapping[str, Any]) -> RolloutSpec:
    return RolloutSpec(
        timeout=_duration(raw.get("timeout") or "10m", "rollout.timeout", positive=True),
        pause_between=_duration(raw.get("pauseBetween") or "10s", "rollout.pauseBetween"),
        on_failure=str(raw.get("onFailure") or "Rollback"),
    )


def _analysis(raw: Mapping[str, Any] | None) -> AnalysisSpec | None:
    if not raw:
        return None
    prometheus = raw.get("prometheus") or {}
    if not prometheus.get("address") or not prometheus.get("query"):
        raise SpecError("spec.analysis.prometheus needs both address and query")
    threshold_text = str(raw.get("successThreshold") or "0.95")
    try:
        threshold = float(threshold_text)
    except ValueError as exc:
        raise SpecError(f"spec.analysis.successThreshold {threshold_text!r} is not a number") from exc
    if not 0.0 <= threshold <= 1.0:
        raise SpecError("spec.analysis.successThreshold must be between 0 and 1")
    count = int(raw.get("count") or 10)
    failure_limit = int(raw.get("failureLimit", 1))
    if count < 1 or not 0 <= failure_limit < count:
        raise SpecError("spec.analysis needs count >= 1 and 0 <= failureLimit < count")
    return AnalysisSpec(
        address=str(prometheus["address"]).rstrip("/"),
        query=str(prometheus["query"]),
        success_threshold=threshold,
        initial_delay=_duration(raw.get("initialDelay") or "1m", "analysis.initialDelay"),
        interval=_duration(raw.get("interval") or "30s", "analysis.interval", positive=True),
        count=count,
        failure_limit=failure_limit,
        on_no_data=str(raw.get("onNoData") or "Inconclusive"),
        on_failure=str(raw.get("onFailure") or "Rollback"),
    )


def _duration(value: object, path: str, *, positive: bool = False) -> timedelta:
    try:
        parsed = parse_duration(str(value))
    except ValueError as exc:
        raise SpecError(f"spec.{path}: {exc}") from exc
    if positive and parsed <= timedelta(0):
        raise SpecError(f"spec.{path} must be longer than 0s")
    return parsed


def _clock(value: object) -> tuple[int, int]:
    text = str(value)
    hours, _, minutes = text.partition(":")
    if not (hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60):
        raise SpecError(f"spec.rotation.window time {text!r} is not HH:MM")
    return int(hours), int(minutes)


def _opt_int(value: object) -> int | None:
    return None if value is None else int(str(value))
