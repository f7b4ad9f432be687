"""client/jwks_verifier.py: what JwksVerifier refuses (algorithm confusion, alg none, unknown kids,
claims, unsafe keys) and what it accepts, also from another JOSE library."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwcrypto import jwk as jc_jwk
from jwcrypto import jwt as jc_jwt
from prometheus_client import CollectorRegistry

from keyturn.client import ClientMetrics, HmacVerifier, JwksVerifier, ValidationReason, VerificationError
from keyturn.keys.generation import generate
from keyturn.keys.jwk import private_jwk, public_jwk
from keyturn.keys.pem import public_pem
from keyturn.keys.signing import sign
from keyturn.keys.thumbprints import thumbprint
from unit.client.support import Keys, b64url, claims, forge, jwks_text, outcome, sample, validations


def test_algorithm_confusion_with_the_public_key_as_hmac_secret_is_refused(
    rsa_keys: Keys, metrics: ClientMetrics, registry: CollectorRegistry
) -> None:
    (a, kid_a), _, _ = rsa_keys
    verifier = JwksVerifier.from_jwks(jwks_text((a, kid_a)), metrics=metrics)
    spki_pem = public_pem(a).encode()
    forged = forge({"alg": "HS256", "typ": "JWT", "kid": kid_a}, claims(), spki_pem)
    # The forgery is a correct HS256 token for that "secret" (checked with the stdlib) ...
    head, payload, sig = forged.split(".")
    expected = hmac.new(spki_pem, f"{head}.{payload}".encode(), hashlib.sha256).digest()
    assert b64url(expected) == sig
    # ... and refused because the kid's key is pinned to RS256.
    with pytest.raises(VerificationError) as info:
        verifier.verify(forged)
    assert info.value.reason is ValidationReason.WRONG_ALG
    assert validations(registry, "wrong_alg", kid_a) == 1


def test_header_alg_other_than_the_keys_alg_is_refused(rsa_keys: Keys, metrics: ClientMetrics) -> None:
    """A PS256 signature by the same RSA key is valid crypto but not what the JWK allows."""
    (a, kid_a), _, _ = rsa_keys
    verifier = JwksVerifier.from_jwks(jwks_text((a, kid_a)), metrics=metrics)
    assert isinstance(a.key, rsa.RSAPrivateKey)
    ps256 = jwt.encode(claims(), a.key, algorithm="PS256", headers={"kid": kid_a})
    assert outcome(verifier, ps256) is ValidationReason.WRONG_ALG


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_is_refused(
    alg: str, rsa_keys: Keys, metrics: ClientMetrics, registry: CollectorRegistry
) -> None:
    (a, kid_a), _, _ = rsa_keys
    verifier = JwksVerifier.from_jwks(jwks_text((a, kid_a)), metrics=metrics)
    unsigned = forge({"alg": alg, "kid": kid_a}, claims(), b"")
    assert unsigned.endswith(".")
    assert outcome(verifier, unsigned) is ValidationReason.WRONG_ALG
    hmac_verifier = HmacVerifier.from_secrets(secrets.token_urlsafe(32), metrics=metrics)
    assert outcome(hmac_verifier, unsigned) is ValidationReason.WRONG_ALG
    assert validations(registry, "wrong_alg", kid_a) == 2


def test_unknown_and_missing_kids_are_refused_and_counted(
    rsa_keys: Keys, metrics: ClientMetrics, registry: CollectorRegistry
) -> None:
    (a, kid_a), (b, kid_b), _ = rsa_keys
    verifier = JwksVerifier.from_jwks(jwks_text((a, kid_a)), metrics=metrics)
    for _ in range(3):
        assert outcome(verifier, sign(b, claims(), kid_b)) is ValidationReason.UNKNOWN_KID
    assert validations(registry, "unknown_kid", kid_b) == 3
    no_kid = jwt.encode(claims(), a.key, algorithm="RS256")
    assert outcome(verifier, no_kid) is ValidationReason.MISSING_KID
    assert validations(registry, "missing_kid", "") == 1
    assert sample(registry, "jwt_validations_total", result="success", reason="ok", kid=kid_a) == 0


def test_claim_failures_have_their_own_reasons(
    rsa_keys: Keys, metrics: ClientMetrics, registry: CollectorRegistry
) -> None:
    (a, kid_a), (b, _), _ = rsa_keys
    verifier = JwksVerifier.from_jwks(
        jwks_text((a, kid_a)), metrics=metrics, audience="api", issuer="auth", leeway=0
    )
    now = int(time.time())
    ok = {"iss": "auth", "aud": "api", "sub": "alice", "iat": now, "exp": now + 60}
    cases: list[tuple[str, ValidationReason]] = [
        (sign(a, ok, kid_a), ValidationReason.OK),
        (sign(a, {**ok, "exp": now - 10}, kid_a), ValidationReason.EXPIRED),
        (sign(a, {**ok, "nbf": now + 600}, kid_a), ValidationReason.NOT_YET_VALID),
        (sign(a, {**ok, "aud": "other"}, kid_a), ValidationReason.BAD_AUDIENCE),
        (sign(a, {**ok, "iss": "evil"}, kid_a), ValidationReason.BAD_ISSUER),
        (sign(a, {k: v for k, v in ok.items() if k != "exp"}, kid_a), ValidationReason.MISSING_CLAIM),
        (sign(b, ok, kid_a), ValidationReason.BAD_SIGNATURE),  # right kid, wrong key
        ("not.a.token", ValidationReason.MALFORMED),
        ("garbage", ValidationReason.MALFORMED),
        (sign(a, {**ok, "sub": 42}, kid_a), ValidationReason.INVALID_CLAIMS),
    ]
    for token, want in cases:
        assert outcome(verifier, token) is (None if want is ValidationReason.OK else want)
    tampered = sign(a, ok, kid_a)
    head, _, sig = tampered.split(".")
    tampered = f"{head}.{b64url(json.dumps({**ok, 'sub': 'mallory'}).encode())}.{sig}"
    assert outcome(verifier, tampered) is ValidationReason.BAD_SIGNATURE
    # Per-call arguments override the construction defaults.
    assert verifier.verify(cases[3][0], audience="other")["aud"] == "other"
    assert validations(registry, "ok", kid_a) == 2
    assert validations(registry, "bad_signature", kid_a) == 2
    for reason in ("expired", "not_yet_valid", "bad_audience", "bad_issuer", "missing_claim"):
        assert validations(registry, reason, kid_a) == 1, reason
    assert validations(registry, "malformed", "") == 2


def test_health_style_checks_can_skip_the_metric(
    rsa_keys: Keys, metrics: ClientMetrics, registry: CollectorRegistry
) -> None:
    (a, kid_a), _, _ = rsa_keys
    verifier = JwksVerifier.from_jwks(jwks_text((a, kid_a)), metrics=metrics)
    verifier.verify(sign(a, claims(), kid_a), record=False)
    with pytest.raises(VerificationError):
        verifier.verify("x.y.z", record=False)
    assert validations(registry, "ok", kid_a) == 0
    assert validations(registry, "malformed", "") == 0


def test_unsafe_jwks_entries_are_never_used(metrics: ClientMetrics) -> None:
    """Entries a verifier must not use are skipped and named; private material is another matter
    (the whole document is refused: tests/unit/client/test_jwks.py)."""
    rsa_small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - on purpose
    small_jwk = jwt.algorithms.RSAAlgorithm.to_jwk(rsa_small.public_key(), as_dict=True)
    es = generate("ES256")
    es_jwk = public_jwk(es, "es")
    rs = generate("RS256")
    document = {
        "keys": [
            {**public_jwk(rs, "no-alg"), "alg": None},
            {**small_jwk, "kid": "small", "alg": "RS256"},
            {**public_jwk(rs, "enc"), "use": "enc"},
            {**es_jwk, "kid": "curve", "alg": "ES384"},
            {**public_jwk(rs, "bell\x07"), "kid": "bell\x07"},
            public_jwk(rs, "rs"),
            es_jwk,
            es_jwk,
            "junk",
        ]
    }
    verifier = JwksVerifier.from_jwks(document, metrics=metrics)
    assert verifier.kids == ("rs", "es")
    described = verifier.describe()
    for kid in ("no-alg", "small", "enc", "curve", "es"):
        assert f"kid {kid}" in described
    assert "entry 4 has a kid that is not printable" in described and "\x07" not in described
    assert verifier.verify(sign(rs, claims(), "rs"))["sub"] == "alice"
    assert outcome(verifier, sign(rs, claims(), "no-alg")) is ValidationReason.UNKNOWN_KID
    empty = JwksVerifier.from_jwks({"keys": []}, metrics=metrics)
    assert outcome(empty, sign(rs, claims(), "rs")) is ValidationReason.NO_KEYS


def test_algorithm_allow_list(rsa_keys: Keys, metrics: ClientMetrics) -> None:
    (a, kid_a), _, _ = rsa_keys
    es = generate("ES256")
    verifier = JwksVerifier.from_jwks(
        jwks_text((a, kid_a), (es, "es")), algorithms=["ES256"], metrics=metrics
    )
    assert verifier.verify(sign(es, claims(), "es"))["sub"] == "alice"
    assert outcome(verifier, sign(a, claims(), kid_a)) is ValidationReason.WRONG_ALG
    for bad in (["HS256"], ["none"], ["RS256", "XX999"]):
        with pytest.raises(ValueError, match="cannot come from a JWKS"):
            JwksVerifier.from_jwks(jwks_text((a, kid_a)), algorithms=bad, metrics=metrics)


@pytest.mark.parametrize("alg", ["RS256", "PS384", "ES256", "ES512", "EdDSA"])
def test_tokens_from_another_jose_library_verify(alg: str, metrics: ClientMetrics) -> None:
    material = generate(alg)
    kid = thumbprint(material)
    token = jc_jwt.JWT(header={"alg": alg, "kid": kid}, claims=claims())
    token.make_signed_token(jc_jwk.JWK(**private_jwk(material, kid)))
    verifier = JwksVerifier.from_jwks(jwks_text((material, kid)), metrics=metrics)
    assert verifier.verify(token.serialize())["sub"] == "alice"
