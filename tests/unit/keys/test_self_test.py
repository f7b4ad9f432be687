"""keyturn.keys.self_test: each way a broken key or library could pass a naive check makes it fail."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jwt
import pytest

from keyturn.keys.generation import generate
from keyturn.keys.jwk import private_jwk, public_jwk
from keyturn.keys.material import KeyMaterial
from keyturn.keys.self_test import KeySelfTestError, self_test
from keyturn.keys.signing import sign
from unit.keys.support import assert_no_secret_in


def test_self_test_rejects_a_mismatched_public_key(
    monkeypatch: pytest.MonkeyPatch, keys: Callable[[str], KeyMaterial]
) -> None:
    material = keys("ES256")
    stranger = public_jwk(generate("ES256"), "k")
    monkeypatch.setattr("keyturn.keys.self_test.public_jwk", lambda _material, _kid: stranger)
    with pytest.raises(KeySelfTestError, match=r"'k'.*ES256.*TokenVerificationError"):
        self_test(material, "k")


def test_self_test_rejects_a_mismatched_hmac_secret(
    monkeypatch: pytest.MonkeyPatch, keys: Callable[[str], KeyMaterial]
) -> None:
    material = keys("HS256")
    other = private_jwk(generate("HS256"), "k")
    monkeypatch.setattr("keyturn.keys.self_test.private_jwk", lambda _material, _kid: other)
    with pytest.raises(KeySelfTestError) as excinfo:
        self_test(material, "k")
    assert_no_secret_in(str(excinfo.value), material)


def test_self_test_rejects_a_verifier_that_accepts_anything(
    monkeypatch: pytest.MonkeyPatch, keys: Callable[[str], KeyMaterial]
) -> None:
    material = keys("EdDSA")

    def accept_all(token: str, *_args: object, **_kwargs: object) -> dict[str, Any]:
        return dict(jwt.decode(token, options={"verify_signature": False}))

    monkeypatch.setattr("keyturn.keys.self_test.verify", accept_all)
    with pytest.raises(KeySelfTestError, match="tampered"):
        self_test(material, "k")


def test_self_test_rejects_a_signer_that_drops_the_kid(
    monkeypatch: pytest.MonkeyPatch, keys: Callable[[str], KeyMaterial]
) -> None:
    material = keys("ES384")
    real_sign = sign
    monkeypatch.setattr(
        "keyturn.keys.self_test.sign", lambda m, claims, _kid: real_sign(m, claims, "someone-else")
    )
    with pytest.raises(KeySelfTestError, match="kid"):
        self_test(material, "k")


def test_self_test_wraps_unexpected_errors(
    monkeypatch: pytest.MonkeyPatch, keys: Callable[[str], KeyMaterial]
) -> None:
    def broken(*_args: object) -> str:
        raise RuntimeError("HSM unavailable")

    monkeypatch.setattr("keyturn.keys.self_test.sign", broken)
    with pytest.raises(KeySelfTestError, match="RuntimeError: HSM unavailable"):
        self_test(keys("RS256"), "k")
