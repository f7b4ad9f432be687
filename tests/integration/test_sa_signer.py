"""`keyturn sa-signer` signing the cluster's own ServiceAccount tokens, on a real kube-apiserver.

The module has its own control plane (it restarts kube-apiserver, which would disturb every other
test of the session's one) and migrates it the way docs/serviceaccount-signer.md says, with the
steps of hack/sa_signer_migration.py: a JwtKeySet and the signer's Role, a client certificate for
the signer through the CSR API, the signer started with its cache and the old public key as a
legacy key, the check on its socket, then kube-apiserver restarted with
`--service-account-signing-endpoint` instead of its key files.

What a test waits for, and for how long: the signer sees a change of the Secret through its
watch (well under a second); kube-apiserver asks the signer for keys again within its refresh
hint (at most rules.MAX_REFRESH_HINT, 10 s) and caches successful TokenReviews for 10 s, so a
revoked kid's tokens fail within about 20 s (REVOCATION_DEADLINE allows a loaded machine more).
The module takes about 45 s on the 2-core machine, most of it in the control plane and the three
kube-apiserver restarts.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from jwcrypto import jwk as jc_jwk
from jwcrypto import jws as jc_jws
from kubernetes import client
from kubernetes.client import ApiClient

import localcluster
import sa_signer_migration as migration
from helpers import wait_for
from keyturn.sasigner.legacy import kube_key_id
from keyturn.sasigner.pb import api_pb2, api_pb2_grpc
from kubetools import Kube, OperatorProcess

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE, NAME = "keyturn-sa", "service-accounts"
# A short publishAhead so a manual rotation is not held; the grace outlives every token (10 min).
ROTATION = {"interval": "1d", "publishAhead": "3s", "gracePeriod": "1h", "retention": "2h"}
MAX_TOKEN_LIFETIME = "10m"  # the least kube-apiserver accepts from a signer
START = 60.0  # a process start (imports, first reads) on a loaded machine
KEYS_DEADLINE = 30.0  # the signer's watch + the apiserver's refresh hint, with room
REVOCATION_DEADLINE = 45.0  # + the apiserver's 10 s cache of successful TokenReviews


@dataclass
class Signer:
    """`python -m keyturn sa-signer` as a child process; its log is kept in the work dir."""

    socket: Path
    cache: Path
    kubeconfig: Path
    legacy: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    runs: list[str] = field(default_factory=list)

    def start(self, kubeconfig: Path | None = None) -> None:
        handle = self.log.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "keyturn",
                "sa-signer",
                f"--socket={self.socket}",
                f"--keyset={NAMESPACE}/{NAME}",
                f"--cache={self.cache}",
                f"--legacy-public-key={self.legacy}",
                f"--kubeconfig={kubeconfig or self.kubeconfig}",
                "--log-format=json",
            ],
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={k: v for k, v in os.environ.items() if k != "KUBECONFIG"},
        )
        handle.close()
        wait_for(lambda: self.fetch_keys(timeout=1) is not None, START, message="the signer's socket")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(timeout=20) == 0, self.log_text()
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def fetch_keys(self, timeout: float = 5) -> api_pb2.FetchKeysResponse | None:
        if not self.socket.exists():
            return None
        with grpc.insecure_channel(f"unix:{self.socket}") as channel:
            stub = api_pb2_grpc.ExternalJWTSignerStub(channel)
            try:
                return stub.FetchKeys(api_pb2.FetchKeysRequest(), timeout=timeout)
            except grpc.RpcError:
                return None

    def kids(self) -> list[str]:
        answer = self.fetch_keys()
        assert answer is not None, self.log_text()
        return [k.key_id for k in answer.keys]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def messages(self) -> list[str]:
        lines = (json.loads(line) for line in self.log_text().splitlines() if line.startswith("{"))
        return [str(line.get("message", "")) for line in lines]


@dataclass
class Migrated:
    cluster: localcluster.LocalCluster
    api: ApiClient
    kube: Kube
    signer: Signer
    legacy_token: str
    legacy_kid: str

    def restart_apiserver(self) -> None:
        """With the endpoint instead of the key files, as migration.apiserver_flags rewrites them."""
        self.cluster.restart(
            "kube-apiserver",
            extra_args=migration.apiserver_flags([*migration.KEY_FILE_FLAGS], str(self.signer.socket)),
            drop_args=list(migration.KEY_FILE_FLAGS),
        )

    def status(self) -> dict[str, Any]:
        return self.kube.status(NAME)

    def current_kid(self) -> str:
        return str(self.status()["currentKid"])

    def verifying_kids(self) -> set[str]:
        states = ("current", "next", "previous", "failed")
        return {k["kid"] for k in self.status().get("keys", []) if k.get("state") in states}

    def token(self) -> str:
        return migration.request_token(self.api, NAMESPACE)

    def review(self, token: str) -> bool:
        return migration.review(self.api, token)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _unreachable(kubeconfig: Path, path: Path) -> Path:
    """The signer's kubeconfig pointing at a port nobody listens on: the API server is down."""
    document = yaml.safe_load(kubeconfig.read_text())
    document["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{_closed_port()}"
    path.write_text(yaml.safe_dump(document))
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Migrated]:
    if os.environ.get("KEYTURN_KUBECONFIG"):
        pytest.skip("restarts kube-apiserver with new flags: needs the local control plane")
    work = tmp_path_factory.mktemp("sa-signer")  # logs kept; the socket path stays under 107 bytes
    cluster = localcluster.LocalCluster(nodes=1, log=None, progress=None)
    cluster.start()
    operator: OperatorProcess | None = None
    signer: Signer | None = None
    try:
        cluster.apply_crds(sorted((ROOT / "crds").glob("*.yaml")))
        api = cluster.api_client()
        core = client.CoreV1Api(api)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
        wait_for(
            lambda: any(
                sa.metadata is not None and sa.metadata.name == "default"
                for sa in core.list_namespaced_service_account(NAMESPACE).items
            ),
            30,
            message="ServiceAccount default",
        )
        # A token signed the old way (the apiserver's key file): it must still verify afterwards.
        legacy_token = migration.request_token(api, NAMESPACE)
        sa_pub = cluster.workdir / "pki" / "sa.pub"
        der = serialization.load_pem_public_key(sa_pub.read_bytes()).public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        operator = OperatorProcess(
            kubeconfig=cluster.kubeconfig, namespace=NAMESPACE, log_path=work / "operator.log"
        )
        operator.start()
        manifest = migration.keyset_manifest(
            NAMESPACE,
            NAME,
            max_token_lifetime=MAX_TOKEN_LIFETIME,
            interval=ROTATION["interval"],
            publish_ahead=ROTATION["publishAhead"],
            grace_period=ROTATION["gracePeriod"],
            retention=ROTATION["retention"],
        )
        migration.apply_keyset_and_rbac(api, manifest)
        current = migration.wait_ready(api, NAMESPACE, NAME, timeout=START)
        kubeconfig = migration.issue_client_credentials(api, str(cluster.kubeconfig), work)
        signer = Signer(work / "signer.sock", work / "cache.json", kubeconfig, sa_pub, work / "signer.log")
        signer.start()
        assert signer.cache.stat().st_mode & 0o777 == 0o600
        migration.check_signer(str(signer.socket), current)
        state = Migrated(cluster, api, Kube(api, NAMESPACE), signer, legacy_token, kube_key_id(der))
        state.restart_apiserver()
        yield state
    finally:
        if signer is not None:
            signer.kill()
        if operator is not None:
            operator.stop()
        cluster.stop()


