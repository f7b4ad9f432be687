"""keyturn.keys.thumbprints: RFC 7638 against the RFC's vector and jwcrypto; audit fingerprints an
auditor can recompute with openssl/sha256sum.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

import pytest

from keyturn.keys.algorithms import is_symmetric
from keyturn.keys.generation import generate
from keyturn.keys.jwk import private_jwk, public_jwk
from keyturn.keys.material import KeyMaterial, raw_secret
from keyturn.keys.pem import public_pem
from keyturn.keys.thumbprints import secret_fingerprint, thumbprint
from unit.keys.support import CONTRACT_ALGORITHMS, assert_no_secret_in, jwcrypto_key_for

# RFC 7638 section 3.1 (the RSA key of RFC 7517 appendix A.1).
RFC7638_JWK = {
    "kty": "RSA",
    "n": (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCi"
        "FV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZg"
        "nYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniI"
        "qbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    ),
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_rfc7638_thumbprint_vector() -> None:
    assert thumbprint(RFC7638_JWK) == RFC7638_THUMBPRINT
    # Optional and private members are not part of the thumbprint.
    assert thumbprint({**RFC7638_JWK, "use": "sig", "d": "AAAA"}) == RFC7638_THUMBPRINT


def test_thumbprint_rejects_incomplete_jwk() -> None:
    with pytest.raises(ValueError, match="'e'"):
        thumbprint({"kty": "RSA", "n": RFC7638_JWK["n"]})
    with pytest.raises(ValueError, match="kty"):
        thumbprint({"kty": "DSA", "y": "AQAB"})


@pytest.mark.parametrize("alg", CONTRACT_ALGORITHMS)
def test_thumbprint_matches_jwcrypto(alg: str, keys: Callable[[str], KeyMaterial]) -> None:
    material = keys(alg)
    expected = jwcrypto_key_for(material, "kid").thumbprint()
    assert thumbprint(material) == expected
    if not is_symmetric(alg):
        assert thumbprint(public_jwk(material, "any")) == expected
    assert thumbprint(private_jwk(material, "any")) == expected


@pytest.mark.parametrize("alg", ["RS256", "ES512", "EdDSA"])
def test_fingerprint_is_sha256_of_the_public_key_der(alg: str, keys: Callable[[str], KeyMaterial]) -> None:
    material = keys(alg)
    pem = public_pem(material)
    der = base64.b64decode("".join(line for line in pem.splitlines() if not line.startswith("-----")))
    fingerprint = secret_fingerprint(material)
    assert fingerprint == hashlib.sha256(der).hexdigest()[:16]
    assert len(fingerprint) == 16
    assert fingerprint != secret_fingerprint(generate(alg))


def test_fingerprint_of_hmac_is_sha256_of_the_secret_text(keys: Callable[[str], KeyMaterial]) -> None:
    material = keys("HS256")
    secret = raw_secret(material)
    assert secret_fingerprint(material) == hashlib.sha256(secret.encode()).hexdigest()[:16]
    assert_no_secret_in(secret_fingerprint(material), material, window=8)
