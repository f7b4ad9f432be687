"""The JWA algorithms Keyturn signs with, and what each one needs (family, hash, curve).

The one table of algorithms: the key code, the client and the spec (domain/spec.py derives its
sets from it) all read it. A leaf module. Immutable on purpose, since keys are generated from
several threads at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Literal, TypeAlias

from cryptography.hazmat.primitives.asymmetric import ec

__all__ = [
    "ALGORITHMS",
    "DEFAULT_RSA_KEY_SIZE",
    "EC_CURVES",
    "FAMILY",
    "MIN_RSA_KEY_SIZE",
    "RSA_KEY_SIZES",
    "Family",
    "check_algorithm",
    "family",
    "hash_size",
    "is_symmetric",
]

Family: TypeAlias = Literal["RSA", "EC", "OKP", "HMAC"]

FAMILY: Final[Mapping[str, Family]] = MappingProxyType(
    {
        "RS256": "RSA",
        "RS384": "RSA",
        "RS512": "RSA",
        "PS256": "RSA",
        "PS384": "RSA",
        "PS512": "RSA",
        "ES256": "EC",
        "ES384": "EC",
        "ES512": "EC",
        "EdDSA": "OKP",
        "HS256": "HMAC",
        "HS384": "HMAC",
        "HS512": "HMAC",
    }
)
ALGORITHMS: Final[tuple[str, ...]] = tuple(FAMILY)
RSA_KEY_SIZES: Final[tuple[int, ...]] = (2048, 3072, 4096)
DEFAULT_RSA_KEY_SIZE: Final = 2048
MIN_RSA_KEY_SIZE: Final = 2048

_HASH_SIZE: Final[Mapping[str, int]] = MappingProxyType(
    {alg: 64 if alg == "EdDSA" else int(alg[2:]) // 8 for alg in ALGORITHMS}
)
# The curve each ES* algorithm requires, as a cryptography type and as a JWK `crv`.
EC_CURVES: Final[Mapping[str, tuple[type[ec.EllipticCurve], str]]] = MappingProxyType(
    {
        "ES256": (ec.SECP256R1, "P-256"),
        "ES384": (ec.SECP384R1, "P-384"),
        "ES512": (ec.SECP521R1, "P-521"),
    }
)


def check_algorithm(algorithm: object) -> Family:
    """Family of an untrusted algorithm name; ValueError for anything Keyturn does not sign with."""
    if not isinstance(algorithm, str):
        raise ValueError(f"algorithm must be a string, not {type(algorithm).__name__}")
    if algorithm.strip().lower() == "none":
        raise ValueError("algorithm 'none' (unsigned tokens) is never allowed")
    fam = FAMILY.get(algorithm)
    if fam is None:
        raise ValueError(f"unsupported algorithm {algorithm[:32]!r}; expected one of {', '.join(ALGORITHMS)}")
    return fam


def family(algorithm: str) -> Family:
    """Key family of a JWA algorithm; raises ValueError for anything Keyturn does not sign with."""
    return check_algorithm(algorithm)


def hash_size(algorithm: str) -> int:
    """Digest size in bytes of the algorithm's hash (EdDSA: 64, Ed25519 hashes with SHA-512).

    For HS* this is also the minimum HMAC key size (RFC 7518 section 3.2).
    """
    check_algorithm(algorithm)
    return _HASH_SIZE[algorithm]


def is_symmetric(algorithm: str) -> bool:
    """True for HS*: such keys are never published in the JWKS."""
    return check_algorithm(algorithm) == "HMAC"
