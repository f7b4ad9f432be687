"""`keyturn sa-signer`: the cache, the refresher thread and the gRPC server on the Unix socket.

The order is what breaks the circle with kube-apiserver:

1. the legacy keys are read (a bad file is a usage error: exit 2);
2. the cache, if there is one and it can be trusted, is served at once;
3. the refresher reads the keyset through the API server and watches its Secret; every change
   it sees replaces what is served and rewrites the cache; while the API server is down it
   retries (0.5 s doubling to 10 s) and what is served stays;
4. the socket is bound only once there is something to serve: the apiserver waits for the
   socket to appear, and a socket that answers "not ready" would fail the apiserver's start.

SIGTERM or SIGINT stop it: the server drains for at most 2 s and the socket file is removed.
"""

from __future__ import annotations

import logging
import os
import signal
import stat
import threading
import time
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Final, Protocol

import grpc
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from keyturn.sasigner import cache, legacy
from keyturn.sasigner.errors import SignerError
from keyturn.sasigner.pb import api_pb2_grpc
from keyturn.sasigner.service import SignerService, Store
from keyturn.sasigner.snapshot import PublicKey, Snapshot
from keyturn.sasigner.source import KeysetSource

log = logging.getLogger("keyturn.sasigner")

BACKOFF_FIRST: Final = 0.5
BACKOFF_MAX: Final = 10.0
WORKERS: Final = 8
STOP_GRACE: Final = 2.0
MAX_SOCKET_PATH: Final = 107  # sun_path holds 108 bytes with the terminating NUL


@dataclass(frozen=True)
class Options:
    socket: Path
    namespace: str
    name: str
    cache: Path | None = None
    legacy_public_keys: tuple[Path, ...] = field(default_factory=tuple)


def _describe(exc: BaseException) -> str:
    """One line about a failed read, with no response body (it could quote an object)."""
    if isinstance(exc, SignerError):
        return str(exc)
    if isinstance(exc, ApiException):
        return f"API server answered {exc.status} {exc.reason}"
    return f"cannot reach the API server ({type(exc).__name__})"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, SignerError):
        return exc.reason
    return "ApiServerRefused" if isinstance(exc, ApiException) else "ApiServerUnreachable"


class Source(Protocol):
    """What the refresher needs of source.KeysetSource (tests pass a fake)."""

    def fetch(self) -> tuple[Snapshot, str]: ...
    def wait_for_change(self, resource_version: str) -> None: ...
    def stop(self) -> None: ...


class Refresher:
    """Keeps the Store (and the cache file) at the Secret's latest state; a daemon thread."""

    def __init__(
        self, source: Source, store: Store, cache_path: Path | None, cached: Snapshot | None = None
    ) -> None:
        self._source, self._store, self._cache = source, store, cache_path
        self._cached = cached  # what the cache file holds (as far as this process wrote or read it)
        self._version = ""  # where the watch starts: the resourceVersion of the last read
        self._stopping = threading.Event()
        self._last_problem: str | None = None
        self._thread = threading.Thread(target=self._run, name="sa-signer-refresh", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 0) -> None:
        """Ends the loop (a watch in progress is closed); waits up to `timeout` for the thread."""
        self._stopping.set()
        self._source.stop()
        if timeout and self._thread.is_alive():
            self._thread.join(timeout)

    def refresh_once(self) -> Snapshot:
        """Read the keyset, serve what was read, write the cache if the keys changed."""
        snapshot, self._version = self._source.fetch()
        if self._store.offer(snapshot):
            log.info(
                f"serving JwtKeySet {snapshot.namespace}/{snapshot.name}: {snapshot.algorithm}, signing with "
                f"{snapshot.signing_kid}, verifying {', '.join(snapshot.kids)}",
                extra={"keyset": snapshot.name, "namespace": snapshot.namespace, "kid": snapshot.signing_kid},
            )
        if self._cache is not None and not snapshot.same_keys(self._cached):
            try:
                cache.store(self._cache, snapshot)
                self._cached = snapshot
            except OSError as exc:  # retried at the next read; serving goes on from memory
                log.error(
                    f"cannot write the cache file {self._cache}: {exc.strerror}",
                    extra={"reason": "CacheWriteFailed"},
                )
        return snapshot

    def _problem(self, exc: BaseException) -> None:
        text = _describe(exc)
        if text != self._last_problem:  # once per distinct problem, not once per retry
            reason = _reason(exc)
            served = "; still serving the keys it had" if self._store.ready.is_set() else ""
            log.warning(f"{text}{served}", extra={"reason": reason})
            self._last_problem = text

    def _run(self) -> None:
        delay = BACKOFF_FIRST
        while not self._stopping.is_set():
            try:
                self.refresh_once()
                if self._last_problem is not None:
                    log.info("the keyset reads again", extra={"reason": "Recovered"})
                    self._last_problem = None
                delay = BACKOFF_FIRST
                self._source.wait_for_change(self._version)
            except Exception as exc:  # every failure is retried; the process never dies of one
                if self._stopping.is_set():
                    return
                self._problem(exc)
                self._stopping.wait(delay)
                delay = min(BACKOFF_MAX, delay * 2)


