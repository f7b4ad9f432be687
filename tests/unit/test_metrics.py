"""metrics.py: the metrics the operator exposes are the ones its docs, dashboard and alerts use,
and a series that no longer applies to a keyset's spec is dropped."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from keyturn import metrics
from keyturn.domain.model import Ring
from keyturn.domain.planner import Plan
from keyturn.domain.propagation import Share
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


def ratio(name: str, kid: str) -> float | None:
    return REGISTRY.get_sample_value(
        "keyturn_propagation_ratio", {"namespace": NAMESPACE, "keyset": name, "kid": kid}
    )


WHEN = datetime(2026, 5, 1, tzinfo=UTC)


def test_the_propagation_ratio_follows_the_kids_the_gate_asks_about(keyset: str) -> None:
    metrics.record_propagation(NAMESPACE, keyset, {"k2": Share(WHEN, 0.5), "k1": Share(WHEN, 1.0)})
    assert (ratio(keyset, "k2"), ratio(keyset, "k1")) == (0.5, 1.0)
    metrics.record_propagation(NAMESPACE, keyset, {"k2": Share(WHEN, 0.75)})
    assert (ratio(keyset, "k2"), ratio(keyset, "k1")) == (0.75, None)
    metrics.record_propagation(NAMESPACE, keyset, {"k2": Share(WHEN, None, "prometheus unreachable")})
    assert ratio(keyset, "k2") is None  # no data: no series, rather than a made-up number
    metrics.record_propagation(NAMESPACE, keyset, {"k3": Share(WHEN, 0.0)})
    metrics.forget(NAMESPACE, keyset)
    assert ratio(keyset, "k3") is None


ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "keyturn"


def exposed_metric_names() -> set[str]:
    """Names as Prometheus scrapes them (counters with _total, histograms with their series)."""
    names: set[str] = set()
    for family in REGISTRY.collect():
        if not family.name.startswith("keyturn_"):
            continue
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names |= {family.name, *(f"{family.name}_{s}" for s in ("bucket", "count", "sum"))}
        else:
            names.add(family.name)
    return names


def test_every_metric_is_documented() -> None:
    doc = (ROOT / "docs" / "metrics.md").read_text()
    exposed = exposed_metric_names()
    assert len(exposed) >= 12
    missing = sorted(
        n for n in exposed if not n.endswith(("_bucket", "_count", "_sum")) and f"`{n}" not in doc
    )
    assert not missing, f"docs/metrics.md does not describe {missing}"


@pytest.mark.parametrize(
    "path",
    [
        CHART / "files" / "dashboard.json",
        CHART / "templates" / "prometheusrule.yaml",
        ROOT / "docs" / "metrics.md",
    ],
    ids=lambda p: p.name,
)
def test_dashboards_alerts_and_docs_only_use_metrics_that_exist(path: Path) -> None:
    used = set(re.findall(r"\bkeyturn_[a-z_]+\b", path.read_text()))
    unknown = sorted(used - exposed_metric_names())
    assert not unknown, f"{path.name} refers to metrics the operator does not expose: {unknown}"
