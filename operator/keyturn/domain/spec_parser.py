"""parse_spec: the JwtKeySet spec, of any JSON shape, read into a typed Spec with every default.

parse_spec is total: it takes any JSON value and either returns a Spec or raises SpecError with
a message that starts with the path of the field at fault. The CRD refuses most bad input at
admission; whatever gets past it (an older CRD, a bypassed schema, a rule CEL cannot express)
stops here, so nothing downstream meets a value it cannot compute with.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from keyturn.domain.cron import cron_problem
from keyturn.domain.durations import MAX_DURATION, format_duration, parse_duration
from keyturn.domain.issuer import IssuerError, parse_issuer
from keyturn.domain.json_kinds import json_kind
from keyturn.domain.propagation import template_problem
from keyturn.domain.spec import (
    ALGORITHMS,
    DEFAULT_ALGORITHM,
    DEFAULT_GRACE_PERIOD,
    DEFAULT_INTERVAL,
    DEFAULT_JWKS_KEY,
    DEFAULT_PROPAGATION_INTERVAL,
    DEFAULT_PROPAGATION_QUERY,
    DEFAULT_PROPAGATION_THRESHOLD,
    DEFAULT_PROPAGATION_TIMEOUT,
    DEFAULT_PUBLISH_AHEAD,
    DEFAULT_RETENTION,
    DEFAULT_RSA_SIZE,
    HMAC_ALGORITHMS,
    HMAC_MAX_BYTES,
    HMAC_MIN_BYTES,
    MAX_ANALYSIS_COUNT,
    MAX_PROPAGATION_QUERY,
    MAX_SCHEDULE_LENGTH,
    RSA_ALGORITHMS,
    RSA_SIZES,
    AnalysisSpec,
    DeletionPolicy,
    ItemFormat,
    KidStrategy,
    OnFailure,
    OnNoData,
    PassphraseRef,
    PropagationSpec,
    Revocation,
    RolloutSpec,
    Rotation,
    SecretItem,
    SecretSpec,
    Slot,
    Spec,
    SpecError,
    Tokens,
    Window,
    default_items,
    default_jwks_config_map,
)

# ------------------------------------------------------------------------------------ reading JSON
E = TypeVar("E", bound=StrEnum)
_CLOCK = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


def _quote(text: str) -> str:
    return repr(text) if len(text) <= 64 else f"{text[:64]!r}… ({len(text)} characters)"


def _integer(value: int) -> str:
    """str() of an int of thousands of digits raises ValueError; a message needs no such number."""
    return str(value) if abs(value) < 10**18 else f"an integer of {value.bit_length()} bits"


@dataclass(frozen=True)
class _Object:
    """A JSON object at a path of the spec, read field by field with the field's path in errors."""

    path: str
    raw: Mapping[object, object]

    @classmethod
    def of(cls, value: object, path: str) -> _Object:
        if value is None:
            return cls(path, {})
        if not isinstance(value, Mapping):
            raise SpecError(f"{path}: must be an object, not {json_kind(value)}")
        return cls(path, value)

    def at(self, name: str) -> str:
        return f"{self.path}.{name}"

    def has(self, name: str) -> bool:
        return self.raw.get(name) not in (None, "")

    def obj(self, name: str) -> _Object:
        return _Object.of(self.raw.get(name), self.at(name))

    def objects(self, name: str) -> list[_Object]:
        """A list of objects; null (or absent) is an empty list."""
        value = self.raw.get(name)
        if value is None:
            return []
        if not isinstance(value, list | tuple):
            raise SpecError(f"{self.at(name)}: must be a list, not {json_kind(value)}")
        return [_Object.of_item(item, f"{self.at(name)}[{i}]") for i, item in enumerate(value)]

    @staticmethod
    def of_item(value: object, path: str) -> _Object:
        if not isinstance(value, Mapping):
            raise SpecError(f"{path}: must be an object, not {json_kind(value)}")
        return _Object(path, value)

    def string(self, name: str) -> str | None:
        """A string; null, absent and "" are all "not set"."""
        value = self.raw.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise SpecError(f"{self.at(name)}: must be a string, not {json_kind(value)}")
        return value

    def required(self, name: str) -> str:
        value = self.string(name)
        if value is None:
            raise SpecError(f"{self.at(name)}: is required")
        return value

    def integer(self, name: str) -> int | None:
        value = self.raw.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(f"{self.at(name)}: must be an integer, not {json_kind(value)}")
        return value

    def boolean(self, name: str) -> bool:
        value = self.raw.get(name)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise SpecError(f"{self.at(name)}: must be true or false, not {json_kind(value)}")
        return value

    def choice(self, name: str, kind: type[E], default: E | None = None) -> E:
        """One of the enum's values; without a default, the field is required."""
        text = self.string(name)
        if text is None:
            if default is None:
                raise SpecError(f"{self.at(name)}: is required")
            return default
        try:
            return kind(text)
        except ValueError:
            raise SpecError(f"{self.at(name)}: {_quote(text)} is not one of {', '.join(kind)}") from None

    def duration(self, name: str, default: str | None, *, positive: bool = False) -> timedelta | None:
        text = self.string(name) or default
        if text is None:
            return None
        try:
            parsed = parse_duration(text)
        except ValueError as exc:
            raise SpecError(f"{self.at(name)}: {exc}") from None
        if positive and parsed <= timedelta(0):
            raise SpecError(f"{self.at(name)}: must be longer than 0s")
        return parsed

    def span(self, name: str, default: str, *, positive: bool = False) -> timedelta:
        parsed = self.duration(name, default, positive=positive)
        assert parsed is not None  # a default was given
        return parsed


