"""No object that holds key material shows it in its repr or str.

Reprs end up in tracebacks, debug logs, pytest's own failure output and debuggers, so each
class that holds a private key, an HMAC secret or a stored PEM is checked here, with needles
taken from the material itself.
"""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from keyturn import crypto, keygen
from keyturn.adapters.secrets import SecretSnapshot, SecretWrite
from keyturn.client import ClientMetrics, HmacVerifier, JwksVerifier, Signer
from keyturn.client.errors import LeakedKeyError
from keyturn.client.hmac_verifier import build_snapshot
from keyturn.client.jwks import parse_jwks
from keyturn.client.signer import load_signing_key
from keyturn.domain.model import FreshKey


def needles(material: crypto.KeyMaterial) -> list[str]:
    """Fragments that only the material itself contains."""
    if crypto.is_symmetric(material.algorithm):
        secret = crypto.raw_secret(material)
        return [secret, secret[:16], secret[-16:]]
    lines = crypto.private_pem(material).splitlines()[1:-1]
    d = crypto.private_jwk(material, "k")["d"]
    return [lines[0][-24:], lines[-1][:24], d[:16], d[-16:]]


def shown(obj: object) -> str:
    return f"{obj!r}\n{obj!s}\n{[obj]!r}\n{ {'k': obj}!r}"


def assert_hidden(obj: object, material: crypto.KeyMaterial) -> None:
    text = shown(obj)
    for needle in needles(material):
        assert needle not in text, f"{type(obj).__name__} shows key material"


@pytest.fixture(scope="module", params=["RS256", "ES256", "EdDSA", "HS256"])
def material(request: pytest.FixtureRequest) -> crypto.KeyMaterial:
    return crypto.generate(request.param)


def stored(material: crypto.KeyMaterial) -> str:
    return (
        crypto.raw_secret(material)
        if crypto.is_symmetric(material.algorithm)
        else crypto.private_pem(material)
    )


def test_key_material(material: crypto.KeyMaterial) -> None:
    assert_hidden(material, material)


def test_generated_keys(material: crypto.KeyMaterial) -> None:
    public = None if crypto.is_symmetric(material.algorithm) else crypto.public_jwk(material, "k")
    generated = keygen.Generated(FreshKey("k", material.algorithm, 1, public, "fp"), stored(material))
    assert_hidden(generated, material)
    assert "kid='k'" in repr(generated)


def test_signer_and_its_key(material: crypto.KeyMaterial) -> None:
    signing_key = load_signing_key(material.algorithm, stored(material), "k", None, "test")
    signer = Signer.from_env(material.algorithm, environ=_env(material), metrics=_metrics())
    for obj in (signing_key, signer, signer.current()):
        assert_hidden(obj, material)
    signer.close()


def test_hmac_verifier_and_its_snapshot() -> None:
    current, previous = (crypto.generate("HS256") for _ in range(2))
    snapshot = build_snapshot(
        "HS256", crypto.raw_secret(current), crypto.raw_secret(previous), None, "k", "test"
    )
    verifier = HmacVerifier.from_secrets(
        crypto.raw_secret(current), previous=crypto.raw_secret(previous), kid="k", metrics=_metrics()
    )
    for obj in (snapshot, *snapshot.secrets, verifier):
        assert_hidden(obj, current)
        assert_hidden(obj, previous)
    verifier.close()


def test_jwks_objects_and_the_error_about_a_leaked_key() -> None:
    material = crypto.generate("RS256")
    verifier = JwksVerifier.from_jwks({"keys": [crypto.public_jwk(material, "k")]}, metrics=_metrics())
    snapshot = parse_jwks({"keys": [crypto.public_jwk(material, "k")]})
    for obj in (verifier, snapshot, *snapshot.keys.values()):
        assert_hidden(obj, material)
    with pytest.raises(LeakedKeyError) as info:
        parse_jwks({"keys": [crypto.private_jwk(material, "k")]})
    assert_hidden(info.value, material)
    verifier.close()


def test_secret_snapshots_and_writes_of_the_operator(material: crypto.KeyMaterial) -> None:
    data = {"key-k.pem": stored(material)}
    snapshot = SecretSnapshot("s", data, {}, {}, (), "1")
    write = SecretWrite("s", data, "{}", "keyset")
    for obj in (snapshot, write):
        assert_hidden(obj, material)


def _env(material: crypto.KeyMaterial) -> dict[str, str]:
    item = "JWT_SECRET" if crypto.is_symmetric(material.algorithm) else "JWT_PRIVATE_KEY"
    return {item: stored(material), "JWT_KID": "k"}


def _metrics() -> ClientMetrics:
    return ClientMetrics(CollectorRegistry())


def test_needles_are_found_where_material_is_shown(material: crypto.KeyMaterial) -> None:
    """The check itself can fail: the same needles are in the material's own serialization."""
    text = stored(material) + str(crypto.private_jwk(material, "k"))
    assert all(needle and needle in text for needle in needles(material))
