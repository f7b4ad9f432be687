"""Helpers shared by the keys tests: the contract's algorithm lists, claims, independent verification
(jwcrypto and PyJWT) and the leak check that looks for any fragment of a key in a text.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwcrypto import jwk as jc_jwk
from jwcrypto import jwt as jc_jwt

from keyturn.keys.algorithms import is_symmetric
from keyturn.keys.jwk import private_jwk, public_jwk
from keyturn.keys.material import KeyMaterial, raw_secret
from keyturn.keys.pem import private_pem
from keyturn.keys.signing import sign, verify

CONTRACT_ALGORITHMS = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
    "ES256", "ES384", "ES512", "EdDSA", "HS256", "HS384", "HS512",
]  # fmt: skip
ASYMMETRIC = [a for a in CONTRACT_ALGORITHMS if not a.startswith("HS")]
SYMMETRIC = ["HS256", "HS384", "HS512"]
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k", "oth", "r", "t"}
PASSPHRASE = b"correct horse battery staple, but long and random in production"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def claims_now(lifetime: int = 300) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "user-1", "iss": "test", "iat": now, "exp": now + lifetime, "scope": "read write"}


def jwcrypto_key_for(material: KeyMaterial, kid: str) -> jc_jwk.JWK:
    """Verification key for jwcrypto, built only from what consumers get (public JWK / env-var secret)."""
    if is_symmetric(material.algorithm):
        return jc_jwk.JWK(kty="oct", k=b64url(raw_secret(material).encode("utf-8")))
    return jc_jwk.JWK(**public_jwk(material, kid))


def pyjwt_key_for(material: KeyMaterial, kid: str) -> Any:
    if is_symmetric(material.algorithm):
        return raw_secret(material).encode("utf-8")
    return jwt.PyJWK(public_jwk(material, kid)).key


def assert_verifies_independently(material: KeyMaterial, kid: str) -> None:
    claims = claims_now()
    token = sign(material, claims, kid)
    alg = material.algorithm

    checked = jc_jwt.JWT(jwt=token, key=jwcrypto_key_for(material, kid), algs=[alg])
    assert json.loads(checked.claims) == claims
    header = json.loads(checked.header)
    assert header["alg"] == alg
    assert header["kid"] == kid

    assert jwt.decode(token, pyjwt_key_for(material, kid), algorithms=[alg]) == claims

    target: Any = material if is_symmetric(alg) else public_jwk(material, kid)
    assert verify(token, target, alg, kid=kid, require=("exp",)) == claims


def weak_rsa_key() -> rsa.RSAPrivateKey:
    """A key Keyturn must refuse; generated with cryptography directly, bypassing generate()."""
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505


def _secret_texts(material: KeyMaterial) -> list[str]:
    """Every textual form of the secret part of a key."""
    private = private_jwk(material, "k")
    texts = [v for name, v in private.items() if name in PRIVATE_MEMBERS]
    if is_symmetric(material.algorithm):
        texts.append(raw_secret(material))
    else:
        pem = private_pem(material)
        texts.append("".join(line for line in pem.splitlines() if not line.startswith("-----")))
    return texts


def assert_no_secret_in(text: str, material: KeyMaterial, window: int = 8) -> None:
    for secret in _secret_texts(material):
        assert len(secret) >= window
        for i in range(len(secret) - window + 1):
            assert secret[i : i + window] not in text, "secret material leaked"
