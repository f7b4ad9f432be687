"""The apply step: fresh keys, then the Secret, then the JWKS, in the crash-safe order.

The Secret carries the whole record, so whatever is lost after its write (JWKS, Events, status) is
recomputed from it on the next pass (invariant 6). Every write is skipped when the object already
holds what it should, so a pass with nothing due writes nothing (invariant 7).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from keyturn.adapters.keysets import owner_reference
from keyturn.adapters.secrets import SecretWrite
from keyturn.domain import jwks, publication, record
from keyturn.domain.annotations import JWKS_ANNOTATIONS
from keyturn.domain.inputs import ConfigMapSnapshot, SecretSnapshot
from keyturn.domain.layout import kid_of_material_item, material_item
from keyturn.domain.model import FreshKey, Ring
from keyturn.domain.reasons import Reason
from keyturn.domain.spec import DeletionPolicy, Spec
from keyturn.executor.ports import ConfigMapPort, SecretPort
from keyturn.keys import new_keys, secret_data
from keyturn.keys.algorithms import is_symmetric

log = logging.getLogger("keyturn")


async def fresh_keys(
    spec: Spec,
    ring: Ring,
    count: int,
    now: datetime,
    passphrase: bytes | None,
    stored: dict[str, str],
) -> list[FreshKey]:
    """Generate and self-test `count` keys off the event loop; their material goes into `stored`."""
    taken = {k.kid for k in ring.keys} | set(ring.revoked_kids) | {r.kid for r in spec.revoked}
    generated = await asyncio.to_thread(
        new_keys.generate,
        spec,
        first_serial=ring.serial + 1,
        count=count,
        now=now,
        passphrase=passphrase,
        taken=taken,
    )
    for item in generated:
        stored[material_item(item.fresh.kid, is_symmetric(item.fresh.algorithm))] = item.stored
    return [g.fresh for g in generated]


class Writer:
    def __init__(self, secrets: SecretPort, configmaps: ConfigMapPort) -> None:
        self.secrets = secrets
        self.configmaps = configmaps

    async def write_secret(
        self,
        obj: Mapping[str, Any],
        spec: Spec,
        ring: Ring,
        snapshot: SecretSnapshot | None,
        stored: Mapping[str, str],
        *,
        lenient: bool,
    ) -> bool:
        """Write the Secret if it differs from what the ring renders; True when it was written."""
        data = secret_data.render(spec, ring, stored, lenient=lenient)
        text = record.dumps(ring)
        owner = _owner(obj, spec)
        owner_uids = (owner["uid"],) if owner else ()
        if (
            snapshot is not None
            and snapshot.record == text
            and dict(snapshot.data) == data
            and snapshot.owner_uids == owner_uids
        ):
            return False
        purged = sorted(
            kid
            for item in (snapshot.data if snapshot else {})
            if (kid := kid_of_material_item(item)) and item not in data
        )
        raw = dict(snapshot.binary) if snapshot else {}
        await self.secrets.write(
            spec.namespace,
            SecretWrite(
                name=spec.secret.name, data=data, record=text, keyset=spec.name, owner=owner, raw=raw
            ),
            snapshot,
        )
        log.info(
            "secret written",
            extra=_fields(
                spec,
                reason=str(Reason.SECRET_WRITTEN),
                kid=ring.current.kid if ring.current else None,
                purged=purged,
            ),
        )
        return True

    async def write_jwks(
        self,
        obj: Mapping[str, Any],
        spec: Spec,
        ring: Ring,
        current: ConfigMapSnapshot | None,
        *,
        issuer: str | None = None,
    ) -> bool:
        """Publish the verifying keys, and what the JWKS server reads with them, if the ConfigMap
        differs; True when it was written. `issuer` is the one to publish under (None: none)."""
        if spec.symmetric:
            return False  # an HMAC key is never published; verifiers read it from the Secret
        owner = _owner(obj, spec)
        owner_uids = (owner["uid"],) if owner else ()
        text = jwks.render(jwks.build(ring))
        annotations = publication.jwks_annotations(spec, ring, issuer=issuer)
        if (
            current is not None
            and dict(current.data) == {spec.jwks_key: text}
            and current.owner_uids == owner_uids
            and {k: v for k, v in current.annotations.items() if k in JWKS_ANNOTATIONS} == annotations
        ):
            return False
        await self.configmaps.write(
            spec.namespace,
            spec.jwks_config_map,
            {spec.jwks_key: text},
            spec.name,
            owner,
            current,
            annotations=annotations,
        )
        log.info(
            "jwks published",
            extra=_fields(
                spec, reason=str(Reason.JWKS_PUBLISHED), kid=ring.current.kid if ring.current else None
            ),
        )
        return True


def _owner(obj: Mapping[str, Any], spec: Spec) -> dict[str, Any] | None:
    return owner_reference(obj) if spec.secret.deletion_policy is DeletionPolicy.DELETE else None


def _fields(spec: Spec, **extra: Any) -> dict[str, Any]:
    return {"namespace": spec.namespace, "keyset": spec.name, **extra}
