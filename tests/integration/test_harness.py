"""Proves the integration harness is a real control plane, not a stand-in.

Keyturn's integration tests lean on three behaviours that fakes get wrong: the pinned
apiserver version, RBAC enforcement for ServiceAccount tokens minted through the TokenRequest
API (how the operator itself authenticates in tests), and Deployments that really roll out
(KWOK playing the kubelet). If one of these fails, operator test failures would be noise.
"""

from __future__ import annotations

import contextlib
import http.client
import ssl
from collections.abc import Iterator
from typing import TypeVar
from urllib.parse import urlsplit

import pytest
from kubernetes import client
from kubernetes.client import ApiClient, ApiException

import localcluster
from helpers import wait_for
from kubetools import deployment

pytestmark = pytest.mark.integration

T = TypeVar("T")
APP = "web"
LABELS = {"app": APP}
IMAGE = "registry.example/app:1"  # nothing pulls it: KWOK only simulates containers


def _must(value: T | None, what: str) -> T:
    assert value is not None, f"{what} is missing"
    return value


def test_apiserver_runs_the_pinned_kubernetes_version(cluster: localcluster.Cluster, api: ApiClient) -> None:
    if not isinstance(cluster, localcluster.LocalCluster):
        pytest.skip("the version is pinned only for the local control plane")
    info = client.VersionApi(api).get_code()
    assert info.git_version == localcluster.versions()["KUBERNETES_VERSION"] == "v1.36.3"


@contextlib.contextmanager
def _client_for_token(admin: ApiClient, token: str) -> Iterator[ApiClient]:
    """A client that authenticates with ``token`` alone: no client certificate to fall back on."""
    cfg = client.Configuration(
        host=admin.configuration.host,
        ssl_ca_cert=admin.configuration.ssl_ca_cert,
        api_key={"BearerToken": token},
        api_key_prefix={"BearerToken": "Bearer"},
    )
    with contextlib.closing(client.ApiClient(cfg)) as api_client:
        yield api_client


def _secret_names_if_allowed(core: client.CoreV1Api, namespace: str) -> list[str] | None:
    try:
        secrets = core.list_namespaced_secret(namespace)
    except ApiException as e:
        if e.status == 403:
            return None  # the RoleBinding has not reached the authorizer's cache yet
        raise
    return [_must(s.metadata, "metadata").name or "" for s in secrets.items]


def test_rbac_governs_service_account_tokens(api: ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    rbac = client.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="reader"))
    )
    core.create_namespaced_secret(
        namespace, client.V1Secret(metadata=client.V1ObjectMeta(name="payload"), string_data={"k": "v"})
    )
    request = core.create_namespaced_service_account_token(
        "reader",
        namespace,
        client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600)
        ),
    )
    token = _must(_must(request.status, "TokenRequest status").token, "token")

    with _client_for_token(api, token) as sa_api:
        review = client.AuthenticationV1Api(sa_api).create_self_subject_review(client.V1SelfSubjectReview())
        user = _must(_must(review.status, "review status").user_info, "user info")
        assert user.username == f"system:serviceaccount:{namespace}:reader"

        sa_core = client.CoreV1Api(sa_api)
        with pytest.raises(ApiException) as denied:
            sa_core.list_namespaced_secret(namespace)
        assert denied.value.status == 403

        rbac.create_namespaced_role(
            namespace,
            client.V1Role(
                metadata=client.V1ObjectMeta(name="secret-reader"),
                rules=[client.V1PolicyRule(api_groups=[""], resources=["secrets"], verbs=["get", "list"])],
            ),
        )
        rbac.create_namespaced_role_binding(
            namespace,
            client.V1RoleBinding(
                metadata=client.V1ObjectMeta(name="reader-reads-secrets"),
                role_ref=client.V1RoleRef(
                    api_group="rbac.authorization.k8s.io", kind="Role", name="secret-reader"
                ),
                subjects=[client.RbacV1Subject(kind="ServiceAccount", name="reader", namespace=namespace)],
            ),
        )
        names = wait_for(
            lambda: _secret_names_if_allowed(sa_core, namespace),
            timeout=30,
            message="the RoleBinding to let the token list secrets",
        )
        assert "payload" in names

        # The grant is a namespaced Role: other namespaces stay closed.
        with pytest.raises(ApiException) as elsewhere:
            sa_core.list_namespaced_secret("kube-system")
        assert elsewhere.value.status == 403


def _require_kwok(cluster: localcluster.Cluster, api: ApiClient) -> None:
    if cluster.has_kwok:
        return
    if not client.CoreV1Api(api).list_node(label_selector="type=kwok").items:
        pytest.skip("no KWOK node in this cluster: its Pods would never start")


def _completed_rollout(apps: client.AppsV1Api, namespace: str) -> client.V1Deployment | None:
    """The Deployment if the controller has finished rolling out its current template, else None."""
    dep = apps.read_namespaced_deployment(APP, namespace)
    meta = _must(dep.metadata, "metadata")
    spec = _must(dep.spec, "spec")
    status = dep.status
    if status is None or (status.observed_generation or 0) < (meta.generation or 0):
        return None
    counts = {status.replicas, status.updated_replicas, status.ready_replicas, status.available_replicas}
    if counts != {spec.replicas}:
        return None
    if status.unavailable_replicas or status.terminating_replicas:
        return None
    conditions = {c.type: c for c in status.conditions or []}
    available = conditions.get("Available")
    progressing = conditions.get("Progressing")
    if not (available and available.status == "True"):
        return None
    if not (progressing and progressing.reason == "NewReplicaSetAvailable"):
        return None
    return dep


