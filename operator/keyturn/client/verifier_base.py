"""What JwksVerifier and HmacVerifier share: counting every validation, options, key lookup.

Counting lives here, around the key-specific check, so that no path through a verifier (not
even a bug) can skip `jwt_validations_total`: the analysis gate divides successes by *all*
validations, and an uncounted failure would make a broken rotation look healthy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any, Final, TypedDict, TypeVar

from keyturn.client.errors import VerificationError
from keyturn.client.holder import KeyHolder
from keyturn.client.metrics import ClientMetrics
from keyturn.client.reasons import ValidationReason
from keyturn.client.sources import KeySource, S
from keyturn.client.tokens import ClaimRules

__all__ = ["DEFAULT_LEEWAY_S", "DEFAULT_REQUIRE", "BaseVerifier", "VerifierOptions"]

DEFAULT_LEEWAY_S: Final = 5.0
DEFAULT_REQUIRE: Final = ("exp",)

K = TypeVar("K")


class VerifierOptions(TypedDict, total=False):
    """The keyword arguments every verifier constructor takes; see BaseVerifier for defaults.

    Spelled once so that each `from_*` constructor passes them on unchanged instead of
    repeating (and possibly mis-defaulting) them.
    """

    metrics: ClientMetrics | None
    audience: str | Iterable[str] | None
    issuer: str | Sequence[str] | None
    leeway: float | timedelta
    require: Sequence[str]


def _publish_kids(metrics: ClientMetrics, owner: object, snapshot: S) -> None:
    metrics.set_loaded(owner, snapshot.kids)


class BaseVerifier(KeyHolder[S]):
    """Use the `from_*` constructors of the subclasses; this one wires a source to the metrics."""

    def __init__(
        self,
        source: KeySource[S],
        *,
        metrics: ClientMetrics | None = None,
        audience: str | Iterable[str] | None = None,
        issuer: str | Sequence[str] | None = None,
        leeway: float | timedelta = DEFAULT_LEEWAY_S,
        require: Sequence[str] = DEFAULT_REQUIRE,
    ) -> None:
        super().__init__(source, metrics, _publish_kids)
        self._rules = ClaimRules(audience, issuer, leeway, tuple(require))

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
            claims, kid = self._check(token, self._rules.overridden(audience, issuer, leeway, require))
        except VerificationError as exc:
            if record:
                self._metrics.record_validation(exc.reason, exc.kid)
            raise
        except Exception:
            if record:  # our bug, not the token's: still a failed validation for the gate
                self._metrics.record_validation(ValidationReason.ERROR, None)
            raise
        if record:
            self._metrics.record_validation(ValidationReason.OK, kid)
        return claims

    @property
    def kids(self) -> tuple[str, ...]:
        """Kids accepted right now, in the source's order (JWKS: current key first)."""
        return self._source.get().kids

    def describe(self) -> str:
        """Kids and load problems, for logs and health endpoints (never key material)."""
        return self._source.get().describe()

    # ------------------------------------------------------------------ for subclasses

    def _check(self, token: str, rules: ClaimRules) -> tuple[dict[str, Any], str | None]:
        """Claims and the kid to count them under, or VerificationError."""
        raise NotImplementedError

    def _find(self, lookup: Callable[[S], K | None]) -> tuple[S, K | None]:
        """The snapshot and what `lookup` found in it; when it found nothing, the source looks
        again right away first, so a key published a moment ago is not refused for long."""
        snapshot = self._source.get()
        found = lookup(snapshot)
        if found is None:
            snapshot = self._source.refresh_now()
            found = lookup(snapshot)
        return snapshot, found
