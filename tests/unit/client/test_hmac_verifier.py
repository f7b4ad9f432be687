"""client/hmac_verifier.py: the accept-list of shared secrets for HS* keysets, and its grace."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import jwt
import pytest
from jwcrypto import jwk as jc_jwk
from jwcrypto import jwt as jc_jwt
from prometheus_client import CollectorRegistry

from helpers import wait_for
from keyturn.client import ClientMetrics, HmacVerifier, KeySourceError, Signer, ValidationReason
from keyturn.client.hmac_verifier import build_snapshot, secret_thumbprint
from keyturn.keys.generation import generate
from keyturn.keys.material import raw_secret
from keyturn.keys.signing import sign
from redaction import assert_hidden
from unit.client.support import DEADLINE, Keys, b64url, claims, kubelet_write, outcome, validations


def hs_token(secret: str, kid: str | None, alg: str = "HS256", **extra: Any) -> str:
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(claims(**extra), secret.encode(), algorithm=alg, headers=headers)


def test_hmac_grace_accepts_old_and_new_until_previous_disappears(
    tmp_path: Path,
    hs_secrets: dict[str, str],
    metrics: ClientMetrics,
    registry: CollectorRegistry,
    closing: Any,
) -> None:
    old, new = hs_secrets["old"], hs_secrets["new"]
    kid_old, kid_new = secret_thumbprint(old), secret_thumbprint(new)
    mount = tmp_path / "secret"
    kubelet_write(mount, {"JWT_SECRET": new, "JWT_SECRET_PREVIOUS": old, "JWT_KID": kid_new})
    verifier = closing(HmacVerifier.from_dir(mount, check_interval=0.05, metrics=metrics))
    token_old, token_new = hs_token(old, kid_old), hs_token(new, kid_new)
    assert verifier.verify(token_old)["sub"] == "alice"
    assert verifier.verify(token_new)["sub"] == "alice"
    # Thumbprint kids: every secret of the accept-list is identified and reported.
    assert set(verifier.kids) == {kid_new, kid_old}

    kubelet_write(mount, {"JWT_SECRET": new, "JWT_KID": kid_new})  # grace over
    wait_for(
        lambda: outcome(verifier, token_old) is ValidationReason.UNKNOWN_KID,
        DEADLINE,
        0.02,
        "the old secret to stop verifying",
    )
    assert verifier.verify(token_new)["sub"] == "alice"
    assert verifier.kids == (kid_new,)
    assert validations(registry, "ok", kid_old) >= 1
    assert validations(registry, "unknown_kid", kid_old) >= 1
    assert registry.get_sample_value("jwt_keys_loaded", {"kid": kid_old}) is None
    # Also without a kid in the header the old secret is gone for good.
    assert outcome(verifier, hs_token(old, None)) is ValidationReason.BAD_SIGNATURE


def test_hmac_template_kids_are_matched_by_trying_the_accept_list(
    tmp_path: Path,
    hs_secrets: dict[str, str],
    metrics: ClientMetrics,
    registry: CollectorRegistry,
    closing: Any,
) -> None:
    """With Template kids only the current kid is known; the others are found by signature."""
    old, new, nxt = hs_secrets["old"], hs_secrets["new"], hs_secrets["next"]
    mount = tmp_path / "secret"
    items = {"AUTH_JWT_SECRET": new, "AUTH_JWT_SECRET_SECONDARY": old, "AUTH_JWT_KID": "20260301_v2_prod"}
    kubelet_write(mount, {**items, "AUTH_JWT_SECRET_NEXT": nxt})
    verifier = closing(
        HmacVerifier.from_dir(
            mount,
            current_item="AUTH_JWT_SECRET",
            previous_item="AUTH_JWT_SECRET_SECONDARY",
            next_item="AUTH_JWT_SECRET_NEXT",
            kid_item="AUTH_JWT_KID",
            check_interval=0.05,
            metrics=metrics,
        )
    )
    assert verifier.kids == ("20260301_v2_prod",)
    for _ in range(2):  # the second time through the learned kid
        assert verifier.verify(hs_token(old, "20251201_v1_prod"))["sub"] == "alice"
    assert verifier.verify(hs_token(nxt, "20260601_v3_prod"))["sub"] == "alice"  # next: accepted early
    assert verifier.verify(hs_token(new, "20260301_v2_prod"))["sub"] == "alice"
    assert verifier.verify(hs_token(new, None))["sub"] == "alice"
    assert validations(registry, "ok", "20251201_v1_prod") == 2
    assert validations(registry, "ok", "20260601_v3_prod") == 1
    assert validations(registry, "ok", "20260301_v2_prod") == 2
    # The current kid with another secret's signature is a bad signature, not a fallback.
    assert outcome(verifier, hs_token(old, "20260301_v2_prod")) is ValidationReason.BAD_SIGNATURE
    # An expired token with a valid signature says so, whichever secret matched.
    assert outcome(verifier, hs_token(old, "v1", exp=1)) is ValidationReason.EXPIRED

    kubelet_write(mount, {"AUTH_JWT_SECRET": new, "AUTH_JWT_KID": "20260301_v2_prod"})
    wait_for(
        lambda: outcome(verifier, hs_token(old, "20251201_v1_prod")) is ValidationReason.UNKNOWN_KID,
        DEADLINE,
        0.02,
        "the learned kid to be forgotten with its secret",
    )


def test_hmac_template_kids_named_by_their_kid_items_are_known_up_front(
    tmp_path: Path, hs_secrets: dict[str, str], metrics: ClientMetrics, closing: Any
) -> None:
    """Keyturn's default HMAC items name every secret's kid, so none needs to be found by trial."""
    old, new, nxt = hs_secrets["old"], hs_secrets["new"], hs_secrets["next"]
    mount = tmp_path / "secret"
    kubelet_write(
        mount,
        {
            "JWT_SECRET": new,
            "JWT_KID": "20260301_v2_prod",
            "JWT_SECRET_PREVIOUS": old,
            "JWT_KID_PREVIOUS": "20251201_v1_prod",
            "JWT_SECRET_NEXT": nxt,
            "JWT_KID_NEXT": "20260601_v3_prod",
        },
    )
    verifier = closing(HmacVerifier.from_dir(mount, check_interval=0.05, metrics=metrics))
    assert set(verifier.kids) == {"20260301_v2_prod", "20251201_v1_prod", "20260601_v3_prod"}
    assert verifier.verify(hs_token(old, "20251201_v1_prod"))["sub"] == "alice"
    # a kid item pins its secret: the previous kid with the current secret's signature is refused
    assert outcome(verifier, hs_token(new, "20251201_v1_prod")) is ValidationReason.BAD_SIGNATURE


def test_hmac_checks_the_algorithm_before_any_secret(
    hs_secrets: dict[str, str], rsa_keys: Keys, metrics: ClientMetrics
) -> None:
    new = hs_secrets["new"]
    verifier = HmacVerifier.from_secrets(new, kid="k", metrics=metrics)
    assert verifier.verify(hs_token(new, "k"))["sub"] == "alice"
    assert outcome(verifier, hs_token(new + new, "k", alg="HS512")) is ValidationReason.WRONG_ALG
    (a, kid_a), _, _ = rsa_keys
    assert outcome(verifier, sign(a, claims(), kid_a)) is ValidationReason.WRONG_ALG
    hs512 = HmacVerifier.from_secrets(new + new, algorithm="HS512", metrics=metrics)
    assert outcome(hs512, hs_token(new + new, None)) is ValidationReason.WRONG_ALG
    assert hs512.verify(hs_token(new + new, None, alg="HS512"))["sub"] == "alice"
    with pytest.raises(ValueError, match="HMAC verification needs"):
        HmacVerifier.from_secrets(new, algorithm="RS256", metrics=metrics)
    with pytest.raises(KeySourceError, match="needs 32"):
        HmacVerifier.from_secrets("short", metrics=metrics)


def test_hmac_key_is_the_secret_text_not_its_decoding(metrics: ClientMetrics) -> None:
    secret = raw_secret(generate("HS256"))
    verifier = HmacVerifier.from_secrets(secret, metrics=metrics)
    decoded = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
    token_decoded = jwt.encode(claims(), decoded, algorithm="HS256")
    assert outcome(verifier, token_decoded) is ValidationReason.BAD_SIGNATURE
    token = jc_jwt.JWT(header={"alg": "HS256"}, claims=claims())
    token.make_signed_token(jc_jwk.JWK(kty="oct", k=b64url(secret.encode("utf-8"))))
    assert verifier.verify(token.serialize())["sub"] == "alice"


def test_hmac_from_env_with_runbook_names(hs_secrets: dict[str, str], metrics: ClientMetrics) -> None:
    old, new = hs_secrets["old"], hs_secrets["new"]
    env = {"AUTH_JWT_SECRET": new, "AUTH_JWT_SECRET_SECONDARY": old, "AUTH_JWT_KID": "v2"}
    verifier = HmacVerifier.from_env(
        current_var="AUTH_JWT_SECRET",
        previous_var="AUTH_JWT_SECRET_SECONDARY",
        next_var=None,
        kid_var="AUTH_JWT_KID",
        environ=env,
        metrics=metrics,
    )
    assert verifier.verify(hs_token(old, "v1"))["sub"] == "alice"
    signer = Signer.from_env(
        "HS256", key_var="AUTH_JWT_SECRET", kid_var="AUTH_JWT_KID", environ=env, metrics=metrics
    )
    token = signer.sign(claims())
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "kid": "v2", "typ": "JWT"}
    assert verifier.verify(token)["sub"] == "alice"
    with pytest.raises(KeySourceError, match="AUTH_JWT_SECRET"):
        HmacVerifier.from_env(current_var="AUTH_JWT_SECRET", environ={}, metrics=metrics)


def test_the_hmac_verifier_and_its_snapshot_never_show_the_secrets() -> None:
    current, previous = (generate("HS256") for _ in range(2))
    snapshot = build_snapshot("HS256", raw_secret(current), raw_secret(previous), None, "k", "test")
    verifier = HmacVerifier.from_secrets(
        raw_secret(current), previous=raw_secret(previous), kid="k", metrics=_metrics()
    )
    for obj in (snapshot, *snapshot.secrets, verifier):
        assert_hidden(obj, current)
        assert_hidden(obj, previous)
    verifier.close()


def _metrics() -> ClientMetrics:
    return ClientMetrics(CollectorRegistry())
