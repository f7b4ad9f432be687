"""propagation.py: the propagation gate's questions to a real HTTP server answering like Prometheus.

Each kid is asked about at most once per interval; an answer of any kind, a slow or refused
Prometheus included, is a Share and never an exception.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web

from keyturn import propagation, rollout
from keyturn.domain.egress import EgressPolicy
from keyturn.domain.propagation import Share
from keyturn.domain.spec import Spec
from keyturn.domain.spec_parser import parse_spec
from keyturn.propagation import PropagationGate
from unit.adapters.test_prometheus import server, vector

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def gated(address: str, **fields: Any) -> Spec:
    raw = {"prometheus": {"address": address}, "interval": "15s", **fields}
    return parse_spec("api-keys", "auth", {"propagation": raw})


class Prometheus:
    """Answers `share` to every query and remembers what it was asked."""

    def __init__(self, share: str = "1", delay: float = 0.0) -> None:
        self.share = share
        self.delay = delay
        self.queries: list[str] = []
        self.params: list[dict[str, str]] = []

    async def handler(self, request: web.Request) -> web.StreamResponse:
        self.queries.append(request.query["query"])
        self.params.append(dict(request.query))
        await asyncio.sleep(self.delay)
        return web.Response(body=vector(self.share))


Step = tuple[dict[str, Any], list[str], datetime]


def ask_all(prometheus: Prometheus, steps: list[Step]) -> list[dict[str, Share]]:
    """Ask one gate several times against one server; each step is (spec fields, kids, now)."""

    async def run() -> list[dict[str, Share]]:
        gate = PropagationGate(EgressPolicy())
        answers = []
        async with server(prometheus.handler) as address:
            for fields, kids, now in steps:
                answers.append(await gate.ask(gated(address, **fields), kids, now))
        return answers

    return asyncio.run(run())


def test_the_query_names_the_kid_and_the_keyset_escaped() -> None:
    prometheus = Prometheus("0.5")
    query = 'count(x{kid="$kid", namespace="$namespace", keyset="$keyset"})'
    (answers,) = ask_all(prometheus, [({"query": query}, ['k"1'], NOW)])
    assert prometheus.queries == ['count(x{kid="k\\"1", namespace="auth", keyset="api-keys"})']
    assert answers == {'k"1': Share(NOW, 0.5)}


def test_the_gate_asks_at_prometheus_own_time() -> None:
    """No `time` parameter: asked at the pass's whole-second clock, Prometheus could leave out the
    scrape that shows the last consumer with the kid, and the key would wait one interval more."""
    prometheus = Prometheus("0.5")
    ask_all(prometheus, [({}, ["k2"], NOW + timedelta(milliseconds=900))])
    assert [sorted(params) for params in prometheus.params] == [["query"]]


def test_a_kid_is_asked_about_at_most_once_per_interval() -> None:
    prometheus = Prometheus("0.5")
    steps: list[Step] = [
        ({}, ["k2"], NOW),
        ({}, ["k2"], NOW + timedelta(seconds=14)),
        ({}, ["k2", "k1"], NOW + timedelta(seconds=14)),
        ({}, ["k2"], NOW + timedelta(seconds=15)),
    ]
    answers = ask_all(prometheus, steps)
    assert len(prometheus.queries) == 3  # k2, then k1, then k2 again after the interval
    assert answers[1]["k2"].at == NOW  # the remembered answer, with its own time
    assert answers[3]["k2"].at == NOW + timedelta(seconds=15)


def test_a_changed_query_is_asked_at_once() -> None:
    prometheus = Prometheus()
    steps: list[Step] = [
        ({}, ["k2"], NOW),
        ({"query": 'count(y{kid="$kid"})'}, ["k2"], NOW + timedelta(seconds=1)),
    ]
    ask_all(prometheus, steps)
    assert prometheus.queries[1] == 'count(y{kid="k2"})'


def test_only_the_kids_asked_about_are_remembered() -> None:
    prometheus = Prometheus()
    steps: list[Step] = [
        ({}, ["k2"], NOW),
        ({}, ["k3"], NOW + timedelta(seconds=1)),
        ({}, ["k2"], NOW + timedelta(seconds=2)),  # k2 was dropped when only k3 was asked about
    ]
    ask_all(prometheus, steps)
    assert len(prometheus.queries) == 3


def test_a_clock_that_went_back_asks_again() -> None:
    prometheus = Prometheus()
    ask_all(prometheus, [({}, ["k2"], NOW), ({}, ["k2"], NOW - timedelta(seconds=1))])
    assert len(prometheus.queries) == 2


def test_a_slow_prometheus_is_no_data_within_the_time_given() -> None:
    prometheus = Prometheus(delay=3.0)

    async def run() -> tuple[dict[str, Share], float]:
        async with server(prometheus.handler) as address:
            started = time.monotonic()
            answers = await PropagationGate(EgressPolicy()).ask(gated(address), ["k2"], NOW, within=0.3)
            return answers, time.monotonic() - started

    answers, took = asyncio.run(run())
    assert took < 2.0
    assert answers["k2"].value is None and answers["k2"].error


def test_an_address_outside_the_allow_list_is_refused_without_a_request() -> None:
    prometheus = Prometheus()

    async def run() -> dict[str, Share]:
        async with server(prometheus.handler) as address:
            gate = PropagationGate(EgressPolicy.from_patterns(["*.monitoring.svc"]))
            return await gate.ask(gated(address), ["k2"], NOW)

    answers = asyncio.run(run())
    assert prometheus.queries == []
    assert answers["k2"].value is None
    assert "propagation.prometheus.address" in answers["k2"].error and "allow-list" in answers["k2"].error


@pytest.fixture
def allow_list() -> Iterator[None]:
    rollout.configure_egress(EgressPolicy.from_patterns(["*.monitoring.svc"]))
    yield
    rollout.configure_egress(EgressPolicy())


@pytest.mark.usefixtures("allow_list")
def test_the_operator_s_allow_list_applies_to_the_gate() -> None:
    prometheus = Prometheus()

    async def run() -> dict[str, Share]:
        async with server(prometheus.handler) as address:
            return await PropagationGate().ask(gated(address), ["k2"], NOW)

    answers = asyncio.run(run())
    assert prometheus.queries == [] and "allow-list" in answers["k2"].error
    assert propagation.PropagationGate().egress.patterns  # the process-wide policy, not "any host"


def test_without_a_gate_nothing_is_asked() -> None:
    spec = parse_spec("api-keys", "auth", {})
    assert asyncio.run(PropagationGate().ask(spec, ["k2"], NOW)) == {}
