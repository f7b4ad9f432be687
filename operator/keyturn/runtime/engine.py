"""The engine: the watch's events in, passes out, one pass per change that someone else made.

handlers.py (the only kopf code) hands every watch event here. The engine keeps the latest keyset
bodies and the index of target workloads, drops the echoes of Keyturn's own writes, and wakes the
keysets a change concerns in the scheduler's lane for it. The scheduler runs the passes while this
replica leads (leader.py) and once the workload index is listed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException

from keyturn import metrics
from keyturn.adapters.configmaps import ConfigMaps
from keyturn.adapters.events import Events
from keyturn.adapters.keysets import KIND as KEYSET_KIND
from keyturn.adapters.keysets import Keysets
from keyturn.adapters.kube import OWN_WRITES, Conflict
from keyturn.adapters.secrets import Secrets
from keyturn.adapters.workload_index import WorkloadIndex
from keyturn.adapters.workloads import Workloads
from keyturn.domain.annotations import FINALIZER, KEYSET_LABEL
from keyturn.domain.egress import EgressPolicy
from keyturn.domain.requests import urgent
from keyturn.domain.targets import WorkloadKind
from keyturn.executor import Executor, utcnow
from keyturn.executor.issuers import IssuerIndex, issuer_of
from keyturn.rollout import Rollouts
from keyturn.runtime.leader import LeaderElector, LeaseTiming
from keyturn.runtime.scheduler import Key, Lane, Scheduler

log = logging.getLogger("keyturn")

MAX_BACKOFF = 300.0
CONFLICT_RETRY = 0.05
RESYNC_EVERY = 600.0  # the workload index is swept against a full LIST this often


@dataclass(frozen=True)
class Election:
    """Run with leader election on this Lease (several replicas), or without (one replica)."""

    namespace: str
    name: str
    identity: str
    timing: LeaseTiming = field(default_factory=LeaseTiming)


def identity() -> str:
    """Which replica this is, in the Lease: the Pod's name (POD_NAME), else the host, plus a random
    suffix so a restarted Pod of the same name is a new candidate."""
    base = os.environ.get("POD_NAME") or socket.gethostname()
    return f"{base}-{secrets.token_hex(3)}"


class Engine:
    def __init__(
        self,
        api: Any,
        *,
        namespaces: list[str],
        workers: int = 16,
        election: Election | None = None,
        egress: EgressPolicy | None = None,
    ) -> None:
        self.api = api
        self.namespaces = namespaces
        self.keysets = Keysets(api, cached=True)
        self.index = WorkloadIndex()
        self.workloads = Workloads(api)
        # spec.jwks.issuer of every keyset seen, so that a second claim of one issuer is Stalled.
        self.issuers = IssuerIndex()
        self.executor = Executor(
            issuers=self.issuers,
            keysets=self.keysets,
            secrets=Secrets(api),
            configmaps=ConfigMaps(api),
            events=Events(api),
            rollouts=Rollouts(api, egress, self.index),
        )
        self.scheduler = Scheduler(self._pass, workers=workers)
        self.election = election
        self.elector = (
            LeaderElector(
                api,
                namespace=election.namespace,
                name=election.name,
                identity=election.identity,
                timing=election.timing,
            )
            if election
            else None
        )
        self.leading = election is None
        self._failures: dict[Key, int] = {}
        # Events that reached a keyset while its pass ran: possibly the echoes of that pass's own
        # writes, whose resourceVersions are only known once the writes return. Judged after it.
        self._echoes: dict[Key, list[tuple[str, str, str, object]]] = {}
        # Keysets whose pass ran before the workload index was listed (emergencies only).
        self._early: set[Key] = set()
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        metrics.LEADER.set(1 if self.leading else 0)
        self._open_gate()  # standalone: emergencies may run before the first listing
        self._tasks = [
            asyncio.create_task(self.scheduler.run(), name="keyturn-scheduler"),
            asyncio.create_task(self._resync_loop(), name="keyturn-resync"),
        ]
        if self.elector is not None:
            self._tasks.append(
                asyncio.create_task(self.elector.run(self._lead, self._follow), name="keyturn-leader")
            )

    async def stop(self) -> None:
        self.scheduler.active.clear()
        for task in reversed(self._tasks):
            task.cancel()
        for task in reversed(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _lead(self) -> None:
        self.leading = True
        metrics.LEADER.set(1)
        # Anything may have changed while standing by: every known keyset gets a pass, revocations first.
        self.scheduler.wake_all(self._lane, [_key(b) for b in self.keysets.cached()])
        self._open_gate()

    async def _follow(self) -> None:
        self.leading = False
        metrics.LEADER.set(0)
        self.scheduler.active.clear()
        for body in self.keysets.cached():
            metrics.forget(*_key(body))  # only the acting replica exports a keyset's gauges

    def _open_gate(self) -> None:
        """Leading, the gate opens: fully once the workload index is listed (no pass may take an
        unlisted namespace for one without targets), before that for emergencies only, so a
        revocation during a restart waits for nothing but its own pass. Keysets that ran early
        run again once the targets are known, so their signers roll."""
        if not self.leading:
            return
        full = self.index.listed
        was_full = self.scheduler.full and self.scheduler.active.is_set()
        self.scheduler.open(full=full)
        if full and not was_full:
            for key in self._early:
                self.scheduler.wake(key, Lane.CHANGE)
            self._early.clear()

    # ------------------------------------------------------------------------------ the watch
    def keyset_event(self, event: str | None, body: Mapping[str, Any]) -> None:
        key = _key(body)
        meta = body.get("metadata") or {}
        if event == "DELETED":
            rivals = self.issuers.forget(*key)
        else:
            rivals = self.issuers.update(
                *key, issuer_of(body.get("spec")), str(meta.get("creationTimestamp") or "")
            )
        for rival in rivals:  # a claim changed: they may hold, or lose, the issuer now
            self.scheduler.wake(rival, Lane.CHANGE)
        if event == "DELETED":
            self.keysets.forget(*key)
            self.scheduler.forget(key)
            metrics.forget(*key)
            return
        self.keysets.remember(body)
        self._changed(
            key,
            (KEYSET_KIND, key[0], key[1], _version(body)),
            Lane.EMERGENCY if urgent(body) else Lane.CHANGE,
        )

    def owned_object_event(self, event: str | None, kind: str, body: Mapping[str, Any]) -> None:
        """A Secret or ConfigMap of a keyset changed: its keyset looks again, unless Keyturn wrote it.

        The initial listing (event None) wakes nothing: every keyset gets its own listing event, and
        its pass reads the Secret and ConfigMap afresh.
        """
        if event is None:
            return
        meta = body.get("metadata") or {}
        namespace, name = meta.get("namespace"), meta.get("name")
        keyset = (meta.get("labels") or {}).get(KEYSET_LABEL)
        if isinstance(namespace, str) and isinstance(name, str) and isinstance(keyset, str) and keyset:
            self._changed(
                (namespace, keyset), (kind, namespace, name, meta.get("resourceVersion")), Lane.CHANGE
            )

    def workload_event(self, event: str | None, body: Mapping[str, Any]) -> None:
        """A workload changed: the index follows, and the keysets it names (before or after) look again."""
        meta = body.get("metadata") or {}
        affected = self.index.remove(body) if event == "DELETED" else self.index.update(body)
        if event is None:
            return  # the initial listing: every keyset gets its own pass anyway
        echo = (str(body.get("kind")), str(meta.get("namespace")), str(meta.get("name")), _version(body))
        for key in affected:
            self._changed(key, echo, Lane.CHANGE)

    def _changed(self, key: Key, echo: tuple[str, str, str, object], lane: Lane) -> None:
        """Wake a keyset for a change, unless the change is the echo of one of Keyturn's writes."""
        if OWN_WRITES.is_own(*echo):
            return
        if self.scheduler.is_running(key) and lane is not Lane.EMERGENCY:
            self._echoes.setdefault(key, []).append(echo)
            return
        self.scheduler.wake(key, lane)

    async def release_finalizer(self, body: Mapping[str, Any]) -> None:
        """A keyset being deleted still carries the finalizer older versions had kopf put on it.

        Only the acting replica removes it; a 404 (gone meanwhile) or 409 (someone else was first)
        means there is nothing left to do.
        """
        if not self.leading or FINALIZER not in ((body.get("metadata") or {}).get("finalizers") or ()):
            return
        try:
            await self.keysets.drop_finalizer(body)
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    # ------------------------------------------------------------------------------ passes
    def _lane(self, key: Key) -> Lane:
        body = self.keysets.cached_body(*key)
        return Lane.EMERGENCY if body is not None and urgent(body) else Lane.CHANGE

    async def _pass(self, key: Key) -> float | None:
        """One reconcile pass; the seconds until the keyset wants another (backoff after a failure)."""
        self._echoes.pop(key, None)  # what reached it before it started, this pass reads anyway
        if not self.index.listed:
            self._early.add(key)
        try:
            outcome = await self.executor.reconcile(*key)
        except Conflict as exc:
            log.info("%s", exc, extra={"namespace": key[0], "keyset": key[1], "reason": "Conflict"})
            return CONFLICT_RETRY
        except Exception as exc:  # any failure: said in status, backed off, never fatal
            failures = self._failures[key] = self._failures.get(key, 0) + 1
            delay = min(MAX_BACKOFF, 2.0 ** (failures - 1)) * (1 + random.random() / 4)  # noqa: S311
            try:
                await self.executor.report_failure(*key, exc)
            except Exception as report_exc:  # the API may be what failed: the log still tells
                log.warning(
                    "could not report the failure in status: %s",
                    type(report_exc).__name__,
                    extra={"namespace": key[0], "keyset": key[1], "reason": "ReconcileError"},
                )
            return delay
        self._failures.pop(key, None)
        if any(not OWN_WRITES.is_own(*echo) for echo in self._echoes.pop(key, ())):
            self.scheduler.wake(key, Lane.CHANGE)  # someone else changed something while it ran
        if outcome.wake_at is None:
            return None
        return max(0.0, (outcome.wake_at - utcnow()).total_seconds())

    # ------------------------------------------------------------------------------ the index
    async def _resync_loop(self) -> None:
        """List every workload kind now and every RESYNC_EVERY seconds: the first listing opens the
        gate (no pass may think a keyset has no targets before it), later ones sweep what a watch
        reconnection missed."""
        while True:
            try:
                await self._resync()
            except Exception as exc:
                log.warning(
                    "listing the workloads failed: %s",
                    type(exc).__name__,
                    extra={"reason": "TargetsUnreadable"},
                )
                await asyncio.sleep(5.0)
                continue
            self._open_gate()
            await asyncio.sleep(RESYNC_EVERY * (0.9 + random.random() / 5))  # noqa: S311 - jitter

    async def _resync(self) -> None:
        scopes: list[str | None] = list(self.namespaces) if self.namespaces else [None]
        since = self.index.clock()  # an event newer than the listing wins over its answer
        listed: list[dict[str, Any]] = []
        since = self.index.clock()  # events from now on are newer than the LIST's answer
        for namespace in scopes:
            for kind in WorkloadKind:
                listed += await self.workloads.list(kind, namespace)
        affected = self.index.sweep(listed, set(self.namespaces) if self.namespaces else None, since)
        if self.scheduler.active.is_set():
            for key in affected:
                self.scheduler.wake(key, Lane.CHANGE)


def _key(body: Mapping[str, Any]) -> Key:
    meta = body.get("metadata") or {}
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


def _version(body: Mapping[str, Any]) -> object:
    return (body.get("metadata") or {}).get("resourceVersion")
