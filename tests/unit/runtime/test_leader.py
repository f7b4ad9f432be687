"""runtime/leader.py: client-go's election against a fake Lease API: who takes the Lease when, what a
standby and a replica without access say, and a leader whose calls hang steps down in time."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any, cast

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from keyturn.runtime.leader import LeaderElector, LeaseTiming

NS, NAME = "keyturn-system", "keyturn"
DEFAULT = LeaseTiming()
FORBIDDEN = "the service account needs get, create and update on leases in that namespace"


class FakeLeases:
    """read/create/replace of one Lease, with resourceVersion checks like the API server's."""

    def __init__(self, lease: client.V1Lease | None = None, *, fail: int | None = None) -> None:
        self.lease = lease
        self.version = 1
        self.fail = fail  # every call answers this HTTP status
        self.hang = threading.Event()  # set: every call blocks until released
        self.release = threading.Event()
        self.writes = 0

    def _check(self) -> None:
        if self.hang.is_set():
            self.release.wait(5)
        if self.fail is not None:
            raise ApiException(status=self.fail, reason={403: "Forbidden", 500: "Internal"}.get(self.fail))

    def read_namespaced_lease(self, name: str, namespace: str, **_: Any) -> client.V1Lease:
        self._check()
        if self.lease is None:
            raise ApiException(status=404, reason="Not Found")
        meta = client.V1ObjectMeta(name=name, namespace=namespace, resource_version=str(self.version))
        return client.V1Lease(metadata=meta, spec=client.V1LeaseSpec(**spec(self.lease).to_dict()))

    def create_namespaced_lease(self, namespace: str, body: client.V1Lease, **_: Any) -> client.V1Lease:
        self._check()
        if self.lease is not None:
            raise ApiException(status=409, reason="Conflict")
        self.lease, self.writes = body, self.writes + 1
        return body

    def replace_namespaced_lease(self, name: str, namespace: str, body: client.V1Lease, **_: Any) -> Any:
        self._check()
        if body.metadata is None or body.metadata.resource_version != str(self.version):
            raise ApiException(status=409, reason="Conflict")
        self.version += 1
        self.lease, self.writes = body, self.writes + 1
        return body


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def held_by(holder: str, renewed: str = "2026-01-01T00:00:00.000000Z") -> client.V1Lease:
    """A Lease as another replica wrote it (MicroTimes as the API server's strings)."""
    written = client.V1LeaseSpec(
        holder_identity=holder, lease_duration_seconds=10, renew_time=cast(Any, renewed)
    )
    return client.V1Lease(metadata=client.V1ObjectMeta(name=NAME, namespace=NS), spec=written)


def spec(lease: client.V1Lease | None) -> client.V1LeaseSpec:
    assert lease is not None and lease.spec is not None
    return lease.spec


def elector(api: FakeLeases, clock: Clock | None = None, timing: LeaseTiming = DEFAULT) -> LeaderElector:
    e = LeaderElector(
        None, namespace=NS, name=NAME, identity="me-abc123", timing=timing, clock=clock or Clock()
    )
    cast(Any, e)._api = api  # the fake stands in for CoordinationV1Api
    return e


def round_(e: LeaderElector) -> bool:
    return asyncio.run(e._try())


@pytest.mark.parametrize(
    ("duration", "renew_deadline", "retry"),
    [(10.0, 7.0, 2.0), (60.0, 7.0, 2.0), (8.0, 5.6, 1.6), (2.0, 1.4, 0.4)],
    ids=["default", "long: client-go's 7 s and 2 s", "short: scaled", "shortest"],
)
def test_a_leader_always_steps_down_before_a_standby_may_take_over(
    duration: float, renew_deadline: float, retry: float
) -> None:
    timing = LeaseTiming.for_duration(duration)
    assert (timing.lease_duration, timing.renew_deadline, timing.retry) == pytest.approx(
        (duration, renew_deadline, retry)
    )
    assert timing.retry < timing.renew_deadline < timing.lease_duration


def test_the_first_replica_creates_the_lease_and_holds_it() -> None:
    api = FakeLeases()
    assert round_(elector(api))
    assert spec(api.lease).holder_identity == "me-abc123"
    assert spec(api.lease).lease_duration_seconds == 10


