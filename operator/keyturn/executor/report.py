"""The report step: status, Events and log lines, with one vocabulary (Reason) for all three.

Status is a pure projection (domain.status); this module only decides what to post and patches
what changed. A pass that failed with an exception is reported here too, so a keyset whose passes
keep failing shows it in its conditions instead of only in the operator's log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from keyturn import metrics
from keyturn.domain import status as status_view
from keyturn.domain.model import Ring
from keyturn.domain.planner import Plan
from keyturn.domain.reasons import Reason, Violation
from keyturn.domain.record import timestamp
from keyturn.executor.ports import EventPort, KeysetPort

log = logging.getLogger("keyturn")

# One Warning Event per keyset and exception type this often, however often the pass fails.
FAILURE_EVENT_INTERVAL = 300.0


class Reporter:
    def __init__(self, keysets: KeysetPort, events: EventPort) -> None:
        self.keysets = keysets
        self.events = events
        self._failure_events: dict[tuple[str, str], tuple[str, float]] = {}
        # Events a pass announced, posted together when it reports (a keyset runs one pass at a time).
        self._pending: dict[tuple[str, str], list[tuple[Mapping[str, Any], str, str, bool]]] = {}

    def announce(
        self,
        obj: Mapping[str, Any],
        reason: Reason,
        message: str,
        *,
        warning: bool,
        kids: tuple[str, ...] = (),
    ) -> None:
        meta = obj["metadata"]
        log.log(
            logging.WARNING if warning else logging.INFO,
            message,
            extra={
                "namespace": meta["namespace"],
                "keyset": meta["name"],
                "reason": str(reason),
                "kid": ",".join(kids) or None,
            },
        )
        key = (meta["namespace"], meta["name"])
        self._pending.setdefault(key, []).append((obj, str(reason), message, warning))

    async def flush(self, namespace: str, name: str) -> None:
        """Post the pass's Events together: one round trip instead of one each (best effort)."""
        pending = self._pending.pop((namespace, name), [])
        results = await asyncio.gather(
            *(
                self.events.post(obj, reason, message, warning=warning)
                for obj, reason, message, warning in pending
            ),
            return_exceptions=True,
        )
        for (_, reason, _, _), result in zip(pending, results, strict=True):
            if isinstance(result, Exception):  # a timeout, a lost connection: said, never raised
                log.warning(
                    "could not post event %s: %s",
                    reason,
                    type(result).__name__,
                    extra={"namespace": namespace, "keyset": name},
                )

    def stalled(self, obj: Mapping[str, Any], violations: list[Violation]) -> None:
        """A Warning per problem when the keyset becomes Stalled, not on every pass it stays so."""
        conditions = _mapping(obj.get("status")).get("conditions")
        stalled_before = any(
            isinstance(c, Mapping)
            and c.get("type") == "Stalled"
            and c.get("status") == "True"
            and c.get("reason") == str(violations[0].reason)
            for c in (conditions if isinstance(conditions, list) else ())
        )
        if not stalled_before:
            for violation in violations:
                self.announce(obj, violation.reason, violation.message, warning=True)

    async def status(
        self,
        obj: Mapping[str, Any],
        ring: Ring,
        plan: Plan | None,
        violations: list[Violation],
        observed: status_view.Observed,
        now: datetime,
    ) -> None:
        meta = obj["metadata"]
        existing = _mapping(obj.get("status"))
        desired = status_view.build(
            generation=_int(meta.get("generation")),
            ring=ring,
            plan=plan,
            violations=violations,
            observed=observed,
            existing=existing,
            now=now,
        )
        stalled = any(c["type"] == "Stalled" and c["status"] == "True" for c in desired["conditions"])
        metrics.STALLED.labels(meta["namespace"], meta["name"]).set(1 if stalled else 0)  # also when Paused
        diff = {k: v for k, v in desired.items() if _differs(existing.get(k), v)}
        if diff:
            await self.keysets.patch_status(meta["namespace"], meta["name"], diff)

    async def failure(self, namespace: str, name: str, exc: BaseException, now: datetime) -> None:
        """A pass raised: Degraded=True with reason ReconcileError, a rate-limited Warning, a metric.

        The message names the exception's type only: its text could quote key material or a token.
        """
        kind = type(exc).__name__
        metrics.FAILURES.labels(namespace, name, str(Reason.RECONCILE_ERROR)).inc()
        log.error(
            "reconcile failed: %s",
            kind,
            extra={"namespace": namespace, "keyset": name, "reason": str(Reason.RECONCILE_ERROR)},
        )
        obj = await self.keysets.get(namespace, name)
        if obj is None:
            return
        # Constant per exception type: a repeated failure patches nothing, so it wakes nothing.
        message = f"a reconcile pass failed with {kind}; Keyturn retries with backoff (see its log)"
        conditions = _mapping(obj.get("status")).get("conditions")
        kept = [c for c in (conditions if isinstance(conditions, list) else ()) if isinstance(c, Mapping)]
        old = next((c for c in kept if c.get("type") == "Degraded"), None)
        if not (old and old.get("reason") == str(Reason.RECONCILE_ERROR) and old.get("message") == message):
            since = old.get("lastTransitionTime") if old and old.get("status") == "True" else None
            degraded = {
                "type": "Degraded",
                "status": "True",
                "reason": str(Reason.RECONCILE_ERROR),
                "message": message,
                "lastTransitionTime": since or timestamp(now),
                "observedGeneration": _int(_mapping(obj.get("metadata")).get("generation")),
            }
            others = [dict(c) for c in kept if c.get("type") != "Degraded"]
            await self.keysets.patch_status(namespace, name, {"conditions": [*others, degraded]})
        last = self._failure_events.get((namespace, name))
        clock = time.monotonic()
        if last is None or last[0] != kind or clock - last[1] >= FAILURE_EVENT_INTERVAL:
            self._failure_events[(namespace, name)] = (kind, clock)
            await self.events.post(obj, str(Reason.RECONCILE_ERROR), message, warning=True)

    def recovered(self, namespace: str, name: str) -> None:
        self._failure_events.pop((namespace, name), None)


def _differs(old: Any, new: Any) -> bool:
    if new is None:
        return old is not None
    return bool(old != new)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
