"""Turning a published JWKS (RFC 7517) into verification keys, once per reload.

Keys are parsed when the document is loaded, not per token, and each one is pinned to the
algorithm its JWK declares: that pin, not the token header, decides how a token is checked.

The document is hostile until parsed: any bytes, any JSON (nested a million deep, numbers of a
million digits), any type at any level. `parse_jwks` answers with a snapshot or a KeySourceError,
never with another exception.

A document that publishes private key material (`d`, `p`, `q`, `dp`, `dq`, `qi`, `oth`, or a
symmetric key: `kty: oct` or a `k` member) is refused as a whole with LeakedKeyError, since whoever
read it can sign with those keys (see sources.py for what happens to the keys loaded before).
Other entries a verifier must never use are left out and reported (by kid and cause, never
content): keys for another use than `sig`, keys without `alg` (RSA keys would be ambiguous between
RS* and PS*), RSA keys under 2048 bits and curves that do not match the algorithm.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives.asymmetric import ed448, rsa

from keyturn.client.errors import KeySourceError, LeakedKeyError, printable_kid
from keyturn.keys import thumbprints
from keyturn.keys.algorithms import ALGORITHMS, is_symmetric
from keyturn.keys.jwk import public_key_from_jwk

__all__ = ["ASYMMETRIC_ALGORITHMS", "MAX_DOCUMENT_BYTES", "JwksSnapshot", "PublicKey", "parse_jwks"]

# What a JWKS can pin a key to: every algorithm Keyturn knows except the symmetric HS*.
ASYMMETRIC_ALGORITHMS: Final = tuple(alg for alg in ALGORITHMS if not is_symmetric(alg))
# RFC 7518 private members (RSA, EC/OKP `d`) and the symmetric key itself (`k`).
PRIVATE_MEMBERS: Final = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
MIN_RSA_BITS: Final = 2048
# OpenSSL's own ceiling for RSA public operations; larger moduli only cost time.
MAX_RSA_BITS: Final = 16384
MAX_KEYS: Final = 256
MAX_KID_CHARS: Final = 256
# A JWKS of a few keys is a few KiB; the same bound applies to files and HTTP answers.
MAX_DOCUMENT_BYTES: Final = 1 << 20


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class PublicKey:
    """One usable verification key; `key` is a cryptography public-key object.

    `thumbprint` (RFC 7638) identifies the key whatever kid it is published under, so a key whose
    private part leaked is withdrawn under every kid.
    """

    kid: str
    algorithm: str
    key: Any
    thumbprint: str

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
        text = f"kids [{', '.join(self.keys)}]"  # printable: parse_jwks checked each one
        if self.problems:
            text += f"; ignored or withdrawn: {'; '.join(self.problems)}"
        return text

    def without(self, ids: frozenset[str]) -> JwksSnapshot:
        """This snapshot minus the keys whose kid or thumbprint is in `ids` (leaked keys)."""
        gone = [key for key in self.keys.values() if key.kid in ids or key.thumbprint in ids]
        if not gone:
            return self
        keys = {kid: key for kid, key in self.keys.items() if key not in gone}
        notes = tuple(
            f"kid {printable_kid(key.kid)} withdrawn: its private key was published" for key in gone
        )
        return JwksSnapshot(MappingProxyType(keys), self.problems + notes)


def parse_jwks(document: bytes | str | Mapping[str, Any]) -> JwksSnapshot:
    """Parse a JWKS; raises KeySourceError when the document as a whole is unusable.

    An empty `keys` list is a valid document (every token is then refused with `no_keys`); a
    document that is not a JWKS at all is an error, so a reload keeps the previous keys. A
    document with private key material raises LeakedKeyError (a KeySourceError).
    """
    parsed = _load(document)
    entries = parsed.get("keys") if isinstance(parsed, Mapping) else None
    if not isinstance(entries, list):
        raise KeySourceError('JWKS must be a JSON object with a "keys" array')
    if len(entries) > MAX_KEYS:
        raise KeySourceError(f"JWKS has {len(entries)} keys; at most {MAX_KEYS} are accepted")
    _refuse_leaks(entries)
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
        if len(kid) > MAX_KID_CHARS or not kid.isprintable():
            # It would become a metric label and a log field: control characters, lone surrogates
            # and megabyte kids have no business there.
            problems.append(f"entry {index} has a kid that is not printable text of at most {MAX_KID_CHARS}")
            continue
        if kid in keys:
            problems.append(f"kid {printable_kid(kid)} appears twice; the first entry is used")
            continue
        try:
            alg, key = _public_key(entry)
            thumbprint = thumbprints.thumbprint(entry)
        except ValueError as exc:
            problems.append(f"kid {printable_kid(kid)}: {exc}")
            continue
        keys[kid] = PublicKey(kid, alg, key, thumbprint)
    return JwksSnapshot(MappingProxyType(keys), tuple(problems))


def _load(document: object) -> object:
    """The JSON value of the document; every failure is a KeySourceError naming the cause."""
    if isinstance(document, Mapping):
        return document
    if not isinstance(document, bytes | str):
        raise KeySourceError(f"JWKS must be JSON text or a mapping, not {type(document).__name__}")
    if len(document) > MAX_DOCUMENT_BYTES:
        raise KeySourceError(f"JWKS is larger than {MAX_DOCUMENT_BYTES} bytes")
    try:
        return json.loads(document)
    except json.JSONDecodeError as exc:
        raise KeySourceError(f"JWKS is not JSON ({exc.msg} at line {exc.lineno})") from None
    except UnicodeDecodeError:
        raise KeySourceError("JWKS is not UTF-8 text") from None
    except RecursionError:
        raise KeySourceError("JWKS is nested too deeply to be a JWKS") from None
    except ValueError:  # e.g. an integer beyond sys.get_int_max_str_digits()
        raise KeySourceError("JWKS holds a number too large to read") from None


def _refuse_leaks(entries: list[object]) -> None:
    """LeakedKeyError when any entry carries private or symmetric key material."""
    leaks: list[str] = []
    ids: set[str] = set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            continue
        members = [name for name in PRIVATE_MEMBERS if name in entry]
        symmetric = entry.get("kty") == "oct"
        if not members and not symmetric:
            continue
        kid = entry.get("kid")
        named = isinstance(kid, str) and bool(kid)
        what = f"kid {printable_kid(kid)}" if named else f"entry {index}"
        leaks.append(f"{what}: {', '.join(members) if members else 'a symmetric (oct) key'}")
        if named:
            ids.add(str(kid))
        with contextlib.suppress(ValueError):  # no usable public members: the kid is all there is
            ids.add(thumbprints.thumbprint(entry))
    if leaks:
        raise LeakedKeyError(
            f"JWKS publishes private key material ({'; '.join(leaks)}): anyone who read it can sign "
            "with those keys, so the whole document is refused and they are never trusted again",
            frozenset(ids),
        )


def _public_key(jwk: Mapping[str, Any]) -> tuple[str, Any]:
    """The pinned algorithm and public key of one JWK (messages never echo members).

    The JWKS-specific refusals come first; keyturn.keys.jwk then checks kty, curve and members
    exactly as it does for the keys Keyturn publishes.
    """
    if jwk.get("use", "sig") != "sig":
        raise ValueError("not a signature key (use is not 'sig')")
    alg = jwk.get("alg")
    if not isinstance(alg, str):
        raise ValueError("no alg; the algorithm must be pinned by the JWK")
    if alg not in ASYMMETRIC_ALGORITHMS:
        raise ValueError(f"unsupported alg {alg[:16]!r}")
    if alg == "EdDSA" and jwk.get("crv") == "Ed448":
        return alg, _ed448_key(jwk)
    key = public_key_from_jwk(jwk, alg)
    if isinstance(key, rsa.RSAPublicKey) and not MIN_RSA_BITS <= key.key_size <= MAX_RSA_BITS:
        raise ValueError(
            f"RSA key of {key.key_size} bits; between {MIN_RSA_BITS} and {MAX_RSA_BITS} are accepted"
        )
    return alg, key


def _ed448_key(jwk: Mapping[str, Any]) -> ed448.Ed448PublicKey:
    """keyturn.keys knows only Ed25519, the curve Keyturn generates, but a JWKS from another
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
