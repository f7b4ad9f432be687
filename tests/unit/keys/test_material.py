"""keyturn.keys.material: KeyMaterial refuses a key that does not fit its algorithm and never shows
itself; HMAC secret text round-trips unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from keyturn.keys.generation import generate
from keyturn.keys.jwk import private_jwk
from keyturn.keys.material import KeyMaterial, load_raw_secret, raw_secret
from keyturn.keys.signing import sign, verify
from redaction import REPR_ALGORITHMS, assert_hidden, needles, stored
from unit.keys.support import CONTRACT_ALGORITHMS, assert_no_secret_in, claims_now, weak_rsa_key


def test_load_raw_secret_round_trip(keys: Callable[[str], KeyMaterial]) -> None:
    material = keys("HS384")
    loaded = load_raw_secret(raw_secret(material), "HS384")
    assert raw_secret(loaded) == raw_secret(material)
    assert verify(sign(loaded, claims_now(), "k"), material, "HS384")["sub"] == "user-1"


def test_load_raw_secret_rejections(keys: Callable[[str], KeyMaterial]) -> None:
    secret = raw_secret(keys("HS256"))
    with pytest.raises(ValueError, match="at least 64"):
        load_raw_secret(secret, "HS512")  # 43 bytes is too short for HS512
    with pytest.raises(ValueError, match="whitespace"):
        load_raw_secret(secret + "\n", "HS256")
    with pytest.raises(ValueError, match="asymmetric"):
        load_raw_secret(secret, "RS256")
    with pytest.raises(ValueError, match="no raw secret"):
        raw_secret(keys("ES256"))


def test_key_material_checks_key_against_algorithm() -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(ValueError, match="P-384"):
        KeyMaterial("ES384", ec_key)
    with pytest.raises(ValueError, match="RSA"):
        KeyMaterial("RS256", ec_key)
    with pytest.raises(ValueError, match="HMAC"):
        KeyMaterial("HS256", ec_key)
    with pytest.raises(ValueError, match="too small"):
        KeyMaterial("RS256", weak_rsa_key())
    with pytest.raises(ValueError, match="none"):
        KeyMaterial("none", "x" * 64)


@pytest.mark.parametrize("alg", CONTRACT_ALGORITHMS)
def test_repr_and_str_reveal_no_secret(alg: str, keys: Callable[[str], KeyMaterial]) -> None:
    material = keys(alg)
    assert repr(material) == f"KeyMaterial(alg={alg}, <redacted>)"
    for text in (repr(material), str(material), f"{material}", repr([material]), repr({"k": material})):
        assert_no_secret_in(text, material)


def test_the_leak_check_itself_catches_a_leak(keys: Callable[[str], KeyMaterial]) -> None:
    material = keys("HS256")
    with pytest.raises(AssertionError, match="leaked"):
        assert_no_secret_in(f"oops {raw_secret(material)[5:20]}", material)


@pytest.fixture(scope="module", params=REPR_ALGORITHMS)
def material(request: pytest.FixtureRequest) -> KeyMaterial:
    return generate(request.param)


def test_key_material_never_shows_itself(material: KeyMaterial) -> None:
    assert_hidden(material, material)


def test_needles_are_found_where_material_is_shown(material: KeyMaterial) -> None:
    """The check itself can fail: the same needles are in the material's own serialization."""
    text = stored(material) + str(private_jwk(material, "k"))
    assert all(needle and needle in text for needle in needles(material))
