"""Move a cluster's ServiceAccount token signing from key files to a Keyturn keyset (`keyturn sa-signer`).

docs/serviceaccount-signer.md explains the steps; this script performs them, one subcommand each,
against the cluster of KUBECONFIG (as an admin) and on the control-plane node's files. Every step
can be run again: it makes what is there match and says so.

    M="python hack/sa_signer_migration.py" KS=kube-system/service-accounts S=/var/run/keyturn/sa-signer.sock
    $M prepare     --keyset $KS [--algorithm RS256] [--max-token-lifetime 24h] [--grace-period 7d]
    $M credentials --keyset $KS --out /etc/kubernetes
    $M signer-pod  --keyset $KS --image IMAGE > /etc/kubernetes/manifests/keyturn-sa-signer.yaml
    $M check       --keyset $KS --socket $S
    $M apiserver   --manifest /etc/kubernetes/manifests/kube-apiserver.yaml --socket $S
    $M verify      --keyset $KS

1. prepare: the JwtKeySet (tokens.maxLifetime set: the signer requires it), the Role and
   RoleBinding that let the signer's user read it and watch its Secret; waits until it is Ready.
2. credentials: a client certificate for that user through the CSR API (approved here), and a
   kubeconfig with it: the signer cannot use a ServiceAccount token, it signs them.
3. signer-pod: the signer's static Pod manifest for /etc/kubernetes/manifests (kubeadm layout).
4. check: the signer answers on its socket with the keyset's current key: safe to switch.
5. apiserver: rewrites kube-apiserver's static Pod manifest: --service-account-signing-endpoint
   instead of --service-account-signing-key-file and --service-account-key-file (they exclude
   each other), and the socket's folder mounted (a copy of the old manifest is kept).
6. verify: a token from TokenRequest carries the current kid, TokenReview accepts it, and the
   OIDC JWKS lists exactly the keyset's keys (a legacy key verifies but is never listed there).
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, cast

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kubernetes import client, config
from kubernetes.client import ApiClient, ApiException

from keyturn import GROUP, KIND, PLURAL, VERSION

SIGNER_USER: Final = "keyturn-sa-signer"
SIGNER_ROLE: Final = "keyturn-sa-signer"
ENDPOINT_FLAG: Final = "--service-account-signing-endpoint"
# kube-apiserver refuses either of these next to ENDPOINT_FLAG (pkg/controlplane/apiserver/options).
KEY_FILE_FLAGS: Final = ("--service-account-signing-key-file", "--service-account-key-file")
SOCKET_VOLUME: Final = "keyturn-sa-signer"


class MigrationError(RuntimeError):
    """A step cannot go on; the message says what to do."""


# ------------------------------------------------------------------------------------ manifests
def keyset_manifest(
    namespace: str,
    name: str,
    *,
    algorithm: str = "RS256",
    max_token_lifetime: str = "24h",  # noqa: S107 - a duration, not a password
    interval: str = "90d",
    publish_ahead: str = "1h",
    grace_period: str = "7d",
    retention: str = "30d",
) -> dict[str, Any]:
    """The keyset for ServiceAccount tokens. gracePeriod must exceed the longest token lifetime, which
    is also what kube-apiserver caps tokens at (Metadata): a token outlives its key's grace never."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "algorithm": algorithm,
            "rotation": {
                "interval": interval,
                "publishAhead": publish_ahead,
                "gracePeriod": grace_period,
                "retention": retention,
            },
            "tokens": {"maxLifetime": max_token_lifetime},
        },
    }


def rbac_manifests(
    namespace: str, name: str, secret: str, passphrase_secret: str | None = None, user: str = SIGNER_USER
) -> list[dict[str, Any]]:
    """What the signer may do: read its keyset, read and watch its Secret, read the passphrase
    Secret of encrypted keys (nothing else)."""
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": SIGNER_ROLE, "namespace": namespace},
        "rules": [
            {"apiGroups": [GROUP], "resources": [PLURAL], "resourceNames": [name], "verbs": ["get"]},
            # list and watch with fieldSelector metadata.name=<secret> are checked against resourceNames.
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "resourceNames": [secret],
                "verbs": ["get", "list", "watch"],
            },
            *(
                [
                    {
                        "apiGroups": [""],
                        "resources": ["secrets"],
                        "resourceNames": [passphrase_secret],
                        "verbs": ["get"],
                    }
                ]
                if passphrase_secret
                else []
            ),
        ],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": SIGNER_ROLE, "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": SIGNER_ROLE},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }
    return [role, binding]


