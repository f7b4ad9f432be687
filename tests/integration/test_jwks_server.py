"""`keyturn serve-jwks` on the real control plane, with real HTTP requests.

The server runs as a child process (as `keyturn run` does in the other tests), watching only the
test's namespace, and is fetched from as a verifier would: discovery, then the JWKS, then a token
verified with an independent JOSE library (jwcrypto). Timings are measured from the ConfigMap write
the test sees on its own watch; nothing waits with a sleep.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from jwcrypto import jwk, jwt
from kubernetes import client, watch

import localcluster
from helpers import wait_for
from keyturn.keys.pem import load_private_pem
from keyturn.keys.signing import sign
from kubetools import JwksServer, Kube, OperatorProcess, Response

pytestmark = pytest.mark.integration

ROTATION = {"interval": "30d", "publishAhead": "0s", "gracePeriod": "7d", "retention": "14d"}
CAP = 600


@pytest.fixture
def server(cluster: localcluster.Cluster, namespace: str, tmp_path: Path) -> Iterator[JwksServer]:
    args = ["--namespace", namespace, "--max-age-cap", str(CAP), "--log-format", "json"]
    proc = JwksServer(Path(cluster.kubeconfig), tmp_path / "jwks-server.log", args)
    proc.start()
    yield proc
    proc.stop()


def jwks_path(kube: Kube, name: str) -> str:
    return f"/{kube.namespace}/{name}/.well-known/jwks.json"


def configmap(kube: Kube, name: str) -> client.V1ConfigMap:
    return kube.core.read_namespaced_config_map(f"{name}-jwks", kube.namespace)


def document(kube: Kube, name: str) -> bytes:
    return str((configmap(kube, name).data or {})["jwks.json"]).encode()


def issuer_for(kube: Kube) -> tuple[str, str]:
    host = f"{kube.namespace}.auth.example.com"
    return host, f"https://{host}/tenant"


def next_change(kube: Kube, name: str) -> float | None:
    meta = configmap(kube, name).metadata
    text = ((meta.annotations if meta else None) or {}).get("keyturn.dev/next-change")
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() if text else None


class ConfigMapWrites:
    """The test's own watch of one ConfigMap: when each new version of it was seen."""

    def __init__(self, kube: Kube, name: str) -> None:
        self.kube, self.name = kube, name
        self.seen: list[tuple[float, bytes]] = []
        self._watch = watch.Watch()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with contextlib.suppress(Exception):  # the stream is cut when the test stops it
            for event in self._watch.stream(
                self.kube.core.list_namespaced_config_map,
                self.kube.namespace,
                field_selector=f"metadata.name={self.name}",
                timeout_seconds=120,
            ):
                data = (event["object"].data or {}).get("jwks.json")
                if data is not None:
                    self.seen.append((time.monotonic(), str(data).encode()))

    def stop(self) -> None:
        self._watch.stop()

    def written_after(self, body: bytes) -> tuple[float, bytes]:
        def changed() -> tuple[float, bytes] | None:
            return next(((t, b) for t, b in self.seen if b != body), None)

        return wait_for(changed, 30, interval=0.01, message=f"a new version of {self.name}")


def answer(
    server: JwksServer, path: str, expected: bytes | None = None, headers: dict[str, str] | None = None
) -> Response:
    """The first 200 answer (with body `expected`, when given), polled."""

    def check() -> Response | None:
        got = server.get(path, headers)
        return got if got.status == 200 and (expected is None or got.body == expected) else None

    return wait_for(check, 10, interval=0.05, message=f"{path} served")


def served_within(server: JwksServer, path: str, expected: bytes, since: float) -> float:
    """Seconds from `since` until the server serves `expected` (polled every 10 ms)."""
    wait_for(lambda: server.get(path).body == expected, 5, interval=0.01, message=f"{path} updated")
    return time.monotonic() - since


# ------------------------------------------------------------------------------------ tests


