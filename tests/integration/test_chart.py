"""The Helm chart and the Kustomize base, installed on the real control plane and used for real.

The test that matters most is the one a reviewer cannot do by reading: the operator, running with
nothing but the token of the chart's own ServiceAccount, carries out a whole rotation (keys,
JWKS, status, events, the Lease, rolling targets of every kind, a legacy finalizer) without a single
403. Every RBAC rule the chart grants is there because that run needs it; a missing one shows up in
the operator's log.
Helm is the pinned one from the build cache (hack/build-binaries.sh).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from kubernetes import client
from kubernetes.client import ApiClient, ApiException

import localcluster
import render_deploy
from helpers import wait_for
from keyturn import cli
from kubetools import (
    JwksServer,
    Kube,
    OperatorProcess,
    deployment,
    free_port,
    rollout_complete,
    token_kubeconfig,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "keyturn"
DEPLOY = ROOT / "deploy"
KUBE_VERSION = localcluster.versions()["KUBERNETES_VERSION"]
ROTATION = {"interval": "30d", "publishAhead": "0s", "gracePeriod": "7d", "retention": "14d"}
FINALIZER = "keyturn.dev/finalizer"
SCHEMA_ERROR = "values don't meet the specifications of the schema"
# On a cluster with real nodes (make kind-e2e), Pods run the image built and loaded there.
TEST_IMAGE = os.environ.get("KEYTURN_TEST_IMAGE", "")
T = TypeVar("T")

# What the operator may do, rule by rule: (apiGroup, resource, verb, resourceName or "").
# A change here is a change of the operator's privileges: it must be deliberate.
Grant = tuple[str, str, str, str]
NAMESPACED_GRANTS: set[Grant] = {
    *(("keyturn.dev", "jwtkeysets", v, "") for v in ("get", "list", "watch", "patch")),
    ("keyturn.dev", "jwtkeysets/status", "patch", ""),
    *(
        ("", r, v, "")
        for r in ("secrets", "configmaps")
        for v in ("get", "list", "watch", "create", "update")
    ),
    ("", "events", "create", ""),
    *(
        ("apps", r, v, "")
        for r in ("deployments", "statefulsets", "daemonsets")
        for v in ("list", "watch", "patch")
    ),
}
# kopf's scanning, cluster-wide mode only: a namespaced operator turns it off and needs nothing
# cluster-scoped.
CRD_GRANTS = {("apiextensions.k8s.io", "customresourcedefinitions", v, "") for v in ("list", "watch")}
CLUSTER = "(cluster-wide)"  # the scope of a ClusterRoleBinding's grants


def lease_grants(name: str) -> set[Grant]:
    """Leader election, in the release namespace only: create (no name can restrict it), then the
    one Lease read and replaced by name."""
    return {
        ("coordination.k8s.io", "leases", "create", ""),
        ("coordination.k8s.io", "leases", "get", name),
        ("coordination.k8s.io", "leases", "update", name),
    }


# ------------------------------------------------------------------------------------ helpers


@pytest.fixture(scope="session")
def helm() -> Path:
    path = localcluster.ensure_binaries() / "helm"
    assert path.exists(), f"{path} missing: hack/build-binaries.sh builds Helm into the cache"
    return path


def run(argv: list[str | Path], check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, argv))} exited {result.returncode}:\n{result.stderr}")
    return result


def values_file(tmp_path: Path, values: dict[str, Any]) -> Path:
    path = tmp_path / f"values-{secrets.token_hex(3)}.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def template(
    helm: Path,
    tmp_path: Path,
    values: dict[str, Any],
    release: str = "keyturn",
    namespace: str = "keyturn-system",
) -> subprocess.CompletedProcess[str]:
    return run(
        [
            helm,
            "template",
            release,
            CHART,
            "--namespace",
            namespace,
            "--kube-version",
            KUBE_VERSION,
            "-f",
            values_file(tmp_path, values),
        ],
        check=False,
    )


def rendered(helm: Path, tmp_path: Path, values: dict[str, Any], **kw: str) -> list[dict[str, Any]]:
    result = template(helm, tmp_path, values, **kw)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def one(objs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {[o['metadata'] for o in found]}"
    return found[0]


def grants(objs: list[dict[str, Any]], service_account: str) -> dict[str, set[Grant]]:
    """Everything the ServiceAccount may do through the rendered (Cluster)Roles bound to it, by the
    namespace of the binding (CLUSTER for a ClusterRoleBinding)."""
    roles = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objs}
    out: dict[str, set[Grant]] = {}
    for binding in (o for o in objs if o["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        if not any(
            s["kind"] == "ServiceAccount" and s["name"] == service_account for s in binding["subjects"]
        ):
            continue
        ref = binding["roleRef"]
        scope = binding["metadata"]["namespace"] if binding["kind"] == "RoleBinding" else CLUSTER
        ns = binding["metadata"].get("namespace") if ref["kind"] == "Role" else None
        for rule in roles[(ref["kind"], ns, ref["name"])]["rules"]:
            for g in rule["apiGroups"]:
                for r in rule["resources"]:
                    for v in rule["verbs"]:
                        for n in rule.get("resourceNames") or [""]:
                            out.setdefault(scope, set()).add((g, r, v, n))
    return out


def operator_deployment(objs: list[dict[str, Any]]) -> dict[str, Any]:
    """The operator's Deployment (the chart also renders the JWKS server's)."""
    return one([o for o in objs if "jwks-server" not in o["metadata"]["name"]], "Deployment")


def jwks_server(objs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return one([o for o in objs if o["metadata"]["name"].endswith("jwks-server")], kind)


def container(objs: list[dict[str, Any]]) -> dict[str, Any]:
    (main,) = operator_deployment(objs)["spec"]["template"]["spec"]["containers"]
    return dict(main)


def poll(predicate: Callable[[], T | None], timeout: float, interval: float = 0.2) -> T | None:
    """Like wait_for, but returns None on timeout, for a check that is asserted later."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value or None
        time.sleep(interval)


def forbidden_lines(log: str, own: str) -> list[str]:
    """Lines reporting a 403, except about keysets of other namespaces than `own`.

    A cluster-wide operator also serves other tests' keysets, whose namespaces may be terminating
    (the namespace-lifecycle refusal, "is being terminated", is no RBAC denial). Its pass failure
    names only the exception type (ForbiddenException), and the Event about it says "Forbidden"
    without a namespace: once another namespace's pass failed so, such Event lines are not counted.
    That the operator may post Events in its own namespace, the rotation proves by posting them.
    """
    out: list[str] = []
    foreign_seen = False
    for line in log.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        namespace = record.get("namespace") if isinstance(record, dict) else None
        if namespace not in (None, own):
            foreign_seen = True
            continue
        if "being terminated" in line or (foreign_seen and "could not post event" in line):
            continue
        if "forbidden" in line.lower() or " 403" in line or "status=403" in line or '"code": 403' in line:
            out.append(line)
    return out


