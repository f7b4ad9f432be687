"""Leader election on a coordination.k8s.io Lease, so that one replica acts and a standby takes
over within seconds when it dies (kopf's peering waits a 60 s lifetime).

The algorithm is client-go's: the leader renews `renewTime` every `retry` seconds; a candidate
that sees the same record unchanged for `lease_duration` seconds (measured on its own clock, never
comparing clocks across machines) takes the Lease over with an optimistic-concurrency write. A
leader that cannot renew within `renew_deadline` steps down before anyone may take over. On a
clean shutdown the leader releases the Lease, so the standby acts after one retry period.

Writes: one Lease update every `retry` seconds by the leader (30 a minute at the default 2 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from keyturn.adapters.kube import call

log = logging.getLogger("keyturn")


@dataclass(frozen=True)
class LeaseTiming:
    lease_duration: float = 10.0  # a record unchanged this long is free to take
    renew_deadline: float = 7.0  # a leader that could not renew this long steps down
    retry: float = 2.0  # how often the leader renews and a candidate looks

    @classmethod
    def for_duration(cls, lease_duration: float) -> LeaseTiming:
        """client-go's proportions (10 s / 7 s / 2 s by default), so that a leader that cannot
        renew always steps down before a standby may take over, whatever the duration."""
        return cls(lease_duration, min(7.0, 0.7 * lease_duration), min(2.0, 0.2 * lease_duration))


class LeaderElector:
    def __init__(
        self,
        api: Any,
        *,
        namespace: str,
        name: str,
        identity: str,
        timing: LeaseTiming = LeaseTiming(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = client.CoordinationV1Api(api)
        self.namespace, self.name, self.identity = namespace, name, identity
        self.timing = timing
        self._clock = clock
        self._observed: tuple[str, str] | None = None  # (holder, renewTime) last seen
        self._observed_at = 0.0
        self._announced = ""  # the other holder last logged
        self._failure: tuple[str, float] | None = None  # the failure last logged, and when
        self.leading = False

    async def run(
        self, on_start: Callable[[], Awaitable[None]], on_stop: Callable[[], Awaitable[None]]
    ) -> None:
        """Campaign for ever; call on_start/on_stop as leadership comes and goes."""
        last_renewed = 0.0
        try:
            while True:
                acquired = await self._attempt(last_renewed)
                now = self._clock()
                if acquired:
                    last_renewed = now
                    if not self.leading:
                        self.leading = True
                        log.info(
                            f"leading: {self.identity} holds the Lease {self.namespace}/{self.name}",
                            extra={"reason": "LeaderElected"},
                        )
                        await on_start()
                elif self.leading and now - last_renewed > self.timing.renew_deadline:
                    self.leading = False
                    log.warning(
                        f"lost the Lease {self.namespace}/{self.name}: could not renew it for "
                        f"{self.timing.renew_deadline:g} s; standing by",
                        extra={"reason": "LeaderLost"},
                    )
                    await on_stop()
                await asyncio.sleep(self.timing.retry)
        finally:
            if self.leading:
                self.leading = False
                with contextlib.suppress(Exception):
                    await on_stop()
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._release())

    async def _attempt(self, last_renewed: float) -> bool:
        """One round, which a leader may not let run past its renew deadline: a call that hangs
        (a half-open connection) must not keep it acting while a standby takes over."""
        if not self.leading:
            return await self._try()
        left = self.timing.renew_deadline - (self._clock() - last_renewed)
        try:
            return await asyncio.wait_for(self._try(), timeout=max(0.0, left))
        except TimeoutError:
            self._warn(f"renewing the Lease {self.namespace}/{self.name} timed out")
            return False

    async def _try(self) -> bool:
        """One round: renew, acquire or observe. True when this replica holds the Lease now."""
        try:
            lease = await call(
                self._api.read_namespaced_lease, self.name, self.namespace, _request_timeout=self._timeout
            )
        except ApiException as exc:
            if exc.status != 404:
                self._warn(f"reading the Lease {self.namespace}/{self.name} failed: {_api_error(exc)}")
                return False
            return await self._create()
        except Exception as exc:
            self._warn(f"reading the Lease {self.namespace}/{self.name} failed: {type(exc).__name__}")
            return False
        spec = lease.spec or client.V1LeaseSpec()
        holder = spec.holder_identity or ""
        renewed = str(spec.renew_time or "")
        now = self._clock()
        if (holder, renewed) != self._observed:
            self._observed, self._observed_at = (holder, renewed), now
        if holder and holder != self.identity:
            expired = now - self._observed_at >= (spec.lease_duration_seconds or self.timing.lease_duration)
            if not expired:
                if holder != self._announced:
                    self._announced = holder
                    log.info(
                        f"standing by: {holder} holds the Lease {self.namespace}/{self.name}",
                        extra={"reason": "LeaderElsewhere"},
                    )
                self._failure = None
                return False
        transitions = (spec.lease_transitions or 0) + (0 if holder == self.identity else 1)
        lease.spec = self._spec(
            acquired=spec.acquire_time if holder == self.identity else None, transitions=transitions
        )
        try:
            await call(
                self._api.replace_namespaced_lease,
                self.name,
                self.namespace,
                lease,
                _request_timeout=self._timeout,
            )
        except ApiException as exc:
            if exc.status != 409:  # 409: someone else wrote it first; look again next round
                self._warn(f"writing the Lease {self.namespace}/{self.name} failed: {_api_error(exc)}")
            return False
        except Exception as exc:
            self._warn(f"writing the Lease {self.namespace}/{self.name} failed: {type(exc).__name__}")
            return False
        self._failure, self._announced = None, ""
        return True

    async def _create(self) -> bool:
        body = client.V1Lease(
            metadata=client.V1ObjectMeta(name=self.name, namespace=self.namespace),
            spec=self._spec(acquired=None, transitions=0),
        )
        try:
            await call(
                self._api.create_namespaced_lease, self.namespace, body, _request_timeout=self._timeout
            )
        except ApiException as exc:
            if exc.status != 409:  # 409: another replica created it first: look again
                self._warn(f"creating the Lease {self.namespace}/{self.name} failed: {_api_error(exc)}")
            return False
        except Exception as exc:
            self._warn(f"creating the Lease {self.namespace}/{self.name} failed: {type(exc).__name__}")
            return False
        self._failure, self._announced = None, ""
        return True

    @property
    def _timeout(self) -> float:
        """Each Lease call's own bound, so that no call holds a thread of the shared pool for ever."""
        return self.timing.renew_deadline

    def _warn(self, text: str) -> None:
        """A failure, logged when it is new and then once a minute while it lasts (not every round)."""
        now = self._clock()
        if self._failure is not None and self._failure[0] == text and now - self._failure[1] < 60.0:
            return
        self._failure = (text, now)
        then = (
            f"steps down unless it renews within {self.timing.renew_deadline:g} s of the last renewal"
            if self.leading
            else "does not act until it succeeds"
        )
        log.warning(f"{text}; this replica {then}", extra={"reason": "LeaseUnavailable"})

    def _spec(self, *, acquired: datetime | None, transitions: int) -> client.V1LeaseSpec:
        now = datetime.now(UTC)
        return client.V1LeaseSpec(
            holder_identity=self.identity,
            lease_duration_seconds=math.ceil(self.timing.lease_duration),
            acquire_time=_micro(acquired or now),
            renew_time=_micro(now),
            lease_transitions=transitions,
        )

    async def _release(self) -> None:
        """Hand the Lease back at a clean stop, so a standby does not wait out the duration."""
        lease = await call(
            self._api.read_namespaced_lease, self.name, self.namespace, _request_timeout=self._timeout
        )
        if lease.spec is None or lease.spec.holder_identity != self.identity:
            return
        lease.spec.holder_identity = ""
        lease.spec.lease_duration_seconds = 1
        lease.spec.acquire_time = _micro(lease.spec.acquire_time)
        lease.spec.renew_time = _micro(lease.spec.renew_time)
        await call(
            self._api.replace_namespaced_lease,
            self.name,
            self.namespace,
            lease,
            _request_timeout=self._timeout,
        )
        log.info(f"released the Lease {self.namespace}/{self.name}", extra={"reason": "LeaderReleased"})


def _api_error(exc: ApiException) -> str:
    """The status and its meaning; a 403 names what the replica needs (the chart's Lease Role)."""
    text = f"HTTP {exc.status} {exc.reason or ''}".rstrip()
    if exc.status == 403:
        text += " (the service account needs get, create and update on leases in that namespace)"
    return text


def _micro(moment: datetime | None) -> Any:
    """A MicroTime as the API server parses it (RFC 3339 with exactly six fractional digits);
    the client's own serialisation drops the fraction when it is zero."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
