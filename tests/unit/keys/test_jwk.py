"""keyturn.keys.jwk: public JWKs carry exactly the public members, private JWKs are usable by another
library, and symmetric keys are never published.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwcrypto import jwk as jc_jwk

from keyturn.keys.algorithms import family
from keyturn.keys.generation import generate
from keyturn.keys.jwk import private_jwk, public_jwk
from keyturn.keys.material import KeyMaterial, raw_secret
from keyturn.keys.pem import private_pem, public_pem
from unit.keys.support import ASYMMETRIC, PRIVATE_MEMBERS, SYMMETRIC, b64url, b64url_decode


@pytest.mark.parametrize(
    ("alg", "crv", "size"), [("ES256", "P-256", 32), ("ES384", "P-384", 48), ("ES512", "P-521", 66)]
)
def test_ec_jwk_coordinates_are_full_length(alg: str, crv: str, size: int) -> None:
    # Several keys so that a coordinate with leading zero bytes is likely to show up at least once
    # for P-521 (its top byte is 0 or 1); RFC 7518 6.2.1.2 requires the full length regardless.
    for _ in range(8):
        jwk = public_jwk(generate(alg), "k")
        assert jwk["crv"] == crv
        assert len(b64url_decode(jwk["x"])) == size
        assert len(b64url_decode(jwk["y"])) == size


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    alg=st.sampled_from(ASYMMETRIC),
    kid=st.text(alphabet="abcXYZ019._-", min_size=1, max_size=40),
)
def test_public_jwk_never_contains_private_members(alg: str, kid: str) -> None:
    material = generate(alg)
    jwk = public_jwk(material, kid)
    assert not (set(jwk) & PRIVATE_MEMBERS)
    expected_params = {"RSA": {"n", "e"}, "EC": {"crv", "x", "y"}, "OKP": {"crv", "x"}}[family(alg)]
    assert set(jwk) == {"kty", "kid", "use", "alg"} | expected_params
    assert jwk["kid"] == kid
    assert jwk["use"] == "sig"
    assert jwk["alg"] == alg
    assert all(isinstance(v, str) for v in jwk.values())
    # jwcrypto agrees it is a public key only.
    assert not jc_jwk.JWK(**jwk).has_private
    private = private_jwk(material, kid)
    assert jc_jwk.JWK(**private).has_private
    assert {k: v for k, v in private.items() if k in jwk} == jwk


@pytest.mark.parametrize("alg", SYMMETRIC)
def test_symmetric_keys_are_never_published(alg: str, keys: Callable[[str], KeyMaterial]) -> None:
    material = keys(alg)
    with pytest.raises(ValueError, match="symmetric"):
        public_jwk(material, "k")
    with pytest.raises(ValueError, match="HMAC"):
        public_pem(material)
    with pytest.raises(ValueError, match="HMAC"):
        private_pem(material)
    assert private_jwk(material, "k") == {
        "kty": "oct",
        "kid": "k",
        "use": "sig",
        "alg": alg,
        "k": b64url(raw_secret(material).encode("utf-8")),
    }


def test_private_jwk_members_per_family(keys: Callable[[str], KeyMaterial]) -> None:
    assert set(private_jwk(keys("RS256"), "k")) == {
        "kty", "kid", "use", "alg", "n", "e", "d", "p", "q", "dp", "dq", "qi",
    }  # fmt: skip
    assert set(private_jwk(keys("ES512"), "k")) == {"kty", "kid", "use", "alg", "crv", "x", "y", "d"}
    assert private_jwk(keys("EdDSA"), "k")["kty"] == "OKP"
    assert private_jwk(keys("EdDSA"), "k")["crv"] == "Ed25519"
