"""Helpers for tests that run the real operator process against the real control plane."""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client import ApiClient, ApiException

from helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
GROUP, VERSION, PLURAL = "keyturn.dev", "v1alpha1", "jwtkeysets"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class OperatorProcess:
    """`python -m keyturn run` as a child process, watching only the test's namespace.

    Standalone unless `extra_args` (appended to `keyturn run`) ask for leader election: `--lease NAME`
    (or its old alias `--peering NAME`).
    """

    kubeconfig: Path
    namespace: str
    log_path: Path
    env_extra: dict[str, str] = field(default_factory=dict)
    extra_args: list[str] = field(default_factory=list)
    kubeconfig_override: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    metrics_port: int = 0
    logs: list[str] = field(default_factory=list)

    def start(self, **env: str) -> None:
        self.metrics_port = free_port()
        environ = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig_override or self.kubeconfig),
            **self.env_extra,
            **env,
        }
        handle = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "keyturn",
                "run",
                "--namespace",
                self.namespace,
                *([] if self.elects else ["--standalone"]),
                "--metrics-port",
                str(self.metrics_port),
                "--health-port",
                str(free_port()),
                "--log-format",
                "json",
                *self.extra_args,
            ],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=environ,
            cwd=ROOT,
        )
        handle.close()

    @property
    def elects(self) -> bool:
        return any(
            a in ("--lease", "--peering") or a.startswith(("--lease=", "--peering=")) for a in self.extra_args
        )

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def metrics(self) -> str:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            text: str = response.read().decode()
            return text


@dataclass
class Kube:
    """Thin typed helpers over the kubernetes client for one test namespace."""

    api: ApiClient
    namespace: str

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    @property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.api)

    def create_keyset(
        self, name: str, spec: dict[str, Any], annotations: dict[str, str] | None = None
    ) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "JwtKeySet",
            "metadata": {"name": name, "annotations": annotations or {}},
            "spec": spec,
        }
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, body)

    def keyset(self, name: str) -> dict[str, Any]:
        obj = self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)
        assert isinstance(obj, dict)
        return obj

    def status(self, name: str) -> dict[str, Any]:
        status: dict[str, Any] = self.keyset(name).get("status") or {}
        return status

    def patch_keyset(self, name: str, patch: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name, patch)

    def patch_status(self, name: str, patch: dict[str, Any] | list[dict[str, Any]]) -> None:
        """A merge patch (dict), or a JSON patch (list) that can replace status.emergency whole."""
        if isinstance(patch, list):
            self.custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                name,
                patch,
                _content_type="application/json-patch+json",
            )
        else:
            self.custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, self.namespace, PLURAL, name, patch
            )

    def secret(self, name: str) -> dict[str, str] | None:
        try:
            secret = self.core.read_namespaced_secret(name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}

    def secret_record(self, name: str) -> dict[str, Any]:
        secret = self.core.read_namespaced_secret(name, self.namespace)
        assert secret.metadata is not None
        record: dict[str, Any] = json.loads((secret.metadata.annotations or {})["keyturn.dev/state"])
        return record

    def resource_version(self, kind: str, name: str) -> str:
        """resourceVersion of a Secret or ConfigMap, to prove nobody wrote it."""
        read = self.core.read_namespaced_secret if kind == "secret" else self.core.read_namespaced_config_map
        meta = read(name, self.namespace).metadata
        assert meta is not None
        return str(meta.resource_version)

    def jwks(self, name: str, key: str = "jwks.json") -> dict[str, Any] | None:
        try:
            cm = self.core.read_namespaced_config_map(name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        doc: dict[str, Any] = json.loads((cm.data or {})[key])
        return doc

    def condition(self, name: str, kind: str) -> dict[str, Any] | None:
        for cond in self.status(name).get("conditions") or ():
            if cond.get("type") == kind:
                found: dict[str, Any] = cond
                return found
        return None

    def wait_ready(self, name: str, timeout: float = 60) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            status = self.status(name)
            cond = next((c for c in status.get("conditions") or () if c["type"] == "Ready"), None)
            return status if cond and cond["status"] == "True" else None

        return wait_for(ready, timeout, message=f"JwtKeySet {name} Ready")

    def wait_status(
        self, name: str, predicate: Callable[[dict[str, Any]], object], timeout: float, message: str
    ) -> dict[str, Any]:
        """The first status for which `predicate` holds."""

        def check() -> dict[str, Any] | None:
            status = self.status(name)
            return status if predicate(status) else None

        return wait_for(check, timeout, message=f"{name}: {message}")

    def wait_condition(self, name: str, kind: str, value: str, timeout: float = 20) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            cond = self.condition(name, kind)
            return cond if cond is not None and cond.get("status") == value else None

        return wait_for(check, timeout, message=f"{name}: condition {kind}={value}")

    def events(self) -> list[Any]:
        items: list[Any] = self.core.list_namespaced_event(self.namespace).items
        return items


def token_kubeconfig(api: ApiClient, admin_kubeconfig: Path, namespace: str, sa: str, path: Path) -> Path:
    """A kubeconfig holding only a TokenRequest token for the ServiceAccount: its identity, nothing else."""
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
    )
    minted = client.CoreV1Api(api).create_namespaced_service_account_token(sa, namespace, request).status
    assert minted is not None and minted.token
    admin = yaml.safe_load(admin_kubeconfig.read_text())
    current = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    server = next(c for c in admin["clusters"] if c["name"] == current["context"]["cluster"])
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [server],
        "users": [{"name": sa, "user": {"token": minted.token}}],
        "contexts": [{"name": sa, "context": {"cluster": server["name"], "user": sa}}],
        "current-context": sa,
    }
    path.write_text(yaml.safe_dump(doc))
    path.chmod(0o600)
    return path


