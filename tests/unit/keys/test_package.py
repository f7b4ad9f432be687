"""Promises of keyturn.keys as a whole: no error message quotes key material, and no module needs an
operator-only dependency (the client library ships with cryptography, PyJWT and prometheus-client only).
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from collections.abc import Callable

import pytest

import keyturn.keys
from keyturn.keys.jwk import private_jwk, public_jwk
from keyturn.keys.material import KeyMaterial, load_raw_secret, raw_secret
from keyturn.keys.pem import load_private_pem, private_pem
from keyturn.keys.signing import verify
from keyturn.keys.thumbprints import thumbprint
from unit.keys.support import PASSPHRASE, assert_no_secret_in


def test_error_messages_reveal_no_secret(keys: Callable[[str], KeyMaterial]) -> None:
    hs = keys("HS512")
    messages: list[str] = []

    def capture(fn: Callable[[], object]) -> None:
        with pytest.raises(Exception) as excinfo:  # noqa: PT011 - any type, the message is the point
            fn()
        messages.append(str(excinfo.value))

    capture(lambda: public_jwk(hs, "k"))
    capture(lambda: load_raw_secret(raw_secret(hs)[:30], "HS256"))
    capture(lambda: load_raw_secret(raw_secret(hs) + " ", "HS512"))
    capture(lambda: verify("a.b.c", private_jwk(hs, "k"), "HS256"))
    capture(lambda: verify("a.b.c", {**private_jwk(hs, "k"), "kty": "bogus"}, "HS512"))
    capture(lambda: verify("a.b.c", {**private_jwk(hs, "k"), "k": 5}, "HS512"))
    capture(lambda: thumbprint({"kty": "oct"}))
    for message in messages:
        assert_no_secret_in(message, hs)

    ec_key = keys("ES512")
    pem = private_pem(ec_key, PASSPHRASE)
    ec_messages: list[str] = []
    for call in (
        lambda: load_private_pem(pem, b"wrong", "ES512"),
        lambda: load_private_pem(pem, PASSPHRASE, "ES256"),
        lambda: verify("x.y.z", private_jwk(ec_key, "k"), "ES256"),
        lambda: verify("x.y.z", {**private_jwk(ec_key, "k"), "x": "@@"}, "ES512"),
    ):
        with pytest.raises(ValueError) as excinfo:  # noqa: PT011
            call()
        ec_messages.append(str(excinfo.value))
    for message in ec_messages:
        assert_no_secret_in(message, ec_key)
        assert PASSPHRASE.decode() not in message


OPERATOR_ONLY = {"kopf", "kubernetes", "prometheus_client", "aiohttp", "croniter", "yaml"}
MODULES = sorted(m.name for m in pkgutil.iter_modules(keyturn.keys.__path__))
# The only modules that serve the operator alone, and so may read keyturn.domain's types. Every other
# one must stand alone: the client imports algorithms, material, jwk, pem (der) and thumbprints.
OPERATOR_SIDE = {"new_keys", "secret_data"}


def loaded_after_import(module: str) -> set[str]:
    """Modules a fresh interpreter holds after importing `module` alone."""
    script = (
        f"import importlib, json, sys; importlib.import_module({module!r}); print(json.dumps([*sys.modules]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(done.stdout))


@pytest.mark.parametrize("name", MODULES)
def test_no_keys_module_imports_an_operator_only_dependency(name: str) -> None:
    assert set(MODULES) > OPERATOR_SIDE
    loaded = loaded_after_import(f"keyturn.keys.{name}")
    assert f"keyturn.keys.{name}" in loaded
    assert not {m.split(".")[0] for m in loaded} & OPERATOR_ONLY
    outside = {
        m for m in loaded if m.startswith("keyturn.") and not m.startswith(("keyturn.keys", "keyturn.domain"))
    }
    assert not outside
    if name not in OPERATOR_SIDE:
        assert not {m for m in loaded if m.startswith("keyturn.domain")}


def test_the_client_library_loads_no_operator_code() -> None:
    loaded = loaded_after_import("keyturn.client")
    assert "keyturn.client.signer" in loaded and "keyturn.keys.pem" in loaded
    assert not {m.split(".")[0] for m in loaded} & (OPERATOR_ONLY - {"prometheus_client"})
    assert not {
        m for m in loaded if m.startswith("keyturn.") and not m.startswith(("keyturn.keys", "keyturn.client"))
    }
