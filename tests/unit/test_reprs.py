"""No object that holds key material shows it in its repr or str.

Reprs end up in tracebacks, debug logs, pytest's own failure output and debuggers, so each
class that holds a private key, an HMAC secret or a stored PEM is checked here, with needles
taken from the material itself.
"""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from keyturn.adapters.secrets import SecretSnapshot, SecretWrite
from keyturn.client import ClientMetrics, HmacVerifier, JwksVerifier, Signer
from keyturn.client.errors import LeakedKeyError
from keyturn.client.hmac_verifier import build_snapshot
from keyturn.client.jwks import parse_jwks
from keyturn.client.signer import load_signing_key
from keyturn.domain.model import FreshKey
from keyturn.keys import new_keys
from keyturn.keys.algorithms import is_symmetric
from keyturn.keys.generation import generate
from keyturn.keys.jwk import private_jwk, public_jwk
from keyturn.keys.material import KeyMaterial, raw_secret
from keyturn.keys.pem import private_pem


def needles(material: KeyMaterial) -> list[str]:
    """Fragments that only the material itself contains."""
    if is_symmetric(material.algorithm):
        secret = raw_secret(material)
        return [secret, secret[:16], secret[-16:]]
    lines = private_pem(material).splitlines()[1:-1]
    d = private_jwk(material, "k")["d"]
    return [lines[0][-24:], lines[-1][:24], d[:16], d[-16:]]


def shown(obj: object) -> str:
    return f"{obj!r}\n{obj!s}\n{[obj]!r}\n{ {'k': obj}!r}"


def assert_hidden(obj: object, material: KeyMaterial) -> None:
    text = shown(obj)
    for needle in needles(material):
        assert needle not in text, f"{type(obj).__name__} shows key material"


@pytest.fixture(scope="module", params=["RS256", "ES256", "EdDSA", "HS256"])
def material(request: pytest.FixtureRequest) -> KeyMaterial:
    return generate(request.param)


def stored(material: KeyMaterial) -> str:
    return raw_secret(material) if is_symmetric(material.algorithm) else private_pem(material)


def test_key_material(material: KeyMaterial) -> None:
    assert_hidden(material, material)


def test_generated_keys(material: KeyMaterial) -> None:
    public = None if is_symmetric(material.algorithm) else public_jwk(material, "k")
    generated = new_keys.Generated(FreshKey("k", material.algorithm, 1, public, "fp"), stored(material))
    assert_hidden(generated, material)
    assert "kid='k'" in repr(generated)


def test_signer_and_its_key(material: KeyMaterial) -> None:
    signing_key = load_signing_key(material.algorithm, stored(material), "k", None, "test")
    signer = Signer.from_env(material.algorithm, environ=_env(material), metrics=_metrics())
    for obj in (signing_key, signer, signer.current()):
        assert_hidden(obj, material)
    signer.close()


def test_hmac_verifier_and_its_snapshot() -> None:
    current, previous = (generate("HS256") for _ in range(2))
    snapshot = build_snapshot("HS256", raw_secret(current), raw_secret(previous), None, "k", "test")
    verifier = HmacVerifier.from_secrets(
        raw_secret(current), previous=raw_secret(previous), kid="k", metrics=_metrics()
    )
    for obj in (snapshot, *snapshot.secrets, verifier):
        assert_hidden(obj, current)
        assert_hidden(obj, previous)
    verifier.close()


def test_jwks_objects_and_the_error_about_a_leaked_key() -> None:
    material = generate("RS256")
    verifier = JwksVerifier.from_jwks({"keys": [public_jwk(material, "k")]}, metrics=_metrics())
    snapshot = parse_jwks({"keys": [public_jwk(material, "k")]})
    for obj in (verifier, snapshot, *snapshot.keys.values()):
        assert_hidden(obj, material)
    with pytest.raises(LeakedKeyError) as info:
        parse_jwks({"keys": [private_jwk(material, "k")]})
    assert_hidden(info.value, material)
    verifier.close()


def test_secret_snapshots_and_writes_of_the_operator(material: KeyMaterial) -> None:
    data = {"key-k.pem": stored(material)}
    snapshot = SecretSnapshot("s", data, {}, {}, (), "1")
    write = SecretWrite("s", data, "{}", "keyset")
    for obj in (snapshot, write):
        assert_hidden(obj, material)


def _env(material: KeyMaterial) -> dict[str, str]:
    item = "JWT_SECRET" if is_symmetric(material.algorithm) else "JWT_PRIVATE_KEY"
    return {item: stored(material), "JWT_KID": "k"}


def _metrics() -> ClientMetrics:
    return ClientMetrics(CollectorRegistry())


def test_needles_are_found_where_material_is_shown(material: KeyMaterial) -> None:
    """The check itself can fail: the same needles are in the material's own serialization."""
    text = stored(material) + str(private_jwk(material, "k"))
    assert all(needle and needle in text for needle in needles(material))
