"""Fixtures of the harness tests: a component Context on made-up ports, nothing started."""

from __future__ import annotations

from pathlib import Path

import pytest

from localcluster import components
from localcluster.components import Context


@pytest.fixture
def context(tmp_path: Path) -> Context:
    ports = {name: 20000 + i for i, name in enumerate(components.port_names())}
    return Context(tmp_path, tmp_path / "bin", ports)
