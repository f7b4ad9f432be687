"""The process: granian serving the RSGI app, with a watch per scope in each worker.

granian (a Rust HTTP server) runs the app in worker processes it forks; each worker builds its own
store and watch in `build`, so with --workers N every process answers from its own memory and the
kernel spreads connections over them (SO_REUSEPORT). One worker is the default: it holds the target
(docs/design-decisions.md) and keeps /metrics one process's view.
"""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass
from typing import Any

from granian.constants import HTTPModes, Interfaces, Loops
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.server import Server

from keyturn import logs
from keyturn.jwks_server.app import JwksApp
from keyturn.jwks_server.store import Store

log = logging.getLogger("keyturn.jwks")

# Request line plus headers: far above any verifier's, far below what would cost memory.
MAX_REQUEST_HEAD = 16 * 1024


@dataclass(frozen=True)
class Config:
    host: str
    port: int
    namespaces: tuple[str, ...]  # empty: every namespace
    kubeconfig: str | None
    max_age_cap: int
    workers: int
    log_format: str
    verbose: bool


def build(config: Config) -> Any:  # granian's loader type: a callable app; JwksApp is RSGI
    """The app of one worker process, its store, and the watch threads started with it."""
    from keyturn.adapters.kube import api_client  # noqa: PLC0415 - after the fork, in the worker
    from keyturn.jwks_server.watch import watcher  # noqa: PLC0415

    logs.setup(config.log_format, config.verbose)
    scopes = list(config.namespaces) or [""]
    store = Store(scopes)
    stop = threading.Event()
    api = api_client(config.kubeconfig)
    watchers = [watcher(api, scope, store, stop) for scope in scopes]
    app = JwksApp(store, cap=config.max_age_cap, healthy=lambda: all(w.is_alive() for w in watchers))

    def start() -> None:
        for thread in watchers:
            thread.start()

    app.on_start.append(start)
    app.on_stop.append(stop.set)
    return app


def run(config: Config) -> int:
    logs.setup(config.log_format, config.verbose)
    log.info(
        "serving JWKS on %s:%d from ConfigMaps in %s",
        config.host,
        config.port,
        ", ".join(config.namespaces) or "every namespace",
        extra={"reason": "Starting"},
    )
    server = Server(
        "keyturn.jwks_server.app:JwksApp",  # not imported by name: the loader below builds the app
        address=config.host,
        port=config.port,
        interface=Interfaces.RSGI,
        workers=config.workers,
        loop=Loops.asyncio,
        http=HTTPModes.http1,
        websockets=False,
        http1_settings=HTTP1Settings(header_read_timeout=10_000, max_buffer_size=MAX_REQUEST_HEAD),
        log_level=LogLevels.debug if config.verbose else LogLevels.warning,
        log_access=False,
        respawn_failed_workers=True,
    )
    server.serve(target_loader=functools.partial(build, config), wrap_loader=False)
    return 0
