"""`KeyMaterial`, the one object that holds a signing key, and the HMAC secret's text form.

A `KeyMaterial` checks on construction that its key fits its algorithm (type, curve, RSA size,
HMAC length), so every other function can trust it; its repr never shows the key. For HS* the
secret *text* is the key, which is why its raw form lives next to the class and not with PEM.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import TypeAlias

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from keyturn.keys.algorithms import EC_CURVES, MIN_RSA_KEY_SIZE, check_algorithm, hash_size, is_symmetric

__all__ = ["KeyMaterial", "PrivateKey", "b64url", "load_raw_secret", "raw_secret"]

PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@dataclass(frozen=True, eq=False, repr=False, slots=True)
class KeyMaterial:
    """One signing key: the private key object, or for HS* the HMAC secret text.

    For HS* the secret *string* is the key: its UTF-8 bytes are what HMAC uses, exactly as an
    application that reads it from an env var like JWT_SECRET would. Equality is identity
    (eq=False) so that secrets are never compared with a short-circuiting ``==``.
    """

    algorithm: str
    key: PrivateKey | str

    def __post_init__(self) -> None:
        _check_key(self.algorithm, self.key)

    def __repr__(self) -> str:
        return f"KeyMaterial(alg={self.algorithm}, <redacted>)"

    __str__ = __repr__


def _check_key(algorithm: str, key: object) -> None:
    """Reject a key whose type, curve or size does not fit the algorithm (messages never show the key)."""
    fam = check_algorithm(algorithm)
    if fam == "RSA":
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{algorithm} needs an RSA private key, got {_kind(key)}")
        if key.key_size < MIN_RSA_KEY_SIZE:
            raise ValueError(f"RSA key of {key.key_size} bits is too small; at least {MIN_RSA_KEY_SIZE}")
    elif fam == "EC":
        curve_type, crv = EC_CURVES[algorithm]
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{algorithm} needs an EC {crv} private key, got {_kind(key)}")
        if not isinstance(key.curve, curve_type):
            raise ValueError(f"{algorithm} needs curve {crv}, got {key.curve.name}")
    elif fam == "OKP":
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise ValueError(f"{algorithm} needs an Ed25519 private key, got {_kind(key)}")
    else:
        if not isinstance(key, str):
            raise ValueError(f"{algorithm} needs the HMAC secret as a string, got {_kind(key)}")
        minimum = hash_size(algorithm)
        size = len(key.encode("utf-8"))
        if size < minimum:
            raise ValueError(f"{algorithm} secret is {size} bytes; at least {minimum} are required")
        if key != key.strip():
            raise ValueError(f"{algorithm} secret has leading or trailing whitespace")


def _kind(key: object) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return f"RSA-{key.key_size}"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return f"EC {key.curve.name}"
    if isinstance(key, str):
        return "an HMAC secret"
    return type(key).__name__


def raw_secret(material: KeyMaterial) -> str:
    """The HMAC secret text, exactly what goes into an env var such as JWT_SECRET (HS* only)."""
    if not isinstance(material.key, str):
        raise ValueError(f"{material.algorithm} is asymmetric and has no raw secret; use private_pem")
    return material.key


def load_raw_secret(secret: str, algorithm: str) -> KeyMaterial:
    """Reload a stored HMAC secret; its UTF-8 bytes are the key, unchanged."""
    if not is_symmetric(algorithm):
        raise ValueError(f"{algorithm} is asymmetric; use load_private_pem")
    return KeyMaterial(algorithm, secret)


def b64url(data: bytes) -> str:
    """base64url without padding: the text of HMAC secrets, JWK members and thumbprints."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
