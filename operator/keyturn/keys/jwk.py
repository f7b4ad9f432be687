"""JWK (RFC 7517) in both directions: the public JWK for the JWKS, the private JWK for the Secret's
`jwk`/`jwks` items, and a verification key read back from a JWK.

Members are whitelisted per key type both ways: nothing PyJWT adds, and no private member, slips
into a public JWK, and no error message ever echoes a JWK (it may hold private members).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final, TypeAlias, cast

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, HMACAlgorithm, OKPAlgorithm, RSAAlgorithm

from keyturn.keys.algorithms import EC_CURVES, Family, check_algorithm, family, is_symmetric
from keyturn.keys.material import KeyMaterial

__all__ = [
    "JWK_KTY",
    "PUBLIC_MEMBERS",
    "VerificationKey",
    "library_jwk",
    "private_jwk",
    "public_jwk",
    "public_key_from_jwk",
]

VerificationKey: TypeAlias = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | bytes

JWK_KTY: Final[Mapping[Family, str]] = MappingProxyType(
    {"RSA": "RSA", "EC": "EC", "OKP": "OKP", "HMAC": "oct"}
)
# Public members per kty; RFC 7638 section 3.2 requires exactly these (plus kty) in a thumbprint.
PUBLIC_MEMBERS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {"RSA": ("n", "e"), "EC": ("crv", "x", "y"), "OKP": ("crv", "x"), "oct": ("k",)}
)
_PRIVATE_MEMBERS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {"RSA": ("d", "p", "q", "dp", "dq", "qi"), "EC": ("d",), "OKP": ("d",), "oct": ()}
)


def library_jwk(material: KeyMaterial) -> dict[str, Any]:
    """Full JWK members from PyJWT (which pads EC coordinates to the curve size, RFC 7518 6.2.1.2)."""
    key = material.key
    if isinstance(key, str):
        return HMACAlgorithm.to_jwk(key, as_dict=True)
    if isinstance(key, rsa.RSAPrivateKey):
        return RSAAlgorithm.to_jwk(key, as_dict=True)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return ECAlgorithm.to_jwk(key, as_dict=True)
    return OKPAlgorithm.to_jwk(key, as_dict=True)


def _jwk(material: KeyMaterial, kid: str, *, private: bool) -> dict[str, str]:
    if not isinstance(kid, str) or not kid:
        raise ValueError("kid must be a non-empty string")
    full = library_jwk(material)
    kty = JWK_KTY[family(material.algorithm)]
    members = PUBLIC_MEMBERS[kty] + (_PRIVATE_MEMBERS[kty] if private else ())
    # Whitelist rather than copy: nothing PyJWT adds (key_ops, ...) or a private member can slip in.
    out = {"kty": kty, "kid": kid, "use": "sig", "alg": material.algorithm}
    out.update({name: str(full[name]) for name in members})
    return out


def public_jwk(material: KeyMaterial, kid: str) -> dict[str, str]:
    """RFC 7517 public JWK for the JWKS; HS* raises ValueError because a symmetric key is never published."""
    if is_symmetric(material.algorithm):
        raise ValueError(f"{material.algorithm} keys are symmetric and have no public JWK")
    return _jwk(material, kid, private=False)


def private_jwk(material: KeyMaterial, kid: str) -> dict[str, str]:
    """Full private JWK (HS*: kty oct with k) for the Secret's `jwk`/`jwks` formats only."""
    return _jwk(material, kid, private=True)


def public_key_from_jwk(jwk: Mapping[str, Any], algorithm: str) -> VerificationKey:
    """Verification key from a JWK, refusing one meant for another algorithm or use.

    Only the public members (for oct: k) are read, and errors never echo the JWK: PyJWT's own
    messages would print the whole dict, private members included.
    """
    fam = check_algorithm(algorithm)
    kty = JWK_KTY[fam]
    if jwk.get("kty") != kty:
        raise ValueError(f"{algorithm} needs a JWK with kty {kty!r}")
    if jwk.get("alg", algorithm) != algorithm:
        raise ValueError(f"JWK is for another algorithm than {algorithm}")
    if jwk.get("use", "sig") != "sig":
        raise ValueError("JWK is not a signature key (use != 'sig')")
    if fam == "EC" and jwk.get("crv") != EC_CURVES[algorithm][1]:
        raise ValueError(f"{algorithm} needs curve {EC_CURVES[algorithm][1]}")
    if fam == "OKP" and jwk.get("crv") != "Ed25519":
        raise ValueError("EdDSA keys must use curve Ed25519")
    members = {"kty": kty} | {name: jwk.get(name) for name in PUBLIC_MEMBERS[kty]}
    try:
        loaded: object = jwt.get_algorithm_by_name(algorithm).from_jwk(members)
    except (jwt.PyJWTError, ValueError, TypeError, KeyError):
        raise ValueError(f"the JWK is not a valid {algorithm} key") from None
    expected: type | tuple[type, ...] = {
        "RSA": rsa.RSAPublicKey,
        "EC": ec.EllipticCurvePublicKey,
        "OKP": ed25519.Ed25519PublicKey,
        "HMAC": bytes,
    }[fam]
    if not isinstance(loaded, expected):
        raise ValueError(f"the JWK is not a valid {algorithm} public key")
    return cast(VerificationKey, loaded)
