"""sasigner/snapshot.py: a keyset and its Secret read into what the signer serves, and every damage
to them refused by name, never with key material in the message."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hostile import SPEC_FIELD_NAMES, json_values
from keyturn.domain.annotations import KEYSET_LABEL, STATE_ANNOTATION
from keyturn.domain.layout import material_item
from keyturn.domain.model import KeyState
from keyturn.keys.generation import generate
from keyturn.keys.pem import private_pem
from keyturn.sasigner.errors import KeysetRefused, SecretUnusable, SignerError
from keyturn.sasigner.snapshot import from_secret, keyset_spec
from redaction import assert_hidden, needles
from unit.sasigner.keysets import NAME, NAMESPACE, SPEC, T0, Keyset, b64, keyset

S = KeyState
SECRET_FIELD_NAMES = ["labels", "annotations", "resourceVersion", KEYSET_LABEL, STATE_ANNOTATION, "data"]


def snapshot_of(ks: Keyset, secret: dict[str, Any] | None = None, passphrase: object = None) -> Any:
    document, spec = keyset_spec(NAMESPACE, NAME, {"spec": ks.spec_document})
    secret = ks.secret() if secret is None else secret
    return from_secret(
        document, spec, secret, passphrase if passphrase is not None else ks.passphrase_secret(), T0
    )


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "ES384", "ES512"])
def test_a_keyset_as_the_operator_leaves_it_is_served(algorithm: str) -> None:
    ks = keyset(algorithm=algorithm)
    snapshot = snapshot_of(ks)
    assert snapshot.signing_kid == ks.current.kid
    assert snapshot.algorithm == algorithm
    assert snapshot.kids == tuple(k.kid for k in ks.ring.verifying())
    assert snapshot.resource_version == "42"
    assert_hidden(snapshot, ks.material(ks.current.kid))


def test_encrypted_keys_are_read_with_the_passphrase_secret() -> None:
    ks = keyset(encrypted=True)
    assert "ENCRYPTED" in ks.stored[ks.current.kid]
    assert snapshot_of(ks).signing_kid == ks.current.kid


def test_the_same_keys_read_twice_are_the_same_and_a_rotation_is_not() -> None:
    ks = keyset()
    first, again = snapshot_of(ks), snapshot_of(ks)
    assert again.same_keys(first)
    rotated = keyset()
    assert not snapshot_of(rotated).same_keys(first)
    assert not first.same_keys(None)


# ------------------------------------------------------------------------------------ the keyset
@pytest.mark.parametrize(
    ("keyset_object", "message"),
    [
        pytest.param(None, "not an object", id="no object"),
        pytest.param({"spec": "RS256"}, "spec must be an object", id="spec a string"),
        pytest.param({"spec": {**SPEC, "algorithm": "HS512"}}, "spec.algorithm HS512", id="HMAC"),
        pytest.param({"spec": {**SPEC, "algorithm": "PS256"}}, "spec.algorithm PS256", id="PS256"),
        pytest.param({"spec": {**SPEC, "tokens": {}}}, "maxLifetime is not set", id="no maxLifetime"),
        pytest.param({"spec": {**SPEC, "algorithm": "XX1"}}, "spec.algorithm", id="unknown algorithm"),
        pytest.param(
            {"spec": {**SPEC, "rotation": {"interval": "soon"}}}, "rotation.interval", id="bad duration"
        ),
    ],
)
def test_a_keyset_that_cannot_be_served_is_refused_by_field(keyset_object: object, message: str) -> None:
    with pytest.raises(KeysetRefused, match=message) as raised:
        keyset_spec(NAMESPACE, NAME, keyset_object)
    assert f"JwtKeySet {NAMESPACE}/{NAME}" in str(raised.value)


@settings(max_examples=200, deadline=None)
@given(json_values(SPEC_FIELD_NAMES))
def test_any_keyset_object_is_a_spec_or_a_named_refusal(value: object) -> None:
    message = f"JwtKeySet {NAMESPACE}/{NAME}"
    try:
        keyset_spec(NAMESPACE, NAME, {"spec": value})
    except KeysetRefused as exc:
        message = str(exc)
    assert message.startswith(f"JwtKeySet {NAMESPACE}/{NAME}")


# ------------------------------------------------------------------------------------ the Secret
Damage = Callable[[Keyset, dict[str, Any]], None]


def _data(secret: dict[str, Any]) -> dict[str, str]:
    data: dict[str, str] = secret["data"]
    return data


def _current_item(ks: Keyset) -> str:
    return material_item(ks.current.kid, symmetric=False)


def _record(ks: Keyset, secret: dict[str, Any], edit: Callable[[dict[str, Any]], None]) -> None:
    record = json.loads(secret["metadata"]["annotations"][STATE_ANNOTATION])
    edit(record)
    secret["metadata"]["annotations"][STATE_ANNOTATION] = json.dumps(record)


def _current_of(record: dict[str, Any]) -> dict[str, Any]:
    return next(k for k in record["keys"] if k["state"] == "current")


def _swap_material(ks: Keyset, secret: dict[str, Any]) -> None:
    _data(secret)[_current_item(ks)] = b64(private_pem(generate("ES256")))


def _swap_public(ks: Keyset, secret: dict[str, Any]) -> None:
    other = keyset(states=(S.CURRENT,))
    jwk = other.current.public_jwk
    _record(ks, secret, lambda r: _current_of(r).update(publicJwk=dict(jwk or {}), fingerprint=""))
    _data(secret)[_current_item(ks)] = b64(ks.stored[ks.current.kid])


DAMAGES: list[Any] = [
    pytest.param(lambda ks, s: s.clear(), SecretUnusable, "has no metadata", id="empty object"),
    pytest.param(
        lambda ks, s: s["metadata"]["labels"].pop(KEYSET_LABEL), SecretUnusable, "label", id="not labelled"
    ),
    pytest.param(
        lambda ks, s: s["metadata"]["labels"].update({KEYSET_LABEL: "other"}),
        SecretUnusable,
        "'other'",
        id="another keyset's Secret",
    ),
    pytest.param(
        lambda ks, s: s["metadata"].update(annotations=None),
        SecretUnusable,
        f"annotation {STATE_ANNOTATION}",
        id="no record",
    ),
    pytest.param(
        lambda ks, s: s["metadata"]["annotations"].update({STATE_ANNOTATION: "{not json"}),
        SecretUnusable,
        "is not JSON",
        id="record not JSON",
    ),
    pytest.param(
        lambda ks, s: _record(ks, s, lambda r: r.update(version=2)),
        SecretUnusable,
        "unsupported record version",
        id="record of another version",
    ),
    pytest.param(
        lambda ks, s: _record(ks, s, lambda r: _current_of(r).update(createdAt="yesterday")),
        SecretUnusable,
        r"keys\[1\].createdAt",
        id="record field damaged",
    ),
    pytest.param(
        lambda ks, s: _record(ks, s, lambda r: _current_of(r).update(state="next")),
        SecretUnusable,
        "no current key",
        id="no current key",
    ),
    pytest.param(
        lambda ks, s: _record(ks, s, lambda r: _current_of(r).update(algorithm="PS256")),
        KeysetRefused,
        "current key .* is PS256",
        id="current key of another algorithm",
    ),
    pytest.param(
        lambda ks, s: _data(s).pop(_current_item(ks)),
        SecretUnusable,
        "has no item key.",
        id="material missing",
    ),
    pytest.param(lambda ks, s: s.update(data=None), SecretUnusable, "has no item key.", id="no data at all"),
    pytest.param(
        lambda ks, s: _data(s).update({_current_item(ks): b64("-----BEGIN PRIVATE KEY-----\nAAAA\n")}),
        SecretUnusable,
        "does not load",
        id="material damaged",
    ),
    pytest.param(
        lambda ks, s: _data(s).update({_current_item(ks): base64.b64encode(b"\xff\xfe").decode()}),
        SecretUnusable,
        "has no item key.",
        id="material not text",
    ),
    pytest.param(
        lambda ks, s: _data(s).update({_current_item(ks): "not base64!"}),
        SecretUnusable,
        "has no item key.",
        id="material not base64",
    ),
    pytest.param(
        lambda ks, s: s.update(data=["x"]), SecretUnusable, "data must be an object", id="data a list"
    ),
    pytest.param(_swap_material, SecretUnusable, "fingerprint", id="another private key"),
    pytest.param(_swap_public, SecretUnusable, "does not match the public key", id="another public key"),
    pytest.param(
        lambda ks, s: _record(
            ks, s, lambda r: _current_of(r).update(publicJwk={"kty": "RSA", "n": "AA", "e": "AQAB"})
        ),
        SecretUnusable,
        "publicJwk of .* is not a valid ES256 public key",
        id="record public key damaged",
    ),
    pytest.param(
        lambda ks, s: _record(ks, s, lambda r: _current_of(r).pop("publicJwk")),
        SecretUnusable,
        "no public key",
        id="record public key missing",
    ),
]


@pytest.mark.parametrize(("damage", "error", "message"), DAMAGES)
def test_a_damaged_secret_is_refused_by_name(damage: Damage, error: type[SignerError], message: str) -> None:
    ks = keyset()
    secret = ks.secret()
    damage(ks, secret)
    with pytest.raises(error, match=message) as raised:
        snapshot_of(ks, secret)
    text = str(raised.value)
    assert text.startswith(f"Secret {NAMESPACE}/{NAME}") or "JwtKeySet" in text or "Secret" in text
    for needle in needles(ks.material(ks.current.kid)):
        assert needle not in text


def test_a_missing_secret_says_the_operator_creates_it() -> None:
    ks = keyset()
    document, spec = keyset_spec(NAMESPACE, NAME, {"spec": ks.spec_document})
    with pytest.raises(SecretUnusable, match="does not exist yet"):
        from_secret(document, spec, None, None, T0)


@pytest.mark.parametrize(
    ("passphrase_secret", "message"),
    [
        pytest.param(None, "does not exist", id="passphrase Secret missing"),
        pytest.param({"data": {}}, "has no item passphrase", id="item missing"),
        pytest.param({"data": {"passphrase": "***"}}, "is not base64", id="not base64"),
        pytest.param({"data": {"passphrase": ""}}, "has no item|is empty", id="empty"),
        pytest.param(
            {"data": {"passphrase": b64("the wrong one, long enough")}}, "wrong passphrase", id="wrong"
        ),
    ],
)
def test_encrypted_keys_without_their_passphrase_are_refused(passphrase_secret: object, message: str) -> None:
    ks = keyset(encrypted=True)
    document, spec = keyset_spec(NAMESPACE, NAME, {"spec": ks.spec_document})
    with pytest.raises(SecretUnusable, match=message) as raised:
        from_secret(document, spec, ks.secret(), passphrase_secret, T0)
    assert "PASSPHRASE" not in str(raised.value).upper() or "passphrase" in str(raised.value)
    assert ks.passphrase is not None and ks.passphrase.decode() not in str(raised.value)


def test_an_encrypted_key_of_a_keyset_that_names_no_passphrase_is_refused() -> None:
    ks = keyset(encrypted=True)
    ks.spec_document.pop("secret")
    with pytest.raises(SecretUnusable, match=r"names no spec\.secret\.encryption"):
        snapshot_of(ks)


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["metadata", "data", "kind"]), json_values(SECRET_FIELD_NAMES), max_size=3
    )
)
def test_any_secret_object_is_a_snapshot_or_a_named_refusal(secret: dict[str, Any]) -> None:
    ks = FIXED
    message = "Secret"
    try:
        snapshot_of(ks, secret)
    except SignerError as exc:
        message = str(exc)
    assert message.startswith(f"Secret {NAMESPACE}/{NAME}")


FIXED = keyset(states=(S.CURRENT,))
