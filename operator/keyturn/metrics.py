"""Prometheus metrics of the operator itself (never key material: kids and states only)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from keyturn.domain.model import HistoryEntry, HistoryResult, KeyState, Operation, Ring
from keyturn.domain.planner import Plan
from keyturn.domain.propagation import Share
from keyturn.domain.reasons import Reason
from keyturn.domain.spec import Spec

LABELS = ("namespace", "keyset")

RECONCILE_SECONDS = Histogram(
    "keyturn_reconcile_duration_seconds",
    "Time of one reconcile pass of a JwtKeySet",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
ROTATIONS = Counter("keyturn_rotations_total", "Key activations by trigger", [*LABELS, "trigger"])
REVOCATIONS = Counter("keyturn_revocations_total", "Keys revoked by trigger", [*LABELS, "trigger"])
ROLLBACKS = Counter(
    "keyturn_rollbacks_total", "Rollbacks to the previous key by trigger", [*LABELS, "trigger"]
)
LEADER = Gauge("keyturn_leader", "1 while this replica acts (holds the Lease, or runs alone), else 0")
FAILURES = Counter("keyturn_failures_total", "Failed operations by reason", [*LABELS, "reason"])
NEXT_ROTATION = Gauge(
    "keyturn_next_rotation_timestamp_seconds", "When the next scheduled activation is due (unix time)", LABELS
)
STALLED = Gauge("keyturn_keyset_stalled", "1 while the keyset is Stalled and needs a person", LABELS)
JWKS_KEYS = Gauge("keyturn_jwks_keys", "Public keys in the published JWKS", LABELS)
INTERVAL = Gauge("keyturn_rotation_interval_seconds", "Configured rotation interval (interval mode)", LABELS)
PROPAGATION = Gauge(
    "keyturn_propagation_ratio",
    "Share of consumers that accept the kid, as the propagation gate last measured it",
    [*LABELS, "kid"],
)
# The kids each keyset has a keyturn_propagation_ratio series for, so that stale ones are dropped
# without scanning every series of the gauge.
_propagation_kids: dict[tuple[str, str], set[str]] = {}
_propagation_lock = threading.Lock()


class _KeyAges(Collector):
    """Ages are computed at scrape time, so they grow between the (rare) reconcile passes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rings: dict[tuple[str, str], Ring] = {}

    def update(self, namespace: str, name: str, ring: Ring) -> None:
        with self._lock:
            self._rings[(namespace, name)] = ring

    def forget(self, namespace: str, name: str) -> None:
        with self._lock:
            self._rings.pop((namespace, name), None)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = datetime.now(UTC)
        age = GaugeMetricFamily(
            "keyturn_key_age_seconds",
            "Seconds since each key was created, by state",
            labels=[*LABELS, "kid", "state"],
        )
        signing = GaugeMetricFamily(
            "keyturn_current_key_signing_seconds", "Seconds the current key has been signing", labels=LABELS
        )
        count = GaugeMetricFamily(
            "keyturn_keys", "Keys known to Keyturn, by state", labels=[*LABELS, "state"]
        )
        with self._lock:
            rings = dict(self._rings)
        for (namespace, name), ring in rings.items():
            per_state = {str(s): 0 for s in KeyState}
            for key in ring.keys:
                per_state[str(key.state)] += 1
                age.add_metric(
                    [namespace, name, key.kid, str(key.state)], (now - key.created_at).total_seconds()
                )
                if key.state is KeyState.CURRENT and key.activated_at is not None:
                    signing.add_metric([namespace, name], (now - key.activated_at).total_seconds())
            for state, value in per_state.items():
                count.add_metric([namespace, name, state], value)
        yield age
        yield signing
        yield count

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())


KEY_AGES = _KeyAges()
REGISTRY.register(KEY_AGES)


def _new_entries(before: Ring, after: Ring) -> list[HistoryEntry]:
    old = set(before.history)
    return [h for h in after.history if h not in old]


def record_plan(namespace: str, name: str, before: Ring, plan: Plan, spec: Spec) -> None:
    ring = plan.ring
    for entry in _new_entries(before, ring):
        labels = (namespace, name, str(entry.trigger))
        if entry.operation is Operation.ROTATE:
            ROTATIONS.labels(*labels).inc()
        elif entry.operation is Operation.REVOKE:
            REVOCATIONS.labels(*labels).inc()
        elif entry.operation is Operation.ROLLBACK:
            if entry.result is HistoryResult.ROLLED_BACK:
                ROLLBACKS.labels(*labels).inc()
            else:
                FAILURES.labels(namespace, name, str(Reason.ROLLBACK_IMPOSSIBLE)).inc()
        elif entry.operation is Operation.ANALYSIS and entry.result is HistoryResult.FAILED:
            FAILURES.labels(namespace, name, str(Reason.ANALYSIS_FAILED)).inc()
    if plan.next_rotation_at is not None:
        NEXT_ROTATION.labels(namespace, name).set(plan.next_rotation_at.timestamp())
    else:
        _drop(NEXT_ROTATION, namespace, name)
    if not spec.symmetric:  # an HMAC keyset publishes no JWKS: no series, so no false "JWKS empty" alert
        JWKS_KEYS.labels(namespace, name).set(sum(1 for k in ring.keys if k.verifies))
    if spec.rotation.interval is not None:
        INTERVAL.labels(namespace, name).set(spec.rotation.interval.total_seconds())
    else:  # a cron keyset has no interval: a series left from before a switch would be stale
        _drop(INTERVAL, namespace, name)
    KEY_AGES.update(namespace, name, ring)


def record_propagation(namespace: str, name: str, shares: Mapping[str, Share]) -> None:
    """The gate's answers of this pass; a kid not asked about (or without data) has no series."""
    measured = {kid: share.value for kid, share in shares.items() if share.value is not None}
    with _propagation_lock:
        before = _propagation_kids.get((namespace, name), set())
        for kid in before - set(measured):
            with contextlib.suppress(KeyError):
                PROPAGATION.remove(namespace, name, kid)
        for kid, value in measured.items():
            PROPAGATION.labels(namespace, name, kid).set(value)
        if measured:
            _propagation_kids[(namespace, name)] = set(measured)
        else:
            _propagation_kids.pop((namespace, name), None)


def _drop(gauge: Gauge, namespace: str, name: str) -> None:
    """Remove a series if it exists (without scanning every series of the gauge on each pass)."""
    with contextlib.suppress(KeyError):
        gauge.remove(namespace, name)


def forget(namespace: str, name: str) -> None:
    """A deleted keyset leaves no stale series behind."""
    KEY_AGES.forget(namespace, name)
    for gauge in (NEXT_ROTATION, STALLED, JWKS_KEYS, INTERVAL):
        _drop(gauge, namespace, name)
    record_propagation(namespace, name, {})
