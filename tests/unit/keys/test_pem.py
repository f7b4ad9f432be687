"""keyturn.keys.pem: PKCS#8 round trips, encryption pinned to PBES2/AES-256 (checked with an independent
DER reader and, when present, openssl), and loaders that check type, curve and size.
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed448, ed25519, rsa

from keyturn.keys.jwk import public_jwk
from keyturn.keys.material import KeyMaterial
from keyturn.keys.pem import is_encrypted_pem, load_private_pem, private_pem, public_pem
from keyturn.keys.signing import sign, verify
from keyturn.keys.thumbprints import secret_fingerprint, thumbprint
from unit.keys.support import ASYMMETRIC, PASSPHRASE, claims_now, weak_rsa_key


@pytest.mark.parametrize("alg", ASYMMETRIC)
def test_private_pem_round_trip(alg: str, keys: Callable[[str], KeyMaterial]) -> None:
    material = keys(alg)
    pem = private_pem(material)
    assert pem.startswith("-----BEGIN PRIVATE KEY-----\n")
    loaded = load_private_pem(pem, None, alg)
    assert public_pem(loaded) == public_pem(material)
    assert secret_fingerprint(loaded) == secret_fingerprint(material)
    assert thumbprint(loaded) == thumbprint(material)
    token = sign(loaded, claims_now(), "k")
    assert verify(token, public_jwk(material, "k"), alg)["sub"] == "user-1"


@pytest.mark.parametrize("alg", ["RS512", "ES256", "EdDSA"])
def test_encrypted_private_pem_round_trip(alg: str, keys: Callable[[str], KeyMaterial]) -> None:
    material = keys(alg)
    pem = private_pem(material, PASSPHRASE)
    assert pem.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    assert is_encrypted_pem(pem)
    assert not is_encrypted_pem(private_pem(material))
    loaded = load_private_pem(pem, PASSPHRASE, alg)
    assert public_pem(loaded) == public_pem(material)

    with pytest.raises(ValueError, match="wrong passphrase") as excinfo:
        load_private_pem(pem, b"not the passphrase", alg)
    assert "not the passphrase" not in str(excinfo.value)
    with pytest.raises(ValueError, match="no passphrase"):
        load_private_pem(pem, None, alg)
    with pytest.raises(ValueError, match="not encrypted"):
        load_private_pem(private_pem(material), PASSPHRASE, alg)


def test_private_pem_refuses_to_emit_anything_but_aes_256(
    monkeypatch: pytest.MonkeyPatch, keys: Callable[[str], KeyMaterial]
) -> None:
    """The runtime guard is wired in: pretend AES-256 were some other cipher and nothing comes out."""
    monkeypatch.setattr("keyturn.keys.pem._OID_AES256_CBC", bytes.fromhex("608648016503040102"))  # aes128-CBC
    with pytest.raises(RuntimeError, match="AES-256"):
        private_pem(keys("ES256"), PASSPHRASE)


def test_empty_passphrase_is_rejected(keys: Callable[[str], KeyMaterial]) -> None:
    with pytest.raises(ValueError, match="passphrase"):
        private_pem(keys("ES256"), b"")


def test_4096_bit_key_survives_encrypted_pem(rsa4096: KeyMaterial) -> None:
    loaded = load_private_pem(private_pem(rsa4096, PASSPHRASE), PASSPHRASE, "RS256")
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
    pem = private_pem(keys("ES256"), PASSPHRASE)
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    oids = [_oid(content) for tag, content in _der_nodes(base64.b64decode(body)) if tag == 0x06]
    assert oids[0] == "1.2.840.113549.1.5.13"  # PBES2
    assert oids[1] == "1.2.840.113549.1.5.12"  # PBKDF2
    assert oids[-1] == "2.16.840.1.101.3.4.1.42"  # aes256-CBC (RFC 3565)


@pytest.mark.debian("openssl")
def test_openssl_sees_aes_256_and_decrypts_the_key(
    tmp_path: Path, keys: Callable[[str], KeyMaterial]
) -> None:
    material = keys("RS256")
    enc = tmp_path / "key.pem"
    enc.write_text(private_pem(material, PASSPHRASE))
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
    assert public.stdout == public_pem(material)

    wrong = tmp_path / "wrong"
    wrong.write_bytes(b"wrong passphrase")
    argv = ["openssl", "pkey", "-in", str(enc), "-passin", f"file:{wrong}", "-pubout"]
    failed = subprocess.run(argv, check=False, capture_output=True)
    assert failed.returncode != 0


def test_public_pem_is_subject_public_key_info(keys: Callable[[str], KeyMaterial]) -> None:
    material = keys("EdDSA")
    pem = public_pem(material)
    assert pem.startswith("-----BEGIN PUBLIC KEY-----\n")
    public = serialization.load_pem_public_key(pem.encode())
    assert isinstance(public, ed25519.Ed25519PublicKey)
    assert isinstance(material.key, ed25519.Ed25519PrivateKey)
    assert public == material.key.public_key()


def _pem(key: Any) -> str:
    return str(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
    )


def test_load_private_pem_checks_type_curve_and_size(keys: Callable[[str], KeyMaterial]) -> None:
    with pytest.raises(ValueError, match="too small"):
        load_private_pem(_pem(weak_rsa_key()), None, "RS256")
    with pytest.raises(ValueError, match="P-384"):
        load_private_pem(private_pem(keys("ES256")), None, "ES384")
    with pytest.raises(ValueError, match="RSA"):
        load_private_pem(private_pem(keys("ES256")), None, "PS256")
    with pytest.raises(ValueError, match="Ed25519"):
        load_private_pem(_pem(ed448.Ed448PrivateKey.generate()), None, "EdDSA")
    with pytest.raises(ValueError, match="EC"):
        load_private_pem(private_pem(keys("EdDSA")), None, "ES256")
    with pytest.raises(ValueError, match="load_raw_secret"):
        load_private_pem(private_pem(keys("ES256")), None, "HS256")
    with pytest.raises(ValueError, match="corrupt PEM"):
        load_private_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", None, "RS256")