def deployment(
    name: str,
    annotations: dict[str, str] | None = None,
    *,
    replicas: int = 1,
    node_selector: dict[str, str] | None = None,
    container: client.V1Container | None = None,
) -> client.V1Deployment:
    """A Deployment for the KWOK node: any image, since nothing is pulled; labelled app=<name>."""
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, annotations=annotations, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=_pod_template(labels, node_selector, container),
        ),
    )


def _pod_template(
    labels: dict[str, str], node_selector: dict[str, str] | None, container: client.V1Container | None
) -> client.V1PodTemplateSpec:
    return client.V1PodTemplateSpec(
        metadata=client.V1ObjectMeta(labels=labels),
        spec=client.V1PodSpec(
            containers=[container or client.V1Container(name="app", image="registry.example/app:1")],
            node_selector=node_selector,
        ),
    )


def statefulset(
    name: str,
    annotations: dict[str, str] | None = None,
    *,
    replicas: int = 2,
    partition: int | None = None,
    on_delete: bool = False,
    node_selector: dict[str, str] | None = None,
) -> client.V1StatefulSet:
    """A StatefulSet for the KWOK nodes, labelled app=<name>: no volumeClaimTemplates (nothing
    provisions volumes here), and a `serviceName` whose Service need not exist (nothing resolves
    the Pods' DNS names)."""
    labels = {"app": name}
    rolling = (
        client.V1RollingUpdateStatefulSetStrategy(partition=partition) if partition is not None else None
    )
    strategy = client.V1StatefulSetUpdateStrategy(
        type="OnDelete" if on_delete else "RollingUpdate", rolling_update=None if on_delete else rolling
    )
    return client.V1StatefulSet(
        metadata=client.V1ObjectMeta(name=name, annotations=annotations, labels=labels),
        spec=client.V1StatefulSetSpec(
            replicas=replicas,
            service_name=name,
            selector=client.V1LabelSelector(match_labels=labels),
            update_strategy=strategy,
            template=_pod_template(labels, node_selector, None),
        ),
    )


def daemonset(
    name: str, annotations: dict[str, str] | None = None, *, on_delete: bool = False
) -> client.V1DaemonSet:
    """A DaemonSet: one Pod on every KWOK node, labelled app=<name>."""
    labels = {"app": name}
    return client.V1DaemonSet(
        metadata=client.V1ObjectMeta(name=name, annotations=annotations, labels=labels),
        spec=client.V1DaemonSetSpec(
            selector=client.V1LabelSelector(match_labels=labels),
            update_strategy=client.V1DaemonSetUpdateStrategy(
                type="OnDelete" if on_delete else "RollingUpdate"
            ),
            template=_pod_template(labels, None, None),
        ),
    )