def signer_pod_manifest(
    namespace: str,
    name: str,
    *,
    image: str,
    socket_dir: str = "/var/run/keyturn",
    state_dir: str = "/var/lib/keyturn",
    kubeconfig: str = "/etc/kubernetes/keyturn-sa-signer.conf",
    legacy_public_keys: Sequence[str] = ("/etc/kubernetes/pki/sa.pub",),
) -> dict[str, Any]:
    """The signer as a static Pod next to kube-apiserver (kubeadm's layout of files and folders).

    Root in the Pod on purpose: kubeadm's kube-apiserver runs as root and must open the socket,
    which the signer creates 0600; the root filesystem stays read-only, the cache lives in
    state_dir on the node.
    """
    command = [
        "keyturn",
        "sa-signer",
        f"--socket={socket_dir}/sa-signer.sock",
        f"--keyset={namespace}/{name}",
        f"--cache={state_dir}/sa-signer-cache.json",
        f"--kubeconfig={kubeconfig}",
        "--log-format=json",
        *(f"--legacy-public-key={path}" for path in legacy_public_keys),
    ]
    host_paths = [
        ("socket", socket_dir, "DirectoryOrCreate", False),
        ("state", state_dir, "DirectoryOrCreate", False),
        ("kubeconfig", kubeconfig, "File", True),
        *((f"legacy-{i}", path, "File", True) for i, path in enumerate(legacy_public_keys)),
    ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "keyturn-sa-signer",
            "namespace": "kube-system",
            "labels": {"component": "keyturn-sa-signer", "tier": "control-plane"},
        },
        "spec": {
            "hostNetwork": True,
            "priorityClassName": "system-node-critical",
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "sa-signer",
                    "image": image,
                    "command": command,
                    "securityContext": {
                        "runAsUser": 0,
                        "readOnlyRootFilesystem": True,
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "resources": {"requests": {"cpu": "10m", "memory": "64Mi"}},
                    "volumeMounts": [
                        {"name": vol, "mountPath": path, "readOnly": read_only}
                        for vol, path, _, read_only in host_paths
                    ],
                }
            ],
            "volumes": [
                {"name": vol, "hostPath": {"path": path, "type": kind}} for vol, path, kind, _ in host_paths
            ],
        },
    }


def apiserver_flags(flags: Sequence[str], socket: str) -> list[str]:
    """kube-apiserver's flags with the endpoint instead of the key files (any previous endpoint replaced)."""
    dropped = {*KEY_FILE_FLAGS, ENDPOINT_FLAG}
    kept = [f for f in flags if f.split("=", 1)[0] not in dropped]
    return [*kept, f"{ENDPOINT_FLAG}={socket}"]


def rewrite_apiserver_manifest(text: str, socket: str) -> str:
    """kubeadm's kube-apiserver static Pod with the signing endpoint and the socket's folder mounted."""
    pod = yaml.safe_load(text)
    try:
        container = next(c for c in pod["spec"]["containers"] if c["name"] == "kube-apiserver")
    except (TypeError, KeyError, StopIteration):
        raise MigrationError(
            "not a kube-apiserver static Pod manifest (no container kube-apiserver)"
        ) from None
    container["command"] = apiserver_flags(container["command"], socket)
    folder = str(Path(socket).parent)
    mounts = [m for m in container.get("volumeMounts", []) if m.get("name") != SOCKET_VOLUME]
    container["volumeMounts"] = [*mounts, {"name": SOCKET_VOLUME, "mountPath": folder}]
    volumes = [v for v in pod["spec"].get("volumes", []) if v.get("name") != SOCKET_VOLUME]
    pod["spec"]["volumes"] = [
        *volumes,
        {"name": SOCKET_VOLUME, "hostPath": {"path": folder, "type": "DirectoryOrCreate"}},
    ]
    return str(yaml.safe_dump(pod, sort_keys=False))


