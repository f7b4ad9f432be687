"""keyturn.keys.signing: tokens verify with two independent libraries; wrong kid, expiry, tampering,
unsigned tokens and algorithm confusion are refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from jwcrypto import jwk as jc_jwk
from jwcrypto import jwt as jc_jwt

from keyturn.keys.algorithms import is_symmetric
from keyturn.keys.generation import generate
from keyturn.keys.jwk import private_jwk, public_jwk
from keyturn.keys.material import KeyMaterial
from keyturn.keys.pem import public_pem
from keyturn.keys.self_test import self_test
from keyturn.keys.signing import TokenVerificationError, sign, verify
from keyturn.keys.thumbprints import thumbprint
from unit.keys.support import (
    CONTRACT_ALGORITHMS,
    assert_verifies_independently,
    b64url,
    b64url_decode,
    claims_now,
)


@pytest.mark.parametrize("alg", CONTRACT_ALGORITHMS)
def test_every_algorithm_signs_tokens_that_jwcrypto_and_pyjwt_verify(
    alg: str, keys: Callable[[str], KeyMaterial]
) -> None:
    material = keys(alg)
    assert material.algorithm == alg
    assert_verifies_independently(material, thumbprint(material))
    self_test(material, "20260102_v1_prod")


@pytest.mark.parametrize("alg", CONTRACT_ALGORITHMS)
def test_tokens_signed_by_jwcrypto_with_the_private_jwk_verify(
    alg: str, keys: Callable[[str], KeyMaterial]
) -> None:
    """private_jwk is usable by another library and is the same key as the material."""
    material = keys(alg)
    claims = claims_now()
    token = jc_jwt.JWT(header={"alg": alg, "kid": "x"}, claims=claims)
    token.make_signed_token(jc_jwk.JWK(**private_jwk(material, "x")))
    target: Any = material if is_symmetric(alg) else public_jwk(material, "x")
    assert verify(token.serialize(), target, alg, kid="x") == claims


def test_sign_puts_kid_and_alg_in_the_header(keys: Callable[[str], KeyMaterial]) -> None:
    token = sign(keys("ES256"), {"sub": "a"}, "kid-1")
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "kid": "kid-1", "typ": "JWT"}
    assert verify(token, keys("ES256"), "ES256", kid="kid-1") == {"sub": "a"}
    with pytest.raises(ValueError, match="kid"):
        sign(keys("ES256"), {"sub": "a"}, "")


def test_verify_rejects_wrong_kid_expired_and_tampered_tokens(keys: Callable[[str], KeyMaterial]) -> None:
    material = keys("ES256")
    jwk = public_jwk(material, "a")
    token = sign(material, claims_now(), "a")
    with pytest.raises(TokenVerificationError, match="kid"):
        verify(token, jwk, "ES256", kid="b")

    expired = sign(material, {**claims_now(), "exp": int(time.time()) - 10}, "a")
    with pytest.raises(TokenVerificationError, match="Expired"):
        verify(expired, jwk, "ES256")

    head, payload, signature = token.split(".")
    forged_payload = b64url(json.dumps({**json.loads(b64url_decode(payload)), "sub": "admin"}).encode())
    with pytest.raises(TokenVerificationError):
        verify(f"{head}.{forged_payload}.{signature}", jwk, "ES256")

    other = public_jwk(generate("ES256"), "a")
    with pytest.raises(TokenVerificationError):
        verify(token, other, "ES256")

    with pytest.raises(TokenVerificationError, match="MissingRequiredClaim"):
        verify(sign(material, {"sub": "a"}, "a"), jwk, "ES256", require=("exp",))


def test_verify_refuses_unsigned_and_algorithm_confusion(keys: Callable[[str], KeyMaterial]) -> None:
    material = keys("RS256")
    jwk = public_jwk(material, "a")
    unsigned = ".".join(b64url(json.dumps(part).encode()) for part in ({"alg": "none"}, claims_now())) + "."
    with pytest.raises(TokenVerificationError):
        verify(unsigned, jwk, "RS256")
    with pytest.raises(ValueError, match="none"):
        verify(unsigned, jwk, "none")

    # The classic confusion attack: an HS256 token keyed with the published RSA public key.
    signing_input = ".".join(
        b64url(json.dumps(part).encode()) for part in ({"alg": "HS256", "kid": "a"}, claims_now())
    )
    mac = hmac.new(public_pem(material).encode(), signing_input.encode(), hashlib.sha256).digest()
    confused = f"{signing_input}.{b64url(mac)}"
    with pytest.raises(TokenVerificationError, match="InvalidAlgorithm"):
        verify(confused, jwk, "RS256")
    with pytest.raises(ValueError, match="kty"):
        verify(confused, jwk, "HS256")

    # A token is only accepted with the algorithm the caller asked for.
    ps_key = keys("PS256")
    ps_token = sign(ps_key, claims_now(), "a")
    with pytest.raises(TokenVerificationError):
        verify(ps_token, {**public_jwk(ps_key, "a"), "alg": "RS256"}, "RS256")
    with pytest.raises(ValueError, match="another algorithm"):
        verify(ps_token, public_jwk(ps_key, "a"), "RS256")
    with pytest.raises(ValueError, match="PS256"):
        verify(ps_token, ps_key, "RS256")


def test_verify_rejects_jwk_for_wrong_curve_or_use(keys: Callable[[str], KeyMaterial]) -> None:
    material = keys("ES384")
    token = sign(material, claims_now(), "a")
    jwk = public_jwk(material, "a")
    with pytest.raises(ValueError, match="P-256"):
        verify(token, {**jwk, "alg": "ES256"}, "ES256")
    with pytest.raises(ValueError, match="use"):
        verify(token, {**jwk, "use": "enc"}, "ES384")
    with pytest.raises(ValueError, match="not a valid"):
        verify(token, {**jwk, "x": "AAAA"}, "ES384")