def statefulset_rolled(sts: client.V1StatefulSet) -> bool:
    """What `kubectl rollout status statefulset` waits for: every ordinal at or above the partition
    on the update revision, every replica ready, and (without a partition) currentRevision caught up."""
    status, spec, meta = sts.status, sts.spec, sts.metadata
    if status is None or spec is None or meta is None:
        return False
    replicas = spec.replicas if spec.replicas is not None else 1
    rolling = spec.update_strategy.rolling_update if spec.update_strategy else None
    partition = (rolling.partition if rolling else None) or 0
    return bool(
        (status.observed_generation or 0) >= (meta.generation or 0)
        and (status.updated_replicas or 0) >= replicas - partition
        and (status.ready_replicas or 0) == replicas
        and (partition > 0 or status.current_revision == status.update_revision)
    )


def daemonset_rolled(ds: client.V1DaemonSet) -> bool:
    """What `kubectl rollout status daemonset` waits for: every scheduled node updated and available."""
    status, meta = ds.status, ds.metadata
    if status is None or meta is None:
        return False
    desired = status.desired_number_scheduled or 0
    return bool(
        (status.observed_generation or 0) >= (meta.generation or 0)
        and desired > 0
        and (status.updated_number_scheduled or 0) == desired
        and (status.number_available or 0) == desired
        and not status.number_unavailable
    )


def rollout_complete(dep: client.V1Deployment) -> bool:
    """What `kubectl rollout status` waits for: the current template everywhere, all available."""
    status, spec, meta = dep.status, dep.spec, dep.metadata
    if status is None or spec is None or meta is None:
        return False
    return bool(
        (status.observed_generation or 0) >= (meta.generation or 0)
        and (status.updated_replicas or 0) == spec.replicas
        and (status.available_replicas or 0) == spec.replicas
        and (status.replicas or 0) == spec.replicas
    )


def template_annotations(workload: Any) -> dict[str, str]:
    """The pod template's annotations of a Deployment, StatefulSet or DaemonSet."""
    meta = workload.spec.template.metadata if workload.spec else None
    return dict((meta.annotations if meta else None) or {})


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def max_age(self) -> int:
        match = re.fullmatch(r"public, max-age=(\d+), must-revalidate", self.headers["cache-control"])
        assert match, self.headers["cache-control"]
        return int(match[1])


@dataclass
class JwksServer:
    """`python -m keyturn serve-jwks` as a child process on 127.0.0.1 and a free port.

    `args` are those of `serve-jwks` (e.g. the chart's); --listen and --kubeconfig are replaced.
    """

    kubeconfig: Path
    log_path: Path
    args: list[str] = field(default_factory=list)
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.port = free_port()
        kept = [a for a in self.args if a != "serve-jwks" and not a.startswith(("--listen", "--kubeconfig"))]
        with self.log_path.open("ab") as handle:
            self.proc = subprocess.Popen(
                [
                    sys.executable, "-m", "keyturn", "serve-jwks",
                    f"--listen=127.0.0.1:{self.port}",
                    f"--kubeconfig={self.kubeconfig}",
                    *kept,
                ],
                stdout=handle,
                stderr=subprocess.STDOUT,
                env={**os.environ, "KUBECONFIG": str(self.kubeconfig)},
                cwd=ROOT,
                start_new_session=True,  # granian forks a worker: stop the whole group
            )  # fmt: skip
        try:
            wait_for(self._ready, 30, interval=0.05, message="serve-jwks /readyz")
        except BaseException:
            self.stop()  # no server left behind by a test that could not start it
            raise

    def _ready(self) -> bool:
        assert self.proc is not None
        assert self.proc.poll() is None, f"serve-jwks exited:\n{self.log_path.read_text()[-3000:]}"
        try:
            return self.get("/readyz").status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    def get(self, path: str, headers: dict[str, str] | None = None, method: str = "GET") -> Response:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request(method, path, headers=headers or {})
            answer = conn.getresponse()
            return Response(answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read())
        finally:
            conn.close()

    def raw(self, request: bytes) -> bytes:
        """A request as bytes on its own connection; the status line of the answer."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            sock.sendall(request)
            data = b""
            while b"\r\n" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        return data.split(b"\r\n", 1)[0]

    def metrics(self) -> str:
        return self.get("/metrics").body.decode()
