"""The Ring as JSON, for the Secret annotation that makes the Secret the source of truth.

loads is total: any text gives a Ring or a RecordError naming the field at fault, because the
annotation can be edited by anyone who can edit the Secret. Times are bounded to EARLIEST..LATEST,
so a record time plus any span a spec can hold (at most 100 years) stays a valid datetime.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from keyturn.domain.json_kinds import json_kind
from keyturn.domain.model import (
    AckResult,
    AnalysisResult,
    EmergencyAck,
    Handled,
    HistoryEntry,
    HistoryResult,
    Key,
    KeyState,
    Operation,
    Ring,
    Trigger,
)
from keyturn.domain.spec import ALGORITHMS

FORMAT_VERSION = 1
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
MAX_SERIAL = 2**53  # what a JSON number holds exactly everywhere
# Kids become Secret data keys (key.<kid>.pem): the shape keys/kid_templates.py and the CRD allow.
_KID = re.compile(r"[A-Za-z0-9._-]{1,128}")
E = TypeVar("E", bound=StrEnum)


class RecordError(ValueError):
    """The annotation is not a record this version can read; nothing is written over it."""


def timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with second precision, the form Kubernetes uses for times."""
    return value.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: object) -> datetime:
    """An RFC 3339 time with an offset, between EARLIEST and LATEST; else RecordError."""
    if not isinstance(text, str):
        raise RecordError(f"a time must be a string, not {json_kind(text)}")
    if len(text) > 40:
        raise RecordError("a time must be an RFC 3339 timestamp such as 2026-01-01T00:00:00Z")
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        moment = None if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise RecordError(f"{text!r} is not an RFC 3339 timestamp such as 2026-01-01T00:00:00Z") from None
    if moment is None:
        raise RecordError(f"time {text!r} has no UTC offset")
    if not EARLIEST <= moment < LATEST:
        raise RecordError(f"time {text!r} is outside {EARLIEST.year}..{LATEST.year - 1}")
    return moment


# ------------------------------------------------------------------------------------------ writing
def _ts(value: datetime | None) -> str | None:
    return None if value is None else timestamp(value)


def key_to_dict(key: Key) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kid": key.kid,
        "state": str(key.state),
        "algorithm": key.algorithm,
        "serial": key.serial,
        "createdAt": timestamp(key.created_at),
        "publishedAt": _ts(key.published_at),
        "activatedAt": _ts(key.activated_at),
        "demotedAt": _ts(key.demoted_at),
        "removeFromJwksAt": _ts(key.remove_from_jwks_at),
        "purgeAt": _ts(key.purge_at),
        "revokedAt": _ts(key.revoked_at),
        "reason": key.reason,
        "activation": None if key.activation is None else str(key.activation),
        "activatedBy": None if key.activated_by is None else str(key.activated_by),
        "signersReadyAt": _ts(key.signers_ready_at),
        "analysisResult": None if key.analysis_result is None else str(key.analysis_result),
        "propagationHeldAt": _ts(key.propagation_held_at),
        "propagationWarnedAt": _ts(key.propagation_warned_at),
        "fingerprint": key.fingerprint,
        "publicJwk": dict(key.public_jwk) if key.public_jwk is not None else None,
    }
    return {k: v for k, v in out.items() if v is not None}


def history_to_dict(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "at": timestamp(entry.at),
        "operation": str(entry.operation),
        "kids": list(entry.kids),
        "trigger": str(entry.trigger),
        "reason": entry.reason,
        "result": entry.result,
    }


def _ack_record(ack: EmergencyAck) -> dict[str, Any]:
    return {**ack_to_dict(ack), **({"request": ack.request} if ack.request else {})}


def ack_to_dict(ack: EmergencyAck) -> dict[str, Any]:
    """The acknowledgement as status.emergency shows it."""
    out = {
        "requestId": ack.request_id,
        "handledAt": timestamp(ack.handled_at),
        "result": ack.result,
        "newKid": ack.new_kid,
        "message": ack.message,
    }
    return {k: v for k, v in out.items() if v is not None}


