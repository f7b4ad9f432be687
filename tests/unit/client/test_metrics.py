"""client/metrics.py: metric names, labels and bounded kid cardinality; no key material anywhere."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from keyturn.client import (
    ClientMetrics,
    HmacVerifier,
    JwksVerifier,
    KeySourceError,
    Signer,
    VerificationError,
)
from keyturn.keys.jwk import private_jwk
from keyturn.keys.pem import private_pem
from keyturn.keys.signing import sign
from unit.client.support import Keys, claims, forge, jwks_text, kubelet_write, sample, validations


def test_metric_names_labels_and_bounded_kid_cardinality(rsa_keys: Keys, registry: CollectorRegistry) -> None:
    metrics = ClientMetrics(registry, max_foreign_kids=3)
    (a, kid_a), (b, _), _ = rsa_keys
    verifier = JwksVerifier.from_jwks(jwks_text((a, kid_a)), metrics=metrics)
    for _ in range(5):
        verifier.verify(sign(a, claims(), kid_a))
    for i in range(10):
        with pytest.raises(VerificationError):
            verifier.verify(sign(b, claims(), f"forged-{i}"))
    with pytest.raises(VerificationError):
        verifier.verify(sign(b, claims(), "bad kid\nwith newline"))
    assert validations(registry, "ok", kid_a) == 5
    assert [validations(registry, "unknown_kid", f"forged-{i}") for i in range(4)] == [1, 1, 1, 0]
    assert validations(registry, "unknown_kid", "_other") == 7
    assert validations(registry, "unknown_kid", "_invalid") == 1
    assert sample(registry, "jwt_keys_loaded", kid=kid_a) == 1
    text = generate_latest(registry).decode()
    assert f'jwt_validations_total{{kid="{kid_a}",reason="ok",result="success"}} 5.0' in text
    # The default analysis query, evaluated by hand on the counters.
    total = sum(
        s.value
        for metric in registry.collect()
        if metric.name == "jwt_validations"
        for s in metric.samples
        if s.name == "jwt_validations_total"
    )
    success = sum(
        s.value
        for metric in registry.collect()
        if metric.name == "jwt_validations"
        for s in metric.samples
        if s.name == "jwt_validations_total" and s.labels["result"] == "success"
    )
    assert (total, success) == (16, 5)


def test_gauge_is_shared_between_verifiers_holding_the_same_kid(
    rsa_keys: Keys, metrics: ClientMetrics, registry: CollectorRegistry
) -> None:
    (a, kid_a), (b, kid_b), _ = rsa_keys
    one = JwksVerifier.from_jwks(jwks_text((a, kid_a), (b, kid_b)), metrics=metrics)
    two = JwksVerifier.from_jwks(jwks_text((a, kid_a)), metrics=metrics)
    one.close()
    assert sample(registry, "jwt_keys_loaded", kid=kid_a) == 1
    assert registry.get_sample_value("jwt_keys_loaded", {"kid": kid_b}) is None
    two.close()
    assert registry.get_sample_value("jwt_keys_loaded", {"kid": kid_a}) is None


def test_no_key_material_in_reprs_errors_logs_or_metrics(
    tmp_path: Path,
    rsa_keys: Keys,
    metrics: ClientMetrics,
    registry: CollectorRegistry,
    caplog: pytest.LogCaptureFixture,
    closing: Any,
) -> None:
    caplog.set_level(logging.DEBUG)
    (a, kid_a), _, _ = rsa_keys
    secret_new, secret_old = secrets.token_urlsafe(48), secrets.token_urlsafe(48)
    pem = private_pem(a)
    mount = tmp_path / "secret"
    kubelet_write(
        mount,
        {
            "JWT_PRIVATE_KEY": pem,
            "JWT_KID": kid_a,
            "JWT_SECRET": secret_new,
            "JWT_SECRET_PREVIOUS": secret_old,
        },
    )
    signer = closing(Signer.from_dir(mount, "RS256", metrics=metrics))
    hmac_signer = closing(Signer.from_dir(mount, "HS256", metrics=metrics, kid_item=None))
    hmac_verifier = closing(HmacVerifier.from_dir(mount, metrics=metrics))
    texts = [repr(signer), repr(hmac_signer), repr(hmac_verifier), repr(signer.current())]
    texts.append(repr(hmac_verifier._source.get()))
    for token in (hmac_signer.sign(claims()), "x.y.z", forge({"alg": "HS256"}, claims(), b"k" * 32)):
        try:
            hmac_verifier.verify(token)
        except VerificationError as exc:
            texts.append(str(exc))
    # Broken reloads are logged: their messages must not quote what they could not parse.
    kubelet_write(mount, {"JWT_PRIVATE_KEY": pem[:200], "JWT_KID": kid_a, "JWT_SECRET": secret_new[:10]})
    for source in (signer, hmac_verifier):
        with pytest.raises(KeySourceError) as info:
            source.refresh()
        texts.append(str(info.value))
    texts.append(caplog.text)
    texts.append(generate_latest(registry).decode())
    pem_body = "".join(pem.splitlines()[1:-1])
    haystack = "\n".join(texts)
    for needle in (secret_new, secret_old, secret_new[:10], pem_body[:40], pem_body[100:140]):
        assert needle not in haystack
    assert private_jwk(a, kid_a)["d"][:20] not in haystack
