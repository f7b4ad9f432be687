"""Fixtures of the client tests: keys (RSA and EC with their thumbprint kids, HMAC secrets), metrics,
and closing what a test opened."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from keyturn.client import ClientMetrics
from keyturn.keys.generation import generate
from keyturn.keys.material import KeyMaterial, raw_secret
from keyturn.keys.thumbprints import thumbprint
from unit.client.support import JwksMount


@pytest.fixture(scope="module")
def rsa_keys() -> list[tuple[KeyMaterial, str]]:
    keys = [generate("RS256") for _ in range(3)]
    return [(k, thumbprint(k)) for k in keys]


@pytest.fixture(scope="module")
def keys() -> list[tuple[KeyMaterial, str]]:
    made = [generate("ES256") for _ in range(3)]
    return [(k, thumbprint(k)) for k in made]


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


@pytest.fixture
def jwks_mount(tmp_path: Path, metrics: ClientMetrics, closing: Callable[[Any], Any]) -> JwksMount:
    return JwksMount(tmp_path / "jwks", metrics, closing)


@pytest.fixture
def hs_secrets() -> dict[str, str]:
    return {name: raw_secret(generate("HS256")) for name in ("old", "new", "next")}
