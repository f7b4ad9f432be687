"""KeyHolder: what verifiers and the signer share, holding one key source for their whole life.

The holder starts the source, publishes each snapshot it loads to the process's gauges, and
withdraws them again when it is closed or garbage-collected: a pod must never keep reporting a
kid it no longer accepts or signs with, or Keyturn would count it as ready for a key it dropped.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Generic, Self

from keyturn.client.metrics import ClientMetrics, default_metrics
from keyturn.client.sources import KeySource, S, Snapshot

__all__ = ["KeyHolder"]

Publish = Callable[[ClientMetrics, object, S], None]


def _forget(source: KeySource[Snapshot], metrics: ClientMetrics, owner: object) -> None:
    source.close()
    metrics.forget(owner)


class KeyHolder(Generic[S]):
    """Starts `source` now (KeySourceError if it cannot load) and keeps the gauges current.

    `publish(metrics, owner, snapshot)` must not refer to the holder: it runs from the source's
    threads, and the holder has to stay collectable so that its finalizer can withdraw it.
    """

    def __init__(self, source: KeySource[S], metrics: ClientMetrics | None, publish: Publish[S]) -> None:
        self._metrics = metrics if metrics is not None else default_metrics()
        owner = object()  # our key in the shared gauges; not `self`, so we can be collected
        metrics_ = self._metrics

        def on_change(snapshot: S) -> None:
            publish(metrics_, owner, snapshot)

        source.start(on_change, metrics_)
        self._source = source
        self._finalizer = weakref.finalize(self, _forget, source, metrics_, owner)

    def refresh(self) -> None:
        """Load now; raises KeySourceError (and keeps using what was loaded before) on failure."""
        self._source.reload()

    def start_watching(self, interval: float = 1.0) -> Self:
        """Also look for new keys from a daemon thread, so idle processes and metrics follow."""
        self._source.start_watching(interval)
        return self

    def close(self) -> None:
        """Stop the watcher and withdraw what this object published to the gauges."""
        self._finalizer()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._source.get().describe()})"
