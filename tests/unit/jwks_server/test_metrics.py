"""The JWKS server's metrics: what they count, and that docs/jwks-server.md describes each one."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from keyturn.jwks_server.metrics import Stats, registry
from keyturn.jwks_server.store import Store
from unit.jwks_server.test_store import configmap

DOC = Path(__file__).resolve().parents[3] / "docs" / "jwks-server.md"


def samples(stats: Stats, store: Store) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry(stats, store)).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_requests_bytes_and_the_304_share() -> None:
    store, stats = Store(["ns"]), Stats()
    store.replace("ns", [configmap()])
    for code, size in ((200, 100), (200, 50), (304, 0), (304, 0), (304, 0), (404, 0)):
        stats.count(("ns", "keys") if code != 404 else ("", ""), code, size)
    found = samples(stats, store)
    keyset = (("code", "200"), ("keyset", "keys"), ("namespace", "ns"))
    assert found[("keyturn_jwks_server_requests_total", keyset)] == 2
    unknown = (("code", "404"), ("keyset", ""), ("namespace", ""))
    assert found[("keyturn_jwks_server_requests_total", unknown)] == 1
    assert (
        found[("keyturn_jwks_server_response_bytes_total", (("keyset", "keys"), ("namespace", "ns")))] == 150
    )
    assert found[("keyturn_jwks_server_not_modified_ratio", ())] == 0.6
    assert found[("keyturn_jwks_server_documents", ())] == 1
    assert 0 <= found[("keyturn_jwks_server_data_age_seconds", ())] < 60


def test_the_data_age_is_minus_one_before_the_first_list() -> None:
    assert samples(Stats(), Store(["ns"]))[("keyturn_jwks_server_data_age_seconds", ())] == -1


def test_every_metric_is_documented() -> None:
    families = registry(Stats(), Store(["ns"])).collect()
    names = {
        f"{f.name}_total" if f.type == "counter" else f.name
        for f in families
        if f.name.startswith("keyturn_")
    }
    assert len(names) == 7
    doc = DOC.read_text()
    assert not sorted(n for n in names if f"`{n}" not in doc)