# ------------------------------------------------------------------------------------ lint and template

NAMESPACED = {
    "watchNamespaces": ["team-a", "team-b"],
    "prometheusRule": {"enabled": True},
    "metrics": {"serviceMonitor": {"enabled": True}},
}


MONITORING = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
EGRESS = {
    "egressAllow": ["*.monitoring.svc", "prometheus.monitoring:9090", "10.0.0.0/8"],
    "networkPolicy": {
        "enabled": True,
        "apiServer": {"cidrs": ["172.18.0.2/32"], "ports": [6443]},
        "egress": [{"to": [MONITORING], "ports": [{"port": 9090, "protocol": "TCP"}]}],
    },
}


@pytest.mark.parametrize("values", [{}, NAMESPACED, EGRESS], ids=["default", "namespaced", "egress"])
def test_lint(helm: Path, tmp_path: Path, values: dict[str, Any]) -> None:
    result = run(
        [
            helm,
            "lint",
            "--strict",
            "--kube-version",
            KUBE_VERSION,
            CHART,
            "-f",
            values_file(tmp_path, values),
        ],
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"replicas": "two"}, "at '/replicas': got string, want integer"),
        ({"replcias": 1}, "additional properties 'replcias' not allowed"),
        ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
        ({"watchNamespaces": ["Team_A"]}, "/watchNamespaces/0"),
        ({"leaderElection": {"enabled": "yes"}}, "/leaderElection/enabled"),
        ({"leaderElection": {"leaseDuration": 7}}, "/leaderElection/leaseDuration"),
        ({"leaderElection": {"leaseName": "Keyturn"}}, "/leaderElection/leaseName"),
        ({"leaderElection": {"lease": "x"}}, "additional properties 'lease' not allowed"),
        ({"peering": {"enabled": "yes"}}, "/peering/enabled"),
        ({"prometheusRule": {"keyAgeRatio": 1.5}}, "/prometheusRule/keyAgeRatio"),
        ({"metrics": {"service": {"prot": 8080}}}, "additional properties 'prot' not allowed"),
        ({"logFormat": "xml"}, "/logFormat"),
        ({"egressAllow": ["a b"]}, "/egressAllow/0"),
        ({"egressAllow": ["a.example,b.example"]}, "/egressAllow/0"),
        ({"networkPolicy": {"enabled": "yes"}}, "/networkPolicy/enabled"),
        ({"networkPolicy": {"apiServer": {"ports": [0]}}}, "/networkPolicy/apiServer/ports/0"),
        ({"networkPolicy": {"apiServer": {"cidrs": ["kubernetes"]}}}, "/networkPolicy/apiServer/cidrs/0"),
        ({"networkPolicy": {"egress": [{"too": []}]}}, "additional properties 'too' not allowed"),
    ],
    ids=lambda v: json.dumps(v) if isinstance(v, dict) else "",
)
def test_schema_refuses_bad_values(
    helm: Path, tmp_path: Path, values: dict[str, Any], complaint: str
) -> None:
    result = template(helm, tmp_path, values)
    assert result.returncode != 0
    assert SCHEMA_ERROR in result.stderr
    assert complaint in result.stderr