# ------------------------------------------------------------------------------------ the cluster
def apply_keyset_and_rbac(api: ApiClient, manifest: dict[str, Any]) -> None:
    """Create the keyset (an existing one is left as it is) and create or replace the signer's RBAC."""
    namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
    custom = client.CustomObjectsApi(api)
    try:
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, manifest)
    except ApiException as exc:
        if exc.status != 409:
            raise
    existing: Any = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    secret_spec = (existing.get("spec") or {}).get("secret") or {}
    passphrase = ((secret_spec.get("encryption") or {}).get("passphraseSecretRef") or {}).get("name")
    rbac = client.RbacAuthorizationV1Api(api)
    role, binding = rbac_manifests(namespace, name, secret_spec.get("name") or name, passphrase)
    for body, create, replace in (
        (role, rbac.create_namespaced_role, rbac.replace_namespaced_role),
        (binding, rbac.create_namespaced_role_binding, rbac.replace_namespaced_role_binding),
    ):
        try:
            create(namespace, cast(Any, body))  # the client sends a dict as it is
        except ApiException as exc:
            if exc.status != 409:
                raise
            replace(body["metadata"]["name"], namespace, cast(Any, body))


def wait_ready(api: ApiClient, namespace: str, name: str, timeout: float = 120) -> str:
    """The keyset's current kid once it is Ready (the operator must be running)."""
    custom = client.CustomObjectsApi(api)
    deadline = time.monotonic() + timeout
    while True:
        found: Any = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        status = found.get("status") or {}
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", [])
        )
        if ready and status.get("currentKid"):
            return str(status["currentKid"])
        if time.monotonic() > deadline:
            raise MigrationError(
                f"JwtKeySet {namespace}/{name} not Ready after {timeout:g}s: is the operator running?"
            )
        time.sleep(0.5)


