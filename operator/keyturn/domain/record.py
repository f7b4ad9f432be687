"""The Ring as JSON, for the Secret annotation that makes the Secret the source of truth."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

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

FORMAT_VERSION = 1
E = TypeVar("E")


class RecordError(ValueError):
    """The annotation is not a record this version can read; nothing is written over it."""


def timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with second precision, the form Kubernetes uses for times."""
    return value.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _ts(value: datetime | None) -> str | None:
    return None if value is None else timestamp(value)


def _opt_ts(raw: Mapping[str, Any], name: str) -> datetime | None:
    value = raw.get(name)
    return None if value is None else parse_timestamp(str(value))


def _opt_enum(kind: Callable[[str], E], raw: Mapping[str, Any], name: str) -> E | None:
    value = raw.get(name)
    return None if value is None else kind(str(value))


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
        "fingerprint": key.fingerprint,
        "publicJwk": dict(key.public_jwk) if key.public_jwk is not None else None,
    }
    return {k: v for k, v in out.items() if v is not None}


def key_from_dict(raw: Mapping[str, Any]) -> Key:
    jwk = raw.get("publicJwk")
    return Key(
        kid=str(raw["kid"]),
        state=KeyState(str(raw["state"])),
        algorithm=str(raw["algorithm"]),
        serial=int(raw.get("serial", 0)),
        created_at=parse_timestamp(str(raw["createdAt"])),
        published_at=_opt_ts(raw, "publishedAt"),
        activated_at=_opt_ts(raw, "activatedAt"),
        demoted_at=_opt_ts(raw, "demotedAt"),
        remove_from_jwks_at=_opt_ts(raw, "removeFromJwksAt"),
        purge_at=_opt_ts(raw, "purgeAt"),
        revoked_at=_opt_ts(raw, "revokedAt"),
        reason=raw.get("reason"),
        activation=_opt_enum(Operation, raw, "activation"),
        activated_by=_opt_enum(Trigger, raw, "activatedBy"),
        signers_ready_at=_opt_ts(raw, "signersReadyAt"),
        analysis_result=_opt_enum(AnalysisResult, raw, "analysisResult"),
        fingerprint=str(raw.get("fingerprint", "")),
        public_jwk={str(k): str(v) for k, v in jwk.items()} if isinstance(jwk, Mapping) else None,
    )


def history_to_dict(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "at": timestamp(entry.at),
        "operation": str(entry.operation),
        "kids": list(entry.kids),
        "trigger": str(entry.trigger),
        "reason": entry.reason,
        "result": entry.result,
    }


def _history_from_dict(raw: Mapping[str, Any]) -> HistoryEntry:
    return HistoryEntry(
        at=parse_timestamp(str(raw["at"])),
        operation=Operation(str(raw["operation"])),
        kids=tuple(str(k) for k in raw.get("kids", ())),
        trigger=Trigger(str(raw["trigger"])),
        reason=str(raw.get("reason", "")),
        result=HistoryResult(str(raw.get("result", ""))),
    )


def ack_to_dict(ack: EmergencyAck) -> dict[str, Any]:
    out = {
        "requestId": ack.request_id,
        "handledAt": timestamp(ack.handled_at),
        "result": ack.result,
        "newKid": ack.new_kid,
        "message": ack.message,
    }
    return {k: v for k, v in out.items() if v is not None}


def _ack_from_dict(raw: Mapping[str, Any]) -> EmergencyAck:
    return EmergencyAck(
        request_id=str(raw["requestId"]),
        handled_at=parse_timestamp(str(raw["handledAt"])),
        result=AckResult(str(raw["result"])),
        new_kid=raw.get("newKid"),
        message=str(raw.get("message", "")),
    )


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
                "emergencies": [ack_to_dict(a) for a in ring.handled.emergencies],
            }.items()
            if v is not None
        },
        "history": [history_to_dict(h) for h in ring.history],
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def loads(text: str) -> Ring:
    try:
        raw = json.loads(text)
        if not isinstance(raw, dict) or int(raw.get("version", 0)) != FORMAT_VERSION:
            raise RecordError(
                f"unsupported record version {raw.get('version') if isinstance(raw, dict) else '?'}"
            )
        handled = raw.get("handled") or {}
        return Ring(
            keys=tuple(key_from_dict(k) for k in raw.get("keys", ())),
            serial=int(raw.get("serial", 0)),
            revoked_kids=tuple(str(k) for k in raw.get("revokedKids", ())),
            handled=Handled(
                rotate=handled.get("rotate"),
                rollback=handled.get("rollback"),
                emergencies=tuple(_ack_from_dict(a) for a in handled.get("emergencies", ())),
            ),
            history=tuple(_history_from_dict(h) for h in raw.get("history", ())),
        )
    except RecordError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise RecordError(f"the key record is unreadable: {exc}") from exc
