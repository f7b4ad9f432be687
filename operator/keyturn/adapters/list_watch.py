"""List, then watch, one kind of object in one scope (a namespace, or all), in a daemon thread.

The blocking Kubernetes client in a thread of its own: whoever consumes the objects never waits on
the API server, and the stream is read as it arrives even while the event loop is busy. A watch
that expires (410 Gone) or breaks is followed by a fresh list, so a missed event is repaired by
the next list rather than lost. Used by `keyturn serve-jwks` (its ConfigMaps) and by the operator
(its Secrets and ConfigMaps, and the keysets' early look: runtime/engine.py).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any, Final, Protocol

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from keyturn.domain.annotations import MANAGED_BY

WATCH_SECONDS: Final = 240
READ_TIMEOUT: Final = 300.0
MAX_BACKOFF: Final = 30.0

# A list call of the client for one scope: `lister(scope, **query)`, scope "" for every namespace.
Lister = Callable[..., Any]


class Sink(Protocol):
    """Where the objects go. Called from the watch thread."""

    def replace(self, scope: str, objects: list[dict[str, Any]]) -> None:
        """A full list of the scope: what it holds now."""

    def apply(self, scope: str, kind: str, obj: dict[str, Any]) -> None:
        """One event: ADDED, MODIFIED or DELETED."""

    def synced(self, scope: str) -> None:
        """A bookmark, or the server ended a watch cleanly: nothing was missed up to here."""

    def failed(self, scope: str) -> None:
        """A list or watch failed; the thread retries after a backoff."""


class Expired(Exception):
    """The watch's resourceVersion is too old (410 Gone): list again."""


class ListWatch(threading.Thread):
    def __init__(
        self,
        lister: Lister,
        scope: str,
        sink: Sink,
        stop: threading.Event,
        *,
        what: str,
        log: logging.Logger,
        label_selector: str | None = None,
    ) -> None:
        super().__init__(name=f"watch-{what}-{scope or 'all'}", daemon=True)
        self.lister = lister
        self.scope = scope  # "" for every namespace
        self.sink = sink
        self.stopping = stop
        self.what = what
        self.log = log
        self.query: dict[str, Any] = {"label_selector": label_selector} if label_selector else {}
        self.watch_seconds = WATCH_SECONDS

    def run(self) -> None:
        backoff = 1.0
        while not self.stopping.is_set():
            try:
                version = self._list()
                backoff = 1.0
                while not self.stopping.is_set():
                    version = self._watch(version)
            except Expired:
                self.log.info("watch expired; listing again", extra={"namespace": self.scope or None})
            except Exception as exc:  # the API server away, a 403: keep what is loaded, retry
                self.sink.failed(self.scope)
                self.log.debug("watch failure", exc_info=True, extra={"namespace": self.scope or None})
                self.log.warning(
                    "listing or watching %s failed: %s; retrying in %.0fs",
                    self.what,
                    _describe(exc),
                    backoff,
                    extra={"namespace": self.scope or None, "reason": "WatchFailed"},
                )
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    def _list(self) -> str:
        response = self.lister(self.scope, **self.query, _preload_content=False, _request_timeout=(10, 60))
        status = getattr(response, "status", 200)
        if status >= 400:
            raise RuntimeError(f"list answered {status}")
        body = json.loads(_raw(response).data)
        items = [item for item in body.get("items") or () if isinstance(item, dict)]
        self.sink.replace(self.scope, items)
        self.log.info("loaded %d %s", len(items), self.what, extra={"namespace": self.scope or None})
        return str(body["metadata"]["resourceVersion"])

    def _watch(self, version: str) -> str:
        """Follow events from `version` until the server ends the watch; the version reached."""
        response = self.lister(
            self.scope,
            **self.query,
            resource_version=version,
            allow_watch_bookmarks=True,
            watch=True,
            timeout_seconds=self.watch_seconds,
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
                    self.sink.synced(self.scope)
                elif kind in ("ADDED", "MODIFIED", "DELETED"):
                    self.sink.apply(self.scope, kind, obj)
        finally:
            response.release_conn()
        self.sink.synced(self.scope)  # the server ended the watch cleanly: nothing was missed
        return version


class Peek(ListWatch):
    """The events of the next `seconds`, without the list: started beside a ListWatch whose first
    list is long to answer (tens of MB for 10,000 keysets), so that a change made meanwhile reaches
    the sink at once; the list holds everything older. Its version comes from a list of one item.
    Events may reach the sink twice (here and after the list): the sink must not mind. On any
    failure it just ends: the ListWatch beside it sees everything all the same, only later."""

    def __init__(self, lister: Lister, scope: str, sink: Sink, stop: threading.Event, *, what: str,
                 log: logging.Logger, seconds: int) -> None:  # fmt: skip
        super().__init__(lister, scope, sink, stop, what=what, log=log)
        self.name = f"peek-{what}-{scope or 'all'}"
        self.watch_seconds = seconds

    def run(self) -> None:
        try:
            response = self.lister(self.scope, limit=1, _preload_content=False, _request_timeout=(10, 30))
            version = str(json.loads(_raw(response).data)["metadata"]["resourceVersion"])
            self._watch(version)
        except Exception as exc:
            self.log.debug(
                "peek at %s ended: %s", self.what, _describe(exc), extra={"namespace": self.scope or None}
            )


def owned(
    api: Any,
    kind: str,
    scope: str,
    sink: Sink,
    stop: threading.Event,
    log: logging.Logger,
    *,
    also: tuple[str, ...] = (),
    what: str | None = None,
) -> ListWatch:
    """The Secrets or ConfigMaps Keyturn manages (its managed-by label) in one scope; `also`: more
    label requirements (e.g. only the objects of a keyset)."""
    core = client.CoreV1Api(api)
    namespaced, everywhere = {
        "Secret": (core.list_namespaced_secret, core.list_secret_for_all_namespaces),
        "ConfigMap": (core.list_namespaced_config_map, core.list_config_map_for_all_namespaces),
    }[kind]

    def lister(scope: str, **query: Any) -> Any:
        return namespaced(scope, **query) if scope else everywhere(**query)

    selector = ",".join([*(f"{k}={v}" for k, v in MANAGED_BY.items()), *also])
    return ListWatch(lister, scope, sink, stop, what=what or f"{kind}s", log=log, label_selector=selector)


def _raw(response: Any) -> Any:
    """The urllib3 response (the client wraps it in a RESTResponse when content is not preloaded)."""
    return getattr(response, "response", response)


def _lines(response: Any) -> Iterator[str]:
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
