"""Compact JWS: sign with a `KeyMaterial`, verify against a JWK or a `KeyMaterial`.

PyJWT does the JOSE work; this module pins what it must not choose by itself: exactly the caller's
algorithm, a minimum key length, and a separate error type for "the token is bad" (as opposed to
ValueError, "the key or the input is unusable").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jwt

from keyturn.keys.algorithms import check_algorithm
from keyturn.keys.jwk import VerificationKey, public_key_from_jwk
from keyturn.keys.material import KeyMaterial, PrivateKey

__all__ = ["TokenVerificationError", "sign", "verify"]


class TokenVerificationError(Exception):
    """A token did not verify; kept separate from ValueError, which means "bad input"."""


def _signing_key(material: KeyMaterial) -> PrivateKey | bytes:
    return material.key.encode("utf-8") if isinstance(material.key, str) else material.key


def sign(material: KeyMaterial, claims: Mapping[str, Any], kid: str) -> str:
    """Compact JWS with `alg` and `kid` in the header, so verifiers pick the key from the JWKS."""
    if not isinstance(kid, str) or not kid:
        raise ValueError("kid must be a non-empty string")
    return jwt.encode(
        dict(claims), _signing_key(material), algorithm=material.algorithm, headers={"kid": kid}
    )


def verify(
    token: str,
    key: KeyMaterial | Mapping[str, Any],
    algorithm: str,
    *,
    kid: str | None = None,
    audience: str | None = None,
    require: Sequence[str] = (),
    leeway: float = 0,
) -> dict[str, Any]:
    """Verify a token with exactly `algorithm` against a JWK (public, or oct for HS*) or a KeyMaterial.

    Raises TokenVerificationError for a bad token and ValueError for an unusable key. `kid`,
    when given, must equal the header's kid, which is how verifiers select keys.
    """
    check_algorithm(algorithm)
    vkey: VerificationKey
    if isinstance(key, KeyMaterial):
        if key.algorithm != algorithm:
            raise ValueError(f"key is for {key.algorithm}, not {algorithm}")
        vkey = key.key.encode("utf-8") if isinstance(key.key, str) else key.key.public_key()
    else:
        vkey = public_key_from_jwk(key, algorithm)
    try:
        if kid is not None and jwt.get_unverified_header(token).get("kid") != kid:
            raise TokenVerificationError(f"token kid does not match {kid!r}")
        return jwt.decode(
            token,
            vkey,
            algorithms=[algorithm],
            audience=audience,
            leeway=leeway,
            options={"require": list(require), "enforce_minimum_key_length": True},
        )
    except jwt.PyJWTError as exc:
        raise TokenVerificationError(f"{type(exc).__name__}: {exc}") from exc
