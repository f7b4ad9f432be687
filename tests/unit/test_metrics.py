"""The operator's gauges follow the keyset's spec: a series that no longer applies is dropped."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import REGISTRY

from keyturn import metrics
from keyturn.domain.model import Ring
from keyturn.domain.planner import Plan
from keyturn.domain.spec_parser import parse_spec

NAMESPACE = "metrics-test"


def interval_series(name: str) -> float | None:
    return REGISTRY.get_sample_value(
        "keyturn_rotation_interval_seconds", {"namespace": NAMESPACE, "keyset": name}
    )


def record(name: str, rotation: dict[str, Any]) -> None:
    spec = parse_spec(name, NAMESPACE, {"rotation": rotation})
    metrics.record_plan(NAMESPACE, name, Ring(), Plan(ring=Ring()), spec)


@pytest.fixture
def keyset(request: pytest.FixtureRequest) -> Iterator[str]:
    name = request.node.name.removeprefix("test_").replace("_", "-")[:60]
    yield name
    metrics.forget(NAMESPACE, name)


def test_an_interval_keyset_exports_its_interval(keyset: str) -> None:
    record(keyset, {"interval": "90d"})
    assert interval_series(keyset) == 90 * 86400


def test_a_switch_to_cron_drops_the_interval_series(keyset: str) -> None:
    record(keyset, {"interval": "90d"})
    record(keyset, {"schedule": "0 2 1 */3 *"})
    assert interval_series(keyset) is None, "a cron keyset must not keep the interval it had before"


def test_a_switch_back_to_an_interval_exports_it_again(keyset: str) -> None:
    record(keyset, {"schedule": "0 2 1 */3 *"})
    assert interval_series(keyset) is None
    record(keyset, {"interval": "30d"})
    assert interval_series(keyset) == 30 * 86400
