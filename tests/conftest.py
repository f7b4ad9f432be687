"""Fixtures shared by the whole suite, chiefly one real control plane per test session.

Starting a control plane takes seconds, so one serves the whole session and each test gets its
own namespace for isolation. It is only started when a selected test needs it: unit-test runs
never pay for it. Set KEYTURN_KUBECONFIG to run against an existing cluster (e.g. kind) instead;
then nothing is started or stopped here.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiClient, ApiException

from helpers import wait_for
from kubetools import Kube, OperatorProcess

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "hack"))

import localcluster  # noqa: E402 - lives in hack/, which the line above puts on the path

CRD_DIR = ROOT / "crds"
SYSTEM_DEPS = ROOT / "hack" / "system-deps.sh"
# Set by `make test` (CI) after `make system-deps`: there a test that would skip for a missing
# Debian package fails instead, so CI never passes by skipping what it was meant to run.
REQUIRE_SYSTEM_DEPS = "KEYTURN_REQUIRE_SYSTEM_DEPS"
# A DaemonSet target must roll across more than one Node to show it is judged node by node.
SESSION_NODES = 2
_BIN_DIR = pytest.StashKey[Path]()
_BUILD_ERROR = pytest.StashKey[Exception]()


def _terminal(config: pytest.Config) -> Callable[[str], None]:
    """A line printer that reaches the user's terminal even while pytest captures output.

    Fixture set-up runs under capture, and a build that is silent for minutes would look like
    a hang; writes are made with capturing briefly suspended.
    """
    capman: Any = config.pluginmanager.getplugin("capturemanager")
    reporter: Any = config.pluginmanager.getplugin("terminalreporter")

    def say(line: str) -> None:
        ctx = capman.global_and_fixture_disabled() if capman else contextlib.nullcontext()
        with ctx:
            if reporter is not None:  # knows whether a test name is pending on the current line
                reporter.ensure_newline()
                reporter.write_line(f"[keyturn] {line}", flush=True)
            else:
                sys.stderr.write(f"[keyturn] {line}\n")
                sys.stderr.flush()

    return say


def _needs_cluster(items: list[pytest.Item]) -> bool:
    return any("cluster" in getattr(item, "fixturenames", ()) for item in items)


def _debian(mark: pytest.Mark) -> tuple[str, str]:
    """(package, command) of a `debian(package, command=package)` marker."""
    package = mark.args[0]
    command = mark.kwargs.get("command", mark.args[1] if len(mark.args) > 1 else package)
    return str(package), str(command)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A `debian` marker must name a package `make system-deps` installs, or CI could not run it."""
    installed = SYSTEM_DEPS.read_text()
    for item in items:
        for mark in item.iter_markers("debian"):
            package, _ = _debian(mark)
            if not re.search(rf"\bneed\+=\({re.escape(package)}\)", installed):
                raise pytest.UsageError(
                    f"{item.nodeid}: Debian package {package} is not installed by hack/system-deps.sh"
                )


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skips a test whose Debian package is missing, naming it; fails instead under make test."""
    for mark in item.iter_markers("debian"):
        package, command = _debian(mark)
        if shutil.which(command) is None:
            named = command if command == package else f"{command} (Debian package {package})"
            reason = f"{named} not installed: make system-deps"
            if os.environ.get(REQUIRE_SYSTEM_DEPS) == "1":
                pytest.fail(f"{reason} ({REQUIRE_SYSTEM_DEPS}=1: nothing may be skipped)", pytrace=False)
            pytest.skip(reason)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Builds the binaries before the first test, outside any test's timeout.

    A cold build takes far longer than pytest-timeout allows one test, so it must not happen
    inside the session fixture's set-up.
    """
    config = session.config
    if config.option.collectonly or os.environ.get("KEYTURN_KUBECONFIG") or not _needs_cluster(session.items):
        return
    try:
        config.stash[_BIN_DIR] = localcluster.ensure_binaries(progress=_terminal(config))
    except Exception as e:  # reported by every test that needs the cluster, not as a crash
        config.stash[_BUILD_ERROR] = e


def _apply_crds(cluster: localcluster.Cluster) -> None:
    crds = sorted(CRD_DIR.glob("*.yaml")) if CRD_DIR.is_dir() else []
    if crds:
        cluster.apply_crds(crds)


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[localcluster.Cluster]:
    """The cluster under test, with every CRD in crds/ applied and established."""
    kubeconfig = os.environ.get("KEYTURN_KUBECONFIG")
    if kubeconfig:
        existing = localcluster.ExistingCluster(kubeconfig)
        _apply_crds(existing)
        yield existing
        return
    build_error = request.config.stash.get(_BUILD_ERROR, None)
    if build_error is not None:
        pytest.fail(f"control plane binaries unavailable: {build_error}", pytrace=False)
    say = _terminal(request.config)
    local = localcluster.LocalCluster(
        bin_dir=request.config.stash.get(_BIN_DIR, None),
        nodes=SESSION_NODES,
        keep=os.environ.get("KEYTURN_KEEP_CLUSTER") == "1",
        log=say,
        progress=say,
    )
    local.start()  # cleans up after itself if it fails
    try:
        _apply_crds(local)
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="session")
def api(cluster: localcluster.Cluster) -> Iterator[ApiClient]:
    """An admin API client for the session's cluster."""
    with contextlib.closing(cluster.api_client()) as api_client:
        yield api_client


def _default_sa_exists(core: client.CoreV1Api, namespace: str) -> bool:
    try:
        core.read_namespaced_service_account("default", namespace)
    except ApiException as e:
        if e.status == 404:
            return False
        raise
    return True


@pytest.fixture
def namespace(api: ApiClient) -> Iterator[str]:
    """A fresh namespace per test; Pods can be created in it as soon as it is yielded.

    Pods are refused until the namespace's default ServiceAccount exists, which the
    controller-manager creates asynchronously, hence the wait. Deletion is not awaited: nothing
    reuses the name, and namespace finalization would only slow the suite down.
    """
    core = client.CoreV1Api(api)
    name = f"t-{secrets.token_hex(4)}"
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"keyturn.dev/test": "true"}))
    )
    try:
        wait_for(
            lambda: _default_sa_exists(core, name),
            timeout=30,
            message=f"ServiceAccount {name}/default (created by kube-controller-manager)",
        )
        yield name
    finally:
        try:
            core.delete_namespace(name, propagation_policy="Background")
        except ApiException as e:
            if e.status != 404:
                raise


@pytest.fixture
def kube(api: ApiClient, namespace: str) -> Kube:
    return Kube(api, namespace)


@pytest.fixture
def keyturn(cluster: localcluster.Cluster, namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    """A running operator for the test's namespace; stopped (and its log kept in tmp_path) after."""
    proc = OperatorProcess(
        kubeconfig=Path(cluster.kubeconfig), namespace=namespace, log_path=tmp_path / "operator.log"
    )
    proc.start()
    yield proc
    proc.stop()
