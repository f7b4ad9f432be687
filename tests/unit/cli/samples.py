"""A keyset and its status as Keyturn writes them, hostile values, and API errors: the data the CLI
tests share (moved from tests/unit/test_cli.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes.client.exceptions import ApiException

from keyturn.cli.errors import ApiAction

NOW = datetime(2026, 5, 22, 10, 0, tzinfo=UTC)
CURRENT, NEXT, OLD, GONE = "kid-current", "kid-next", "kid-old", "kid-gone"


def ts(delta: timedelta) -> str:
    return (NOW + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(kind: str, value: str, reason: str, message: str) -> dict[str, str]:
    return {"type": kind, "status": value, "reason": reason, "message": message, "lastTransitionTime": ts(-D)}


H, D = timedelta(hours=1), timedelta(days=1)
STATUS: dict[str, Any] = {
    "observedGeneration": 2,
    "phase": "Ready",
    "currentKid": CURRENT,
    "nextKid": NEXT,
    "nextRotationAt": ts(29 * D + 23 * H),
    "lastRotationAt": ts(-timedelta(minutes=12)),
    "conditions": [
        condition("Ready", "True", "KeysReady", f"{CURRENT} signs"),
        condition("Reconciling", "False", "KeysReady", f"{CURRENT} signs"),
        condition("Stalled", "False", "KeysReady", f"{CURRENT} signs"),
        condition("RolledBack", "False", "KeysReady", "no rollback in effect"),
    ],
    "keys": [
        {"kid": NEXT, "state": "next", "algorithm": "RS256", "createdAt": ts(-timedelta(minutes=12))},
        {
            "kid": CURRENT,
            "state": "current",
            "algorithm": "RS256",
            "createdAt": ts(-(3 * D + 4 * H)),
            "activatedAt": ts(-timedelta(minutes=12)),
        },
        {
            "kid": OLD,
            "state": "previous",
            "algorithm": "RS256",
            "createdAt": ts(-40 * D),
            "demotedAt": ts(-timedelta(minutes=12)),
            "removeFromJwksAt": ts(7 * D),
        },
        {
            "kid": GONE,
            "state": "revoked",
            "algorithm": "RS256",
            "createdAt": ts(-100 * D),
            "revokedAt": ts(-2 * D),
            "reason": "key_compromise",
        },
    ],
}


def keyset(name: str = "api-keys", status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "keyturn.dev/v1alpha1",
        "kind": "JwtKeySet",
        "metadata": {"name": name, "namespace": "auth", "generation": 2},
        "spec": {"algorithm": "RS256", **spec},
    }
    if status is not None:
        obj["status"] = status
    return obj


def api_error(status: int, message: str = "", reason: str = "") -> ApiException:
    exc = ApiException(status=status, reason=reason or "Error")
    exc.body = json.dumps({"kind": "Status", "message": message, "code": status})
    return exc


GET = ApiAction("get", "jwtkeysets", "auth", "api-keys")
PATCH_STATUS = ApiAction("patch", "jwtkeysets/status", "auth", "api-keys")

HOSTILE = "\x1b]0;owned\x07\x1b[2J"  # set the terminal title, clear the screen
FORGED_LINE = "ok\nPhase:         Ready"  # a newline forging a line of the view


def no_control_characters(text: str) -> bool:
    """Only printable characters and the line breaks the view itself puts between lines."""
    return all(line.isprintable() for line in text.split("\n"))