def issue_client_credentials(
    api: ApiClient, admin_kubeconfig: str | None, out_dir: Path, user: str = SIGNER_USER, timeout: float = 60
) -> Path:
    """A client certificate for `user` from the cluster's CA (CSR API, approved here) and a kubeconfig.

    The key never leaves out_dir (mode 0600). The certificate lives as long as the cluster's
    signer allows (kube-controller-manager --cluster-signing-duration, one year by default):
    renew it before then, with this same step.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user)]))
        .sign(key, hashes.SHA256())
    )
    certificates = client.CertificatesV1Api(api)
    csr_name = f"{user}-{int(time.time())}"
    certificates.create_certificate_signing_request(
        cast(
            Any,
            {
                "apiVersion": "certificates.k8s.io/v1",
                "kind": "CertificateSigningRequest",
                "metadata": {"name": csr_name},
                "spec": {
                    "request": base64.b64encode(csr.public_bytes(serialization.Encoding.PEM)).decode(),
                    "signerName": "kubernetes.io/kube-apiserver-client",
                    "usages": ["client auth"],
                },
            },
        )
    )
    body = certificates.read_certificate_signing_request(csr_name)
    assert body.status is not None  # the API always returns one
    body.status.conditions = [
        client.V1CertificateSigningRequestCondition(
            type="Approved", status="True", reason="KeyturnSaSigner", message="keyturn sa-signer credentials"
        )
    ]
    certificates.replace_certificate_signing_request_approval(csr_name, body)
    deadline = time.monotonic() + timeout
    while not (issued := _issued(certificates, csr_name)):
        if time.monotonic() > deadline:
            raise MigrationError(
                f"CSR {csr_name} approved but not issued: does kube-controller-manager sign?"
            )
        time.sleep(0.3)
    certificates.delete_certificate_signing_request(csr_name)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _, active = config.list_kube_config_contexts(config_file=admin_kubeconfig)
    admin = yaml.safe_load(Path(admin_kubeconfig or Path.home() / ".kube" / "config").read_text())
    cluster = next(c for c in admin["clusters"] if c["name"] == active["context"]["cluster"])
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": issued,
                    "client-key-data": base64.b64encode(key_pem).decode(),
                },
            }
        ],
        "contexts": [{"name": user, "context": {"cluster": cluster["name"], "user": user}}],
        "current-context": user,
    }
    path = out_dir / f"{user}.conf"
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(yaml.safe_dump(document))
    return path


def _issued(certificates: client.CertificatesV1Api, name: str) -> str | None:
    """The issued certificate as the API sends it (base64 PEM), None until it is there."""
    status = certificates.read_certificate_signing_request(name).status
    issued = None if status is None else status.certificate
    return issued.decode() if isinstance(issued, bytes) else issued


def check_signer(socket: str, expected_kid: str, timeout: float = 10) -> list[str]:
    """The signer's verification kids, once it signs with `expected_kid` and its keys verify its tokens."""
    import grpc  # noqa: PLC0415 - only this step talks gRPC
    import jwt  # noqa: PLC0415
    from cryptography.hazmat.primitives.serialization import load_der_public_key  # noqa: PLC0415

    from keyturn.sasigner.pb import api_pb2, api_pb2_grpc  # noqa: PLC0415

    with grpc.insecure_channel(f"unix:{socket}") as channel:
        stub = api_pb2_grpc.ExternalJWTSignerStub(channel)
        keys = stub.FetchKeys(api_pb2.FetchKeysRequest(), timeout=timeout, wait_for_ready=True)
        metadata = stub.Metadata(api_pb2.MetadataRequest(), timeout=timeout)
        claims = (
            base64.urlsafe_b64encode(json.dumps({"sub": "migration-check"}).encode()).rstrip(b"=").decode()
        )
        signed = stub.Sign(api_pb2.SignJWTRequest(claims=claims), timeout=timeout)
    header = json.loads(base64.urlsafe_b64decode(signed.header + "=" * (-len(signed.header) % 4)))
    if header.get("kid") != expected_kid:
        raise MigrationError(
            f"the signer signs with {header.get('kid')}, not the keyset's current {expected_kid}"
        )
    published = {k.key_id: k for k in keys.keys}
    if expected_kid not in published or published[expected_kid].exclude_from_oidc_discovery:
        raise MigrationError(f"the signer does not publish {expected_kid}")
    token = f"{signed.header}.{claims}.{signed.signature}"
    public = load_der_public_key(published[expected_kid].key)
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    try:
        jwt.decode(token, pem, algorithms=[header["alg"]], options={"verify_aud": False})
    except jwt.PyJWTError as exc:
        raise MigrationError(f"the signer's token does not verify with its published key: {exc}") from None
    if metadata.max_token_expiration_seconds < 600:
        raise MigrationError("the signer allows tokens shorter than kube-apiserver's 10 minutes")
    return list(published)


def oidc_kids(api: ApiClient) -> list[str]:
    """The kids of kube-apiserver's /openid/v1/jwks."""
    # Raw: the client would turn the JSON answer into the str() of a dict.
    response: Any = client.OpenidApi(api).get_service_account_issuer_open_id_keyset(_preload_content=False)
    document = json.loads(response.data)
    return [str(k["kid"]) for k in document["keys"]]


def token_kid(token: str) -> str:
    header = token.split(".", 1)[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


def request_token(
    api: ApiClient, namespace: str, service_account: str = "default", seconds: int = 600
) -> str:
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=seconds)
    )
    status = (
        client.CoreV1Api(api)
        .create_namespaced_service_account_token(service_account, namespace, request)
        .status
    )
    if status is None or not status.token:
        raise MigrationError(f"TokenRequest for {namespace}/{service_account} returned no token")
    return status.token


def review(api: ApiClient, token: str) -> bool:
    result = client.AuthenticationV1Api(api).create_token_review(
        client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token))
    )
    return result.status is not None and bool(result.status.authenticated)