# ------------------------------------------------------------------------------------ the spec
def parse_spec(name: str, namespace: str, raw: object) -> Spec:
    """Type the spec, or raise SpecError naming the field. Any JSON value is a valid argument."""
    spec = _Object.of(raw, "spec")
    algorithm = spec.string("algorithm") or DEFAULT_ALGORITHM
    if algorithm not in ALGORITHMS:
        raise SpecError(f"spec.algorithm: {_quote(algorithm)} is not one of {', '.join(sorted(ALGORITHMS))}")
    key_size = spec.integer("keySize")
    if algorithm in RSA_ALGORITHMS:
        key_size = DEFAULT_RSA_SIZE if key_size is None else key_size
        if key_size not in RSA_SIZES:
            raise SpecError(f"spec.keySize: {_integer(key_size)} is not one of 2048, 3072, 4096")
    elif key_size is not None:
        raise SpecError("spec.keySize: applies only to RSA algorithms (RS*/PS*)")
    secret_length = spec.integer("secretLength")
    if algorithm in HMAC_ALGORITHMS:
        minimum = HMAC_MIN_BYTES[algorithm]
        secret_length = minimum if secret_length is None else secret_length
        if not minimum <= secret_length <= HMAC_MAX_BYTES:
            raise SpecError(
                f"spec.secretLength: must be at least {minimum} bytes for {algorithm}, "
                f"and at most {HMAC_MAX_BYTES}"
            )
    elif secret_length is not None:
        raise SpecError("spec.secretLength: applies only to HMAC algorithms (HS*)")

    kid = spec.obj("kid")
    strategy = kid.choice("strategy", KidStrategy, KidStrategy.THUMBPRINT)
    template = kid.string("template")
    if strategy is KidStrategy.TEMPLATE and template is None:
        raise SpecError("spec.kid.template: is required when spec.kid.strategy is Template")

    jwks = spec.obj("jwks")
    analysis = _analysis(spec.obj("analysis"))
    issuer = _issuer(jwks, algorithm)
    return Spec(
        name=name,
        namespace=namespace,
        algorithm=algorithm,
        key_size=key_size,
        secret_length=secret_length,
        kid_strategy=strategy,
        kid_template=template,
        rotation=_rotation(spec.obj("rotation")),
        tokens=_tokens(spec.obj("tokens")),
        secret=_secret(spec.obj("secret"), name, algorithm),
        jwks_config_map=jwks.string("configMapName") or default_jwks_config_map(name),
        jwks_key=jwks.string("key") or DEFAULT_JWKS_KEY,
        rollout=_rollout(spec.obj("rollout")),
        analysis=analysis,
        revoked=tuple(
            Revocation(r.required("kid"), r.string("reason") or "unspecified")
            for r in spec.objects("revokedKids")
        ),
        suspend=spec.boolean("suspend"),
        propagation=(
            None if spec.raw.get("propagation") is None else _propagation(spec.obj("propagation"), analysis)
        ),
        jwks_issuer=issuer,
    )


def _issuer(jwks: _Object, algorithm: str) -> str | None:
    text = jwks.string("issuer")
    if text is None:
        return None
    if algorithm in HMAC_ALGORITHMS:
        raise SpecError(
            f"{jwks.at('issuer')}: HMAC keysets ({algorithm}) publish no JWKS, so there is nothing to "
            "serve under an issuer; remove the field"
        )
    try:
        parse_issuer(text)
    except IssuerError as exc:
        raise SpecError(f"{jwks.at('issuer')}: {exc}") from None
    return text