def pdbs(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The operator's PodDisruptionBudgets (the JWKS server has its own)."""
    return [
        o for o in objs if o["kind"] == "PodDisruptionBudget" and "jwks-server" not in o["metadata"]["name"]
    ]


@pytest.mark.parametrize("replicas", [2, 3])
def test_several_replicas_get_a_disruption_budget_of_one(helm: Path, tmp_path: Path, replicas: int) -> None:
    objs = rendered(helm, tmp_path, {"replicas": replicas})
    assert operator_deployment(objs)["spec"]["replicas"] == replicas
    (pdb,) = pdbs(objs)
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"] == {"minAvailable": 1, "selector": operator_deployment(objs)["spec"]["selector"]}


def test_a_single_replica_gets_no_disruption_budget(helm: Path, tmp_path: Path) -> None:
    """A budget of one for a single Pod would block every node drain."""
    objs = rendered(helm, tmp_path, {"replicas": 1})
    assert operator_deployment(objs)["spec"]["replicas"] == 1
    assert not pdbs(objs)


@pytest.mark.parametrize(
    "off",
    [{"leaderElection": {"enabled": False}}, {"peering": {"enabled": False}}],
    ids=["leaderElection.enabled=false", "peering.enabled=false (before 0.2)"],
)
def test_several_replicas_without_leader_election_are_refused_with_the_reason(
    helm: Path, tmp_path: Path, off: dict[str, Any]
) -> None:
    """Standalone replicas would all act on the same keysets."""
    result = template(helm, tmp_path, off)
    assert result.returncode != 0
    assert "replicas > 1 needs leaderElection.enabled" in result.stderr
    single = rendered(helm, tmp_path, {**off, "replicas": 1})
    args = container(single)["args"]
    assert "--standalone" in args and not [a for a in args if a.startswith("--lease")]
    assert not [o for o in single if o["kind"] == "Role"]  # no Lease, no Lease Role
    assert set(grants(single, "keyturn")) == {CLUSTER}


@pytest.mark.parametrize(
    ("values", "lease", "duration"),
    [
        ({}, "keyturn", 10),
        ({"leaderElection": {"leaseName": "keys.leader", "leaseDuration": 15}}, "keys.leader", 15),
        ({"peering": {"name": "old-peering"}}, "old-peering", 10),
        ({"peering": {"name": "old-peering"}, "leaderElection": {"leaseName": "new"}}, "new", 10),
        ({"fullnameOverride": "kt"}, "kt", 10),
    ],
    ids=["default", "named", "peering.name (before 0.2)", "leaseName wins", "fullnameOverride"],
)
def test_the_lease_flags_and_its_role_name_the_same_lease(
    helm: Path, tmp_path: Path, values: dict[str, Any], lease: str, duration: int
) -> None:
    objs = rendered(helm, tmp_path, values)
    args = container(objs)["args"]
    assert [a for a in args if a.startswith("--lease")] == [
        f"--lease={lease}",
        f"--lease-duration={duration}",
    ]
    parsed = cli.parser().parse_args(args)
    assert (parsed.lease, parsed.lease_duration, parsed.lease_namespace) == (lease, duration, None)
    assert grants(objs, values.get("fullnameOverride", "keyturn"))["keyturn-system"] == lease_grants(lease)


def test_replicas_prefer_different_nodes_unless_told_otherwise(helm: Path, tmp_path: Path) -> None:
    pod = operator_deployment(rendered(helm, tmp_path, {}))["spec"]["template"]["spec"]
    assert pod["topologySpreadConstraints"] == [
        {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway",  # soft: one node still runs every replica
            "labelSelector": {
                "matchLabels": {"app.kubernetes.io/name": "keyturn", "app.kubernetes.io/instance": "keyturn"}
            },
            "matchLabelKeys": ["pod-template-hash"],
        }
    ]
    own = [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule"}]
    pod = operator_deployment(rendered(helm, tmp_path, {"topologySpreadConstraints": own}))["spec"][
        "template"
    ]["spec"]
    assert pod["topologySpreadConstraints"] == own


def test_default_values_render_a_cluster_wide_operator(helm: Path, tmp_path: Path) -> None:
    objs = rendered(helm, tmp_path, {})
    kinds = sorted({o["kind"] for o in objs})
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "Deployment",
        "PodDisruptionBudget",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
    ]
    main = container(objs)
    assert main["args"] == [
        "run",
        "--metrics-port=8080",
        "--health-port=8081",
        "--log-format=json",
        "--lease=keyturn",
        "--lease-duration=10",
    ]
    cli.parser().parse_args(main["args"])
    assert grants(objs, "keyturn") == {
        CLUSTER: NAMESPACED_GRANTS | CRD_GRANTS,
        "keyturn-system": lease_grants("keyturn"),  # a Role: the Lease is never granted cluster-wide
    }
    deployment = operator_deployment(objs)
    assert deployment["spec"]["replicas"] == 2  # one acts (the Lease's holder), one stands by
    assert one(objs, "PodDisruptionBudget", "keyturn")["spec"]["minAvailable"] == 1
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "keyturn"
    assert main["env"] == [  # the replica's identity in the Lease, and the Lease's namespace
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
    ]
    service = one(objs, "Service", "keyturn-metrics")
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP"}
    ]
    dashboard = one(objs, "ConfigMap", "keyturn-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["keyturn.json"])["uid"] == "keyturn-overview"


def test_the_egress_allow_list_becomes_flags_the_operator_accepts(helm: Path, tmp_path: Path) -> None:
    args = container(rendered(helm, tmp_path, EGRESS))["args"]
    flags = [a for a in args if a.startswith("--egress-allow")]
    assert flags == [f"--egress-allow={p}" for p in EGRESS["egressAllow"]]
    parsed = cli.parser().parse_args(args)
    assert [p for group in parsed.egress_allow for p in group] == EGRESS["egressAllow"]


def test_the_egress_network_policy_allows_dns_the_api_server_and_the_listed_rules(
    helm: Path, tmp_path: Path
) -> None:
    objs = rendered(helm, tmp_path, EGRESS)
    policy = one(objs, "NetworkPolicy")
    assert policy["spec"]["podSelector"] == operator_deployment(objs)["spec"]["selector"]
    assert policy["spec"]["policyTypes"] == ["Egress"]  # ingress (metrics, probes) untouched
    dns, api_server, prometheus = policy["spec"]["egress"]
    assert dns["to"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ]
    assert dns["ports"] == [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]
    assert api_server == {
        "to": [{"ipBlock": {"cidr": "172.18.0.2/32"}}],
        "ports": [{"port": 6443, "protocol": "TCP"}],
    }
    assert prometheus == EGRESS["networkPolicy"]["egress"][0]  # type: ignore[index]
    # Without addresses the API server rule is any address, on the API server's ports only.
    (_, any_address) = one(rendered(helm, tmp_path, {"networkPolicy": {"enabled": True}}), "NetworkPolicy")[
        "spec"
    ]["egress"]
    assert any_address == {"ports": [{"port": 443, "protocol": "TCP"}, {"port": 6443, "protocol": "TCP"}]}
    assert not [o for o in rendered(helm, tmp_path, {}) if o["kind"] == "NetworkPolicy"]


def test_the_api_server_accepts_the_network_policy(helm: Path, tmp_path: Path, kube: Kube) -> None:
    policy = one(rendered(helm, tmp_path, EGRESS, namespace=kube.namespace), "NetworkPolicy")
    created = client.NetworkingV1Api(kube.api).create_namespaced_network_policy(
        kube.namespace,
        policy,  # type: ignore[arg-type]  # the client sends a dict as it is
        dry_run="All",
    )
    assert created.spec is not None and created.spec.policy_types == ["Egress"]
    assert len(created.spec.egress or ()) == 3


def test_namespaced_values_render_a_role_per_namespace(helm: Path, tmp_path: Path) -> None:
    objs = rendered(helm, tmp_path, NAMESPACED)
    roles = [
        o
        for o in objs
        if o["kind"] == "Role"
        and o["metadata"]["name"].startswith("keyturn")
        and "jwks" not in o["metadata"]["name"]
    ]
    assert sorted((r["metadata"]["namespace"], r["metadata"]["name"]) for r in roles) == [
        ("keyturn-system", "keyturn-lease"),  # the operator's own namespace, watched or not
        ("team-a", "keyturn"),
        ("team-b", "keyturn"),
    ]
    bindings = [o for o in objs if o["kind"] == "RoleBinding" and "jwks" not in o["metadata"]["name"]]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["keyturn-system", "team-a", "team-b"]
    for b in bindings:
        assert b["subjects"] == [{"kind": "ServiceAccount", "name": "keyturn", "namespace": "keyturn-system"}]
    # Fully namespaced: nothing cluster-scoped is bound to the operator (kopf's scanning is off).
    assert not [o for o in objs if o["kind"] == "ClusterRoleBinding"]
    assert {o["metadata"]["name"] for o in objs if o["kind"] == "ClusterRole"} == {
        f"keyturn-{r}" for r in ("view", "edit", "admin", "emergency-responder")
    }  # the people's roles (rbac.userRoles), bound by nobody here
    assert grants(objs, "keyturn") == {
        "team-a": NAMESPACED_GRANTS,
        "team-b": NAMESPACED_GRANTS,
        "keyturn-system": lease_grants("keyturn"),
    }
    args = container(objs)["args"]
    assert "--namespace=team-a" in args and "--namespace=team-b" in args
    cli.parser().parse_args(args)
    assert one(objs, "ServiceMonitor")["spec"]["endpoints"][0]["port"] == "metrics"
    assert one(objs, "PrometheusRule")


@pytest.mark.parametrize("values", [{}, NAMESPACED], ids=["default", "namespaced"])
def test_no_role_grants_wildcards(helm: Path, tmp_path: Path, values: dict[str, Any]) -> None:
    for obj in rendered(helm, tmp_path, values):
        if obj["kind"] in ("Role", "ClusterRole"):
            for rule in obj["rules"]:
                for key in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
                    assert "*" not in (rule.get(key) or []), (obj["metadata"]["name"], rule)


def test_user_roles_aggregate_and_the_responder_can_only_raise_emergencies(
    helm: Path, tmp_path: Path
) -> None:
    objs = rendered(helm, tmp_path, {})
    view = one(objs, "ClusterRole", "keyturn-view")
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    edit = one(objs, "ClusterRole", "keyturn-edit")
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    admin = one(objs, "ClusterRole", "keyturn-admin")
    assert admin["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    responder = one(objs, "ClusterRole", "keyturn-emergency-responder")
    assert not any(
        k.startswith("rbac.authorization.k8s.io/aggregate") for k in responder["metadata"]["labels"]
    )
    assert responder["rules"] == [
        {"apiGroups": ["keyturn.dev"], "resources": ["jwtkeysets"], "verbs": ["get", "list"]},
        {"apiGroups": ["keyturn.dev"], "resources": ["jwtkeysets/status"], "verbs": ["get", "patch"]},
    ]


# ------------------------------------------------------------------------------------ the JWKS server

JWKS_GRANTS = {("", "configmaps", v, "") for v in ("get", "list", "watch")}


def test_the_jwks_server_renders_hardened_with_probes_and_a_budget(helm: Path, tmp_path: Path) -> None:
    objs = rendered(helm, tmp_path, {})
    deployment = jwks_server(objs, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "keyturn-jwks-server"
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 65532
    (main,) = pod["containers"]
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    assert main["securityContext"]["allowPrivilegeEscalation"] is False
    assert main["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert main["args"] == [
        "serve-jwks",
        "--listen=0.0.0.0:8080",
        "--max-age-cap=3600",
        "--workers=1",
        "--log-format=json",
    ]
    parsed = cli.parser().parse_args(main["args"])
    listen = ("0.0.0.0", 8080)  # noqa: S104 - the chart's address in the Pod, parsed
    assert (parsed.command, parsed.listen, parsed.namespace) == ("serve-jwks", listen, [])
    selector = deployment["spec"]["selector"]
    assert jwks_server(objs, "PodDisruptionBudget")["spec"] == {"minAvailable": 1, "selector": selector}
    service = jwks_server(objs, "Service")
    assert service["spec"]["selector"] == selector["matchLabels"]
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    # No selector of the operator's matches the JWKS server's Pods (nor the other way round).
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    for obj in (operator_deployment(objs), one(objs, "PodDisruptionBudget", "keyturn")):
        wanted = obj["spec"]["selector"]["matchLabels"]
        assert not all(pod_labels.get(k) == v for k, v in wanted.items()), obj["metadata"]["name"]
    assert not [o for o in objs if o["kind"] == "Ingress"]
    single = rendered(helm, tmp_path, {"jwksServer": {"replicas": 1}})
    assert not [o for o in single if o["kind"] == "PodDisruptionBudget" and "jwks" in o["metadata"]["name"]]
    off = rendered(helm, tmp_path, {"jwksServer": {"enabled": False}})
    assert not [o for o in off if "jwks-server" in o["metadata"]["name"]]


@pytest.mark.parametrize("values", [{}, NAMESPACED], ids=["default", "namespaced"])
def test_the_jwks_server_may_only_read_configmaps(helm: Path, tmp_path: Path, values: dict[str, Any]) -> None:
    objs = rendered(helm, tmp_path, values)
    granted = grants(objs, "keyturn-jwks-server")  # by the binding's namespace (or CLUSTER)
    assert granted and all(g == JWKS_GRANTS for g in granted.values())  # ConfigMaps, read only
    roles = [
        o
        for o in objs
        if o["kind"] in ("Role", "ClusterRole") and o["metadata"]["name"] == "keyturn-jwks-server"
    ]
    if values:
        assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
        assert {r["kind"] for r in roles} == {"Role"}
        args = jwks_server(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
        assert "--namespace=team-a" in args and "--namespace=team-b" in args
        assert cli.parser().parse_args(args).namespace == ["team-a", "team-b"]
    else:
        assert [r["kind"] for r in roles] == ["ClusterRole"]


def test_the_jwks_server_ingress_lists_the_issuers_hosts(helm: Path, tmp_path: Path) -> None:
    ingress_values = {
        "enabled": True,
        "className": "nginx",
        "hosts": ["auth.example.com", "login.example.org"],
        "tls": [{"hosts": ["auth.example.com"], "secretName": "auth-tls"}],
    }
    ingress = one(rendered(helm, tmp_path, {"jwksServer": {"ingress": ingress_values}}), "Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == ingress_values["tls"]
    assert [r["host"] for r in ingress["spec"]["rules"]] == ingress_values["hosts"]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]
    assert backend["backend"]["service"] == {"name": "keyturn-jwks-server", "port": {"name": "http"}}


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"jwksServer": {"replicas": "two"}}, "/jwksServer/replicas"),
        ({"jwksServer": {"maxAgeCap": 0}}, "/jwksServer/maxAgeCap"),
        ({"jwksServer": {"workers": 0}}, "/jwksServer/workers"),
        ({"jwksServer": {"ingress": {"hosts": ["https://auth.example.com"]}}}, "/jwksServer/ingress/hosts/0"),
        ({"jwksServer": {"prot": 1}}, "additional properties 'prot' not allowed"),
    ],
    ids=lambda v: json.dumps(v) if isinstance(v, dict) else "",
)
def test_the_schema_refuses_bad_jwks_server_values(
    helm: Path, tmp_path: Path, values: dict[str, Any], complaint: str
) -> None:
    result = template(helm, tmp_path, values)
    assert result.returncode != 0
    assert SCHEMA_ERROR in result.stderr
    assert complaint in result.stderr


