"""keyturn.keys.generation: every size the contract allows, nothing it does not, and fresh keys from
several threads at once.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from keyturn.keys.algorithms import hash_size
from keyturn.keys.generation import generate
from keyturn.keys.jwk import public_jwk
from keyturn.keys.material import KeyMaterial, raw_secret
from keyturn.keys.self_test import self_test
from keyturn.keys.signing import sign
from keyturn.keys.thumbprints import thumbprint
from unit.keys.support import assert_verifies_independently, b64url_decode, claims_now


@pytest.mark.parametrize("size", [3072, 4096])
def test_rs256_larger_key_sizes(size: int, rsa4096: KeyMaterial) -> None:
    material = rsa4096 if size == 4096 else generate("RS256", key_size=size)
    assert isinstance(material.key, rsa.RSAPrivateKey)
    assert material.key.key_size == size
    assert len(b64url_decode(public_jwk(material, "k")["n"])) == size // 8
    assert_verifies_independently(material, "k")


def test_default_rsa_key_is_2048_with_exponent_65537(keys: Callable[[str], KeyMaterial]) -> None:
    material = keys("PS256")
    assert isinstance(material.key, rsa.RSAPrivateKey)
    assert material.key.key_size == 2048
    assert public_jwk(material, "k")["e"] == "AQAB"


def test_ps384_with_3072_bits() -> None:
    material = generate("PS384", key_size=3072)
    assert_verifies_independently(material, "ps")


@pytest.mark.parametrize(
    ("alg", "length"), [("HS256", None), ("HS384", None), ("HS512", None), ("HS256", 64)]
)
def test_hmac_secret_is_unpadded_base64url_text_whose_bytes_are_the_key(alg: str, length: int | None) -> None:
    material = generate(alg, secret_length=length)
    secret = raw_secret(material)
    entropy = length or hash_size(alg)
    assert "=" not in secret
    assert set(secret) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert len(b64url_decode(secret)) == entropy
    assert len(secret) == -(-entropy * 4 // 3)

    token = sign(material, claims_now(), "k")
    # What an app does with JWT_SECRET: the text itself is the key ...
    assert jwt.decode(token, secret, algorithms=[alg])["sub"] == "user-1"
    # ... and not the bytes it happens to encode.
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, b64url_decode(secret), algorithms=[alg])


def test_hmac_secrets_are_fresh() -> None:
    assert len({raw_secret(generate("HS256")) for _ in range(20)}) == 20


@pytest.mark.parametrize("size", [1024, 1536, 2047, 2049, 2560, 8192, 0, -2048])
def test_rsa_sizes_outside_the_contract_are_rejected(size: int) -> None:
    with pytest.raises(ValueError, match="keySize"):
        generate("RS256", key_size=size)


def test_rsa_key_size_must_be_a_real_int() -> None:
    with pytest.raises(ValueError, match="keySize"):
        generate("PS256", key_size=True)
    with pytest.raises(ValueError, match="keySize"):
        generate("PS256", key_size="2048")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("alg", "length"), [("HS256", 16), ("HS256", 31), ("HS384", 32), ("HS512", 48), ("HS256", 0)]
)
def test_short_hmac_secrets_are_rejected(alg: str, length: int) -> None:
    with pytest.raises(ValueError, match="at least"):
        generate(alg, secret_length=length)


def test_absurd_hmac_secret_length_is_rejected() -> None:
    with pytest.raises(ValueError, match="at most"):
        generate("HS256", secret_length=10**9)


def test_size_options_for_the_wrong_family_are_rejected() -> None:
    with pytest.raises(ValueError, match="keySize"):
        generate("ES256", key_size=2048)
    with pytest.raises(ValueError, match="keySize"):
        generate("HS256", key_size=2048)
    with pytest.raises(ValueError, match="secretLength"):
        generate("RS256", secret_length=64)


def test_generation_is_safe_from_threads() -> None:
    algs = ["ES256", "HS256", "EdDSA", "ES384"] * 6
    with ThreadPoolExecutor(max_workers=8) as pool:
        materials = list(pool.map(generate, algs))
    assert [m.algorithm for m in materials] == algs
    assert len({thumbprint(m) for m in materials}) == len(algs)
    for material in materials[:4]:
        self_test(material, "k")
