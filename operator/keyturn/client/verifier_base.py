"""What JwksVerifier and HmacVerifier share: counting every validation, lifecycle, metrics.

Counting lives here, around the key-specific check, so that no path through a verifier (not
even a bug) can skip `jwt_validations_total`: the analysis gate divides successes by *all*
validations, and an uncounted failure would make a broken rotation look healthy.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any, Generic, Protocol, Self, TypeVar

from keyturn.client.errors import VerificationError
from keyturn.client.metrics import ClientMetrics, default_metrics
from keyturn.client.reasons import Reason
from keyturn.client.sources import KeySource

DEFAULT_LEEWAY_S = 5.0
DEFAULT_REQUIRE = ("exp",)


class Snapshot(Protocol):
    @property
    def kids(self) -> tuple[str, ...]: ...

    def describe(self) -> str: ...


S = TypeVar("S", bound=Snapshot)


def _forget(source: KeySource[object], metrics: ClientMetrics, owner: object) -> None:
    source.close()
    metrics.forget(owner)


class BaseVerifier(Generic[S]):
    """Use the `from_*` constructors of the subclasses; this one wires a source to the metrics."""

    def __init__(
        self,
        make_source: Callable[[Callable[[S], None], ClientMetrics], KeySource[S]],
        *,
        metrics: ClientMetrics | None,
        audience: str | Iterable[str] | None,
        issuer: str | Sequence[str] | None,
        leeway: float | timedelta,
        require: Sequence[str],
    ) -> None:
        self._metrics = metrics if metrics is not None else default_metrics()
        owner = object()  # our key in the shared gauges; not `self`, so we can be collected
        metrics_ = self._metrics

        def on_change(snapshot: S) -> None:
            metrics_.set_loaded(owner, snapshot.kids)

        self._source = make_source(on_change, self._metrics)
        self._audience = audience
        self._issuer = issuer
        self._leeway = leeway
        self._require = tuple(require)
        self._finalizer = weakref.finalize(self, _forget, self._source, self._metrics, owner)

    # ------------------------------------------------------------------ public API

    def verify(
        self,
        token: str,
        *,
        audience: str | Iterable[str] | None = None,
        issuer: str | Sequence[str] | None = None,
        leeway: float | timedelta | None = None,
        require: Sequence[str] | None = None,
        record: bool = True,
    ) -> dict[str, Any]:
        """The token's claims, or VerificationError with the reason that is also counted.

        audience/issuer/leeway/require default to the values given at construction.
        `record=False` is for synthetic checks (health probes): they must not dilute the
        success rate that the analysis gate reads.
        """
        try:
            claims, kid = self._check(
                token,
                audience=self._audience if audience is None else audience,
                issuer=self._issuer if issuer is None else issuer,
                leeway=self._leeway if leeway is None else leeway,
                require=self._require if require is None else tuple(require),
            )
        except VerificationError as exc:
            if record:
                self._metrics.record_validation(exc.reason, exc.kid)
            raise
        except Exception:
            if record:  # our bug, not the token's: still a failed validation for the gate
                self._metrics.record_validation(Reason.ERROR, None)
            raise
        if record:
            self._metrics.record_validation(Reason.OK, kid)
        return claims

    @property
    def kids(self) -> tuple[str, ...]:
        """Kids accepted right now, in the source's order (JWKS: current key first)."""
        return self._source.get().kids

    def describe(self) -> str:
        """Kids and load problems, for logs and health endpoints (never key material)."""
        return self._source.get().describe()

    def refresh(self) -> None:
        """Load the keys now; raises KeySourceError (and keeps the old keys) on failure."""
        self._source.reload()

    def start_watching(self, interval: float = 1.0) -> Self:
        """Also look for new keys from a daemon thread, so idle processes and metrics follow."""
        self._source.start_watching(interval)
        return self

    def close(self) -> None:
        """Stop the watcher and withdraw this verifier's kids from `jwt_keys_loaded`."""
        self._finalizer()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._source.get().describe()})"

    # ------------------------------------------------------------------ subclass hook

    def _check(
        self,
        token: str,
        *,
        audience: str | Iterable[str] | None,
        issuer: str | Sequence[str] | None,
        leeway: float | timedelta,
        require: tuple[str, ...],
    ) -> tuple[dict[str, Any], str | None]:
        """Claims and the kid to count them under, or VerificationError."""
        raise NotImplementedError