def test_deploy_is_the_charts_default_render(helm: Path) -> None:
    """deploy/ is generated: re-rendering must give exactly what is committed."""
    assert (
        CHART / "crds" / render_deploy.CRD_SOURCE.name
    ).read_bytes() == render_deploy.CRD_SOURCE.read_bytes()
    assert render_deploy.differences(render_deploy.render(helm), DEPLOY) == [], (
        "run: python hack/render_deploy.py"
    )


def test_kustomize_builds_the_charts_objects(
    cluster: localcluster.Cluster, helm: Path, tmp_path: Path
) -> None:
    built = [d for d in yaml.safe_load_all(cluster.kubectl("kustomize", str(DEPLOY)).stdout) if d]
    chart = rendered(helm, tmp_path, {})
    crds = [
        d for f in sorted((CHART / "crds").glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d
    ]

    def ids(objs: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
        return {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in objs}

    assert ids(built) == ids(chart) | ids(crds) | {("Namespace", "", "keyturn-system")}


@pytest.mark.debian("prometheus", command="promtool")
def test_prometheus_rules_fire_when_they_should(helm: Path, tmp_path: Path) -> None:
    """The alerts run in Prometheus's own rule engine (promtool, from Debian's prometheus package)."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: run `make system-deps` (Debian package prometheus)"
    rule = one(rendered(helm, tmp_path, {"prometheusRule": {"enabled": True}}), "PrometheusRule")
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    run([promtool, "check", "rules", rules])  # expressions and annotation templates
    bare = [
        {**g, "rules": [{k: v for k, v in r.items() if k != "annotations"} for r in g["rules"]]}
        for g in rule["spec"]["groups"]
    ]
    (tmp_path / "bare.yaml").write_text(yaml.safe_dump({"groups": bare}))
    ks = 'namespace="auth", keyset="api"'
    series = [
        # 85 % of a 100 s interval: near expiry; "calm" at 50 % is not.
        (f"keyturn_current_key_signing_seconds{{{ks}}}", "85x40"),
        (f"keyturn_rotation_interval_seconds{{{ks}}}", "100x40"),
        ('keyturn_current_key_signing_seconds{namespace="auth", keyset="calm"}', "50x40"),
        ('keyturn_rotation_interval_seconds{namespace="auth", keyset="calm"}', "100x40"),
        (f'keyturn_failures_total{{{ks}, reason="AnalysisFailed"}}', "0 0 1 1 1"),
        (f'keyturn_rollbacks_total{{{ks}, trigger="analysis"}}', "0 0 1 1 1"),
        (f"keyturn_jwks_keys{{{ks}}}", "0x20"),
        (f"keyturn_keyset_stalled{{{ks}}}", "1x20"),
        # next rotation was due at t=0, i.e. 20 minutes before the evaluation below... and 2 h before
        (f"keyturn_next_rotation_timestamp_seconds{{{ks}}}", "0x200"),
        ('up{job="keyturn-metrics", instance="a"}', "0x20"),
    ]
    expected = {
        "KeyturnKeyNearExpiry": [{"severity": "warning", "namespace": "auth", "keyset": "api"}],
        "KeyturnRotationFailed": [
            {"severity": "warning", "namespace": "auth", "keyset": "api", "reason": "AnalysisFailed"}
        ],
        "KeyturnRolledBack": [
            {"severity": "critical", "namespace": "auth", "keyset": "api", "trigger": "analysis"}
        ],
        "KeyturnJwksEmpty": [{"severity": "critical", "namespace": "auth", "keyset": "api"}],
        "KeyturnKeysetStalled": [{"severity": "warning", "namespace": "auth", "keyset": "api"}],
        "KeyturnOperatorDown": [{"severity": "critical"}],
    }
    tests = {
        "rule_files": ["bare.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in series],
                "alert_rule_test": [
                    {
                        "eval_time": "20m",
                        "alertname": name,
                        "exp_alerts": [{"exp_labels": labels} for labels in exp],
                    }
                    for name, exp in expected.items()
                ]
                + [{"eval_time": "20m", "alertname": "KeyturnRotationOverdue", "exp_alerts": []}]
                + [
                    {
                        "eval_time": "70m",
                        "alertname": "KeyturnRotationOverdue",
                        "exp_alerts": [
                            {"exp_labels": {"severity": "warning", "namespace": "auth", "keyset": "api"}}
                        ],
                    }
                ],
            },
            {
                # A healthy operator and keyset: nothing fires.
                "interval": "1m",
                "input_series": [
                    {"series": 'up{job="keyturn-metrics", instance="a"}', "values": "1x30"},
                    {"series": f"keyturn_jwks_keys{{{ks}}}", "values": "2x30"},
                    {"series": f"keyturn_keyset_stalled{{{ks}}}", "values": "0x30"},
                    {"series": f'keyturn_failures_total{{{ks}, reason="AnalysisFailed"}}', "values": "3x30"},
                ],
                "alert_rule_test": [{"eval_time": "20m", "alertname": n, "exp_alerts": []} for n in expected],
            },
        ],
    }
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests))
    result = run([promtool, "test", "rules", tmp_path / "tests.yaml"], check=False)
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------------------------ on the cluster


@dataclass
class ChartOperator(OperatorProcess):
    """The operator as the chart's Deployment runs it: its args (only the ports made free) and its
    environment, with the downward API's values for a Pod `pod_id` in `pod_namespace`."""

    args: list[str] = field(default_factory=list)
    env: list[dict[str, Any]] = field(default_factory=list)
    pod_id: str = "keyturn-test-0"
    pod_namespace: str = "keyturn-system"

    def downward_api(self) -> dict[str, str]:
        fields = {"metadata.name": self.pod_id, "metadata.namespace": self.pod_namespace}
        out = {}
        for var in self.env:
            assert set(var) == {"name", "valueFrom"}, var  # nothing else is expected in the chart
            out[var["name"]] = fields[var["valueFrom"]["fieldRef"]["fieldPath"]]
        return out

    def start(self, **env: str) -> None:
        self.metrics_port = free_port()
        argv = [
            f"--metrics-port={self.metrics_port}"
            if a.startswith("--metrics-port=")
            else f"--health-port={free_port()}"
            if a.startswith("--health-port=")
            else a
            for a in self.args
        ]
        environ = {  # nothing of the test's environment: the kubeconfig is the only identity
            "PATH": "/usr/bin:/bin",
            "HOME": str(self.log_path.parent),
            "KUBECONFIG": str(self.kubeconfig_override or self.kubeconfig),
            **self.downward_api(),
            "PYTHONPATH": str(ROOT / "operator"),
            **self.env_extra,
            **env,
        }
        with self.log_path.open("ab") as handle:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "keyturn", *argv],
                stdout=handle,
                stderr=subprocess.STDOUT,
                env=environ,
                cwd=ROOT,
            )


