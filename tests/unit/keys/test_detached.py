"""keyturn.keys.detached: a signature over a signing input assembled elsewhere verifies with
jwcrypto (ECDSA as r || s, not DER), and public keys come out as the PKIX DER kube-apiserver reads."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.serialization import load_der_public_key
from jwcrypto import jwk as jc_jwk
from jwcrypto import jws as jc_jws

from keyturn.keys.detached import material_spki_der, sign_input, spki_der
from keyturn.keys.jwk import public_jwk
from keyturn.keys.material import KeyMaterial

ASYMMETRIC = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "ES512", "EdDSA"]
SIGNATURE_SIZE = {"ES256": 64, "ES384": 96, "ES512": 132}


def segment(document: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize("alg", ASYMMETRIC)
def test_a_detached_signature_makes_a_token_jwcrypto_verifies(
    alg: str, keys: Callable[[str], KeyMaterial]
) -> None:
    material = keys(alg)
    signing_input = f"{segment({'alg': alg, 'kid': 'k', 'typ': 'JWT'})}.{segment({'sub': 'x'})}"
    signature = sign_input(material, signing_input.encode())
    if alg in SIGNATURE_SIZE:
        assert len(signature) == SIGNATURE_SIZE[alg]  # JWS's r || s, not DER
    token = f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
    verifier = jc_jws.JWS()
    verifier.deserialize(token)
    verifier.verify(jc_jwk.JWK(**public_jwk(material, "k")), alg=alg)


def test_hmac_keys_are_never_used(keys: Callable[[str], KeyMaterial]) -> None:
    with pytest.raises(ValueError, match="shared secrets"):
        sign_input(keys("HS256"), b"a.b")
    with pytest.raises(ValueError, match="shared secrets"):
        material_spki_der(keys("HS256"))


@pytest.mark.parametrize("alg", ["RS256", "ES256", "ES384", "ES512"])
def test_the_pkix_der_of_a_published_jwk_is_the_private_keys_own(
    alg: str, keys: Callable[[str], KeyMaterial]
) -> None:
    material = keys(alg)
    der = spki_der(public_jwk(material, "k"), alg)
    assert der == material_spki_der(material)
    assert load_der_public_key(der).public_numbers() == material.key.public_key().public_numbers()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("jwk", "alg"),
    [
        pytest.param({"kty": "RSA", "n": "AA", "e": "AQAB"}, "RS256", id="RSA too small"),
        pytest.param({"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"}, "ES256", id="wrong curve"),
        pytest.param({"kty": "oct", "k": "AAAA"}, "HS256", id="a symmetric key"),
    ],
)
def test_a_jwk_that_is_no_usable_public_key_is_a_value_error(jwk: dict[str, str], alg: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message is keys.jwk's, tested there
        spki_der(jwk, alg)
