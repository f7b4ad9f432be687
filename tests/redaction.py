"""The repr check of every object that holds key material: needles taken from the material itself.

Reprs end up in tracebacks, debug logs, pytest's own failure output and debuggers, so each class
that holds a private key, an HMAC secret or a stored PEM is checked with `assert_hidden`, next to
the tests of its module. keys/test_material.py proves the needles are found where material is shown.
"""

from __future__ import annotations

from keyturn.keys.algorithms import is_symmetric
from keyturn.keys.jwk import private_jwk
from keyturn.keys.material import KeyMaterial, raw_secret
from keyturn.keys.pem import private_pem

# One algorithm per kind of material: RSA, EC and OKP private keys and an HMAC secret.
REPR_ALGORITHMS = ["RS256", "ES256", "EdDSA", "HS256"]


def needles(material: KeyMaterial) -> list[str]:
    """Fragments that only the material itself contains."""
    if is_symmetric(material.algorithm):
        secret = raw_secret(material)
        return [secret, secret[:16], secret[-16:]]
    lines = private_pem(material).splitlines()[1:-1]
    d = private_jwk(material, "k")["d"]
    return [lines[0][-24:], lines[-1][:24], d[:16], d[-16:]]


def shown(obj: object) -> str:
    return f"{obj!r}\n{obj!s}\n{[obj]!r}\n{ {'k': obj}!r}"


def assert_hidden(obj: object, material: KeyMaterial) -> None:
    text = shown(obj)
    for needle in needles(material):
        assert needle not in text, f"{type(obj).__name__} shows key material"


def stored(material: KeyMaterial) -> str:
    """The material as the Secret stores it: the secret text, or the private PEM."""
    return raw_secret(material) if is_symmetric(material.algorithm) else private_pem(material)