def _replica_sets(apps: client.AppsV1Api, namespace: str) -> dict[str, client.V1ReplicaSet]:
    items = apps.list_namespaced_replica_set(namespace, label_selector=f"app={APP}").items
    return {_must(rs.metadata, "metadata").name or "": rs for rs in items}


def _pods(core: client.CoreV1Api, namespace: str) -> list[client.V1Pod]:
    return list(core.list_namespaced_pod(namespace, label_selector=f"app={APP}").items)


def _template_hash(obj: client.V1Pod | client.V1ReplicaSet) -> str:
    labels = _must(obj.metadata, "metadata").labels or {}
    return labels["pod-template-hash"]


def _pods_if_all_have_hash(core: client.CoreV1Api, namespace: str, template_hash: str) -> list[client.V1Pod]:
    pods = _pods(core, namespace)
    return pods if all(_template_hash(p) == template_hash for p in pods) else []


def _is_running_and_ready(pod: client.V1Pod) -> bool:
    status = _must(pod.status, "pod status")
    ready = any(c.type == "Ready" and c.status == "True" for c in status.conditions or [])
    return status.phase == "Running" and ready


def test_deployment_becomes_available_and_rolls_out_a_new_template(
    cluster: localcluster.Cluster, api: ApiClient, namespace: str
) -> None:
    _require_kwok(cluster, api)
    apps = client.AppsV1Api(api)
    core = client.CoreV1Api(api)
    apps.create_namespaced_deployment(namespace, deployment(APP, replicas=2))
    wait_for(
        lambda: _completed_rollout(apps, namespace), timeout=60, message="Deployment web to become Available"
    )
    pods = _pods(core, namespace)
    assert len(pods) == 2
    kwok_nodes = {
        _must(n.metadata, "metadata").name for n in core.list_node(label_selector="type=kwok").items
    }
    for pod in pods:
        # Scheduled by kube-scheduler (no nodeName in the template) on a KWOK Node, started by KWOK.
        assert _must(pod.spec, "pod spec").node_name in kwok_nodes
        assert _is_running_and_ready(pod), pod.status
    (first_rs,) = _replica_sets(apps, namespace).values()
    first_hash = _template_hash(first_rs)

    apps.patch_namespaced_deployment(
        APP, namespace, {"spec": {"template": {"metadata": {"annotations": {"keyturn.dev/revision": "2"}}}}}
    )
    dep = wait_for(
        lambda: _completed_rollout(apps, namespace), timeout=60, message="the new template to roll out"
    )
    status = _must(dep.status, "status")
    assert status.observed_generation == _must(dep.metadata, "metadata").generation == 2
    assert status.updated_replicas == status.replicas == status.available_replicas == 2

    replica_sets = _replica_sets(apps, namespace)
    assert len(replica_sets) == 2
    new_rs = next(rs for rs in replica_sets.values() if _template_hash(rs) != first_hash)
    old_rs = next(rs for rs in replica_sets.values() if _template_hash(rs) == first_hash)
    assert _must(new_rs.status, "new RS status").available_replicas == 2
    assert _must(old_rs.spec, "old RS spec").replicas == 0
    assert not _must(old_rs.status, "old RS status").replicas

    # The old Pods are really gone (KWOK completes their deletion), the new ones run.
    new_hash = _template_hash(new_rs)
    pods = wait_for(
        lambda: _pods_if_all_have_hash(core, namespace, new_hash),
        timeout=30,
        message="the old ReplicaSet's Pods to be deleted",
    )
    assert len(pods) == 2
    assert all(_is_running_and_ready(p) for p in pods)


def _anonymous_readyz_status(cluster: localcluster.LocalCluster) -> int:
    """The status of GET /readyz without credentials (allowed to anonymous callers by default)."""
    with contextlib.closing(cluster.api_client()) as admin:
        tls = ssl.create_default_context(cafile=admin.configuration.ssl_ca_cert)
    url = urlsplit(cluster.server)
    conn = http.client.HTTPSConnection(url.hostname or "", url.port, context=tls, timeout=5)
    try:
        conn.request("GET", "/readyz")
        return conn.getresponse().status
    finally:
        conn.close()


def _node_is_ready(node: client.V1Node) -> bool:
    conditions = _must(node.status, "node status").conditions or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def test_a_local_cluster_runs_n_nodes_and_restarts_its_apiserver_with_extra_flags() -> None:
    with localcluster.LocalCluster(nodes=2, log=None, progress=None) as local:
        with contextlib.closing(local.api_client()) as api:
            core = client.CoreV1Api(api)
            nodes = core.list_node(label_selector="type=kwok").items
            assert sorted(_must(n.metadata, "metadata").name or "" for n in nodes) == [
                "kwok-node-0",
                "kwok-node-1",
            ]
            assert all(_node_is_ready(n) for n in nodes)
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="kept")))
        assert _anonymous_readyz_status(local) == 200

        local.restart("kube-apiserver", ["--anonymous-auth=false"])

        assert _anonymous_readyz_status(local) == 401
        with contextlib.closing(local.api_client()) as api:
            # Same etcd, same port, same credentials: the data and the clients' access survive.
            assert _must(client.CoreV1Api(api).read_namespace("kept").metadata, "metadata").name == "kept"
        assert local.dead_components() == []