def verify(api: ApiClient, namespace: str, name: str) -> str:
    """What the switch must give: the current kid in new tokens, TokenReview, the OIDC JWKS."""
    keyset: Any = client.CustomObjectsApi(api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name
    )
    status = keyset["status"]
    current = str(status["currentKid"])
    token = request_token(api, namespace)
    if token_kid(token) != current:
        raise MigrationError(
            f"TokenRequest signs with {token_kid(token)}, not the keyset's current {current}"
        )
    if not review(api, token):
        raise MigrationError("TokenReview does not accept a token TokenRequest just issued")
    verifying = {
        k["kid"]
        for k in status.get("keys", [])
        if k.get("state") in ("current", "next", "previous", "failed")
    }
    listed = set(oidc_kids(api))
    if listed != verifying:
        raise MigrationError(
            f"/openid/v1/jwks lists {sorted(listed)}, the keyset verifies with {sorted(verifying)}"
        )
    return current


# ------------------------------------------------------------------------------------ command line
def _keyset(text: str) -> tuple[str, str]:
    namespace, _, name = text.partition("/")
    if not namespace or not name:
        raise argparse.ArgumentTypeError("expected NAMESPACE/NAME")
    return namespace, name


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kubeconfig", help="an admin kubeconfig (default: KUBECONFIG, ~/.kube/config)")
    steps = parser.add_subparsers(dest="step", required=True)
    prepare = steps.add_parser("prepare")
    prepare.add_argument("--keyset", type=_keyset, required=True)
    prepare.add_argument("--algorithm", default="RS256", choices=("RS256", "ES256", "ES384", "ES512"))
    prepare.add_argument("--max-token-lifetime", default="24h")
    prepare.add_argument("--grace-period", default="7d")
    credentials = steps.add_parser("credentials")
    credentials.add_argument("--keyset", type=_keyset, required=True)
    credentials.add_argument("--out", type=Path, required=True, help="folder for the signer's kubeconfig")
    pod = steps.add_parser("signer-pod")
    pod.add_argument("--keyset", type=_keyset, required=True)
    pod.add_argument("--image", required=True)
    pod.add_argument("--legacy-public-key", action="append", default=None)
    check = steps.add_parser("check")
    check.add_argument("--keyset", type=_keyset, required=True)
    check.add_argument("--socket", required=True)
    apiserver = steps.add_parser("apiserver")
    apiserver.add_argument("--manifest", type=Path, required=True)
    apiserver.add_argument("--socket", required=True)
    verify_step = steps.add_parser("verify")
    verify_step.add_argument("--keyset", type=_keyset, required=True)
    args = parser.parse_args(argv)

    if args.step == "signer-pod":
        legacy = ("/etc/kubernetes/pki/sa.pub",) if args.legacy_public_key is None else args.legacy_public_key
        print(
            yaml.safe_dump(
                signer_pod_manifest(*args.keyset, image=args.image, legacy_public_keys=legacy),
                sort_keys=False,
            )
        )
        return 0
    if args.step == "apiserver":
        text = args.manifest.read_text()
        backup = args.manifest.with_name(f".{args.manifest.name}.before-keyturn")
        if not backup.exists():  # outside the manifests folder's *.yaml: the kubelet ignores it
            backup.write_text(text)
        args.manifest.write_text(rewrite_apiserver_manifest(text, args.socket))
        print(f"rewrote {args.manifest} (the old one is {backup})")
        return 0
    api = config.new_client_from_config(config_file=args.kubeconfig)
    try:
        if args.step == "prepare":
            manifest = keyset_manifest(
                *args.keyset,
                algorithm=args.algorithm,
                max_token_lifetime=args.max_token_lifetime,
                grace_period=args.grace_period,
            )
            apply_keyset_and_rbac(api, manifest)
            print(f"JwtKeySet {'/'.join(args.keyset)} Ready; current kid {wait_ready(api, *args.keyset)}")
        elif args.step == "credentials":
            print(issue_client_credentials(api, args.kubeconfig, args.out))
        elif args.step == "check":
            current = wait_ready(api, *args.keyset)
            kids = check_signer(args.socket, current)
            print(f"the signer signs with {current} and verifies {', '.join(kids)}: safe to switch")
        elif args.step == "verify":
            print(f"tokens carry {verify(api, *args.keyset)}; TokenReview and the OIDC JWKS agree")
    except MigrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        api.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
