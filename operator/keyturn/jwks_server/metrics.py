"""The JWKS server's metrics: counted as plain integers on the request path, exported at scrape time.

A prometheus_client Counter takes a lock per increment; at tens of thousands of requests a second
that is measurable, so requests are counted in dicts (the event loop is the only writer) and turned
into metric families only when /metrics is scraped. Requests for unknown keysets are counted with
empty namespace and keyset labels: a label per requested path would let anyone grow the series.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator

from prometheus_client import ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from keyturn.jwks_server.store import Store

Ref = tuple[str, str]  # (namespace, keyset); ("", "") when the request named none that is served


class Stats:
    def __init__(self) -> None:
        self.requests: defaultdict[tuple[str, str, int], int] = defaultdict(int)
        self.bytes: defaultdict[Ref, int] = defaultdict(int)
        self.started = time.time()

    def count(self, ref: Ref, code: int, size: int) -> None:
        self.requests[(ref[0], ref[1], code)] += 1
        if size:
            self.bytes[ref] += size


class ServerCollector(Collector):
    def __init__(self, stats: Stats, store: Store) -> None:
        self.stats = stats
        self.store = store

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "keyturn_jwks_server_requests",
            "HTTP requests by keyset and status code",
            labels=["namespace", "keyset", "code"],
        )
        ok = modified = 0
        for (namespace, keyset, code), value in list(self.stats.requests.items()):
            requests.add_metric([namespace, keyset, str(code)], value)
            ok += value if code == 200 else 0
            modified += value if code == 304 else 0
        yield requests
        sent = CounterMetricFamily(
            "keyturn_jwks_server_response_bytes", "Body bytes sent by keyset", labels=["namespace", "keyset"]
        )
        for (namespace, keyset), value in list(self.stats.bytes.items()):
            sent.add_metric([namespace, keyset], value)
        yield sent
        yield GaugeMetricFamily(
            "keyturn_jwks_server_not_modified_ratio",
            "Share of document requests answered 304 Not Modified since the start",
            value=modified / (ok + modified) if ok + modified else 0.0,
        )
        age = self.store.data_age()
        yield GaugeMetricFamily(
            "keyturn_jwks_server_data_age_seconds",
            "Seconds since the served data was last confirmed current by the watch (-1: not loaded yet)",
            value=-1.0 if age is None else age,
        )
        snapshot = self.store.snapshot
        yield GaugeMetricFamily(
            "keyturn_jwks_server_documents", "JWKS documents served", value=len(snapshot.by_keyset)
        )
        yield GaugeMetricFamily(
            "keyturn_jwks_server_issuer_conflicts",
            "Issuers claimed by more than one ConfigMap (the older one is served)",
            value=len(snapshot.conflicts),
        )
        skipped = CounterMetricFamily(
            "keyturn_jwks_server_skipped",
            "ConfigMaps or annotations skipped because they could not be used, by reason",
            labels=["reason"],
        )
        for reason, value in list(self.store.skipped.items()):
            skipped.add_metric([reason], value)
        yield skipped


def registry(stats: Stats, store: Store) -> CollectorRegistry:
    """A registry of the server's own metrics (not the process-wide default one)."""
    out = CollectorRegistry(auto_describe=False)
    out.register(ServerCollector(stats, store))
    ProcessCollector(registry=out)
    return out
