"""The `reason` label values of `jwt_validations_total`, one vocabulary for every verifier.

They are metric label values and API values at once (`VerificationError.reason`, the example
app's 401 bodies), so dashboards, alerts and the analysis gate can rely on them: values are only
ever added, never renamed. The enum is called `ValidationReason`, not `Reason`, so that it is never
mistaken for the operator's own `keyturn.domain.reasons.Reason` (Event and condition reasons).
"""

from __future__ import annotations

from enum import StrEnum


class ValidationReason(StrEnum):
    """Why a token was accepted or refused; `OK` is the only success."""

    OK = "ok"
    MALFORMED = "malformed"  # not a compact JWS, undecodable header/payload, bad claim types
    MISSING_KID = "missing_kid"  # JWKS verification needs the header's kid to pick the key
    UNKNOWN_KID = "unknown_kid"  # no loaded key has this kid: revoked, retired or not yet seen
    WRONG_ALG = "wrong_alg"  # header alg is not the key's alg, not allowed, or "none"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"  # nbf or iat in the future (beyond the leeway)
    BAD_AUDIENCE = "bad_audience"
    BAD_ISSUER = "bad_issuer"
    MISSING_CLAIM = "missing_claim"  # a claim listed in `require` is absent
    INVALID_CLAIMS = "invalid_claims"  # any other registered-claim check (sub, jti, iat type)
    NO_KEYS = "no_keys"  # the verifier holds no key at all (empty JWKS)
    REJECTED_BY_TEST = "rejected_by_test"  # fault injection (examples/app), counted as a failure
    ERROR = "error"  # a verifier-side fault, never the token's; should stay at zero

    @property
    def result(self) -> str:
        """The `result` label: the analysis query divides `success` by everything."""
        return "success" if self is ValidationReason.OK else "failure"
