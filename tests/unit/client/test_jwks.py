"""client/jwks.py: a published JWKS against hostile input.

Whatever a document holds, the parser answers with a named error (KeySourceError, LeakedKeyError)
and never with another exception, and never trusts a key whose private part was published."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from helpers import wait_for
from keyturn.client import ClientMetrics, JwksVerifier, KeySourceError, ValidationReason
from keyturn.client.errors import LeakedKeyError
from keyturn.client.jwks import MAX_DOCUMENT_BYTES, PRIVATE_MEMBERS, parse_jwks
from keyturn.keys.algorithms import is_symmetric
from keyturn.keys.generation import generate
from keyturn.keys.jwk import private_jwk, public_jwk
from keyturn.keys.material import KeyMaterial
from keyturn.keys.signing import sign
from keyturn.keys.thumbprints import thumbprint
from redaction import assert_hidden
from unit.client.support import DEADLINE, Server, claims, jwks_text, kubelet_write, outcome, sample


def leaked(material: KeyMaterial, kid: str, *members: str) -> dict[str, Any]:
    """The public JWK with private members added (the real ones where the key has them)."""
    private = private_jwk(material, kid) if not is_symmetric(material.algorithm) else {}
    return {**public_jwk(material, kid), **{m: private.get(m, "AQAB") for m in members}}


@pytest.mark.parametrize("member", PRIVATE_MEMBERS)
def test_a_jwks_with_a_private_member_is_refused_as_a_whole(
    member: str, keys: list[tuple[KeyMaterial, str]]
) -> None:
    (a, kid_a), (b, kid_b), _ = keys
    document = {"keys": [public_jwk(a, kid_a), leaked(b, kid_b, member)]}
    with pytest.raises(LeakedKeyError) as info:
        parse_jwks(json.dumps(document))
    assert isinstance(info.value, KeySourceError)
    assert f"kid {kid_b}: {member}" in str(info.value)
    assert kid_b in info.value.ids and thumbprint(b) in info.value.ids and kid_a not in info.value.ids
    private_d = private_jwk(b, kid_b)["d"]
    assert private_d not in str(info.value)


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param({"kty": "oct", "kid": "hs", "alg": "HS256", "k": "c2VjcmV0"}, id="oct with k"),
        pytest.param({"kty": "oct", "kid": "hs"}, id="oct without k"),
        pytest.param({"kty": "RSA", "k": "c2VjcmV0"}, id="k without kid"),
        pytest.param({"d": None}, id="d of any value"),
    ],
)
def test_symmetric_keys_and_stray_private_members_are_leaks_too(entry: dict[str, Any]) -> None:
    with pytest.raises(LeakedKeyError):
        JwksVerifier.from_jwks({"keys": [entry]}, metrics=ClientMetrics(CollectorRegistry()))


def test_a_leak_withdraws_the_key_from_what_was_loaded_before_and_for_good(
    tmp_path: Path, keys: list[tuple[KeyMaterial, str]], metrics: ClientMetrics, registry: CollectorRegistry
) -> None:
    (a, kid_a), (b, kid_b), (c, kid_c) = keys
    mount = tmp_path / "jwks"
    kubelet_write(mount, {"jwks.json": jwks_text((a, kid_a), (b, kid_b))})
    verifier = JwksVerifier.from_file(mount / "jwks.json", check_interval=0, metrics=metrics)
    token_a, token_b = sign(a, claims(), kid_a), sign(b, claims(), kid_b)
    assert verifier.verify(token_a) and verifier.verify(token_b)

    # b's private key is published: the document is refused, and b is no longer trusted even
    # though the keys loaded before (which are kept otherwise) hold its public part.
    leak = {"keys": [public_jwk(c, kid_c), public_jwk(a, kid_a), leaked(b, kid_b, "d")]}
    kubelet_write(mount, {"jwks.json": json.dumps(leak)})
    with pytest.raises(LeakedKeyError):
        verifier.refresh()
    assert outcome(verifier, token_b) is ValidationReason.UNKNOWN_KID
    assert verifier.verify(token_a)["sub"] == "alice"
    assert outcome(verifier, sign(c, claims(), kid_c)) is ValidationReason.UNKNOWN_KID, "doc refused"
    assert registry.get_sample_value("jwt_keys_loaded", {"kid": kid_b}) is None
    assert sample(registry, "jwt_key_reloads_total", source="jwks_file", result="failure") >= 1
    assert f"kid {kid_b} withdrawn" in verifier.describe()

    # A clean document that still lists b (or the same key under another kid) does not bring it back.
    again = {"keys": [public_jwk(c, kid_c), public_jwk(b, kid_b), public_jwk(b, "b-again")]}
    kubelet_write(mount, {"jwks.json": json.dumps(again)})
    wait_for(lambda: verifier.kids == (kid_c,), DEADLINE, 0.02, "the clean document, without b")
    assert outcome(verifier, sign(b, claims(), "b-again")) is ValidationReason.UNKNOWN_KID
    verifier.close()


def test_a_leak_under_another_kid_withdraws_the_same_key(
    keys: list[tuple[KeyMaterial, str]], metrics: ClientMetrics
) -> None:
    """The leaked key is recognised by its thumbprint, whatever kid it was loaded under."""
    (a, kid_a), (b, kid_b), _ = keys
    server = Server()
    try:
        server.body = jwks_text((a, kid_a), (b, kid_b)).encode()
        verifier = JwksVerifier.from_url(server.url("/jwks"), cache_ttl=3600, metrics=metrics)
        server.body = json.dumps({"keys": [leaked(a, "renamed", "d", "p", "q")]}).encode()
        with pytest.raises(LeakedKeyError, match="kid renamed: d, p, q"):
            verifier.refresh()
        assert verifier.kids == (kid_b,)
        assert outcome(verifier, sign(a, claims(), kid_a)) is ValidationReason.UNKNOWN_KID
        verifier.close()
    finally:
        server.close()


DEEP = 200_000


@pytest.mark.parametrize(
    "document",
    [
        pytest.param("[" * DEEP + "]" * DEEP, id="deep arrays"),
        pytest.param('{"keys": ' + "[" * DEEP + "]" * DEEP + "}", id="deep keys"),
        pytest.param('{"keys": [' + '{"a":' * DEEP + "1" + "}" * DEEP + "]}", id="deep entry"),
        pytest.param('{"keys": [{"kid": "k", "n": ' + "9" * 10_000 + "}]}", id="huge integer"),
        pytest.param('{"keys": NaN}', id="NaN"),
        pytest.param(b'{"keys": ["\xff"]}', id="not UTF-8"),
        pytest.param(b"\xef\xbb\xbf{}", id="byte order mark"),
        pytest.param("", id="empty"),
        pytest.param("null", id="null"),
        pytest.param('"keys"', id="a string"),
        pytest.param('{"keys": {"0": {}}}', id="keys an object"),
        pytest.param('{"keys": "' + "x" * 10 + '"}', id="keys a string"),
        pytest.param(" " * (MAX_DOCUMENT_BYTES + 1), id="too large"),
        pytest.param('{"keys": [' + ",".join(["{}"] * 300) + "]}", id="too many keys"),
    ],
)
def test_hostile_documents_are_a_key_source_error(document: str | bytes) -> None:
    with pytest.raises(KeySourceError):
        parse_jwks(document)


def test_wrong_types_at_every_level_are_skipped_and_named(keys: list[tuple[KeyMaterial, str]]) -> None:
    (a, kid_a), _, _ = keys
    good = public_jwk(a, kid_a)
    entries: list[Any] = [
        None,
        [good],
        7,
        {"kid": ["k"]},
        {"kid": "x" * 1000, "kty": "EC"},
        {"kid": "\ud800"},
        {**good, "kid": "alg", "alg": ["ES256"]},
        {**good, "kid": "use", "use": {"sig": True}},
        {**good, "kid": "kty", "kty": None},
        {**good, "kid": "crv", "crv": 1},
        {**good, "kid": "x-int", "x": 12345},
        {**good, "kid": "x-list", "x": [good["x"]]},
        {**good, "kid": "y-null", "y": None},
        {**good, "kid": "x-surrogate", "x": "\udfff"},
        {**good, "kid": "x-infinite", "x": float("inf")},
        {**good, "kid": "rsa-e", "kty": "RSA", "alg": "RS256", "n": "AQAB", "e": "A" * 5000},
        {**good, "kid": "ed448", "kty": "OKP", "alg": "EdDSA", "crv": "Ed448", "x": {"x": 1}},
        good,
    ]
    snapshot = parse_jwks(json.dumps({"keys": entries}))
    assert snapshot.kids == (kid_a,)
    assert len(snapshot.problems) == len(entries) - 1


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(
        ["RSA", "EC", "OKP", "oct", "sig", "ES256", "RS256", "EdDSA", "P-256", "Ed448", "AQAB"]
    ),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["kid", "kty", "alg", "use", "crv", "x", "y", "n", "e", "keys", *PRIVATE_MEMBERS])
            | st.text(max_size=4),
            children,
            max_size=6,
        )
    ),
    max_leaves=20,
)


def hostile_documents() -> st.SearchStrategy[Any]:
    entry = st.dictionaries(
        st.sampled_from(["kid", "kty", "alg", "use", "crv", "x", "y", "n", "e", *PRIVATE_MEMBERS]),
        JSON,
        max_size=8,
    )
    as_json = st.one_of(JSON, st.fixed_dictionaries({"keys": st.lists(entry | JSON, max_size=5)}))
    return st.one_of(
        as_json.map(json.dumps),
        as_json.map(lambda doc: json.dumps(doc).encode("utf-16")),
        st.binary(max_size=64),
        st.integers(min_value=1, max_value=5000).map(lambda depth: '{"keys": [' * depth),
        st.integers(min_value=1, max_value=5000).map(lambda digits: '{"keys": [' + "7" * digits + "]}"),
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_documents())
def test_fuzz_only_named_errors_escape_the_jwks_parser(document: str | bytes) -> None:
    try:
        snapshot = parse_jwks(document)
    except KeySourceError:
        return
    assert all(isinstance(kid, str) and kid.isprintable() for kid in snapshot.kids)
    snapshot.describe()


def test_jwks_objects_and_the_error_about_a_leaked_key_never_show_the_material() -> None:
    material = generate("RS256")
    verifier = JwksVerifier.from_jwks({"keys": [public_jwk(material, "k")]}, metrics=_metrics())
    snapshot = parse_jwks({"keys": [public_jwk(material, "k")]})
    for obj in (verifier, snapshot, *snapshot.keys.values()):
        assert_hidden(obj, material)
    with pytest.raises(LeakedKeyError) as info:
        parse_jwks({"keys": [private_jwk(material, "k")]})
    assert_hidden(info.value, material)
    verifier.close()


def _metrics() -> ClientMetrics:
    return ClientMetrics(CollectorRegistry())
