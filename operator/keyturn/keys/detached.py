"""Signatures over a signing input someone else assembled, and public keys as PKIX DER.

kube-apiserver's external signer protocol sends the payload and expects the header and the
signature back, so the JWS is assembled outside this process: `sign_input` signs
`base64url(header) "." base64url(payload)` exactly as JWS (RFC 7515) defines it (ECDSA as the
fixed-size r || s of RFC 7518, not DER). The apiserver wants verification keys as PKIX
(SubjectPublicKeyInfo) DER, `spki_der` gives that from a published JWK.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import serialization
from jwt import get_algorithm_by_name

from keyturn.keys.algorithms import check_algorithm
from keyturn.keys.jwk import public_key_from_jwk
from keyturn.keys.material import KeyMaterial

__all__ = ["material_spki_der", "sign_input", "spki_der"]


def sign_input(material: KeyMaterial, signing_input: bytes) -> bytes:
    """The raw JWS signature of `signing_input` with the key's own algorithm (asymmetric keys only)."""
    if check_algorithm(material.algorithm) == "HMAC" or isinstance(material.key, str):
        raise ValueError(f"{material.algorithm} keys are shared secrets: no external signer signs with them")
    algorithm = get_algorithm_by_name(material.algorithm)
    return algorithm.sign(signing_input, material.key)


def spki_der(jwk: Mapping[str, Any], algorithm: str) -> bytes:
    """The PKIX DER of a public JWK, checked against `algorithm` (type, curve, RSA size)."""
    key = public_key_from_jwk(jwk, algorithm)
    if isinstance(key, bytes):
        raise ValueError(f"{algorithm} keys are shared secrets: they have no public key")
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def material_spki_der(material: KeyMaterial) -> bytes:
    """The PKIX DER of a private key's public half, to compare it with what a record publishes."""
    if isinstance(material.key, str):
        raise ValueError(f"{material.algorithm} keys are shared secrets: they have no public key")
    return material.key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