def dumps(ring: Ring) -> str:
    """Deterministic JSON, so an unchanged ring never causes a write."""
    document = {
        "version": FORMAT_VERSION,
        "serial": ring.serial,
        "keys": [key_to_dict(k) for k in ring.keys],
        "revokedKids": list(ring.revoked_kids),
        "handled": {
            k: v
            for k, v in {
                "rotate": ring.handled.rotate,
                "rollback": ring.handled.rollback,
                "emergencies": [_ack_record(a) for a in ring.handled.emergencies],
            }.items()
            if v is not None
        },
        "history": [history_to_dict(h) for h in ring.history],
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


# ------------------------------------------------------------------------------------------ reading
class _Fields:
    """One JSON object of the record, read with the field's path in every error."""

    def __init__(self, value: object, path: str) -> None:
        if not isinstance(value, dict):
            raise RecordError(f"{path or 'the record'}: must be an object, not {json_kind(value)}")
        self.raw: dict[str, object] = value
        self.path = path

    def at(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def _get(self, name: str, required: bool) -> object:
        value = self.raw.get(name)
        if value is None and required:
            raise RecordError(f"{self.at(name)}: is missing")
        return value

    def string(self, name: str, *, required: bool = False) -> str | None:
        value = self._get(name, required)
        if value is not None and not isinstance(value, str):
            raise RecordError(f"{self.at(name)}: must be a string, not {json_kind(value)}")
        return value

    def required_string(self, name: str) -> str:
        value = self.string(name, required=True)
        assert value is not None  # _get raised otherwise
        return value

    def text(self, name: str) -> str:
        """A string that defaults to ""."""
        return self.string(name) or ""

    def kid(self, name: str) -> str:
        value = self.required_string(name)
        if not _KID.fullmatch(value):
            raise RecordError(f"{self.at(name)}: is not a kid ([A-Za-z0-9._-]{{1,128}})")
        return value

    def serial(self, name: str) -> int:
        value = self._get(name, False)
        if value is None:
            return 0
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SERIAL:
            raise RecordError(f"{self.at(name)}: must be an integer from 0 to {MAX_SERIAL}")
        return value

    def time(self, name: str, *, required: bool = False) -> datetime | None:
        value = self._get(name, required)
        if value is None:
            return None
        try:
            return parse_timestamp(value)
        except RecordError as exc:
            raise RecordError(f"{self.at(name)}: {exc}") from None

    def required_time(self, name: str) -> datetime:
        moment = self.time(name, required=True)
        assert moment is not None
        return moment

    def choice(self, name: str, kind: type[E], *, required: bool = False) -> E | None:
        value = self.string(name, required=required)
        if value is None:
            return None
        try:
            return kind(value)
        except ValueError:
            raise RecordError(f"{self.at(name)}: {value[:32]!r} is not one of {', '.join(kind)}") from None

    def required_choice(self, name: str, kind: type[E]) -> E:
        value = self.choice(name, kind, required=True)
        assert value is not None
        return value

    def items(self, name: str) -> list[object]:
        value = self._get(name, False)
        if value is None:
            return []
        if not isinstance(value, list):
            raise RecordError(f"{self.at(name)}: must be a list, not {json_kind(value)}")
        return value

    def objects(self, name: str) -> list[_Fields]:
        return [_Fields(v, f"{self.at(name)}[{i}]") for i, v in enumerate(self.items(name))]

    def strings(self, name: str) -> tuple[str, ...]:
        values = self.items(name)
        for i, value in enumerate(values):
            if not isinstance(value, str):
                raise RecordError(f"{self.at(name)}[{i}]: must be a string, not {json_kind(value)}")
        return tuple(str(v) for v in values)

    def jwk(self, name: str) -> dict[str, str] | None:
        value = self._get(name, False)
        if value is None:
            return None
        jwk = _Fields(value, self.at(name))
        return {k: jwk.text(k) for k in jwk.raw}


def _key(raw: _Fields) -> Key:
    algorithm = raw.required_string("algorithm")
    if algorithm not in ALGORITHMS:
        raise RecordError(f"{raw.at('algorithm')}: {str(algorithm)[:16]!r} is not an algorithm Keyturn knows")
    return Key(
        kid=raw.kid("kid"),
        state=raw.required_choice("state", KeyState),
        algorithm=algorithm,
        serial=raw.serial("serial"),
        created_at=raw.required_time("createdAt"),
        published_at=raw.time("publishedAt"),
        activated_at=raw.time("activatedAt"),
        demoted_at=raw.time("demotedAt"),
        remove_from_jwks_at=raw.time("removeFromJwksAt"),
        purge_at=raw.time("purgeAt"),
        revoked_at=raw.time("revokedAt"),
        reason=raw.string("reason"),
        activation=raw.choice("activation", Operation),
        activated_by=raw.choice("activatedBy", Trigger),
        signers_ready_at=raw.time("signersReadyAt"),
        analysis_result=raw.choice("analysisResult", AnalysisResult),
        propagation_held_at=raw.time("propagationHeldAt"),
        propagation_warned_at=raw.time("propagationWarnedAt"),
        fingerprint=raw.text("fingerprint"),
        public_jwk=raw.jwk("publicJwk"),
    )


def _history(raw: _Fields) -> HistoryEntry:
    return HistoryEntry(
        at=raw.required_time("at"),
        operation=raw.required_choice("operation", Operation),
        kids=raw.strings("kids"),
        trigger=raw.required_choice("trigger", Trigger),
        reason=raw.text("reason"),
        result=raw.required_choice("result", HistoryResult),
    )


def _ack(raw: _Fields) -> EmergencyAck:
    return EmergencyAck(
        request_id=raw.required_string("requestId"),
        handled_at=raw.required_time("handledAt"),
        result=raw.required_choice("result", AckResult),
        new_kid=raw.string("newKid"),
        message=raw.text("message"),
        request=raw.text("request"),
    )


def loads(text: object) -> Ring:
    """Read a record; anything but a record this version wrote is a RecordError naming the field."""
    if not isinstance(text, str):
        raise RecordError(f"the key record must be text, not {json_kind(text)}")
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError) as exc:
        detail = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:120]
        raise RecordError(f"the key record is not JSON: {detail}") from None
    if not isinstance(raw, dict):
        raise RecordError(f"the key record must be a JSON object, not {json_kind(raw)}")
    version = raw.get("version")
    if isinstance(version, bool) or version != FORMAT_VERSION:
        small = isinstance(version, int) and not isinstance(version, bool) and abs(version) < 10**9
        shown = version if small else json_kind(version)
        raise RecordError(f"unsupported record version {shown} (this Keyturn reads {FORMAT_VERSION})")
    fields = _Fields(raw, "")
    keys = tuple(_key(k) for k in fields.objects("keys"))
    seen: set[str] = set()
    for key in keys:
        if key.kid in seen:
            raise RecordError(f"keys: kid {key.kid} appears more than once")
        seen.add(key.kid)
    handled = _Fields({} if raw.get("handled") is None else raw["handled"], "handled")
    return Ring(
        keys=keys,
        serial=fields.serial("serial"),
        revoked_kids=fields.strings("revokedKids"),
        handled=Handled(
            rotate=handled.string("rotate"),
            rollback=handled.string("rollback"),
            emergencies=tuple(_ack(a) for a in handled.objects("emergencies")),
        ),
        history=tuple(_history(h) for h in fields.objects("history")),
    )
