"""Every example (one per runbook) applies as-is and produces what its runbook needs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import wait_for
from keyturn.keys.jwk import public_jwk
from keyturn.keys.material import load_raw_secret
from keyturn.keys.pem import load_private_pem, public_pem
from keyturn.keys.thumbprints import secret_fingerprint, thumbprint
from kubetools import Kube, OperatorProcess, template_annotations

pytestmark = pytest.mark.integration
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def apply(kube: Kube, cluster: Any, path: Path) -> list[str]:
    """kubectl apply into the test namespace (the files say `default`)."""
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    for doc in docs:
        doc["metadata"]["namespace"] = kube.namespace
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    return [d["metadata"]["name"] for d in docs if d["kind"] == "JwtKeySet"]


def test_every_runbook_has_an_example() -> None:
    index = (Path("/work/shared/seeds/INDEX.md"), EXAMPLES)
    names = {p.name for p in EXAMPLES.glob("runbook-*.yaml")}
    assert {f"runbook-00{i}" for i in range(5)} <= {n[:11] for n in names}, (index, names)


def test_quickstart(kube: Kube, keyturn: OperatorProcess, cluster: Any) -> None:
    (name,) = apply(kube, cluster, EXAMPLES / "quickstart.yaml")
    status = kube.wait_ready(name)
    assert status["nextRotationAt"]
    published = kube.jwks("quickstart-jwks") or {}
    assert published["keys"][0]["kid"] == status["currentKid"]


def test_runbook_000_rs256_and_es256_jwks(kube: Kube, keyturn: OperatorProcess, cluster: Any) -> None:
    names = apply(kube, cluster, EXAMPLES / "runbook-000-jwks-manager.yaml")
    assert names == ["api-keys-rs256", "api-keys-es256"]
    rs = kube.wait_ready("api-keys-rs256")
    es = kube.wait_ready("api-keys-es256")
    assert rs["nextRotationAt"].endswith("T02:00:00Z")  # the runbook's cron: 02:00 UTC
    assert rs["nextRotationAt"][8:10] == "01"
    jwks_rs = kube.jwks("api-keys-rs256-jwks") or {}
    jwks_es = kube.jwks("api-keys-es256-jwks") or {}
    assert {k["alg"] for k in jwks_rs["keys"]} == {"RS256"}
    assert {(k["alg"], k["crv"]) for k in jwks_es["keys"]} == {("ES256", "P-256")}
    assert jwks_es["keys"][0]["kid"] == es["currentKid"]


def test_runbook_001_hs256_dual_secret(kube: Kube, keyturn: OperatorProcess, cluster: Any) -> None:
    (name,) = apply(kube, cluster, EXAMPLES / "runbook-001-hs256-dual-secret.yaml")
    status = kube.wait_ready(name)
    secret = kube.secret("api-jwt") or {}
    assert secret["JWT_SECRET_NEW"] == secret["JWT_SECRET"]
    assert secret["JWT_KID"] == status["currentKid"]
    assert "JWT_SECRET_NEXT" in secret and secret["JWT_SECRET_NEXT"] != secret["JWT_SECRET"]
    assert "JWT_SECRET_CURRENT" not in secret  # no previous secret before the first rotation
    assert len(secret["JWT_SECRET"]) >= 64
    load_raw_secret(secret["JWT_SECRET"], "HS256")
    kube.patch_keyset(name, {"metadata": {"annotations": {"keyturn.dev/rotate": "phase-1"}}})
    # seconds instead of hours, so the test need not wait an hour for publishAhead
    fast = {"rotation": {"publishAhead": "0s"}, "tokens": {"verifierCacheTTL": "0s"}}
    kube.patch_keyset(name, {"spec": fast})
    kube.wait_status(name, lambda s: s.get("lastHandledRotate") == "phase-1", 20, "rotation")
    after = kube.secret("api-jwt") or {}
    assert after["JWT_SECRET_CURRENT"] == secret["JWT_SECRET"]  # the old secret still verifies
    assert after["JWT_SECRET_NEW"] == secret["JWT_SECRET_NEXT"]


def test_runbook_002_banking_rsa4096_encrypted_template_kid(
    kube: Kube, keyturn: OperatorProcess, cluster: Any
) -> None:
    (name,) = apply(kube, cluster, EXAMPLES / "runbook-002-banking-rsa4096.yaml")
    status = kube.wait_ready(name, timeout=90)
    assert re.fullmatch(r"\d{8}_v1_prod", status["currentKid"])
    assert re.fullmatch(r"\d{8}_v2_prod", status["nextKid"])
    secret = kube.secret("bank-signing") or {}
    assert secret["JWT_SIGNING_KEY_ID"] == status["currentKid"]
    pem = secret["JWT_PRIVATE_KEY"]
    assert pem.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    passphrase = (kube.secret("bank-jwt-passphrase") or {})["passphrase"].encode()
    material = load_private_pem(pem, passphrase, "RS256")
    jwk = public_jwk(material, status["currentKid"])
    assert len(thumbprint(jwk)) == 43
    published = (kube.jwks("bank-signing-jwks") or {})["keys"][0]
    assert published["n"] == jwk["n"]  # RSA-4096: 512-byte modulus
    assert len(published["n"]) >= 682
    assert status["nextRotationAt"]


def test_runbook_003_rs256_pem_env(kube: Kube, keyturn: OperatorProcess, cluster: Any) -> None:
    (name,) = apply(kube, cluster, EXAMPLES / "runbook-003-rs256-env-pem.yaml")
    status = kube.wait_ready(name)
    secret = kube.secret("pm-jwt") or {}
    assert secret["PM__JWT__PRIVATE_KEY"].startswith("-----BEGIN PRIVATE KEY-----")
    assert secret["PM__JWT__PUBLIC_KEY"].startswith("-----BEGIN PUBLIC KEY-----")
    assert secret["PM__JWT__KID"] == status["currentKid"]
    assert "PM__JWT__NEXT_PUBLIC_KEY" in secret
    material = load_private_pem(secret["PM__JWT__PRIVATE_KEY"], None, "RS256")
    assert public_pem(material) == secret["PM__JWT__PUBLIC_KEY"]
    # rollback to the old keys, as the runbook's last section
    # seconds instead of hours, so the test need not wait an hour for publishAhead
    fast = {"rotation": {"publishAhead": "0s"}, "tokens": {"verifierCacheTTL": "0s"}}
    kube.patch_keyset(name, {"spec": fast})
    kube.patch_keyset(name, {"metadata": {"annotations": {"keyturn.dev/rotate": "r1"}}})
    kube.wait_status(name, lambda s: s.get("lastHandledRotate") == "r1", 20, "rotation")
    kube.patch_keyset(name, {"metadata": {"annotations": {"keyturn.dev/rollback": "b1"}}})
    rolled = kube.wait_status(name, lambda s: s.get("lastHandledRollback") == "b1", 20, "rollback")
    assert rolled["currentKid"] == status["currentKid"]
    assert (kube.secret("pm-jwt") or {})["PM__JWT__PRIVATE_KEY"] == secret["PM__JWT__PRIVATE_KEY"]
    assert kube.wait_condition(name, "RolledBack", "True")["reason"] == "RolledBack"


def test_runbook_004_hs256_serverless(kube: Kube, keyturn: OperatorProcess, cluster: Any) -> None:
    (name,) = apply(kube, cluster, EXAMPLES / "runbook-004-hs256-serverless.yaml")
    status = kube.wait_ready(name)
    secret = kube.secret("valine-jwt") or {}
    assert "AUTH_JWT_SECRET" in secret and "AUTH_JWT_SECRET_SECONDARY" not in secret
    # the audit record names each secret by its SHA-256 prefix, never by the secret itself
    fingerprints = {k["kid"]: k["fingerprint"] for k in status["keys"]}
    material = load_raw_secret(secret["AUTH_JWT_SECRET"], "HS256")
    assert fingerprints[status["currentKid"]] == secret_fingerprint(material)
    # emergency rotation: the old secret stops verifying at once
    kube.patch_status(name, {"status": {"emergency": {"requestId": "valine-1", "reason": "key_compromise"}}})
    done = kube.wait_status(name, lambda s: s.get("emergency", {}).get("result") == "Revoked", 20, "revoked")
    after = wait_for(
        lambda: (s := kube.secret("valine-jwt")) and s.get("AUTH_JWT_KID") == done["currentKid"] and s,
        10,
        message="Secret updated",
    )
    assert secret["AUTH_JWT_SECRET"] not in after.values()


def test_propagation_gate(kube: Kube, keyturn: OperatorProcess, cluster: Any) -> None:
    """The gate parses and holds nothing before an activation is due; its `reload: none`
    verifier is listed as a target, ready at once, and never restarted."""
    (name,) = apply(kube, cluster, EXAMPLES / "propagation-gate.yaml")
    status = kube.wait_ready(name)
    assert status["nextRotationAt"] and status.get("propagation") is None
    targets = kube.wait_status(
        name, lambda s: (s.get("rollout") or {}).get("targets"), 20, "the verifier listed"
    )["rollout"]["targets"]
    assert [(t["name"], t["role"], t["state"]) for t in targets] == [("api-verifier", "verifier", "Ready")]
    deployment = kube.apps.read_namespaced_deployment("api-verifier", kube.namespace)
    stamped = template_annotations(deployment)
    assert not any(k.startswith("keyturn.dev/") for k in stamped), stamped
