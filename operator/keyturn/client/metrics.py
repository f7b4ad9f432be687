"""The application-side metrics Keyturn's analysis gate reads.

Names and labels are a contract with the JwtKeySet's `spec.analysis.prometheus.query`, whose
default is
`sum(rate(jwt_validations_total{result="success"}[2m])) / sum(rate(jwt_validations_total[2m]))`,
so they never change:

- `jwt_validations_total{result, reason, kid}` (counter): one increment per verified token;
- `jwt_keys_loaded{kid}` (gauge): 1 for every kid a verifier in this process accepts; a kid
  disappears from the exposition when no verifier holds it any more, so
  `count(jwt_keys_loaded{kid="X"})` tells how many pods already accept a new key;
- `jwt_signing_key{kid}` (gauge): 1 for the kid a signer in this process signs with;
- `jwt_key_reloads_total{source, result}` (counter): key (re)loads, so a broken mount or JWKS
  endpoint is visible before it matters.

The `kid` label of a failed validation comes from an untrusted token header, so it is bounded:
kids a verifier has loaded are always used as they are; other well-formed kids only until
`max_foreign_kids` distinct ones have been seen, then `_other`; anything that does not look like
a kid becomes `_invalid` and a missing kid the empty string.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Hashable, Iterable
from typing import Any, Final

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from keyturn.client.reasons import ValidationReason

__all__ = ["OTHER_KID", "ClientMetrics", "default_metrics"]

OTHER_KID: Final = "_other"
INVALID_KID: Final = "_invalid"
_KID_LABEL: Final = re.compile(r"[A-Za-z0-9._-]{1,128}")


class ClientMetrics:
    """The prometheus_client objects, registered on `registry` (a private one in tests).

    One instance per registry: prometheus_client refuses duplicate names, which is why the
    verifiers and signers of a process share `default_metrics()` unless told otherwise.
    """

    def __init__(self, registry: CollectorRegistry | None = REGISTRY, *, max_foreign_kids: int = 32) -> None:
        self.registry = registry
        self.max_foreign_kids = max_foreign_kids
        self.validations = Counter(
            "jwt_validations",
            "JWT validations by result (success|failure), reason and key id",
            ["result", "reason", "kid"],
            registry=registry,
        )
        self.keys_loaded = Gauge(
            "jwt_keys_loaded",
            "1 for every key id a verifier in this process currently accepts",
            ["kid"],
            registry=registry,
        )
        self.signing_key = Gauge(
            "jwt_signing_key",
            "1 for the key id a signer in this process currently signs with",
            ["kid"],
            registry=registry,
        )
        self.reloads = Counter(
            "jwt_key_reloads",
            "Key (re)loads by source (jwks_file|jwks_url|hmac_secrets|signing_key) and result",
            ["source", "result"],
            registry=registry,
        )
        self._lock = threading.Lock()
        self._loaded: dict[Hashable, frozenset[str]] = {}
        self._signing: dict[Hashable, str] = {}
        self._trusted: set[str] = set()  # every kid ever loaded: legitimate label values
        self._children: dict[tuple[ValidationReason, str], Any] = {}  # counter children by reason, kid
        self._foreign: set[str] = set()

    # ------------------------------------------------------------------ validations

    def kid_label(self, kid: object) -> str:
        """Bounded label value for a header kid (see the module docstring)."""
        if kid is None:
            return ""
        if not isinstance(kid, str) or not _KID_LABEL.fullmatch(kid):
            return INVALID_KID
        with self._lock:
            if kid in self._trusted or kid in self._foreign:
                return kid
            if len(self._foreign) < self.max_foreign_kids:
                self._foreign.add(kid)
                return kid
        return OTHER_KID

    def record_validation(self, reason: ValidationReason, kid: object) -> None:
        """Count one validation; `kid` may be any header value, it is bounded here.

        The series child of a trusted kid is remembered: looking it up through `labels()` costs
        more than the increment, on every token.
        """
        if isinstance(kid, str) and kid in self._trusted:
            child = self._children.get((reason, kid))
            if child is None:
                child = self._children[(reason, kid)] = self.validations.labels(
                    reason.result, reason.value, kid
                )
            child.inc()
            return
        self.validations.labels(reason.result, reason.value, self.kid_label(kid)).inc()

    # ------------------------------------------------------------------ loaded keys

    def set_loaded(self, owner: Hashable, kids: Iterable[str]) -> None:
        """Publish the kids one verifier accepts; several verifiers may share a kid.

        The success series of a new kid is created at 0 right away, so the first validations
        after a rotation are not lost to `rate()` (which needs a previous sample to diff with).
        """
        new = frozenset(kids)
        # Gauges are updated under the lock too, so two owners' updates cannot interleave.
        with self._lock:
            before = self._union_loaded()
            if new:
                self._loaded[owner] = new
            else:
                self._loaded.pop(owner, None)
            after = self._union_loaded()
            self._trusted |= new
            for kid in after - before:
                self.keys_loaded.labels(kid).set(1)
                self.validations.labels(ValidationReason.OK.result, ValidationReason.OK.value, kid)
            for kid in before - after:
                self._remove(self.keys_loaded, kid)

    def set_signing(self, owner: Hashable, kid: str | None) -> None:
        """Publish the kid one signer signs with (None: it stopped signing)."""
        with self._lock:
            before = set(self._signing.values())
            if kid is None:
                self._signing.pop(owner, None)
            else:
                self._signing[owner] = kid
                self._trusted.add(kid)
            after = set(self._signing.values())
            for value in after - before:
                self.signing_key.labels(value).set(1)
            for value in before - after:
                self._remove(self.signing_key, value)

    def forget(self, owner: Hashable) -> None:
        """Drop everything `owner` published (a verifier or signer was closed or collected)."""
        self.set_loaded(owner, ())
        self.set_signing(owner, None)

    def record_reload(self, source: str, ok: bool) -> None:
        self.reloads.labels(source, "success" if ok else "failure").inc()

    def _union_loaded(self) -> frozenset[str]:
        return frozenset().union(*self._loaded.values())

    @staticmethod
    def _remove(gauge: Gauge, kid: str) -> None:
        with contextlib.suppress(KeyError):  # already gone
            gauge.remove(kid)


_default: ClientMetrics | None = None
_default_lock = threading.Lock()


def default_metrics() -> ClientMetrics:
    """The process-wide instance on prometheus_client's default registry, created on first use."""
    global _default  # noqa: PLW0603 - a lazily created process-wide singleton, guarded by a lock
    with _default_lock:
        if _default is None:
            _default = ClientMetrics(REGISTRY)
        return _default
