"""The JWKS ConfigMaps of one scope (a namespace, or all), listed then watched into the store.

A daemon thread per scope (adapters/list_watch.py): the event loop that answers requests never
waits on the API server, and a watch that expires or breaks is followed by a fresh list.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from keyturn.adapters.list_watch import ListWatch, owned
from keyturn.domain.annotations import KEYSET_LABEL
from keyturn.jwks_server.store import Store

log = logging.getLogger("keyturn.jwks")


def watcher(api: Any, scope: str, store: Store, stop: threading.Event) -> ListWatch:
    """Keyturn's ConfigMaps that belong to a keyset: the JWKS ones (Keyturn writes no other ConfigMap)."""
    return owned(api, "ConfigMap", scope, store, stop, log, also=(KEYSET_LABEL,), what="JWKS ConfigMap(s)")
