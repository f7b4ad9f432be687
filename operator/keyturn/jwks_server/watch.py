"""List, then watch, the JWKS ConfigMaps of one scope (a namespace, or all), feeding the store.

One daemon thread per scope with the blocking Kubernetes client: the event loop that answers
requests never waits on the API server. A watch that expires (410 Gone) or breaks is followed by a
fresh list, so a missed event is repaired by the next list rather than lost.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any, Final

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from keyturn.domain.annotations import KEYSET_LABEL, MANAGED_BY
from keyturn.jwks_server.store import Store

log = logging.getLogger("keyturn.jwks")

# Keyturn's ConfigMaps that belong to a keyset: the JWKS ones (Keyturn writes no other ConfigMap).
SELECTOR: Final = ",".join([*(f"{k}={v}" for k, v in MANAGED_BY.items()), KEYSET_LABEL])
WATCH_SECONDS: Final = 240
READ_TIMEOUT: Final = 300.0
MAX_BACKOFF: Final = 30.0


class Expired(Exception):
    """The watch's resourceVersion is too old (410 Gone): list again."""


class Watcher(threading.Thread):
    def __init__(self, api: Any, scope: str, store: Store, stop: threading.Event) -> None:
        super().__init__(name=f"jwks-watch-{scope or 'all'}", daemon=True)
        self.core = client.CoreV1Api(api)
        self.scope = scope  # "" for every namespace
        self.store = store
        self.stopping = stop

    def run(self) -> None:
        backoff = 1.0
        while not self.stopping.is_set():
            try:
                version = self._list()
                backoff = 1.0
                while not self.stopping.is_set():
                    version = self._watch(version)
            except Expired:
                log.info("watch expired; listing again", extra={"namespace": self.scope or None})
            except Exception as exc:  # the API server away, a 403: keep serving what is loaded, retry
                log.debug("watch failure", exc_info=True, extra={"namespace": self.scope or None})
                log.warning(
                    "listing or watching ConfigMaps failed: %s; retrying in %.0fs",
                    _describe(exc),
                    backoff,
                    extra={"namespace": self.scope or None, "reason": "WatchFailed"},
                )
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    def _lister(self) -> Any:
        if self.scope:
            return self.core.list_namespaced_config_map
        return self.core.list_config_map_for_all_namespaces

    def _scope_args(self) -> list[str]:
        return [self.scope] if self.scope else []

    def _list(self) -> str:
        response = self._lister()(
            *self._scope_args(), label_selector=SELECTOR, _preload_content=False, _request_timeout=(10, 60)
        )
        status = getattr(response, "status", 200)
        if status >= 400:
            raise RuntimeError(f"list answered {status}")
        body = json.loads(_raw(response).data)
        self.store.replace(self.scope, body.get("items") or [])
        log.info(
            "loaded %d JWKS ConfigMap(s)",
            len(body.get("items") or []),
            extra={"namespace": self.scope or None},
        )
        return str(body["metadata"]["resourceVersion"])

    def _watch(self, version: str) -> str:
        """Follow events from `version` until the server ends the watch; the version reached."""
        response = self._lister()(
            *self._scope_args(),
            label_selector=SELECTOR,
            resource_version=version,
            allow_watch_bookmarks=True,
            watch=True,
            timeout_seconds=WATCH_SECONDS,
            _preload_content=False,
            _request_timeout=(10, READ_TIMEOUT),
        )
        response = _raw(response)
        status = getattr(response, "status", 200)
        if status == 410:
            response.release_conn()
            raise Expired()
        if status >= 400:
            response.release_conn()
            raise RuntimeError(f"watch answered {status}")
        try:
            for line in _lines(response):
                if self.stopping.is_set():
                    break
                if not line.strip():
                    continue
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise Expired()
                    raise RuntimeError(f"watch error {obj.get('code')} {obj.get('reason')}")
                meta = obj.get("metadata") or {}
                version = str(meta.get("resourceVersion") or version)
                if kind == "BOOKMARK":
                    self.store.synced(self.scope)
                elif kind in ("ADDED", "MODIFIED", "DELETED"):
                    self.store.apply(self.scope, kind, obj)
        finally:
            response.release_conn()
        self.store.synced(self.scope)  # the server ended the watch cleanly: nothing was missed
        return version


def _raw(response: Any) -> Any:
    """The urllib3 response (the client wraps it in a RESTResponse when content is not preloaded)."""
    return getattr(response, "response", response)


def _lines(response: Any) -> Any:
    """The watch's newline-delimited JSON, as it arrives."""
    pending = b""
    for chunk in response.stream(amt=None, decode_content=False):
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            yield line.decode()
    if pending:
        yield pending.decode()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return f"{type(exc).__name__} {exc.status} {exc.reason}"
    return type(exc).__name__
