"""Which keyset's pass runs next: a bounded pool of workers over three lanes.

Lanes, served in this order: emergencies (a pending status.emergency or a new spec.revokedKids
entry), changes (a watch event someone else caused), timers (a due rotation, a recheck, the
hourly look). A keyset is never in two passes at once; woken while its pass runs, it runs once
more right after, in the most urgent lane it was woken in. Workers take work only while the
`active` gate is open (this replica leads, and the workload index is listed), so a cold start
of thousands of keysets queues them all and a revocation still jumps to the front.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum

Key = tuple[str, str]  # namespace, name
# One pass of a keyset: returns the seconds until it wants to run again (None: only when woken).
Pass = Callable[[Key], Awaitable[float | None]]


class Lane(IntEnum):
    EMERGENCY = 0
    CHANGE = 1
    TIMER = 2


@dataclass
class _State:
    queued: Lane | None = None  # the lane it waits in (None: not waiting)
    running: bool = False
    lane: Lane | None = None  # the lane of the pass running now
    again: Lane | None = None  # woken while running: run again in this lane
    timer: float | None = None  # when its timer fires (monotonic seconds)


class Scheduler:
    def __init__(
        self, run_pass: Pass, *, workers: int = 16, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._run_pass = run_pass
        self._workers = workers
        self._clock = clock
        self._states: dict[Key, _State] = {}
        self._ready: list[tuple[Lane, int, Key]] = []
        self._timers: list[tuple[float, int, Key]] = []
        self._seq = itertools.count()
        self._changed = asyncio.Event()
        self.active = asyncio.Event()
        # False while only emergencies may run (the gate is half open: see Engine._open_gate).
        self.full = True
        self.running = 0
        self._pass_ended = asyncio.Event()

    # ------------------------------------------------------------------------------ feeding it
    def wake(self, key: Key, lane: Lane = Lane.CHANGE) -> None:
        state = self._states.setdefault(key, _State())
        if state.running:
            state.again = lane if state.again is None else min(state.again, lane)
            return
        if state.queued is not None and state.queued <= lane:
            return  # already waiting in this lane or a more urgent one
        state.queued = lane
        heapq.heappush(self._ready, (lane, next(self._seq), key))
        self._changed.set()

    def wake_in(self, key: Key, seconds: float) -> None:
        """Run the keyset's pass again after `seconds` (timer lane), unless woken earlier."""
        state = self._states.setdefault(key, _State())
        at = self._clock() + max(0.0, seconds)
        state.timer = at
        heapq.heappush(self._timers, (at, next(self._seq), key))
        self._changed.set()

    def wake_all(self, lane_of: Callable[[Key], Lane], keys: Iterable[Key]) -> None:
        for key in keys:
            self.wake(key, lane_of(key))

    def forget(self, key: Key) -> None:
        """The keyset is gone: drop it (its heap entries are skipped when they come up)."""
        self._states.pop(key, None)

    def open(self, *, full: bool) -> None:
        """Let workers take work: every lane, or (full=False) emergencies only."""
        self.full = full
        self.active.set()
        self._changed.set()

    def is_running(self, key: Key) -> bool:
        state = self._states.get(key)
        return state is not None and state.running

    def urgent(self) -> bool:
        """An emergency waits or runs."""
        return any(s.queued is Lane.EMERGENCY or s.lane is Lane.EMERGENCY for s in self._states.values())

    async def calm(self) -> None:
        """Return once no emergency waits or runs (never while the gate is closed and one waits)."""
        while self.urgent():
            self._pass_ended.clear()
            await self._pass_ended.wait()

    def queued(self) -> int:
        return sum(1 for s in self._states.values() if s.queued is not None)

    # ------------------------------------------------------------------------------ running it
    async def run(self) -> None:
        workers = [
            asyncio.create_task(self._worker(), name=f"keyturn-worker-{i}") for i in range(self._workers)
        ]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            for task in workers:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _worker(self) -> None:
        while True:
            await self.active.wait()
            key = await self._next()
            if key is None:
                continue
            state = self._states[key]
            state.lane, state.queued, state.running = state.queued, None, True
            self.running += 1
            delay: float | None = None
            try:
                delay = await self._run_pass(key)
            finally:
                self.running -= 1
                state.running, state.lane = False, None
                self._pass_ended.set()
            if key not in self._states:
                continue  # forgotten while it ran
            if delay is not None:
                self.wake_in(key, delay)
            if state.again is not None:
                lane, state.again = state.again, None
                self.wake(key, lane)

    async def _next(self) -> Key | None:
        """The most urgent waiting keyset, once there is one (None: the gate closed meanwhile)."""
        while self.active.is_set():
            self._fire_timers()
            while self._ready:
                if not self.full and self._ready[0][0] is not Lane.EMERGENCY:
                    break  # half open: the rest waits until the gate opens fully
                lane, _, key = heapq.heappop(self._ready)
                state = self._states.get(key)
                if state is not None and state.queued is lane and not state.running:
                    return key
            self._changed.clear()
            timeout = max(0.0, self._timers[0][0] - self._clock()) if self._timers else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=timeout)
        return None

    def _fire_timers(self) -> None:
        now = self._clock()
        while self._timers and self._timers[0][0] <= now:
            at, _, key = heapq.heappop(self._timers)
            state = self._states.get(key)
            if state is not None and state.timer == at:
                state.timer = None
                self.wake(key, Lane.TIMER)
