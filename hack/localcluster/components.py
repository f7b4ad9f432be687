"""The table of components: what runs, with which flags, how it is checked, how long it may take.

Adding or changing a component is an edit here and nowhere else: give it a flag builder (a
function of the ``Context``), a health check, a start timeout, the ports it listens on and, if it
talks to the apiserver, the identity its client certificate and kubeconfig are issued for.
Components start stage by stage (``STAGES``, in order); the components of one stage start side
by side, and stop in the reverse order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localcluster.credentials import Credentials
from localcluster.errors import ClusterError
from localcluster.health import HealthCheck
from localcluster.network import LOOPBACK, POD_CIDR, SA_ISSUER, SERVICE_CIDR
from localcluster.nodes import KWOK_NODE_ANNOTATION
from localcluster.pki import Identity

STORAGE, API, CONTROLLERS = "etcd", "kube-apiserver", "controllers"
STAGES = (STORAGE, API, CONTROLLERS)


@dataclass
class Context:
    """What the flag builders read: the work dir, the bin dir, the ports and the credentials."""

    workdir: Path
    bin_dir: Path
    ports: Mapping[str, int]
    credentials: Credentials | None = None  # issued while etcd starts

    @property
    def creds(self) -> Credentials:
        if self.credentials is None:
            raise ClusterError("a component that needs credentials was started before they were issued")
        return self.credentials

    def url(self, scheme: str, port: str, path: str = "") -> str:
        return f"{scheme}://{LOOPBACK}:{self.ports[port]}{path}"

    @property
    def server(self) -> str:
        return self.url("https", API)

    def kubeconfig(self, component: str) -> Path:
        return self.workdir / f"{component}.kubeconfig"

    def config_file(self, component: str) -> Path:
        return self.workdir / f"{component}.yaml"


def _no_env(_ctx: Context) -> dict[str, str]:
    return {}


@dataclass(frozen=True)
class Component:
    name: str
    stage: str  # one of STAGES
    binary: str  # in the bin dir
    args: Callable[[Context], list[str]]
    health: Callable[[Context], HealthCheck]
    start_timeout: float  # seconds from launch to a passing health check
    ports: tuple[str, ...] = ()  # names of the ports it listens on, allocated before any start
    identity: Identity | None = None  # gets ``Context.kubeconfig(name)`` for this user if set
    config: Callable[[Context], dict[str, Any]] | None = None  # written to ``Context.config_file``
    env: Callable[[Context], dict[str, str]] = _no_env
    also_needs: tuple[str, ...] = ()  # other files it reads from the bin dir


@dataclass(frozen=True)
class FlagEdits:
    """A cluster's changes to a component's flags from the table: some dropped, some appended.

    Appended flags come last, so a repeated scalar flag overrides the table's value; a flag the
    table sets and that must go (e.g. one another flag excludes) is dropped by name.
    """

    extra: tuple[str, ...] = ()
    drop: frozenset[str] = frozenset()  # flag names, e.g. "--service-account-key-file"

    def apply(self, component: str, flags: Sequence[str]) -> list[str]:
        names = {flag.split("=", 1)[0] for flag in flags}
        unknown = sorted(self.drop - names)
        if unknown:
            raise ClusterError(f"cannot drop {', '.join(unknown)}: the table gives {component} no such flag")
        return [*(f for f in flags if f.split("=", 1)[0] not in self.drop), *self.extra]


def _etcd_args(c: Context) -> list[str]:
    client, peer = c.url("http", "etcd-client"), c.url("http", "etcd-peer")
    return [
        "--name=keyturn",
        f"--data-dir={c.workdir / 'etcd'}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=keyturn={peer}",
        "--unsafe-no-fsync",
        "--log-level=warn",
    ]


def _apiserver_args(c: Context) -> list[str]:
    creds = c.creds
    return [
        f"--etcd-servers={c.url('http', 'etcd-client')}",
        f"--bind-address={LOOPBACK}",
        f"--advertise-address={LOOPBACK}",
        f"--secure-port={c.ports[API]}",
        "--endpoint-reconciler-type=none",
        "--authorization-mode=Node,RBAC",
        f"--client-ca-file={creds.ca.cert}",
        f"--tls-cert-file={creds.apiserver.cert}",
        f"--tls-private-key-file={creds.apiserver.key}",
        f"--service-account-issuer={SA_ISSUER}",
        f"--service-account-key-file={creds.service_account.cert}",
        f"--service-account-signing-key-file={creds.service_account.key}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        f"--requestheader-client-ca-file={creds.front_proxy_ca.cert}",
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={creds.front_proxy_client.cert}",
        f"--proxy-client-key-file={creds.front_proxy_client.key}",
        "--allow-privileged=true",
        f"--cert-dir={c.workdir / 'apiserver-certs'}",
        "--profiling=false",
    ]


def _serving_args(c: Context, name: str) -> list[str]:
    """Delegated authn/authz and HTTPS serving, as kube-controller-manager and kube-scheduler share."""
    return [
        f"--authentication-kubeconfig={c.kubeconfig(name)}",
        f"--authorization-kubeconfig={c.kubeconfig(name)}",
        f"--bind-address={LOOPBACK}",
        f"--secure-port={c.ports[name]}",
        f"--tls-cert-file={c.creds.serving.cert}",
        f"--tls-private-key-file={c.creds.serving.key}",
    ]


def _controller_manager_args(c: Context) -> list[str]:
    creds = c.creds
    return [
        f"--kubeconfig={c.kubeconfig('kube-controller-manager')}",
        *_serving_args(c, "kube-controller-manager"),
        "--leader-elect=false",
        "--controllers=*",
        # One identity for all controllers instead of a minted token per controller, which
        # costs ~4s of start-up; that identity is therefore in system:masters (the table).
        "--use-service-account-credentials=false",
        f"--service-account-private-key-file={creds.service_account.key}",
        f"--root-ca-file={creds.ca.cert}",
        f"--cluster-signing-cert-file={creds.ca.cert}",
        f"--cluster-signing-key-file={creds.ca.key}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--profiling=false",
    ]


def _scheduler_config(c: Context) -> dict[str, Any]:
    return {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "clientConnection": {"kubeconfig": str(c.kubeconfig("kube-scheduler"))},
        "leaderElection": {"leaderElect": False},
    }


def _scheduler_args(c: Context) -> list[str]:
    return [f"--config={c.config_file('kube-scheduler')}", *_serving_args(c, "kube-scheduler")]


def _kwok_args(c: Context) -> list[str]:
    key, value = KWOK_NODE_ANNOTATION
    return [
        f"--kubeconfig={c.kubeconfig('kwok')}",
        f"--config={c.bin_dir / 'stages.yaml'}",
        "--manage-all-nodes=false",
        f"--manage-nodes-with-annotation-selector={key}={value}",
        f"--server-address={LOOPBACK}:{c.ports['kwok']}",
        f"--cidr={POD_CIDR}",
        f"--node-ip={LOOPBACK}",
        # Leases are how the node-lifecycle controller sees a live Node (the stage set only
        # refreshes status every ~10 min); v0.8 defaults this flag to 0, i.e. no leases.
        "--node-lease-duration-seconds=40",
    ]


def _served_by_the_component(port: str) -> Callable[[Context], HealthCheck]:
    """/healthz over HTTPS with the cluster's serving certificate."""
    return lambda c: HealthCheck(c.url("https", port, "/healthz"), tls=c.creds.ca_tls())


