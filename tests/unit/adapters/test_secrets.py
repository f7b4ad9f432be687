"""adapters/secrets.py: the operator's Secret snapshots and writes never show the material they carry."""

from __future__ import annotations

import pytest

from keyturn.adapters.secrets import SecretSnapshot, SecretWrite
from keyturn.keys.generation import generate
from keyturn.keys.material import KeyMaterial
from redaction import REPR_ALGORITHMS, assert_hidden, stored


@pytest.fixture(scope="module", params=REPR_ALGORITHMS)
def material(request: pytest.FixtureRequest) -> KeyMaterial:
    return generate(request.param)


def test_secret_snapshots_and_writes_of_the_operator(material: KeyMaterial) -> None:
    data = {"key-k.pem": stored(material)}
    snapshot = SecretSnapshot("s", data, {}, {}, (), "1")
    write = SecretWrite("s", data, "{}", "keyset")
    for obj in (snapshot, write):
        assert_hidden(obj, material)