def _load_cache(options: Options, store: Store) -> Snapshot | None:
    if options.cache is None:
        return None
    try:
        snapshot = cache.load(options.cache, options.namespace, options.name)
    except SignerError as exc:
        log.error(f"{exc}; not using it", extra={"reason": exc.reason})
        return None
    if snapshot is None:
        log.info(f"no cache file {options.cache} yet: waiting for the API server")
        return None
    store.offer(snapshot)
    log.info(
        f"serving from the cache (read from the API server at {snapshot.fetched_at:%Y-%m-%dT%H:%M:%SZ}): "
        f"signing with {snapshot.signing_kid}, verifying {', '.join(snapshot.kids)}",
        extra={"keyset": snapshot.name, "namespace": snapshot.namespace, "kid": snapshot.signing_kid},
    )
    return snapshot


def _clear_socket(path: Path) -> None:
    """A socket left by an earlier run is removed; anything else at the path is an error."""
    try:
        info = path.lstat()
    except (FileNotFoundError, NotADirectoryError):  # nothing there: binding says what is wrong
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise SignerError(f"--socket {path}: exists and is not a socket; refusing to replace it")
    path.unlink()


def serve(
    options: Options,
    store: Store,
    legacy_keys: Sequence[PublicKey],
    stop: threading.Event,
    on_listening: Callable[[], None] = lambda: None,
) -> None:
    """Bind the socket once the store is ready, answer until `stop` is set, then remove the socket."""
    while not store.ready.wait(0.2):
        if stop.is_set():
            return
    _clear_socket(options.socket)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="sa-signer"))
    api_pb2_grpc.add_ExternalJWTSignerServicer_to_server(SignerService(store, legacy_keys), server)
    try:
        port = server.add_insecure_port(f"unix:{options.socket}")
    except RuntimeError:  # grpcio raises ("Failed to bind") where older versions returned 0
        port = 0
    if port == 0:
        raise SignerError(f"--socket {options.socket}: cannot listen there")
    server.start()
    log.info(f"listening on {options.socket}", extra={"reason": "Listening"})
    on_listening()
    try:
        stop.wait()
    finally:
        server.stop(STOP_GRACE).wait()
        options.socket.unlink(missing_ok=True)
        log.info("stopped", extra={"reason": "Stopped"})


def check_options(options: Options) -> None:
    if len(os.fsencode(options.socket)) > MAX_SOCKET_PATH:
        raise SignerError(
            f"--socket {options.socket}: longer than the {MAX_SOCKET_PATH} bytes a Unix socket path may have"
        )
    if not options.socket.parent.is_dir():
        raise SignerError(f"--socket {options.socket}: folder {options.socket.parent} does not exist")
    if options.cache is not None and not options.cache.parent.is_dir():
        raise SignerError(f"--cache {options.cache}: folder {options.cache.parent} does not exist")


def run(options: Options, api: client.ApiClient) -> int:
    """The signer until SIGTERM/SIGINT: 0 then, 2 for a bad option or legacy key file."""
    os.umask(0o077)  # the cache, its temporary files and the socket: the signer's user alone
    # urllib3 logs each of its retries; the refresher says once what is wrong and retries itself.
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    try:
        check_options(options)
        legacy_keys = legacy.load_files(options.legacy_public_keys)
    except SignerError as exc:
        log.error(str(exc), extra={"reason": exc.reason})
        return 2
    if legacy_keys:
        log.info(f"legacy keys (verify only, not in the OIDC JWKS): {', '.join(k.kid for k in legacy_keys)}")
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info(f"{signal.Signals(signum).name}: stopping")
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    store = Store()
    cached = _load_cache(options, store)
    refresher = Refresher(KeysetSource(api, options.namespace, options.name), store, options.cache, cached)
    refresher.start()
    started = time.monotonic()
    try:
        serve(options, store, legacy_keys, stop)
    except SignerError as exc:
        log.error(str(exc), extra={"reason": exc.reason})
        return 2
    finally:
        refresher.stop()
    log.debug(f"ran {time.monotonic() - started:.0f}s")
    return 0
