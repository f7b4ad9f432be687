"""Fixtures of the keys tests, shared by the whole package: RSA generation is slow."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from keyturn.keys.generation import generate
from keyturn.keys.material import KeyMaterial


@pytest.fixture(scope="package")
def keys() -> Callable[[str], KeyMaterial]:
    """One key per algorithm, generated lazily and shared: RSA generation is slow."""
    cache: dict[str, KeyMaterial] = {}

    def get(alg: str) -> KeyMaterial:
        if alg not in cache:
            cache[alg] = generate(alg)
        return cache[alg]

    return get


@pytest.fixture(scope="package")
def rsa4096() -> KeyMaterial:
    """The only RSA-4096 key of the suite."""
    return generate("RS256", key_size=4096)