def allowed(api: ApiClient, user: str, grant: Grant, namespace: str | None) -> bool:
    group, resource, verb, name = grant
    resource, _, sub = resource.partition("/")
    review = client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(
            user=user,
            groups=[
                "system:serviceaccounts",
                f"system:serviceaccounts:{user.split(':')[2]}",
                "system:authenticated",
            ],
            resource_attributes=client.V1ResourceAttributes(
                group=group,
                resource=resource,
                subresource=sub or None,
                verb=verb,
                name=name or None,
                namespace=namespace,
            ),
        )
    )
    result = client.AuthorizationV1Api(api).create_subject_access_review(review).status
    return bool(result and result.allowed)


@contextlib.contextmanager
def extra_namespace(api: ApiClient, prefix: str) -> Iterator[str]:
    core = client.CoreV1Api(api)
    name = f"{prefix}-{secrets.token_hex(4)}"
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"keyturn.dev/test": "true"}))
    )
    try:
        wait_for(
            lambda: any(
                sa.metadata is not None and sa.metadata.name == "default"
                for sa in core.list_namespaced_service_account(name).items
            ),
            30,
            message=f"ServiceAccount {name}/default",
        )
        yield name
    finally:
        with contextlib.suppress(ApiException):
            core.delete_namespace(name, propagation_policy="Background")


def image_values() -> dict[str, Any]:
    if not TEST_IMAGE:
        return {}
    repository, _, tag = TEST_IMAGE.rpartition(":")
    return {"image": {"repository": repository, "tag": tag}}


