"""`keyturn` / `kubectl keyturn` against the real control plane and the real operator.

The CLI runs as a subprocess exactly as a person runs it: `python -m keyturn ...` with a
KUBECONFIG, and once through kubectl's plugin discovery. `--wait` and `revoke` wait on the
operator with their own deadlines; the tests only wait on conditions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes import client
from kubernetes.client import ApiClient

import localcluster
from helpers import wait_for
from kubetools import Kube, OperatorProcess

pytestmark = pytest.mark.integration

# publishAhead 0s: a manual rotation activates at once; nothing else is due during a test.
ROTATION = {"interval": "30d", "publishAhead": "0s", "gracePeriod": "7d", "retention": "14d"}
SCRIPTS = Path(sysconfig.get_path("scripts"))  # the venv's bin dir, where kubectl-keyturn lives

Run = Callable[..., "subprocess.CompletedProcess[str]"]


def kids(status: dict[str, Any]) -> dict[str, str]:
    return {k["kid"]: k["state"] for k in status.get("keys", [])}


@pytest.fixture
def cli(cluster: localcluster.Cluster, namespace: str) -> Run:
    """Runs `python -m keyturn ARGS -n <namespace>` and returns the finished process."""

    def run(
        *args: str, kubeconfig: Path | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(kubeconfig or cluster.kubeconfig)}
        return subprocess.run(
            [sys.executable, "-m", "keyturn", *args, "-n", namespace],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )

    return run


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    return proc.stdout


def fails(proc: subprocess.CompletedProcess[str], code: int, *fragments: str) -> str:
    assert proc.returncode == code, f"exit {proc.returncode} (want {code})\n{proc.stdout}\n{proc.stderr}"
    for fragment in fragments:
        assert fragment in proc.stderr, f"{fragment!r} not in stderr: {proc.stderr}"
    return proc.stderr


def test_status_shows_every_keyset_with_its_kids_states_and_conditions(
    kube: Kube, keyturn: OperatorProcess, cli: Run, namespace: str
) -> None:
    kube.create_keyset("alpha", {"algorithm": "ES256", "rotation": ROTATION})
    kube.create_keyset("beta", {"algorithm": "HS256", "rotation": ROTATION})
    alpha, beta = kube.wait_ready("alpha"), kube.wait_ready("beta")

    text = ok(cli("status"))
    assert f"{namespace}/alpha" in text and f"{namespace}/beta" in text
    for status in (alpha, beta):
        assert f"{status['currentKid']}  current" in text
        assert f"{status['nextKid']}  next" in text
    assert text.count("Phase:") == 2 and "Ready=True Reconciling=False Stalled=False" in text
    assert "Next rotation:" in text and "(in 29d" in text

    one = json.loads(ok(cli("status", "alpha", "-o", "json")))
    assert one["name"] == "alpha" and one["status"]["currentKid"] == alpha["currentKid"]
    listed = yaml.safe_load(ok(cli("-o", "yaml", "status")))
    assert [item["name"] for item in listed["items"]] == ["alpha", "beta"]
    everywhere = json.loads(ok(cli("status", "-A", "-o", "json")))
    ours = {i["name"] for i in everywhere["items"] if i["namespace"] == namespace}
    assert ours == {"alpha", "beta"}


def test_rotate_and_rollback_wait_and_print_the_kid_that_signs(
    kube: Kube, keyturn: OperatorProcess, cli: Run
) -> None:
    kube.create_keyset("api", {"algorithm": "RS256", "rotation": ROTATION})
    status = kube.wait_ready("api")
    first, second = status["currentKid"], status["nextKid"]

    out = ok(cli("rotate", "api", "--wait", "--timeout", "60s"))
    assert f"{second} signs now" in out
    status = kube.status("api")
    token = kube.keyset("api")["metadata"]["annotations"]["keyturn.dev/rotate"]
    assert status["lastHandledRotate"] == token and token.startswith("cli-")
    assert status["currentKid"] == second and kids(status)[first] == "previous"

    result = json.loads(ok(cli("rollback", "api", "--wait", "-o", "json")))
    assert result["handled"] is True and result["result"] == "RolledBack"
    assert result["currentKid"] == first and result["previousKid"] == second
    status = kube.status("api")
    assert status["currentKid"] == first and kids(status)[second] == "failed"
    assert status["lastHandledRollback"] == result["token"]

    # the failed key never signs again: nothing is left to roll back to
    fails(cli("rollback", "api", "--wait"), 4, "no previous key")

    # without --wait the request is only written; a ticket id can be the token
    ok(cli("rotate", "api", "--token", "CHG-1234"))
    kube.wait_status("api", lambda s: s.get("lastHandledRotate") == "CHG-1234", 30, "ticket token handled")


def test_revoke_prints_the_new_kid_and_refuses_unknown_or_revoked_kids(
    kube: Kube, keyturn: OperatorProcess, cli: Run
) -> None:
    kube.create_keyset("sos", {"algorithm": "ES256", "rotation": ROTATION})
    status = kube.wait_ready("sos")
    old, nxt = status["currentKid"], status["nextKid"]

    out = ok(cli("revoke", "sos", "--reason", "key_compromise", "--timeout", "60"))
    assert f"revoked {old}" in out and f"{nxt} signs now" in out
    status = kube.status("sos")
    assert not status["emergency"].get("revokeKids"), "without KID the request names no kid"
    key = next(k for k in status["keys"] if k["kid"] == old)
    assert key["state"] == "revoked" and key["reason"] == "key_compromise"
    assert status["currentKid"] == nxt and status["emergency"]["result"] == "Revoked"
    doc = kube.jwks("sos-jwks")
    assert doc is not None and old not in [k["kid"] for k in doc["keys"]]

    fails(cli("revoke", "sos", old, "--reason", "again"), 4, "already revoked")
    fails(cli("revoke", "sos", "no-such-kid", "--reason", "typo"), 4, "unknown kid 'no-such-kid'")
    assert kube.status("sos")["emergency"]["requestId"] == status["emergency"]["requestId"], "nothing written"

    # a second request replaces the acknowledged first one as a whole (the CRD refuses a merge)
    before = kube.status("sos")
    live = [kid for kid, state in kids(before).items() if state != "revoked"]
    ack = json.loads(ok(cli("revoke", "sos", "--all", "--reason", "storage_compromise", "-o", "json")))
    assert ack["result"] == "Revoked" and ack["revokeAll"] is True and "revokeKids" not in ack
    assert sorted(ack["revokedKids"]) == sorted(live) and ack["newKid"] not in kids(before)
    after = kube.status("sos")
    assert all(kids(after)[kid] == "revoked" for kid in live)
    assert after["currentKid"] == ack["newKid"]


def test_revoke_without_kid_revokes_the_current_key_of_keyturns_record_not_of_status(
    cluster: localcluster.Cluster, kube: Kube, keyturn: OperatorProcess, namespace: str
) -> None:
    """Anyone allowed to patch the status subresource can claim another current kid: the CLI
    must not turn that claim into the request, and Keyturn revokes what its record says."""
    kube.create_keyset("forged", {"algorithm": "ES256", "rotation": ROTATION})
    status = kube.wait_ready("forged")
    real, nxt = status["currentKid"], status["nextKid"]
    keyturn.stop()  # nothing rewrites the forged status until the request is written
    kube.patch_status("forged", {"status": {"currentKid": nxt}})
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    argv = ["revoke", "forged", "--reason", "key_compromise", "--request-id", "inc-forged", "--timeout", "90"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "keyturn", *argv, "-n", namespace],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:

        def written() -> dict[str, Any] | None:
            request: dict[str, Any] = kube.status("forged").get("emergency") or {}
            return request if request.get("requestId") == "inc-forged" else None

        request = wait_for(written, 60, message="the emergency request written by the CLI")
        assert not request.get("revokeKids"), f"a kid taken from status was sent: {request}"
        keyturn.start()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, f"stdout: {out}\nstderr: {err}"
    assert f"status says it is {nxt}" in err
    assert f"revoked {real}" in out
    after = kube.status("forged")
    assert kids(after)[real] == "revoked" and kids(after)[nxt] != "revoked"


def test_jwks_prints_the_published_set_current_kid_first(
    kube: Kube, keyturn: OperatorProcess, cli: Run
) -> None:
    kube.create_keyset("pub", {"algorithm": "EdDSA", "rotation": ROTATION})
    kube.create_keyset(
        "custom",
        {"algorithm": "RS256", "rotation": ROTATION, "jwks": {"configMapName": "keys", "key": "k.json"}},
    )
    kube.create_keyset("hmac", {"algorithm": "HS512", "rotation": ROTATION})
    for name in ("pub", "custom", "hmac"):
        kube.wait_ready(name)
    for name in ("pub", "custom"):
        current = kube.status(name)["currentKid"]

        def published(name: str = name, current: str = current) -> dict[str, Any] | None:
            doc: dict[str, Any] = json.loads(ok(cli("jwks", name)))
            return doc if doc["keys"][0]["kid"] == current else None

        doc = wait_for(published, 20, message=f"JWKS of {name} led by {current}")
        assert all("d" not in k for k in doc["keys"]), "public keys only"
        assert yaml.safe_load(ok(cli("jwks", name, "-o", "yaml"))) == doc
    fails(cli("jwks", "hmac"), 2, "never published")


def test_missing_keysets_exit_3(cli: Run, namespace: str) -> None:
    for argv in (
        ["status", "ghost"],
        ["rotate", "ghost"],
        ["rollback", "ghost"],
        ["revoke", "ghost", "--reason", "r"],
        ["jwks", "ghost"],
    ):
        fails(cli(*argv), 3, f'JwtKeySet "ghost" not found in namespace "{namespace}"')


def test_init_prints_or_applies_a_keyset_keyturn_reconciles(
    kube: Kube, keyturn: OperatorProcess, cli: Run
) -> None:
    manifest = yaml.safe_load(ok(cli("init", "fresh", "--algorithm", "ES384", "--interval", "30d")))
    assert manifest["spec"] == {"algorithm": "ES384", "rotation": {"interval": "30d"}}
    ok(cli("init", "dry", "--apply", "--dry-run"))
    ok(cli("init", "fresh", "--algorithm", "ES384", "--publish-ahead", "0s", "--apply"))
    status = kube.wait_ready("fresh")
    assert status["keys"][0]["algorithm"] == "ES384"
    listed = cast(
        dict[str, Any],
        kube.custom.list_namespaced_custom_object("keyturn.dev", "v1alpha1", kube.namespace, "jwtkeysets"),
    )
    assert [o["metadata"]["name"] for o in listed["items"]] == ["fresh"], "the dry run created nothing"
    fails(cli("init", "fresh", "--apply"), 1, "already exists")
    fails(cli("init", "bad", "--algorithm", "RS256", "--interval", "0s", "--apply"), 2, "greater than zero")


def test_kubectl_finds_the_plugin(
    cluster: localcluster.Cluster, kube: Kube, keyturn: OperatorProcess, namespace: str
) -> None:
    """`kubectl keyturn` through kubectl's plugin discovery (kubectl-keyturn on PATH).

    cluster.kubectl() puts --kubeconfig before the arguments, and kubectl refuses flags before
    a plugin name ("flags cannot be placed before plugin name"), so kubectl is run directly.
    """
    assert cluster.kubectl_path is not None
    kube.create_keyset("plug", {"algorithm": "ES256", "rotation": ROTATION})
    status = kube.wait_ready("plug")
    env = {**os.environ, "PATH": f"{SCRIPTS}{os.pathsep}{os.environ.get('PATH', '')}"}

    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [
            str(cluster.kubectl_path),
            "keyturn",
            *args,
            "--kubeconfig",
            str(cluster.kubeconfig),
            "-n",
            namespace,
        ]
        return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)

    listed = subprocess.run(
        [str(cluster.kubectl_path), "plugin", "list"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert str(SCRIPTS / "kubectl-keyturn") in listed.stdout
    text = ok(kubectl("status", "plug"))
    assert f"{status['currentKid']}  current" in text
    out = ok(kubectl("rotate", "plug", "--wait"))
    assert f"{status['nextKid']} signs now" in out
    help_text = ok(kubectl("--help"))
    assert help_text.startswith("usage: kubectl keyturn")


def _viewer_kubeconfig(api: ApiClient, cluster: localcluster.Cluster, namespace: str, path: Path) -> Path:
    """A kubeconfig for a ServiceAccount that may only get/list jwtkeysets (token from TokenRequest)."""
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    meta = client.V1ObjectMeta(name="viewer")
    core.create_namespaced_service_account(namespace, client.V1ServiceAccount(metadata=meta))
    rule = client.V1PolicyRule(api_groups=["keyturn.dev"], resources=["jwtkeysets"], verbs=["get", "list"])
    rbac.create_namespaced_role(namespace, client.V1Role(metadata=meta, rules=[rule]))
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=meta,
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="viewer"),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name="viewer", namespace=namespace)],
        ),
    )
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600)
    )
    minted = core.create_namespaced_service_account_token("viewer", namespace, request).status
    assert minted is not None and minted.token
    token = minted.token
    admin = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    current = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    server = next(c for c in admin["clusters"] if c["name"] == current["context"]["cluster"])
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [server],
        "users": [{"name": "viewer", "user": {"token": token}}],
        "contexts": [{"name": "viewer", "context": {"cluster": server["name"], "user": "viewer"}}],
        "current-context": "viewer",
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def test_revoke_without_permission_exits_5_naming_the_refused_patch(
    api: ApiClient,
    cluster: localcluster.Cluster,
    kube: Kube,
    keyturn: OperatorProcess,
    cli: Run,
    tmp_path: Path,
) -> None:
    kube.create_keyset("locked", {"algorithm": "RS256", "rotation": ROTATION})
    current = kube.wait_ready("locked")["currentKid"]
    viewer = _viewer_kubeconfig(api, cluster, kube.namespace, tmp_path / "viewer.kubeconfig")
    # the token reads (once the RoleBinding reached the authorizer): exit 5 below is the patch alone
    wait_for(lambda: cli("status", "locked", kubeconfig=viewer).returncode == 0, 30, message="viewer can get")

    err = fails(
        cli("revoke", "locked", "--reason", "key_compromise", kubeconfig=viewer), 5, "jwtkeysets/status"
    )
    assert "patch" in err and "emergency-responder" in err
    fails(cli("rotate", "locked", kubeconfig=viewer), 5, "refused to patch jwtkeysets")
    status = kube.status("locked")
    assert status["currentKid"] == current and "emergency" not in status