def test_the_served_document_is_the_configmaps_bytes_with_its_cache_headers(
    kube: Kube, keyturn: OperatorProcess, server: JwksServer
) -> None:
    rotation = {**ROTATION, "publishAhead": "5m"}  # at least the verifiers' cache TTL
    kube.create_keyset(
        "keys", {"algorithm": "ES256", "rotation": rotation, "tokens": {"verifierCacheTTL": "5m"}}
    )
    kube.wait_ready("keys")
    expected = document(kube, "keys")
    first = answer(server, jwks_path(kube, "keys"), expected)
    assert first.headers["content-type"] == "application/jwk-set+json"
    assert re.fullmatch(r'"[0-9a-f]{32}"', first.headers["etag"])
    assert first.headers["vary"].lower() == "accept-encoding"
    assert 0 < first.max_age <= 300  # tokens.verifierCacheTTL
    head = server.get(jwks_path(kube, "keys"), method="HEAD")
    assert head.status == 200 and head.body == b"" and head.headers["content-length"] == str(len(expected))
    zipped = server.get(jwks_path(kube, "keys"), {"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip" and zipped.headers["etag"] != first.headers["etag"]
    assert gzip.decompress(zipped.body) == expected
    assert server.get(f"/{kube.namespace}/other/.well-known/jwks.json").status == 404
    assert server.get("/healthz").status == 200


def test_rotation_and_revocation_are_served_within_a_second_of_the_write_with_etags(
    kube: Kube, keyturn: OperatorProcess, server: JwksServer
) -> None:
    kube.create_keyset("keys", {"algorithm": "ES256", "rotation": ROTATION})
    first = kube.wait_ready("keys")
    path = jwks_path(kube, "keys")
    before = answer(server, path, document(kube, "keys"))
    etag = before.headers["etag"]
    cached = server.get(path, {"If-None-Match": etag})
    assert (cached.status, cached.body, cached.headers["etag"]) == (304, b"", etag)
    assert cached.max_age <= CAP

    writes = ConfigMapWrites(kube, "keys-jwks")
    try:
        # A rotation: the prepared key signs, a new next key is published.
        kube.patch_keyset("keys", {"metadata": {"annotations": {"keyturn.dev/rotate": "r1"}}})
        written_at, rotated = writes.written_after(before.body)
        assert served_within(server, path, rotated, written_at) < 1.0
        after = server.get(path, {"If-None-Match": etag})
        assert after.status == 200 and after.headers["etag"] != etag  # the old validator is stale
        kube.wait_status("keys", lambda s: s.get("currentKid") == first["nextKid"], 30, "rotated")

        # A revocation: the revoked kid is gone from the served document within a second.
        revoked = first["nextKid"]
        seen = len(writes.seen)
        kube.patch_status(
            "keys", {"status": {"emergency": {"requestId": "inc-1", "reason": "key_compromise"}}}
        )

        def revocation_written() -> tuple[float, bytes] | None:
            return next((w for w in writes.seen[seen:] if revoked not in w[1].decode()), None)

        written_at, without = wait_for(
            revocation_written, 30, interval=0.01, message="the revocation written"
        )
        assert served_within(server, path, without, written_at) < 1.0
        assert revoked not in server.get(path).body.decode()
    finally:
        writes.stop()


def test_max_age_never_exceeds_the_time_to_the_next_change(
    kube: Kube, keyturn: OperatorProcess, server: JwksServer
) -> None:
    fast = {"interval": "40s", "publishAhead": "0s", "gracePeriod": "25s", "retention": "1m"}
    kube.create_keyset("keys", {"algorithm": "ES256", "rotation": fast})
    kube.wait_ready("keys")
    path = jwks_path(kube, "keys")
    checked = 0
    deadline = time.monotonic() + 50  # across a rotation and a demoted key's departure
    while time.monotonic() < deadline:
        change = next_change(kube, "keys")
        got = server.get(path)
        now = time.time()
        if got.status != 200 or change is None or got.body != document(kube, "keys"):
            continue  # between a write and the server's copy of it: read again
        assert got.max_age <= CAP
        assert got.max_age <= max(0.0, change - now) + 1, (got.max_age, change - now)
        checked += 1
        time.sleep(0.5)  # pacing the samples, not synchronisation
    assert checked >= 20
    ages = {server.get(path).max_age for _ in range(20)}
    assert len(ages) > 1 or ages == {0}  # the random spread: caches do not expire together


def test_a_verifier_follows_discovery_to_the_jwks_and_verifies_a_token(
    kube: Kube, keyturn: OperatorProcess, server: JwksServer
) -> None:
    host, issuer = issuer_for(kube)
    kube.create_keyset("keys", {"algorithm": "RS256", "rotation": ROTATION, "jwks": {"issuer": issuer}})
    status = kube.wait_ready("keys")
    discovery_path = "/tenant/.well-known/openid-configuration"
    found = answer(server, discovery_path, headers={"Host": host})
    meta = json.loads(found.body)
    assert meta["issuer"] == issuer
    assert meta["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
    assert meta["id_token_signing_alg_values_supported"] == ["RS256"]
    assert meta["response_types_supported"] == ["id_token"] and meta["subject_types_supported"] == ["public"]
    assert server.get(discovery_path, {"Host": "other.example.com"}).status == 404
    # The jwks_uri, fetched as its URL says (Host and path).
    uri = urlsplit(meta["jwks_uri"])
    keys = server.get(uri.path, {"Host": uri.netloc})
    assert keys.status == 200 and keys.body == document(kube, "keys")
    secret = kube.secret("keys") or {}
    token = sign(
        load_private_pem(secret["JWT_PRIVATE_KEY"], None, "RS256"),
        {"iss": issuer, "sub": "alice", "iat": int(time.time())},
        status["currentKid"],
    )
    keyset = jwk.JWKSet.from_json(keys.body.decode())  # jwcrypto: an independent library
    checked = jwt.JWT(jwt=token, key=keyset, algs=["RS256"], expected_type="JWS")
    assert json.loads(checked.claims)["iss"] == issuer


def test_hostile_requests_are_refused_and_the_server_keeps_serving(
    kube: Kube, keyturn: OperatorProcess, server: JwksServer
) -> None:
    kube.create_keyset("keys", {"algorithm": "ES256", "rotation": ROTATION})
    kube.wait_ready("keys")
    path = jwks_path(kube, "keys")
    wait_for(lambda: server.get(path).status == 200, 10, message="JWKS served")
    ns = kube.namespace
    hostile = {
        "traversal": f"GET /{ns}/../{ns}/keys/.well-known/jwks.json HTTP/1.1\r\nHost: h\r\n\r\n",
        "encoded traversal": f"GET /{ns}/%2e%2e/keys/.well-known/jwks.json HTTP/1.1\r\nHost: h\r\n\r\n",
        "double slash": f"GET /{ns}//keys/.well-known/jwks.json HTTP/1.1\r\nHost: h\r\n\r\n",
        "a file": "GET /etc/passwd HTTP/1.1\r\nHost: h\r\n\r\n",
        "a huge path": f"GET /{'a' * 20000} HTTP/1.1\r\nHost: h\r\n\r\n",
        "a huge header": f"GET {path} HTTP/1.1\r\nHost: h\r\nX-Junk: {'a' * 64000}\r\n\r\n",
        "many headers": f"GET {path} HTTP/1.1\r\nHost: h\r\n" + "X-A: b\r\n" * 3000 + "\r\n",
        "a bad method": f"DELETE {path} HTTP/1.1\r\nHost: h\r\n\r\n",
        "an unknown method": f"BREW {path} HTTP/1.1\r\nHost: h\r\n\r\n",
        "HTTP/1.0 without Host": f"GET {path} HTTP/1.0\r\n\r\n",
        "HTTP/1.1 without Host": f"GET {path} HTTP/1.1\r\n\r\n",
        "an absurd If-None-Match": f"GET {path} HTTP/1.1\r\nHost: h\r\nIf-None-Match: "
        + ", ".join(f'"{i}"' for i in range(500))
        + "\r\n\r\n",
        "not HTTP": "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    }
    for what, request in hostile.items():
        status = server.raw(request.encode("latin-1"))
        assert re.fullmatch(rb"HTTP/1\.[01] 4\d\d .*", status), (what, status)
        assert server.get(path).status == 200, f"not serving after {what}"
    assert server.proc is not None and server.proc.poll() is None


def test_a_hostile_configmap_is_skipped_and_counted(kube: Kube, server: JwksServer) -> None:
    labels = {"app.kubernetes.io/managed-by": "keyturn", "keyturn.dev/keyset": "fake"}
    for name, data, notes in (
        ("not-json", {"jwks.json": "{nope"}, {}),
        ("private", {"jwks.json": json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})}, {}),
        ("bad-issuer", {"jwks.json": '{"keys": []}'}, {"keyturn.dev/issuer": "http://x"}),
    ):
        kube.core.create_namespaced_config_map(
            kube.namespace,
            client.V1ConfigMap(
                metadata=client.V1ObjectMeta(
                    name=name, labels={**labels, "keyturn.dev/keyset": name}, annotations=notes
                ),
                data=data,
            ),
        )

    def counted() -> bool:
        text = server.metrics()
        return all(
            f'keyturn_jwks_server_skipped_total{{reason="{r}"}} 1.0' in text
            for r in ("not-json", "private-key", "bad-issuer")
        )

    wait_for(counted, 10, message="the skipped ConfigMaps counted")
    assert server.get(f"/{kube.namespace}/not-json/.well-known/jwks.json").status == 404
    assert server.get(f"/{kube.namespace}/private/.well-known/jwks.json").status == 404
    assert server.get(f"/{kube.namespace}/bad-issuer/.well-known/jwks.json").status == 200  # by path only
    assert server.get("/healthz").status == 200


def test_the_second_keyset_claiming_an_issuer_is_stalled(
    kube: Kube, keyturn: OperatorProcess, server: JwksServer
) -> None:
    host, issuer = issuer_for(kube)
    spec = {"algorithm": "ES256", "rotation": ROTATION, "jwks": {"issuer": issuer}}
    kube.create_keyset("first", spec)
    kube.wait_ready("first")
    kube.create_keyset("second", {**spec, "jwks": {"issuer": issuer + "/"}})  # the same issuer
    stalled = kube.wait_condition("second", "Stalled", "True", timeout=30)
    assert stalled["reason"] == "IssuerConflict"
    assert f"JwtKeySet {kube.namespace}/first" in stalled["message"]
    served = server.get("/tenant/.well-known/jwks.json", {"Host": host})
    assert served.status == 200 and served.body == document(kube, "first")
    # The first lets the issuer go: the second takes it over.
    kube.custom.delete_namespaced_custom_object(
        "keyturn.dev", "v1alpha1", kube.namespace, "jwtkeysets", "first"
    )
    kube.wait_ready("second", timeout=60)  # the first is gone: its DELETED event freed the issuer
    # Retained (deletionPolicy Retain), its JWKS ConfigMap would keep the issuer at the server.
    kube.core.delete_namespaced_config_map("first-jwks", kube.namespace)

    def handed_over() -> bool:
        return server.get("/tenant/.well-known/jwks.json", {"Host": host}).body == document(kube, "second")

    wait_for(handed_over, 15, message="the issuer served for the second keyset")
