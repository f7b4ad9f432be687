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
        self.leading = False

    async def run(
        self, on_start: Callable[[], Awaitable[None]], on_stop: Callable[[], Awaitable[None]]
    ) -> None:
        """Campaign for ever; call on_start/on_stop as leadership comes and goes."""
        last_renewed = 0.0
        try:
            while True:
                acquired = await self._try()
                now = self._clock()
                if acquired:
                    last_renewed = now
                    if not self.leading:
                        self.leading = True
                        log.info("leading", extra={"reason": "LeaderElected", "lease": self.name})
                        await on_start()
                elif self.leading and now - last_renewed > self.timing.renew_deadline:
                    self.leading = False
                    log.warning("lost the lease", extra={"reason": "LeaderLost", "lease": self.name})
                    await on_stop()
                await asyncio.sleep(self.timing.retry)
        finally:
            if self.leading:
                self.leading = False
                with contextlib.suppress(Exception):
                    await on_stop()
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._release())

    async def _try(self) -> bool:
        """One round: renew, acquire or observe. True when this replica holds the Lease now."""
        try:
            lease = await call(self._api.read_namespaced_lease, self.name, self.namespace)
        except ApiException as exc:
            if exc.status != 404:
                log.warning("reading the lease failed: HTTP %s", exc.status, extra={"lease": self.name})
                return False
            return await self._create()
        except Exception as exc:
            log.warning("reading the lease failed: %s", type(exc).__name__, extra={"lease": self.name})
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
                return False
        transitions = (spec.lease_transitions or 0) + (0 if holder == self.identity else 1)
        lease.spec = self._spec(
            acquired=spec.acquire_time if holder == self.identity else None, transitions=transitions
        )
        try:
            await call(self._api.replace_namespaced_lease, self.name, self.namespace, lease)
        except ApiException as exc:
            if exc.status != 409:  # 409: someone else wrote it first; look again next round
                log.warning("writing the lease failed: HTTP %s", exc.status, extra={"lease": self.name})
            return False
        except Exception as exc:
            log.warning("writing the lease failed: %s", type(exc).__name__, extra={"lease": self.name})
            return False
        return True

    async def _create(self) -> bool:
        body = client.V1Lease(
            metadata=client.V1ObjectMeta(name=self.name, namespace=self.namespace),
            spec=self._spec(acquired=None, transitions=0),
        )
        try:
            await call(self._api.create_namespaced_lease, self.namespace, body)
        except Exception:
            return False  # another replica created it first, or the API failed: look again
        return True

    def _spec(self, *, acquired: datetime | None, transitions: int) -> client.V1LeaseSpec:
        now = datetime.now(UTC)
        return client.V1LeaseSpec(
            holder_identity=self.identity,
            lease_duration_seconds=int(self.timing.lease_duration),
            acquire_time=_micro(acquired or now),
            renew_time=_micro(now),
            lease_transitions=transitions,
        )

    async def _release(self) -> None:
        """Hand the Lease back at a clean stop, so a standby does not wait out the duration."""
        lease = await call(self._api.read_namespaced_lease, self.name, self.namespace)
        if lease.spec is None or lease.spec.holder_identity != self.identity:
            return
        lease.spec.holder_identity = ""
        lease.spec.lease_duration_seconds = 1
        lease.spec.acquire_time = _micro(lease.spec.acquire_time)
        lease.spec.renew_time = _micro(lease.spec.renew_time)
        await call(self._api.replace_namespaced_lease, self.name, self.namespace, lease)
        log.info("released the lease", extra={"reason": "LeaderReleased", "lease": self.name})


def _micro(moment: datetime | None) -> Any:
    """A MicroTime as the API server parses it (RFC 3339 with exactly six fractional digits);
    the client's own serialisation drops the fraction when it is zero."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