def test_a_standby_takes_over_a_lease_unrenewed_for_its_duration_on_its_own_clock() -> None:
    api, clock = FakeLeases(held_by("other-1")), Clock()
    e = elector(api, clock)
    assert not round_(e)  # first sight: the clock starts now, whatever renewTime says
    clock.now += 9.9
    assert not round_(e)
    clock.now += 0.1
    assert round_(e)
    assert spec(api.lease).holder_identity == "me-abc123"
    assert spec(api.lease).lease_transitions == 1


def test_a_standby_never_takes_a_renewed_lease() -> None:
    api, clock = FakeLeases(held_by("other-1")), Clock()
    e = elector(api, clock)
    for second in range(2, 60, 2):
        clock.now += 2
        api.lease = held_by("other-1", renewed=f"2026-01-01T00:00:{second:02d}.000000Z")
        assert not round_(e)
    assert api.writes == 0


def test_a_released_lease_is_taken_at_the_next_look() -> None:
    api = FakeLeases(held_by(""))
    assert round_(elector(api))


def test_a_standby_says_who_holds_the_lease_once_per_holder(caplog: pytest.LogCaptureFixture) -> None:
    api, clock = FakeLeases(held_by("other-1")), Clock()
    e = elector(api, clock)
    with caplog.at_level(logging.INFO, logger="keyturn"):
        for _ in range(3):
            round_(e)
            clock.now += 2
        api.lease = held_by("other-2")
        round_(e)
    said = [r.getMessage() for r in caplog.records if getattr(r, "reason", "") == "LeaderElsewhere"]
    assert said == [
        f"standing by: other-1 holds the Lease {NS}/{NAME}",
        f"standing by: other-2 holds the Lease {NS}/{NAME}",
    ]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (
            403,
            f"HTTP 403 Forbidden ({FORBIDDEN})",
        ),
        (500, "HTTP 500 Internal"),
    ],
    ids=["forbidden: names the permissions", "server error"],
)
def test_a_replica_that_cannot_read_its_lease_does_not_act_and_says_so_once_a_minute(
    status: int, expected: str, caplog: pytest.LogCaptureFixture
) -> None:
    api, clock = FakeLeases(fail=status), Clock()
    e = elector(api, clock)
    with caplog.at_level(logging.WARNING, logger="keyturn"):
        for _ in range(30):  # a minute of looks
            assert not round_(e)
            clock.now += 2
        assert not round_(e)
    said = [r.getMessage() for r in caplog.records if getattr(r, "reason", "") == "LeaseUnavailable"]
    line = f"reading the Lease {NS}/{NAME} failed: {expected}; this replica does not act until it succeeds"
    assert said == [line, line]


def test_a_lease_another_replica_created_first_is_no_failure(caplog: pytest.LogCaptureFixture) -> None:
    api = FakeLeases()
    e = elector(api)
    api.lease = held_by("other-1")  # created between our 404 and our create
    with caplog.at_level(logging.WARNING, logger="keyturn"):
        assert not asyncio.run(e._create())
    assert not caplog.records


def test_a_leader_whose_calls_hang_steps_down_by_its_renew_deadline() -> None:
    """A half-open connection must not keep a leader acting while a standby takes over."""
    timing = LeaseTiming(lease_duration=1.0, renew_deadline=0.3, retry=0.05)
    api = FakeLeases()
    e = LeaderElector(None, namespace=NS, name=NAME, identity="me-abc123", timing=timing)
    cast(Any, e)._api = api
    events: list[tuple[str, float]] = []
    stopped = asyncio.Event()

    async def on_start() -> None:
        events.append(("start", time.monotonic()))
        api.hang.set()  # from now on every call hangs

    async def on_stop() -> None:
        events.append(("stop", time.monotonic()))
        stopped.set()

    async def scenario() -> None:
        task = asyncio.create_task(e.run(on_start, on_stop))
        await asyncio.wait_for(stopped.wait(), timeout=3)
        api.release.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    (start, started), (stop, stopped_at) = events
    assert (start, stop) == ("start", "stop")
    assert stopped_at - started < timing.renew_deadline + 0.25  # not the 5 s a hung call lasts
    assert not e.leading
