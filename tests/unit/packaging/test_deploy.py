"""deploy/, the committed Kustomize base: complete, hardened, highly available, no RBAC wildcards."""

from __future__ import annotations

from typing import Any

import yaml

from keyturn import cli
from unit.packaging.dockerfile import ROOT, parse_dockerfile

DEPLOY = ROOT / "deploy"


def deploy_objects() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    objects: list[dict[str, Any]] = []
    for entry in kustomization["resources"]:
        path = DEPLOY / entry
        files = (
            [path / r for r in yaml.safe_load((path / "kustomization.yaml").read_text())["resources"]]
            if path.is_dir()
            else [path]
        )
        for f in files:
            objects += [d for d in yaml.safe_load_all(f.read_text()) if d]
    return objects


def test_every_deploy_file_is_in_the_kustomization() -> None:
    listed = set(yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())["resources"])
    crds = set(yaml.safe_load((DEPLOY / "crds" / "kustomization.yaml").read_text())["resources"])
    on_disk = {p.name for p in DEPLOY.iterdir() if p.is_file() and p.name != "kustomization.yaml"}
    assert on_disk | {"crds"} == listed
    assert {p.name for p in (DEPLOY / "crds").iterdir() if p.name != "kustomization.yaml"} == crds


def test_the_committed_deployment_runs_hardened_with_the_images_user() -> None:
    (deployment,) = [
        o for o in deploy_objects() if o["kind"] == "Deployment" and "jwks" not in o["metadata"]["name"]
    ]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    ctx = container["securityContext"]
    _, stages = parse_dockerfile()
    (user,) = stages[-1].all("USER")
    assert ctx["runAsUser"] == pod["securityContext"]["runAsUser"] == int(user.split(":")[0])
    assert ctx["runAsNonRoot"] is True and pod["securityContext"]["runAsNonRoot"] is True
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert f"--health-port={ports['health']}" in container["args"]
    assert f"--metrics-port={ports['metrics']}" in container["args"]
    # The image's ENTRYPOINT is `keyturn`: the chart's args must be a command line the CLI accepts.
    cli.parser().parse_args(container["args"])
    assert "--lease=keyturn" in container["args"]


def test_the_committed_deployment_runs_an_active_and_a_standby_replica() -> None:
    """Two replicas electing a leader on a Lease (one acts, one stands by), kept by a budget of one
    through node drains, and preferably on different nodes."""
    objs = deploy_objects()
    (deployment,) = [o for o in objs if o["kind"] == "Deployment" and "jwks" not in o["metadata"]["name"]]
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    lease = [a for a in container["args"] if a.startswith("--lease")]
    assert lease == ["--lease=keyturn", "--lease-duration=10"] and "--standalone" not in container["args"]
    assert not [a for a in container["args"] if a.startswith(("--peering", "--priority"))]
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"]}
    assert env == {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}
    (pdb,) = [o for o in objs if o["kind"] == "PodDisruptionBudget" and "jwks" not in o["metadata"]["name"]]
    assert pdb["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    assert pdb["spec"] == {"minAvailable": 1, "selector": deployment["spec"]["selector"]}
    (spread,) = pod["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["whenUnsatisfiable"] == "ScheduleAnyway", "soft: a one-node cluster still runs both"
    assert spread["labelSelector"] == deployment["spec"]["selector"]


def test_the_lease_is_granted_in_the_operators_namespace_only() -> None:
    """A Role next to the Deployment: create (which cannot be limited by name), get and update of
    the one Lease by name; no ClusterRole mentions leases."""
    objs = deploy_objects()
    (deployment,) = [o for o in objs if o["kind"] == "Deployment" and "jwks" not in o["metadata"]["name"]]
    namespace = deployment["metadata"]["namespace"]
    (role,) = [o for o in objs if o["kind"] == "Role" and "jwks" not in o["metadata"]["name"]]
    assert role["metadata"]["namespace"] == namespace
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": ["keyturn"],
            "verbs": ["get", "update"],
        },
    ]
    (binding,) = [o for o in objs if o["kind"] == "RoleBinding" and "jwks" not in o["metadata"]["name"]]
    assert binding["metadata"]["namespace"] == namespace
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    sa = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": namespace}]
    assert sa
    for cluster_role in (o for o in objs if o["kind"] == "ClusterRole"):
        for rule in cluster_role["rules"]:
            assert "leases" not in rule["resources"], cluster_role["metadata"]["name"]


def test_the_committed_rbac_has_no_wildcards() -> None:
    for obj in deploy_objects():
        if obj["kind"] in ("Role", "ClusterRole"):
            for rule in obj.get("rules") or ():
                for key in ("verbs", "resources", "apiGroups", "resourceNames", "nonResourceURLs"):
                    assert "*" not in (rule.get(key) or []), (obj["metadata"]["name"], rule)
