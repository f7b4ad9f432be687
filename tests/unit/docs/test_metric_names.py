"""The metric tables of metrics.md and client.md against the metrics the code registers, both ways,
and client.md's `reason` table against keyturn.client.ValidationReason."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry

import keyturn.metrics  # importing it registers the operator's metrics
from keyturn.client.metrics import ClientMetrics
from keyturn.client.reasons import ValidationReason
from unit.docs.sources import doc, section, table_after, tables, ticked


def scraped_names(registry: CollectorRegistry, prefix: str) -> set[str]:
    """The names a scrape shows: counters with `_total`, histograms by their own name."""
    names = set()
    for family in registry.collect():
        if family.name.startswith(prefix):
            names.add(f"{family.name}_total" if family.type == "counter" else family.name)
    return names


def first_column(rows: list[list[str]]) -> set[str]:
    return {name for row in rows for name in ticked(row[0])}


def test_metrics_md_describes_every_operator_metric_and_no_other() -> None:
    assert keyturn.metrics.KEY_AGES is not None  # the scrape-time gauges are registered too
    (rows,) = tables(section(doc("metrics.md"), "Every metric"))[:1]
    documented = first_column(rows)
    exposed = scraped_names(REGISTRY, "keyturn_")
    assert len(exposed) >= 12
    assert not exposed - documented, f"metrics.md does not describe {sorted(exposed - documented)}"
    assert not documented - exposed, (
        f"metrics.md describes metrics nobody exports: {sorted(documented - exposed)}"
    )


def test_client_md_describes_every_client_metric_and_no_other() -> None:
    registry = CollectorRegistry()
    ClientMetrics(registry)
    exposed = scraped_names(registry, "")
    documented = first_column(table_after(section(doc("client.md"), "Metrics"), "| metric |"))
    assert len(exposed) >= 4
    assert documented == exposed


def test_client_md_lists_every_validation_reason_with_its_result() -> None:
    rows = table_after(section(doc("client.md"), "Metrics"), "| reason |")
    documented = {name: row[1] for row in rows for name in ticked(row[0])}
    assert set(documented) == {str(r) for r in ValidationReason}
    wrong = {name: result for name, result in documented.items() if ValidationReason(name).result != result}
    assert not wrong, f"client.md gives these reasons the wrong result label: {wrong}"
