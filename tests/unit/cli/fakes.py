"""The API faked only at its boundary: a CustomObjectsApi stand-in behind a fake connection."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from keyturn.cli import connection, session


class FakeCustomObjects:
    """CustomObjectsApi stand-in: serves a scripted sequence of objects and records patches."""

    def __init__(self, reads: list[dict[str, Any]], patch_error: ApiException | None = None) -> None:
        self.reads = reads
        self.patches: list[tuple[Any, dict[str, Any]]] = []
        self.patch_error = patch_error

    def get_namespaced_custom_object(self, *args: Any, **_kw: Any) -> dict[str, Any]:
        assert args[:4] == ("keyturn.dev", "v1alpha1", "auth", "jwtkeysets")
        return self.reads.pop(0) if len(self.reads) > 1 else self.reads[0]

    def patch_namespaced_custom_object_status(self, *args: Any, **kw: Any) -> dict[str, Any]:
        if self.patch_error is not None:
            raise self.patch_error
        self.patches.append((args[5], kw))
        return {}


class FakeConnection:
    def __init__(self, custom: FakeCustomObjects) -> None:
        self.custom = custom
        self.namespace = "auth"


def fake_api(monkeypatch: pytest.MonkeyPatch, custom: FakeCustomObjects) -> None:
    monkeypatch.setattr(connection, "connect", lambda _kubeconfig, _context: FakeConnection(custom))
    monkeypatch.setattr(session, "POLL_FIRST", 0.001)
