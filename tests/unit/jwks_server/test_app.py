"""jwks_server/app.py: which document a request gets."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from keyturn.jwks_server.app import JwksApp
from keyturn.jwks_server.store import Store
from unit.jwks_server.test_store import DOCUMENT, configmap


@dataclass
class Scope:
    method: str
    path: str
    headers: dict[str, str]
    proto: str = "http"


@dataclass
class Proto:
    answers: list[tuple[int, bytes]] = field(default_factory=list)

    def response_bytes(self, status: int, headers: Any, body: bytes) -> None:
        self.answers.append((status, body))

    def response_empty(self, status: int, headers: Any) -> None:
        self.answers.append((status, b""))


def get(app: JwksApp, path: str, host: str) -> tuple[int, bytes]:
    proto = Proto()
    asyncio.run(app.__rsgi__(Scope("GET", path, {"host": host}), proto))
    return proto.answers[0]


def test_a_keyset_s_path_is_its_own_whatever_issuer_another_namespace_claims() -> None:
    """A keyset elsewhere claiming the issuer https://<server>/victim/api must not take over the
    by-path URL of victim/api."""
    store = Store(["victim", "evil"])
    store.replace("victim", [configmap("api-jwks", keyset="api", namespace="victim")])
    evil = json.dumps({"keys": []})
    claim = {"keyturn.dev/issuer": "https://keyturn-jwks-server.keyturn.svc/victim/api"}
    store.replace(
        "evil",
        [
            configmap(
                namespace="evil", data={"jwks.json": evil}, annotations=claim, created="2026-02-01T00:00:00Z"
            )
        ],
    )
    app = JwksApp(store, cap=3600)
    assert get(app, "/victim/api/.well-known/jwks.json", "keyturn-jwks-server.keyturn.svc") == (
        200,
        DOCUMENT.encode(),
    )
