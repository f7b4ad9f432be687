"""The sign-and-verify check every key passes before it is published.

It verifies the way a consumer would, from what a consumer gets (the public JWK, or the HMAC
secret text), and then proves it can fail: a tampered token must be refused.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any, Final

import jwt

from keyturn.keys.algorithms import is_symmetric
from keyturn.keys.jwk import private_jwk, public_jwk
from keyturn.keys.material import KeyMaterial, b64url
from keyturn.keys.signing import TokenVerificationError, sign, verify

__all__ = ["KeySelfTestError", "self_test"]

_SELF_TEST_AUDIENCE: Final = "keyturn-self-test"
_SELF_TEST_LIFETIME_S: Final = 60


class KeySelfTestError(Exception):
    """A freshly generated or loaded key failed its sign-and-verify check and must not be published."""


def self_test(material: KeyMaterial, kid: str) -> None:
    """Sign a short-lived token and verify it the way a consumer would, before the key is published.

    Asymmetric keys are verified against their *public JWK* (so the JWKS entry itself is proven),
    HS* keys against an oct JWK built from the raw secret text (the env-var form). A tampered
    copy of the token must then fail, which proves the check can fail at all.
    """
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": "keyturn",
        "sub": "keyturn-self-test",
        "aud": _SELF_TEST_AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + _SELF_TEST_LIFETIME_S,
        "jti": secrets.token_urlsafe(16),
    }
    alg = material.algorithm
    try:
        jwk = private_jwk(material, kid) if is_symmetric(alg) else public_jwk(material, kid)
        token = sign(material, claims, kid)
        header = jwt.get_unverified_header(token)
        if header.get("alg") != alg or header.get("kid") != kid:
            raise KeySelfTestError("token header does not carry the expected alg and kid")
        decoded = verify(
            token, jwk, alg, kid=kid, audience=_SELF_TEST_AUDIENCE, require=("exp", "iat"), leeway=5
        )
        if decoded != claims:
            raise KeySelfTestError("verified claims differ from the signed claims")
        head, _, signature = token.split(".")
        forged_claims = {**claims, "jti": secrets.token_urlsafe(16)}
        forged_payload = b64url(json.dumps(forged_claims, separators=(",", ":")).encode("utf-8"))
        forged = f"{head}.{forged_payload}.{signature}"
        try:
            verify(forged, jwk, alg, audience=_SELF_TEST_AUDIENCE, leeway=5)
        except TokenVerificationError:
            pass
        else:
            raise KeySelfTestError("a tampered token verified")
    except KeySelfTestError as exc:
        raise KeySelfTestError(f"self-test of kid {kid!r} ({alg}) failed: {exc}") from None
    except Exception as exc:
        raise KeySelfTestError(
            f"self-test of kid {kid!r} ({alg}) failed: {type(exc).__name__}: {exc}"
        ) from exc
