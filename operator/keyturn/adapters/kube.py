"""One shared Kubernetes API client, and a way to call its blocking methods off the event loop."""

from __future__ import annotations

import asyncio
import collections
import functools
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from prometheus_client import Counter

from keyturn import __version__

__all__ = [
    "OWN_WRITES",
    "Conflict",
    "OwnWrites",
    "api_client",
    "call",
    "get_or_none",
    "is_status",
    "newer",
    "resource_version",
    "write",
]

P = ParamSpec("P")
T = TypeVar("T")

# Enough threads that 100 keysets reconciling at once never queue behind each other for long.
_POOL = ThreadPoolExecutor(max_workers=32, thread_name_prefix="keyturn-api")


def api_client(kubeconfig: str | None = None) -> Any:
    """In-cluster credentials when running in a Pod, else the kubeconfig (KUBECONFIG or ~/.kube)."""
    configuration = client.Configuration()
    try:
        if kubeconfig is not None:
            raise config.ConfigException("explicit kubeconfig")
        config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException:
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    configuration.connection_pool_maxsize = 32
    api = client.ApiClient(configuration)
    api.user_agent = f"keyturn/{__version__}"  # names Keyturn in managedFields and audit logs
    return api


# Every request the operator makes through `call` and `write` (the passes, the Lease, the workload
# lists), by client method (read_namespaced_secret, ...): what it costs the API server, and the
# figure bench/scale.py reports per keyset.
API_REQUESTS = Counter(
    "keyturn_api_requests_total",
    "Kubernetes API requests made by the operator (passes, leader election, workload lists), by operation",
    ["operation"],
)


async def call(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a blocking client call in the shared pool."""
    API_REQUESTS.labels(getattr(fn, "__name__", "other")).inc()
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_POOL, functools.partial(fn, *args, **kwargs))


async def write(kind: str, namespace: str, name: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A write whose watch event must wake nothing: its resourceVersion is recorded in the worker
    thread the moment the answer arrives, before the event loop can see the watch event it causes."""

    def written() -> T:
        result = fn(*args, **kwargs)
        OWN_WRITES.add(kind, namespace, name, resource_version(result))
        return result

    API_REQUESTS.labels(getattr(fn, "__name__", "other")).inc()
    return await asyncio.get_running_loop().run_in_executor(_POOL, written)


def resource_version(obj: object) -> object:
    """The resourceVersion of a client model or a plain JSON body."""
    if isinstance(obj, dict):
        meta = obj.get("metadata")
        return meta.get("resourceVersion") if isinstance(meta, dict) else None
    return getattr(getattr(obj, "metadata", None), "resource_version", None)


def newer(body: Mapping[str, Any], known: Mapping[str, Any]) -> bool:
    """Whether `body` is a later version than `known`. resourceVersions are opaque to clients, but
    the API server's are integers that grow with every write (etcd's revision); when either is not
    one, only an equal version counts as known."""
    mine, theirs = version_of(body), version_of(known)
    if mine == theirs:
        return False
    if mine.isdigit() and theirs.isdigit():
        return int(mine) > int(theirs)
    return True


def version_of(body: Mapping[str, Any]) -> str:
    """The resourceVersion of a JSON body (a kopf Body too), "" when it has none."""
    meta = body.get("metadata")
    return str(meta.get("resourceVersion") or "") if isinstance(meta, Mapping) else ""


async def get_or_none(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T | None:
    """A read where "not found" is an answer, not an error."""
    try:
        return await call(fn, *args, **kwargs)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def is_status(exc: BaseException, *codes: int) -> bool:
    return isinstance(exc, ApiException) and exc.status in codes


class OwnWrites:
    """The resourceVersions this process wrote, so the watch events they cause wake nothing.

    Every write Keyturn makes comes back as a watch event carrying the new resourceVersion; a pass
    woken by it would find nothing to do (at best) or do work twice. An event whose version is
    one of ours is Keyturn's own; anything else is someone else's change. Bounded: old entries go.
    """

    def __init__(self, limit: int = 65536) -> None:
        self._seen: collections.OrderedDict[tuple[str, str, str, str], None] = collections.OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def add(self, kind: str, namespace: str, name: str, version: object) -> None:
        if not isinstance(version, str) or not version:
            return
        with self._lock:
            self._seen[(kind, namespace, name, version)] = None
            while len(self._seen) > self._limit:
                self._seen.popitem(last=False)

    def is_own(self, kind: str, namespace: str | None, name: str | None, version: object) -> bool:
        """Whether this event is the echo of one of our writes (each echo is recognised once)."""
        if not (namespace and name and isinstance(version, str)):
            return False
        with self._lock:
            try:
                del self._seen[(kind, namespace, name, version)]
            except KeyError:
                return False
            return True


OWN_WRITES = OwnWrites()


class Conflict(RuntimeError):
    """Someone else wrote the object since it was read; reconcile again from a fresh read."""
