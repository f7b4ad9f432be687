"""client/file_source.py: a JWKS from a mounted file, re-read after every kubelet swap, never restarted."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from helpers import wait_for
from keyturn.client import ClientMetrics, JwksVerifier, KeySourceError, ValidationReason
from keyturn.keys.signing import sign
from unit.client.support import DEADLINE, JwksMount, Keys, claims, jwks_text, outcome, sample, validations


def test_kubelet_swap_adds_a_key_without_restart(rsa_keys: Keys, jwks_mount: JwksMount) -> None:
    (a, kid_a), (b, kid_b), _ = rsa_keys
    jwks_mount.publish((a, kid_a))
    verifier = jwks_mount.verifier(check_interval=3600)
    token_b = sign(b, claims(), kid_b)
    assert outcome(verifier, token_b) is ValidationReason.UNKNOWN_KID

    jwks_mount.publish((b, kid_b), (a, kid_a))
    # No wait and a one-hour check interval: an unknown kid makes the verifier look at once.
    assert verifier.verify(token_b)["sub"] == "alice"
    assert verifier.kids == (kid_b, kid_a)
    assert verifier.verify(sign(a, claims(), kid_a))["sub"] == "alice"


def test_revoked_kid_is_refused_once_the_jwks_drops_it(
    rsa_keys: Keys, jwks_mount: JwksMount, registry: CollectorRegistry
) -> None:
    (a, kid_a), (b, kid_b), _ = rsa_keys
    jwks_mount.publish((a, kid_a), (b, kid_b))
    verifier = jwks_mount.verifier(check_interval=0.05)
    token_b = sign(b, claims(), kid_b)
    assert verifier.verify(token_b)["sub"] == "alice"
    assert sample(registry, "jwt_keys_loaded", kid=kid_b) == 1

    jwks_mount.publish((a, kid_a))
    wait_for(
        lambda: outcome(verifier, token_b) is ValidationReason.UNKNOWN_KID,
        DEADLINE,
        0.02,
        "the revoked kid to be refused",
    )
    assert registry.get_sample_value("jwt_keys_loaded", {"kid": kid_b}) is None
    assert sample(registry, "jwt_keys_loaded", kid=kid_a) == 1
    assert validations(registry, "unknown_kid", kid_b) >= 1
    assert verifier.verify(sign(a, claims(), kid_a))["sub"] == "alice"


def test_check_interval_bounds_how_often_the_file_is_looked_at(rsa_keys: Keys, jwks_mount: JwksMount) -> None:
    (a, kid_a), (b, kid_b), _ = rsa_keys
    jwks_mount.publish((a, kid_a), (b, kid_b))
    verifier = jwks_mount.verifier(check_interval=3600)
    jwks_mount.publish((a, kid_a))
    token_b = sign(b, claims(), kid_b)
    # Within the interval a known kid is served from memory; refresh() looks now.
    assert verifier.verify(token_b)["sub"] == "alice"
    verifier.refresh()
    assert outcome(verifier, token_b) is ValidationReason.UNKNOWN_KID


def test_watcher_reloads_an_idle_verifier_and_its_gauge(
    rsa_keys: Keys, jwks_mount: JwksMount, registry: CollectorRegistry
) -> None:
    (a, kid_a), (b, kid_b), _ = rsa_keys
    jwks_mount.publish((a, kid_a))
    verifier = jwks_mount.verifier(check_interval=3600)
    verifier.start_watching(0.05)
    jwks_mount.publish((b, kid_b), (a, kid_a))
    wait_for(lambda: sample(registry, "jwt_keys_loaded", kid=kid_b) == 1, DEADLINE, 0.02, "gauge of kid b")
    # The new kid's success series exists (at 0) before its first validation, for rate().
    assert (
        registry.get_sample_value(
            "jwt_validations_total", {"result": "success", "reason": "ok", "kid": kid_b}
        )
        == 0
    )
    verifier.close()
    assert registry.get_sample_value("jwt_keys_loaded", {"kid": kid_b}) is None


def test_broken_jwks_keeps_the_previous_keys(
    rsa_keys: Keys, jwks_mount: JwksMount, registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    (a, kid_a), (b, kid_b), _ = rsa_keys
    jwks_mount.publish((a, kid_a))
    verifier = jwks_mount.verifier(check_interval=0)
    token_a = sign(a, claims(), kid_a)
    for broken in ('{"keys": [', '{"no": "keys"}', "[]"):
        jwks_mount.write(broken)
        assert verifier.verify(token_a)["sub"] == "alice"
    assert sample(registry, "jwt_key_reloads_total", source="jwks_file", result="failure") >= 3
    assert "keeping the keys loaded before" in caplog.text
    with pytest.raises(KeySourceError):
        verifier.refresh()
    jwks_mount.publish((b, kid_b))
    wait_for(lambda: verifier.kids == (kid_b,), DEADLINE, 0.02, "recovery")


def test_plain_file_replaced_in_place_is_reloaded(
    tmp_path: Path, rsa_keys: Keys, metrics: ClientMetrics, closing: Any
) -> None:
    """Outside a cluster (docker -v, local runs) files are plain: their inode/size/mtime tell."""
    (a, kid_a), (b, kid_b), _ = rsa_keys
    path = tmp_path / "jwks.json"
    path.write_text(jwks_text((a, kid_a)))
    verifier = closing(JwksVerifier.from_file(path, check_interval=0.02, metrics=metrics))
    staged = tmp_path / "jwks.json.new"
    staged.write_text(jwks_text((b, kid_b)))
    os.replace(staged, path)
    wait_for(lambda: verifier.kids == (kid_b,), DEADLINE, 0.02, "reload of a replaced plain file")


def test_missing_file_fails_fast(tmp_path: Path, metrics: ClientMetrics) -> None:
    with pytest.raises(KeySourceError, match="does not exist"):
        JwksVerifier.from_file(tmp_path / "nope.json", metrics=metrics)


def test_concurrent_verification_during_swaps_never_fails(rsa_keys: Keys, jwks_mount: JwksMount) -> None:
    (a, kid_a), (b, kid_b), (c, kid_c) = rsa_keys
    jwks_mount.publish((a, kid_a))
    verifier = jwks_mount.verifier(check_interval=0)
    token_a = sign(a, claims(), kid_a)
    stop = threading.Event()
    failures: list[BaseException] = []
    counts = [0]

    def hammer() -> None:
        while not stop.is_set():
            try:
                verifier.verify(token_a)
                counts[0] += 1
            except BaseException as exc:
                failures.append(exc)
                return

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for i in range(40):
            extra = (b, kid_b) if i % 2 else (c, kid_c)
            jwks_mount.publish((a, kid_a), extra)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not failures, failures[:3]
    assert counts[0] > 0
    wait_for(lambda: verifier.kids == (kid_a, kid_b), DEADLINE, 0.02, "the last version")
