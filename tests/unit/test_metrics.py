"""metrics.py: the metrics the operator exposes are the ones its docs, dashboard and alerts use."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

import keyturn.metrics  # noqa: F401 - importing it registers the operator's metrics

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
