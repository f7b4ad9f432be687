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
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException

from keyturn import metrics
from keyturn.adapters import list_watch
from keyturn.adapters.configmaps import ConfigMaps
from keyturn.adapters.events import Events
from keyturn.adapters.keysets import KIND as KEYSET_KIND
from keyturn.adapters.keysets import Keysets
from keyturn.adapters.kube import OWN_WRITES, Conflict, version_of
from keyturn.adapters.owned_store import OwnedStore
from keyturn.adapters.secrets import Secrets
from keyturn.adapters.workload_index import WorkloadIndex
from keyturn.adapters.workloads import Workloads
from keyturn.domain.annotations import FINALIZER, KEYSET_LABEL
from keyturn.domain.egress import EgressPolicy
from keyturn.domain.reasons import Reason
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
# The longest the gate stays half open for the early look's first list and kopf's listing of the
# same keysets (Engine._open_gate): past it, passes run all the same.
LISTING_GRACE = 30.0
# The longest a start waits for the emergencies the early look found (Engine.settled).
SETTLE_LIMIT = 5.0
# How long the early look follows events beside its first list (adapters/list_watch.Peek).
PEEK_SECONDS = 60


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
        early_look: bool = True,
        look_now: bool = False,
    ) -> None:
        self.api = api
        self.namespaces = namespaces
        self.keysets = Keysets(api, cached=True)
        # The early look (_EarlyLook): a lean list-watch of the keysets of its own. Until its first
        # list of every scope is in, and kopf has delivered the keysets it listed, the gate stays
        # half open (_open_gate). Off when kopf serves namespace globs: it would look elsewhere.
        self._scopes = (list(self.namespaces) or [""]) if early_look else []
        self._unlisted: set[str] = set(self._scopes)
        self._unwatched: set[Key] = set()
        self._stop_threads = threading.Event()
        self._look = _EarlyLook(self)
        if look_now:
            # Its list is then on its way while the rest is built: the Kubernetes client's core and
            # apps modules alone take about 0.4 s to import, a restart's emergencies wait for both.
            self.look_early()
        self.index = WorkloadIndex()
        self.workloads = Workloads(api)
        # Keyturn's Secrets and ConfigMaps as their watch threads see them: a pass reads from here.
        self.stores = {"Secret": OwnedStore(), "ConfigMap": OwnedStore()}
        # spec.jwks.issuer of every keyset seen, so that a second claim of one issuer is Stalled.
        self.issuers = IssuerIndex()
        self.executor = Executor(
            issuers=self.issuers,
            keysets=self.keysets,
            secrets=Secrets(api, self.stores["Secret"]),
            configmaps=ConfigMaps(api, self.stores["ConfigMap"]),
            events=Events(api),
            rollouts=Rollouts(api, egress, self.index),
        )
        self.scheduler = Scheduler(self._pass, workers=workers)
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
        self._owned = [_OwnedLook(self, kind, store) for kind, store in self.stores.items()]
        self._listed = asyncio.Event()  # the early look has listed every scope
        self._settled = asyncio.Event()  # see settled()
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        metrics.LEADER.set(1 if self.leading else 0)
        self._open_gate()  # standalone: emergencies may run before the first listing
        self.look_early()  # if operator_main has not already
        loop = asyncio.get_running_loop()
        if not self._unlisted:
            self._listed.set()
        for owned in self._owned:
            owned.attach(loop)
        self._look.attach(loop)  # hands over a list that came in before
        self._tasks = [
            asyncio.create_task(self.scheduler.run(), name="keyturn-scheduler"),
            asyncio.create_task(self._settle_then_watch(), name="keyturn-resync"),
            asyncio.create_task(self._listing_grace(), name="keyturn-listing-grace"),
        ]
        if self.elector is not None:
            self._tasks.append(
                asyncio.create_task(self.elector.run(self._lead, self._follow), name="keyturn-leader")
            )

    async def stop(self) -> None:
        self.scheduler.active.clear()
        self._stop_threads.set()
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
        """Leading, the gate opens fully once the workload index is listed (no pass may take an
        unlisted namespace for one without targets) and kopf has delivered the keysets the early
        look listed; before that it opens for emergencies only.

        Why wait for kopf: on a restart it delivers thousands of keysets one event at a time, and
        thousands of passes running meanwhile would slow that down to seconds, and with it every
        later event. The early look already put each keyset in its lane, emergencies first, so a
        revocation during a restart waits for nothing but its own pass. Keysets that ran early run
        again once the targets are known, so their signers roll."""
        if not self.leading:
            return
        full = self.index.listed and not self._unlisted and not self._unwatched
        was_full = self.scheduler.full and self.scheduler.active.is_set()
        self.scheduler.open(full=full)
        if full and not was_full:
            for key in self._early:
                self.scheduler.wake(key, Lane.CHANGE)
            self._early.clear()

    # ------------------------------------------------------------------------------ the early look
    def look_early(self) -> None:
        """Start the early look's threads, even before kopf and the event loop are up (it holds what
        it finds until start): a restart's first list is then in by the time passes may run."""
        if self._look.started:
            return
        self._look.started = True
        for scope in self._scopes:
            # The peek first: an emergency patched while the list is answered (seconds for 10,000
            # keysets) reaches the engine at once; the list brings the older ones.
            self.keysets.peek(scope, self._look, self._stop_threads, PEEK_SECONDS).start()
            self.keysets.list_watch(scope, self._look, self._stop_threads).start()

    async def settled(self) -> None:
        """Until the early look has listed the keysets and the emergencies it found have had their
        passes, at most SETTLE_LIMIT seconds. kopf's startup handler awaits this, so kopf's own
        listing of thousands of keysets starts after them; so do the bulk lists of Keyturn's
        Secrets, ConfigMaps and workloads (_settle_then_watch). Each of these, on the same two
        cores, would slow a restart's revocations down; until their lists are in, a pass GETs what
        it reads (OwnedStore) and only emergencies run (_open_gate)."""
        await self._settled.wait()

    async def _settle_then_watch(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._settle(), SETTLE_LIMIT)
        self._settled.set()
        for owned in self._owned:
            for scope in list(self.namespaces) or [""]:
                list_watch.owned(self.api, owned.kind, scope, owned, self._stop_threads, log).start()
        await self._resync_loop()

    async def _settle(self) -> None:
        await self._listed.wait()
        if self.leading:  # a standby runs no pass: its emergencies wait for the Lease
            await self.scheduler.calm()

    def _early_list(self, scope: str, bodies: list[dict[str, Any]]) -> None:
        """The early look listed a scope: every keyset it holds, in its lane at once."""
        first = scope in self._unlisted
        for body in bodies:
            if self._keyset(None, body, copy=False) and first:
                self._unwatched.add(_key(body))  # kopf has not delivered this version yet
        self._unlisted.discard(scope)
        self._open_gate()
        if not self._unlisted:
            self._listed.set()

    def _early_event(self, body: dict[str, Any]) -> None:
        """The early look saw an emergency: it need not wait for kopf's backlog."""
        self._keyset("MODIFIED", body, copy=False)

    def _early_failed(self, scope: str) -> None:
        """The early look cannot list: kopf delivers the keysets all the same, only later."""
        if scope in self._unlisted:
            self._unlisted.discard(scope)
            self._open_gate()
            if not self._unlisted:
                self._listed.set()

    async def _listing_grace(self) -> None:
        await asyncio.sleep(LISTING_GRACE)
        if self._unlisted or self._unwatched:
            log.warning(
                "after %.0f s, %d keysets are not delivered by the watch; passes run all the same",
                LISTING_GRACE,
                len(self._unwatched),
                extra={"reason": "WatchBehind"},
            )
            self._unlisted.clear()
            self._unwatched.clear()
            self._open_gate()

    # ------------------------------------------------------------------------------ the watch
    def keyset_event(self, event: str | None, body: Mapping[str, Any]) -> None:
        """kopf's watch delivered a keyset."""
        key = _key(body)
        if key in self._unwatched:
            self._unwatched.discard(key)
            if not self._unwatched:
                self._open_gate()  # kopf has caught up with the early look
        self._keyset(event, body)

    def _keyset(self, event: str | None, body: Mapping[str, Any], *, copy: bool = True) -> bool:
        """A keyset's new version: remembered, and its keyset woken. False: nothing new (a version
        already known, or older than the one known), or the keyset is gone."""
        key = _key(body)
        if event == "DELETED":
            rivals = self.issuers.forget(*key)
            self.keysets.forget(*key)
            self.scheduler.forget(key)
            self._failures.pop(key, None)
            metrics.forget(*key)
        elif self.keysets.remember(body, copy=copy):
            meta = body.get("metadata") or {}
            rivals = self.issuers.update(
                *key, issuer_of(body.get("spec")), str(meta.get("creationTimestamp") or "")
            )
        else:
            return False  # this version or a newer one is known (kopf's listing after the early look)
        for rival in rivals:  # a claim changed: they may hold, or lose, the issuer now
            self.scheduler.wake(rival, Lane.CHANGE)
        if event == "DELETED":
            return False
        self._changed(
            key,
            (KEYSET_KIND, key[0], key[1], version_of(body)),
            Lane.EMERGENCY if urgent(body) else Lane.CHANGE,
        )
        return True

    def owned_object_event(self, event: str | None, kind: str, body: Mapping[str, Any]) -> None:
        """A Secret or ConfigMap of a keyset changed: its keyset looks again, unless Keyturn wrote it.

        A listing (event None) wakes nothing: it only fills the OwnedStore passes read from
        (_OwnedLook.replace), and every keyset gets its own pass anyway. Nor does an object of a
        keyset not (or no longer) known: the watch of these runs wider than kopf's when kopf serves
        namespace globs.
        """
        if event is None:
            return
        meta = body.get("metadata") or {}
        namespace, name = meta.get("namespace"), meta.get("name")
        keyset = (meta.get("labels") or {}).get(KEYSET_LABEL)
        if isinstance(namespace, str) and isinstance(name, str) and isinstance(keyset, str) and keyset:
            if self.keysets.cached_body(namespace, keyset) is None:
                return
            self._changed(
                (namespace, keyset), (kind, namespace, name, meta.get("resourceVersion")), Lane.CHANGE
            )

    def workload_event(self, event: str | None, body: Mapping[str, Any]) -> None:
        """A workload changed: the index follows, and the keysets it names (before or after) look again."""
        meta = body.get("metadata") or {}
        affected = self.index.remove(body) if event == "DELETED" else self.index.update(body)
        if event is None:
            return  # the initial listing: every keyset gets its own pass anyway
        echo = (str(body.get("kind")), str(meta.get("namespace")), str(meta.get("name")), version_of(body))
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
            log.info(
                "%s", exc, extra={"namespace": key[0], "keyset": key[1], "reason": str(Reason.WRITE_CONFLICT)}
            )
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
                    extra={"namespace": key[0], "keyset": key[1], "reason": str(Reason.RECONCILE_ERROR)},
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
        await asyncio.to_thread(self.workloads.load)  # about 0.3 s of imports, not on the loop
        while True:
            try:
                await self._resync()
            except Exception as exc:
                log.warning(
                    "listing the workloads failed: %s",
                    type(exc).__name__,
                    extra={"reason": str(Reason.TARGETS_UNREADABLE)},
                )
                await asyncio.sleep(5.0)
                continue
            self._open_gate()
            await asyncio.sleep(RESYNC_EVERY * (0.9 + random.random() / 5))  # noqa: S311 - jitter

    async def _resync(self) -> None:
        scopes: list[str | None] = list(self.namespaces) if self.namespaces else [None]
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


