"""What a reconcile pass needs from the outside world, as Protocols.

The real adapters satisfy them as they are; the unit tests pass in-memory fakes, and a clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from keyturn.adapters.secrets import SecretWrite
from keyturn.domain.inputs import ConfigMapSnapshot, SecretSnapshot
from keyturn.domain.model import Ring
from keyturn.domain.propagation import Share
from keyturn.domain.spec import Spec
from keyturn.rollout import RolloutResult

Clock = Callable[[], datetime]


class KeysetPort(Protocol):
    async def get(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None: ...


class SecretPort(Protocol):
    async def read(self, namespace: str, name: str) -> SecretSnapshot | None: ...

    async def write(self, namespace: str, write: SecretWrite, previous: SecretSnapshot | None) -> None: ...

    async def passphrase(self, namespace: str, name: str, key: str) -> bytes | None: ...


class ConfigMapPort(Protocol):
    async def read(self, namespace: str, name: str) -> ConfigMapSnapshot | None: ...

    async def write(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, str],
        keyset: str,
        owner: Mapping[str, Any] | None,
        previous: ConfigMapSnapshot | None,
        *,
        annotations: Mapping[str, str],
    ) -> None: ...


class IssuerPort(Protocol):
    """Who else claims an issuer: the keysets the operator watches, as its JwtKeySet events told."""

    def rival(self, issuer: str, namespace: str, name: str, created: str) -> str | None:
        """The keyset ("namespace/name") that claimed `issuer` before this one, if any."""
        ...


class EventPort(Protocol):
    async def post(
        self, obj: Mapping[str, Any], reason: str, message: str, *, warning: bool = False
    ) -> None: ...


class RolloutPort(Protocol):
    async def observe(
        self,
        obj: Mapping[str, Any],
        spec: Spec,
        ring: Ring,
        now: datetime,
        shares: Mapping[str, Share] | None = None,
    ) -> RolloutResult: ...

    async def advance(
        self, obj: Mapping[str, Any], spec: Spec, ring: Ring, now: datetime, prior: RolloutResult
    ) -> RolloutResult: ...


class PropagationPort(Protocol):
    """The propagation gate's questions: the share of consumers that accept each kid."""

    async def ask(
        self, spec: Spec, kids: Sequence[str], now: datetime, *, within: float = ...
    ) -> dict[str, Share]: ...

    def forget(self, namespace: str, name: str) -> None: ...
