"""What every verifier does the same way: read the header, call PyJWT, name the failure.

The header is read before any key is chosen, but nothing in it is trusted except to *select*:
the kid picks a key and the alg must then equal the algorithm pinned to that key.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

import jwt

from keyturn.client.errors import VerificationError
from keyturn.client.reasons import ValidationReason

__all__ = ["ClaimRules", "Header", "decode", "read_header", "reason_for", "refuse"]

# Generous for any real token, small enough that a junk request cannot make us base64 megabytes.
MAX_TOKEN_CHARS: Final = 16 * 1024

# Fixed texts, never PyJWT's own messages: those may quote token contents.
_DETAIL: Final = {
    ValidationReason.MALFORMED: "not a well-formed JWS/JWT",
    ValidationReason.BAD_SIGNATURE: "signature does not verify",
    ValidationReason.EXPIRED: "token has expired",
    ValidationReason.NOT_YET_VALID: "token is not valid yet (nbf/iat in the future)",
    ValidationReason.BAD_AUDIENCE: "audience does not match",
    ValidationReason.BAD_ISSUER: "issuer does not match",
    ValidationReason.MISSING_CLAIM: "a required claim is missing",
    ValidationReason.INVALID_CLAIMS: "a registered claim is invalid",
    ValidationReason.WRONG_ALG: "algorithm not accepted for this key",
    ValidationReason.MISSING_KID: "token header has no kid",
    ValidationReason.UNKNOWN_KID: "no loaded key has this kid",
    ValidationReason.NO_KEYS: "the verifier has no keys loaded",
    ValidationReason.ERROR: "verifier error",
}

# Most specific first: InvalidSignatureError is a DecodeError, and all of them InvalidTokenErrors.
_REASONS: Final[tuple[tuple[type[jwt.PyJWTError], ValidationReason], ...]] = (
    (jwt.InvalidSignatureError, ValidationReason.BAD_SIGNATURE),
    (jwt.ExpiredSignatureError, ValidationReason.EXPIRED),
    (jwt.ImmatureSignatureError, ValidationReason.NOT_YET_VALID),
    (jwt.InvalidAudienceError, ValidationReason.BAD_AUDIENCE),
    (jwt.InvalidIssuerError, ValidationReason.BAD_ISSUER),
    (jwt.MissingRequiredClaimError, ValidationReason.MISSING_CLAIM),
    (jwt.InvalidAlgorithmError, ValidationReason.WRONG_ALG),
    (jwt.DecodeError, ValidationReason.MALFORMED),
    (jwt.InvalidTokenError, ValidationReason.INVALID_CLAIMS),
)


@dataclass(frozen=True, slots=True)
class ClaimRules:
    """The registered-claim checks PyJWT applies once the signature holds.

    One value carries them from `verify()` (construction defaults, per-call overrides) down to
    PyJWT, so that no layer in between can drop one of them on the way.
    """

    audience: str | Iterable[str] | None
    issuer: str | Sequence[str] | None
    leeway: float | timedelta
    require: tuple[str, ...]

    def overridden(
        self,
        audience: str | Iterable[str] | None,
        issuer: str | Sequence[str] | None,
        leeway: float | timedelta | None,
        require: Sequence[str] | None,
    ) -> ClaimRules:
        """These rules with every value that is not None replaced (per-call arguments win)."""
        if audience is None and issuer is None and leeway is None and require is None:
            return self  # the common call: nothing overridden, nothing to build per token
        return ClaimRules(
            self.audience if audience is None else audience,
            self.issuer if issuer is None else issuer,
            self.leeway if leeway is None else leeway,
            self.require if require is None else tuple(require),
        )


class Header:
    """The two header members a verifier looks at, with their types checked."""

    __slots__ = ("alg", "kid")

    def __init__(self, alg: str, kid: str | None) -> None:
        self.alg = alg
        self.kid = kid


def read_header(token: object) -> Header:
    """Parse the protected header; `alg: none` is refused here, before any key is looked up.

    Only the header segment is read (PyJWT reads the whole token once more when it verifies), and
    its parse is remembered: every token of one signer carries the same header segment, so a busy
    verifier decodes it once instead of once per token.
    """
    if isinstance(token, bytes):
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError:
            raise refuse(ValidationReason.MALFORMED, None) from None
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
        raise refuse(ValidationReason.MALFORMED, None)
    segment = token[: token.index(".")]
    header = _HEADERS.get(segment)
    if header is None:
        header = _parse_header(segment)
        if len(_HEADERS) >= _HEADER_CACHE_SIZE:
            _HEADERS.clear()  # a flood of distinct headers costs a re-parse, never memory
        _HEADERS[segment] = header
    if isinstance(header, VerificationError):
        raise VerificationError(header.reason, header.kid, header.detail)
    return header


# Header segment -> its Header, or the refusal it earns (dict operations are atomic in CPython).
_HEADERS: dict[str, Header | VerificationError] = {}
_HEADER_CACHE_SIZE: Final = 1024
_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]*")


def _parse_header(segment: str) -> Header | VerificationError:
    """As strict as PyJWT: base64url without padding junk, a JSON object, a string kid and alg."""
    stripped = segment.rstrip("=")
    if len(segment) - len(stripped) > 2 or len(stripped) % 4 == 1 or not _BASE64URL.fullmatch(stripped):
        return refuse(ValidationReason.MALFORMED, None)
    try:
        raw = json.loads(base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4)))
    except (ValueError, RecursionError):
        return refuse(ValidationReason.MALFORMED, None)
    if not isinstance(raw, dict):
        return refuse(ValidationReason.MALFORMED, None)
    kid = raw.get("kid")
    if kid is not None and not isinstance(kid, str):
        return VerificationError(ValidationReason.MALFORMED, None, "kid is not a string")
    alg = raw.get("alg")
    if not isinstance(alg, str):
        return VerificationError(ValidationReason.MALFORMED, kid, "alg is missing")
    if alg.strip().lower() == "none":
        return VerificationError(
            ValidationReason.WRONG_ALG, kid, "unsigned tokens (alg none) are never accepted"
        )
    return Header(alg, kid)


def reason_for(exc: jwt.PyJWTError) -> ValidationReason:
    """The first match in `_REASONS`; anything else is ours (InvalidKeyError and friends)."""
    return next((reason for kind, reason in _REASONS if isinstance(exc, kind)), ValidationReason.ERROR)


def refuse(reason: ValidationReason, kid: str | None) -> VerificationError:
    return VerificationError(reason, kid, _DETAIL.get(reason, ""))


def decode(token: str, key: Any, algorithm: str, rules: ClaimRules, kid: str | None) -> dict[str, Any]:
    """PyJWT with exactly one algorithm; every failure becomes a VerificationError."""
    try:
        return jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=rules.audience,
            issuer=rules.issuer,
            leeway=rules.leeway,
            options={"require": list(rules.require), "enforce_minimum_key_length": True},
        )
    except jwt.PyJWTError as exc:
        raise refuse(reason_for(exc), kid) from None
