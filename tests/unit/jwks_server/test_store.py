"""ConfigMaps into served documents: hostile ones skipped (logged, counted), never a crash; one
issuer served by the older of two claims; an unusable update is not served, nor the old version."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from typing import Any

import pytest

from keyturn.jwks_server.documents import Skipped, parse_configmap
from keyturn.jwks_server.store import Store

KEY = {"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "x": "AA", "y": "AA", "use": "sig"}
DOCUMENT = json.dumps({"keys": [KEY]}, indent=2) + "\n"
ISSUER = "https://auth.example.com/t"


def configmap(
    name: str = "keys-jwks",
    *,
    keyset: str | None = "keys",
    data: Any = None,
    annotations: dict[str, Any] | None = None,
    created: str = "2026-01-01T00:00:00Z",
    version: str = "1",
    namespace: str = "ns",
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{namespace}-{name}",
            "resourceVersion": version,
            "creationTimestamp": created,
            "labels": {"keyturn.dev/keyset": keyset} if keyset else {},
            "annotations": annotations or {},
        },
        "data": {"jwks.json": DOCUMENT} if data is None else data,
    }


def test_a_jwks_configmap_is_served_byte_for_byte_with_its_cache_facts() -> None:
    published = parse_configmap(
        configmap(
            annotations={
                "keyturn.dev/issuer": ISSUER,
                "keyturn.dev/next-change": "2026-07-01T12:00:00Z",
                "keyturn.dev/cache-ttl": "300",
            }
        )
    )
    assert published.jwks.body == DOCUMENT.encode()
    assert gzip.decompress(published.jwks.gzipped) == DOCUMENT.encode()
    assert published.jwks.content_type == "application/jwk-set+json"
    assert published.ref == ("ns", "keys")
    assert published.cache_ttl == 300
    assert published.next_change == 1782907200.0
    assert published.issuer is not None and published.issuer.path == "/t"
    assert published.discovery is not None
    discovery = json.loads(published.discovery.body)
    assert discovery["jwks_uri"] == f"{ISSUER}/.well-known/jwks.json"
    assert discovery["id_token_signing_alg_values_supported"] == ["ES256"]
    assert published.problems == ()


SKIPPED = {
    "not an object": ("x", "malformed"),
    "no keyset label": (configmap(keyset=None), "no-keyset"),
    "no data": (configmap(data={}), "no-document"),
    "two items, none jwks.json": (configmap(data={"a": DOCUMENT, "b": DOCUMENT}), "no-document"),
    "a binary-looking item": (configmap(data={"jwks.json": 3}), "no-document"),
    "not JSON": (configmap(data={"jwks.json": "{not json"}), "not-json"),
    "deeply nested JSON": (configmap(data={"jwks.json": "[" * 100000}), "not-json"),
    "JSON but no keys": (configmap(data={"jwks.json": '{"a": 1}'}), "not-jwks"),
    "keys not a list": (configmap(data={"jwks.json": '{"keys": {}}'}), "not-jwks"),
    "a key that is no JWK": (configmap(data={"jwks.json": '{"keys": [1]}'}), "not-jwks"),
    "a private key": (
        configmap(data={"jwks.json": json.dumps({"keys": [{**KEY, "d": "secret"}]})}),
        "private-key",
    ),
    "huge": (configmap(data={"jwks.json": " " * (1 << 20) + "{}"}), "too-large"),
}


@pytest.mark.parametrize(("obj", "reason"), SKIPPED.values(), ids=SKIPPED.keys())
def test_a_configmap_that_is_no_public_jwks_is_skipped_with_a_reason(obj: object, reason: str) -> None:
    with pytest.raises(Skipped) as caught:
        parse_configmap(obj)
    assert caught.value.reason == reason
    assert "secret" not in str(caught.value)  # never the document's content


BAD_ANNOTATIONS = {
    "an http issuer": ({"keyturn.dev/issuer": "http://x"}, "bad-issuer", None, None, False),
    "an issuer that is no string": ({"keyturn.dev/issuer": 3}, "bad-issuer", None, None, False),
    "a next change that is no time": (
        {"keyturn.dev/next-change": "soon"},
        "bad-next-change",
        0.0,
        None,
        True,
    ),
    "a naive time": ({"keyturn.dev/next-change": "2026-01-01T00:00:00"}, "bad-next-change", 0.0, None, True),
    "a negative TTL": ({"keyturn.dev/cache-ttl": "-5"}, "bad-cache-ttl", None, 0, True),
    "a TTL in words": ({"keyturn.dev/cache-ttl": "5m"}, "bad-cache-ttl", None, 0, True),
    "a TTL of a thousand years": ({"keyturn.dev/cache-ttl": str(10**12)}, "bad-cache-ttl", None, 0, True),
    "a TTL of 5,000 digits": ({"keyturn.dev/cache-ttl": "9" * 5000}, "bad-cache-ttl", None, 0, True),
}


@pytest.mark.parametrize(
    ("annotations", "reason", "next_change", "ttl", "has_issuer"),
    BAD_ANNOTATIONS.values(),
    ids=BAD_ANNOTATIONS.keys(),
)
def test_a_wrong_annotation_is_reported_and_errs_on_the_safe_side(
    annotations: dict[str, Any], reason: str, next_change: float | None, ttl: int | None, has_issuer: bool
) -> None:
    published = parse_configmap(configmap(annotations=annotations))
    assert [r for r, _ in published.problems] == [reason]
    assert published.issuer is None and published.discovery is None  # served by path only
    assert (published.next_change, published.cache_ttl) == (next_change, ttl)  # 0: max-age 0


def test_the_store_serves_by_keyset_and_by_issuer_and_follows_events() -> None:
    store = Store(["ns"])
    before = (store.ready, store.data_age())
    store.replace("ns", [configmap(annotations={"keyturn.dev/issuer": ISSUER})])
    assert before == (False, None)
    assert store.ready and store.data_age() is not None
    snapshot = store.snapshot
    assert snapshot.by_keyset[("ns", "keys")].jwks.body == DOCUMENT.encode()
    assert snapshot.issuer("auth.example.com", None, "/t") is snapshot.by_keyset[("ns", "keys")]
    assert snapshot.issuer("auth.example.com", 443, "/t/") is not None  # the issuer names no port
    assert snapshot.issuer("other.example.com", None, "/t") is None
    assert snapshot.issuer("auth.example.com", None, "") is None
    changed = json.dumps({"keys": []})
    store.apply("ns", "MODIFIED", configmap(data={"jwks.json": changed}, version="2"))
    assert store.snapshot.by_keyset[("ns", "keys")].jwks.body == changed.encode()
    assert store.snapshot.issuer("auth.example.com", None, "/t") is None  # the annotation went
    store.apply("ns", "MODIFIED", configmap(data={"jwks.json": "{broken"}, version="3"))
    assert ("ns", "keys") not in store.snapshot.by_keyset  # fail closed
    assert store.skipped["not-json"] == 1
    store.apply("ns", "MODIFIED", configmap(version="4"))
    store.apply("ns", "DELETED", configmap(version="5"))
    assert store.snapshot.by_keyset == {}


def test_two_claims_of_one_issuer_serve_the_older_and_count_the_conflict() -> None:
    store = Store([""])
    issuer = {"keyturn.dev/issuer": ISSUER}
    newer = configmap("b-jwks", keyset="b", annotations=issuer, created="2026-02-01T00:00:00Z")
    older = configmap("a-jwks", keyset="a", annotations=issuer, created="2026-01-01T00:00:00Z", namespace="z")
    store.replace("", [newer, older])
    served = store.snapshot.issuer("auth.example.com", None, "/t")
    assert served is not None and served.ref == ("z", "a")
    assert store.snapshot.conflicts == ((ISSUER, "z/a-jwks", "ns/b-jwks"),)
    assert ("ns", "b") in store.snapshot.by_keyset  # still served by its path
    store.apply("", "DELETED", older)
    served = store.snapshot.issuer("auth.example.com", None, "/t")
    assert served is not None and served.ref == ("ns", "b") and not store.snapshot.conflicts


def test_a_list_drops_what_is_gone_and_keeps_what_is_unchanged() -> None:
    store = Store(["ns"])
    store.replace("ns", [configmap("a-jwks", keyset="a"), configmap("b-jwks", keyset="b")])
    kept = store.snapshot.by_keyset[("ns", "a")]
    store.replace("ns", [configmap("a-jwks", keyset="a")])
    assert set(store.snapshot.by_keyset) == {("ns", "a")}
    assert store.snapshot.by_keyset[("ns", "a")] is kept  # parsed once per resourceVersion


def test_the_server_never_imports_kopf() -> None:
    code = (
        "import sys, keyturn.jwks_server.app, keyturn.jwks_server.server, keyturn.jwks_server.watch, "
        "keyturn.cli.serve_jwks; assert 'kopf' not in sys.modules, 'kopf imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
