"""The JWKS ConfigMaps of one scope (a namespace, or all), listed then watched into the store.

A daemon thread per scope (adapters/list_watch.py): the event loop that answers requests never
waits on the API server, and a watch that expires or breaks is followed by a fresh list.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Final

from kubernetes import client

from keyturn.adapters.list_watch import ListWatch
from keyturn.domain.annotations import KEYSET_LABEL, MANAGED_BY
from keyturn.jwks_server.store import Store

log = logging.getLogger("keyturn.jwks")

# Keyturn's ConfigMaps that belong to a keyset: the JWKS ones (Keyturn writes no other ConfigMap).
SELECTOR: Final = ",".join([*(f"{k}={v}" for k, v in MANAGED_BY.items()), KEYSET_LABEL])


def watcher(api: Any, scope: str, store: Store, stop: threading.Event) -> ListWatch:
    core = client.CoreV1Api(api)

    def lister(scope: str, **query: Any) -> Any:
        if scope:
            return core.list_namespaced_config_map(scope, **query)
        return core.list_config_map_for_all_namespaces(**query)

    return ListWatch(lister, scope, store, stop, what="JWKS ConfigMap(s)", log=log, label_selector=SELECTOR)