def _header(token: str) -> dict[str, Any]:
    segment = token.split(".", 1)[0]
    header: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return header


def _verified_by_the_keysets_jwks(migrated: Migrated, token: str) -> None:
    """jwcrypto, not Keyturn's code, checks the signature with the key the operator published."""
    document = migrated.kube.jwks(f"{NAME}-jwks")
    assert document is not None
    keys = jc_jwk.JWKSet.from_json(json.dumps(document))
    signed = jc_jws.JWS()
    signed.deserialize(token)
    signed.verify(keys.get_key(_header(token)["kid"]), alg=_header(token)["alg"])


def test_tokenrequest_signs_with_the_current_kid_and_tokenreview_accepts_it(migrated: Migrated) -> None:
    token = migrated.token()
    assert _header(token) == {"alg": "RS256", "kid": migrated.current_kid(), "typ": "JWT"}
    _verified_by_the_keysets_jwks(migrated, token)
    assert migrated.review(token)
    assert migration.verify(migrated.api, NAMESPACE, NAME) == migrated.current_kid()


def test_a_token_of_the_old_key_file_still_verifies_as_a_legacy_key(migrated: Migrated) -> None:
    assert _header(migrated.legacy_token)["kid"] == migrated.legacy_kid  # kube-apiserver's own kid rule
    assert migrated.review(migrated.legacy_token)
    assert migrated.legacy_kid in migrated.signer.kids()
    assert migrated.legacy_kid not in migration.oidc_kids(migrated.api)