def _rotation(raw: _Object) -> Rotation:
    schedule = raw.string("schedule")
    if schedule is not None and raw.has("interval"):
        raise SpecError(
            "spec.rotation: set either spec.rotation.interval or spec.rotation.schedule, not both"
        )
    if schedule is not None:
        if len(schedule) > MAX_SCHEDULE_LENGTH:
            raise SpecError(f"spec.rotation.schedule: longer than {MAX_SCHEDULE_LENGTH} characters")
        problem = cron_problem(schedule)
        if problem is not None:
            raise SpecError(f"spec.rotation.schedule: {_quote(schedule)} {problem}")
    return Rotation(
        interval=None if schedule else raw.span("interval", DEFAULT_INTERVAL, positive=True),
        schedule=schedule,
        time_zone=_zone(raw.string("timeZone") or "UTC"),
        window=_window(raw),
        publish_ahead=raw.span("publishAhead", DEFAULT_PUBLISH_AHEAD),
        grace_period=raw.span("gracePeriod", DEFAULT_GRACE_PERIOD),
        retention=raw.span("retention", DEFAULT_RETENTION),
    )


@functools.cache
def _zone_names() -> frozenset[str]:
    """The database's zones; "localtime" (found on some systems) is the host's zone, not a name."""
    return frozenset(available_timezones()) - {"localtime"}


def _zone(name: str) -> ZoneInfo:
    """Only names of the time-zone database: ZoneInfo also opens directories ("America") and paths."""
    problem = f"spec.rotation.timeZone: {_quote(name)} is not an IANA time zone such as UTC or Europe/Paris"
    if name != "UTC" and name not in _zone_names():
        raise SpecError(problem)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise SpecError(problem) from None


def _window(raw: _Object) -> Window | None:
    if raw.raw.get("window") is None:
        return None
    window = raw.obj("window")
    start, end = _clock(window, "start"), _clock(window, "end")
    if start == end:
        raise SpecError("spec.rotation.window: start and end must differ (the window would be empty)")
    return Window(start, end)


def _clock(window: _Object, name: str) -> tuple[int, int]:
    text = window.required(name)
    match = _CLOCK.fullmatch(text)
    if match is None:
        raise SpecError(f"{window.at(name)}: {_quote(text)} is not a time HH:MM between 00:00 and 23:59")
    return int(match[1]), int(match[2])


def _tokens(raw: _Object) -> Tokens:
    return Tokens(
        max_lifetime=raw.duration("maxLifetime", None, positive=True),
        verifier_cache_ttl=raw.duration("verifierCacheTTL", None),
    )


def _secret(raw: _Object, name: str, algorithm: str) -> SecretSpec:
    items = tuple(
        SecretItem(
            item.required("key"),
            item.choice("format", ItemFormat),
            item.choice("slot", Slot, Slot.CURRENT),
        )
        for item in raw.objects("items")
    )
    secret_name = raw.string("name") or name
    passphrase = None
    if raw.raw.get("encryption") is not None:
        ref = raw.obj("encryption").obj("passphraseSecretRef")
        passphrase = PassphraseRef(ref.required("name"), ref.required("key"))
        if passphrase.name == secret_name:  # the CRD cannot compare it with the defaulted name
            raise SpecError(
                f"{ref.at('name')}: {_quote(secret_name)} is the Secret that holds the keys; a "
                "passphrase stored next to them protects nothing: keep it in another Secret"
            )
    return SecretSpec(
        name=secret_name,
        deletion_policy=raw.choice("deletionPolicy", DeletionPolicy, DeletionPolicy.RETAIN),
        items=items or default_items(algorithm),
        passphrase=passphrase,
    )


def _rollout(raw: _Object) -> RolloutSpec:
    return RolloutSpec(
        timeout=raw.span("timeout", "10m", positive=True),
        pause_between=raw.span("pauseBetween", "10s"),
        on_failure=raw.choice("onFailure", OnFailure, OnFailure.ROLLBACK),
    )