class _Handoff:
    """What a watch thread hands the engine, called on the event loop's thread. Before the loop
    is attached (the early look starts before kopf), it waits here."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._loop: asyncio.AbstractEventLoop | None = None
        self._held: list[tuple[Callable[..., None], tuple[Any, ...]]] = []
        self._lock = threading.Lock()

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            self._loop, held, self._held = loop, self._held, []
        for fn, args in held:
            fn(*args)

    def synced(self, scope: str) -> None:
        """Nothing to do: the engine keeps no state per scope."""

    def _hand(self, fn: Callable[..., None], *args: Any) -> None:
        with self._lock:
            if self._loop is None:
                self._held.append((fn, args))
                return
            loop = self._loop
        loop.call_soon_threadsafe(fn, *args)


class _EarlyLook(_Handoff):
    """The keysets' list-watch: every listed keyset, and of later events only emergencies (kopf
    delivers the rest)."""

    started = False

    def replace(self, scope: str, objects: list[dict[str, Any]]) -> None:
        self._hand(self.engine._early_list, scope, objects)

    def apply(self, scope: str, kind: str, obj: dict[str, Any]) -> None:
        if kind != "DELETED" and urgent(obj):
            self._hand(self.engine._early_event, obj)

    def failed(self, scope: str) -> None:
        self._hand(self.engine._early_failed, scope)


class _OwnedLook(_Handoff):
    """Keyturn's Secrets and ConfigMaps, watched in threads rather than by kopf: on a restart kopf
    would deliver two objects per keyset, one event at a time, on the loop the passes run on.
    Listings only fill the store and wake nothing, and the echoes of Keyturn's own writes
    recognised here never reach the loop."""

    def __init__(self, engine: Engine, kind: str, store: OwnedStore) -> None:
        super().__init__(engine)
        self.kind, self.store = kind, store

    def replace(self, scope: str, objects: list[dict[str, Any]]) -> None:
        """The store holds the listing; it wakes nothing: every keyset gets its own pass."""
        self.store.replace(scope, objects)

    def apply(self, scope: str, kind: str, obj: dict[str, Any]) -> None:
        self.store.apply(kind, obj)  # before any pass it wakes can read it
        meta = obj.get("metadata") or {}
        if OWN_WRITES.is_own(self.kind, meta.get("namespace"), meta.get("name"), meta.get("resourceVersion")):
            return
        self._hand(self.engine.owned_object_event, kind, self.kind, obj)

    def failed(self, scope: str) -> None:
        """The thread retries; until then a change made by someone else waits for the hourly look."""