@contextlib.contextmanager
def installed(
    helm: Path,
    cluster: localcluster.Cluster,
    tmp_path: Path,
    release: str,
    namespace: str,
    values: dict[str, Any],
) -> Iterator[tuple[list[dict[str, Any]], str]]:
    """`helm install --wait`; yields the installed manifest and the NOTES, and uninstalls after."""
    kubeconfig = ["--kubeconfig", str(cluster.kubeconfig)]
    result = run(
        [
            helm,
            "install",
            release,
            CHART,
            "--namespace",
            namespace,
            "-f",
            values_file(tmp_path, {**image_values(), **values}),
            "--wait",
            "--timeout",
            "3m",
            *kubeconfig,
        ]
    )
    try:
        manifest = run([helm, "get", "manifest", release, "--namespace", namespace, *kubeconfig]).stdout
        yield [d for d in yaml.safe_load_all(manifest) if d], result.stdout
    finally:
        run([helm, "uninstall", release, "--namespace", namespace, "--wait", *kubeconfig], check=False)


def scale_to_zero(api: ApiClient, namespace: str, release: str, deployment: str) -> None:
    """Stops the installed replicas (real operators where nodes are real, e.g. kind), so that the
    test's process is the only operator: it would otherwise stand by while one of them holds the Lease."""
    client.AppsV1Api(api).patch_namespaced_deployment_scale(deployment, namespace, {"spec": {"replicas": 0}})
    core = client.CoreV1Api(api)
    selector = f"app.kubernetes.io/name=keyturn,app.kubernetes.io/instance={release}"
    wait_for(
        lambda: not core.list_namespaced_pod(namespace, label_selector=selector).items,
        90,
        message=f"the Pods of {deployment} gone",
    )


def target_container() -> client.V1Container:
    """KWOK fakes any image; real nodes (kind) run the test image, idle, as the target's app."""
    if TEST_IMAGE:
        idle = ["python", "-c", "import time; time.sleep(1e9)"]
        return client.V1Container(name="app", image=TEST_IMAGE, command=idle)
    return client.V1Container(name="app", image="registry.example/app:1")


def target_annotations(keyset: str, role: str) -> dict[str, str]:
    return {"keyturn.dev/keyset": keyset, "keyturn.dev/role": role}


def target_deployment(name: str, keyset: str) -> client.V1Deployment:
    return deployment(name, target_annotations(keyset, "both"), container=target_container())


def pod_template(name: str) -> client.V1PodTemplateSpec:
    return client.V1PodTemplateSpec(
        metadata=client.V1ObjectMeta(labels={"app": name}),
        spec=client.V1PodSpec(containers=[target_container()]),
    )


def target_statefulset(name: str, keyset: str) -> client.V1StatefulSet:
    return client.V1StatefulSet(
        metadata=client.V1ObjectMeta(name=name, annotations=target_annotations(keyset, "verifier")),
        spec=client.V1StatefulSetSpec(
            replicas=1,
            service_name=name,
            selector=client.V1LabelSelector(match_labels={"app": name}),
            template=pod_template(name),
        ),
    )


def target_daemonset(name: str, keyset: str) -> client.V1DaemonSet:
    return client.V1DaemonSet(
        metadata=client.V1ObjectMeta(name=name, annotations=target_annotations(keyset, "verifier")),
        spec=client.V1DaemonSetSpec(
            selector=client.V1LabelSelector(match_labels={"app": name}), template=pod_template(name)
        ),
    )


TARGET_KINDS = ("Deployment", "StatefulSet", "DaemonSet")


def read_target(kube: Kube, kind: str, name: str) -> Any:
    read = {
        "Deployment": kube.apps.read_namespaced_deployment,
        "StatefulSet": kube.apps.read_namespaced_stateful_set,
        "DaemonSet": kube.apps.read_namespaced_daemon_set,
    }[kind]
    return read(name, kube.namespace)


def app_annotations(kube: Kube, kind: str, name: str) -> dict[str, str]:
    meta = read_target(kube, kind, name).spec.template.metadata
    return dict((meta.annotations if meta else None) or {})


def available(kube: Kube, kind: str, name: str) -> bool:
    """What `kubectl rollout status` waits for, per kind: the current template everywhere, ready."""
    obj = read_target(kube, kind, name)
    if kind == "Deployment":
        return rollout_complete(obj)
    status, meta = obj.status, obj.metadata
    if status is None or (status.observed_generation or 0) < (meta.generation or 0):
        return False
    if kind == "StatefulSet":
        replicas = obj.spec.replicas or 0
        return bool(
            (status.updated_replicas or 0) == replicas
            and (status.ready_replicas or 0) == replicas
            and status.current_revision == status.update_revision
        )
    desired = status.desired_number_scheduled or 0
    return bool(
        desired > 0
        and (status.updated_number_scheduled or 0) == desired
        and (status.number_available or 0) == desired
    )


