"""sasigner/server.py: the refresher (serve what was read, write the cache on change, keep serving
through failures), the socket bound only once there is something to serve, and the exit codes."""

from __future__ import annotations

import logging
import os
import socket as sockets
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
import urllib3
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from helpers import wait_for
from keyturn.sasigner import cache, server
from keyturn.sasigner.errors import SecretUnusable, SignerError
from keyturn.sasigner.pb import api_pb2, api_pb2_grpc
from keyturn.sasigner.service import Store
from keyturn.sasigner.snapshot import Snapshot, from_secret, keyset_spec
from redaction import needles
from unit.sasigner.keysets import NAME, NAMESPACE, T0, Keyset, keyset

Outcome = tuple[Snapshot, str] | BaseException


def snapshot_of(ks: Keyset, seconds: int = 0) -> Snapshot:
    document, spec = keyset_spec(NAMESPACE, NAME, {"spec": ks.spec_document})
    return from_secret(document, spec, ks.secret(), None, T0 + timedelta(seconds=seconds))


class FakeSource:
    """Answers fetch() from a script; wait_for_change returns at once until the script is over."""

    def __init__(self, outcomes: list[Outcome]) -> None:
        self.outcomes = outcomes
        self.watched: list[str] = []
        self.done = threading.Event()
        self.stopped = threading.Event()

    def fetch(self) -> tuple[Snapshot, str]:
        if not self.outcomes:
            self.done.set()
            self.stopped.wait(5)
            raise RuntimeError("stopped")
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def wait_for_change(self, resource_version: str) -> None:
        self.watched.append(resource_version)

    def stop(self) -> None:
        self.stopped.set()


@pytest.fixture(scope="module")
def served() -> tuple[Keyset, Snapshot]:
    ks = keyset()
    return ks, snapshot_of(ks)


def run_script(outcomes: list[Outcome], cache_path: Path | None = None) -> tuple[Store, FakeSource]:
    store, source = Store(), FakeSource(outcomes)
    refresher = server.Refresher(source, store, cache_path)
    refresher.start()
    assert source.done.wait(10)
    refresher.stop(timeout=10)
    return store, source


def test_what_is_read_is_served_and_cached(tmp_path: Path, served: tuple[Keyset, Snapshot]) -> None:
    _, snapshot = served
    path = tmp_path / "cache.json"
    store, source = run_script([(snapshot, "100")], path)
    assert store.get() == (snapshot, snapshot.fetched_at)
    assert source.watched == ["100"]  # the watch starts where the read was
    cached = cache.load(path, NAMESPACE, NAME)
    assert cached is not None and cached.same_keys(snapshot)


def test_the_cache_is_rewritten_only_when_the_keys_change(
    tmp_path: Path, served: tuple[Keyset, Snapshot]
) -> None:
    ks, snapshot = served
    path = tmp_path / "cache.json"
    store, source = Store(), FakeSource([])
    refresher = server.Refresher(source, store, path)
    source.outcomes = [(snapshot, "1")]
    refresher.refresh_once()
    written = path.stat().st_ino
    later = snapshot_of(ks, seconds=60)
    source.outcomes = [(later, "2")]
    refresher.refresh_once()
    assert path.stat().st_ino == written  # the same keys: no write
    assert store.get()[1] == later.fetched_at  # but the apiserver confirmed them later
    rotated = keyset()
    source.outcomes = [(snapshot_of(rotated), "3")]
    refresher.refresh_once()
    assert path.stat().st_ino != written


def test_a_cache_that_cannot_be_written_is_said_and_retried(
    tmp_path: Path, served: tuple[Keyset, Snapshot], caplog: pytest.LogCaptureFixture
) -> None:
    _, snapshot = served
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    store, source = Store(), FakeSource([(snapshot, "1"), (snapshot, "2")])
    refresher = server.Refresher(source, store, blocker / "cache.json")
    with caplog.at_level(logging.ERROR, logger="keyturn.sasigner"):
        refresher.refresh_once()
        refresher.refresh_once()
    failures = [r for r in caplog.records if getattr(r, "reason", None) == "CacheWriteFailed"]
    assert len(failures) == 2  # tried again at the next read
    assert store.get()[0] is snapshot  # served all the same


