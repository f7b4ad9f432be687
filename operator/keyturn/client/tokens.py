"""What every verifier does the same way: read the header, call PyJWT, name the failure.

The header is read before any key is chosen, but nothing in it is trusted except to *select*:
the kid picks a key and the alg must then equal the algorithm pinned to that key.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any, Final

import jwt

from keyturn.client.errors import VerificationError
from keyturn.client.reasons import Reason

__all__ = ["Header", "decode", "read_header"]

# Generous for any real token, small enough that a junk request cannot make us base64 megabytes.
MAX_TOKEN_CHARS: Final = 16 * 1024

# Fixed texts, never PyJWT's own messages: those may quote token contents.
_DETAIL: Final = {
    Reason.MALFORMED: "not a well-formed JWS/JWT",
    Reason.BAD_SIGNATURE: "signature does not verify",
    Reason.EXPIRED: "token has expired",
    Reason.NOT_YET_VALID: "token is not valid yet (nbf/iat in the future)",
    Reason.BAD_AUDIENCE: "audience does not match",
    Reason.BAD_ISSUER: "issuer does not match",
    Reason.MISSING_CLAIM: "a required claim is missing",
    Reason.INVALID_CLAIMS: "a registered claim is invalid",
    Reason.WRONG_ALG: "algorithm not accepted for this key",
    Reason.MISSING_KID: "token header has no kid",
    Reason.UNKNOWN_KID: "no loaded key has this kid",
    Reason.NO_KEYS: "the verifier has no keys loaded",
    Reason.ERROR: "verifier error",
}


class Header:
    """The two header members a verifier looks at, with their types checked."""

    __slots__ = ("alg", "kid")

    def __init__(self, alg: str, kid: str | None) -> None:
        self.alg = alg
        self.kid = kid


def read_header(token: object) -> Header:
    """Parse the protected header; `alg: none` is refused here, before any key is looked up."""
    if isinstance(token, bytes):
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError:
            raise VerificationError(Reason.MALFORMED, None, _DETAIL[Reason.MALFORMED]) from None
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
        raise VerificationError(Reason.MALFORMED, None, _DETAIL[Reason.MALFORMED])
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise VerificationError(Reason.MALFORMED, None, _DETAIL[Reason.MALFORMED]) from None
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise VerificationError(Reason.MALFORMED, None, "kid is not a string")
    alg = header.get("alg")
    if not isinstance(alg, str):
        raise VerificationError(Reason.MALFORMED, kid, "alg is missing")
    if alg.strip().lower() == "none":
        raise VerificationError(Reason.WRONG_ALG, kid, "unsigned tokens (alg none) are never accepted")
    return Header(alg, kid)


def reason_for(exc: jwt.PyJWTError) -> Reason:
    # Order matters: InvalidSignatureError is a DecodeError subclass.
    if isinstance(exc, jwt.InvalidSignatureError):
        return Reason.BAD_SIGNATURE
    if isinstance(exc, jwt.ExpiredSignatureError):
        return Reason.EXPIRED
    if isinstance(exc, jwt.ImmatureSignatureError):
        return Reason.NOT_YET_VALID
    if isinstance(exc, jwt.InvalidAudienceError):
        return Reason.BAD_AUDIENCE
    if isinstance(exc, jwt.InvalidIssuerError):
        return Reason.BAD_ISSUER
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return Reason.MISSING_CLAIM
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return Reason.WRONG_ALG
    if isinstance(exc, jwt.DecodeError):
        return Reason.MALFORMED
    if isinstance(exc, jwt.InvalidTokenError):
        return Reason.INVALID_CLAIMS
    return Reason.ERROR  # InvalidKeyError and friends: our key, not the token


def refuse(reason: Reason, kid: str | None) -> VerificationError:
    return VerificationError(reason, kid, _DETAIL.get(reason, ""))


def decode(
    token: str,
    key: Any,
    algorithm: str,
    *,
    kid: str | None,
    audience: str | Iterable[str] | None,
    issuer: str | Sequence[str] | None,
    leeway: float | timedelta,
    require: Sequence[str],
) -> dict[str, Any]:
    """PyJWT with exactly one algorithm; every failure becomes a VerificationError."""
    try:
        return decode_raw(
            token, key, algorithm, audience=audience, issuer=issuer, leeway=leeway, require=require
        )
    except jwt.PyJWTError as exc:
        raise refuse(reason_for(exc), kid) from None


def decode_raw(
    token: str,
    key: Any,
    algorithm: str,
    *,
    audience: str | Iterable[str] | None,
    issuer: str | Sequence[str] | None,
    leeway: float | timedelta,
    require: Sequence[str],
) -> dict[str, Any]:
    """Like `decode` but PyJWT's exceptions pass through, so an HMAC accept-list can tell
    "wrong secret, try the next one" (InvalidSignatureError) from "right secret, bad claims"."""
    return jwt.decode(
        token,
        key,
        algorithms=[algorithm],
        audience=audience,
        issuer=issuer,
        leeway=leeway,
        options={"require": list(require), "enforce_minimum_key_length": True},
    )