def lease_holder(api: ApiClient, namespace: str, name: str) -> str:
    try:
        lease = client.CoordinationV1Api(api).read_namespaced_lease(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return ""
        raise
    return str((lease.spec and lease.spec.holder_identity) or "")


@pytest.mark.parametrize("mode", ["namespaced", "cluster-wide"])
def test_the_operator_rotates_with_nothing_but_the_charts_service_account(
    mode: str, helm: Path, cluster: localcluster.Cluster, api: ApiClient, namespace: str, tmp_path: Path
) -> None:
    release = f"kt-{secrets.token_hex(3)}"
    fullname = f"{release}-keyturn"
    core = client.CoreV1Api(api)
    # The operator's namespace enforces the "restricted" Pod Security Standard: the chart's Pod must pass.
    core.patch_namespace(
        namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    )
    with extra_namespace(api, "keys") as watched:
        values: dict[str, Any] = {"watchNamespaces": [watched]} if mode == "namespaced" else {}
        with installed(helm, cluster, tmp_path, release, namespace, values) as (manifest, notes):
            assert "kubectl keyturn status" in notes and "kind: JwtKeySet" in notes
            assert f"get lease {fullname}" in notes
            main = container(manifest)
            args = main["args"]
            assert ("--namespace=" + watched in args) == (mode == "namespaced")
            assert f"--lease={fullname}" in args
            ready = client.AppsV1Api(api).read_namespaced_deployment(fullname, namespace).status
            assert ready is not None and ready.available_replicas == 2  # the Pods were admitted as restricted
            scale_to_zero(api, namespace, release, fullname)

            # RBAC reaches the authorizer asynchronously: start only once every grant is in effect.
            user = f"system:serviceaccount:{namespace}:{fullname}"
            expected = grants(manifest, fullname)
            assert set(expected) == (
                {watched, namespace} if mode == "namespaced" else {CLUSTER, namespace}
            )  # the Lease's Role is in the operator's own namespace, which is not a watched one here
            assert expected[namespace] == lease_grants(fullname)

            def where(scope: str, grant: Grant) -> str | None:
                if scope != CLUSTER:
                    return scope
                return None if grant[1] in ("customresourcedefinitions", "namespaces") else watched

            wait_for(
                lambda: all(allowed(api, user, g, where(s, g)) for s, gs in expected.items() for g in gs),
                30,
                message=f"every grant of {user} effective",
            )
            assert not allowed(api, user, ("", "secrets", "delete", ""), watched)
            assert not allowed(api, user, ("", "pods", "list", ""), watched)
            assert not allowed(api, user, ("apps", "deployments", "get", ""), watched)  # the index suffices
            for lease_verb in ("update", "delete", "list"):  # only its own Lease, only at home
                assert not allowed(
                    api, user, ("coordination.k8s.io", "leases", lease_verb, fullname), watched
                )
            assert not allowed(api, user, ("coordination.k8s.io", "leases", "update", "other"), namespace)
            if mode == "namespaced":  # nothing cluster-scoped: the operator turns kopf's scanning off
                for scan in (*CRD_GRANTS, ("", "namespaces", "list", ""), ("", "namespaces", "watch", "")):
                    assert not allowed(api, user, scan, None), scan

            operator = ChartOperator(
                kubeconfig=Path(cluster.kubeconfig),
                namespace=watched,
                log_path=tmp_path / "operator.log",
                kubeconfig_override=token_kubeconfig(
                    api, Path(cluster.kubeconfig), namespace, fullname, tmp_path / "sa.kubeconfig"
                ),
                args=args,
                env=main["env"],
                pod_id=f"{fullname}-test",
                pod_namespace=namespace,
            )
            operator.start()
            try:
                # It takes the Lease the chart named, in its own namespace (POD_NAMESPACE), and acts.
                wait_for(
                    lambda: lease_holder(api, namespace, fullname).startswith(f"{operator.pod_id}-"),
                    60,
                    message=f"Lease {namespace}/{fullname} held by {operator.pod_id}",
                )
                _rotate_and_roll(api, watched)
            finally:
                operator.stop()
            log = operator.log_text()
            assert not forbidden_lines(log, watched), "\n".join(forbidden_lines(log, watched)[:20])
            assert lease_holder(api, namespace, fullname) == "", "a clean stop releases the Lease"
            _serve_with_the_jwks_servers_account(api, cluster, namespace, watched, manifest, tmp_path)


def _serve_with_the_jwks_servers_account(
    api: ApiClient,
    cluster: localcluster.Cluster,
    namespace: str,
    watched: str,
    manifest: list[dict[str, Any]],
    tmp_path: Path,
) -> None:
    """The JWKS server, run with the chart's args and nothing but its ServiceAccount's token, serves
    the keyset's (retained) JWKS; that account may read ConfigMaps and nothing else."""
    deployment = jwks_server(manifest, "Deployment")
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    user = f"system:serviceaccount:{namespace}:{account}"
    cluster_wide = any(o["kind"] == "ClusterRole" and o["metadata"]["name"] == account for o in manifest)
    wait_for(lambda: all(allowed(api, user, g, watched) for g in JWKS_GRANTS), 30, message=f"{user} grants")
    for verb in ("get", "list", "watch"):
        assert not allowed(api, user, ("", "secrets", verb, ""), watched), verb
    assert not allowed(api, user, ("", "configmaps", "update", ""), watched)
    assert not allowed(api, user, ("keyturn.dev", "jwtkeysets", "get", ""), watched)
    if not cluster_wide:  # namespaced: the ConfigMaps of the watched namespaces only
        assert not allowed(api, user, ("", "configmaps", "list", ""), None)
    server = JwksServer(
        token_kubeconfig(api, Path(cluster.kubeconfig), namespace, account, tmp_path / "jwks.kubeconfig"),
        tmp_path / "jwks-server.log",
        deployment["spec"]["template"]["spec"]["containers"][0]["args"],
    )
    server.start()
    try:
        stored = client.CoreV1Api(api).read_namespaced_config_map("keys-jwks", watched).data or {}
        answer = server.get(f"/{watched}/keys/.well-known/jwks.json")
        assert (answer.status, answer.body) == (200, stored["jwks.json"].encode())
    finally:
        server.stop()
    assert not forbidden_lines(server.log_path.read_text(), watched)


def _rotate_and_roll(api: ApiClient, watched: str) -> None:
    kube = Kube(api, watched)
    kube.apps.create_namespaced_deployment(watched, target_deployment("app", "keys"))
    kube.apps.create_namespaced_stateful_set(watched, target_statefulset("db", "keys"))
    kube.apps.create_namespaced_daemon_set(watched, target_daemonset("agent", "keys"))
    targets = list(zip(TARGET_KINDS, ("app", "db", "agent"), strict=True))
    wait_for(
        lambda: all(available(kube, kind, name) for kind, name in targets), 60, message="targets available"
    )
    kube.create_keyset("keys", {"algorithm": "ES256", "rotation": ROTATION})
    first = kube.wait_ready("keys", timeout=90)
    old, prepared = first["currentKid"], first["nextKid"]
    before = {name: app_annotations(kube, kind, name).get("keyturn.dev/rev-keys") for kind, name in targets}

    kube.patch_keyset("keys", {"metadata": {"annotations": {"keyturn.dev/rotate": "x"}}})
    status = kube.wait_status(
        "keys",
        lambda s: s.get("lastHandledRotate") == "x" and s.get("currentKid") == prepared,
        60,
        "the manual rotation handled",
    )
    assert status["currentKid"] != old
    assert (kube.secret("keys") or {})["JWT_KID"] == prepared
    published = [k["kid"] for k in (kube.jwks("keys-jwks") or {})["keys"]]
    assert prepared in published and old in published  # the demoted key stays for its grace period
    assert any(h["operation"] == "rotate" and h["trigger"] == "manual" for h in status["history"])
    assert any(e.reason and e.involved_object.name == "keys" for e in kube.events())  # Events were posted
    kube.wait_ready("keys", timeout=60)

    # Every target is rolled for the new key (pod-template annotation keyturn.dev/rev-<keyset>).
    def rolled(kind: str, name: str) -> bool:
        rev = app_annotations(kube, kind, name).get("keyturn.dev/rev-keys")
        return bool(rev and rev != before[name] and available(kube, kind, name))

    done = poll(lambda: all(rolled(kind, name) for kind, name in targets), 90)
    not_rolled = [f"{kind} {name}" for kind, name in targets if not rolled(kind, name)]
    assert done, (
        f"not rolled after the rotation: {not_rolled}; pod-template annotations "
        f"{ {n: app_annotations(kube, k, n) for k, n in targets} } (keyturn.dev/rev-keys before: {before})"
    )

    # A keyset that carries the finalizer Keyturn 0.1 put on keysets: deleting it, the operator
    # removes that finalizer (a patch of the keyset), so the object goes.
    kube.custom.create_namespaced_custom_object(
        "keyturn.dev",
        "v1alpha1",
        watched,
        "jwtkeysets",
        {
            "apiVersion": "keyturn.dev/v1alpha1",
            "kind": "JwtKeySet",
            "metadata": {"name": "legacy", "finalizers": [FINALIZER]},
            "spec": {"algorithm": "ES256", "rotation": ROTATION},
        },
    )
    kube.wait_ready("legacy", timeout=60)
    kube.custom.delete_namespaced_custom_object("keyturn.dev", "v1alpha1", watched, "jwtkeysets", "legacy")

    def gone() -> bool:
        try:
            kube.keyset("legacy")
        except ApiException as exc:
            return bool(exc.status == 404)
        return False

    wait_for(gone, 30, message="the legacy keyset deleted (its finalizer removed by the operator)")


def test_the_emergency_responder_may_raise_an_emergency_and_nothing_else(
    helm: Path, cluster: localcluster.Cluster, api: ApiClient, namespace: str, tmp_path: Path
) -> None:
    release = f"kt-{secrets.token_hex(3)}"
    with installed(helm, cluster, tmp_path, release, namespace, {"watchNamespaces": [namespace]}):
        kube = Kube(api, namespace)
        kube.create_keyset("keys", {"algorithm": "ES256", "rotation": ROTATION})
        rbac = client.RbacAuthorizationV1Api(api)
        rbac.create_namespaced_role_binding(
            namespace,
            client.V1RoleBinding(
                metadata=client.V1ObjectMeta(name="oncall"),
                role_ref=client.V1RoleRef(
                    api_group="rbac.authorization.k8s.io",
                    kind="ClusterRole",
                    name=f"{release}-keyturn-emergency-responder",
                ),
                subjects=[
                    client.RbacV1Subject(
                        kind="User", name="oncall@example.com", api_group="rbac.authorization.k8s.io"
                    )
                ],
            ),
        )
        for user, role in (
            ("viewer@example.com", "view"),
            ("editor@example.com", "edit"),
            ("admin@example.com", "admin"),
        ):
            rbac.create_namespaced_role_binding(
                namespace,
                client.V1RoleBinding(
                    metadata=client.V1ObjectMeta(name=role),
                    role_ref=client.V1RoleRef(
                        api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=role
                    ),
                    subjects=[
                        client.RbacV1Subject(kind="User", name=user, api_group="rbac.authorization.k8s.io")
                    ],
                ),
            )

        def can(user: str, *args: str) -> bool:
            out = cluster.kubectl("auth", "can-i", *args, "-n", namespace, f"--as={user}", check=False).stdout
            return out.strip() == "yes"

        # The built-in roles pick the keyset rules up by aggregation (kube-controller-manager).
        wait_for(
            lambda: can("admin@example.com", "patch", "jwtkeysets.keyturn.dev", "--subresource=status"),
            30,
            message="aggregation",
        )
        wait_for(
            lambda: can("oncall@example.com", "get", "jwtkeysets.keyturn.dev"), 30, message="oncall binding"
        )
        assert can("viewer@example.com", "list", "jwtkeysets.keyturn.dev")
        assert not can("viewer@example.com", "create", "jwtkeysets.keyturn.dev")
        assert can("editor@example.com", "create", "jwtkeysets.keyturn.dev")
        assert not can("editor@example.com", "patch", "jwtkeysets.keyturn.dev", "--subresource=status")
        assert not can("oncall@example.com", "patch", "jwtkeysets.keyturn.dev")
        assert not can("oncall@example.com", "get", "secrets")

        # A real emergency request, as docs/api.md tells on-call staff to send it.
        patch = {"status": {"emergency": {"requestId": "inc-1", "reason": "key_compromise"}}}
        cluster.kubectl(
            "patch", "jwtkeyset", "keys", "-n", namespace, "--subresource=status", "--type=merge",
            "-p", json.dumps(patch), "--as=oncall@example.com",
        )  # fmt: skip
        assert kube.status("keys")["emergency"]["requestId"] == "inc-1"
        refused = cluster.kubectl(
            "patch", "jwtkeyset", "keys", "-n", namespace, "--type=merge",
            "-p", '{"spec":{"suspend":true}}', "--as=oncall@example.com", check=False,
        )  # fmt: skip
        assert refused.returncode != 0 and "forbidden" in refused.stderr.lower()
        # No operator ran here: take the finalizer-free keyset away before the release goes.
        kube.custom.delete_namespaced_custom_object(
            "keyturn.dev", "v1alpha1", namespace, "jwtkeysets", "keys"
        )


def test_the_kustomize_base_installs(cluster: localcluster.Cluster, tmp_path: Path) -> None:
    """`kubectl apply -k deploy/crds` then `kubectl apply -k deploy/`, as docs/install.md says.

    Objects that already existed (e.g. a chart-installed operator on a kind cluster) are applied
    over but never deleted; CRDs are never deleted (the session's keysets depend on them).
    """
    objs = [d for d in yaml.safe_load_all(cluster.kubectl("kustomize", str(DEPLOY)).stdout) if d]

    def ref(obj: dict[str, Any]) -> list[str]:
        group = obj["apiVersion"].rpartition("/")[0]
        ns = obj["metadata"].get("namespace")
        kind = f"{obj['kind'].lower()}.{group}" if group else obj["kind"].lower()
        return [kind, obj["metadata"]["name"], *(["-n", ns] if ns else [])]

    def exists(obj: dict[str, Any]) -> bool:
        result = cluster.kubectl("get", *ref(obj), "--ignore-not-found", "-o", "name", check=False)
        return bool(result.stdout.strip())

    created = [o for o in objs if not exists(o) and o["kind"] != "CustomResourceDefinition"]
    base = DEPLOY
    if TEST_IMAGE:  # real nodes pull images: use the one `make kind-e2e` loaded
        base = tmp_path / "overlay"
        base.mkdir()
        repository, _, tag = TEST_IMAGE.rpartition(":")
        (base / "kustomization.yaml").write_text(
            yaml.safe_dump(
                {
                    "resources": [os.path.relpath(DEPLOY, base)],
                    "images": [{"name": "ghcr.io/keyturn/keyturn", "newName": repository, "newTag": tag}],
                }
            )
        )
    try:
        cluster.kubectl("apply", "-k", str(DEPLOY / "crds"))
        cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", *(
            f"crd/{o['metadata']['name']}" for o in objs if o["kind"] == "CustomResourceDefinition"
        ))  # fmt: skip
        cluster.kubectl("apply", "-k", str(base))
        out = cluster.kubectl(
            "rollout", "status", "deployment/keyturn", "-n", "keyturn-system", "--timeout=120s"
        ).stdout
        assert "successfully rolled out" in out
        assert exists(next(o for o in objs if o["kind"] == "Role"))  # the Lease's, in keyturn-system
    finally:
        for obj in reversed(created):
            cluster.kubectl("delete", *ref(obj), "--ignore-not-found", "--wait=false", check=False)