def test_failures_keep_what_is_served_and_are_said_once(
    served: tuple[Keyset, Snapshot], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    ks, snapshot = served
    monkeypatch.setattr(server, "BACKOFF_FIRST", 0.01)
    damaged = SecretUnusable("Secret kube-system/service-accounts: annotation keyturn.dev/state: is not JSON")
    down = urllib3.exceptions.MaxRetryError(cast(Any, None), "/api", None)
    outcomes: list[Outcome] = [(snapshot, "1"), down, down, ApiException(403, "Forbidden"), damaged, damaged]
    with caplog.at_level(logging.INFO, logger="keyturn.sasigner"):
        store, _ = run_script([*outcomes, (snapshot, "2")])
    assert store.get()[0] is snapshot
    warnings = [
        (r.getMessage(), getattr(r, "reason", None)) for r in caplog.records if r.levelno == logging.WARNING
    ]
    assert warnings == [
        (
            "cannot reach the API server (MaxRetryError); still serving the keys it had",
            "ApiServerUnreachable",
        ),
        ("API server answered 403 Forbidden; still serving the keys it had", "ApiServerRefused"),
        (f"{damaged}; still serving the keys it had", "SecretUnusable"),
    ]
    assert any(getattr(r, "reason", None) == "Recovered" for r in caplog.records)
    for needle in needles(ks.material(ks.current.kid)):
        assert needle not in caplog.text


# ------------------------------------------------------------------------------------ the socket
@pytest.fixture
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="kt-") as name:  # short: a socket path has at most 107 bytes
        yield Path(name)


def fetch_kids(path: Path) -> list[str] | None:
    """The kids served on the socket; None while nothing answers there (e.g. the stale socket)."""
    with grpc.insecure_channel(f"unix:{path}") as channel:
        try:
            answer = api_pb2_grpc.ExternalJWTSignerStub(channel).FetchKeys(
                api_pb2.FetchKeysRequest(), timeout=5
            )
        except grpc.RpcError:
            return None
    return [k.key_id for k in answer.keys]


def serve_in_thread(
    options: server.Options, store: Store
) -> tuple[threading.Thread, threading.Event, list[Any]]:
    stop, errors = threading.Event(), []

    def target() -> None:
        try:
            server.serve(options, store, (), stop)
        except SignerError as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    return thread, stop, errors


def test_the_socket_appears_only_once_there_is_something_to_serve(
    folder: Path, served: tuple[Keyset, Snapshot]
) -> None:
    _, snapshot = served
    path = folder / "s.sock"
    stale = sockets.socket(sockets.AF_UNIX)  # a socket file left by an earlier run
    stale.bind(str(path))
    stale.close()
    store = Store()
    thread, stop, errors = serve_in_thread(server.Options(path, NAMESPACE, NAME), store)
    try:
        assert not store.ready.wait(0.5)
        assert thread.is_alive()
        store.offer(snapshot)
        assert wait_for(lambda: fetch_kids(path), 10, message="the socket") == list(snapshot.kids)
    finally:
        stop.set()
        thread.join(10)
    assert not errors
    assert not path.exists()  # removed on stop


def test_a_stop_before_anything_was_read_binds_nothing(folder: Path) -> None:
    path = folder / "s.sock"
    thread, stop, errors = serve_in_thread(server.Options(path, NAMESPACE, NAME), Store())
    stop.set()
    thread.join(10)
    assert not thread.is_alive() and not errors and not path.exists()


def test_a_file_that_is_not_a_socket_is_never_replaced(folder: Path, served: tuple[Keyset, Snapshot]) -> None:
    path = folder / "s.sock"
    path.write_text("precious")
    store = Store()
    store.offer(served[1])
    thread, stop, errors = serve_in_thread(server.Options(path, NAMESPACE, NAME), store)
    thread.join(10)
    stop.set()
    assert [str(e) for e in errors] == [
        f"--socket {path}: exists and is not a socket; refusing to replace it"
    ]
    assert path.read_text() == "precious"


def test_a_socket_that_cannot_be_bound_is_a_named_error(
    folder: Path, served: tuple[Keyset, Snapshot]
) -> None:
    """grpcio raises where it once returned 0: either way the signer says which option is wrong."""
    (folder / "a-file").write_text("")
    path = folder / "a-file" / "s.sock"  # its "folder" is a file: nothing can be bound there
    store = Store()
    store.offer(served[1])
    thread, stop, errors = serve_in_thread(server.Options(path, NAMESPACE, NAME), store)
    thread.join(10)
    stop.set()
    assert [str(e) for e in errors] == [f"--socket {path}: cannot listen there"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(
            {"socket": Path("/" + "s" * 120)}, "longer than the 107 bytes", id="socket path too long"
        ),
        pytest.param(
            {"socket": Path("/nonexistent/s.sock")}, "folder /nonexistent does not exist", id="no folder"
        ),
        pytest.param({"cache": Path("/nonexistent/c.json")}, "--cache", id="no cache folder"),
        pytest.param(
            {"legacy_public_keys": (Path("/nonexistent.pub"),)}, "--legacy-public-key", id="no key file"
        ),
    ],
)
def test_a_bad_option_is_exit_code_2_before_anything_starts(
    folder: Path, change: dict[str, Any], message: str, caplog: pytest.LogCaptureFixture
) -> None:
    options = replace(server.Options(folder / "s.sock", NAMESPACE, NAME), **change)
    umask = os.umask(0o022)  # run() sets the process's umask: put this process's back
    try:
        with caplog.at_level(logging.ERROR, logger="keyturn.sasigner"):
            assert server.run(options, cast(ApiClient, None)) == 2
    finally:
        os.umask(umask)
    assert message in caplog.text
    assert not (folder / "s.sock").exists()
