"""hack/sa_signer_migration.py's file edits and manifests (the cluster steps run in
tests/integration/test_sa_signer.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import sa_signer_migration as migration
from keyturn import cli
from keyturn.domain.spec_parser import parse_spec
from keyturn.sasigner import rules

# The part of kubeadm's kube-apiserver manifest the rewrite touches (kubeadm v1.36 init).
KUBEADM_APISERVER = """\
apiVersion: v1
kind: Pod
metadata:
  name: kube-apiserver
  namespace: kube-system
spec:
  containers:
  - name: kube-apiserver
    image: registry.k8s.io/kube-apiserver:v1.36.3
    command:
    - kube-apiserver
    - --advertise-address=10.0.0.10
    - --service-account-issuer=https://kubernetes.default.svc.cluster.local
    - --service-account-key-file=/etc/kubernetes/pki/sa.pub
    - --service-account-signing-key-file=/etc/kubernetes/pki/sa.key
    - --tls-cert-file=/etc/kubernetes/pki/apiserver.crt
    volumeMounts:
    - mountPath: /etc/kubernetes/pki
      name: k8s-certs
      readOnly: true
  volumes:
  - hostPath:
      path: /etc/kubernetes/pki
      type: DirectoryOrCreate
    name: k8s-certs
"""
SOCKET = "/var/run/keyturn/sa-signer.sock"


def test_the_endpoint_replaces_both_key_file_flags() -> None:
    flags = ["--a=1", "--service-account-key-file=/x", "--service-account-signing-key-file=/y", "--b"]
    assert migration.apiserver_flags(flags, SOCKET) == [
        "--a=1",
        "--b",
        f"--service-account-signing-endpoint={SOCKET}",
    ]


def test_the_rewrite_is_idempotent_and_mounts_the_sockets_folder() -> None:
    once = migration.rewrite_apiserver_manifest(KUBEADM_APISERVER, SOCKET)
    assert migration.rewrite_apiserver_manifest(once, SOCKET) == once
    pod = yaml.safe_load(once)
    (container,) = pod["spec"]["containers"]
    command = container["command"]
    assert f"--service-account-signing-endpoint={SOCKET}" in command
    assert not [f for f in command if f.startswith(migration.KEY_FILE_FLAGS)]
    assert "--service-account-issuer=https://kubernetes.default.svc.cluster.local" in command
    assert {"name": "keyturn-sa-signer", "mountPath": "/var/run/keyturn"} in container["volumeMounts"]
    assert {
        "name": "keyturn-sa-signer",
        "hostPath": {"path": "/var/run/keyturn", "type": "DirectoryOrCreate"},
    } in pod["spec"]["volumes"]
    assert len(pod["spec"]["volumes"]) == 2


def test_a_manifest_of_something_else_is_refused() -> None:
    with pytest.raises(migration.MigrationError, match="no container kube-apiserver"):
        migration.rewrite_apiserver_manifest("kind: Pod\nspec: {containers: [{name: etcd}]}\n", SOCKET)


def test_the_apiserver_step_keeps_the_old_manifest(tmp_path: Path) -> None:
    manifest = tmp_path / "kube-apiserver.yaml"
    manifest.write_text(KUBEADM_APISERVER)
    assert migration.main(["apiserver", "--manifest", str(manifest), "--socket", SOCKET]) == 0
    assert migration.main(["apiserver", "--manifest", str(manifest), "--socket", SOCKET]) == 0
    assert (tmp_path / ".kube-apiserver.yaml.before-keyturn").read_text() == KUBEADM_APISERVER
    assert SOCKET in manifest.read_text()


def test_the_signer_pod_runs_a_command_the_cli_accepts() -> None:
    pod = migration.signer_pod_manifest("kube-system", "service-accounts", image="keyturn:0.1.0")
    (container,) = pod["spec"]["containers"]
    assert container["command"][0] == "keyturn"
    args = cli.parse_args(container["command"][1:])
    assert args.command == "sa-signer"
    assert args.keyset == ("kube-system", "service-accounts")
    assert args.legacy_public_key == ["/etc/kubernetes/pki/sa.pub"]
    mounted = {m["mountPath"] for m in container["volumeMounts"]}
    files = [args.socket, args.cache, args.kubeconfig, *args.legacy_public_key]
    assert all(any(f == m or f.startswith(m + "/") for m in mounted) for f in files), (files, mounted)
    assert {v["name"] for v in pod["spec"]["volumes"]} == {m["name"] for m in container["volumeMounts"]}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_the_keyset_manifest_is_one_the_signer_serves() -> None:
    manifest: dict[str, Any] = migration.keyset_manifest("kube-system", "service-accounts")
    spec = parse_spec("service-accounts", "kube-system", manifest["spec"])
    rules.check_servable(spec)
    assert spec.tokens.max_lifetime is not None
    assert spec.rotation.grace_period > spec.tokens.max_lifetime


def test_the_role_grants_the_signer_its_keyset_and_secret_only() -> None:
    role, binding = migration.rbac_manifests("kube-system", "sa", "sa-secret", "pass")
    assert [(r["resources"], r["resourceNames"], r["verbs"]) for r in role["rules"]] == [
        (["jwtkeysets"], ["sa"], ["get"]),
        (["secrets"], ["sa-secret"], ["get", "list", "watch"]),
        (["secrets"], ["pass"], ["get"]),
    ]
    assert binding["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "keyturn-sa-signer"}
    ]
    assert len(migration.rbac_manifests("kube-system", "sa", "sa")[0]["rules"]) == 2