def _analysis(raw: _Object) -> AnalysisSpec | None:
    if not raw.raw:
        return None
    prometheus = raw.obj("prometheus")
    if not prometheus.has("address") or not prometheus.has("query"):
        raise SpecError("spec.analysis.prometheus: needs both address and query")
    address = _address(prometheus.required("address"), prometheus.at("address"))
    query = prometheus.required("query")
    if not query.strip():
        raise SpecError("spec.analysis.prometheus.query: must not be empty")
    threshold = _threshold(raw, "successThreshold", "0.95")
    count = raw.integer("count")
    count = 10 if count is None else count
    if not 1 <= count <= MAX_ANALYSIS_COUNT:
        raise SpecError(
            f"spec.analysis.count: must be between 1 and {MAX_ANALYSIS_COUNT}, not {_integer(count)}"
        )
    failure_limit = raw.integer("failureLimit")
    failure_limit = 1 if failure_limit is None else failure_limit
    if not 0 <= failure_limit < count:
        raise SpecError(
            f"spec.analysis.failureLimit: must be at least 0 and less than count ({count}), "
            f"not {_integer(failure_limit)}"
        )
    analysis = AnalysisSpec(
        address=address,
        query=query,
        success_threshold=threshold,
        initial_delay=raw.span("initialDelay", "1m"),
        interval=raw.span("interval", "30s", positive=True),
        count=count,
        failure_limit=failure_limit,
        on_no_data=raw.choice("onNoData", OnNoData, OnNoData.INCONCLUSIVE),
        on_failure=raw.choice("onFailure", OnFailure, OnFailure.ROLLBACK),
    )
    if analysis.window > MAX_DURATION:
        raise SpecError(
            f"spec.analysis: initialDelay + interval × count is {format_duration(analysis.window)}, "
            f"longer than 100 years ({format_duration(MAX_DURATION)})"
        )
    return analysis


def _threshold(raw: _Object, name: str, default: str) -> float:
    path = raw.at(name)
    value = raw.raw.get(name)
    if value is None or value == "":
        value = default
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise SpecError(
            f'{path}: must be a decimal number written as a string, e.g. "{default}", not {json_kind(value)}'
        )
    try:
        threshold = float(value)
    except (ValueError, OverflowError):
        shown = _quote(value) if isinstance(value, str) else _integer(int(value))
        raise SpecError(f"{path}: {shown} is not a number") from None
    if not (math.isfinite(threshold) and 0.0 <= threshold <= 1.0):
        raise SpecError(f"{path}: must be between 0 and 1")
    return threshold


def _propagation(raw: _Object, analysis: AnalysisSpec | None) -> PropagationSpec:
    """Set (even as `{}`), the gate is on. Its Prometheus defaults to the analysis's: one server
    usually scrapes both metrics."""
    prometheus = raw.obj("prometheus")
    if prometheus.has("address"):
        address = _address(prometheus.required("address"), prometheus.at("address"))
    elif analysis is not None:
        address = analysis.address
    else:
        raise SpecError(
            f"{prometheus.at('address')}: is required when spec.analysis.prometheus.address is not set"
        )
    query = raw.string("query") or DEFAULT_PROPAGATION_QUERY
    if not query.strip():
        raise SpecError(f"{raw.at('query')}: must not be empty")
    if len(query) > MAX_PROPAGATION_QUERY:
        raise SpecError(f"{raw.at('query')}: longer than {MAX_PROPAGATION_QUERY} characters")
    problem = template_problem(query)
    if problem is not None:
        raise SpecError(f"{raw.at('query')}: {problem}")
    return PropagationSpec(
        address=address,
        query=query,
        threshold=_threshold(raw, "threshold", DEFAULT_PROPAGATION_THRESHOLD),
        interval=raw.span("interval", DEFAULT_PROPAGATION_INTERVAL, positive=True),
        timeout=raw.span("timeout", DEFAULT_PROPAGATION_TIMEOUT, positive=True),
    )


def _address(text: str, path: str) -> str:
    """An http(s) base URL and nothing else: user info, a query or a fragment could smuggle
    credentials or a different request to whatever the URL points at. The value is never quoted
    in a message, since it might carry a password."""
    if any(c.isspace() or not c.isprintable() for c in text):
        raise SpecError(f"{path}: must not contain spaces or control characters")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise SpecError(f"{path}: is not a URL (check the host and the port)") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SpecError(f"{path}: must be an http:// or https:// URL with a host")
    if "@" in parts.netloc:
        raise SpecError(f"{path}: must not contain user info (user:password@); Keyturn sends no credentials")
    if "?" in text or "#" in text:
        raise SpecError(f"{path}: must not contain a query (?…) or a fragment (#…); give the base URL only")
    if port == 0:
        raise SpecError(f"{path}: port 0 is not a port")
    return text.rstrip("/")
