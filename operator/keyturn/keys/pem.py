"""PEM forms of a key: PKCS#8 (optionally encrypted) as the Secret stores it, SubjectPublicKeyInfo
as verifiers read it, and the loader that turns a stored PEM back into checked `KeyMaterial`.

Encryption is pinned to AES-256: the cipher is read back from the very bytes returned, so a
future `cryptography` default can never weaken it silently.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, Final, cast

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from keyturn.keys.algorithms import is_symmetric
from keyturn.keys.der import pkcs8_cipher_oid
from keyturn.keys.jwk import public_key_from_jwk
from keyturn.keys.material import KeyMaterial, PrivateKey

__all__ = [
    "is_encrypted_pem",
    "load_private_pem",
    "private_pem",
    "public_pem",
    "public_pem_from_jwk",
]

_ENCRYPTED_PEM_HEADER: Final = "-----BEGIN ENCRYPTED PRIVATE KEY-----"
# DER of OID 2.16.840.1.101.3.4.1.42 (aes256-CBC, RFC 3565): the only cipher private_pem emits.
_OID_AES256_CBC: Final = bytes.fromhex("60864801650304012a")


def _private_key(material: KeyMaterial, what: str) -> PrivateKey:
    if isinstance(material.key, str):
        raise ValueError(f"{material.algorithm} keys are HMAC secrets and have no {what}; use raw_secret")
    return material.key


def private_pem(material: KeyMaterial, passphrase: bytes | None = None) -> str:
    """PKCS#8 PEM; with a passphrase, encrypted PKCS#8 (PBES2, PBKDF2-HMAC-SHA256, AES-256-CBC).

    cryptography's BestAvailableEncryption fixes the PBKDF2 iteration count (2048 in
    cryptography 50) and offers no PKCS#8 builder to raise it, so the passphrase itself must be
    high-entropy (e.g. `openssl rand -base64 32`), never a human password. The cipher is checked
    after serialization, so a future library change can never silently weaken it below AES-256.
    """
    key = _private_key(material, "PEM")
    if passphrase is None:
        encryption: serialization.KeySerializationEncryption = serialization.NoEncryption()
    else:
        if not isinstance(passphrase, bytes) or not passphrase:
            raise ValueError("passphrase must be non-empty bytes")
        encryption = serialization.BestAvailableEncryption(passphrase)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption).decode(
        "ascii"
    )
    if passphrase is not None:
        # Check the very bytes we return, not a second serialization (each one has a fresh salt/IV).
        body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
        if pkcs8_cipher_oid(base64.b64decode(body)) != _OID_AES256_CBC:
            raise RuntimeError("cryptography did not encrypt the PKCS#8 key with AES-256-CBC")
    return pem


def public_pem(material: KeyMaterial) -> str:
    """SubjectPublicKeyInfo PEM, the form verifiers read from JWT_PUBLIC_KEY."""
    key = _private_key(material, "public key")
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode("ascii")


def public_pem_from_jwk(jwk: Mapping[str, Any], algorithm: str) -> str:
    """SubjectPublicKeyInfo PEM from a published JWK, so public items never need the private key."""
    if is_symmetric(algorithm):
        raise ValueError(f"{algorithm} keys are symmetric: there is no public PEM")
    key = public_key_from_jwk(jwk, algorithm)
    assert not isinstance(key, bytes)
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def is_encrypted_pem(pem: str) -> bool:
    """Whether a stored PEM is encrypted PKCS#8, so callers can migrate keys when encryption is toggled."""
    return _ENCRYPTED_PEM_HEADER in pem


def load_private_pem(pem: str, passphrase: bytes | None, algorithm: str) -> KeyMaterial:
    """Reload a key the operator stored, checking that it fits `algorithm` (type, curve, RSA >= 2048)."""
    if is_symmetric(algorithm):
        raise ValueError(f"{algorithm} keys are stored as raw secrets; use load_raw_secret")
    encrypted = is_encrypted_pem(pem)
    if encrypted and passphrase is None:
        raise ValueError("the private key PEM is encrypted but no passphrase was given")
    if not encrypted and passphrase is not None:
        raise ValueError("a passphrase was given but the private key PEM is not encrypted")
    try:
        key = serialization.load_pem_private_key(pem.encode("ascii"), password=passphrase)
    except (ValueError, TypeError, UnsupportedAlgorithm, UnicodeError) as exc:
        # cryptography's messages never quote key bytes; keep them for diagnosis.
        hint = "wrong passphrase or corrupt PEM" if encrypted else "corrupt PEM"
        raise ValueError(f"could not load the private key ({hint}): {exc}") from exc
    return KeyMaterial(algorithm, cast(PrivateKey, key))  # type checked by KeyMaterial itself