def test_the_oidc_jwks_lists_exactly_the_keysets_keys_next_included(migrated: Migrated) -> None:
    status = migrated.status()
    assert status.get("nextKid"), "the operator prepares the next key right away"
    wait_for(
        lambda: set(migration.oidc_kids(migrated.api)) == migrated.verifying_kids(),
        KEYS_DEADLINE,
        message="/openid/v1/jwks = the keyset's verifying keys",
    )
    assert status["nextKid"] in migration.oidc_kids(migrated.api)  # published before it ever signs
    assert status["nextKid"] in migrated.signer.kids()


def test_after_a_rotation_old_tokens_pass_and_new_tokens_carry_the_new_kid(migrated: Migrated) -> None:
    old_kid, old_token = migrated.current_kid(), migrated.token()
    new_kid = migrated.status()["nextKid"]
    token = f"rotate-{secrets.token_hex(3)}"
    migrated.kube.patch_keyset(NAME, {"metadata": {"annotations": {"keyturn.dev/rotate": token}}})
    migrated.kube.wait_status(
        NAME, lambda s: s.get("lastHandledRotate") == token, START, "the rotation handled"
    )
    assert migrated.current_kid() == new_kid
    fresh = wait_for(
        lambda: next((t for t in [migrated.token()] if _header(t)["kid"] == new_kid), None),
        KEYS_DEADLINE,
        message=f"TokenRequest signing with {new_kid}",
    )
    assert migrated.review(fresh)
    assert migrated.review(old_token), "a token of the demoted key passes during its grace"
    assert _header(old_token)["kid"] == old_kid
    wait_for(
        lambda: set(migration.oidc_kids(migrated.api)) == migrated.verifying_kids(),
        KEYS_DEADLINE,
        message="/openid/v1/jwks after the rotation",
    )


def test_after_a_revocation_tokens_of_the_revoked_kid_fail_tokenreview(migrated: Migrated) -> None:
    revoked, revoked_token = migrated.current_kid(), migrated.token()
    assert migrated.review(revoked_token)
    request_id = f"inc-{secrets.token_hex(3)}"
    emergency = {"requestId": request_id, "reason": "key_compromise", "revokeKids": [revoked]}
    migrated.kube.patch_status(NAME, {"status": {"emergency": emergency}})
    migrated.kube.wait_status(
        NAME,
        lambda s: (s.get("emergency") or {}).get("result") == "Revoked",
        START,
        "the revocation acknowledged",
    )
    assert revoked not in migrated.signer.kids()  # gone as soon as the Secret says so
    wait_for(
        lambda: not migrated.review(revoked_token),
        REVOCATION_DEADLINE,
        message=f"TokenReview refusing tokens of {revoked}",
    )
    wait_for(
        lambda: set(migration.oidc_kids(migrated.api)) == migrated.verifying_kids(),
        KEYS_DEADLINE,
        message="/openid/v1/jwks without the revoked kid",
    )
    fresh = migrated.token()
    assert _header(fresh)["kid"] == migrated.current_kid() != revoked
    assert migrated.review(fresh)
    assert migrated.review(migrated.legacy_token)  # nothing else was revoked


def test_the_signer_serves_from_its_cache_across_apiserver_and_signer_restarts(migrated: Migrated) -> None:
    signer, current = migrated.signer, migrated.current_kid()
    # The apiserver restarts under a running signer: the signer keeps serving, its watch reconnects.
    migrated.restart_apiserver()
    assert _header(migrated.token())["kid"] == current
    # The signer restarts while the API server cannot be reached: it serves its cache, and an
    # apiserver starting then is served by it.
    signer.stop()
    assert not signer.socket.exists()
    signer.start(kubeconfig=_unreachable(signer.kubeconfig, signer.log.with_name("down.conf")))
    assert current in signer.kids()
    assert any(m.startswith("serving from the cache") for m in signer.messages())
    migrated.restart_apiserver()
    token = migrated.token()
    assert _header(token)["kid"] == current
    assert migrated.review(token)
    # Back with its credentials, it follows the Secret again (a rotation reaches the apiserver).
    signer.stop()
    signer.start()
    new_kid = migrated.status()["nextKid"]
    rotate = f"rotate-{secrets.token_hex(3)}"
    migrated.kube.patch_keyset(NAME, {"metadata": {"annotations": {"keyturn.dev/rotate": rotate}}})
    wait_for(
        lambda: _header(migrated.token())["kid"] == new_kid,
        START,
        message=f"tokens signed with {new_kid} after the signer's restarts",
    )
    log = signer.log_text()
    assert "Traceback" not in log
    pem = json.loads(signer.cache.read_text())["signingKey"]["pem"]
    assert all(line not in log for line in pem.splitlines()[1:-1]), "the signer logged key material"
