"""Tests for keyturn.client: JWKS and HMAC verifiers, the signer, their reloads and metrics.

Volumes are changed the way the kubelet changes them (`kubelet_write` below, written
independently of keyturn.client.mounts): a new timestamped directory, a temporary symlink renamed
over `..data`, visible items as `NAME -> ..data/NAME`. Tokens are also produced and checked
with jwcrypto, a second JOSE implementation, so the verifier is not only tested against itself.
Waiting is on conditions with deadlines (helpers.wait_for), never on fixed sleeps.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwcrypto import jwk as jc_jwk
from jwcrypto import jwt as jc_jwt
from prometheus_client import CollectorRegistry, generate_latest

from helpers import wait_for
from keyturn.client import (
    ClientMetrics,
    HmacVerifier,
    JwksVerifier,
    KeySourceError,
    Signer,
    ValidationReason,
    VerificationError,
    mounts,
    project,
)
from keyturn.client.hmac_verifier import secret_thumbprint
from keyturn.keys.generation import generate
from keyturn.keys.jwk import private_jwk, public_jwk
from keyturn.keys.material import KeyMaterial, load_raw_secret, raw_secret
from keyturn.keys.pem import private_pem, public_pem
from keyturn.keys.signing import sign
from keyturn.keys.thumbprints import thumbprint

DEADLINE = 10.0

Keys = list[tuple[KeyMaterial, str]]

# ---------------------------------------------------------------------- helpers


def kubelet_write(mount: Path, files: Mapping[str, str]) -> None:
    """Replace the volume's content exactly like the kubelet's AtomicWriter does."""
    mount.mkdir(parents=True, exist_ok=True)
    stamp = f"..{datetime.now(UTC):%Y_%m_%d_%H_%M_%S.%f}{secrets.token_hex(3)}"
    fresh = mount / stamp
    fresh.mkdir()
    for name, content in files.items():
        (fresh / name).write_text(content)
    data = mount / "..data"
    old = os.readlink(data) if data.is_symlink() else None
    tmp = mount / "..data_tmp"
    os.symlink(stamp, tmp)
    os.rename(tmp, data)  # the atomic step
    for name in files:
        if not (mount / name).is_symlink():
            os.symlink(f"..data/{name}", mount / name)
    if old is not None:
        gone = [n for n in os.listdir(mount / old) if n not in files]
        shutil.rmtree(mount / old)
        for name in gone:
            (mount / name).unlink()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "alice", "iat": now, "exp": now + 300, **extra}


def jwks_text(*keys: tuple[KeyMaterial, str]) -> str:
    return json.dumps({"keys": [public_jwk(m, kid) for m, kid in keys]})


def outcome(verifier: JwksVerifier | HmacVerifier, token: str, **kwargs: Any) -> ValidationReason | None:
    """None if the token verifies, else the reason it was refused for."""
    try:
        verifier.verify(token, **kwargs)
    except VerificationError as exc:
        return exc.reason
    return None


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def validations(registry: CollectorRegistry, reason: str, kid: str) -> float:
    result = "success" if reason == "ok" else "failure"
    return sample(registry, "jwt_validations_total", result=result, reason=reason, kid=kid)


def forge(header: dict[str, Any], payload: dict[str, Any], key: bytes, digest: str = "sha256") -> str:
    """A JWS built by hand, so a test can make what PyJWT refuses to make."""
    signing_input = (
        b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(payload).encode())
    ).encode()
    signature = hmac.new(key, signing_input, getattr(hashlib, digest)).digest() if key else b""
    return signing_input.decode() + "." + b64url(signature)


@pytest.fixture(scope="module")
def rsa_keys() -> list[tuple[KeyMaterial, str]]:
    keys = [generate("RS256") for _ in range(3)]
    return [(k, thumbprint(k)) for k in keys]


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> ClientMetrics:
    return ClientMetrics(registry)


@pytest.fixture
def closing() -> Iterator[Callable[[Any], Any]]:
    """Registers verifiers/signers to close after the test, so no watcher thread outlives it."""
    opened: list[Any] = []

    def add(obj: Any) -> Any:
        opened.append(obj)
        return obj

    yield add
    for obj in opened:
        obj.close()


class JwksMount:
    """A test's `<keyset>-jwks` ConfigMap volume: rewritten like the kubelet does, read by
    JwksVerifier.from_file the way a pod reads it."""

    def __init__(self, directory: Path, metrics: ClientMetrics, closing: Callable[[Any], Any]) -> None:
        self.directory = directory
        self.metrics = metrics
        self.closing = closing

    def publish(self, *keys: tuple[KeyMaterial, str]) -> None:
        self.write(jwks_text(*keys))

    def write(self, text: str) -> None:
        kubelet_write(self.directory, {"jwks.json": text})

    def verifier(self, check_interval: float) -> JwksVerifier:
        file = self.directory / "jwks.json"
        verifier: JwksVerifier = self.closing(
            JwksVerifier.from_file(file, check_interval=check_interval, metrics=self.metrics)
        )
        return verifier


@pytest.fixture
def jwks_mount(tmp_path: Path, metrics: ClientMetrics, closing: Callable[[Any], Any]) -> JwksMount:
    return JwksMount(tmp_path / "jwks", metrics, closing)


# ---------------------------------------------------------------------- JWKS from a file


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


# ---------------------------------------------------------------------- what must be refused


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
    (the whole document is refused: test_client_hostile.py)."""
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


