"""Turning a published JWKS (RFC 7517) into verification keys, once per reload.

Keys are parsed when the document is loaded, not per token, and each one is pinned to the
algorithm its JWK declares: that pin, not the token header, decides how a token is checked.
Entries a verifier must never use are left out and reported (by kid and cause, never content):
symmetric `oct` keys (a JWKS is public, so such a key would let anyone forge tokens), keys for
another use than `sig`, keys without `alg` (RSA keys would be ambiguous between RS* and PS*),
RSA keys under 2048 bits and curves that do not match the algorithm. Only public members are
read, so a JWKS that wrongly carries private members still yields public keys only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives.asymmetric import ed448, rsa

from keyturn import crypto
from keyturn.client.errors import KeySourceError, printable_kid

__all__ = ["ASYMMETRIC_ALGORITHMS", "JwksSnapshot", "PublicKey", "parse_jwks"]

# What a JWKS can pin a key to: every algorithm Keyturn knows except the symmetric HS*.
ASYMMETRIC_ALGORITHMS: Final = tuple(alg for alg in crypto.ALGORITHMS if not crypto.is_symmetric(alg))
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
MIN_RSA_BITS: Final = 2048
MAX_KEYS: Final = 256


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class PublicKey:
    """One usable verification key; `key` is a cryptography public-key object."""

    kid: str
    algorithm: str
    key: Any

    def __repr__(self) -> str:
        return f"PublicKey(kid={self.kid!r}, alg={self.algorithm})"


@dataclass(frozen=True, slots=True)
class JwksSnapshot:
    """The keys of one version of the document, in document order (current key first)."""

    keys: Mapping[str, PublicKey]
    problems: tuple[str, ...] = field(default=())

    @property
    def kids(self) -> tuple[str, ...]:
        return tuple(self.keys)

    def describe(self) -> str:
        text = f"kids [{', '.join(self.keys)}]"
        if self.problems:
            text += f"; ignored or repaired: {'; '.join(self.problems)}"
        return text


def parse_jwks(document: bytes | str | Mapping[str, Any]) -> JwksSnapshot:
    """Parse a JWKS; raises KeySourceError when the document as a whole is unusable.

    An empty `keys` list is a valid document (every token is then refused with `no_keys`); a
    document that is not a JWKS at all is an error, so a reload keeps the previous keys.
    """
    if isinstance(document, Mapping):
        parsed: object = document
    else:
        try:
            parsed = json.loads(document)
        except json.JSONDecodeError as exc:
            raise KeySourceError(f"JWKS is not JSON ({exc.msg} at line {exc.lineno})") from None
        except UnicodeDecodeError:
            raise KeySourceError("JWKS is not UTF-8 text") from None
    if not isinstance(parsed, Mapping) or not isinstance(parsed.get("keys"), list):
        raise KeySourceError('JWKS must be a JSON object with a "keys" array')
    entries: list[object] = parsed["keys"]
    if len(entries) > MAX_KEYS:
        raise KeySourceError(f"JWKS has {len(entries)} keys; at most {MAX_KEYS} are accepted")
    keys: dict[str, PublicKey] = {}
    problems: list[str] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            problems.append(f"entry {index} is not an object")
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid:
            problems.append(f"entry {index} has no kid")
            continue
        if kid in keys:
            problems.append(f"kid {printable_kid(kid)} appears twice; the first entry is used")
            continue
        try:
            key = _public_key(entry)
        except ValueError as exc:
            problems.append(f"kid {printable_kid(kid)}: {exc}")
            continue
        if _PRIVATE_MEMBERS & entry.keys():
            problems.append(f"kid {printable_kid(kid)} carries private members; only its public part is used")
        keys[kid] = PublicKey(kid, str(entry["alg"]), key)
    return JwksSnapshot(MappingProxyType(keys), tuple(problems))


def _public_key(jwk: Mapping[str, Any]) -> Any:
    """The public key of one JWK, checked against its own `alg` (messages never echo members).

    The JWKS-specific refusals come first; keyturn.crypto then checks kty, curve and members
    exactly as it does for the keys Keyturn publishes.
    """
    if jwk.get("kty") == "oct":
        raise ValueError("symmetric (oct) key in a public JWKS; never used for verification")
    if jwk.get("use", "sig") != "sig":
        raise ValueError("not a signature key (use is not 'sig')")
    alg = jwk.get("alg")
    if not isinstance(alg, str):
        raise ValueError("no alg; the algorithm must be pinned by the JWK")
    if alg not in ASYMMETRIC_ALGORITHMS:
        raise ValueError(f"unsupported alg {alg[:16]!r}")
    if alg == "EdDSA" and jwk.get("crv") == "Ed448":
        return _ed448_key(jwk)
    key = crypto.public_key_from_jwk(jwk, alg)
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise ValueError(f"RSA key of {key.key_size} bits; at least {MIN_RSA_BITS} are required")
    return key


def _ed448_key(jwk: Mapping[str, Any]) -> ed448.Ed448PublicKey:
    """keyturn.crypto knows only Ed25519, the curve Keyturn generates, but a JWKS from another
    issuer (`from_url`) may publish Ed448 keys, and verifiers relying on them must keep working."""
    if jwk.get("kty") != "OKP":
        raise ValueError("EdDSA needs kty OKP")
    try:
        key = jwt.get_algorithm_by_name("EdDSA").from_jwk({"kty": "OKP", "crv": "Ed448", "x": jwk.get("x")})
    except (jwt.PyJWTError, ValueError, TypeError, KeyError):
        raise ValueError("not a valid EdDSA public key") from None
    if not isinstance(key, ed448.Ed448PublicKey):
        raise ValueError("not a valid EdDSA public key")
    return key
