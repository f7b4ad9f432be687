"""client/signer.py: the Signer follows swaps, never pairs a key with another key's kid, hides its key."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt
import pytest
from jwcrypto import jwk as jc_jwk
from jwcrypto import jwt as jc_jwt
from prometheus_client import CollectorRegistry

from helpers import wait_for
from keyturn.client import ClientMetrics, JwksVerifier, KeySourceError, Signer, mounts
from keyturn.client.hmac_verifier import secret_thumbprint
from keyturn.client.signer import load_signing_key
from keyturn.keys.algorithms import is_symmetric
from keyturn.keys.generation import generate
from keyturn.keys.jwk import public_jwk
from keyturn.keys.material import KeyMaterial, load_raw_secret
from keyturn.keys.pem import private_pem
from keyturn.keys.thumbprints import thumbprint
from redaction import REPR_ALGORITHMS, assert_hidden, stored
from unit.client.support import DEADLINE, Keys, b64url, claims, jwks_text, kubelet_write, outcome, sample


@pytest.fixture(scope="module", params=REPR_ALGORITHMS)
def material(request: pytest.FixtureRequest) -> KeyMaterial:
    return generate(request.param)


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


def test_the_signer_and_its_key_never_show_the_material(material: KeyMaterial) -> None:
    signing_key = load_signing_key(material.algorithm, stored(material), "k", None, "test")
    signer = Signer.from_env(material.algorithm, environ=_env(material), metrics=_metrics())
    for obj in (signing_key, signer, signer.current()):
        assert_hidden(obj, material)
    signer.close()


def _env(material: KeyMaterial) -> dict[str, str]:
    item = "JWT_SECRET" if is_symmetric(material.algorithm) else "JWT_PRIVATE_KEY"
    return {item: stored(material), "JWT_KID": "k"}


def _metrics() -> ClientMetrics:
    return ClientMetrics(CollectorRegistry())