# ---------------------------------------------------------------------- metrics


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


# ---------------------------------------------------------------------- HMAC accept-list


@pytest.fixture
def hs_secrets() -> dict[str, str]:
    return {name: raw_secret(generate("HS256")) for name in ("old", "new", "next")}


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


# ---------------------------------------------------------------------- signer


def independent_check(token: str, jwk: Mapping[str, str]) -> dict[str, Any]:
    checked = jc_jwt.JWT(jwt=token, key=jc_jwk.JWK(**jwk), algs=[jwk["alg"]])
    result: dict[str, Any] = json.loads(checked.claims)
    return result


def test_signer_follows_a_secret_swap_to_the_new_kid(
    tmp_path: Path, rsa_keys: Keys, metrics: ClientMetrics, registry: CollectorRegistry, closing: Any
) -> None:
    (a, kid_a), (b, kid_b), _ = rsa_keys
    mount = tmp_path / "secret"
    kubelet_write(mount, {"JWT_PRIVATE_KEY": private_pem(a), "JWT_KID": kid_a})
    signer = closing(Signer.from_dir(mount, "RS256", check_interval=0.05, metrics=metrics))
    token = signer.sign({"sub": "alice"}, expires_in=60)
    header = jwt.get_unverified_header(token)
    assert header["kid"] == kid_a and header["alg"] == "RS256"
    assert independent_check(token, public_jwk(a, kid_a))["sub"] == "alice"
    assert sample(registry, "jwt_signing_key", kid=kid_a) == 1

    kubelet_write(mount, {"JWT_PRIVATE_KEY": private_pem(b), "JWT_KID": kid_b})
    wait_for(lambda: signer.kid == kid_b, DEADLINE, 0.02, "the signer to switch to kid b")
    token = signer.sign({"sub": "bob"}, expires_in=60)
    assert jwt.get_unverified_header(token)["kid"] == kid_b
    claims_b = independent_check(token, public_jwk(b, kid_b))
    assert claims_b["sub"] == "bob" and claims_b["exp"] - claims_b["iat"] == 60
    assert registry.get_sample_value("jwt_signing_key", {"kid": kid_a}) is None
    assert sample(registry, "jwt_signing_key", kid=kid_b) == 1


