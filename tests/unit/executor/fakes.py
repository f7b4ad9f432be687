"""In-memory stand-ins for the executor's ports, and a settable clock.

They keep objects the way the API server would (a resourceVersion per write, JSON merge patches of
status, 404 as None) so a pass can be run end to end in a unit test. The integration suite runs
the same passes against the real kube-apiserver.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from keyturn.adapters.secrets import SecretWrite
from keyturn.domain.annotations import JWKS_ANNOTATIONS, KEYSET_LABEL, MANAGED_BY, STATE_ANNOTATION
from keyturn.domain.inputs import ConfigMapSnapshot, SecretSnapshot
from keyturn.domain.model import Ring
from keyturn.domain.propagation import Share
from keyturn.domain.spec import Spec
from keyturn.rollout import RolloutResult


def merge(target: dict[str, Any], patch: Mapping[str, Any]) -> None:
    """RFC 7386 JSON merge patch, as the API server applies it to status."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class FakeKeysets:
    objects: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    status_patches: list[dict[str, Any]] = field(default_factory=list)

    def add(self, namespace: str, name: str, spec: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "apiVersion": "keyturn.dev/v1alpha1",
            "kind": "JwtKeySet",
            "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}", "generation": 1},
            "spec": copy.deepcopy(dict(spec)),
            **extra,
        }
        self.objects[(namespace, name)] = obj
        return obj

    async def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        obj = self.objects.get((namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    async def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        self.status_patches.append(copy.deepcopy(dict(status)))
        merge(self.objects[(namespace, name)].setdefault("status", {}), status)

    def status(self, namespace: str, name: str) -> dict[str, Any]:
        status: dict[str, Any] = self.objects[(namespace, name)].get("status", {})
        return status

    def condition(self, namespace: str, name: str, kind: str) -> dict[str, Any]:
        found: dict[str, Any] = next(
            c for c in self.status(namespace, name)["conditions"] if c["type"] == kind
        )
        return found


@dataclass
class FakeSecrets:
    secrets: dict[tuple[str, str], SecretSnapshot] = field(default_factory=dict)
    passphrases: dict[tuple[str, str, str], bytes] = field(default_factory=dict)
    writes: list[SecretWrite] = field(default_factory=list)
    read_error: Exception | None = None
    version: int = 0

    async def read(self, namespace: str, name: str) -> SecretSnapshot | None:
        if self.read_error is not None:
            raise self.read_error
        return self.secrets.get((namespace, name))

    async def write(self, namespace: str, write: SecretWrite, previous: SecretSnapshot | None) -> None:
        self.writes.append(write)
        self.version += 1
        annotations = {**(previous.annotations if previous else {}), STATE_ANNOTATION: write.record}
        self.secrets[(namespace, write.name)] = SecretSnapshot(
            name=write.name,
            data=dict(write.data),
            annotations=annotations,
            labels={**(previous.labels if previous else {}), **MANAGED_BY, KEYSET_LABEL: write.keyset},
            owner_uids=(write.owner["uid"],) if write.owner else (),
            resource_version=str(self.version),
            binary=dict(write.raw),
        )

    async def passphrase(self, namespace: str, name: str, key: str) -> bytes | None:
        return self.passphrases.get((namespace, name, key))

    def edit(self, namespace: str, name: str, **changes: Any) -> None:
        """A person's edit of the Secret (kubectl edit), outside Keyturn."""
        old = self.secrets[(namespace, name)]
        self.secrets[(namespace, name)] = SecretSnapshot(**{**vars(old), **changes})


@dataclass
class FakeConfigMaps:
    maps: dict[tuple[str, str], ConfigMapSnapshot] = field(default_factory=dict)
    writes: list[dict[str, str]] = field(default_factory=list)
    version: int = 0

    async def read(self, namespace: str, name: str) -> ConfigMapSnapshot | None:
        return self.maps.get((namespace, name))

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
    ) -> None:
        self.writes.append(dict(data))
        self.version += 1
        labels = {**(previous.labels if previous else {}), **MANAGED_BY, KEYSET_LABEL: keyset}
        kept = {
            k: v for k, v in (previous.annotations if previous else {}).items() if k not in JWKS_ANNOTATIONS
        }
        self.maps[(namespace, name)] = ConfigMapSnapshot(
            dict(data), labels, (owner["uid"],) if owner else (), str(self.version), {**kept, **annotations}
        )


@dataclass
class FakeEvents:
    posted: list[tuple[str, str, bool]] = field(default_factory=list)

    async def post(self, obj: Mapping[str, Any], reason: str, message: str, *, warning: bool = False) -> None:
        self.posted.append((reason, message, warning))

    def reasons(self) -> list[str]:
        return [reason for reason, _, _ in self.posted]


@dataclass
class FakeRollouts:
    """No targets, unless `fail` makes observing them raise (a peripheral fault)."""

    fail: Exception | None = None
    observed: list[Ring] = field(default_factory=list)
    shares: list[Mapping[str, Share]] = field(default_factory=list)

    async def observe(
        self,
        obj: Mapping[str, Any],
        spec: Spec,
        ring: Ring,
        now: datetime,
        shares: Mapping[str, Share] | None = None,
    ) -> RolloutResult:
        self.observed.append(ring)
        self.shares.append(dict(shares or {}))
        if self.fail is not None:
            raise self.fail
        return RolloutResult(shares=dict(shares or {}))

    async def advance(
        self, obj: Mapping[str, Any], spec: Spec, ring: Ring, now: datetime, prior: RolloutResult
    ) -> RolloutResult:
        if self.fail is not None:
            raise self.fail
        return RolloutResult(degraded=prior.degraded)


@dataclass
class FakePropagation:
    """A Prometheus that answers `share` for every kid (None: no data), asked at most once per
    interval like the real gate; `asked` lists every question (kid, time), `fail` makes asking raise."""

    share: float | None = 0.0
    error: str = "no data"
    fail: Exception | None = None
    asked: list[tuple[str, datetime]] = field(default_factory=list)
    within: list[float] = field(default_factory=list)
    _answers: dict[str, Share] = field(default_factory=dict)

    async def ask(
        self, spec: Spec, kids: Sequence[str], now: datetime, *, within: float = 10.0
    ) -> dict[str, Share]:
        if self.fail is not None:
            raise self.fail
        gate = spec.propagation
        if gate is None:
            return {}
        answers = {}
        for kid in kids:
            known = self._answers.get(kid)
            if known is not None and known.at <= now < known.at + gate.interval:
                answers[kid] = known
                continue
            self.asked.append((kid, now))
            self.within.append(within)
            answers[kid] = Share(now, self.share, "" if self.share is not None else self.error)
        self._answers = dict(answers)
        return answers

    def forget(self, namespace: str, name: str) -> None:
        self._answers.clear()