COMPONENTS: tuple[Component, ...] = (
    Component(
        name="etcd",
        stage=STORAGE,
        binary="etcd",
        args=_etcd_args,
        health=lambda c: HealthCheck(c.url("http", "etcd-client", "/health"), '"health":"true"'),
        start_timeout=60,
        ports=("etcd-client", "etcd-peer"),
    ),
    Component(
        name="kube-apiserver",
        stage=API,
        binary="kube-apiserver",
        args=_apiserver_args,
        health=lambda c: HealthCheck(c.url("https", API, "/readyz"), tls=c.creds.admin_tls()),
        start_timeout=90,
        ports=(API,),
    ),
    Component(
        name="kube-controller-manager",
        stage=CONTROLLERS,
        binary="kube-controller-manager",
        args=_controller_manager_args,
        health=_served_by_the_component("kube-controller-manager"),
        start_timeout=60,
        ports=("kube-controller-manager",),
        identity=Identity("system:kube-controller-manager", "system:masters"),
    ),
    Component(
        name="kube-scheduler",
        stage=CONTROLLERS,
        binary="kube-scheduler",
        args=_scheduler_args,
        health=_served_by_the_component("kube-scheduler"),
        start_timeout=60,
        ports=("kube-scheduler",),
        identity=Identity("system:kube-scheduler"),
        config=_scheduler_config,
    ),
    Component(
        name="kwok",
        stage=CONTROLLERS,
        binary="kwok",
        args=_kwok_args,
        health=lambda c: HealthCheck(c.url("http", "kwok", "/healthz")),
        start_timeout=60,
        ports=("kwok",),
        # KWOK plays every kubelet at once (status of any Node and Pod, leases, deletions);
        # the Node authorizer would confine a real kubelet to its own node, so KWOK is admin.
        identity=Identity("kwok-controller", "system:masters"),
        env=lambda c: {"KWOK_WORKDIR": str(c.workdir / "kwok")},  # else it also reads ~/.kwok
        also_needs=("stages.yaml",),
    ),
)


def by_name(components: Sequence[Component] = COMPONENTS) -> dict[str, Component]:
    return {c.name: c for c in components}


def in_stage(stage: str, components: Sequence[Component] = COMPONENTS) -> list[Component]:
    return [c for c in components if c.stage == stage]


def port_names(components: Sequence[Component] = COMPONENTS) -> list[str]:
    return [port for c in components for port in c.ports]


def identities(components: Sequence[Component] = COMPONENTS) -> dict[str, Identity]:
    return {c.name: c.identity for c in components if c.identity is not None}


def needed_files(components: Sequence[Component] = COMPONENTS) -> list[str]:
    """Every file a start reads from the bin dir; kubectl is for the callers."""
    return [*(f for c in components for f in (c.binary, *c.also_needs)), "kubectl"]