def test_signer_never_pairs_a_key_with_another_keys_kid(
    tmp_path: Path, rsa_keys: Keys, metrics: ClientMetrics, closing: Any
) -> None:
    (a, kid_a), (b, kid_b), _ = rsa_keys
    versions = [{"JWT_PRIVATE_KEY": private_pem(m), "JWT_KID": kid} for m, kid in ((a, kid_a), (b, kid_b))]
    mount = tmp_path / "secret"
    kubelet_write(mount, versions[0])
    signer = closing(Signer.from_dir(mount, "RS256", check_interval=0, metrics=metrics))
    verifier = JwksVerifier.from_jwks(jwks_text((a, kid_a), (b, kid_b)), metrics=metrics)
    stop = threading.Event()
    tokens: list[str] = []

    def sign_forever() -> None:
        while not stop.is_set():
            tokens.append(signer.sign(claims()))

    threads = [threading.Thread(target=sign_forever) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        for i in range(30):
            kubelet_write(mount, versions[(i + 1) % 2])
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    kids = {jwt.get_unverified_header(t)["kid"] for t in tokens}
    assert kids == {kid_a, kid_b}
    bad = [t for t in tokens if outcome(verifier, t, record=False) is not None]
    assert not bad, f"{len(bad)} of {len(tokens)} tokens carry a kid that is not their key's"


def test_items_are_read_from_one_version_when_a_swap_lands_mid_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic version of the race above: the swap happens between two item reads."""
    mount = tmp_path / "secret"
    kubelet_write(mount, {"JWT_PRIVATE_KEY": "key-1", "JWT_KID": "kid-1"})
    real_open = Path.open
    swapped: list[bool] = []

    def open_then_swap(self: Path, *args: Any, **kwargs: Any) -> Any:
        handle = real_open(self, *args, **kwargs)
        if self.name == "JWT_PRIVATE_KEY" and not swapped:
            swapped.append(True)
            kubelet_write(mount, {"JWT_PRIVATE_KEY": "key-2", "JWT_KID": "kid-2"})
        return handle

    monkeypatch.setattr(Path, "open", open_then_swap)
    _, items = mounts.read_items(mount, ["JWT_PRIVATE_KEY", "JWT_KID"])
    assert swapped
    assert items == {"JWT_PRIVATE_KEY": "key-2", "JWT_KID": "kid-2"}


def test_signer_with_an_encrypted_key_and_a_mounted_passphrase(
    tmp_path: Path, metrics: ClientMetrics, closing: Any
) -> None:
    material = generate("ES384")
    passphrase = secrets.token_urlsafe(32).encode()
    mount, pass_mount = tmp_path / "secret", tmp_path / "passphrase"
    kubelet_write(mount, {"JWT_PRIVATE_KEY": private_pem(material, passphrase), "JWT_KID": "bank_v7"})
    kubelet_write(pass_mount, {"passphrase": passphrase.decode()})
    with pytest.raises(KeySourceError, match="encrypted but no passphrase"):
        Signer.from_dir(mount, "ES384", metrics=metrics)
    signer = closing(
        Signer.from_dir(
            mount, "ES384", passphrase_file=pass_mount / "passphrase", check_interval=0, metrics=metrics
        )
    )
    assert independent_check(signer.sign(claims()), public_jwk(material, "bank_v7"))["sub"] == "alice"
    # Rotated passphrase and re-encrypted key arrive in two swaps; the signer follows both.
    passphrase2 = secrets.token_urlsafe(32).encode()
    kubelet_write(pass_mount, {"passphrase": passphrase2.decode()})
    kubelet_write(mount, {"JWT_PRIVATE_KEY": private_pem(material, passphrase2), "JWT_KID": "bank_v8"})
    wait_for(lambda: signer.kid == "bank_v8", DEADLINE, 0.02, "re-encrypted key")
    # A keyset that switches encryption off keeps working with the passphrase still mounted.
    kubelet_write(mount, {"JWT_PRIVATE_KEY": private_pem(material), "JWT_KID": "bank_v9"})
    wait_for(lambda: signer.kid == "bank_v9", DEADLINE, 0.02, "unencrypted key")


def test_signer_hmac_and_thumbprint_kid(
    tmp_path: Path, hs_secrets: dict[str, str], metrics: ClientMetrics
) -> None:
    new = hs_secrets["new"]
    mount = tmp_path / "secret"
    kubelet_write(mount, {"JWT_SECRET": new})
    with pytest.raises(KeySourceError, match="JWT_KID is missing"):
        Signer.from_dir(mount, "HS256", metrics=metrics)
    signer = Signer.from_dir(mount, "HS256", kid_item=None, metrics=metrics)
    assert signer.kid == secret_thumbprint(new) == thumbprint(load_raw_secret(new, "HS256"))
    token = signer.sign(claims())
    jwk = {"kty": "oct", "k": b64url(new.encode()), "alg": "HS256"}
    assert independent_check(token, jwk)["sub"] == "alice"
    with pytest.raises(ValueError, match="cannot be overridden"):
        signer.sign(claims(), headers={"kid": "mine"})
    assert jwt.get_unverified_header(signer.sign(claims(), headers={"typ": "at+jwt"}))["typ"] == "at+jwt"


def test_signer_refuses_a_key_that_does_not_fit_the_algorithm(
    tmp_path: Path, rsa_keys: Keys, metrics: ClientMetrics
) -> None:
    (a, kid_a), _, _ = rsa_keys
    mount = tmp_path / "secret"
    kubelet_write(mount, {"JWT_PRIVATE_KEY": private_pem(a), "JWT_KID": kid_a})
    with pytest.raises(KeySourceError, match="ES256 needs an EC"):
        Signer.from_dir(mount, "ES256", metrics=metrics)
    with pytest.raises(KeySourceError, match="signing key item PM__JWT__PRIVATE_KEY is missing"):
        Signer.from_dir(mount, "RS256", key_item="PM__JWT__PRIVATE_KEY", metrics=metrics)


# ---------------------------------------------------------------------- JWKS over HTTP


class JwksServer:
    """A local JWKS endpoint that counts its requests and can be told to fail."""

    def __init__(self, document: str) -> None:
        self.document = document
        self.requests = 0
        self.not_modified = 0
        self.fail = False
        self.lock = threading.Lock()
        server_self = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with server_self.lock:
                    server_self.requests += 1
                    body, fail = server_self.document.encode(), server_self.fail
                etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
                if fail:
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.headers.get("If-None-Match") == etag:
                    with server_self.lock:
                        server_self.not_modified += 1
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", etag)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def count(self) -> int:
        with self.lock:
            return self.requests

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def jwks_server(rsa_keys: Keys) -> Iterator[JwksServer]:
    (a, kid_a), _, _ = rsa_keys
    server = JwksServer(jwks_text((a, kid_a)))
    yield server
    server.close()


def test_jwks_url_is_cached_for_the_ttl_then_refetched(
    jwks_server: JwksServer, rsa_keys: Keys, metrics: ClientMetrics, registry: CollectorRegistry, closing: Any
) -> None:
    (a, kid_a), (b, kid_b), _ = rsa_keys
    verifier = closing(
        JwksVerifier.from_url(jwks_server.url, cache_ttl=0.3, min_refetch_interval=0.1, metrics=metrics)
    )
    token_a = sign(a, claims(), kid_a)
    started = time.monotonic()
    for _ in range(20):
        verifier.verify(token_a)
    if time.monotonic() - started < 0.3:  # all within the TTL: served from the cache
        assert jwks_server.count() == 1
    jwks_server.document = jwks_text((b, kid_b))
    wait_for(
        lambda: outcome(verifier, token_a) is ValidationReason.UNKNOWN_KID,
        DEADLINE,
        0.05,
        "the TTL to expire and the new document to replace the old",
    )
    assert verifier.verify(sign(b, claims(), kid_b))["sub"] == "alice"
    assert sample(registry, "jwt_key_reloads_total", source="jwks_url", result="success") >= 2


def test_jwks_url_unknown_kid_refetch_is_rate_limited(
    jwks_server: JwksServer, rsa_keys: Keys, metrics: ClientMetrics
) -> None:
    (a, kid_a), (b, kid_b), _ = rsa_keys
    verifier = JwksVerifier.from_url(
        jwks_server.url, cache_ttl=3600, min_refetch_interval=0.5, metrics=metrics
    )
    assert jwks_server.count() == 1
    jwks_server.document = jwks_text((b, kid_b), (a, kid_a))
    token_b = sign(b, claims(), kid_b)
    # Right after a fetch an unknown kid does not trigger another one ...
    burst_started = time.monotonic()
    refused = [outcome(verifier, sign(b, claims(), f"forged-{i}")) for i in range(50)]
    if time.monotonic() - burst_started < 0.5:
        assert jwks_server.count() == 1
    assert set(refused) == {ValidationReason.UNKNOWN_KID}
    # ... but once the interval has passed the kid that just appeared is fetched and accepted.
    wait_for(lambda: outcome(verifier, token_b) is None, DEADLINE, 0.05, "refetch")
    fetched = jwks_server.count()
    for i in range(50):
        outcome(verifier, sign(b, claims(), f"forged-{i}"))
    assert jwks_server.count() - fetched <= 1 + int((time.monotonic() - burst_started) / 0.5)


def test_jwks_url_keeps_serving_cached_keys_when_the_endpoint_fails(
    jwks_server: JwksServer, rsa_keys: Keys, metrics: ClientMetrics, registry: CollectorRegistry
) -> None:
    (a, kid_a), _, _ = rsa_keys
    verifier = JwksVerifier.from_url(
        jwks_server.url, cache_ttl=0.05, min_refetch_interval=0.05, metrics=metrics
    )
    jwks_server.fail = True
    token_a = sign(a, claims(), kid_a)

    def verifies_through_failed_refetches() -> bool:
        assert verifier.verify(token_a)["sub"] == "alice"
        return sample(registry, "jwt_key_reloads_total", source="jwks_url", result="failure") >= 2

    wait_for(verifies_through_failed_refetches, DEADLINE, 0.05, "failed refetches")
    with pytest.raises(KeySourceError, match="HTTP 503"):
        verifier.refresh()
    jwks_server.fail = False
    verifier.refresh()

    # Unchanged document: refetches are conditional (ETag) and answered 304, keys stay.
    def revalidated() -> bool:
        assert verifier.verify(token_a)["sub"] == "alice"
        return jwks_server.not_modified > 0

    wait_for(revalidated, DEADLINE, 0.05, "a 304 revalidation")
    with pytest.raises(KeySourceError):
        JwksVerifier.from_url("http://127.0.0.1:9/jwks.json", timeout=0.5, metrics=metrics)
    with pytest.raises(ValueError, match="http or https"):
        JwksVerifier.from_url("file:///etc/passwd", metrics=metrics)


# ---------------------------------------------------------------------- project()


def test_project_lays_files_out_like_the_kubelet(tmp_path: Path) -> None:
    mount = tmp_path / "vol"
    project(mount, {"a": "1", "b": "2"})
    target = os.readlink(mount / "..data")
    assert target.startswith("..") and (mount / target).is_dir()
    assert os.readlink(mount / "a") == "..data/a"
    assert (mount / "a").read_text() == "1"
    project(mount, {"a": "3"})
    assert os.readlink(mount / "..data") != target
    assert not (mount / target).exists()
    assert not (mount / "b").is_symlink() and not (mount / "b").exists()
    assert (mount / "a").read_text() == "3"
    assert sorted(p.name for p in mount.iterdir()) == sorted(["..data", "a", os.readlink(mount / "..data")])
