"""Names for a key that never reveal it: the RFC 7638 thumbprint (kids, JWKS entries) and the
audit fingerprint (history records)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import serialization

from keyturn.keys.jwk import PUBLIC_MEMBERS, library_jwk
from keyturn.keys.material import KeyMaterial, b64url

__all__ = ["secret_fingerprint", "thumbprint"]


def thumbprint(key: KeyMaterial | Mapping[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint (base64url, no padding) of the public JWK.

    Accepts a KeyMaterial or any JWK mapping; only the required public members are hashed, so a
    private JWK gives the same value as its public half. For HS* it is the thumbprint of the
    symmetric JWK {"k", "kty"}: a one-way hash of a secret with at least 256 bits of entropy, so
    publishing it as a kid reveals nothing usable, but it does let anyone holding a candidate
    secret confirm it, which is why HS* secrets must never be low-entropy.
    """
    jwk: Mapping[str, Any] = library_jwk(key) if isinstance(key, KeyMaterial) else key
    kty = jwk.get("kty")
    if not isinstance(kty, str) or kty not in PUBLIC_MEMBERS:
        raise ValueError("JWK has a missing or unsupported 'kty' (expected RSA, EC, OKP or oct)")
    required: dict[str, str] = {"kty": kty}
    for name in PUBLIC_MEMBERS[kty]:
        value = jwk.get(name)
        if not isinstance(value, str) or not value:
            raise ValueError(f"{kty} JWK lacks the required member {name!r}")
        required[name] = value
    canonical = json.dumps(required, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def secret_fingerprint(material: KeyMaterial) -> str:
    """First 16 hex chars of SHA-256 over the public key (DER SPKI) or the HMAC secret's UTF-8 bytes.

    For audit records, which must name a key without containing it. Plain SHA-256 on purpose so
    an auditor can recompute it: `openssl pkey -pubout -outform DER | sha256sum` or
    `printf %s "$JWT_SECRET" | sha256sum`. 64 bits shown of a >=256-bit secret reveal nothing usable.
    """
    if isinstance(material.key, str):
        data = material.key.encode("utf-8")
    else:
        data = material.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    return hashlib.sha256(data).hexdigest()[:16]
