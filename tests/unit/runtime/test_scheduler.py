"""runtime/scheduler.py: emergencies first, one pass per keyset at a time, the gate, the timers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from keyturn.runtime.scheduler import Key, Lane, Scheduler

A, B, C = ("ns", "a"), ("ns", "b"), ("ns", "c")


def run_until_idle(
    setup: Callable[[Scheduler, list[Key]], Awaitable[None] | None], workers: int = 1
) -> list[Key]:
    """Runs the scheduler until every queued pass ran; returns the keysets in the order they ran."""
    ran: list[Key] = []

    async def main() -> None:
        async def one_pass(key: Key) -> float | None:
            ran.append(key)
            await asyncio.sleep(0)
            return None

        scheduler = Scheduler(one_pass, workers=workers)
        task = asyncio.create_task(scheduler.run())
        maybe = setup(scheduler, ran)
        if maybe is not None:
            await maybe
        await asyncio.wait_for(_drained(scheduler), timeout=5)
        task.cancel()

    asyncio.run(main())
    return ran


async def _drained(scheduler: Scheduler) -> None:
    """Until nothing waits or runs (callers bound it with wait_for)."""
    while scheduler.queued() or scheduler.running:  # noqa: ASYNC110 - a condition polled under a deadline
        await asyncio.sleep(0.001)


async def turns(count: int = 50) -> None:
    """Let the event loop run every ready task this many times: no clock involved."""
    for _ in range(count):
        await asyncio.sleep(0)


def test_emergencies_run_first_then_changes_then_timers() -> None:
    def setup(s: Scheduler, _: list[Key]) -> None:
        s.wake(A, Lane.TIMER)
        s.wake(B, Lane.CHANGE)
        s.wake(C, Lane.EMERGENCY)
        s.open(full=True)

    assert run_until_idle(setup) == [C, B, A]


def test_a_keyset_waits_in_its_most_urgent_lane_only_once() -> None:
    def setup(s: Scheduler, _: list[Key]) -> None:
        s.wake(A, Lane.CHANGE)
        s.wake(A, Lane.EMERGENCY)
        s.wake(A, Lane.TIMER)
        s.wake(B, Lane.CHANGE)
        s.open(full=True)

    assert run_until_idle(setup) == [A, B]


def test_half_open_runs_emergencies_only() -> None:
    async def setup(s: Scheduler, ran: list[Key]) -> None:
        s.wake(A, Lane.CHANGE)
        s.wake(B, Lane.EMERGENCY)
        s.open(full=False)
        await turns()
        assert ran == [B]  # A waits for the full gate
        s.open(full=True)

    assert run_until_idle(setup) == [B, A]


def test_nothing_runs_while_the_gate_is_shut() -> None:
    async def setup(s: Scheduler, ran: list[Key]) -> None:
        s.wake(A, Lane.EMERGENCY)
        await turns()
        assert ran == []
        s.open(full=True)

    assert run_until_idle(setup) == [A]


def test_a_keyset_woken_while_it_runs_runs_once_more_after_never_at_the_same_time() -> None:
    ran: list[Key] = []
    overlaps: list[Key] = []

    async def main() -> None:
        running: set[Key] = set()
        scheduler: Scheduler

        async def one_pass(key: Key) -> float | None:
            if key in running:
                overlaps.append(key)
            running.add(key)
            ran.append(key)
            if len(ran) == 1:
                scheduler.wake(A, Lane.CHANGE)  # woken during its own pass
                scheduler.wake(A, Lane.EMERGENCY)
            await asyncio.sleep(0.01)
            running.discard(key)
            return None

        scheduler = Scheduler(one_pass, workers=4)
        task = asyncio.create_task(scheduler.run())
        scheduler.wake(A)
        scheduler.open(full=True)
        await asyncio.wait_for(_drained(scheduler), timeout=5)
        task.cancel()

    asyncio.run(main())
    assert ran == [A, A] and overlaps == []


def test_a_pass_s_delay_becomes_a_timer() -> None:
    ran: list[Key] = []

    async def main() -> None:
        async def one_pass(key: Key) -> float | None:
            ran.append(key)
            return 0.02 if len(ran) == 1 else None

        scheduler = Scheduler(one_pass, workers=1)
        task = asyncio.create_task(scheduler.run())
        scheduler.wake(A)
        scheduler.open(full=True)
        await asyncio.wait_for(_until(lambda: len(ran) == 2), timeout=5)
        task.cancel()

    asyncio.run(main())
    assert ran == [A, A]


def test_a_forgotten_keyset_does_not_run() -> None:
    def setup(s: Scheduler, _: list[Key]) -> None:
        s.wake(A, Lane.CHANGE)
        s.wake(B, Lane.CHANGE)
        s.forget(A)
        s.open(full=True)

    assert run_until_idle(setup) == [B]


async def _until(predicate: Callable[[], bool]) -> None:
    while not predicate():  # noqa: ASYNC110 - a condition polled under a deadline (wait_for)
        await asyncio.sleep(0.001)


@pytest.mark.parametrize("workers", [1, 4, 16], ids=lambda n: f"{n} workers")
def test_every_queued_keyset_runs_exactly_once(workers: int) -> None:
    keys = [("ns", f"k{i}") for i in range(200)]

    def setup(s: Scheduler, _: list[Key]) -> None:
        for key in keys:
            s.wake(key)
        s.open(full=True)

    ran = run_until_idle(setup, workers=workers)
    assert sorted(ran) == sorted(keys)


def test_calm_waits_for_the_emergencies_only() -> None:
    """calm() returns once no emergency waits or runs; changes still queued do not hold it."""
    ran: list[Key] = []
    release = asyncio.Event()

    async def main() -> tuple[bool, bool]:
        async def one_pass(key: Key) -> float | None:
            ran.append(key)
            if key == C:
                await release.wait()  # the emergency's pass is still running
            return None

        scheduler = Scheduler(one_pass, workers=1)
        task = asyncio.create_task(scheduler.run())
        await asyncio.wait_for(scheduler.calm(), timeout=5)  # nothing urgent: at once
        scheduler.wake(A, Lane.CHANGE)
        scheduler.wake(C, Lane.EMERGENCY)
        scheduler.open(full=False)  # half open: the change waits
        calm = asyncio.create_task(scheduler.calm())
        await turns()
        held = not calm.done() and ran == [C]  # the emergency runs: calm waits
        release.set()
        await asyncio.wait_for(calm, timeout=5)
        task.cancel()
        return held, scheduler.queued() == 1  # the change still waits behind the half-open gate

    held, change_waits = asyncio.run(main())
    assert held
    assert change_waits
    assert ran == [C]
