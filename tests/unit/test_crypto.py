"""Tests for keyturn.crypto.

Tokens are always checked with jwcrypto (an independent JOSE implementation) as well as PyJWT,
and the PEM encryption is checked with an independent DER reader and, when present, openssl.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwcrypto import jwk as jc_jwk
from jwcrypto import jwt as jc_jwt

from keyturn import crypto
from keyturn.crypto import KeyMaterial, KeySelfTestError, TokenVerificationError

CONTRACT_ALGORITHMS = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
    "ES256", "ES384", "ES512", "EdDSA", "HS256", "HS384", "HS512",
]  # fmt: skip
ASYMMETRIC = [a for a in CONTRACT_ALGORITHMS if not a.startswith("HS")]
SYMMETRIC = ["HS256", "HS384", "HS512"]
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k", "oth", "r", "t"}
PASSPHRASE = b"correct horse battery staple, but long and random in production"

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


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def claims_now(lifetime: int = 300) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "user-1", "iss": "test", "iat": now, "exp": now + lifetime, "scope": "read write"}


@pytest.fixture(scope="module")
def keys() -> Callable[[str], KeyMaterial]:
    """One key per algorithm, generated lazily and shared: RSA generation is slow."""
    cache: dict[str, KeyMaterial] = {}

    def get(alg: str) -> KeyMaterial:
        if alg not in cache:
            cache[alg] = crypto.generate(alg)
        return cache[alg]

    return get


@pytest.fixture(scope="module")
def rsa4096() -> KeyMaterial:
    """The only RSA-4096 key of the suite."""
    return crypto.generate("RS256", key_size=4096)


def jwcrypto_key_for(material: KeyMaterial, kid: str) -> jc_jwk.JWK:
    """Verification key for jwcrypto, built only from what consumers get (public JWK / env-var secret)."""
    if crypto.is_symmetric(material.algorithm):
        return jc_jwk.JWK(kty="oct", k=b64url(crypto.raw_secret(material).encode("utf-8")))
    return jc_jwk.JWK(**crypto.public_jwk(material, kid))


def pyjwt_key_for(material: KeyMaterial, kid: str) -> Any:
    if crypto.is_symmetric(material.algorithm):
        return crypto.raw_secret(material).encode("utf-8")
    return jwt.PyJWK(crypto.public_jwk(material, kid)).key


def assert_verifies_independently(material: KeyMaterial, kid: str) -> None:
    claims = claims_now()
    token = crypto.sign(material, claims, kid)
    alg = material.algorithm

    checked = jc_jwt.JWT(jwt=token, key=jwcrypto_key_for(material, kid), algs=[alg])
    assert json.loads(checked.claims) == claims
    header = json.loads(checked.header)
    assert header["alg"] == alg
    assert header["kid"] == kid

    assert jwt.decode(token, pyjwt_key_for(material, kid), algorithms=[alg]) == claims

    target: Any = material if crypto.is_symmetric(alg) else crypto.public_jwk(material, kid)
    assert crypto.verify(token, target, alg, kid=kid, require=("exp",)) == claims


# --------------------------------------------------------------------------- algorithm tables


def test_algorithm_table_matches_contract() -> None:
    assert list(crypto.ALGORITHMS) == CONTRACT_ALGORITHMS
    assert {a: crypto.family(a) for a in CONTRACT_ALGORITHMS} == {
        **dict.fromkeys(["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"], "RSA"),
        **dict.fromkeys(["ES256", "ES384", "ES512"], "EC"),
        "EdDSA": "OKP",
        **dict.fromkeys(SYMMETRIC, "HMAC"),
    }
    assert [crypto.hash_size(a) for a in ["HS256", "HS384", "HS512", "ES384", "PS512"]] == [
        32,
        48,
        64,
        48,
        64,
    ]
    assert [a for a in CONTRACT_ALGORITHMS if crypto.is_symmetric(a)] == SYMMETRIC


def test_family_table_is_immutable() -> None:
    with pytest.raises(TypeError):
        crypto.FAMILY["none"] = "HMAC"  # type: ignore[index]


@pytest.mark.parametrize(
    "alg", ["none", "None", "NONE", " none", "RS1", "rs256", "ES256K", "Ed448", "HS128", ""]
)
def test_unknown_and_none_algorithms_are_rejected(alg: str) -> None:
    with pytest.raises(ValueError, match="algorithm"):
        crypto.generate(alg)
    with pytest.raises(ValueError, match="algorithm"):
        crypto.family(alg)


# --------------------------------------------------------------------------- RFC 7638


def test_rfc7638_thumbprint_vector() -> None:
    assert crypto.thumbprint(RFC7638_JWK) == RFC7638_THUMBPRINT
    # Optional and private members are not part of the thumbprint.
    assert crypto.thumbprint({**RFC7638_JWK, "use": "sig", "d": "AAAA"}) == RFC7638_THUMBPRINT


def test_thumbprint_rejects_incomplete_jwk() -> None:
    with pytest.raises(ValueError, match="'e'"):
        crypto.thumbprint({"kty": "RSA", "n": RFC7638_JWK["n"]})
    with pytest.raises(ValueError, match="kty"):
        crypto.thumbprint({"kty": "DSA", "y": "AQAB"})


@pytest.mark.parametrize("alg", CONTRACT_ALGORITHMS)
def test_thumbprint_matches_jwcrypto(alg: str, keys: Callable[[str], KeyMaterial]) -> None:
    material = keys(alg)
    expected = jwcrypto_key_for(material, "kid").thumbprint()
    assert crypto.thumbprint(material) == expected
    if not crypto.is_symmetric(alg):
        assert crypto.thumbprint(crypto.public_jwk(material, "any")) == expected
    assert crypto.thumbprint(crypto.private_jwk(material, "any")) == expected


# --------------------------------------------------------------------------- sign and verify


@pytest.mark.parametrize("alg", CONTRACT_ALGORITHMS)
def test_every_algorithm_signs_tokens_that_jwcrypto_and_pyjwt_verify(
    alg: str, keys: Callable[[str], KeyMaterial]
) -> None:
    material = keys(alg)
    assert material.algorithm == alg
    assert_verifies_independently(material, crypto.thumbprint(material))
    crypto.self_test(material, "20260102_v1_prod")


@pytest.mark.parametrize("size", [3072, 4096])
def test_rs256_larger_key_sizes(size: int, rsa4096: KeyMaterial) -> None:
    material = rsa4096 if size == 4096 else crypto.generate("RS256", key_size=size)
    assert isinstance(material.key, rsa.RSAPrivateKey)
    assert material.key.key_size == size
    assert len(b64url_decode(crypto.public_jwk(material, "k")["n"])) == size // 8
    assert_verifies_independently(material, "k")


def test_default_rsa_key_is_2048_with_exponent_65537(keys: Callable[[str], KeyMaterial]) -> None:
    material = keys("PS256")
    assert isinstance(material.key, rsa.RSAPrivateKey)
    assert material.key.key_size == 2048
    assert crypto.public_jwk(material, "k")["e"] == "AQAB"


def test_ps384_with_3072_bits() -> None:
    material = crypto.generate("PS384", key_size=3072)
    assert_verifies_independently(material, "ps")


@pytest.mark.parametrize(
    ("alg", "crv", "size"), [("ES256", "P-256", 32), ("ES384", "P-384", 48), ("ES512", "P-521", 66)]
)
def test_ec_jwk_coordinates_are_full_length(alg: str, crv: str, size: int) -> None:
    # Several keys so that a coordinate with leading zero bytes is likely to show up at least once
    # for P-521 (its top byte is 0 or 1); RFC 7518 6.2.1.2 requires the full length regardless.
    for _ in range(8):
        jwk = crypto.public_jwk(crypto.generate(alg), "k")
        assert jwk["crv"] == crv
        assert len(b64url_decode(jwk["x"])) == size
        assert len(b64url_decode(jwk["y"])) == size


@pytest.mark.parametrize("alg", CONTRACT_ALGORITHMS)
def test_tokens_signed_by_jwcrypto_with_the_private_jwk_verify(
    alg: str, keys: Callable[[str], KeyMaterial]
) -> None:
    """private_jwk is usable by another library and is the same key as the material."""
    material = keys(alg)
    claims = claims_now()
    token = jc_jwt.JWT(header={"alg": alg, "kid": "x"}, claims=claims)
    token.make_signed_token(jc_jwk.JWK(**crypto.private_jwk(material, "x")))
    target: Any = material if crypto.is_symmetric(alg) else crypto.public_jwk(material, "x")
    assert crypto.verify(token.serialize(), target, alg, kid="x") == claims


def test_sign_puts_kid_and_alg_in_the_header(keys: Callable[[str], KeyMaterial]) -> None:
    token = crypto.sign(keys("ES256"), {"sub": "a"}, "kid-1")
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "kid": "kid-1", "typ": "JWT"}
    assert crypto.verify(token, keys("ES256"), "ES256", kid="kid-1") == {"sub": "a"}
    with pytest.raises(ValueError, match="kid"):
        crypto.sign(keys("ES256"), {"sub": "a"}, "")


def test_verify_rejects_wrong_kid_expired_and_tampered_tokens(keys: Callable[[str], KeyMaterial]) -> None:
    material = keys("ES256")
    jwk = crypto.public_jwk(material, "a")
    token = crypto.sign(material, claims_now(), "a")
    with pytest.raises(TokenVerificationError, match="kid"):
        crypto.verify(token, jwk, "ES256", kid="b")

    expired = crypto.sign(material, {**claims_now(), "exp": int(time.time()) - 10}, "a")
    with pytest.raises(TokenVerificationError, match="Expired"):
        crypto.verify(expired, jwk, "ES256")

    head, payload, signature = token.split(".")
    forged_payload = b64url(json.dumps({**json.loads(b64url_decode(payload)), "sub": "admin"}).encode())
    with pytest.raises(TokenVerificationError):
        crypto.verify(f"{head}.{forged_payload}.{signature}", jwk, "ES256")

    other = crypto.public_jwk(crypto.generate("ES256"), "a")
    with pytest.raises(TokenVerificationError):
        crypto.verify(token, other, "ES256")

    with pytest.raises(TokenVerificationError, match="MissingRequiredClaim"):
        crypto.verify(crypto.sign(material, {"sub": "a"}, "a"), jwk, "ES256", require=("exp",))


def test_verify_refuses_unsigned_and_algorithm_confusion(keys: Callable[[str], KeyMaterial]) -> None:
    material = keys("RS256")
    jwk = crypto.public_jwk(material, "a")
    unsigned = ".".join(b64url(json.dumps(part).encode()) for part in ({"alg": "none"}, claims_now())) + "."
    with pytest.raises(TokenVerificationError):
        crypto.verify(unsigned, jwk, "RS256")
    with pytest.raises(ValueError, match="none"):
        crypto.verify(unsigned, jwk, "none")

    # The classic confusion attack: an HS256 token keyed with the published RSA public key.
    signing_input = ".".join(
        b64url(json.dumps(part).encode()) for part in ({"alg": "HS256", "kid": "a"}, claims_now())
    )
    mac = hmac.new(crypto.public_pem(material).encode(), signing_input.encode(), hashlib.sha256).digest()
    confused = f"{signing_input}.{b64url(mac)}"
    with pytest.raises(TokenVerificationError, match="InvalidAlgorithm"):
        crypto.verify(confused, jwk, "RS256")
    with pytest.raises(ValueError, match="kty"):
        crypto.verify(confused, jwk, "HS256")

    # A token is only accepted with the algorithm the caller asked for.
    ps_key = keys("PS256")
    ps_token = crypto.sign(ps_key, claims_now(), "a")
    with pytest.raises(TokenVerificationError):
        crypto.verify(ps_token, {**crypto.public_jwk(ps_key, "a"), "alg": "RS256"}, "RS256")
    with pytest.raises(ValueError, match="another algorithm"):
        crypto.verify(ps_token, crypto.public_jwk(ps_key, "a"), "RS256")
    with pytest.raises(ValueError, match="PS256"):
        crypto.verify(ps_token, ps_key, "RS256")


def test_verify_rejects_jwk_for_wrong_curve_or_use(keys: Callable[[str], KeyMaterial]) -> None:
    material = keys("ES384")
    token = crypto.sign(material, claims_now(), "a")
    jwk = crypto.public_jwk(material, "a")
    with pytest.raises(ValueError, match="P-256"):
        crypto.verify(token, {**jwk, "alg": "ES256"}, "ES256")
    with pytest.raises(ValueError, match="use"):
        crypto.verify(token, {**jwk, "use": "enc"}, "ES384")
    with pytest.raises(ValueError, match="not a valid"):
        crypto.verify(token, {**jwk, "x": "AAAA"}, "ES384")


# --------------------------------------------------------------------------- JWK content


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    alg=st.sampled_from(ASYMMETRIC),
    kid=st.text(alphabet="abcXYZ019._-", min_size=1, max_size=40),
)
def test_public_jwk_never_contains_private_members(alg: str, kid: str) -> None:
    material = crypto.generate(alg)
    jwk = crypto.public_jwk(material, kid)
    assert not (set(jwk) & PRIVATE_MEMBERS)
    expected_params = {"RSA": {"n", "e"}, "EC": {"crv", "x", "y"}, "OKP": {"crv", "x"}}[crypto.family(alg)]
    assert set(jwk) == {"kty", "kid", "use", "alg"} | expected_params
    assert jwk["kid"] == kid
    assert jwk["use"] == "sig"
    assert jwk["alg"] == alg
    assert all(isinstance(v, str) for v in jwk.values())
    # jwcrypto agrees it is a public key only.
    assert not jc_jwk.JWK(**jwk).has_private
    private = crypto.private_jwk(material, kid)
    assert jc_jwk.JWK(**private).has_private
    assert {k: v for k, v in private.items() if k in jwk} == jwk


@pytest.mark.parametrize("alg", SYMMETRIC)
def test_symmetric_keys_are_never_published(alg: str, keys: Callable[[str], KeyMaterial]) -> None:
    material = keys(alg)
    with pytest.raises(ValueError, match="symmetric"):
        crypto.public_jwk(material, "k")
    with pytest.raises(ValueError, match="HMAC"):
        crypto.public_pem(material)
    with pytest.raises(ValueError, match="HMAC"):
        crypto.private_pem(material)
    assert crypto.private_jwk(material, "k") == {
        "kty": "oct",
        "kid": "k",
        "use": "sig",
        "alg": alg,
        "k": b64url(crypto.raw_secret(material).encode("utf-8")),
    }


def test_private_jwk_members_per_family(keys: Callable[[str], KeyMaterial]) -> None:
    assert set(crypto.private_jwk(keys("RS256"), "k")) == {
        "kty", "kid", "use", "alg", "n", "e", "d", "p", "q", "dp", "dq", "qi",
    }  # fmt: skip
    assert set(crypto.private_jwk(keys("ES512"), "k")) == {"kty", "kid", "use", "alg", "crv", "x", "y", "d"}
    assert crypto.private_jwk(keys("EdDSA"), "k")["kty"] == "OKP"
    assert crypto.private_jwk(keys("EdDSA"), "k")["crv"] == "Ed25519"


# --------------------------------------------------------------------------- HMAC secrets


@pytest.mark.parametrize(
    ("alg", "length"), [("HS256", None), ("HS384", None), ("HS512", None), ("HS256", 64)]
)
def test_hmac_secret_is_unpadded_base64url_text_whose_bytes_are_the_key(alg: str, length: int | None) -> None:
    material = crypto.generate(alg, secret_length=length)
    secret = crypto.raw_secret(material)
    entropy = length or crypto.hash_size(alg)
    assert "=" not in secret
    assert set(secret) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert len(b64url_decode(secret)) == entropy
    assert len(secret) == -(-entropy * 4 // 3)

    token = crypto.sign(material, claims_now(), "k")
    # What an app does with JWT_SECRET: the text itself is the key ...
    assert jwt.decode(token, secret, algorithms=[alg])["sub"] == "user-1"
    # ... and not the bytes it happens to encode.
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, b64url_decode(secret), algorithms=[alg])


def test_hmac_secrets_are_fresh() -> None:
    assert len({crypto.raw_secret(crypto.generate("HS256")) for _ in range(20)}) == 20


def test_load_raw_secret_round_trip(keys: Callable[[str], KeyMaterial]) -> None:
    material = keys("HS384")
    loaded = crypto.load_raw_secret(crypto.raw_secret(material), "HS384")
    assert crypto.raw_secret(loaded) == crypto.raw_secret(material)
    assert crypto.verify(crypto.sign(loaded, claims_now(), "k"), material, "HS384")["sub"] == "user-1"


def test_load_raw_secret_rejections(keys: Callable[[str], KeyMaterial]) -> None:
    secret = crypto.raw_secret(keys("HS256"))
    with pytest.raises(ValueError, match="at least 64"):
        crypto.load_raw_secret(secret, "HS512")  # 43 bytes is too short for HS512
    with pytest.raises(ValueError, match="whitespace"):
        crypto.load_raw_secret(secret + "\n", "HS256")
    with pytest.raises(ValueError, match="asymmetric"):
        crypto.load_raw_secret(secret, "RS256")
    with pytest.raises(ValueError, match="no raw secret"):
        crypto.raw_secret(keys("ES256"))


# --------------------------------------------------------------------------- rejections


@pytest.mark.parametrize("size", [1024, 1536, 2047, 2049, 2560, 8192, 0, -2048])
def test_rsa_sizes_outside_the_contract_are_rejected(size: int) -> None:
    with pytest.raises(ValueError, match="keySize"):
        crypto.generate("RS256", key_size=size)


def test_rsa_key_size_must_be_a_real_int() -> None:
    with pytest.raises(ValueError, match="keySize"):
        crypto.generate("PS256", key_size=True)
    with pytest.raises(ValueError, match="keySize"):
        crypto.generate("PS256", key_size="2048")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("alg", "length"), [("HS256", 16), ("HS256", 31), ("HS384", 32), ("HS512", 48), ("HS256", 0)]
)
def test_short_hmac_secrets_are_rejected(alg: str, length: int) -> None:
    with pytest.raises(ValueError, match="at least"):
        crypto.generate(alg, secret_length=length)


def test_absurd_hmac_secret_length_is_rejected() -> None:
    with pytest.raises(ValueError, match="at most"):
        crypto.generate("HS256", secret_length=10**9)


def test_size_options_for_the_wrong_family_are_rejected() -> None:
    with pytest.raises(ValueError, match="keySize"):
        crypto.generate("ES256", key_size=2048)
    with pytest.raises(ValueError, match="keySize"):
        crypto.generate("HS256", key_size=2048)
    with pytest.raises(ValueError, match="secretLength"):
        crypto.generate("RS256", secret_length=64)


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


# --------------------------------------------------------------------------- PEM


@pytest.mark.parametrize("alg", ASYMMETRIC)
def test_private_pem_round_trip(alg: str, keys: Callable[[str], KeyMaterial]) -> None:
    material = keys(alg)
    pem = crypto.private_pem(material)
    assert pem.startswith("-----BEGIN PRIVATE KEY-----\n")
    loaded = crypto.load_private_pem(pem, None, alg)
    assert crypto.public_pem(loaded) == crypto.public_pem(material)
    assert crypto.secret_fingerprint(loaded) == crypto.secret_fingerprint(material)
    assert crypto.thumbprint(loaded) == crypto.thumbprint(material)
    token = crypto.sign(loaded, claims_now(), "k")
    assert crypto.verify(token, crypto.public_jwk(material, "k"), alg)["sub"] == "user-1"


@pytest.mark.parametrize("alg", ["RS512", "ES256", "EdDSA"])
def test_encrypted_private_pem_round_trip(alg: str, keys: Callable[[str], KeyMaterial]) -> None:
    material = keys(alg)
    pem = crypto.private_pem(material, PASSPHRASE)
    assert pem.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    assert crypto.is_encrypted_pem(pem)
    assert not crypto.is_encrypted_pem(crypto.private_pem(material))
    loaded = crypto.load_private_pem(pem, PASSPHRASE, alg)
    assert crypto.public_pem(loaded) == crypto.public_pem(material)

    with pytest.raises(ValueError, match="wrong passphrase") as excinfo:
        crypto.load_private_pem(pem, b"not the passphrase", alg)
    assert "not the passphrase" not in str(excinfo.value)
    with pytest.raises(ValueError, match="no passphrase"):
        crypto.load_private_pem(pem, None, alg)
    with pytest.raises(ValueError, match="not encrypted"):
        crypto.load_private_pem(crypto.private_pem(material), PASSPHRASE, alg)


def test_private_pem_refuses_to_emit_anything_but_aes_256(
    monkeypatch: pytest.MonkeyPatch, keys: Callable[[str], KeyMaterial]
) -> None:
    """The runtime guard is wired in: pretend AES-256 were some other cipher and nothing comes out."""
    monkeypatch.setattr(crypto, "_OID_AES256_CBC", bytes.fromhex("608648016503040102"))  # aes128-CBC
    with pytest.raises(RuntimeError, match="AES-256"):
        crypto.private_pem(keys("ES256"), PASSPHRASE)


def test_empty_passphrase_is_rejected(keys: Callable[[str], KeyMaterial]) -> None:
    with pytest.raises(ValueError, match="passphrase"):
        crypto.private_pem(keys("ES256"), b"")


def test_4096_bit_key_survives_encrypted_pem(rsa4096: KeyMaterial) -> None:
    loaded = crypto.load_private_pem(crypto.private_pem(rsa4096, PASSPHRASE), PASSPHRASE, "RS256")
    assert isinstance(loaded.key, rsa.RSAPrivateKey)
    assert loaded.key.key_size == 4096


def _der_nodes(data: bytes) -> Iterator[tuple[int, bytes]]:
    """Every (tag, content) of a DER blob, depth first (independent of the module's reader)."""
    pos = 0
    while pos < len(data):
        tag = data[pos]
        length = data[pos + 1]
        pos += 2
        if length >= 0x80:
            n = length - 0x80
            length = int.from_bytes(data[pos : pos + n], "big")
            pos += n
        content = data[pos : pos + length]
        pos += length
        yield tag, content
        if tag & 0x20:  # constructed
            yield from _der_nodes(content)


def _oid(content: bytes) -> str:
    first, rest = divmod(content[0], 40)
    parts, value = [first, rest], 0
    for byte in content[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    return ".".join(map(str, parts))


def test_encrypted_pem_uses_pbes2_with_aes_256(keys: Callable[[str], KeyMaterial]) -> None:
    pem = crypto.private_pem(keys("ES256"), PASSPHRASE)
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    oids = [_oid(content) for tag, content in _der_nodes(base64.b64decode(body)) if tag == 0x06]
    assert oids[0] == "1.2.840.113549.1.5.13"  # PBES2
    assert oids[1] == "1.2.840.113549.1.5.12"  # PBKDF2
    assert oids[-1] == "2.16.840.1.101.3.4.1.42"  # aes256-CBC (RFC 3565)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")
def test_openssl_sees_aes_256_and_decrypts_the_key(
    tmp_path: Path, keys: Callable[[str], KeyMaterial]
) -> None:
    material = keys("RS256")
    enc = tmp_path / "key.pem"
    enc.write_text(crypto.private_pem(material, PASSPHRASE))
    asn1 = subprocess.run(
        ["openssl", "asn1parse", "-in", str(enc)], capture_output=True, text=True, check=True
    )
    assert ":PBES2" in asn1.stdout
    assert ":aes-256-cbc" in asn1.stdout

    passfile = tmp_path / "pass"
    passfile.write_bytes(PASSPHRASE)
    public = subprocess.run(
        ["openssl", "pkey", "-in", str(enc), "-passin", f"file:{passfile}", "-pubout"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert public.stdout == crypto.public_pem(material)

    wrong = tmp_path / "wrong"
    wrong.write_bytes(b"wrong passphrase")
    argv = ["openssl", "pkey", "-in", str(enc), "-passin", f"file:{wrong}", "-pubout"]
    failed = subprocess.run(argv, check=False, capture_output=True)
    assert failed.returncode != 0


def test_public_pem_is_subject_public_key_info(keys: Callable[[str], KeyMaterial]) -> None:
    material = keys("EdDSA")
    pem = crypto.public_pem(material)
    assert pem.startswith("-----BEGIN PUBLIC KEY-----\n")
    public = serialization.load_pem_public_key(pem.encode())
    assert isinstance(public, ed25519.Ed25519PublicKey)
    assert isinstance(material.key, ed25519.Ed25519PrivateKey)
    assert public == material.key.public_key()


def weak_rsa_key() -> rsa.RSAPrivateKey:
    """A key Keyturn must refuse; generated with cryptography directly, bypassing generate()."""
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505


def _pem(key: Any) -> str:
    return str(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
    )


def test_load_private_pem_checks_type_curve_and_size(keys: Callable[[str], KeyMaterial]) -> None:
    with pytest.raises(ValueError, match="too small"):
        crypto.load_private_pem(_pem(weak_rsa_key()), None, "RS256")
    with pytest.raises(ValueError, match="P-384"):
        crypto.load_private_pem(crypto.private_pem(keys("ES256")), None, "ES384")
    with pytest.raises(ValueError, match="RSA"):
        crypto.load_private_pem(crypto.private_pem(keys("ES256")), None, "PS256")
    with pytest.raises(ValueError, match="Ed25519"):
        crypto.load_private_pem(_pem(ed448.Ed448PrivateKey.generate()), None, "EdDSA")
    with pytest.raises(ValueError, match="EC"):
        crypto.load_private_pem(crypto.private_pem(keys("EdDSA")), None, "ES256")
    with pytest.raises(ValueError, match="load_raw_secret"):
        crypto.load_private_pem(crypto.private_pem(keys("ES256")), None, "HS256")
    with pytest.raises(ValueError, match="corrupt PEM"):
        crypto.load_private_pem(
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", None, "RS256"
        )


# --------------------------------------------------------------------------- no secrets in text


def _secret_texts(material: KeyMaterial) -> list[str]:
    """Every textual form of the secret part of a key."""
    private = crypto.private_jwk(material, "k")
    texts = [v for name, v in private.items() if name in PRIVATE_MEMBERS]
    if crypto.is_symmetric(material.algorithm):
        texts.append(crypto.raw_secret(material))
    else:
        pem = crypto.private_pem(material)
        texts.append("".join(line for line in pem.splitlines() if not line.startswith("-----")))
    return texts


def assert_no_secret_in(text: str, material: KeyMaterial, window: int = 8) -> None:
    for secret in _secret_texts(material):
        assert len(secret) >= window
        for i in range(len(secret) - window + 1):
            assert secret[i : i + window] not in text, "secret material leaked"


@pytest.mark.parametrize("alg", CONTRACT_ALGORITHMS)
def test_repr_and_str_reveal_no_secret(alg: str, keys: Callable[[str], KeyMaterial]) -> None:
    material = keys(alg)
    assert repr(material) == f"KeyMaterial(alg={alg}, <redacted>)"
    for text in (repr(material), str(material), f"{material}", repr([material]), repr({"k": material})):
        assert_no_secret_in(text, material)


def test_the_leak_check_itself_catches_a_leak(keys: Callable[[str], KeyMaterial]) -> None:
    material = keys("HS256")
    with pytest.raises(AssertionError, match="leaked"):
        assert_no_secret_in(f"oops {crypto.raw_secret(material)[5:20]}", material)


def test_error_messages_reveal_no_secret(keys: Callable[[str], KeyMaterial]) -> None:
    hs = keys("HS512")
    messages: list[str] = []

    def capture(fn: Callable[[], object]) -> None:
        with pytest.raises(Exception) as excinfo:  # noqa: PT011 - any type, the message is the point
            fn()
        messages.append(str(excinfo.value))

    capture(lambda: crypto.public_jwk(hs, "k"))
    capture(lambda: crypto.load_raw_secret(crypto.raw_secret(hs)[:30], "HS256"))
    capture(lambda: crypto.load_raw_secret(crypto.raw_secret(hs) + " ", "HS512"))
    capture(lambda: crypto.verify("a.b.c", crypto.private_jwk(hs, "k"), "HS256"))
    capture(lambda: crypto.verify("a.b.c", {**crypto.private_jwk(hs, "k"), "kty": "bogus"}, "HS512"))
    capture(lambda: crypto.verify("a.b.c", {**crypto.private_jwk(hs, "k"), "k": 5}, "HS512"))
    capture(lambda: crypto.thumbprint({"kty": "oct"}))
    for message in messages:
        assert_no_secret_in(message, hs)

    ec_key = keys("ES512")
    pem = crypto.private_pem(ec_key, PASSPHRASE)
    ec_messages: list[str] = []
    for call in (
        lambda: crypto.load_private_pem(pem, b"wrong", "ES512"),
        lambda: crypto.load_private_pem(pem, PASSPHRASE, "ES256"),
        lambda: crypto.verify("x.y.z", crypto.private_jwk(ec_key, "k"), "ES256"),
        lambda: crypto.verify("x.y.z", {**crypto.private_jwk(ec_key, "k"), "x": "@@"}, "ES512"),
    ):
        with pytest.raises(ValueError) as excinfo:  # noqa: PT011
            call()
        ec_messages.append(str(excinfo.value))
    for message in ec_messages:
        assert_no_secret_in(message, ec_key)
        assert PASSPHRASE.decode() not in message


# --------------------------------------------------------------------------- self-test


def test_self_test_rejects_a_mismatched_public_key(
    monkeypatch: pytest.MonkeyPatch, keys: Callable[[str], KeyMaterial]
) -> None:
    material = keys("ES256")
    stranger = crypto.public_jwk(crypto.generate("ES256"), "k")
    monkeypatch.setattr(crypto, "public_jwk", lambda _material, _kid: stranger)
    with pytest.raises(KeySelfTestError, match=r"'k'.*ES256.*TokenVerificationError"):
        crypto.self_test(material, "k")


def test_self_test_rejects_a_mismatched_hmac_secret(
    monkeypatch: pytest.MonkeyPatch, keys: Callable[[str], KeyMaterial]
) -> None:
    material = keys("HS256")
    other = crypto.private_jwk(crypto.generate("HS256"), "k")
    monkeypatch.setattr(crypto, "private_jwk", lambda _material, _kid: other)
    with pytest.raises(KeySelfTestError) as excinfo:
        crypto.self_test(material, "k")
    assert_no_secret_in(str(excinfo.value), material)


def test_self_test_rejects_a_verifier_that_accepts_anything(
    monkeypatch: pytest.MonkeyPatch, keys: Callable[[str], KeyMaterial]
) -> None:
    material = keys("EdDSA")

    def accept_all(token: str, *_args: object, **_kwargs: object) -> dict[str, Any]:
        return dict(jwt.decode(token, options={"verify_signature": False}))

    monkeypatch.setattr(crypto, "verify", accept_all)
    with pytest.raises(KeySelfTestError, match="tampered"):
        crypto.self_test(material, "k")


def test_self_test_rejects_a_signer_that_drops_the_kid(
    monkeypatch: pytest.MonkeyPatch, keys: Callable[[str], KeyMaterial]
) -> None:
    material = keys("ES384")
    real_sign = crypto.sign
    monkeypatch.setattr(crypto, "sign", lambda m, claims, _kid: real_sign(m, claims, "someone-else"))
    with pytest.raises(KeySelfTestError, match="kid"):
        crypto.self_test(material, "k")


def test_self_test_wraps_unexpected_errors(
    monkeypatch: pytest.MonkeyPatch, keys: Callable[[str], KeyMaterial]
) -> None:
    def broken(*_args: object) -> str:
        raise RuntimeError("HSM unavailable")

    monkeypatch.setattr(crypto, "sign", broken)
    with pytest.raises(KeySelfTestError, match="RuntimeError: HSM unavailable"):
        crypto.self_test(keys("RS256"), "k")


# --------------------------------------------------------------------------- fingerprints


@pytest.mark.parametrize("alg", ["RS256", "ES512", "EdDSA"])
def test_fingerprint_is_sha256_of_the_public_key_der(alg: str, keys: Callable[[str], KeyMaterial]) -> None:
    material = keys(alg)
    pem = crypto.public_pem(material)
    der = base64.b64decode("".join(line for line in pem.splitlines() if not line.startswith("-----")))
    fingerprint = crypto.secret_fingerprint(material)
    assert fingerprint == hashlib.sha256(der).hexdigest()[:16]
    assert len(fingerprint) == 16
    assert fingerprint != crypto.secret_fingerprint(crypto.generate(alg))


def test_fingerprint_of_hmac_is_sha256_of_the_secret_text(keys: Callable[[str], KeyMaterial]) -> None:
    material = keys("HS256")
    secret = crypto.raw_secret(material)
    assert crypto.secret_fingerprint(material) == hashlib.sha256(secret.encode()).hexdigest()[:16]
    assert_no_secret_in(crypto.secret_fingerprint(material), material, window=8)


# --------------------------------------------------------------------------- kid templates

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def render(template: str, **overrides: Any) -> str:
    args: dict[str, Any] = {"now": NOW, "n": 3, "name": "api-keys", "namespace": "auth"}
    args.update(overrides)
    return crypto.render_kid_template(template, **args)


def test_kid_template_example_from_the_contract() -> None:
    assert render("{date}_v{n}_prod") == "20260102_v3_prod"


def test_kid_template_all_placeholders() -> None:
    assert render("{namespace}.{name}-{date}T{time}-{n}") == "auth.api-keys-20260102T030405-3"
    assert render("v{n:03d}") == "v003"
    assert render("static") == "static"


def test_kid_template_uses_the_utc_date() -> None:
    plus5 = timezone(timedelta(hours=5))
    assert render("{date}{time}", now=datetime(2026, 1, 2, 1, 0, 0, tzinfo=plus5)) == "20260101200000"


def test_kid_template_requires_an_aware_datetime() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        render("{date}", now=datetime(2026, 1, 2))


@pytest.mark.parametrize(
    ("template", "overrides", "bad"),
    [
        ("{name}/{n}", {}, "'/'"),
        ("{name}", {"name": "api keys"}, "' '"),
        ("kid:{n}", {}, "':'"),
        ("{date}é", {}, "'é'"),
        ("a\nb", {}, "'\\n'"),
    ],
)
def test_kid_template_rejects_bad_characters(template: str, overrides: dict[str, Any], bad: str) -> None:
    with pytest.raises(ValueError, match="not allowed") as excinfo:
        render(template, **overrides)
    assert bad in str(excinfo.value)


@pytest.mark.parametrize(
    "template", ["{foo}", "{0}", "{}", "{name.upper}", "{name[0]}", "{DATE}", "{date}{uid}"]
)
def test_kid_template_rejects_unknown_placeholders(template: str) -> None:
    with pytest.raises(ValueError, match="unknown placeholder"):
        render(template)


@pytest.mark.parametrize("template", ["{date", "date}", "{name!r}", "{n:q}", ""])
def test_kid_template_rejects_malformed_templates(template: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - several distinct messages
        render(template)


def test_kid_template_length_limit() -> None:
    assert len(render("x" * 128)) == 128
    with pytest.raises(ValueError, match="at most 128"):
        render("x" * 129)


@settings(max_examples=200, deadline=None)
@given(template=st.text(max_size=40), n=st.integers(min_value=0, max_value=10**6))
def test_kid_template_output_is_always_a_valid_kid_or_an_error(template: str, n: int) -> None:
    try:
        kid = render(template, n=n)
    except ValueError:
        return
    assert 1 <= len(kid) <= 128
    assert all(ch.isascii() and (ch.isalnum() or ch in "._-") for ch in kid)


# --------------------------------------------------------------------------- concurrency


def test_generation_is_safe_from_threads() -> None:
    algs = ["ES256", "HS256", "EdDSA", "ES384"] * 6
    with ThreadPoolExecutor(max_workers=8) as pool:
        materials = list(pool.map(crypto.generate, algs))
    assert [m.algorithm for m in materials] == algs
    assert len({crypto.thumbprint(m) for m in materials}) == len(algs)
    for material in materials[:4]:
        crypto.self_test(material, "k")
